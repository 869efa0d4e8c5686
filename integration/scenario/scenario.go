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
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/record"
)

// BuildHook builds the hookscript and, beside it, the nvidiaprep program
// (which runs the provisioning worker) and the container units'
// ExecStartPre= program (UnitPreStart) into dir, as the package installs
// them, and returns the hook's path. moduleRoot is the repository root.
func BuildHook(moduleRoot, dir string) (string, error) {
	for _, b := range [][3]string{
		{"nvidiaprep-hook", "./hook", "CGO_ENABLED=0"},
		{"nvidiaprep", "./nvidiaprep", "CGO_CFLAGS=-Wno-deprecated-declarations"},
		{"nvidiaprep-unit-prestart", "./hook/unitprestart", "CGO_ENABLED=0"},
	} {
		if err := GoBuild(moduleRoot, filepath.Join(dir, b[0]), b[1], b[2]); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "nvidiaprep-hook"), nil
}

// UnitPreStart is the ExecStartPre= program of nvidiaprep's drop-in for
// pve-container@.service, built beside the hook.
func (n *Node) UnitPreStart() string {
	return filepath.Join(filepath.Dir(n.Hook), "nvidiaprep-unit-prestart")
}

// PVEDir stands for the node's /etc/pve.
func (n *Node) PVEDir() string { return filepath.Join(n.Host.Root, "pve") }

// SetHookscript writes container vmid's Proxmox config
// (<PVEDir>/lxc/<vmid>.conf) with nvidiaprep's hookscript, as
// `pct set <vmid> --hookscript local:snippets/nvidiaprep-hook` does.
func (n *Node) SetHookscript(vmid int) error {
	p := filepath.Join(n.PVEDir(), "lxc", fmt.Sprintf("%d.conf", vmid))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, []byte("arch: amd64\nhookscript: local:snippets/nvidiaprep-hook\nostype: debian\n"), 0o644)
}

// GoBuild builds package pkg of the module into out, with extra environment.
func GoBuild(moduleRoot, out, pkg string, env ...string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return nil
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
pve = %q

%s`, n.Bed.LXCPath, n.Host.Dev, n.Host.Proc, n.Host.Sys, filepath.Join(root, "cache"), filepath.Join(root, "state"), n.PVEDir(), extra)
	return os.WriteFile(n.Config, []byte(cfg), 0o644)
}

// Env is the hook's environment on this node: the config, no cluster file.
func (n *Node) Env() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIAPREP_CONFIG=" + n.Config, "NVIDIAPREP_CLUSTER_CONFIG="}
}

// CacheRun puts a stand-in .run of version into the node's driver cache.
func (n *Node) CacheRun(version string, o standin.RunOptions) error {
	return n.Host.CacheRun(version, o)
}

// SwitchDriver loads another driver version on the node, as after a host
// driver upgrade and reboot: same GPUs and nodes, new version.
func (n *Node) SwitchDriver(version string) error {
	n.Driver.Version = version
	return n.Host.LoadDriver(n.Driver)
}

// StateDir is the node's nvidiaprep state directory.
func (n *Node) StateDir() string { return filepath.Join(n.Host.Root, "state") }

// WorkerLog is the provisioning worker's log of a container on a node
// without systemd.
func (n *Node) WorkerLog(vmid int) string {
	b, _ := os.ReadFile(filepath.Join(n.StateDir(), "log", fmt.Sprintf("%d.log", vmid)))
	return string(b)
}

// WaitProvisioned waits until the host record of vmid shows a finished run
// that started after since, and returns it.
func (n *Node) WaitProvisioned(vmid int, since time.Time, timeout time.Duration) (record.Provision, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, ok, err := record.Load(n.StateDir(), vmid)
		if err != nil {
			return p, err
		}
		if ok && !p.Started.Before(since) && p.Outcome != record.Running {
			return p, nil
		}
		if time.Now().After(deadline) {
			return p, fmt.Errorf("CT %d: no finished provisioning after %v (record: %+v)\nworker log:\n%s", vmid, timeout, p, n.WorkerLog(vmid))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sh runs a shell command inside the container and returns its stdout and
// stderr together, trimmed, and its exit code.
func Sh(ct *lxctest.CT, script string) (string, int, error) {
	out, errOut, code, err := ct.Exec("sh", "-c", script)
	return strings.TrimSpace(out + errOut), code, err
}
