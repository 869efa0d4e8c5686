package pvenode

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"nvidiaprep/integration/lxctest"
)

// Guest is a container on a node, known by its vmid there.
type Guest struct {
	VMID int
	Node *Node
}

// GuestOptions describe a guest.
type GuestOptions struct {
	Root         string   // RootTrixie or RootBookworm
	Unprivileged bool     // owner-shifted copy of Root, "unprivileged: 1"
	Conf         []string // extra lines of /etc/pve/lxc/<vmid>.conf (lxc.*: ..., devN: ...)
}

// NewGuest makes guest vmid: its rootfs volume (an overlay over the cached
// tree, mounted in the node as a dir storage's subvolume would be) and its
// /etc/pve/lxc/<vmid>.conf. It does not start it.
func (n *Node) NewGuest(vmid int, o GuestOptions) (*Guest, error) {
	lower, err := n.bed.LowerDir(o.Root, o.Unprivileged)
	if err != nil {
		return nil, err
	}
	if filepath.Dir(lower) != n.bed.Cache {
		return nil, fmt.Errorf("node %s: guest %d: %s is not in the cache %s", n.Name, vmid, lower, n.bed.Cache)
	}
	owner := 0
	if o.Unprivileged {
		owner = lxctest.IDShift
	}
	vol := fmt.Sprintf("%s/%d", Images, vmid)
	sub := fmt.Sprintf("%s/subvol-%d-disk-0", vol, vmid)
	script := fmt.Sprintf(`set -e
mkdir -p %[1]s/upper %[1]s/work %[2]s
chown %[5]d:%[5]d %[1]s/upper
mount -t overlay overlay -o lowerdir=%[3]s,upperdir=%[1]s/upper,workdir=%[1]s/work %[2]s
echo ct%[4]d > %[2]s/etc/hostname
chown %[5]d:%[5]d %[2]s/etc/hostname
# The cached Debian 13 tree is the node's too and has LXC; in a guest its
# units would hold the boot up (lxc.service waits ~30 s).
for u in lxc.service lxc-net.service lxc-monitord.service; do
	if [ -e %[2]s/usr/lib/systemd/system/$u ]; then
		ln -sfn /dev/null %[2]s/etc/systemd/system/$u
		chown -h %[5]d:%[5]d %[2]s/etc/systemd/system/$u
	fi
done`, vol, sub, CacheDir+"/"+filepath.Base(lower), vmid, owner)
	if out, code, err := n.Sh(script); err != nil || code != 0 {
		return nil, fmt.Errorf("node %s: guest %d volume: exit %d %v\n%s", n.Name, vmid, code, err, out)
	}
	conf := []string{"arch: amd64", fmt.Sprintf("hostname: ct%d", vmid), "memory: 512", "ostype: debian",
		fmt.Sprintf("rootfs: local:%d/subvol-%d-disk-0,size=8G", vmid, vmid)}
	if o.Unprivileged {
		conf = append(conf, "unprivileged: 1")
	}
	conf = append(conf, o.Conf...)
	g := &Guest{VMID: vmid, Node: n}
	if err := n.WriteFile(g.ConfPath(), []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	return g, nil
}

// ConfPath is the guest's Proxmox config in the node.
func (g *Guest) ConfPath() string {
	return fmt.Sprintf("/etc/pve/nodes/%s/lxc/%d.conf", g.Node.Name, g.VMID)
}

// Pct runs "pct <cmd> <vmid> args..." in the node.
func (g *Guest) Pct(cmd string, args ...string) (string, int, error) {
	a := ""
	for _, s := range args {
		a += " '" + s + "'"
	}
	return g.Node.Sh(fmt.Sprintf("pct %s %d%s 2>&1", cmd, g.VMID, a))
}

// Sh runs a shell script inside the guest (lxc-attach in the node, clean
// environment) and returns its output, trimmed, and exit code.
func (g *Guest) Sh(script string) (string, int, error) {
	out, errOut, code, err := g.Node.CT.Exec("lxc-attach", "-n", fmt.Sprint(g.VMID), "--clear-env",
		"--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--", "sh", "-c", script)
	return strings.TrimSpace(out + errOut), code, err
}

// State is the guest's LXC state in the node (RUNNING, STOPPED, ...).
func (g *Guest) State() string {
	out, _, _ := g.Node.Sh(fmt.Sprintf("lxc-info -n %d -s -H", g.VMID))
	return strings.TrimSpace(out)
}

// InitPID is the guest's init pid as the node sees it, 0 when stopped.
func (g *Guest) InitPID() string {
	out, _, _ := g.Node.Sh(fmt.Sprintf("lxc-info -n %d -p -H 2>/dev/null", g.VMID))
	return strings.TrimSpace(out)
}

// WaitSystemd waits until the guest runs and its systemd has booted
// (running or degraded).
func (g *Guest) WaitSystemd(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		out, _, _ := g.Sh("timeout 10 systemctl is-system-running --wait 2>&1")
		switch out {
		case "running", "degraded":
			return nil
		}
		last = out
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("node %s: guest %d: systemd not up after %v (last: %s)", g.Node.Name, g.VMID, timeout, last)
}
