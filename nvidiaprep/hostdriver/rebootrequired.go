package hostdriver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// The /run/reboot-required convention of Debian and Ubuntu: the file says a
// restart is needed (Ubuntu's motd and many monitoring checks show it), and
// reboot-required.pkgs lists who asked for it. /run is a tmpfs, so a reboot
// clears both.
const (
	rebootRequired     = "run/reboot-required"
	rebootRequiredPkgs = "run/reboot-required.pkgs"
	rebootRequiredText = "*** System restart required ***\n"
	ourPackage         = "nvidiaprep"
)

// markRebootRequired writes the convention's files below root.
func markRebootRequired(root string) error {
	p := filepath.Join(root, rebootRequired)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("marking the reboot required: %w", err)
	}
	if err := fsutil.WriteFileAtomic(p, []byte(rebootRequiredText), 0o644); err != nil {
		return fmt.Errorf("marking the reboot required: %w", err)
	}
	pkgs := readLines(filepath.Join(root, rebootRequiredPkgs))
	if slices.Contains(pkgs, ourPackage) {
		return nil
	}
	pkgs = append(pkgs, ourPackage)
	if err := fsutil.WriteFileAtomic(filepath.Join(root, rebootRequiredPkgs), []byte(strings.Join(pkgs, "\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("marking the reboot required: %w", err)
	}
	return nil
}

// clearRebootRequired withdraws our request: our line leaves
// reboot-required.pkgs, and both files go when nobody else asked.
func clearRebootRequired(root string) error {
	pkgsPath := filepath.Join(root, rebootRequiredPkgs)
	pkgs := readLines(pkgsPath)
	if !slices.Contains(pkgs, ourPackage) {
		return nil
	}
	pkgs = slices.DeleteFunc(pkgs, func(s string) bool { return s == ourPackage })
	if len(pkgs) > 0 {
		return fsutil.WriteFileAtomic(pkgsPath, []byte(strings.Join(pkgs, "\n")+"\n"), 0o644)
	}
	for _, p := range []string{pkgsPath, filepath.Join(root, rebootRequired)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clearing the reboot request: %w", err)
		}
	}
	return nil
}

func readLines(path string) []string {
	b, err := fsutil.ReadRegular(path, 1<<20)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
