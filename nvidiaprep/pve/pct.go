package pve

import (
	"strconv"
)

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
