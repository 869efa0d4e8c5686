package hostdriver

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Outcomes recorded in the state file.
const (
	OutcomeCurrent        = "current"         // the configured driver is loaded
	OutcomeRebootRequired = "reboot-required" // installed, loads at the next boot
	OutcomeRebooting      = "rebooting"       // installed, and the node reboots now (reboot = "auto")
	OutcomeInstalling     = "installing"      // an install is under way (or was cut off)
	OutcomeFailed         = "failed"
	OutcomeNotLoaded      = "not-loaded" // installed, but a later boot came up without it
)

// State is the host driver unit's record, <state>/host-driver.json, for
// admins and status tools; the unit itself reads it back only to tell a
// finished install of the configured version from one cut off halfway.
type State struct {
	Configured string `json:"configured"`          // [driver] version
	Installed  string `json:"installed,omitempty"` // nvidia-installer's record (/var/lib/nvidia/log)
	Loaded     string `json:"loaded,omitempty"`    // the kernel module's version
	Step       string `json:"step,omitempty"`      // the last step begun
	// Partial is set while the installer's work is neither verified nor
	// rolled back: its /var/lib/nvidia/log is then no proof of an install.
	Partial bool      `json:"partial_install,omitempty"`
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
	Log     string    `json:"log,omitempty"` // where the failed step's log is
	Time    time.Time `json:"time"`
	// BootID is the boot in which the driver was installed
	// (/proc/sys/kernel/random/boot_id): a later boot without it loaded is
	// a failure, this one's a pending reboot.
	BootID string `json:"boot_id,omitempty"`
	// Causes are why a later boot came up without the driver.
	Causes   []kernelguard.Cause `json:"causes,omitempty"`
	Duration time.Duration       `json:"duration_ns,omitempty"`
}

// StatePath is the state file below the state directory.
func StatePath(stateDir string) string { return filepath.Join(stateDir, "host-driver.json") }

// LoadState reads the state file; ok is false when there is none.
func LoadState(stateDir string) (s State, ok bool, err error) {
	b, err := fsutil.ReadRegular(StatePath(stateDir), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading the host driver state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, false, fmt.Errorf("reading the host driver state %s: %w", StatePath(stateDir), err)
	}
	// Its error quotes commands' output: one line for status and doctor.
	s.Error = untrusted.Escape(s.Error, 4096)
	return s, true, nil
}

// saveState writes the state file; durable syncs it to disk (for the
// install path, whose record must survive a power cut; the fast path
// rewrites it on every boot anyway).
func saveState(stateDir string, s State, durable bool) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return fmt.Errorf("saving the host driver state: %w", err)
	}
	write := fsutil.WriteFileAtomic
	if durable {
		write = fsutil.WriteFileDurable
	}
	if err := write(StatePath(stateDir), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving the host driver state: %w", err)
	}
	return nil
}

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
