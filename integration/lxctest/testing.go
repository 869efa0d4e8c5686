package lxctest

import (
	"os"
	"testing"
)

// NewTestBed makes a Bed in a fresh directory for one test and closes it
// and removes the directory when the test ends. It fails the test when the
// bed cannot be made (not root, integration/setup.sh not run).
func NewTestBed(t testing.TB) *Bed {
	t.Helper()
	dir, err := os.MkdirTemp("", "lxctest-")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBed(dir)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing test bed %s: %v", dir, err)
			return // keep what could not be cleaned up, for a look
		}
		if m, err := mountsBelow(dir); err != nil || len(m) > 0 {
			t.Errorf("test bed %s: mounts left after Close: %v %v", dir, m, err)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Error(err)
		}
	})
	return b
}
