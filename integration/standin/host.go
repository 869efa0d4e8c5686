// Package standin builds stand-ins for what cannot exist on a machine without
// an NVIDIA GPU: the driver's view of the host (procfs, sysfs and /dev as the
// NVIDIA kernel module lays them out) and, later, the driver's .run file.
//
// Host imitates the files the NVIDIA kernel module publishes, following
// shared/reference/nvidia.md and a real H100 host:
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

	"golang.org/x/sys/unix"
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
	if d.Modeset {
		files[filepath.Join(h.Sys, "module/nvidia_modeset/version")] = d.Version + "\n"
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
	return nil
}

// UnloadDriver removes the driver's procfs and sysfs files, as after rmmod.
func (h *Host) UnloadDriver() error {
	for _, p := range []string{filepath.Join(h.Proc, "driver/nvidia"), filepath.Join(h.Sys, "module/nvidia"), filepath.Join(h.Sys, "module/nvidia_modeset")} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("stand-in host: %w", err)
		}
	}
	return writeFile(filepath.Join(h.Proc, "devices"), "Character devices:\n  1 mem\n  4 tty\n\nBlock devices:\n  7 loop\n")
}

// MakeNodes creates the driver's character device nodes with mknod (root
// only): the GPUs' nodes, nvidiactl, the uvm pair and, with Modeset, nvidia-modeset.
func (h *Host) MakeNodes(d Driver) error {
	nodes := map[string][2]int{"nvidiactl": {195, 255}}
	for _, g := range d.GPUs {
		nodes[fmt.Sprintf("nvidia%d", g.Minor)] = [2]int{195, g.Minor}
	}
	if d.UVMMajor > 0 {
		nodes["nvidia-uvm"] = [2]int{d.UVMMajor, 0}
		nodes["nvidia-uvm-tools"] = [2]int{d.UVMMajor, 1}
	}
	if d.Modeset {
		nodes["nvidia-modeset"] = [2]int{195, 254}
	}
	for name, mm := range nodes {
		if err := MakeNode(filepath.Join(h.Dev, name), mm[0], mm[1], 0o666); err != nil {
			return err
		}
	}
	return nil
}

// MakeNode creates one character device node, replacing what was there.
func MakeNode(path string, major, minor int, mode uint32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("stand-in node %s: %w", path, err)
	}
	_ = os.Remove(path)
	if err := unix.Mknod(path, unix.S_IFCHR|mode, int(unix.Mkdev(uint32(major), uint32(minor)))); err != nil {
		return fmt.Errorf("stand-in node %s (%d:%d): %w (creating device nodes needs root)", path, major, minor, err)
	}
	return os.Chmod(path, os.FileMode(mode)) // mknod honours the umask
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
