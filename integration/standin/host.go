// Package standin builds stand-ins for what cannot exist on a machine without
// an NVIDIA GPU: the driver's view of the host (procfs, sysfs and /dev as the
// NVIDIA kernel module lays them out) and, later, the driver's .run file.
//
// Host imitates the files the NVIDIA kernel module publishes, as a real H100
// host (docs/gpu/) shows them:
//   - /proc/devices lines "195 nvidia", "195 nvidiactl", "<M> nvidia-uvm",
//     "<C> nvidia-caps";
//   - /proc/driver/nvidia/version ("NVRM version: ... <ver> ...");
//   - /proc/driver/nvidia/gpus/<pci>/information ("Device Minor:", "GPU UUID:",
//     "Bus Location:");
//   - /sys/module/nvidia/version;
//   - character nodes /dev/nvidiaN (195:N), /dev/nvidiactl (195:255),
//     /dev/nvidia-uvm (M:0), /dev/nvidia-uvm-tools (M:1), mode 0666.
//
// With no driver behind the majors, opening a node fails with ENXIO, which is
// how tests tell "the cgroup let it through" from "the cgroup refused" (EPERM).
package standin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"nvidiaprep/nvidiaprep/nvdev"
)

// GPU describes one stand-in GPU.
type GPU struct {
	PCIBusID string // "0000:01:00.0"
	UUID     string // "GPU-..."
	Minor    int    // device minor: /dev/nvidia<Minor>
	Model    string
}

// Host is a stand-in host tree rooted at Root, with Dev, Proc and Sys below it.
type Host struct {
	Root, Dev, Proc, Sys string
	// Nodes makes the device nodes; nil makes real ones with mknod (root
	// only). Unit tests that need no real node set a *FakeNodes and pass
	// it on to the code under test.
	Nodes nvdev.NodeFS
}

// NewHost creates the empty directories of a host tree under root.
func NewHost(root string) (*Host, error) {
	h := &Host{Root: root, Dev: filepath.Join(root, "dev"), Proc: filepath.Join(root, "proc"), Sys: filepath.Join(root, "sys")}
	for _, d := range []string{h.Dev, h.Proc, h.Sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("stand-in host: %w", err)
		}
	}
	// A host always has these, driver or not.
	if err := writeFile(filepath.Join(h.Proc, "devices"), "Character devices:\n  1 mem\n  4 tty\n  5 /dev/tty\n 10 misc\n136 pts\n\nBlock devices:\n  7 loop\n"); err != nil {
		return nil, err
	}
	return h, nil
}

// Driver is the state of a stand-in loaded driver.
type Driver struct {
	Version   string // "580.159.04"
	UVMMajor  int    // dynamic major of nvidia-uvm, e.g. 509
	CapsMajor int    // dynamic major of nvidia-caps; 0 for none
	GPUs      []GPU
	Modeset   bool // nvidia_modeset loaded (has /dev/nvidia-modeset 195:254)
}

// LoadDriver writes the procfs and sysfs files of a loaded driver.
func (h *Host) LoadDriver(d Driver) error {
	devs := "Character devices:\n  1 mem\n  4 tty\n  5 /dev/tty\n 10 misc\n136 pts\n195 nvidia\n195 nvidiactl\n"
	if d.UVMMajor > 0 {
		devs += fmt.Sprintf("%d nvidia-uvm\n", d.UVMMajor)
	}
	if d.CapsMajor > 0 {
		devs += fmt.Sprintf("%d nvidia-caps\n", d.CapsMajor)
	}
	devs += "\nBlock devices:\n  7 loop\n"
	files := map[string]string{
		filepath.Join(h.Proc, "devices"):               devs,
		filepath.Join(h.Proc, "driver/nvidia/version"): fmt.Sprintf("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  %s  Release Build  (stand-in)\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n", d.Version),
		filepath.Join(h.Sys, "module/nvidia/version"):  d.Version + "\n",
	}
	// Loaded modules as the stand-in module programs (kmod.sh) keep them:
	// sys/module/<m>/{version,refcnt}, proc/modules.
	files[filepath.Join(h.Sys, "module/nvidia/refcnt")] = "0\n"
	files[filepath.Join(h.Root, ".standin/uvm-major")] = fmt.Sprintf("%d\n", d.UVMMajor)
	if d.UVMMajor > 0 {
		files[filepath.Join(h.Sys, "module/nvidia_uvm/version")] = d.Version + "\n"
		files[filepath.Join(h.Sys, "module/nvidia_uvm/refcnt")] = "0\n"
	}
	if d.Modeset {
		files[filepath.Join(h.Sys, "module/nvidia_modeset/version")] = d.Version + "\n"
		files[filepath.Join(h.Sys, "module/nvidia_modeset/refcnt")] = "0\n"
	}
	for _, g := range d.GPUs {
		model := g.Model
		if model == "" {
			model = "NVIDIA H100 80GB HBM3 (stand-in)"
		}
		files[filepath.Join(h.Proc, "driver/nvidia/gpus", g.PCIBusID, "information")] = fmt.Sprintf(
			"Model: \t\t %s\nIRQ:   \t\t 0\nGPU UUID: \t %s\nVideo BIOS: \t 96.00.00.00.00\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t %s\nDevice Minor: \t %d\nGPU Excluded:\t No\n",
			model, g.UUID, g.PCIBusID, g.Minor)
	}
	for p, c := range files {
		if err := writeFile(p, c); err != nil {
			return err
		}
	}
	// The GPUs on the PCI bus, bound to nvidia (nouveau_is_present and the
	// stand-in modprobe read the driver links).
	for _, g := range d.GPUs {
		dev := filepath.Join(h.Sys, "bus/pci/devices", g.PCIBusID)
		if err := os.MkdirAll(dev, 0o755); err != nil {
			return fmt.Errorf("stand-in host: %w", err)
		}
		_ = os.Remove(filepath.Join(dev, "driver"))
		if err := os.Symlink("../../../bus/pci/drivers/nvidia", filepath.Join(dev, "driver")); err != nil {
			return fmt.Errorf("stand-in host: %w", err)
		}
	}
	return h.writeProcModules()
}

// UnloadDriver removes the driver's procfs and sysfs files, as after rmmod.
func (h *Host) UnloadDriver() error {
	for _, p := range []string{filepath.Join(h.Proc, "driver/nvidia"), filepath.Join(h.Sys, "module/nvidia"), filepath.Join(h.Sys, "module/nvidia_modeset"), filepath.Join(h.Sys, "module/nvidia_uvm"), filepath.Join(h.Sys, "module/nvidia_drm")} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("stand-in host: %w", err)
		}
	}
	if err := writeFile(filepath.Join(h.Proc, "devices"), "Character devices:\n  1 mem\n  4 tty\n\nBlock devices:\n  7 loop\n"); err != nil {
		return err
	}
	return h.writeProcModules()
}

// MakeNodes creates the driver's character device nodes through h.Nodes
// (real ones with mknod, root only, when nil): the GPUs' nodes, nvidiactl,
// the uvm pair and, with Modeset, nvidia-modeset. Which nodes, with which
// numbers, is nvdev.ExpectedNodes' answer for the driver d describes.
func (h *Host) MakeNodes(d Driver) error {
	majors := nvdev.Majors{"nvidia": 195, "nvidiactl": 195}
	if d.UVMMajor > 0 {
		majors["nvidia-uvm"] = uint32(d.UVMMajor)
	}
	gpus := make([]nvdev.GPU, len(d.GPUs))
	for i, g := range d.GPUs {
		gpus[i] = nvdev.GPU{Minor: g.Minor}
	}
	for _, e := range nvdev.ExpectedNodes(h.Dev, nvdev.Want{Majors: majors, Modeset: d.Modeset, GPUs: gpus}) {
		if !e.Registered {
			continue
		}
		if err := h.MakeNode(e.Name, int(e.Major), int(e.Minor), e.Mode); err != nil {
			return err
		}
	}
	return nil
}

// MakeNode creates one character device node below h.Dev (name:
// "nvidia-uvm") through h.Nodes, replacing what was there.
func (h *Host) MakeNode(name string, major, minor int, mode uint32) error {
	if h.Nodes == nil {
		return MakeNode(filepath.Join(h.Dev, name), major, minor, mode)
	}
	return h.Nodes.Mknod(filepath.Join(h.Dev, name), uint32(major), uint32(minor), mode)
}

// MakeNode creates one real character device node with mknod (root only),
// replacing what was there.
func MakeNode(path string, major, minor int, mode uint32) error {
	if err := (nvdev.RealNodes{}).Mknod(path, uint32(major), uint32(minor), mode); err != nil {
		return fmt.Errorf("stand-in node: %w (creating device nodes needs root)", err)
	}
	return nil
}

// FakeNodes is an nvdev.NodeFS for unit tests that need no real device
// node, and so no root: it records the numbers of each node it makes and
// leaves an empty regular file at its path, so that what only checks that
// a node exists finds it. Removing that file removes the node.
type FakeNodes struct {
	mu    sync.Mutex
	nodes map[string][2]uint32
}

// Stat implements nvdev.NodeFS: a path it made (and still there) is a
// character device with its numbers; anything else that exists is none.
func (f *FakeNodes) Stat(path string) (nvdev.DevStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nvdev.DevStat{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	mm, ok := f.nodes[path]
	if !ok {
		return nvdev.DevStat{}, nil
	}
	st := nvdev.DevStat{Char: true, Major: mm[0], Minor: mm[1], Perm: uint32(fi.Mode().Perm())}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.UID, st.GID = sys.Uid, sys.Gid
	}
	return st, nil
}

// Mknod implements nvdev.NodeFS.
func (f *FakeNodes) Mknod(path string, major, minor, mode uint32) error {
	_ = os.Remove(path) // a read-only one is replaced, not written
	if err := writeFile(path, ""); err != nil {
		return err
	}
	if err := os.Chmod(path, os.FileMode(mode)); err != nil {
		return fmt.Errorf("stand-in node %s: %w", path, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodes == nil {
		f.nodes = map[string][2]uint32{}
	}
	f.nodes[path] = [2]uint32{major, minor}
	return nil
}

// FreeMajor returns a character major in the dynamic range that the running
// kernel has not registered, so stand-in nodes with it reach no driver.
func FreeMajor(procDevices string, avoid ...int) (int, error) {
	b, err := os.ReadFile(procDevices)
	if err != nil {
		return 0, fmt.Errorf("stand-in major: %w", err)
	}
	used := map[int]bool{195: true}
	for _, a := range avoid {
		used[a] = true
	}
	chars := strings.SplitN(string(b), "Block devices:", 2)[0]
	for _, line := range strings.Split(chars, "\n") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(line), "%d", &n); err == nil {
			used[n] = true
		}
	}
	for m := 511; m >= 384; m-- {
		if !used[m] {
			return m, nil
		}
	}
	return 0, fmt.Errorf("stand-in major: no free character major in 384..511")
}

func writeFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("stand-in host: %w", err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("stand-in host: %w", err)
	}
	return nil
}

// CacheRun puts a stand-in .run of version into the tree's driver cache
// (cache/runs), under NVIDIA's file name.
func (h *Host) CacheRun(version string, o RunOptions) error {
	dir := filepath.Join(h.Root, "cache", "runs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	o.Version = version
	return BuildRun(filepath.Join(dir, RunFileName(version)), o)
}
