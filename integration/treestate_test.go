//go:build integration

package integration_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// treeState lists every file below roots (links not followed) with its
// type, mode, size and content checksum (or link target, or device
// numbers): what a test compares before and after to say that nothing
// changed. A root that does not exist lists nothing.
//
// With identity, a file's inode and modification time count too, and a
// directory's size: a host file replaced by an identical copy, or touched,
// differs (the hostile container tests). Without it, lock files and install
// slots (empty files that only serialize processes) are left out, and a
// directory is only its mode, since its size changes with its entries.
func treeState(t *testing.T, identity bool, roots ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, root := range roots {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) && p == root {
				return nil
			}
			if err != nil {
				return err
			}
			if !identity && (strings.HasSuffix(p, ".lock") || strings.Contains(filepath.Base(p), "install-slot-")) {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			s := fmt.Sprintf("mode %o size %d", st.Mode, st.Size)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(b)
				s += " sha256 " + hex.EncodeToString(sum[:])
			case unix.S_IFLNK:
				target, _ := os.Readlink(p)
				s += " -> " + target
			case unix.S_IFCHR, unix.S_IFBLK:
				s += fmt.Sprintf(" device %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
			case unix.S_IFDIR:
				if !identity {
					s = fmt.Sprintf("mode %o", st.Mode)
				}
			}
			if identity {
				s += fmt.Sprintf(" inode %d mtime %d.%09d", st.Ino, st.Mtim.Sec, st.Mtim.Nsec)
			}
			out[p] = s
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// wantSameTree reports every file of what that differs between two
// treeStates.
func wantSameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for p, b := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s was removed", what, p)
		} else if a != b {
			t.Errorf("%s: %s changed: %s, was %s", what, p, a, b)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s was created", what, p)
		}
	}
}

// without leaves out of a treeState what lies below dir.
func without(s map[string]string, dir string) map[string]string {
	out := map[string]string{}
	for p, st := range s {
		if p != dir && !strings.HasPrefix(p, dir+"/") {
			out[p] = st
		}
	}
	return out
}
