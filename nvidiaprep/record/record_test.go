package record

import (
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
