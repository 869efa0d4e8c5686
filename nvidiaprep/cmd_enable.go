package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/hookself"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/nodeconf"
	"nvidiaprep/nvidiaprep/pve"
	"nvidiaprep/nvidiaprep/status"
)

// host is what the admin commands reach outside the process; realHost wires
// the real ones and tests their stand-ins.
type host struct {
	getenv   func(string) (string, bool)
	lookPath func(string) (string, error)
	runner   hostcmd.Runner // runs pct, journalctl, dmesg
	now      func() time.Time
	euid     func() int                  // nil: os.Geteuid
	probeCT  func(vmid int) status.Probe // nil: liblxc's look into the container
}

func realHost() host {
	return host{getenv: os.LookupEnv, lookPath: exec.LookPath, runner: hostcmd.Exec{}, now: time.Now}
}

// enableRun is `nvidiaprep enable` (flags: commands.go).
func (h host) enableRun(c *cli.Call) int {
	vmid, err := config.ParseVMID(c.Args[0])
	if err != nil {
		return c.Fail(cli.ExitUsage, "%v", err)
	}
	out := newChangeReport(c, vmid)
	var s nodeconf.Settings
	if c.Set("gpus") {
		sel := gpusel.ParseFlag(c.String("gpus"))
		s.GPUs = &sel
	}
	if c.Set("required") {
		v := c.Bool("required")
		s.Required = &v
	}
	if c.Set("install") {
		v := c.Bool("install")
		s.Install = &v
	}
	sources := config.Sources(h.getenv)
	node := sources[1].Path
	if node == "" {
		return out.failCT(1, fmt.Errorf("%s is set to the empty string (no node file), so there is no file to record the choice in: unset it or name a file", config.EnvNode))
	}
	sources[1].Optional = true // enable creates it
	cfg, err := config.LoadFiles(sources...)
	if err != nil {
		return out.failCT(1, fmt.Errorf("the configuration does not load, fix it first: %w", err))
	}
	ct, err := readCT(cfg.Paths.PVE, vmid)
	if err != nil {
		return out.failCT(1, err)
	}
	// Proxmox allows one hookscript per guest: the admin's own is kept by
	// having nvidiaprep's hook run it first.
	if ct != nil && ct.Hookscript != "" && !ct.UsesHook() {
		if self, why := isHookItself(cfg.Paths, ct.Hookscript); self {
			// Recorded as the chain, it would run itself without end.
			out.sayCT("its hookscript %s is nvidiaprep's hook under another name (%s): it is replaced, not kept as a chained hookscript", ct.Hookscript, why)
		} else {
			s.Chain = &ct.Hookscript
		}
	}
	if err := checkSelection(cfg, vmid, s, c.Bool("force"), c.Stderr); err != nil {
		return out.failCT(1, fmt.Errorf("%w; nothing was changed", err))
	}
	ctx := context.Background()
	if c.Bool("dry-run") {
		return h.enableDryRun(ctx, c, cfg, vmid, node, s, ct != nil && c.Bool("adopt"))
	}
	err = nodeconf.Edit(ctx, node, sources[0], func(text []byte) ([]byte, error) {
		return nodeconf.SetContainer(text, vmid, s, cfg.Container(vmid))
	})
	if err != nil {
		return out.failCT(1, err)
	}
	out.file(node, fmt.Sprintf("containers.%d", vmid), "written")
	cfg, err = config.LoadFiles(sources...)
	if err != nil { // Edit checked this very load
		return out.failCT(1, err)
	}
	out.doc.Container = settingsOf(cfg.Container(vmid))
	out.sayCT("%s; recorded in [containers.%d] of %s", describe(cfg.Container(vmid)), vmid, node)
	if s.Chain != nil {
		out.sayCT("its own hookscript %s is kept: nvidiaprep's hook runs it first, in every phase (chain in [containers.%d]); `nvidiaprep disable %d` puts it back", *s.Chain, vmid, vmid)
	}
	ran, err := h.pct(ctx, out, pve.SetHookscript(vmid))
	if err != nil {
		return out.failCT(1, fmt.Errorf("setting the hookscript failed: %w\n(is the nvidiaprep package installed? Its postinst links the hook as /var/lib/vz/snippets/%s.)", err, pve.HookName))
	}
	if c.Bool("adopt") && ct != nil {
		if err := adopt(ctx, c.Stdout, cfg, vmid, false); err != nil {
			return out.failCT(1, err)
		}
	}
	if ran {
		out.say("%s gets its GPUs at its next start (pct reboot %d, if it runs).", ctmsg.Name(vmid), vmid)
	}
	return out.done()
}

// isHookItself tells whether a hookscript volume's file is nvidiaprep's
// hook by what it is (a link, a hard link, a copy, another build), below
// [paths] root; why says how it was recognised.
func isHookItself(p config.Paths, volid string) (bool, string) {
	storages, err := pve.ReadStorage(p.PVE)
	if err != nil {
		return false, ""
	}
	path, err := pve.FindHookscript(storages, p.Root, volid)
	if err != nil {
		return false, ""
	}
	self, why, err := hookself.Is(filepath.Join(p.Root, path), filepath.Join(p.Root, hookself.Installed))
	return err == nil && self, why
}

// enableDryRun prints what enable would do, and does nothing.
func (h host) enableDryRun(ctx context.Context, c *cli.Call, cfg config.Config, vmid int, node string, s nodeconf.Settings, adoptLines bool) int {
	old, err := fsutil.ReadRegular(node, config.MaxFileSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return c.Fail(cli.ExitFail, "%s", ctmsg.Text(vmid, err))
	}
	text, err := nodeconf.SetContainer(old, vmid, s, cfg.Container(vmid))
	if err == nil {
		err = printDryRun(c.Stdout, cfg, vmid, node, text)
	}
	if err != nil {
		return c.Fail(cli.ExitFail, "%s", ctmsg.Text(vmid, err))
	}
	fmt.Fprintf(c.Stdout, "would run: %s\n", strings.Join(pve.SetHookscript(vmid), " "))
	if adoptLines {
		if err := adopt(ctx, c.Stdout, cfg, vmid, true); err != nil {
			return c.Fail(cli.ExitFail, "%s", ctmsg.Text(vmid, err))
		}
	}
	fmt.Fprintln(c.Stdout, "Nothing was changed (--dry-run).")
	return cli.ExitOK
}

// disableRun is `nvidiaprep disable`.
func (h host) disableRun(c *cli.Call) int {
	vmid, err := config.ParseVMID(c.Args[0])
	if err != nil {
		return c.Fail(cli.ExitUsage, "%v", err)
	}
	out := newChangeReport(c, vmid)
	sources := config.Sources(h.getenv)
	ctx := context.Background()
	// The hookscript the container had before enable, to put back, and
	// where Proxmox's configuration is; a node file not there gives none.
	chain, pveDir := "", config.Default().Paths.PVE
	present := slices.Clone(sources)
	present[1].Optional = true
	if cfg, err := config.LoadFiles(present...); err == nil {
		chain, pveDir = cfg.Container(vmid).Chain, cfg.Paths.PVE
	}
	if node := sources[1].Path; node != "" {
		if _, err := os.Stat(node); err == nil {
			found := false
			err := nodeconf.Edit(ctx, node, sources[0], func(text []byte) ([]byte, error) {
				out, ok, err := nodeconf.RemoveContainer(text, vmid)
				found = ok
				return out, err
			})
			if err != nil {
				return out.failCT(1, err)
			}
			if found {
				out.file(node, fmt.Sprintf("containers.%d", vmid), "removed")
				out.sayCT("removed [containers.%d] from %s", vmid, node)
			}
		}
	}
	if cl := sources[0].Path; cl != "" {
		if cfg, err := config.LoadFiles(sources[0]); err == nil {
			if _, ok := cfg.Containers[vmid]; ok {
				out.sayCT("the cluster file %s still has [containers.%d]; it applies on any node where the container has the hookscript", cl, vmid)
			}
		}
	}
	ct, err := readCT(pveDir, vmid)
	switch {
	case errors.Is(err, errNoCT):
		out.say("%s is not on this node: no hookscript to remove.", ctmsg.Name(vmid))
		return out.done()
	case err != nil:
		return out.failCT(1, err)
	case ct != nil && ct.Hookscript == "":
		out.say("%s has no hookscript.", ctmsg.Name(vmid))
		return out.done()
	case ct != nil && !ct.UsesHook():
		out.say("%s's hookscript is %s, not nvidiaprep's: left alone.", ctmsg.Name(vmid), ct.Hookscript)
		return out.done()
	}
	argv := pve.DeleteHookscript(vmid)
	if chain != "" {
		argv = pve.SetHookscriptTo(vmid, chain)
	}
	ran, err := h.pct(ctx, out, argv)
	if err != nil {
		return out.failCT(1, fmt.Errorf("%s failed: %w", strings.Join(argv, " "), err))
	}
	if ran && chain != "" {
		out.sayCT("its own hookscript %s is its hookscript again; it starts without nvidiaprep from its next start on.", chain)
	} else if ran {
		out.say("%s starts without nvidiaprep from its next start on.", ctmsg.Name(vmid))
	}
	return out.done()
}

// pct runs a pct command, or, where pct is missing (not a Proxmox VE node),
// prints it for the admin to run; ran tells which.
func (h host) pct(ctx context.Context, out *changeReport, argv []string) (ran bool, err error) {
	if _, err := h.lookPath(argv[0]); err != nil {
		out.command(argv, false)
		out.say("pct is not installed here (not a Proxmox VE node?); on the node, run:\n  %s", strings.Join(argv, " "))
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := h.runner.Run(ctx, hostcmd.Command{Name: argv[0], Args: argv[1:]}); err != nil {
		return false, err
	}
	out.command(argv, true)
	out.say("ran: %s", strings.Join(argv, " "))
	return true, nil
}

// errNoCT means this Proxmox node has no such container.
var errNoCT = errors.New("no such container on this node")

// readCT reads the container's Proxmox config below dir (/etc/pve); nil
// when this is no Proxmox node (no <dir>/lxc).
func readCT(dir string, vmid int) (*pve.CT, error) {
	if _, err := os.Stat(dir + "/lxc"); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	ct, err := pve.ReadCT(dir, vmid)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s): run this on the node that has it", errNoCT, pve.CTPath(dir, vmid))
	}
	if err != nil {
		return nil, err
	}
	return &ct, nil
}

// describe says what a container's configuration gives it.
func describe(c config.Container) string {
	var parts []string
	switch {
	case c.GPUs.All:
		parts = append(parts, "all GPUs")
	case len(c.GPUs.Selectors) == 0:
		parts = append(parts, "no GPU")
	default:
		parts = append(parts, "GPUs "+strings.Join(c.GPUs.Selectors, ", "))
	}
	if c.Required {
		parts = append(parts, "required")
	}
	if c.Install {
		parts = append(parts, "libraries installed at its next start")
	} else {
		parts = append(parts, "libraries not installed")
	}
	return strings.Join(parts, ", ")
}
