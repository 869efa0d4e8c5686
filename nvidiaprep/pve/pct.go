package pve

import (
	"context"
	"strconv"

	"nvidiaprep/nvidiaprep/hostcmd"
)

// Runner runs a command and returns its combined output; an exit status
// other than 0 is an error (a *hostcmd.ExitError from ExecRunner).
// ExecRunner is the real one; tests record.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with hostcmd.Exec, in nvidiaprep's own
// environment (an admin's command, or a unit's).
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	res, err := hostcmd.Exec{}.Run(ctx, hostcmd.Command{Name: name, Args: args})
	return []byte(res.Output), err
}

// SetHookscript is the pct command that makes nvidiaprep's hook vmid's
// hookscript; DeleteHookscript the one that removes it.
func SetHookscript(vmid int) []string {
	return SetHookscriptTo(vmid, HookVolume)
}

// SetHookscriptTo makes volid vmid's hookscript.
func SetHookscriptTo(vmid int, volid string) []string {
	return []string{"pct", "set", strconv.Itoa(vmid), "--hookscript", volid}
}

// DeleteHookscript removes a container's hookscript.
func DeleteHookscript(vmid int) []string {
	return []string{"pct", "set", strconv.Itoa(vmid), "--delete", "hookscript"}
}
