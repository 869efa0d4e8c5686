package nvdev

import (
	"fmt"
	"path/filepath"
	"strconv"
)

// The NVIDIA driver's fixed minors of its control nodes, as nvidia-modprobe
// makes them; their majors are read from /proc/devices.
const (
	ctlMinor      = 255 // nvidiactl, on the nvidiactl (or nvidia) major
	modesetMinor  = 254 // nvidia-modeset, on the same major as nvidiactl
	uvmMinor      = 0   // nvidia-uvm, on the nvidia-uvm major
	uvmToolsMinor = 1   // nvidia-uvm-tools, on the nvidia-uvm major
)

// Kind says what a node is for, and so what its absence means.
type Kind int

const (
	KindControl Kind = iota // nvidiactl, nvidia-modeset: every container needs them
	KindUVM                 // nvidia-uvm, nvidia-uvm-tools: CUDA needs them
	KindGPU                 // nvidia<minor>: one GPU
	KindCap                 // nvidia-caps/nvidia-cap<minor>: a MIG capability
)

// Cap is one MIG capability node, as its access file in
// /proc/driver/nvidia/capabilities describes it.
type Cap struct {
	Minor uint32
	Mode  uint32 // e.g. 0o444
}

// Want is what decides which nodes a container needs, read once per
// command run: the majors from /proc/devices, whether nvidia_modeset is
// loaded, the GPUs the container is given and their MIG capabilities.
type Want struct {
	Majors  Majors
	Modeset bool
	GPUs    []GPU
	Caps    []Cap
}

// Expected is one node a container needs, with the numbers the driver
// registered for it.
type Expected struct {
	Node
	Kind Kind
	Mode uint32 // the mode to create it with
	// Registered is false when /proc/devices lists no major for the node
	// (its module is not loaded); Major is 0 then.
	Registered bool
	// Driver is the /proc/devices name its major comes from ("nvidiactl",
	// "nvidia", "nvidia-uvm", "nvidia-caps").
	Driver string
}

// ExpectedNodes is the one list of the device nodes a container needs, in
// this order: nvidiactl, nvidia-uvm, nvidia-uvm-tools, nvidia-modeset (when
// Modeset), nvidia<minor> for each GPU, then the MIG capabilities. Paths
// are joined onto dev. It reads nothing and creates nothing.
func ExpectedNodes(dev string, w Want) []Expected {
	ctl, ctlDriver := w.Majors["nvidiactl"], "nvidiactl"
	if _, ok := w.Majors["nvidiactl"]; !ok {
		ctl, ctlDriver = w.Majors["nvidia"], "nvidia"
	}
	uvm, hasUVM := w.Majors["nvidia-uvm"]
	gpu, hasGPU := w.Majors["nvidia"]
	caps, hasCaps := w.Majors["nvidia-caps"]
	out := []Expected{
		{Node: Node{Name: "nvidiactl", Major: ctl, Minor: ctlMinor}, Kind: KindControl, Registered: ctl != 0, Driver: ctlDriver},
		{Node: Node{Name: "nvidia-uvm", Major: uvm, Minor: uvmMinor}, Kind: KindUVM, Registered: hasUVM, Driver: "nvidia-uvm"},
		{Node: Node{Name: "nvidia-uvm-tools", Major: uvm, Minor: uvmToolsMinor}, Kind: KindUVM, Registered: hasUVM, Driver: "nvidia-uvm"},
	}
	if w.Modeset {
		out = append(out, Expected{Node: Node{Name: "nvidia-modeset", Major: ctl, Minor: modesetMinor}, Kind: KindControl, Registered: ctl != 0, Driver: ctlDriver})
	}
	for _, g := range w.GPUs {
		out = append(out, Expected{Node: Node{Name: "nvidia" + strconv.Itoa(g.Minor), Major: gpu, Minor: uint32(g.Minor)}, Kind: KindGPU, Registered: hasGPU && gpu != 0, Driver: "nvidia"})
	}
	for _, c := range w.Caps {
		out = append(out, Expected{Node: Node{Name: "nvidia-caps/nvidia-cap" + strconv.FormatUint(uint64(c.Minor), 10), Major: caps, Minor: c.Minor}, Kind: KindCap, Mode: c.Mode, Registered: hasCaps, Driver: "nvidia-caps"})
	}
	for i := range out {
		out[i].Path = filepath.Join(dev, out[i].Name)
		if out[i].Kind != KindCap {
			out[i].Mode = nodeMode
		}
	}
	return out
}

// Device returns the node's numbers as "major:minor".
func (n Node) Device() string { return fmt.Sprintf("%d:%d", n.Major, n.Minor) }
