package ctfs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/isolate"
)

// opName is the isolated operation that does ctfs's reads.
const opName = "ctfs"

// Ops are the isolated operations ctfs needs: programs that read a
// container's files pass them to isolate.Serve first thing in main.
func Ops() isolate.Ops { return isolate.Ops{opName: serve} }

// Kinds of request.
const (
	kindRead     = "read"
	kindReadlink = "readlink"
	kindLock     = "lock"
	kindCmdline  = "cmdline"
)

// request is one operation for the child; the container's init's pidfd is
// its descriptor 3 (none for kindCmdline). More asks it the same of several
// paths at once: one child for all of them.
type request struct {
	Kind string   `json:"kind"`
	Pid  int      `json:"pid"`
	Path string   `json:"path,omitempty"`
	More []string `json:"more,omitempty"`
	Max  int64    `json:"max,omitempty"`
}

// reply is the child's answer; More holds those of request.More.
type reply struct {
	Data   []byte     `json:"data,omitempty"`
	Locked bool       `json:"locked,omitempty"`
	Holder int        `json:"holder,omitempty"`
	Err    *wireError `json:"err,omitempty"`
	More   []reply    `json:"more,omitempty"`
}

// wireError carries the errors callers tell apart (errors.Is with an
// errno, errors.As with *NotRegularError or *SpecialFSError) from the child.
type wireError struct {
	Op         string `json:"op,omitempty"`
	Path       string `json:"path,omitempty"`
	Errno      int    `json:"errno,omitempty"`
	NotRegular string `json:"not_regular,omitempty"` // the file's kind
	Special    bool   `json:"special,omitempty"`
	Magic      int64  `json:"magic,omitempty"`
	MountPoint string `json:"mount_point,omitempty"`
	FSType     string `json:"fs_type,omitempty"`
	Msg        string `json:"msg,omitempty"`
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	var nr *NotRegularError
	var sp *SpecialFSError
	var pe *os.PathError
	var errno syscall.Errno
	switch {
	case errors.As(err, &nr):
		return &wireError{Path: nr.Path, NotRegular: nr.Kind}
	case errors.As(err, &sp):
		return &wireError{Path: sp.Path, Special: true, Magic: sp.Magic, MountPoint: sp.MountPoint, FSType: sp.FSType}
	case errors.As(err, &pe) && errors.As(pe.Err, &errno):
		return &wireError{Op: pe.Op, Path: pe.Path, Errno: int(errno)}
	}
	return &wireError{Msg: err.Error()}
}

func (w *wireError) err() error {
	switch {
	case w == nil:
		return nil
	case w.NotRegular != "":
		return &NotRegularError{Path: w.Path, Kind: w.NotRegular}
	case w.Special:
		return &SpecialFSError{Path: w.Path, Magic: w.Magic, MountPoint: w.MountPoint, FSType: w.FSType}
	case w.Errno != 0:
		return &os.PathError{Op: w.Op, Path: w.Path, Err: syscall.Errno(w.Errno)}
	}
	return errors.New(w.Msg)
}

// serve is the child: it answers one request.
func serve(in []byte, files []*os.File) ([]byte, error) {
	var req request
	if err := json.Unmarshal(in, &req); err != nil {
		return nil, err
	}
	var rep reply
	var err error
	if req.Kind == kindCmdline {
		rep.Data, err = readCmdline(req.Pid)
	} else {
		rep, err = serveRoot(req, files)
	}
	rep.Err = toWire(err)
	return json.Marshal(rep)
}

// maxCmdline bounds a command line read.
const maxCmdline = 4096

func readCmdline(pid int) ([]byte, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxCmdline))
}

// serveRoot opens the root of the process whose pidfd is files[0] and
// answers req there.
func serveRoot(req request, files []*os.File) (reply, error) {
	if len(files) != 1 {
		return reply{}, fmt.Errorf("want the container init's pidfd, got %d descriptors", len(files))
	}
	pidfd := int(files[0].Fd())
	pid, err := pidOf(pidfd)
	if err != nil {
		return reply{}, err
	}
	if pid != req.Pid {
		return reply{}, fmt.Errorf("the pidfd is process %d's, not %d's", pid, req.Pid)
	}
	rootPath := "/proc/" + strconv.Itoa(pid) + "/root"
	rootFD, err := unix.Open(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return reply{}, fmt.Errorf("opening %s: %w", rootPath, err)
	}
	defer unix.Close(rootFD)
	// Alive now, so alive when its root was opened: the pid was its own.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return reply{}, fmt.Errorf("the process %d ended while its root was opened: %w", pid, err)
	}
	// Decide before crossing: a path below a mount that holds no plain
	// files is refused from the init's mountinfo, before any lookup there
	// (which a FUSE server would be asked, and might never answer).
	mounts, err := readMounts(pid)
	if err != nil {
		return reply{}, err
	}
	r := root{fd: rootFD}
	rep, err := r.answer(req, mounts)
	for _, p := range req.More {
		one := req
		one.Path = p
		more, err := r.answer(one, mounts)
		more.Err = toWire(err)
		rep.More = append(rep.More, more)
	}
	return rep, err
}

// answer answers req about req.Path.
func (r root) answer(req request, mounts Mounts) (reply, error) {
	if m, bad := mounts.Unreadable(req.Path); bad {
		return reply{}, &SpecialFSError{Path: req.Path, MountPoint: m.Point, FSType: m.FSType}
	}
	var rep reply
	var err error
	switch req.Kind {
	case kindRead:
		rep.Data, err = r.readFile(req.Path, req.Max)
	case kindReadlink:
		rep.Data, err = r.readlink(req.Path)
	case kindLock:
		rep.Locked, rep.Holder, err = r.lockHolder(req.Path)
	default:
		err = fmt.Errorf("unknown request %q", req.Kind)
	}
	return rep, err
}

// root is the container's root directory, opened in the child.
type root struct{ fd int }

// open resolves path inside the container. It crosses the container's own
// mounts (a Proxmox mount point at /var/lib or /usr is one), but what it
// opens must lie on a file system that holds plain files (fileSystems): a
// container that mounts procfs, sysfs or a FUSE server of its own and links
// a path into it does not make the host read the kernel's files.
func (r root) open(p string, flags uint64) (*os.File, error) {
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(r.fd, strings.TrimPrefix(p, "/"), &how)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstatfs", Path: p, Err: err}
	}
	if _, ok := fileSystems[fs.Type]; !ok {
		unix.Close(fd)
		return nil, &SpecialFSError{Path: p, Magic: fs.Type}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// openRegular opens a regular file inside the container for reading. The
// path is first opened with O_PATH, which opens nothing behind it (no device
// driver's open, no FIFO), and only a regular file is then reopened for
// reading through that descriptor: a container cannot make the host open
// one of its device nodes or FIFOs.
func (r root) openRegular(p string) (*os.File, error) {
	f, err := r.open(p, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return fsutil.ReopenRegular(int(f.Fd()), p)
}

func (r root) readFile(p string, max int64) ([]byte, error) {
	f, err := r.openRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

func (r root) readlink(p string) ([]byte, error) {
	f, err := r.open(p, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(int(f.Fd()), "", buf)
	if err != nil {
		return nil, &os.PathError{Op: "readlink", Path: p, Err: err}
	}
	return buf[:n], nil
}

func (r root) lockHolder(p string) (bool, int, error) {
	f, err := r.openRegular(p)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, 0, &os.PathError{Op: "fcntl F_OFD_GETLK", Path: p, Err: err}
	}
	if lk.Type == unix.F_UNLCK {
		return false, 0, nil
	}
	pid := 0
	if lk.Pid > 0 {
		pid = int(lk.Pid)
	}
	return true, pid, nil
}

// clean makes a container path absolute and clean, for comparing with
// mount points.
func clean(p string) string { return path.Clean("/" + p) }
