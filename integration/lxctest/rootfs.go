package lxctest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// IDShift is the host uid and gid that root of an unprivileged container
// maps to (lxc.idmap = u 0 100000 65536, as Proxmox writes).
const IDShift = 100000

// idRange is the size of the id map.
const idRange = 65536

// lowerDir is the cached tree a container's root file system starts from:
// the debootstrap tree root ("" for rootfsName), or for unprivileged
// containers its copy with every owner shifted by IDShift.
func (b *Bed) lowerDir(root string, unprivileged bool) string {
	if root == "" {
		root = rootfsName
	}
	if unprivileged {
		return filepath.Join(b.Cache, fmt.Sprintf("%s-%d", root, IDShift))
	}
	return filepath.Join(b.Cache, root)
}

// LowerDir returns the cached tree root (a directory name in Cache, ""
// for Debian bookworm) for a privileged or, owner-shifted, an unprivileged
// container, building the shifted copy first when it is missing.
func (b *Bed) LowerDir(root string, unprivileged bool) (string, error) {
	if _, err := os.Stat(filepath.Join(b.lowerDir(root, false), "usr/lib/systemd/systemd")); err != nil {
		return "", fmt.Errorf("lxctest: no cached root file system %s (run integration/setup.sh): %w", b.lowerDir(root, false), err)
	}
	if unprivileged {
		return b.ensureShifted(root)
	}
	return b.lowerDir(root, false), nil
}

// ensureShifted builds the shifted copy of the cached root file system
// once. It holds a lock on Cache/.lock while it looks and builds, and builds
// into a temporary directory that it renames, so test processes that race
// see either no copy or a complete one.
func (b *Bed) ensureShifted(root string) (string, error) {
	dst := b.lowerDir(root, true)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	lock, err := os.OpenFile(filepath.Join(b.Cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("lxctest: shifted root file system: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("lxctest: shifted root file system: lock: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return dst, nil // another process built it while we waited
	}
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil { // a crashed build's leftovers
		return "", fmt.Errorf("lxctest: shifted root file system: %w", err)
	}
	if err := copyTree(b.lowerDir(root, false), tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := shiftOwners(tmp, IDShift); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("lxctest: shifted root file system: %w", err)
	}
	return dst, nil
}

// copyTree copies src to the new directory dst, keeping owners, modes,
// links, device nodes and extended attributes.
func copyTree(src, dst string) error {
	out, err := exec.Command("cp", "-a", "--", src, dst).CombinedOutput()
	if err != nil {
		return fmt.Errorf("lxctest: cp -a %s %s: %w: %s", src, dst, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// shiftOwners adds shift to the owner and group of every file below root,
// once per inode (hard links share one). chown clears setuid and setgid
// bits, so it sets the mode again after.
func shiftOwners(root string, shift int) error {
	done := map[uint64]bool{} // inodes with several links, already shifted
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("lxctest: shifting owners: %w", err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("lxctest: shifting owners: %s: %w", p, err)
		}
		if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if done[st.Ino] {
				return nil
			}
			done[st.Ino] = true
		}
		if st.Uid >= idRange || st.Gid >= idRange {
			return fmt.Errorf("lxctest: shifting owners: %s has owner %d:%d outside the id map", p, st.Uid, st.Gid)
		}
		if err := unix.Lchown(p, int(st.Uid)+shift, int(st.Gid)+shift); err != nil {
			return fmt.Errorf("lxctest: shifting owners: %s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil
		}
		if err := unix.Chmod(p, st.Mode&0o7777); err != nil {
			return fmt.Errorf("lxctest: shifting owners: %s: %w", p, err)
		}
		return nil
	})
}

// probeOverlay tries an overlayfs mount with lower dir lower and its upper
// and work directories in dir (then removed), as containers would use.
func probeOverlay(lower, dir string) error {
	defer os.RemoveAll(dir)
	upper, work, target := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := unix.Mount("overlay", target, "overlay", 0, overlayOptions(lower, upper, work)); err != nil {
		return fmt.Errorf("lxctest: overlayfs in %s: %w", dir, err)
	}
	// Writing copies up into upper, which the upper's file system must support.
	werr := os.WriteFile(filepath.Join(target, "etc", "overlay-probe"), nil, 0o644)
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("lxctest: overlayfs in %s: unmount: %w", dir, err)
	}
	return werr
}

func overlayOptions(lower, upper, work string) string {
	return "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
}

// disk describes where a container's root file system comes from at start.
type disk struct {
	lower, upper, work string // overlayfs: all three set
	copy               string // no overlayfs: a full copy, bind-mounted
	owner              int    // host uid and gid of the container's root
}

// layers are the directories that make up the root file system, the one
// that takes writes first.
func (d disk) layers() []string {
	if d.copy != "" {
		return []string{d.copy}
	}
	return []string{d.upper, d.lower}
}

// prepareDisk creates the container's writable root file system data in
// dir: empty overlayfs upper and work directories over lower, or a copy of
// lower when overlayfs is not usable.
func prepareDisk(dir, lower string, overlay bool, owner int) (disk, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return disk{}, fmt.Errorf("lxctest: %w", err)
	}
	if !overlay {
		d := disk{copy: filepath.Join(dir, "rootfs"), owner: owner}
		return d, copyTree(lower, d.copy)
	}
	d := disk{lower: lower, upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work"), owner: owner}
	for _, p := range []string{d.upper, d.work} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return disk{}, fmt.Errorf("lxctest: %w", err)
		}
	}
	// The root directory of the mount takes the upper directory's owner.
	if err := os.Lchown(d.upper, owner, owner); err != nil {
		return disk{}, fmt.Errorf("lxctest: %w", err)
	}
	return d, nil
}

// writeFile writes a file into the root file system (which must not be
// mounted), owned by the container's root. Directories that the top layer
// lacks are created with the mode and owner they have in a lower layer.
// Symbolic links in the directory part of name are followed within the
// root file system (so /bin/x lands in /usr/bin/x).
func (d disk) writeFile(name string, data []byte, perm os.FileMode) error {
	dir, err := resolveDir(d.layers(), path.Dir(path.Clean("/"+name)))
	if err != nil {
		return err
	}
	if err := d.mkdirs(dir); err != nil {
		return err
	}
	p := filepath.Join(d.layers()[0], dir, path.Base(name))
	if err := os.WriteFile(p, data, perm); err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	if err := os.Chmod(p, perm); err != nil { // WriteFile honours the umask
		return fmt.Errorf("lxctest: %w", err)
	}
	return os.Lchown(p, d.owner, d.owner)
}

// mkdirs creates the directories of the absolute, symlink-free path dir in
// the top layer.
func (d disk) mkdirs(dir string) error {
	top, cur := d.layers()[0], "/"
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		if part == "" {
			continue
		}
		cur = path.Join(cur, part)
		p := filepath.Join(top, cur)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		mode, uid, gid := os.FileMode(0o755), d.owner, d.owner
		for _, l := range d.layers()[1:] {
			var st unix.Stat_t
			if unix.Lstat(filepath.Join(l, cur), &st) == nil {
				mode, uid, gid = os.FileMode(st.Mode&0o777), int(st.Uid), int(st.Gid)
				break
			}
		}
		if err := os.Mkdir(p, mode); err != nil {
			return fmt.Errorf("lxctest: %w", err)
		}
		if err := os.Chmod(p, mode); err != nil {
			return fmt.Errorf("lxctest: %w", err)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("lxctest: %w", err)
		}
	}
	return nil
}

// resolveDir resolves the symbolic links in the absolute path p within the
// root file system made of layers (the first that has an entry wins), like
// a lookup from inside the container would. Missing components are kept.
func resolveDir(layers []string, p string) (string, error) {
	todo := strings.Split(strings.Trim(p, "/"), "/")
	cur := "/"
	for hops := 0; len(todo) > 0; {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		target, isLink, err := lookupLink(layers, next)
		if err != nil {
			return "", err
		}
		if !isLink {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("lxctest: resolving %s: too many symbolic links", p)
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(strings.Trim(target, "/"), "/"), todo...)
	}
	return cur, nil
}

// lookupLink finds p in the first layer that has it and tells whether it is
// a symbolic link, and where to.
func lookupLink(layers []string, p string) (string, bool, error) {
	for _, l := range layers {
		full := filepath.Join(l, p)
		fi, err := os.Lstat(full)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", false, fmt.Errorf("lxctest: %w", err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return "", false, nil
		}
		target, err := os.Readlink(full)
		if err != nil {
			return "", false, fmt.Errorf("lxctest: %w", err)
		}
		return target, true, nil
	}
	return "", false, nil
}
