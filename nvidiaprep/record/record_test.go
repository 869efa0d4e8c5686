package record

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := Load(dir, 101); ok || err != nil {
		t.Fatalf("no record: ok=%v err=%v", ok, err)
	}
	p := Provision{VMID: 101, Version: "580.159.04", Outcome: Installed, Started: time.Unix(100, 0).UTC(), Duration: 3 * time.Second}
	if err := Save(dir, p); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(dir, 101)
	if err != nil || !ok || got.Version != p.Version || got.Outcome != Installed || got.Duration != p.Duration {
		t.Fatalf("got %+v %v %v", got, ok, err)
	}
}

func TestInstalledVersion(t *testing.T) {
	for in, want := range map[string]string{
		"580.159.04\nNVIDIA Accelerated Graphics Driver for Linux-x86_64\n": "580.159.04",
		"1.0-5801590 (580.159.04)\nNVIDIA ...\n":                            "580.159.04",
		"580.142":                                                           "580.142",
		"garbage\n580.1\n":                                                  "",
		"":                                                                  "",
	} {
		if got := InstalledVersion([]byte(in)); got != want {
			t.Errorf("%q: got %q want %q", in, got, want)
		}
	}
}

// A Save killed mid-write leaves its temporary file; the next Save of that
// record removes it, and leaves other records' alone.
func TestSaveRemovesAKilledSavesLeftover(t *testing.T) {
	dir := t.TempDir()
	p := Provision{VMID: 101, Version: "580.159.04", Outcome: Running, Started: time.Unix(100, 0).UTC()}
	if err := Save(dir, p); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, "containers", ".101.json.tmp-123")
	other := filepath.Join(dir, "containers", ".1010.json.tmp-123")
	os.WriteFile(left, []byte("{"), 0o644)
	os.WriteFile(other, []byte("{"), 0o644)
	if err := Save(dir, p); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); err == nil {
		t.Error("the killed Save's temporary file is left")
	}
	if _, err := os.Stat(other); err != nil {
		t.Error("another record's temporary file was removed")
	}
}

// A record saved by an older version names the container in its texts; its
// readers name it again, so Load drops the old name: doctor says "CT 101"
// once. Another container's name, or one further in, is data and stays.
func TestLoadDropsTheNameOlderRecordsWrote(t *testing.T) {
	dir := t.TempDir()
	old := `{"vmid": 101, "version": "580.159.04", "outcome": "failed",
	  "error": "CT 101: CT 101: installing failed: exit 1 (CT 102: busy)",
	  "notes": ["CT 101: dpkg lock held", "CT 102: not mine"]}`
	if err := os.MkdirAll(filepath.Dir(Path(dir, 101)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(Path(dir, 101), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(dir, 101)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	if want := "installing failed: exit 1 (CT 102: busy)"; got.Error != want {
		t.Errorf("error %q, want %q", got.Error, want)
	}
	if got.Notes[0] != "dpkg lock held" || got.Notes[1] != "CT 102: not mine" {
		t.Errorf("notes %q", got.Notes)
	}
}
