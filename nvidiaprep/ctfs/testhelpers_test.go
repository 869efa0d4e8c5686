package ctfs

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Open opens the root of the process pid, for the tests (the programs open
// a container's init through its pidfd: OpenProcess).
func Open(pid int) (*Root, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("opening process %d: %w", pid, err)
	}
	return &Root{pidfd: fd, pid: pid}, nil
}

// lockHolder is LockHolders of one file, through its own request.
func (r *Root) lockHolder(path string) (locked bool, pid int, err error) {
	rep, err := r.do(request{Kind: kindLock, Path: path}, "probing the lock")
	if errors.Is(err, unix.ENOENT) {
		return false, 0, nil
	}
	return rep.Locked, rep.Holder, err
}
