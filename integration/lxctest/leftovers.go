package lxctest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A test process that ends without its cleanups (killed, or go test's
// -timeout, which panics) leaves its containers running, and a monitor
// killed with SIGKILL leaves its container's cgroups behind, empty: LXC
// removes them only when its monitor sees the container stop. Either makes
// every later start of that vmid on the machine fail. The bed's watchdog
// stops the containers of a test process that died; NewContainer removes
// the empty cgroups.

// cgroupDirs are where LXC makes container vmid's cgroups
// (lxc.cgroup.dir.container = lxc/<vmid>, lxc.cgroup.dir.monitor =
// lxc.monitor/<vmid>): in the cgroup2 hierarchy of a hybrid layout, which
// the machine mounts at /sys/fs/cgroup/unified, or of a pure one.
func cgroupDirs(vmid int) []string {
	var out []string
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		for _, sub := range []string{"lxc", "lxc.monitor"} {
			out = append(out, filepath.Join(root, sub, strconv.Itoa(vmid)))
		}
	}
	return out
}

// clearLeftoverCgroups removes the empty cgroups that a container vmid,
// killed without its monitor's cleanup, left; it fails when a process
// still runs in one: a container with this vmid runs elsewhere.
func clearLeftoverCgroups(vmid int) error {
	for _, dir := range cgroupDirs(vmid) {
		events, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("lxctest: container %d: cgroup %s: %w", vmid, dir, err)
		}
		if slices.Contains(strings.Split(string(events), "\n"), "populated 1") {
			return fmt.Errorf("lxctest: container %d: cgroup %s has processes: a container with this vmid runs elsewhere on this machine (its monitor: `pgrep -af 'lxc monitor.* %d$'`; stop it with lxc-stop -k -n %d -P <its bed>/lxc)", vmid, dir, vmid, vmid)
		}
		if err := removeCgroup(dir); err != nil {
			return fmt.Errorf("lxctest: container %d: removing the empty cgroup %s that a killed container left: %w", vmid, dir, err)
		}
	}
	return nil
}

// removeCgroup removes an empty cgroup and the cgroups below it, deepest
// first (a cgroup directory goes with rmdir, its files with it).
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.Reverse(dirs)
	for _, d := range dirs {
		if err := unix.Rmdir(d); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("rmdir %s: %w", d, err)
		}
	}
	return nil
}

// watchdogScript waits until the process $1 (the bed's owner) has ended,
// then kills every container of the bed whose -P path is $2.
const watchdogScript = `tail --pid="$1" -f /dev/null
for c in "$2"/*/config; do
	[ -f "$c" ] || continue
	n=${c%/config}
	lxc-stop -k -n "${n##*/}" -P "$2" >/dev/null 2>&1
done
`

// startWatchdog starts the bed's watchdog in a session of its own, so that
// a signal to the test's process group does not end it: when this process
// ends without Close (killed, or a test timeout), it kills the bed's
// containers, whose monitors then remove their cgroups.
func (b *Bed) startWatchdog() error {
	cmd := exec.Command("sh", "-c", watchdogScript, "sh", strconv.Itoa(os.Getpid()), b.LXCPath)
	cmd.Dir = "/"
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("lxctest: starting the bed's watchdog: %w", err)
	}
	go cmd.Wait()
	b.watchdog = cmd.Process.Pid
	return nil
}

// stopWatchdog ends the watchdog and its tail (its session's process
// group): Close has stopped the containers.
func (b *Bed) stopWatchdog() {
	if b.watchdog > 0 {
		unix.Kill(-b.watchdog, unix.SIGKILL)
		b.watchdog = 0
	}
}
