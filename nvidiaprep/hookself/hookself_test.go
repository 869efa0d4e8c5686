package hookself

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestIsByWhatTheFileIs(t *testing.T) {
	dir := t.TempDir()
	hook := filepath.Join(dir, "nvidiaprep-hook")
	os.WriteFile(hook, []byte("#!/bin/sh\n"), 0o755)
	self, err := os.ReadFile("/proc/self/exe") // built from nvidiaprep's module
	if err != nil {
		t.Fatal(err)
	}
	copyOf := filepath.Join(dir, "copy")
	os.WriteFile(copyOf, self, 0o755)
	os.Symlink(hook, filepath.Join(dir, "link"))
	os.Link(hook, filepath.Join(dir, "hardlink"))
	other := filepath.Join(dir, "mount-nfs.sh")
	os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755)
	for name, want := range map[string]bool{"link": true, "hardlink": true, "copy": true, "nvidiaprep-hook": true, "mount-nfs.sh": false} {
		yes, why, err := Is(filepath.Join(dir, name), hook)
		if err != nil || yes != want {
			t.Errorf("%s: %v (%s), %v; want %v", name, yes, why, err, want)
		}
	}
	if gofmt, err := os.ReadFile(filepath.Join(runtime.GOROOT(), "bin/gofmt")); err == nil {
		p := filepath.Join(dir, "gofmt")
		os.WriteFile(p, gofmt, 0o755)
		if yes, why, _ := Is(p, hook); yes {
			t.Errorf("another Go program is taken for nvidiaprep's: %s", why)
		}
	}
}

func TestRecursionMark(t *testing.T) {
	env := AddMark([]string{"PATH=/bin", EnvChained + "=7"}, 101)
	get := func(k string) (string, bool) {
		for _, e := range env {
			if v, ok := strings.CutPrefix(e, k+"="); ok {
				return v, true
			}
		}
		return "", false
	}
	if !Recursing(get, 101) || !Recursing(get, 7) || Recursing(get, 10) || Recursing(get, 1) {
		t.Errorf("marks %q", env)
	}
	if Recursing(func(string) (string, bool) { return "", false }, 101) {
		t.Error("recursing without a mark")
	}
}
