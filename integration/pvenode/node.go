// Package pvenode runs a Proxmox VE 9-like node in a box for the integration
// tests: a privileged Debian 13 (trixie) container of the lxctest bed that
// boots systemd, has Debian 13's LXC 6.0 and runs guest containers nested in
// it, started the way Proxmox starts them. Options.Root = RootSid makes it a
// Debian unstable node with LXC 7.0, what Proxmox VE 9.2 ships.
//
// The node has the project's stand-ins (files/, written in its own words,
// following pve-container and pve-guest-common): pct (start [--debug],
// stop, shutdown, reboot, set --hookscript/--delete hookscript, config),
// pve-container@.service and pve-container-debug@.service with their stop
// wrapper, LXC pre-start and post-stop hooks, one generator of
// /var/lib/lxc/<vmid>/config from /etc/pve/lxc/<vmid>.conf (a symlink to
// /etc/pve/nodes/<node>/lxc, as on Proxmox) and a "local" dir storage with
// snippets. nvidiaprep is installed into it from its .deb with apt, and its
// configuration points [paths] dev, proc, sys and cache at a stand-in GPU
// host tree (package standin) that the test keeps on the host side and the
// node sees at /srv/host.
//
// Guests' root file systems are overlays over the cached trees (bind-mounted
// read-only at /srv/cache), their writable layers in /var/lib/vz/images,
// which is a host directory, so overlayfs can use it.
package pvenode

import (
	"embed"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/standin"
)

//go:embed files
var files embed.FS

// RootTrixie, RootBookworm and RootSid are the cached trees of
// integration/setup.sh; nodes boot RootTrixie (LXC 6.0) or RootSid (LXC 7.0).
const (
	RootTrixie   = "rootfs-trixie"
	RootBookworm = "rootfs-bookworm"
	RootSid      = "rootfs-sid"
)

// Paths inside the node.
const (
	HostTree = "/srv/host"  // the stand-in GPU host tree
	CacheDir = "/srv/cache" // the bed's root file system cache, read-only
	DebDir   = "/srv/deb"   // the .deb to install
	Images   = "/var/lib/vz/images"
)

// install says where each file of files/ goes in the node, and its mode.
var install = []struct {
	src, dst string
	mode     os.FileMode
}{
	{"lib.sh", "/usr/share/pve-standin/lib.sh", 0o644},
	{"gen-lxc-config", "/usr/share/pve-standin/gen-lxc-config", 0o755},
	{"pct", "/usr/sbin/pct", 0o755},
	{"lxc-pve-prestart-hook", "/usr/share/lxc/hooks/lxc-pve-prestart-hook", 0o755},
	{"lxc-pve-poststop-hook", "/usr/share/lxc/hooks/lxc-pve-poststop-hook", 0o755},
	{"pve-container-stop-wrapper", "/usr/share/lxc/pve-container-stop-wrapper", 0o755},
	{"pve-container@.service", "/usr/lib/systemd/system/pve-container@.service", 0o644},
	{"pve-container-debug@.service", "/usr/lib/systemd/system/pve-container-debug@.service", 0o644},
	{"01-pve.conf", "/usr/share/lxc/config/common.conf.d/01-pve.conf", 0o644},
	{"01-pve-userns.conf", "/usr/share/lxc/config/userns.conf.d/01-pve.conf", 0o644},
	{"storage.cfg", "/etc/pve/storage.cfg", 0o644},
}

// Options describe a node.
type Options struct {
	Name string // node name, e.g. "pve1"
	VMID int    // the node container's id on the host bed
	Deb  string // the nvidiaprep .deb to install with apt; "" for none
	Root string // the node's tree: RootTrixie (the default) or RootSid
}

// Node is a running node container.
type Node struct {
	CT   *lxctest.CT
	Name string
	Host *standin.Host // host side of HostTree

	bed    *lxctest.Bed
	images string // host side of Images
	debDir string
	deb    string
}

// Start boots a node: writes the stand-ins into its root file system,
// starts it from the pure cgroup v2 namespace, waits for its systemd and,
// with Options.Deb, installs nvidiaprep with apt.
func Start(bed *lxctest.Bed, o Options) (*Node, error) {
	base := filepath.Join(bed.Dir, o.Name)
	n := &Node{Name: o.Name, bed: bed, images: filepath.Join(base, "images"), debDir: filepath.Join(base, "deb")}
	for _, d := range []string{n.images, n.debDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("node %s: %w", o.Name, err)
		}
	}
	h, err := standin.NewHost(filepath.Join(base, "host"))
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", o.Name, err)
	}
	n.Host = h
	if o.Deb != "" {
		n.deb = filepath.Base(o.Deb)
		b, err := os.ReadFile(o.Deb)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", o.Name, err)
		}
		if err := os.WriteFile(filepath.Join(n.debDir, n.deb), b, 0o644); err != nil {
			return nil, fmt.Errorf("node %s: %w", o.Name, err)
		}
	}
	extra := []string{
		"lxc.include = /usr/share/lxc/config/nesting.conf",
		"lxc.apparmor.profile = unconfined",
		"lxc.cgroup2.devices.deny =",
		"lxc.cgroup2.devices.allow =",
		"lxc.cgroup2.devices.allow = a",
		"lxc.cap.drop =",
		"lxc.mount.auto =",
		"lxc.mount.auto = proc:rw sys:rw cgroup:rw:force",
		"lxc.autodev = 1",
		"lxc.uts.name = " + o.Name,
		"lxc.mount.entry = " + bed.Cache + " " + CacheDir[1:] + " none bind,ro,create=dir 0 0",
		"lxc.mount.entry = " + h.Root + " " + HostTree[1:] + " none bind,create=dir 0 0",
		"lxc.mount.entry = " + n.images + " " + Images[1:] + " none bind,create=dir 0 0",
		"lxc.mount.entry = " + n.debDir + " " + DebDir[1:] + " none bind,ro,create=dir 0 0",
	}
	if hasMemoryController() {
		// The node holds several guests; Proxmox's 512 MB default is theirs.
		extra = append(extra, "lxc.cgroup2.memory.max = max")
	}
	if o.Root == "" {
		o.Root = RootTrixie
	}
	ct, err := bed.NewContainer(o.VMID, lxctest.Options{Root: o.Root, ExtraConfig: extra})
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", o.Name, err)
	}
	n.CT = ct
	if err := ct.WriteFile("/etc/hostname", []byte(o.Name+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("node %s: %w", o.Name, err)
	}
	for _, f := range install {
		b, err := files.ReadFile(path.Join("files", f.src))
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", o.Name, err)
		}
		if err := ct.WriteFile(f.dst, b, f.mode); err != nil {
			return nil, fmt.Errorf("node %s: %w", o.Name, err)
		}
	}
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		return nil, fmt.Errorf("node %s: %w", o.Name, err)
	}
	if err := ct.WaitSystemd(time.Minute); err != nil {
		return nil, fmt.Errorf("node %s: %w", o.Name, err)
	}
	setup := fmt.Sprintf(`set -e
mkdir -p /etc/pve/nodes/%[1]s/lxc /var/lib/vz/snippets /run/pve
ln -sfn nodes/%[1]s/lxc /etc/pve/lxc
systemctl daemon-reload`, o.Name)
	if out, code, err := n.Sh(setup); err != nil || code != 0 {
		return nil, fmt.Errorf("node %s: setting up: exit %d %v\n%s", o.Name, code, err, out)
	}
	if n.deb != "" {
		if out, err := n.InstallDeb(); err != nil {
			return nil, fmt.Errorf("node %s: %w\n%s", o.Name, err, out)
		}
	}
	return n, nil
}

// InstallDeb installs the node's nvidiaprep .deb with apt, offline, as an
// admin does ("apt install ./nvidiaprep_<v>_amd64.deb").
func (n *Node) InstallDeb() (string, error) {
	out, code, err := n.Sh("cd " + DebDir + " && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=60 ./" + n.deb + " 2>&1")
	if err == nil && code != 0 {
		err = fmt.Errorf("node %s: apt install ./%s: exit %d", n.Name, n.deb, code)
	}
	return out, err
}

// UseDeb makes the package file at path (on the host) the one InstallDeb
// installs, as an admin copies a new version onto the node.
func (n *Node) UseDeb(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	n.deb = filepath.Base(path)
	return os.WriteFile(filepath.Join(n.debDir, n.deb), b, 0o644)
}

// DebPath is the package file InstallDeb installs, as the node sees it.
func (n *Node) DebPath() string { return DebDir + "/" + n.deb }

// hasMemoryController tells whether the cgroup2 hierarchy the node starts
// in has the memory controller (not on a hybrid layout's host).
func hasMemoryController() bool {
	for _, p := range []string{"/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.Contains(" "+string(b)+" ", " memory ") || strings.Contains(string(b), "memory")
		}
	}
	return false
}

// Sh runs a shell script in the node and returns its output (stdout then
// stderr), trimmed, and exit code.
func (n *Node) Sh(script string) (string, int, error) {
	out, errOut, code, err := n.CT.Exec("sh", "-c", script)
	return strings.TrimSpace(out + errOut), code, err
}

// WriteFile writes a file in the running node through a shell in it.
func (n *Node) WriteFile(name string, data []byte, mode os.FileMode) error {
	p := filepath.Join(n.CT.RootFS(), name)
	if n.CT.RootFS() == "" {
		return fmt.Errorf("node %s: not running", n.Name)
	}
	// The node is ours (not an untrusted container): its paths are followed.
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	return nil
}

// StateDir is a host path of the node's nvidiaprep state directory.
func (n *Node) StateDir() string { return filepath.Join(n.CT.RootFS(), "var/lib/nvidiaprep") }

// CacheRun puts a stand-in .run of version into the node's driver cache.
func (n *Node) CacheRun(version string, o standin.RunOptions) error {
	return n.Host.CacheRun(version, o)
}

// LoadDriver loads (or reloads, as after a host reboot) the stand-in driver
// d on the node and makes its device nodes.
func (n *Node) LoadDriver(d standin.Driver) error {
	if err := n.Host.LoadDriver(d); err != nil {
		return err
	}
	return n.Host.MakeNodes(d)
}

// WriteConfig writes the node's /etc/nvidiaprep/nvidiaprep.toml: [paths]
// into the stand-in host tree (dev, proc, sys, cache), the rest as packaged,
// then extra.
func (n *Node) WriteConfig(extra string) error {
	cfg := fmt.Sprintf("# nvidiaprep on the test node %s: the GPU host is a stand-in tree\n[paths]\ndev = %q\nproc = %q\nsys = %q\ncache = %q\n\n%s",
		n.Name, HostTree+"/dev", HostTree+"/proc", HostTree+"/sys", HostTree+"/cache", extra)
	return n.WriteFile("/etc/nvidiaprep/nvidiaprep.toml", []byte(cfg), 0o644)
}
