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
	// Only a missing file is an answer; what cannot be read leaves the
	// question open, and an open question is "not current": the worker
	// installs and verifies.
	reads := root.ReadFiles(4096, Marker, record.NVIDIALog) // one child process for both
	switch err := reads[0].Err; {
	case err == nil:
		return false, "an earlier install did not finish", nil
	case !errors.Is(err, unix.ENOENT):
		return false, fmt.Sprintf("whether an earlier install finished is unknown (%v)", err), nil
	}
	log, err := reads[1].Data, reads[1].Err
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, "no NVIDIA driver is installed from a .run", nil
	case err != nil:
		return false, fmt.Sprintf("its install record cannot be read (%v)", err), nil
	}
	if have := record.InstalledVersion(log); have != version {
		return false, fmt.Sprintf("it has %s, the host runs %s", VersionText(have), version), nil
	}
	return true, "", nil
}

// VersionText is an installed version for a message ("" when the record
// names none).
func VersionText(v string) string {
	if v == "" {
		return "an unreadable version"
	}
	return v
}
