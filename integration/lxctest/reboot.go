package lxctest

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
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
	trigger := filepath.Join(c.dir(), "reboot")
	before, _ := os.ReadFile(c.ConfigPath())
	// Detached: the command's own connection goes away with the container.
	if _, _, _, err := c.Exec("sh", "-c", "(sleep 0.2; reboot) >/dev/null 2>&1 &"); err != nil {
		return nil, err
	}
	if err := c.lxc("lxc-wait", "-s", "STOPPED", "-t", "60"); err != nil {
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
