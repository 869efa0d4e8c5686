package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The hookscript runs at every container start: it has no cgo, so it starts
// in about the time of a Go program that does nothing and still starts when
// liblxc or NVML cannot be loaded (integration's
// TestHookStartsWithoutLiblxcOrNVML shows it on a real container). liblxc
// and NVML belong to the admin program and the worker.

// goTool is the go command of the toolchain running the test.
func goTool(t *testing.T) string {
	t.Helper()
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("no go command beside the toolchain: %v", err)
	}
	return p
}

// No package the hook imports, outside Go's standard library, has cgo
// files: not go-lxc (ctexec), not go-nvml (nvmlgpu), not go-systemd's util.
// The standard library's (net, os/user) have pure Go twins that
// CGO_ENABLED=0 selects.
func TestHookImportsNoCgo(t *testing.T) {
	cmd := exec.Command(goTool(t), "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			t.Fatalf("go list printed %q", line)
		}
		if f[1] == "false" && f[2] != "0" {
			t.Errorf("the hook imports %s, which needs cgo: keep it to the admin program (why: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./hook)", f[0])
		}
	}
}

// Built as the package and make build it (CGO_ENABLED=0), the hook is a
// static executable: no program interpreter, no shared library.
func TestHookIsStatic(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "nvidiaprep-hook")
	cmd := exec.Command(goTool(t), "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build ./hook: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the hook asks for a program interpreter (the dynamic loader)")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("the hook needs shared libraries %v (%v)", libs, err)
	}
}
