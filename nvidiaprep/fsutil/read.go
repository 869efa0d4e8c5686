package fsutil

import (
	"errors"
	"fmt"
	"io"
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
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &NotRegularError{Path: path, Kind: fileKind(st.Mode)}
	}
	rfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "reopen", Path: path, Err: err}
	}
	return os.NewFile(uintptr(rfd), path), nil
}

// ReadRegular reads a regular file of at most max bytes (see OpenRegular);
// a larger one is an error that matches ErrTooLarge, naming the file and
// the limit.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes, more than such a file ever holds: %w", path, max, ErrTooLarge)
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
