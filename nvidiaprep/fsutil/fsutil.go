// Package fsutil writes files so that a reader sees the old content or the
// new one, never a mix: write a temporary file beside the target, rename it
// over the target, and, for durable writes, sync both.
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data: readers see the old or the new
// content, never a mix. An existing file keeps its mode and owner; a new one
// gets perm. It does not wait for the disk: use it for files that are
// regenerated anyway after a crash, such as an LXC config written at start.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

// WriteFileDurable is WriteFileAtomic that also syncs the file and its
// directory, for records that must survive a power loss.
func WriteFileDurable(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

func write(path string, data []byte, perm os.FileMode, durable bool) (err error) {
	dir := filepath.Dir(path)
	uid, gid := -1, -1
	if st, statErr := os.Stat(path); statErr == nil {
		perm = st.Mode().Perm()
		uid, gid = ownerOf(st)
	} else if !errors.Is(statErr, os.ErrNotExist) {
		return fmt.Errorf("writing %s: %w", path, statErr)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if uid >= 0 {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if durable {
		if err = tmp.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if !durable {
		return nil
	}
	if d, openErr := os.Open(dir); openErr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
