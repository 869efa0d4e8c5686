// Package cdispec makes the Container Device Interface spec that lets Docker
// and Podman inside a container use the GPUs nvidiaprep gave it, with no
// NVIDIA container toolkit: `podman run --device nvidia.com/gpu=0 ...`.
//
// It uses the CDI project's own types and validation, not NVIDIA's nvcdi,
// which discovers devices itself and emits hooks that need the toolkit: the
// spec lists exactly the nodes pre-start gave and the files the tree's
// manifest installed, each bound at its own path, so the nested container's
// loader finds the libraries in its default directories (docs/docker-cdi.md).
package cdispec

import (
	"bytes"
	"fmt"
	"nvidiaprep/nvidiaprep/installstate"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	"tags.cncf.io/container-device-interface/pkg/cdi"
	specs "tags.cncf.io/container-device-interface/specs-go"
)

// Kind is the CDI kind of the devices: vendor nvidia.com, class gpu, as
// NVIDIA's own specs name them, so that commands written for them work.
const Kind = "nvidia.com/gpu"

// Version is the CDI version written: the newest Debian 12's podman 4.3.1
// reads (its CDI library knows 0.5.0 and rejects fields it does not know),
// and the first that allows device names that start with a digit ("0").
const Version = "0.5.0"

// GPU is one GPU the container was given.
type GPU struct {
	UUID     string // "GPU-..."
	PCIBusID string // its position on the host's bus: the order of indexes inside
	Node     string // its node inside: "/dev/nvidia1"
	// Extra are its other nodes inside: its DRM nodes (/dev/dri/card1,
	// /dev/dri/renderD129), a MIG instance's capabilities.
	Extra []string
}

// MIG is one MIG device the container was given.
type MIG struct {
	Name  string   // "<gpu>:<gi>:<ci>", <gpu> the parent's index inside the container
	UUID  string   // "MIG-..."; "" when unknown
	Nodes []string // the parent's node and the instance's two nvidia-caps nodes, inside
}

// Input is what a spec is made of.
type Input struct {
	// MIGs are the MIG devices given (by selector or UUID).
	MIGs []MIG
	// Key identifies the inputs (Key's result); it is written into the
	// spec's first line, which post-start compares.
	Key string
	// GPUs are the GPUs the container was given.
	GPUs []GPU
	// Nodes are the device nodes every GPU needs inside (nvidiactl,
	// nvidia-uvm, ...), as paths inside the container.
	Nodes []string
	// Files are the driver's libraries, their links and its programs as
	// installed, paths inside the container.
	Files []string
	// GID, when set, is the group the device nodes get inside a nested
	// container; nil leaves it to the runtime (root).
	GID *uint32
}

// build returns the spec: one device per GPU by its index inside the
// container ("0", "1", ... in PCI bus order, as nvidia-smi numbers the GPUs
// it sees there) and by its UUID, and "all". The nodes every GPU needs and
// the driver's files are the spec's own edits, applied with any of its
// devices.
func build(in Input) (*specs.Spec, error) {
	if len(in.GPUs) == 0 && len(in.MIGs) == 0 {
		return nil, fmt.Errorf("no GPU: a spec needs at least one device")
	}
	gpus := append([]GPU(nil), in.GPUs...)
	sort.SliceStable(gpus, func(i, j int) bool { return gpus[i].PCIBusID < gpus[j].PCIBusID })
	s := &specs.Spec{Version: Version, Kind: Kind}
	var all []*specs.DeviceNode
	for i, g := range gpus {
		nodes := func() []*specs.DeviceNode {
			var l []*specs.DeviceNode
			for _, p := range append([]string{g.Node}, g.Extra...) {
				l = append(l, &specs.DeviceNode{Path: p, GID: in.GID})
			}
			return l
		}
		all = append(all, nodes()...)
		s.Devices = append(s.Devices, specs.Device{Name: strconv.Itoa(i), ContainerEdits: specs.ContainerEdits{DeviceNodes: nodes()}})
		if g.UUID != "" {
			s.Devices = append(s.Devices, specs.Device{Name: g.UUID, ContainerEdits: specs.ContainerEdits{DeviceNodes: nodes()}})
		}
	}
	for _, m := range in.MIGs {
		nodes := func() []*specs.DeviceNode {
			var l []*specs.DeviceNode
			for _, p := range m.Nodes {
				l = append(l, &specs.DeviceNode{Path: p, GID: in.GID})
			}
			return l
		}
		all = append(all, nodes()...)
		s.Devices = append(s.Devices, specs.Device{Name: m.Name, ContainerEdits: specs.ContainerEdits{DeviceNodes: nodes()}})
		if m.UUID != "" {
			s.Devices = append(s.Devices, specs.Device{Name: m.UUID, ContainerEdits: specs.ContainerEdits{DeviceNodes: nodes()}})
		}
	}
	s.Devices = append(s.Devices, specs.Device{Name: "all", ContainerEdits: specs.ContainerEdits{DeviceNodes: dedupe(all)}})
	for _, n := range in.Nodes {
		s.ContainerEdits.DeviceNodes = append(s.ContainerEdits.DeviceNodes, &specs.DeviceNode{Path: n, GID: in.GID})
	}
	files := append([]string(nil), in.Files...)
	sort.Strings(files)
	for _, f := range files {
		if !path.IsAbs(f) {
			return nil, fmt.Errorf("the driver's file %q is not an absolute path", f)
		}
		s.ContainerEdits.Mounts = append(s.ContainerEdits.Mounts, &specs.Mount{
			HostPath: f, ContainerPath: f, Options: []string{"ro", "nosuid", "nodev", "bind"}})
	}
	return s, nil
}

// Render returns the spec as the file nvidiaprep writes: the header line
// with the key, then the spec in YAML, checked with the CDI project's own
// validation (as Podman and Docker load it) and against Version.
func Render(in Input) ([]byte, error) {
	s, err := build(in)
	if err != nil {
		return nil, err
	}
	body, err := yaml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("the CDI spec: %w", err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", installstate.SpecHeader(in.Key))
	b.WriteString("# Written by nvidiaprep: the GPUs this container was given and the NVIDIA driver's files as installed.\n")
	b.WriteString("# It is rewritten when the GPUs or the driver change; edits are lost. Devices: nvidia.com/gpu=0, =<UUID>, =all.\n")
	b.Write(body)
	if err := validate(b.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// validate loads data as Podman and Docker do (the CDI library's
// ReadSpec: known fields only, names, edits, version) and checks that it
// needs no CDI version newer than Version.
func validate(data []byte) error {
	dir, err := os.MkdirTemp("", "nvidiaprep-cdi-")
	if err != nil {
		return fmt.Errorf("checking the CDI spec: %w", err)
	}
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "nvidia.yaml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return fmt.Errorf("checking the CDI spec: %w", err)
	}
	s, err := cdi.ReadSpec(p, 0)
	if err != nil {
		return fmt.Errorf("the CDI spec is invalid: %w", err)
	}
	min, err := specs.MinimumRequiredVersion(s.Spec)
	if err != nil {
		return fmt.Errorf("the CDI spec: %w", err)
	}
	if !atMost(min, Version) {
		return fmt.Errorf("the CDI spec needs CDI %s, newer than %s (what Debian 12's podman reads)", min, Version)
	}
	return nil
}

// dedupe keeps the first of each node path: "all" holds a parent GPU once.
func dedupe(nodes []*specs.DeviceNode) []*specs.DeviceNode {
	seen := map[string]bool{}
	var out []*specs.DeviceNode
	for _, n := range nodes {
		if !seen[n.Path] {
			seen[n.Path] = true
			out = append(out, n)
		}
	}
	return out
}

// atMost compares dotted versions a <= b.
func atMost(a, b string) bool {
	pa, pb := strings.Split(strings.TrimPrefix(a, "v"), "."), strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) <= len(pb)
}
