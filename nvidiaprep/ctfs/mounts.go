package ctfs

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of a process's mountinfo.
type Mount struct {
	Major, Minor uint32 // the file system's device (st_dev)
	Point        string // where it is mounted, as the process sees it
	FSType       string // "ext4", "fuse.sshfs", ...
}

// Mounts are a process's mounts, in mountinfo's order.
type Mounts []Mount

// maxMountinfo bounds a mountinfo read: a container can make many mounts,
// and 16 MiB is some 100000 of them.
const maxMountinfo = 16 << 20

// readMounts reads /proc/<pid>/mountinfo: the kernel writes it (mount
// points relative to that process's root, so a container init's lists its
// mounts as the container sees them) without asking any file system.
func readMounts(pid int) (Mounts, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/mountinfo"
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the container's mounts: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxMountinfo+1)); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if buf.Len() > maxMountinfo {
		return nil, fmt.Errorf("%s is larger than %d bytes: too many mounts to tell what a path crosses", path, maxMountinfo)
	}
	return parseMounts(buf.Bytes()), nil
}

// parseMounts parses mountinfo text (proc(5)): "id parent major:minor root
// point options [optional fields] - fstype source superoptions".
func parseMounts(text []byte) Mounts {
	var out Mounts
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+1 >= len(f) {
			continue
		}
		maj, min, _ := strings.Cut(f[2], ":")
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(min, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Mount{Major: uint32(ma), Minor: uint32(mi), Point: unescape(f[4]), FSType: f[sep+1]})
	}
	return out
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// plainFileSystems are the file systems, by mountinfo's type name, that
// the host reads a container's files on (fileSystems, by statfs magic).
var plainFileSystems = map[string]bool{
	"ext2": true, "ext3": true, "ext4": true, "xfs": true, "btrfs": true, "zfs": true,
	"tmpfs": true, "ramfs": true, "overlay": true, "f2fs": true, "squashfs": true,
	"erofs": true, "bcachefs": true,
}

// isFUSE tells whether a mountinfo type is a FUSE file system.
func isFUSE(fstype string) bool {
	return fstype == "fuse" || fstype == "fuseblk" || strings.HasPrefix(fstype, "fuse.") || strings.HasPrefix(fstype, "fuseblk.")
}

// Below lists the mounts at p or above it (each an ancestor of p, or p),
// shadowed ones included.
func (ms Mounts) Below(p string) Mounts {
	p = clean(p)
	var out Mounts
	for _, m := range ms {
		if m.Point == "/" || m.Point == p || strings.HasPrefix(p, m.Point+"/") {
			out = append(out, m)
		}
	}
	return out
}

// Unreadable finds a mount that p lies below (or at) whose file system
// holds no plain files: a path resolved literally would cross into it. A
// mount shadowed by a later one counts too: better refuse than guess which
// one a lookup meets.
func (ms Mounts) Unreadable(p string) (Mount, bool) {
	for _, m := range ms.Below(p) {
		if !plainFileSystems[m.FSType] {
			return m, true
		}
	}
	return Mount{}, false
}

// Dev is the mount's device number as the kernel names it in fusectl
// (MKDEV: major << 20 | minor).
func (m Mount) Dev() uint64 { return uint64(m.Major)<<20 | uint64(m.Minor) }
