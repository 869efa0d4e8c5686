package prestart

import (
	"errors"

	"nvidiaprep/nvidiaprep/devplan"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// Preview returns the block that pre-start would write for req on the
// host as it is now (markers included), without making a node or a
// directory or writing anything: `enable --dry-run` shows it. The nodes
// are the container's copies that pre-start makes at the start; MIG
// capabilities, read at the start, are left out. An error says why the
// container would get no GPU (no driver loaded, a selector this node does
// not have).
func Preview(h Host, req Request) ([]string, error) {
	if req.GPUs.None() {
		return nil, nil
	}
	version, err := nvdev.LoadedVersion(h.Sys, h.Proc)
	if err != nil {
		return nil, err
	}
	majors, err := nvdev.ReadMajors(h.Proc)
	if err != nil {
		return nil, err
	}
	all, err := h.GPUs.GPUs()
	if err != nil {
		return nil, err
	}
	gpus, err := nvdev.Select(all, req.GPUs)
	var unmatched *nvdev.UnmatchedError
	if err != nil && !errors.As(err, &unmatched) {
		return nil, err
	}
	if len(gpus) == 0 && err != nil {
		return nil, err
	}
	if len(gpus) == 0 {
		return nil, errors.New("this node has no GPU")
	}
	var nodes []nvdev.Node
	want := nvdev.Want{Majors: majors, Modeset: nvdev.ModesetLoaded(h.Sys), GPUs: gpus}
	for _, e := range nvdev.ExpectedNodes(nvdev.CopiesDir(h.Dev, req.VMID), want) {
		if e.Registered && e.Kind != nvdev.KindCap {
			nodes = append(nodes, e.Node)
		}
	}
	p := devplan.ForNodes(nodes)
	if c := h.DriverCache; req.Install && c.Dir != "" {
		m, err := devplan.ReadOnlyOverlay(driverrun.MountPoint, c.DriversDir(), c.EmptyLayer())
		if err != nil {
			return nil, err
		}
		p.Mounts = append(p.Mounts, m)
	}
	lines := append([]string{lxcconf.Begin, header(version, gpus, nil)}, p.Lines()...)
	return append(lines, lxcconf.End), nil
}
