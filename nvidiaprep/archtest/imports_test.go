package archtest

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// pkg is what `go list -json` says of a package: its non-test imports,
// direct and all.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// graph lists the product's packages (nvidiaprep/... and hook/...), as the
// binaries build them (test files aside), by import path.
func graph(t *testing.T) map[string]pkg {
	t.Helper()
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goTool); err != nil {
		t.Skipf("no go command beside the toolchain: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-json=ImportPath,Imports,Deps", "nvidiaprep/nvidiaprep/...", "nvidiaprep/hook/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list printed %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

// chain is one import path from one package to another, for the message:
// "a → b → c".
func chain(pkgs map[string]pkg, from, to string) string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			path := []string{}
			for p := to; p != ""; p = prev[p] {
				path = append(path, strings.TrimPrefix(p, "nvidiaprep/"))
			}
			slices.Reverse(path)
			return strings.Join(path, " → ")
		}
		for _, next := range pkgs[cur].Imports {
			if _, seen := prev[next]; !seen {
				prev[next] = cur
				queue = append(queue, next)
			}
		}
	}
	return from + " → … → " + to
}

// The product never builds in the test kit: no package under nvidiaprep/ or
// hook/ imports integration/... (stand-ins, LXC harness) outside its tests.
func TestProductImportsNoTestKit(t *testing.T) {
	pkgs := graph(t)
	for _, p := range pkgs {
		for _, d := range p.Deps {
			if strings.HasPrefix(d, "nvidiaprep/integration/") {
				t.Errorf("%s imports the test kit: %s; only _test.go files may", p.ImportPath, chain(pkgs, p.ImportPath, d))
			}
		}
	}
}

// Reports read what the installers leave (hostdriverstate, record,
// installstate) and never import the installers themselves, directly or
// through another package.
func TestReportsImportNoInstaller(t *testing.T) {
	pkgs := graph(t)
	reports := []string{"nvidiaprep/nvidiaprep/status", "nvidiaprep/nvidiaprep/doctor"}
	installers := []string{"nvidiaprep/nvidiaprep/hostdriver", "nvidiaprep/nvidiaprep/provision"}
	for _, r := range reports {
		p, ok := pkgs[r]
		if !ok {
			t.Fatalf("go list did not list the report package %s", r)
		}
		for _, in := range installers {
			if _, ok := pkgs[in]; !ok {
				t.Fatalf("go list did not list the installer package %s", in)
			}
			if slices.Contains(p.Deps, in) {
				t.Errorf("the report %s imports the installer %s: %s; read its state through its own small package instead", r, in, chain(pkgs, r, in))
			}
		}
	}
}
