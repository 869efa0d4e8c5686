// Package ctfs reads a running container's files from the host without
// trusting them: every path is resolved with openat2(RESOLVE_IN_ROOT) under
// the container's root (/proc/<init pid>/root), so the container's absolute
// symlinks and ".." stay inside the container, and magic links are refused.
// The host path /proc here is the kernel's process table, not a relocatable
// NVIDIA procfs tree.
//
// A container's file system may never answer (a FUSE server of its own, in
// a privileged container): every read therefore runs in a child process
// (package isolate) with a deadline, after a look at the container init's
// mountinfo has refused paths below mounts that hold no plain files. A
// child stuck past its deadline gets its FUSE connection aborted where
// fusectl allows it, and is otherwise abandoned: it holds nothing of the
// caller's.
package ctfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/isolate"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Root is a running container's root, as the host reads it. It holds its
// init's pidfd, not its root: every operation on the container's files
// runs in a child process (isolate) that opens the root afresh, so that a
// file system of the container's that never answers (a FUSE server) can
// only stall that child, which holds none of the caller's locks and is
// abandoned past its deadline, never the caller.
type Root struct {
	pidfd int
	pid   int
	// Timeout bounds each operation; 0 is isolate.DefaultTimeout.
	Timeout time.Duration
	// FuseConnections is the fusectl directory through which a stuck
	// read's FUSE connection is aborted; "" is /sys/fs/fuse/connections.
	FuseConnections string
}

// OpenProcess opens the root of the process a pidfd refers to (liblxc's
// init_pidfd of a container): unlike a pid read first and opened after,
// a pidfd cannot come to name another process, so the root read is that
// of the container's init, or it is an error once the init has ended.
func OpenProcess(pidfd int) (*Root, error) {
	pid, err := pidOf(pidfd)
	if err != nil {
		return nil, err
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return nil, fmt.Errorf("the process %d has ended: %w", pid, err)
	}
	fd, err := unix.FcntlInt(uintptr(pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("keeping the pidfd of process %d: %w", pid, err)
	}
	return &Root{pidfd: fd, pid: pid}, nil
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
func (r *Root) Close() error { return unix.Close(r.pidfd) }

// ReadFile reads at most max bytes of a regular file inside the container;
// anything else is a *NotRegularError.
func (r *Root) ReadFile(path string, max int64) ([]byte, error) {
	rep, err := r.do(request{Kind: kindRead, Path: path, Max: max}, "reading")
	return rep.Data, err
}

// Read is what ReadFiles read of one file, or why it could not.
type Read struct {
	Data []byte
	Err  error
}

// ReadFiles is ReadFile of several files at once (one child process for
// all of them); a failure of the whole (a deadline) is every file's Err.
func (r *Root) ReadFiles(max int64, paths ...string) []Read {
	out := make([]Read, len(paths))
	if len(paths) == 0 {
		return out
	}
	rep, err := r.do(request{Kind: kindRead, Path: paths[0], More: paths[1:], Max: max}, "reading")
	out[0] = Read{Data: rep.Data, Err: err}
	for i := range paths[1:] {
		switch {
		case err != nil && len(rep.More) == 0:
			out[i+1].Err = err // the child gave no answer at all
		case i < len(rep.More):
			out[i+1] = Read{Data: rep.More[i].Data, Err: rep.More[i].Err.err()}
		default:
			out[i+1].Err = fmt.Errorf("reading %s inside the container: no answer", paths[i+1])
		}
	}
	return out
}

// Readlink reads a symlink inside the container without following it; the
// target is the container's text.
func (r *Root) Readlink(path string) (untrusted.Text, error) {
	rep, err := r.do(request{Kind: kindReadlink, Path: path}, "reading the link")
	if err != nil {
		return untrusted.Text{}, err
	}
	return untrusted.Bytes(rep.Data), nil
}

// Held is what LockHolders found of one lock.
type Held struct {
	Locked bool
	Pid    int
	Err    error
}

// LockHolders tells, for each of paths (one child process for all of
// them), whether a write lock on it would be refused because another
// process holds an fcntl lock on it (as dpkg and apt do), and that
// process's host pid when the kernel says (0 for open file description
// locks). A missing file is not locked; one that is not a regular file is a
// *NotRegularError (the host does not open it, and cannot tell). A failure
// of the whole (a deadline) is every file's Err.
func (r *Root) LockHolders(paths ...string) []Held {
	out := make([]Held, len(paths))
	if len(paths) == 0 {
		return out
	}
	rep, err := r.do(request{Kind: kindLock, Path: paths[0], More: paths[1:]}, "probing the locks")
	all := append([]reply{rep}, rep.More...)
	for i := range out {
		switch {
		case i == 0:
			out[0] = Held{rep.Locked, rep.Holder, err}
		case err != nil && len(rep.More) == 0:
			out[i].Err = err
		case i-1 < len(rep.More):
			out[i] = Held{all[i].Locked, all[i].Holder, all[i].Err.err()}
		default:
			out[i].Err = fmt.Errorf("probing %s inside the container: no answer", paths[i])
		}
		if errors.Is(out[i].Err, unix.ENOENT) {
			out[i] = Held{} // a missing file is not locked
		}
	}
	return out
}

// do runs one request in a child, with the init's pidfd as its only
// descriptor, and names the container and the path when it was abandoned.
func (r *Root) do(req request, verb string) (reply, error) {
	req.Pid = r.pid
	paths := append([]string{req.Path}, req.More...)
	what := fmt.Sprintf("%s %s inside the container", verb, strings.Join(paths, ", "))
	in, err := json.Marshal(req)
	if err != nil {
		return reply{}, err
	}
	dup, err := unix.FcntlInt(uintptr(r.pidfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return reply{}, fmt.Errorf("%s: %w", what, err)
	}
	pidfd := os.NewFile(uintptr(dup), "pidfd")
	defer pidfd.Close()
	out, err := isolate.Run(context.Background(), isolate.Call{
		Op: opName, In: in, Files: []*os.File{pidfd}, What: what, Timeout: r.Timeout,
		Unstick: func() string {
			var did []string
			for _, p := range paths {
				if s := abortFUSE(r.pid, p, r.FuseConnections); s != "" && !slices.Contains(did, s) {
					did = append(did, s)
				}
			}
			return strings.Join(did, "; ")
		},
	})
	if err != nil {
		return reply{}, err
	}
	var rep reply
	if err := json.Unmarshal(out, &rep); err != nil {
		return reply{}, fmt.Errorf("%s: a malformed answer: %w", what, err)
	}
	return rep, rep.Err.err()
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
// It is found before the host crosses into such a mount (MountPoint and
// FSType, from the container's mountinfo), or after a link led there
// (Magic, from fstatfs).
type SpecialFSError struct {
	Path       string
	Magic      int64
	MountPoint string // the mount the path lies below, when found before crossing
	FSType     string // its type, as mountinfo names it
}

func (e *SpecialFSError) Error() string {
	if e.MountPoint != "" {
		return fmt.Sprintf("%s lies below %s, a %s mount inside the container, not a file system that holds plain files (ext4, xfs, btrfs, zfs, tmpfs, overlay, ...): the host does not cross into it; mount a regular file system there", e.Path, e.MountPoint, e.FSType)
	}
	return fmt.Sprintf("%s lies on a file system of type 0x%x inside the container, not on one that holds plain files (ext4, xfs, btrfs, zfs, tmpfs, overlay, ...): the host does not read it; mount a regular file system there", e.Path, e.Magic)
}

// NotRegularError means a path inside the container is not a regular file
// (after its links, resolved inside the container): the host did not open it.
type NotRegularError = fsutil.NotRegularError

// ProcessName returns a process's command line for log lines ("apt-get
// install foo (pid 42)"), or its pid as text when it is gone. The process
// (a container's, or any on the host) chose its command line: it is
// untrusted text, at most 120 bytes of it kept. Its command line lies in
// its memory, which a privileged process can point at a file of its own
// (prctl PR_SET_MM_ARG_START) on a FUSE server: it is read in a child, as
// the container's files are.
func ProcessName(pid int) untrusted.Text {
	in, _ := json.Marshal(request{Kind: kindCmdline, Pid: pid})
	out, err := isolate.Run(context.Background(), isolate.Call{
		Op: opName, In: in, What: fmt.Sprintf("reading the command line of process %d", pid), Timeout: 5 * time.Second,
	})
	var rep reply
	if err != nil || json.Unmarshal(out, &rep) != nil || rep.Err != nil || len(rep.Data) == 0 {
		return untrusted.New("pid " + strconv.Itoa(pid))
	}
	s := strings.TrimSpace(strings.ReplaceAll(string(rep.Data), "\x00", " "))
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return untrusted.New(fmt.Sprintf("%s (pid %d)", s, pid))
}
