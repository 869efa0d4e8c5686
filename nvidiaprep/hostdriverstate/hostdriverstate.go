// Package hostdriverstate is what the host driver unit (nvidiaprep/hostdriver)
// leaves for the reports (status, doctor) to read: its state file,
// <state>/host-driver.json, with the outcomes it records, and the nouveau
// blacklist it writes. The unit writes them; the reports read them through
// this package and never import the installer.
package hostdriverstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// BlacklistFile is the modprobe.d file, below [paths] root, in which each
// install blacklists nouveau (kernelguard owns the name: its causes print it).
const BlacklistFile = kernelguard.NouveauBlacklistFile

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

// Path is the state file below the state directory.
func Path(stateDir string) string { return filepath.Join(stateDir, "host-driver.json") }

// Load reads the state file; ok is false when there is none.
func Load(stateDir string) (s State, ok bool, err error) {
	b, err := fsutil.ReadRegular(Path(stateDir), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading the host driver state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, false, fmt.Errorf("reading the host driver state %s: %w", Path(stateDir), err)
	}
	// Its error quotes commands' output: one line for status and doctor.
	s.Error = untrusted.Escape(s.Error, 4096)
	return s, true, nil
}

// Save writes the state file; durable syncs it to disk (for the install
// path, whose record must survive a power cut; the fast path rewrites it on
// every boot anyway).
func Save(stateDir string, s State, durable bool) error {
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
	if err := write(Path(stateDir), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving the host driver state: %w", err)
	}
	return nil
}
