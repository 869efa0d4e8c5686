package fsutil

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// NotRegularError means a path that should be a regular file is something
// else (a FIFO, a device, a directory): it was not opened for reading, so
// neither a FIFO without a writer nor a device's endless stream can hang
// or flood the reader.
type NotRegularError struct {
	Path string
	Kind string // "a directory", "a character device", ...
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file", e.Path, e.Kind)
}

// ErrTooLarge means a file is larger than its reader accepts.
var ErrTooLarge = errors.New("file too large")

// fileKind names a file type (the S_IFMT bits of mode) for messages.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return "of an unknown type"
}

// OpenRegular opens path for reading only when it is a regular file (after
// its links). It first opens it with O_PATH, which opens nothing behind it
// (no device driver's open, no wait for a FIFO's writer), and reopens for
// reading only what fstat says is a regular file; anything else is a
// *NotRegularError. A missing file is an error that matches os.ErrNotExist.
func OpenRegular(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return ReopenRegular(fd, path)
}

// ReopenRegular opens the file that the O_PATH descriptor fd (named path
// in messages) refers to for reading, when it is a regular file.
func ReopenRegular(fd int, path string) (*os.File, error) {
	rfd, _, err := reopenRegular(fd, path)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(rfd), path), nil
}

// reopenRegular is ReopenRegular's descriptor, with the size fstat gave.
func reopenRegular(fd int, path string) (rfd int, size int64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, 0, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, 0, &NotRegularError{Path: path, Kind: fileKind(st.Mode)}
	}
	rfd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, 0, &os.PathError{Op: "reopen", Path: path, Err: err}
	}
	return rfd, st.Size, nil
}

// ReadRegular reads a regular file of at most limit bytes (see
// OpenRegular); a larger one is an error that matches ErrTooLarge, naming
// the file and the limit. It reads with plain read(2) calls into a buffer of
// the size fstat gave (procfs and sysfs files say 0; it grows): pre-start
// reads its files with it, and an *os.File's poller set-up and io.ReadAll's
// growth in small steps cost it more than the reads themselves.
func ReadRegular(path string, limit int64) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	rfd, size, err := reopenRegular(fd, path)
	unix.Close(fd)
	if err != nil {
		return nil, err
	}
	defer unix.Close(rfd)
	tooLarge := func() error {
		return fmt.Errorf("%s is larger than %d bytes, more than such a file ever holds: %w", path, limit, ErrTooLarge)
	}
	b := make([]byte, 0, min(limit+1, max(size+1, 512)))
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > limit {
				return nil, tooLarge()
			}
			b = append(b, 0)[:len(b)] // room to grow
		}
		n, err := unix.Read(rfd, b[len(b):min(int64(cap(b)), limit+1)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, &os.PathError{Op: "read", Path: path, Err: err})
		}
		if n == 0 {
			break
		}
		b = b[:len(b)+n]
	}
	if int64(len(b)) > limit {
		return nil, tooLarge()
	}
	return b, nil
}

// IsExecutable tells whether path (links followed) is a regular file that
// someone may execute; err is stat's, for callers that must tell "absent"
// from "cannot look".
func IsExecutable(path string) (bool, error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return st.Mode().IsRegular() && st.Mode()&0o111 != 0, nil
}
