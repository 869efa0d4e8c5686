// Package scenario sets up what a real-container scenario needs around the
// lxctest bed: the built nvidiaprep binaries, a stand-in GPU host tree and a
// node configuration that points every nvidiaprep path into the bed. The
// integration tests and the demo share it.
package scenario

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/standin"
)

// BuildHook builds the hookscript binary into dir and returns its path.
// moduleRoot is the repository root.
func BuildHook(moduleRoot, dir string) (string, error) {
	out := filepath.Join(dir, "nvidiaprep-hook")
	cmd := exec.Command("go", "build", "-o", out, "./hook")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_CFLAGS=-Wno-deprecated-declarations")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the hook: %w\n%s", err, b)
	}
	return out, nil
}

// ModuleRoot finds the repository root above the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Node is a simulated Proxmox node: a bed of real containers, a stand-in
// NVIDIA host tree and the node's nvidiaprep configuration.
type Node struct {
	Bed    *lxctest.Bed
	Host   *standin.Host
	Driver standin.Driver
	Config string // the node's nvidiaprep.toml
	Hook   string // the hookscript binary
}

// TwoGPUs is a driver with two stand-in GPUs and a dynamic uvm major that
// the running kernel has not registered.
func TwoGPUs(version string) (standin.Driver, error) {
	uvm, err := standin.FreeMajor("/proc/devices")
	if err != nil {
		return standin.Driver{}, err
	}
	return standin.Driver{Version: version, UVMMajor: uvm, GPUs: []standin.GPU{
		{PCIBusID: "0000:01:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", Minor: 0},
		{PCIBusID: "0000:41:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000001", Minor: 1},
	}}, nil
}

// NewNode makes the stand-in host tree below the bed, with the driver
// loaded and its nodes created when d has a version.
func NewNode(bed *lxctest.Bed, hook string, d standin.Driver) (*Node, error) {
	root := filepath.Join(filepath.Dir(bed.LXCPath), "host")
	h, err := standin.NewHost(root)
	if err != nil {
		return nil, err
	}
	n := &Node{Bed: bed, Host: h, Driver: d, Hook: hook, Config: filepath.Join(root, "nvidiaprep.toml")}
	if d.Version != "" {
		if err := h.LoadDriver(d); err != nil {
			return nil, err
		}
		if err := h.MakeNodes(d); err != nil {
			return nil, err
		}
	}
	return n, n.WriteConfig("")
}

// WriteConfig writes the node's configuration: [paths] into the bed and
// the host tree, then extra (TOML text such as container tables).
func (n *Node) WriteConfig(extra string) error {
	root := n.Host.Root
	cfg := fmt.Sprintf(`# nvidiaprep test node
[paths]
lxc = %q
dev = %q
proc = %q
sys = %q
cache = %q
state = %q

%s`, n.Bed.LXCPath, n.Host.Dev, n.Host.Proc, n.Host.Sys, filepath.Join(root, "cache"), filepath.Join(root, "state"), extra)
	return os.WriteFile(n.Config, []byte(cfg), 0o644)
}

// Env is the hook's environment on this node: the config, no cluster file.
func (n *Node) Env() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIAPREP_CONFIG=" + n.Config, "NVIDIAPREP_CLUSTER_CONFIG="}
}

// Sh runs a shell command inside the container and returns its stdout and
// stderr together, trimmed, and its exit code.
func Sh(ct *lxctest.CT, script string) (string, int, error) {
	out, errOut, code, err := ct.Exec("sh", "-c", script)
	return strings.TrimSpace(out + errOut), code, err
}
