package ctfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// defaultFuseConnections is where fusectl shows the kernel's FUSE
// connections (systemd mounts it: sys-fs-fuse-connections.mount).
const defaultFuseConnections = "/sys/fs/fuse/connections"

// abortFUSE is the kernel's escape hatch for a read stuck on a FUSE server
// that does not answer: writing to /sys/fs/fuse/connections/<dev>/abort
// ends every request of that connection (they fail with ENOTCONN), and
// with them the stuck reader. It is called only once a reader has outlived
// its deadline and SIGKILL. Only the container's own FUSE mounts are
// aborted, never one the host has mounted too (lxcfs, which every
// container shares): those at or above p, or, when p reached the server
// through a link, those with requests waiting for an answer. It says what
// it did, "" for nothing.
func abortFUSE(pid int, p, dir string) string {
	if dir == "" {
		dir = defaultFuseConnections
	}
	mounts, err := readMounts(pid)
	if err != nil {
		return ""
	}
	host, _ := readMounts(os.Getpid())
	var own Mounts
	for _, m := range mounts {
		if isFUSE(m.FSType) && !slices.ContainsFunc(host, func(h Mount) bool { return h.Major == m.Major && h.Minor == m.Minor }) {
			own = append(own, m)
		}
	}
	suspects := own.Below(p)
	if len(suspects) == 0 {
		for _, m := range own {
			if waiting(dir, m) > 0 {
				suspects = append(suspects, m)
			}
		}
	}
	var done, failed []string
	for _, m := range suspects {
		conn := filepath.Join(dir, strconv.FormatUint(m.Dev(), 10))
		err := writeAbort(filepath.Join(conn, "abort"))
		switch {
		case err == nil:
			done = append(done, fmt.Sprintf("%s (%s, connection %s)", m.Point, m.FSType, conn))
		case errors.Is(err, os.ErrNotExist):
			failed = append(failed, fmt.Sprintf("its FUSE mount %s could not be aborted: %s does not exist (is fusectl mounted there? `mount -t fusectl none %s`)", m.Point, conn, dir))
		default:
			failed = append(failed, fmt.Sprintf("aborting its FUSE mount %s failed: %v", m.Point, err))
		}
	}
	var says []string
	if len(done) > 0 {
		says = append(says, "the container's FUSE connection of "+strings.Join(done, ", ")+" was aborted (its server did not answer the host)")
	}
	return strings.Join(append(says, failed...), "; ")
}

// waiting is the number of requests of m's connection that wait for an
// answer (fusectl's "waiting"), 0 when it cannot be read.
func waiting(dir string, m Mount) int {
	b, err := os.ReadFile(filepath.Join(dir, strconv.FormatUint(m.Dev(), 10), "waiting"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// writeAbort writes to a fusectl abort file, which must exist.
func writeAbort(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("1")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
