package hostdriverstate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/kernelguard"
)

// What the unit saves, the reports read back; a missing file is no state,
// a broken one an error naming it.
func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, ok, err := Load(dir); ok || err != nil {
		t.Fatalf("no state file: ok %v, err %v", ok, err)
	}
	want := State{Configured: "580.159.04", Installed: "580.159.04", Outcome: OutcomeNotLoaded, BootID: "b1",
		Time: time.Date(2025, 11, 26, 9, 0, 0, 0, time.UTC), Causes: []kernelguard.Cause{{What: "no module for 6.17", Fix: "install headers"}}}
	for _, durable := range []bool{false, true} {
		if err := Save(dir, want, durable); err != nil {
			t.Fatal(err)
		}
		got, ok, err := Load(dir)
		if err != nil || !ok || got.Outcome != want.Outcome || got.BootID != want.BootID || !got.Time.Equal(want.Time) || len(got.Causes) != 1 || got.Causes[0].Fix != "install headers" {
			t.Errorf("durable %v: loaded %+v, %v, %v; want %+v", durable, got, ok, err, want)
		}
	}
	if err := os.WriteFile(Path(dir), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(dir); err == nil || !strings.Contains(err.Error(), Path(dir)) {
		t.Errorf("a broken state file: %v, want an error naming it", err)
	}
}

// The error quotes commands' output: the reports get it as one escaped line.
func TestLoadEscapesTheError(t *testing.T) {
	dir := t.TempDir()
	if err := Save(dir, State{Outcome: OutcomeFailed, Error: "dkms failed\n\x1b[2Jowned"}, false); err != nil {
		t.Fatal(err)
	}
	s, _, err := Load(dir)
	if err != nil || strings.ContainsAny(s.Error, "\n\x1b") || !strings.Contains(s.Error, "dkms failed") {
		t.Errorf("error %q, %v: want one line without escape sequences", s.Error, err)
	}
}
