package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/hookself"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/nodeconf"
	"nvidiaprep/nvidiaprep/pve"
)

// host is what the admin commands reach outside the process; realHost wires
// the real ones and tests their stand-ins.
type host struct {
	getenv   func(string) (string, bool)
	lookPath func(string) (string, error)
	runner   hostcmd.Runner // runs pct, journalctl, dmesg
	now      func() time.Time
}

func realHost() host {
	return host{getenv: os.LookupEnv, lookPath: exec.LookPath, runner: hostcmd.Exec{}, now: time.Now}
}

func enableCmd(args []string, stdout, stderr io.Writer) int {
	return realHost().enable(args, stdout, stderr)
}

func disableCmd(args []string, stdout, stderr io.Writer) int {
	return realHost().disable(args, stdout, stderr)
}

// parseVMIDArgs parses "<vmid> [flags]" or "[flags] <vmid>".
func parseVMIDArgs(fs *flag.FlagSet, args []string) (int, error) {
	var rest []string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		rest = []string{args[0]}
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	rest = append(rest, fs.Args()...)
	if len(rest) != 1 {
		return 0, fmt.Errorf("want one vmid, got %d arguments", len(rest))
	}
	return config.ParseVMID(rest[0])
}

func (h host) enable(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nvidiaprep enable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	gpus := fs.String("gpus", "", "GPUs: comma-separated indexes, UUIDs or PCI bus ids, \"all\" or \"none\"")
	required := fs.Bool("required", false, "refuse to start the container without its GPU")
	install := fs.Bool("install", true, "install the matching user-space libraries into the container")
	vmid, err := parseVMIDArgs(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep enable: %v\nusage: nvidiaprep enable <vmid> [--gpus LIST] [--required] [--install=false]\n", err)
		return 2
	}
	var s nodeconf.Settings
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "gpus":
			sel := nodeconf.ParseGPUs(*gpus)
			s.GPUs = &sel
		case "required":
			s.Required = required
		case "install":
			s.Install = install
		}
	})
	sources := config.Sources(h.getenv)
	node := sources[1].Path
	if node == "" {
		fmt.Fprintf(stderr, "nvidiaprep enable: CT %d: %s is set to the empty string (no node file), so there is no file to record the choice in: unset it or name a file\n", vmid, config.EnvNode)
		return 1
	}
	sources[1].Optional = true // enable creates it
	cfg, err := config.LoadFiles(sources...)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep enable: CT %d: the configuration does not load, fix it first: %v\n", vmid, err)
		return 1
	}
	ct, err := readCT(cfg.Paths.PVE, vmid)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep enable: %v\n", err)
		return 1
	}
	// Proxmox allows one hookscript per guest: the admin's own is kept by
	// having nvidiaprep's hook run it first.
	if ct != nil && ct.Hookscript != "" && !ct.UsesHook() {
		if self, why := isHookItself(cfg.Paths, ct.Hookscript); self {
			// Recorded as the chain, it would run itself without end.
			fmt.Fprintf(stdout, "CT %d: its hookscript %s is nvidiaprep's hook under another name (%s): it is replaced, not kept as a chained hookscript\n", vmid, ct.Hookscript, why)
		} else {
			s.Chain = &ct.Hookscript
		}
	}
	ctx := context.Background()
	err = nodeconf.Edit(ctx, node, sources[0], func(text []byte) ([]byte, error) {
		return nodeconf.SetContainer(text, vmid, s, cfg.Container(vmid))
	})
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep enable: CT %d: %v\n", vmid, err)
		return 1
	}
	cfg, err = config.LoadFiles(sources...)
	if err != nil { // Edit checked this very load
		fmt.Fprintf(stderr, "nvidiaprep enable: CT %d: %v\n", vmid, err)
		return 1
	}
	fmt.Fprintf(stdout, "CT %d: %s; recorded in [containers.%d] of %s\n", vmid, describe(cfg.Container(vmid)), vmid, node)
	if s.Chain != nil {
		fmt.Fprintf(stdout, "CT %d: its own hookscript %s is kept: nvidiaprep's hook runs it first, in every phase (chain in [containers.%d]); `nvidiaprep disable %d` puts it back\n", vmid, *s.Chain, vmid, vmid)
	}
	ran, err := h.pct(ctx, stdout, pve.SetHookscript(vmid))
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep enable: CT %d: setting the hookscript failed: %v\n(is the nvidiaprep package installed? Its postinst links the hook as /var/lib/vz/snippets/%s.)\n", vmid, err, pve.HookName)
		return 1
	}
	if ran {
		fmt.Fprintf(stdout, "CT %d gets its GPUs at its next start (pct reboot %d, if it runs).\n", vmid, vmid)
	}
	return 0
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

func (h host) disable(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("nvidiaprep disable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vmid, err := parseVMIDArgs(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep disable: %v\nusage: nvidiaprep disable <vmid>\n", err)
		return 2
	}
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
				fmt.Fprintf(stderr, "nvidiaprep disable: CT %d: %v\n", vmid, err)
				return 1
			}
			if found {
				fmt.Fprintf(stdout, "CT %d: removed [containers.%d] from %s\n", vmid, vmid, node)
			}
		}
	}
	if cl := sources[0].Path; cl != "" {
		if cfg, err := config.LoadFiles(sources[0]); err == nil {
			if _, ok := cfg.Containers[vmid]; ok {
				fmt.Fprintf(stdout, "CT %d: the cluster file %s still has [containers.%d]; it applies on any node where the container has the hookscript\n", vmid, cl, vmid)
			}
		}
	}
	ct, err := readCT(pveDir, vmid)
	switch {
	case errors.Is(err, errNoCT):
		fmt.Fprintf(stdout, "CT %d is not on this node: no hookscript to remove.\n", vmid)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "nvidiaprep disable: CT %d: %v\n", vmid, err)
		return 1
	case ct != nil && ct.Hookscript == "":
		fmt.Fprintf(stdout, "CT %d has no hookscript.\n", vmid)
		return 0
	case ct != nil && !ct.UsesHook():
		fmt.Fprintf(stdout, "CT %d's hookscript is %s, not nvidiaprep's: left alone.\n", vmid, ct.Hookscript)
		return 0
	}
	argv := pve.DeleteHookscript(vmid)
	if chain != "" {
		argv = pve.SetHookscriptTo(vmid, chain)
	}
	ran, err := h.pct(ctx, stdout, argv)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep disable: CT %d: %s failed: %v\n", vmid, strings.Join(argv, " "), err)
		return 1
	}
	if ran && chain != "" {
		fmt.Fprintf(stdout, "CT %d: its own hookscript %s is its hookscript again; it starts without nvidiaprep from its next start on.\n", vmid, chain)
	} else if ran {
		fmt.Fprintf(stdout, "CT %d starts without nvidiaprep from its next start on.\n", vmid)
	}
	return 0
}

// pct runs a pct command, or, where pct is missing (not a Proxmox VE node),
// prints it for the admin to run; ran tells which.
func (h host) pct(ctx context.Context, stdout io.Writer, argv []string) (ran bool, err error) {
	if _, err := h.lookPath(argv[0]); err != nil {
		fmt.Fprintf(stdout, "pct is not installed here (not a Proxmox VE node?); on the node, run:\n  %s\n", strings.Join(argv, " "))
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := h.runner.Run(ctx, hostcmd.Command{Name: argv[0], Args: argv[1:]}); err != nil {
		return false, err
	}
	fmt.Fprintf(stdout, "ran: %s\n", strings.Join(argv, " "))
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
		parts = append(parts, "libraries installed")
	} else {
		parts = append(parts, "libraries not installed")
	}
	return strings.Join(parts, ", ")
}
