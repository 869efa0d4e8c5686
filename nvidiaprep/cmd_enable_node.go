package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/cfgcheck"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/devplan"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nodeconf"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/prestart"
	"nvidiaprep/nvidiaprep/pve"
)

// checkSelection checks enable's choice against this node before anything
// is written: no GPU cannot be required; a GPU listed twice, or one the
// node does not have, is refused, the latter unless force (a table meant
// for another node). Where the node lists no GPU (no driver loaded), the
// selectors cannot be checked, and warn says so.
func checkSelection(cfg config.Config, vmid int, s nodeconf.Settings, force bool, warn io.Writer) error {
	c := cfg.Container(vmid)
	if s.GPUs != nil {
		c.GPUs = *s.GPUs
	}
	if s.Required != nil {
		c.Required = *s.Required
	}
	if c.GPUs.None() && c.Required {
		return errors.New("no GPU with required: there is nothing to require; give it GPUs, or leave out --required (--required=false)")
	}
	if s.GPUs == nil || c.GPUs.All {
		return nil
	}
	for i, sel := range c.GPUs.Selectors {
		if slices.Contains(c.GPUs.Selectors[:i], sel) {
			return fmt.Errorf("GPU %q is listed twice: list it once", sel)
		}
	}
	gpus, err := cfgcheck.NodeGPUs(cfg.Paths)
	if err != nil || len(gpus) == 0 {
		why := "no GPU is listed on this node (is the NVIDIA driver loaded?)"
		if err != nil {
			why = err.Error()
		}
		fmt.Fprintf(warn, "nvidiaprep enable: %s\n", ctmsg.Sprintf(vmid, "the GPUs %s are not checked against this node: %s", strings.Join(c.GPUs.Selectors, ", "), why))
		return nil
	}
	err = cfgcheck.Selectors(gpus, c.GPUs)
	var unmatched *nvdev.UnmatchedError
	switch {
	case errors.As(err, &unmatched) && force:
		fmt.Fprintf(warn, "nvidiaprep enable: %s\n", ctmsg.Sprintf(vmid, "%v; recorded anyway (--force): on this node it starts without them", err))
		return nil
	case errors.As(err, &unmatched):
		return fmt.Errorf("%w; give GPUs of this node, or --force to record a table meant for another node", err)
	case err != nil:
		return err
	}
	return nil
}

// previewBlock is the block pre-start would write for the container at
// its next start, from the node as it is now, or why it would get none.
func previewBlock(cfg config.Config, vmid int, c config.Container) ([]string, error) {
	p := cfg.Paths
	h := prestart.Host{LXCConfig: p.LXCConfig(vmid), Dev: p.Dev, Proc: p.Proc, Sys: p.Sys,
		GPUs: nvdev.ProcGPUs{Proc: p.Proc}, DriverCache: driverrun.Cache{Dir: p.Cache}, PVE: p.PVE}
	req := prestart.Request{VMID: vmid, GPUs: c.GPUs, Required: c.Required, Install: c.Install, Strict: c.Strict}
	return prestart.Preview(h, req)
}

// printDryRun says what enable would write, and writes nothing: the
// container's table as the node file would hold it, and the block its
// next start would get.
func printDryRun(stdout io.Writer, cfg config.Config, vmid int, node string, text []byte) error {
	table := tableText(text, vmid)
	fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "%s would hold:", node))
	for _, l := range table {
		fmt.Fprintf(stdout, "  %s\n", l)
	}
	cand, err := loadWithNode(cfg, node, text)
	if err != nil {
		return err
	}
	block, err := previewBlock(cand, vmid, cand.Container(vmid))
	switch {
	case err != nil:
		fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "at its next start it would get no GPU here: %v", err))
	case len(block) == 0:
		fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "at its next start it gets no GPU (none chosen): no block"))
	default:
		fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "at its next start, pre-start would write into %s (the node as it is now; MIG capabilities are added then):", cfg.Paths.LXCConfig(vmid)))
		for _, l := range block {
			fmt.Fprintf(stdout, "  %s\n", l)
		}
	}
	return nil
}

// loadWithNode loads the configuration with text as the node file.
func loadWithNode(cfg config.Config, node string, text []byte) (config.Config, error) {
	dir, err := os.MkdirTemp("", "nvidiaprep-dry-run-")
	if err != nil {
		return config.Config{}, err
	}
	defer os.RemoveAll(dir)
	cand := filepath.Join(dir, filepath.Base(node))
	if err := os.WriteFile(cand, text, 0o600); err != nil {
		return config.Config{}, err
	}
	files := []config.File{}
	for _, p := range cfg.Files {
		if p != node {
			files = append(files, config.File{Path: p})
		}
	}
	return config.LoadFiles(append(files, config.File{Path: cand})...)
}

// tableText is the [containers.vmid] table's lines in a node file's text.
func tableText(text []byte, vmid int) []string {
	header := "[containers." + strconv.Itoa(vmid) + "]"
	var out []string
	in := false
	for _, l := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == header || strings.HasPrefix(t, header+" ") || strings.HasPrefix(t, header+"#"):
			in = true
		case in && strings.HasPrefix(t, "["):
			in = false
		}
		if in {
			out = append(out, l)
		}
	}
	for len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" {
		out = out[:len(out)-1]
	}
	return out
}

// adopt removes, from the container's Proxmox config, the hand-written
// NVIDIA lines that nvidiaprep supersedes: it shows them first (a diff:
// line number and line), then removes them under Proxmox's config lock,
// every other line byte for byte; with dry, it shows them only.
func adopt(ctx context.Context, stdout io.Writer, cfg config.Config, vmid int, dry bool) error {
	path := pve.CTPath(cfg.Paths.PVE, vmid)
	text, err := fsutil.ReadRegular(path, lxcconf.MaxSize)
	if err != nil {
		return fmt.Errorf("--adopt: %w", err)
	}
	ct := pve.ParseCT(vmid, path, text)
	devices := devplan.Passthroughs(ct.Devices)
	majors, err := nvdev.ReadMajors(cfg.Paths.Proc)
	if err != nil {
		majors = nil // only what is NVIDIA's by name or major 195
	}
	lines := devplan.Adoptable(ct.LXC, devices, majors)
	if len(lines) == 0 {
		fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "%s has no hand-written NVIDIA lines: nothing to adopt", path))
		return nil
	}
	raw := strings.Split(string(text), "\n")
	verb := "removing"
	if dry {
		verb = "would remove"
	}
	fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "%s the hand-written NVIDIA lines that nvidiaprep supersedes from %s:", verb, path))
	for _, n := range lines {
		fmt.Fprintf(stdout, "  -%d: %s\n", n, strings.TrimRight(raw[n-1], "\r"))
	}
	if dry {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pve.ConfigLockTimeout)
	defer cancel()
	if err := pve.RemoveLines(ctx, cfg.Paths.PVE, cfg.Paths.Root, vmid, text, lines); err != nil {
		return fmt.Errorf("%w; nothing was removed", err)
	}
	fmt.Fprintln(stdout, ctmsg.Sprintf(vmid, "removed %d line(s); every other line is as it was", len(lines)))
	return nil
}
