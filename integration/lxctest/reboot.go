package lxctest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// postStopHook stands in for Proxmox's LXC post-stop hook
// (pve-container's src/lxc-pve-poststop-hook), as far as a reboot from
// inside the container goes: with LXC_TARGET=reboot it writes the
// container's LXC config anew (here: the copy WriteGeneratedConfig kept,
// standing for update_lxc_config from /etc/pve/lxc/<vmid>.conf), leaves the
// reboot trigger file and exits 1, so that lxc stops the container instead
// of rebooting it. On any other stop it does nothing (CT.Stop runs the
// hookscript's post-stop itself).
const postStopHook = `#!/bin/sh
set -eu
[ "${LXC_TARGET:-}" = reboot ] || exit 0
dir=$(dirname "$LXC_CONFIG_FILE")
cp "$dir/config.generated" "$dir/config.regen"
mv "$dir/config.regen" "$dir/config"
: >"$dir/reboot"
exit 1
`

// postStopHookPath is where the bed keeps postStopHook.
func (b *Bed) postStopHookPath() string { return filepath.Join(b.Dir, "pve-poststop-hook") }

func (b *Bed) writePostStopHook() error {
	if err := os.WriteFile(b.postStopHookPath(), []byte(postStopHook), 0o755); err != nil {
		return fmt.Errorf("lxctest: %w", err)
	}
	return nil
}

// RebootFromInside reboots the running container from inside ("reboot"
// typed in it), which on Proxmox runs no hookscript: the post-stop hook
// writes the config anew and leaves the trigger file, lxc stops, and
// pve-container@<vmid>.service's stop wrapper restarts the unit, whose
// ExecStartPre= lines run before its lxc-start. unitPre is such a line's
// program, run as "<unitPre> <vmid>" with exactly env (nvidiaprep's drop-in
// runs nvidiaprep-unit-prestart), or "" for Proxmox's unit without a
// drop-in. A failing unitPre leaves the container stopped, as a failed
// ExecStartPre= fails the unit; its run is returned either way.
func (c *CT) RebootFromInside(unitPre string, env []string) (*HookRun, error) {
	if !c.Running() {
		return nil, fmt.Errorf("lxctest: container %d is not running", c.VMID)
	}
	// A reboot typed while systemd still boots can be lost (systemctl
	// cannot reach it yet, and the command's output goes nowhere): as on a
	// node, where the admin types it into a booted container, the boot
	// ends first.
	if c.initIsSystemd() {
		if err := c.WaitSystemd(time.Minute); err != nil {
			return nil, err
		}
	}
	trigger := filepath.Join(c.dir(), "reboot")
	before, _ := os.ReadFile(c.ConfigPath())
	// The stop is watched on the processes, not asked of LXC's monitor:
	// lxc-wait -s STOPPED talks to the monitor's socket, which goes away
	// during the very stop it waits for (it failed with EAGAIN).
	w, err := c.watchExit()
	if err != nil {
		return nil, err
	}
	defer w.close()
	// Detached: the command's own connection goes away with the container.
	if _, _, _, err := c.Exec("sh", "-c", "(sleep 0.2; reboot) >/dev/null 2>&1 &"); err != nil {
		return nil, err
	}
	if err := w.wait(60 * time.Second); err != nil {
		return nil, fmt.Errorf("lxctest: container %d did not stop after reboot: %w", c.VMID, err)
	}
	// The stop wrapper restarts the unit only when the trigger is there.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := os.Remove(trigger); err == nil {
			break
		} else if !os.IsNotExist(err) {
			return nil, fmt.Errorf("lxctest: container %d: %w", c.VMID, err)
		}
		if time.Now().After(deadline) {
			after, _ := os.ReadFile(c.ConfigPath())
			return nil, fmt.Errorf("lxctest: container %d stopped without the reboot trigger (config rewritten: %v)\n%s", c.VMID, string(before) != string(after), logErrors(c.LogPath()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var run *HookRun
	if unitPre != "" {
		run = c.runProgram(unitPre, env)
		if !run.OK() {
			return run, fmt.Errorf("lxctest: container %d: ExecStartPre %s failed (exit %d), the unit failed:\n%s", c.VMID, unitPre, run.ExitCode, run.Output)
		}
	}
	if err := c.lxcStart(); err != nil {
		return run, err
	}
	if err := c.lxc("lxc-wait", "-s", "RUNNING", "-t", "30"); err != nil {
		return run, fmt.Errorf("lxctest: container %d did not reach RUNNING after its reboot: %w", c.VMID, err)
	}
	return run, nil
}

// exitWatch holds pidfds of a running container's init and of its LXC
// monitor (the init's parent, lxc-start's daemon), whose exit ends a stop:
// the monitor runs the post-stop hook and removes the container's cgroups
// before it exits, so a new lxc-start finds nothing of the old run.
type exitWatch struct {
	vmid int
	fds  []int
	pids []int // init, monitor
}

func (c *CT) watchExit() (*exitWatch, error) {
	w := &exitWatch{vmid: c.VMID}
	pid := c.InitPID()
	if pid <= 0 {
		return nil, fmt.Errorf("lxctest: container %d is not running", c.VMID)
	}
	monitor, err := parentPID(pid)
	if err != nil {
		return nil, fmt.Errorf("lxctest: container %d: its init's parent: %w", c.VMID, err)
	}
	for _, p := range []int{pid, monitor} {
		fd, err := unix.PidfdOpen(p, 0)
		if err != nil {
			w.close()
			return nil, fmt.Errorf("lxctest: container %d: pidfd_open %d: %w", c.VMID, p, err)
		}
		w.fds = append(w.fds, fd)
		w.pids = append(w.pids, p)
	}
	// Still the same two processes once their pidfds are open.
	if p, err := parentPID(pid); err != nil || p != monitor {
		w.close()
		return nil, fmt.Errorf("lxctest: container %d: its init %d changed while it was watched", c.VMID, pid)
	}
	return w, nil
}

// wait waits until both processes have exited.
func (w *exitWatch) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i, fd := range w.fds {
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("its %s (pid %d) still runs after %v", [...]string{"init", "LXC monitor"}[i], w.pids[i], timeout)
			}
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return fmt.Errorf("poll: %w", err)
			}
			if n > 0 {
				break // exited
			}
		}
	}
	return nil
}

func (w *exitWatch) close() {
	for _, fd := range w.fds {
		unix.Close(fd)
	}
	w.fds = nil
}

// parentPID reads PPid from /proc/<pid>/status.
func parentPID(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("PPid:")); ok {
			return strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	return 0, errors.New("no PPid line")
}

// initIsSystemd tells whether the running container's init is systemd.
func (c *CT) initIsSystemd() bool {
	pid := c.InitPID()
	if pid <= 0 {
		return false
	}
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && filepath.Base(exe) == "systemd"
}
