// Package installstate is what a container's install of the NVIDIA
// user-space libraries is, as the host reads it without cgo: the files
// inside the container that record it, whether it is current (Current), the
// provisioning worker's per-container lock, and settling a host record that
// a dead worker left. Post-start (the hookscript, no cgo) and the worker
// both ask it.
package installstate

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/record"
)

// Paths inside the container.
const (
	Dir    = "/var/lib/nvidiaprep" // nvidiaprep's directory inside
	Marker = Dir + "/provisioning" // present while an install is under way
)

// Current tells whether the container whose root is root already has
// version's libraries, from nvidia-installer's record, read safely from the
// host, and the absence of a half-done install. why says what differs.
func Current(root *ctfs.Root, version string) (ok bool, why string, err error) {
	reads := root.ReadFiles(maxRecord, Marker, record.NVIDIALog) // one child process for both
	ok, why = current(reads[0], reads[1], version)
	return ok, why, nil
}

// maxRecord bounds what Current reads of the marker and the install
// record: the version is on the record's first line.
const maxRecord = 4096

// current is Current from what was read of the marker and of the record.
func current(marker, rec ctfs.Read, version string) (ok bool, why string) {
	// Only a missing file is an answer; what cannot be read leaves the
	// question open, and an open question is "not current": the worker
	// installs and verifies.
	switch err := marker.Err; {
	case err == nil:
		return false, "an earlier install did not finish"
	case !errors.Is(err, unix.ENOENT):
		return false, fmt.Sprintf("whether an earlier install finished is unknown (%v)", err)
	}
	log, err := rec.Data, rec.Err
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, "no NVIDIA driver is installed from a .run"
	case err != nil:
		return false, fmt.Sprintf("its install record cannot be read (%v)", err)
	}
	if have := record.InstalledVersion(log[:min(len(log), maxRecord)]); have != version {
		return false, fmt.Sprintf("it has %s, the host runs %s", VersionText(have), version)
	}
	return true, ""
}

// VersionText is an installed version for a message ("" when the record
// names none).
func VersionText(v string) string {
	if v == "" {
		return "an unreadable version"
	}
	return v
}

// Seen is what post-start needs of a container's install: Current, whether
// it has NVIDIA's container toolkit (when nvidiaprep installs its
// libraries) or Registered (when it does not), and ReadSpecState.
type Seen struct {
	Current bool   // the libraries are version's (installs only)
	Why     string // why they are not
	// Toolkit: ToolkitConfig is there (installs only); post-start then
	// starts the worker at every start, for the /dev/char links the
	// toolkit's runtime needs in the container's new /dev.
	Toolkit    bool
	Registered bool // Registered, false when it cannot tell (without installs only)
	Spec       SpecState
	SpecErr    error
}

// See answers what Current, the toolkit's presence or Registered, and
// ReadSpecState would, from one isolated child (ctfs.ReadFiles) instead of one each:
// post-start sits on every start.
func See(root *ctfs.Root, version string, installs bool) Seen {
	var s Seen
	if installs {
		r := root.ReadFiles(maxSpec, SpecPath, Marker, record.NVIDIALog, ToolkitConfig)
		s.Current, s.Why = current(r[1], r[2], version)
		s.Toolkit = r[3].Err == nil
		s.Spec, s.SpecErr = specState(r[0])
		return s
	}
	r := root.ReadFiles(maxSpec, SpecPath, aptreg.PinPath)
	if reg, err := registered(r[1].Err); err == nil {
		s.Registered = reg
	}
	s.Spec, s.SpecErr = specState(r[0])
	return s
}
