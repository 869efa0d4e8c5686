package hostdriver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"nvidiaprep/nvidiaprep/fsutil"
)

// binDirs are where lookPath looks, in PATH's order.
var binDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// lookPath finds an executable program below root and returns its path as
// seen from root ("/usr/sbin/dkms"), or "" when there is none.
func lookPath(root, name string) string {
	p, _ := findProgram(root, name)
	return p
}

// findProgram is lookPath for decisions: a program that may be there but
// cannot be checked (stat fails for another reason than its absence) is an
// error, not an absent program.
func findProgram(root, name string) (string, error) {
	for _, d := range binDirs {
		p := filepath.Join(d, name)
		ok, err := fsutil.IsExecutable(filepath.Join(root, p))
		if ok {
			return p, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", fmt.Errorf("looking for %s: %w", name, err)
		}
	}
	return "", nil
}
