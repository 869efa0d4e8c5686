package pve

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Runner runs a command and returns its combined output; an exit status
// other than 0 is an error. ExecRunner is the real one; tests record.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// Run implements Runner.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
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
