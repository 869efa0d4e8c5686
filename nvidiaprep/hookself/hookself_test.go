package hookself

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
	env := AddMark([]string{"PATH=/bin", envChained + "=7"}, 101)
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

// This test binary run for "4242", and again below that (the grandchild
// of the test): the grandchild finds the child, the same program run for
// the same vmid, and none for another vmid.
func TestAncestorHook(t *testing.T) {
	if os.Getenv("HOOKSELF_DEPTH") != "" {
		return
	}
	if pid := AncestorHook("/proc", 4242); pid != 0 {
		t.Fatalf("an ancestor %d runs for 4242 at the top", pid)
	}
	out, err := again(1)
	if err != nil || !strings.Contains(string(out), "found the parent") {
		t.Errorf("%v\n%s", err, out)
	}
}

func again(depth int) ([]byte, error) {
	cmd := exec.Command(os.Args[0], "-test.run", "TestAncestorChild", "-test.v", "4242")
	cmd.Env = append(os.Environ(), "HOOKSELF_DEPTH="+strconv.Itoa(depth))
	return cmd.CombinedOutput()
}

func TestAncestorChild(t *testing.T) {
	switch os.Getenv("HOOKSELF_DEPTH") {
	case "":
		t.Skip("run by TestAncestorHook")
	case "1":
		out, err := again(2)
		want := fmt.Sprintf("ancestor %d, other 0", os.Getpid())
		if err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("want %q: %v\n%s", want, err, out)
		}
		fmt.Println("found the parent")
	case "2":
		fmt.Printf("ancestor %d, other %d\n", AncestorHook("/proc", 4242), AncestorHook("/proc", 4243))
	}
}
