package main

import (
	"os"
	"path/filepath"

	"nvidiaprep/integration/scenario"
)

// noopSource is the floor of any hook written in Go: a static program that
// does nothing.
const noopSource = "package main\n\nfunc main() {}\n"

// buildNoop builds the static no-op Go program into dir, the way the hook
// is built (CGO_ENABLED=0), and returns its path.
func buildNoop(dir string) (string, error) {
	src := filepath.Join(dir, "noop-src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	for name, text := range map[string]string{"go.mod": "module noop\n", "main.go": noopSource} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(text), 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(dir, "noop")
	return out, scenario.GoBuild(src, out, ".", "CGO_ENABLED=0")
}
