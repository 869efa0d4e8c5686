// Package record keeps the host's record of each container's provisioning
// (<state>/containers/<vmid>.json) for status tools, and parses NVIDIA's own
// install record inside a container (/var/lib/nvidia/log).
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/nvversion"
	"nvidiaprep/nvidiaprep/untrusted"
)

// nvidia-installer's own files, at the same paths on the host and inside a
// container.
const (
	NVIDIADir = "/var/lib/nvidia"  // nvidia-installer's directory
	NVIDIALog = NVIDIADir + "/log" // its install record (InstalledVersion reads it)
)

// Outcomes of a provisioning run.
const (
	Running   = "running"
	Installed = "installed"
	Failed    = "failed"
)

// Provision is one container's last provisioning run. Its Error and Notes
// do not name the container: their readers do, once (ctmsg).
type Provision struct {
	VMID     int           `json:"vmid"`
	Version  string        `json:"version"`
	Outcome  string        `json:"outcome"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished,omitzero"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Error    string        `json:"error,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
}

// maxText is the most bytes of a record's error or note that Load returns.
const maxText = 4096

// Path is where the record of vmid lives under the state directory.
func Path(stateDir string, vmid int) string {
	return filepath.Join(stateDir, "containers", strconv.Itoa(vmid)+".json")
}

// Save writes the record durably and atomically, and removes what an earlier
// Save killed mid-write left. Its callers hold the container's lock.
func Save(stateDir string, p Provision) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	path := Path(stateDir, p.VMID)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("saving its provisioning record: %w", err)
	}
	if err := fsutil.WriteFileDurable(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving its provisioning record: %w", err)
	}
	// A writer killed mid-write left its temporary file; the record's
	// writers take the container's lock, so none is live.
	fsutil.RemoveStaleTemps(path, 0)
	return nil
}

// Load reads the record of vmid; ok is false when there is none.
func Load(stateDir string, vmid int) (p Provision, ok bool, err error) {
	b, err := fsutil.ReadRegular(Path(stateDir, vmid), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return Provision{}, false, nil
	}
	if err != nil {
		return Provision{}, false, fmt.Errorf("reading its provisioning record: %w", err)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return Provision{}, false, fmt.Errorf("reading its provisioning record %s: %w", Path(stateDir, vmid), err)
	}
	// Its texts hold what the container printed (an installer's last
	// lines): data for status and doctor, each one line, however written.
	// A record saved by a version before 2026-12-05 begins them with the
	// container's name, which their readers now add: it is dropped, so that
	// doctor does not say "CT 101: ... CT 101: ...".
	p.Error = untrusted.Escape(dropName(p.Error, vmid), maxText)
	for i, n := range p.Notes {
		p.Notes[i] = untrusted.Escape(dropName(n, vmid), maxText)
	}
	return p, true, nil
}

// dropName removes the leading "CT <vmid>: " (once or more) that records of
// older versions put before their texts.
func dropName(text string, vmid int) string {
	prefix := ctmsg.Name(vmid) + ": "
	for strings.HasPrefix(text, prefix) {
		text = text[len(prefix):]
	}
	return text
}

// ReadInstalledVersion is the driver nvidia-installer's record
// (NVIDIALog) names below root, a host's or a tree's; "" when there is
// none.
func ReadInstalledVersion(root string) (string, error) {
	b, err := fsutil.ReadRegular(filepath.Join(root, NVIDIALog), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading nvidia-installer's record: %w", err)
	}
	return InstalledVersion(b), nil
}

// InstalledVersion reads the driver version from the first line of
// nvidia-installer's record, /var/lib/nvidia/log: the version itself, or
// backup.c's "1.0-<n> (<version>)" form. It returns "" when the line holds
// no version.
func InstalledVersion(log []byte) string {
	line, _, _ := strings.Cut(string(log), "\n")
	fields := strings.Fields(line)
	for i := len(fields) - 1; i >= 0; i-- {
		if v := strings.Trim(fields[i], "()"); nvversion.Valid(v) {
			return v
		}
	}
	return ""
}
