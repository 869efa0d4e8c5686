// Package fdguard keeps the host's open descriptors from crossing into
// what nvidiaprep starts. A process inherits every descriptor its parent
// did not mark close-on-exec: an admin's shell running `nvidiaprep
// provision` by hand may hold a root-only file open or an flock(1) lock,
// and a hook started outside systemd gets whatever its caller had. Go marks
// its own descriptors close-on-exec, but not inherited ones, and liblxc's
// attach passes all of them into the container, where an unprivileged root
// can read the file and keep the lock for ever. CloseOnExec, run first in
// main and again at the boundary (before each attach), marks them all.
package fdguard

import (
	"errors"
	"math"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloseOnExec marks every descriptor above stderr close-on-exec: nothing
// this process execs (a child, a command attached into a container) gets
// one unless it is handed over explicitly (exec.Cmd's ExtraFiles, attach's
// stdio). It uses close_range(2) (Linux 5.11) and, before that, walks
// /proc/self/fd.
func CloseOnExec() error {
	err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	if err == nil || !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd <= 2 {
			continue
		}
		// A descriptor closed meanwhile (the directory's own) is EBADF.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return err
		}
	}
	return nil
}
