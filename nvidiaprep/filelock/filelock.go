// Package filelock takes exclusive flock(2) locks on lock files. A lock dies
// with its process, so a crashed holder never leaves a stale lock.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held lock; Unlock releases it.
type Lock struct{ f *os.File }

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// File is the lock's open file. A child process given it (exec.Cmd's
// ExtraFiles) holds the lock too, until it and every process it starts that
// keeps it have exited, even when this process dies first.
func (l *Lock) File() *os.File { return l.f }

// ErrBusy means another process holds the lock.
var ErrBusy = errors.New("held by another process")

// TryLock takes the lock at path now, or fails with ErrBusy.
func TryLock(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Wait takes the lock at path, retrying until ctx ends.
func Wait(ctx context.Context, path string) (*Lock, error) {
	for {
		l, err := TryLock(path)
		if !errors.Is(err, ErrBusy) {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitAny takes one of n slot locks with try, retrying until ctx ends.
func waitAny(ctx context.Context, prefix string, n int, try func(string) (*Lock, error)) (*Lock, error) {
	for {
		for i := 0; i < n; i++ {
			l, err := try(fmt.Sprintf("%s-%d", prefix, i))
			if !errors.Is(err, ErrBusy) {
				return l, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for one of %d slots %s-*: %w", n, prefix, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TryLockOwned takes the lock at path now as a lock of this process alone,
// or fails with ErrBusy. Unlike TryLock's flock, it is a POSIX record lock
// (fcntl F_SETLK), which the kernel ties to the process, not to the open
// file: no child this process forks or starts holds it, not even one stuck
// in the kernel before its exec closed the descriptor (an attach into a
// container whose file system never answers), and it ends with this
// process. Two in one process do not exclude each other, and closing any
// descriptor of the file in this process releases it: take each such lock
// once, in one place.
func TryLockOwned(path string) (*Lock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrBusy)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// WaitAnyOwned takes one of n slot locks named prefix-0 ... prefix-(n-1), as
// TryLockOwned takes them, retrying until ctx ends: a node-wide limit of n
// concurrent holders.
func WaitAnyOwned(ctx context.Context, prefix string, n int) (*Lock, error) {
	return waitAny(ctx, prefix, n, TryLockOwned)
}
