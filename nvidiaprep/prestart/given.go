package prestart

import (
	"strconv"
	"strings"
)

// Given is what a start gave a container, read back from pre-start's block
// in the LXC config (the block is what lxc-start bound, so it is the truth
// of that start): the worker's CDI spec names exactly these.
type Given struct {
	Version string
	// GPUs are the host's GPUs given, by NVML index and PCI bus id, in
	// host order (header's "GPUs 0=0000:01:00.0 ...").
	GPUs []GivenGPU
	// MIGs are the MIG devices given (header's "MIG 0:1:0@0=MIG-...").
	MIGs []GivenMIG
	// Nodes are the device nodes bound into the container, as paths inside
	// it ("/dev/nvidiactl", "/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap3").
	Nodes []string
}

// GivenMIG is one MIG device a container was given.
type GivenMIG struct {
	Name  string // "<gpu>:<gi>:<ci>" as on the host
	Minor int    // the parent GPU's device minor
	UUID  string // "" when the MIG cache did not know it
}

// GivenGPU is one GPU a container was given.
type GivenGPU struct {
	HostIndex int
	PCIBusID  string
}

// ReadGiven parses the block's lines (lxcconf.Block); an empty block gives
// the zero Given: no GPU.
func ReadGiven(block []string) Given {
	var g Given
	for _, l := range block {
		if rest, ok := strings.CutPrefix(l, "# driver "); ok {
			version, gpus, _ := strings.Cut(rest, "; GPUs ")
			gpus, migs, _ := strings.Cut(gpus, "; MIG ")
			g.Version = strings.TrimSpace(version)
			for _, f := range strings.Fields(migs) {
				id, uuid, _ := strings.Cut(f, "=")
				name, minor, _ := strings.Cut(id, "@")
				if n, err := strconv.Atoi(minor); err == nil {
					g.MIGs = append(g.MIGs, GivenMIG{Name: name, Minor: n, UUID: uuid})
				}
			}
			for _, f := range strings.Fields(gpus) {
				i, pci, ok := strings.Cut(f, "=")
				n, err := strconv.Atoi(i)
				if ok && err == nil {
					g.GPUs = append(g.GPUs, GivenGPU{HostIndex: n, PCIBusID: pci})
				}
			}
			continue
		}
		v, ok := strings.CutPrefix(l, "lxc.mount.entry = ")
		if !ok {
			continue
		}
		// Device binds only: the driver cache's overlay (dev/.nvidiaprep/...)
		// is no device.
		f := strings.Fields(v)
		if len(f) < 4 || f[2] != "none" || !strings.HasPrefix(f[1], "dev/") || strings.HasPrefix(f[1], "dev/.") {
			continue
		}
		g.Nodes = append(g.Nodes, "/"+f[1])
	}
	return g
}
