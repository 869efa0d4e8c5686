// Command nvidiaprep-unit-prestart gives a container its GPUs on the paths
// where Proxmox runs no hookscript (a reboot from inside the container: the
// post-stop hook writes the LXC config anew and the unit restarts). The
// package's drop-ins for pve-container@ and pve-container-debug@ run it as
// ExecStartPre=, so pre-start is applied before every lxc-start
// (docs/how-it-works.md).
//
// It sits on every container's start, so it is built without cgo, reads
// only [paths] of the configuration and the container's Proxmox config, and
// never fails a container that is not nvidiaprep's. A container whose
// hookscript is nvidiaprep's gets pre-start (without the chained hookscript)
// unless the block was written moments ago, and pre-start's exit status.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/pve"
)

// freshBlock is how recent a block must be to count as this start's: the
// hookscript's pre-start writes it and Proxmox's systemctl start follows
// within moments; an older block may describe another driver.
const freshBlock = time.Minute

func main() {
	dir := ""
	if self, err := os.Executable(); err == nil {
		dir = filepath.Dir(self)
	}
	os.Exit(run(os.Args[1:], os.Stderr, time.Now(), dir, execHook))
}

// execHook replaces this process with the hook's pre-start.
func execHook(hook string, argv []string) error {
	return syscall.Exec(hook, argv, os.Environ())
}

// run decides; hookDir holds the hookscript program (this program's own
// directory), which exec replaces the process with.
func run(args []string, stderr io.Writer, now time.Time, hookDir string, exec func(string, []string) error) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: nvidiaprep-unit-prestart <vmid>\n(ExecStartPre= of pve-container@.service: applies nvidiaprep's pre-start where Proxmox runs no hookscript)\n")
		return 0 // a container's start is never held up by a wrong line in a unit
	}
	vmid, err := config.ParseVMID(args[0])
	if err != nil {
		return 0 // not a Proxmox container
	}
	// The configuration's other tables are the hook's to load: a file
	// that does not load is reported there, for nvidiaprep's containers.
	paths, cfgErr := config.LoadPaths(os.LookupEnv)
	ct, err := pve.ReadCT(paths.PVE, vmid)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "nvidiaprep: %s\n", ctmsg.Sprintf(vmid, "cannot read its Proxmox config, so nvidiaprep's pre-start is not applied: %v", err))
		}
		return 0
	}
	if !ct.UsesHook() {
		return 0
	}
	if cfgErr == nil && blockIsFresh(paths.LXCConfig(vmid), now) {
		return 0
	}
	hook, err := hookPath(hookDir)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep: %s\n", ctmsg.Text(vmid, err))
		return 1
	}
	// The hook reports a broken configuration itself, as in pct start.
	err = exec(hook, []string{hook, "--no-chain", args[0], "pre-start"})
	fmt.Fprintf(stderr, "nvidiaprep: %s\n", ctmsg.Sprintf(vmid, "running %s: %v; reinstall the nvidiaprep package", hook, err))
	return 1
}

// blockIsFresh tells whether the LXC config holds nvidiaprep's block,
// written less than freshBlock ago: this start's hookscript has run.
func blockIsFresh(path string, now time.Time) bool {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return false
	}
	if age := now.Sub(st.ModTime()); age < 0 || age > freshBlock {
		return false
	}
	text, err := io.ReadAll(io.LimitReader(f, lxcconf.MaxSize))
	return err == nil && lxcconf.HasBlock(text)
}

// hookPath is the hookscript program in dir.
func hookPath(dir string) (string, error) {
	p := filepath.Join(dir, pve.HookName)
	if ok, _ := fsutil.IsExecutable(p); !ok {
		return "", fmt.Errorf("the hookscript program %s is missing, so the container would start without its GPUs; reinstall the nvidiaprep package", p)
	}
	return p, nil
}
