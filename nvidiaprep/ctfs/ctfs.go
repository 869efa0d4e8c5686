// Package ctfs reads a running container's files from the host without
// trusting them: every path is resolved with openat2(RESOLVE_IN_ROOT) under
// the container's root (/proc/<init pid>/root), so the container's absolute
// symlinks and ".." stay inside the container, and magic links are refused.
// The host path /proc here is the kernel's process table, not a relocatable
// NVIDIA procfs tree.
package ctfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Root is a container's root directory, opened from the host.
type Root struct {
	fd int
}

// Open opens the root of the process pid (a container's init).
func Open(pid int) (*Root, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/root"
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	return &Root{fd: fd}, nil
}

// OpenProcess opens the root of the process a pidfd refers to (liblxc's
// init_pidfd of a container): unlike a pid read first and opened after,
// a pidfd cannot come to name another process, so the root opened is that
// of the container's init, or it is an error once the init has ended.
func OpenProcess(pidfd int) (*Root, error) {
	pid, err := pidOf(pidfd)
	if err != nil {
		return nil, err
	}
	r, err := Open(pid)
	if err != nil {
		return nil, err
	}
	// Alive now, so alive when its root was opened: the pid was its own.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		r.Close()
		return nil, fmt.Errorf("the process %d ended while its root was opened: %w", pid, err)
	}
	return r, nil
}

// pidOf reads a pidfd's pid from its fdinfo ("Pid:\t<pid>", Linux 5.3+).
func pidOf(pidfd int) (int, error) {
	path := "/proc/self/fdinfo/" + strconv.Itoa(pidfd)
	b, err := fsutil.ReadRegular(path, 4096)
	if err != nil {
		return 0, fmt.Errorf("reading the pidfd's pid: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Pid:"); ok {
			pid, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("the pidfd's process has ended (%s says Pid: %s)", path, strings.TrimSpace(v))
			}
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%s has no Pid: line (a kernel before 5.3?)", path)
}

// Close releases the root.
func (r *Root) Close() error { return unix.Close(r.fd) }

// open resolves path inside the container. It crosses the container's own
// mounts (a Proxmox mount point at /var/lib or /usr is one), but what it
// opens must lie on a file system that holds plain files (fileSystems): a
// container that mounts procfs, sysfs or a FUSE server of its own and links
// a path into it does not make the host read the kernel's files or wait on
// the container's server.
func (r *Root) open(path string, flags uint64) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(r.fd, strings.TrimPrefix(path, "/"), &how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: path, Err: err}
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstatfs", Path: path, Err: err}
	}
	if _, ok := fileSystems[fs.Type]; !ok {
		unix.Close(fd)
		return nil, &SpecialFSError{Path: path, Magic: fs.Type}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// fileSystems are the file systems the host reads a container's files on,
// by statfs magic: disk, memory and image file systems. Any other (procfs,
// sysfs, cgroup, debugfs, FUSE, network file systems) is refused.
var fileSystems = map[int64]string{
	unix.EXT4_SUPER_MAGIC:      "ext4", // ext2 and ext3 too
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	0x2fc12fc1:                 "zfs",
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.RAMFS_MAGIC:           "ramfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	unix.F2FS_SUPER_MAGIC:      "f2fs",
	unix.SQUASHFS_MAGIC:        "squashfs",
	0xe0f5e1e2:                 "erofs",
	0xca451a4e:                 "bcachefs",
}

// SpecialFSError means a path inside the container lies on a file system
// the host does not read for it (see fileSystems): the host did not open it.
type SpecialFSError struct {
	Path  string
	Magic int64
}

func (e *SpecialFSError) Error() string {
	return fmt.Sprintf("%s lies on a file system of type 0x%x inside the container, not on one that holds plain files (ext4, xfs, btrfs, zfs, tmpfs, overlay, ...): the host does not read it; mount a regular file system there", e.Path, e.Magic)
}

// NotRegularError means a path inside the container is not a regular file
// (after its links, resolved inside the container): the host did not open it.
type NotRegularError = fsutil.NotRegularError

// openRegular opens a regular file inside the container for reading. The
// path is first opened with O_PATH, which opens nothing behind it (no device
// driver's open, no FIFO), and only a regular file is then reopened for
// reading through that descriptor: a container cannot make the host open
// one of its device nodes or FIFOs.
func (r *Root) openRegular(path string) (*os.File, error) {
	p, err := r.open(path, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return fsutil.ReopenRegular(int(p.Fd()), path)
}

// ReadFile reads at most max bytes of a regular file inside the container;
// anything else is a *NotRegularError.
func (r *Root) ReadFile(path string, max int64) ([]byte, error) {
	f, err := r.openRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// Readlink reads a symlink inside the container without following it; the
// target is the container's text.
func (r *Root) Readlink(path string) (untrusted.Text, error) {
	f, err := r.open(path, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return untrusted.Text{}, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(int(f.Fd()), "", buf)
	if err != nil {
		return untrusted.Text{}, &os.PathError{Op: "readlink", Path: path, Err: err}
	}
	return untrusted.Bytes(buf[:n]), nil
}

// LockHolder tells whether a write lock on path would be refused because
// another process holds an fcntl lock on it (as dpkg and apt do), and that
// process's host pid when the kernel says (0 for open file description
// locks). A missing file is not locked; one that is not a regular file is a
// *NotRegularError (the host does not open it, and cannot tell).
func (r *Root) LockHolder(path string) (locked bool, pid int, err error) {
	f, err := r.openRegular(path)
	if errors.Is(err, unix.ENOENT) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, 0, &os.PathError{Op: "fcntl F_OFD_GETLK", Path: path, Err: err}
	}
	if lk.Type == unix.F_UNLCK {
		return false, 0, nil
	}
	if lk.Pid > 0 {
		pid = int(lk.Pid)
	}
	return true, pid, nil
}

// ProcessName returns a process's command line for log lines ("apt-get
// install foo (pid 42)"), or its pid as text when it is gone. The process
// (a container's, or any on the host) chose its command line: it is
// untrusted text, at most 120 bytes of it kept.
func ProcessName(pid int) untrusted.Text {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || len(b) == 0 {
		return untrusted.New("pid " + strconv.Itoa(pid))
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return untrusted.New(fmt.Sprintf("%s (pid %d)", s, pid))
}
