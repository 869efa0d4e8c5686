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
