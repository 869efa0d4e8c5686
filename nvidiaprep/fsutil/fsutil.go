// Package fsutil writes files so that a reader sees the old content or the
// new one, never a mix: write a temporary file beside the target, rename it
// over the target, and, for durable writes, sync both.
package fsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
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
	tmp, err := os.CreateTemp(dir, tempPrefix(path)+"*")
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

// tempPrefix is how a temporary file of path is named before the random
// digits os.CreateTemp adds.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// RemoveStaleTemps removes the temporary files that writers of path killed
// mid-write left beside it: only names of this package's pattern (a dot,
// the base name, ".tmp-", digits), only regular files (never a link, nor
// what it points to), and only those last changed at least minAge ago, so
// that a live writer's file stays (0: every one, for callers that hold the
// lock of every writer). It returns what it removed.
func RemoveStaleTemps(path string, minAge time.Duration) ([]string, error) {
	dir, prefix := filepath.Dir(path), tempPrefix(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("looking for temporary files of %s: %w", path, err)
	}
	var removed []string
	for _, e := range entries {
		digits, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		st, err := os.Lstat(p)
		if err != nil || !st.Mode().IsRegular() || time.Since(st.ModTime()) < minAge {
			continue
		}
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		}
	}
	return removed, nil
}
