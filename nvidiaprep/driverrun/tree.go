package driverrun

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/fsutil"
)

// ListsDir holds each extracted tree's file list (see fileList), beside
// DriversDir and never visible to containers.
func (c Cache) ListsDir() string { return filepath.Join(c.Dir, "lists") }

func (c Cache) listPath(version string) string { return filepath.Join(c.ListsDir(), version) }

// maxList caps a file list read back: a real driver's tree has a few
// thousand entries of well under 200 bytes each.
const maxList = 16 << 20

// fileList describes the tree below dir, one line per entry in lexical
// order: its path, type and permissions, size, inode and change time. It is
// taken when the tree is extracted from its .run and compared before every
// use: writing a file, replacing it, adding one or changing its mode each
// change an inode's ctime or the set of inodes, and no one sets a ctime back
// without setting the clock. The root itself is left out: renaming the tree
// into place changes its own ctime.
func fileList(dir string) ([]byte, error) {
	var b bytes.Buffer
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: path, Err: err}
		}
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "%o %d %d %d.%09d %s\n", st.Mode, st.Size, st.Ino, st.Ctim.Sec, st.Ctim.Nsec, strconv.Quote(rel))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the driver tree %s: %w", dir, err)
	}
	return b.Bytes(), nil
}

// writeList records the file list of the tree being extracted at tmp, as
// version's, before the tree is renamed into place.
func (c Cache) writeList(version, tmp string) error {
	list, err := fileList(tmp)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.ListsDir(), 0o700); err != nil {
		return fmt.Errorf("driver cache: %w", err)
	}
	return fsutil.WriteFileAtomic(c.listPath(version), list, 0o600)
}

// Changed says how version's extracted tree differs from the tree its .run
// gave when it was extracted ("" when it does not): a tree without a list
// (extracted by an older nvidiaprep, whose containers saw the cache through
// a bind mount that a privileged container could make writable) or with
// any change is not used, and is extracted again from the .run.
func (c Cache) Changed(version string) (string, error) {
	want, err := fsutil.ReadRegular(c.listPath(version), maxList)
	if errors.Is(err, os.ErrNotExist) {
		return "it has no file list (it was extracted by an older nvidiaprep, or not by nvidiaprep)", nil
	}
	if err != nil {
		return "", fmt.Errorf("driver cache: %w", err)
	}
	have, err := fileList(c.Tree(version))
	if err != nil {
		return "", err
	}
	return firstDifference(want, have), nil
}

// firstDifference names the first entry in which two file lists differ.
func firstDifference(want, have []byte) string {
	wl, hl := bytes.Split(want, []byte("\n")), bytes.Split(have, []byte("\n"))
	for i := 0; i < len(wl) || i < len(hl); i++ {
		var w, h []byte
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(hl) {
			h = hl[i]
		}
		if bytes.Equal(w, h) {
			continue
		}
		wp, hp := listedPath(w), listedPath(h)
		switch {
		case len(h) == 0 || (len(w) > 0 && wp < hp):
			return wp + " is missing"
		case len(w) == 0 || hp < wp:
			return hp + " was added"
		default:
			return wp + " changed"
		}
	}
	return ""
}

// listedPath is an entry's path, as written (quoted).
func listedPath(line []byte) string {
	f := bytes.SplitN(line, []byte(" "), 5)
	if len(f) < 5 {
		return string(line)
	}
	return string(f[4])
}
