package provision

import (
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/record"
)

// Inspect reads what a running container has, for status: the user-space
// version nvidia-installer recorded ("" when none or unreadable) and
// whether an install began and did not finish (its marker is there).
func Inspect(root *ctfs.Root) (version string, unfinished bool) {
	if _, err := root.ReadFile(marker, 64); err == nil {
		unfinished = true
	}
	if log, err := root.ReadFile(record.NVIDIALog, 4096); err == nil {
		version = record.InstalledVersion(log)
	}
	return version, unfinished
}
