package record

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// findingsPath is where the worker leaves what it found wrong with a
// container's own container engines (NVIDIA's container toolkit there),
// one sentence a line: <state>/containers/<vmid>.apps. doctor shows them.
func findingsPath(stateDir string, vmid int) string {
	return filepath.Join(stateDir, "containers", strconv.Itoa(vmid)+".apps")
}

// SaveFindings replaces a container's findings; none removes the file.
func SaveFindings(stateDir string, vmid int, findings []string) error {
	p := findingsPath(stateDir, vmid)
	if len(findings) == 0 {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(p, []byte(strings.Join(findings, "\n")+"\n"), 0o644)
}

// LoadFindings reads a container's findings; none when there is no file.
func LoadFindings(stateDir string, vmid int) ([]string, error) {
	b, err := fsutil.ReadRegular(findingsPath(stateDir, vmid), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}
