package lxctest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// startScript runs in a new, private mount namespace. It makes
// /sys/fs/cgroup a lone cgroup2 mount (unless it already is one), mounts the
// container's root file system at its rootfs directory and starts the
// container daemonized. The namespace lives on in LXC's monitor and the
// container and goes away with them, taking the mounts along.
//
// Arguments: lxcpath name logfile rootfs-dir kind(overlay|bind) src-or-lower upper work
const startScript = `set -eu
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
	for m in $(awk '$3 == "cgroup" { print $2 }' /proc/self/mounts); do umount "$m"; done
	if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
	umount /sys/fs/cgroup
	mount -t cgroup2 none /sys/fs/cgroup
fi
case "$5" in
overlay) mount -t overlay overlay -o "lowerdir=$6,upperdir=$7,workdir=$8" "$4" ;;
bind) mount --bind "$6" "$4" ;;
esac
exec lxc-start -n "$2" -P "$1" -d -o "$3" -l INFO
`

// lxcStart starts the container with lxc-start -d from a pure cgroup v2
// mount namespace (see startScript).
func (c *CT) lxcStart() error {
	kind, src := "overlay", c.disk.lower
	if c.disk.copy != "" {
		kind, src = "bind", c.disk.copy
	}
	// The script's output goes to a file, not a pipe: the daemonized
	// monitor must not keep us waiting for the pipe to close.
	outPath := filepath.Join(c.Bed.diskDir(c.VMID), "lxc-start.out")
	out, err := os.Create(outPath)
	if err != nil {
		return fmt.Errorf("lxctest: container %d: %w", c.VMID, err)
	}
	defer out.Close()
	if err := os.Remove(c.LogPath()); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("lxctest: container %d: %w", c.VMID, err)
	}
	cmd := exec.Command("sh", "-c", startScript, "sh", c.Bed.LXCPath, strconv.Itoa(c.VMID), c.LogPath(),
		filepath.Join(c.dir(), "rootfs"), kind, src, c.disk.upper, c.disk.work)
	cmd.Stdout, cmd.Stderr = out, out
	// Go makes every mount in the new namespace private before the exec.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Run(); err != nil {
		msg, _ := os.ReadFile(outPath)
		return fmt.Errorf("lxctest: container %d: lxc-start failed: %w\n%s%s", c.VMID, err, msg, logErrors(c.LogPath()))
	}
	return nil
}

// logErrors returns the ERROR lines of an LXC log file.
func logErrors(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var sb strings.Builder
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.Contains(s.Text(), " ERROR ") {
			sb.WriteString(s.Text() + "\n")
		}
	}
	return sb.String()
}
