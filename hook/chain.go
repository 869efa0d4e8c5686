package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"nvidiaprep/nvidiaprep/hookself"
	"nvidiaprep/nvidiaprep/pve"
)

// chainTimeout bounds one run of a container's own hookscript. Proxmox
// waits for a hookscript without limit; a hung one would hold the
// container's config lock (and, at boot, every later guest) for ever.
const chainTimeout = 10 * time.Minute

// runChained runs the container's own hookscript (the [containers.N] chain
// key) as Proxmox would have run it alone: the file checked as Proxmox
// checks it, the same two arguments, its output in the task log. It returns
// nil when it exited 0.
func runChained(ctx context.Context, pveDir, volid string, vmid int, phase string, stdout, stderr io.Writer) error {
	path, err := pve.CheckHookscript(pveDir, volid)
	if err != nil {
		return fmt.Errorf("its own hookscript %s, which nvidiaprep runs first: %w", volid, err)
	}
	// By what the file is, not by its name: a link to the hook, a copy or
	// another build of it would run itself.
	if self, why, err := hookself.Is(path, "/proc/self/exe", hookself.Installed); err == nil && self {
		return fmt.Errorf("its own hookscript %s (%s) is nvidiaprep's hook itself (%s): it would run itself without end, so it is not run; delete chain from [containers.%d] (the hook is already the container's hookscript)", volid, path, why, vmid)
	}
	ctx, cancel := context.WithTimeout(ctx, chainTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, strconv.Itoa(vmid), phase)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A hook that this script starts, however (a wrapper that runs the
	// hook), knows it and refuses to recurse.
	cmd.Env = hookself.AddMark(os.Environ(), vmid)
	// Its own process group, so that a timeout ends what it started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("its own hookscript %s (%s) did not finish %s within %v and was killed", volid, path, phase, chainTimeout)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("its own hookscript %s (%s) failed in %s: %w", volid, path, phase, err)
	}
	if err != nil {
		return fmt.Errorf("running its own hookscript %s (%s): %w", volid, path, err)
	}
	return nil
}
