package nvdev

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// NodeFS reads and makes character device nodes. RealNodes is the host's
// (stat(2), mknod(2): root only); tests that need no real node pass a fake
// (integration/standin.FakeNodes) and run without root.
type NodeFS interface {
	// Stat says what is at path; an error wrapping fs.ErrNotExist when
	// nothing is.
	Stat(path string) (DevStat, error)
	// Mknod makes path a character device node major:minor with mode,
	// replacing what was there, and creates its directory if missing.
	Mknod(path string, major, minor, mode uint32) error
}

// DevStat is what Stat found at a path.
type DevStat struct {
	Char         bool   // a character device node
	Major, Minor uint32 // its numbers; 0:0 for what is no device
	Perm         uint32 // its permission bits (0666 as the driver makes them)
	UID, GID     uint32 // its owner
}

// Is tells whether s is the character device n.
func (s DevStat) Is(n Node) bool { return s.Char && s.Major == n.Major && s.Minor == n.Minor }

// RealNodes is the host's NodeFS.
type RealNodes struct{}

// Stat implements NodeFS with stat(2), following links.
func (RealNodes) Stat(path string) (DevStat, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return DevStat{}, err // an errno, as callers' messages have always shown it
	}
	return DevStat{Char: st.Mode&unix.S_IFMT == unix.S_IFCHR, Major: unix.Major(st.Rdev), Minor: unix.Minor(st.Rdev),
		Perm: st.Mode & 0o7777, UID: st.Uid, GID: st.Gid}, nil
}

// Mknod implements NodeFS atomically, as nvidia-modprobe does: the node is
// made beside path with mknod(2), given mode (mknod honours the umask) and
// renamed over path.
func (RealNodes) Mknod(path string, major, minor, mode uint32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	tmp := fmt.Sprintf("%s.nvidiaprep-%d", path, os.Getpid())
	_ = os.Remove(tmp)
	if err := unix.Mknod(tmp, unix.S_IFCHR|mode, int(unix.Mkdev(major, minor))); err != nil {
		return fmt.Errorf("creating %s (%d:%d): %w", path, major, minor, err)
	}
	if err := os.Chmod(tmp, os.FileMode(mode)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}

// OrReal returns nfs, or RealNodes when nfs is nil: the zero value of a
// struct with a NodeFS field acts on the real host.
func OrReal(nfs NodeFS) NodeFS {
	if nfs == nil {
		return RealNodes{}
	}
	return nfs
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// CopiesDir is where pre-start makes a container's own copies of its device
// nodes: <dev>/.nvidiaprep/<vmid>, on the host's /dev (devtmpfs: device
// nodes work there, where /run is mounted nodev; emptied at every boot).
func CopiesDir(dev string, vmid int) string {
	return filepath.Join(dev, ".nvidiaprep", strconv.Itoa(vmid))
}

// Owner is what a container's copies of its nodes get instead of the
// host's own group and mode: a host gid (for an unprivileged container, the
// group inside shifted by its id map), and a mode.
type Owner struct {
	GID  int    // -1: the host node's group
	Mode uint32 // 0: the host node's mode
}

// CopyNodes makes, in dir, a copy of each node (the same numbers, mode and
// owner, at dir/<Name>) and returns the nodes with their Path the copy's.
// A container given the copies, bind-mounted, shares no inode with the
// host's nodes: its root, privileged or not, can chmod, chown or
// touch what it sees, and the host's /dev and every other container see
// nothing of it. A node that is not the character device it should be is
// an error: it is not copied. as sets the copies' group and mode (the
// host's nodes stay as they are).
func CopyNodes(nfs NodeFS, dir string, nodes []Node, as Owner) ([]Node, error) {
	out := make([]Node, len(nodes))
	for i, n := range nodes {
		src := n.Path
		st, err := nfs.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("copying %s for the container: %w", src, err)
		}
		if !st.Is(n) {
			return nil, fmt.Errorf("copying %s for the container: it is not the character device %d:%d", src, n.Major, n.Minor)
		}
		if as.Mode != 0 {
			st.Perm = as.Mode
		}
		if as.GID >= 0 {
			st.GID = uint32(as.GID)
		}
		dst := filepath.Join(dir, n.Name)
		n.Path = dst
		out[i] = n
		// A copy as it should be (an earlier start's) is kept: a restart
		// costs a stat per node. One its container changed is made anew.
		if cur, err := nfs.Stat(dst); err == nil && cur.Is(n) && cur.Perm == st.Perm && cur.UID == st.UID && cur.GID == st.GID {
			continue
		}
		if err := nfs.Mknod(dst, n.Major, n.Minor, st.Perm); err != nil {
			return nil, fmt.Errorf("copying %s for the container: %w", src, err)
		}
		if st.UID != 0 || st.GID != 0 {
			if err := os.Lchown(dst, int(st.UID), int(st.GID)); err != nil {
				return nil, fmt.Errorf("copying %s for the container: %w", src, err)
			}
		}
	}
	return out, nil
}

// PruneCopies removes from dir (a container's CopiesDir) every copy of a
// node that is not in keep (by its Path), and dir itself when nothing is
// left: copies of nodes a container is no longer given (its GPUs taken
// away, or no driver) are neither mounted nor allowed, and would stay
// until the node reboots. The directory is nvidiaprep's alone; links in it
// are removed, never followed.
func PruneCopies(dir string, keep []Node) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
			return nil
		}
		if slices.ContainsFunc(keep, func(n Node) bool { return n.Path == p }) {
			return nil
		}
		if err := os.Remove(p); err != nil && !isNotExist(err) {
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("removing the copies of nodes no longer given from %s: %w", dir, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i]) // only when empty
	}
	return nil
}
