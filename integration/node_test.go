//go:build integration

package integration_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/pvenode"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/record"
)

// nodeGuests are the guests of the node bed: Debian 13 and 12, privileged
// and unprivileged; each is given GPU 0 of the two stand-in GPUs.
var nodeGuests = []struct {
	vmid int
	o    pvenode.GuestOptions
}{
	{101, pvenode.GuestOptions{Root: pvenode.RootTrixie}},
	{102, pvenode.GuestOptions{Root: pvenode.RootTrixie, Unprivileged: true}},
	{103, pvenode.GuestOptions{Root: pvenode.RootBookworm}},
	{104, pvenode.GuestOptions{Root: pvenode.RootBookworm, Unprivileged: true}},
}

// nodeBed is one booted node with nvidiaprep installed from its .deb and
// the guests made, shared by the node scenarios.
type nodeBed struct {
	node   *pvenode.Node
	driver standin.Driver
	guests map[int]*pvenode.Guest
	unpriv map[int]bool
}

// nodeDeb builds this tree's package with make deb (lintian included).
func nodeDeb(t *testing.T, dir string) string {
	t.Helper()
	root, err := scenario.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	return buildDeb(t, root, dir, "")
}

// bootNode boots the node pve1 (root: its root file system, "" for
// Debian 13's), installs this tree's .deb, loads a stand-in driver of
// version driverB with two GPUs, caches its .run and writes an empty
// configuration.
func bootNode(t *testing.T, root string) (*pvenode.Node, standin.Driver) {
	t.Helper()
	bed := lxctest.NewTestBed(t)
	deb := nodeDeb(t, filepath.Join(bed.Dir, "deb-build"))
	t0 := time.Now()
	n, err := pvenode.Start(bed, pvenode.Options{Name: "pve1", VMID: lxctest.VMID(t), Deb: deb, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("node boot and apt install: %v", time.Since(t0).Round(100*time.Millisecond))
	d, err := scenario.TwoGPUs(driverB)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := n.CacheRun(driverB, standin.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteConfig(""); err != nil {
		t.Fatal(err)
	}
	return n, d
}

// newNodeBed boots the node, installs the .deb, loads a stand-in driver of
// version driverB with two GPUs, caches its .run, writes the node's
// configuration and makes the guests, enabled with `nvidiaprep enable`.
func newNodeBed(t *testing.T, root string) *nodeBed {
	t.Helper()
	n, d := bootNode(t, root)
	nb := &nodeBed{node: n, driver: d, guests: map[int]*pvenode.Guest{}, unpriv: map[int]bool{}}
	for _, g := range nodeGuests {
		ct, err := n.NewGuest(g.vmid, g.o)
		if err != nil {
			t.Fatal(err)
		}
		nb.guests[g.vmid] = ct
		nb.unpriv[g.vmid] = g.o.Unprivileged
		nodeMust(t, n, fmt.Sprintf("nvidiaprep enable %d --gpus 0 --required", g.vmid))
	}
	return nb
}

// nodeMust runs a script in the node and fails the test unless it exits 0.
func nodeMust(t *testing.T, n *pvenode.Node, script string) string {
	t.Helper()
	out, code, err := n.Sh(script + " 2>&1")
	if err != nil || code != 0 {
		t.Fatalf("node: %s: exit %d %v\n%s", script, code, err, out)
	}
	return out
}

// pct runs pct in the node and fails the test unless it exits 0.
func (nb *nodeBed) pct(t *testing.T, g *pvenode.Guest, cmd string, args ...string) string {
	t.Helper()
	out, code, err := g.Pct(cmd, args...)
	if err != nil || code != 0 {
		t.Fatalf("pct %s %d: exit %d %v\n%s\n%s", cmd, g.VMID, code, err, out, nb.journal(g))
	}
	return out
}

// journal is the node's recent journal of the guest's unit and nvidiaprep,
// for failure messages.
func (nb *nodeBed) journal(g *pvenode.Guest) string {
	out, _, _ := nb.node.Sh(fmt.Sprintf("journalctl -n 40 --no-pager -u 'pve-container*@%d.service' -u 'nvidiaprep*' 2>&1; cat /run/pve/ct-%d.stderr 2>/dev/null | tail -n 20", g.VMID, g.VMID))
	return out
}

// waitProvisioned waits for a finished provisioning of the guest that
// started after since, in the node's state directory, and checks that it
// installed version.
func (nb *nodeBed) waitProvisioned(t *testing.T, g *pvenode.Guest, since time.Time, version string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, ok, err := record.Load(nb.node.StateDir(), g.VMID)
		if err != nil {
			t.Fatal(err)
		}
		if ok && !p.Started.Before(since.Add(-time.Second)) && p.Outcome != record.Running {
			if p.Outcome != record.Installed || p.Version != version {
				t.Fatalf("CT %d: provisioning %+v, want %s installed\n%s", g.VMID, p, version, nb.journal(g))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CT %d: no finished provisioning since %v (record %+v)\n%s", g.VMID, since, p, nb.journal(g))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantGPU0 checks what the guest reaches: GPU 0, nvidiactl and the uvm pair
// as far as the (absent) driver, not GPU 1; and which NVIDIA libraries it
// has.
func (nb *nodeBed) wantGPU0(t *testing.T, g *pvenode.Guest, version string) {
	t.Helper()
	sh := func(script string) (string, int) {
		out, code, err := g.Sh(script)
		if err != nil {
			t.Fatalf("CT %d: %s: %v", g.VMID, script, err)
		}
		return out, code
	}
	journal := ""
	for _, p := range []string{"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"} {
		if out, code := sh("cat " + p + " </dev/null"); code == 0 || !strings.Contains(out, "No such device or address") {
			if journal == "" {
				journal = nb.journal(g)
				t.Logf("CT %d: the node's journal:\n%s", g.VMID, journal)
			}
			t.Errorf("CT %d: cat %s: exit %d %q, want No such device or address", g.VMID, p, code, out)
		}
	}
	if out, code := sh("ls /dev/nvidia1"); code == 0 {
		t.Errorf("CT %d: nvidia1 is mounted in a container given GPU 0: %s", g.VMID, out)
	}
	if !nb.unpriv[g.VMID] {
		// The device cgroup refuses GPU 1 even through a node the
		// container makes itself (in /root: Debian 13 mounts /tmp nodev).
		if out, code := sh("rm -f /root/nvidia1; mknod /root/nvidia1 c 195 1 && cat /root/nvidia1"); code == 0 || !strings.Contains(out, "Operation not permitted") {
			t.Errorf("CT %d: a self-made nvidia1 node: exit %d %q, want Operation not permitted", g.VMID, code, out)
		}
	}
	if out, _ := sh("readlink " + libDir + "/libnvidia-ml.so.1"); out != "libnvidia-ml.so."+version {
		t.Errorf("CT %d: libnvidia-ml.so.1 -> %q, want libnvidia-ml.so.%s", g.VMID, out, version)
	}
	if out, _ := sh("cat /var/lib/nvidiaprep/installed"); !strings.Contains(out, "version="+version) {
		t.Errorf("CT %d: in-container record: %q, want version %s", g.VMID, out, version)
	}
}

// startGuest runs pct start (args such as --debug), waits for the guest's
// systemd and, when the start provisions, for that.
func (nb *nodeBed) startGuest(t *testing.T, g *pvenode.Guest, args ...string) string {
	t.Helper()
	out := nb.pct(t, g, "start", args...)
	if err := g.WaitSystemd(time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, nb.journal(g))
	}
	return out
}

// running makes sure the guest runs with version provisioned.
func (nb *nodeBed) running(t *testing.T, g *pvenode.Guest) {
	t.Helper()
	if g.State() == "RUNNING" {
		return
	}
	nb.startGuest(t, g)
	nb.waitLibs(t, g, nb.driver.Version)
}

// TestNode runs the Proxmox VE 9 node scenarios on one booted node with
// Debian 13's LXC 6.0, in order; each subtest (go test -run
// 'TestNode/<name>') brings the guests it uses to the state it needs first.
func TestNode(t *testing.T) { testNode(t, pvenode.RootTrixie, "6.0.") }

// TestNodeLXC7 runs the same scenarios on a node with Debian unstable's
// LXC 7.0, what Proxmox VE 9.2 ships (cgroup v1 device keys gone,
// lxc.environment split into .runtime and .hooks).
func TestNodeLXC7(t *testing.T) { testNode(t, pvenode.RootSid, "7.0.") }

func testNode(t *testing.T, root, lxcVersion string) {
	if testing.Short() {
		t.Skip("boots a node")
	}
	nb := newNodeBed(t, root)
	if out := nodeMust(t, nb.node, "lxc-start --version"); !strings.HasPrefix(out, lxcVersion) {
		t.Fatalf("the node's LXC is %q, want %s*", out, lxcVersion)
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _, _ := nb.node.Sh("systemctl --failed --no-pager; journalctl -n 80 --no-pager")
			t.Logf("node journal:\n%s", out)
		}
	})

	// pct start of each guest: pre-start gives GPU 0, post-start's
	// transient unit in the node's systemd provisions the libraries.
	t.Run("PctStart", func(t *testing.T) {
		for _, vmid := range []int{101, 102, 103, 104} {
			g := nb.guests[vmid]
			if g.State() == "RUNNING" {
				nb.pct(t, g, "stop")
			}
			since := time.Now()
			t0 := time.Now()
			nb.startGuest(t, g)
			nb.waitProvisioned(t, g, since, nb.driver.Version)
			t.Logf("CT %d: pct start to provisioned: %v", vmid, time.Since(t0).Round(100*time.Millisecond))
			nb.wantGPU0(t, g, nb.driver.Version)
		}
	})

	// pct reboot: Proxmox stops (pre-stop, post-stop) and starts (pre-start,
	// post-start) again under one lock, so the hookscript runs.
	t.Run("PctReboot", func(t *testing.T) {
		for _, vmid := range []int{101, 102} {
			g := nb.guests[vmid]
			nb.running(t, g)
			before := g.InitPID()
			nb.pct(t, g, "reboot")
			if err := g.WaitSystemd(time.Minute); err != nil {
				t.Fatal(err)
			}
			if g.InitPID() == before {
				t.Fatalf("CT %d: pct reboot left the same init (pid %s)", vmid, before)
			}
			nb.wantGPU0(t, g, nb.driver.Version)
		}
	})

	// reboot typed in the container, three times in a row, in every guest:
	// LXC's post-stop hook regenerates the config and the unit restarts
	// lxc-start; no hookscript runs on this path.
	t.Run("RebootInside", func(t *testing.T) {
		for round := 1; round <= 3; round++ {
			before := map[int]string{}
			for _, vmid := range []int{101, 102, 103, 104} {
				g := nb.guests[vmid]
				nb.running(t, g)
				before[vmid] = g.InitPID()
			}
			for vmid := range before {
				// The attach ends with the container's init; its exit says nothing.
				nb.guests[vmid].Sh("reboot")
			}
			for vmid, pid := range before {
				g := nb.guests[vmid]
				nb.waitRebooted(t, g, pid)
				nb.wantGPU0(t, g, nb.driver.Version)
			}
			if t.Failed() {
				t.Fatalf("round %d of 3 lost the GPU", round)
			}
		}
	})

	// pct shutdown then pct start; and a poweroff inside, after which the
	// LXC post-stop hook runs the hookscript's post-stop, then pct start.
	t.Run("ShutdownStart", func(t *testing.T) {
		g := nb.guests[101]
		nb.running(t, g)
		nb.pct(t, g, "shutdown")
		if st := g.State(); st != "STOPPED" {
			t.Fatalf("CT 101 after pct shutdown: %s", st)
		}
		nb.startGuest(t, g)
		nb.wantGPU0(t, g, nb.driver.Version)

		g = nb.guests[102]
		nb.running(t, g)
		g.Sh("poweroff")
		nb.waitStopped(t, g)
		nb.startGuest(t, g)
		nb.wantGPU0(t, g, nb.driver.Version)
	})

	// A host "reboot": the driver comes back with another dynamic uvm
	// major; the next start gives the new one.
	t.Run("HostRebootNewUVMMajor", func(t *testing.T) {
		for _, vmid := range []int{101, 102} {
			nb.stop(t, nb.guests[vmid])
		}
		uvm, err := standin.FreeMajor("/proc/devices", nb.driver.UVMMajor)
		if err != nil {
			t.Fatal(err)
		}
		nb.driver.UVMMajor = uvm
		if err := nb.node.LoadDriver(nb.driver); err != nil {
			t.Fatal(err)
		}
		for _, vmid := range []int{101, 102} {
			g := nb.guests[vmid]
			nb.startGuest(t, g)
			nb.wantGPU0(t, g, nb.driver.Version)
			if !nb.unpriv[vmid] {
				if cfg := nodeMust(t, nb.node, fmt.Sprintf("cat /var/lib/lxc/%d/config", vmid)); !strings.Contains(cfg, fmt.Sprintf("c %d:0 rw", uvm)) {
					t.Errorf("CT %d: the LXC config does not allow the new uvm major %d:\n%s", vmid, uvm, cfg)
				}
			}
		}
	})

	// Migration to a node with another driver version: the next start
	// reprovisions the guest with the libraries of that version.
	t.Run("MigrationReprovisions", func(t *testing.T) {
		g := nb.guests[101]
		nb.running(t, g)
		nb.pct(t, g, "shutdown")
		nb.driver.Version = driverA
		if err := nb.node.CacheRun(driverA, standin.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := nb.node.LoadDriver(nb.driver); err != nil {
			t.Fatal(err)
		}
		since := time.Now()
		nb.startGuest(t, g)
		nb.waitProvisioned(t, g, since, driverA)
		nb.wantGPU0(t, g, driverA)
	})

	// pct start --debug starts pve-container-debug@<vmid>.
	t.Run("PctStartDebug", func(t *testing.T) {
		g := nb.guests[103]
		nb.stop(t, g)
		since := time.Now()
		nb.startGuest(t, g, "--debug")
		if out := nodeMust(t, nb.node, "systemctl is-active pve-container-debug@103"); out != "active" {
			t.Errorf("pve-container-debug@103: %s", out)
		}
		nb.waitProvisioned(t, g, since, nb.driver.Version)
		nb.wantGPU0(t, g, nb.driver.Version)
		nb.stop(t, g)
	})

	// Restore or migration onto a node without nvidiaprep: pct checks the
	// hookscript volume at every start and refuses.
	t.Run("NodeWithoutNvidiaprepRefuses", func(t *testing.T) {
		g := nb.guests[104]
		nb.stop(t, g)
		nodeMust(t, nb.node, "DEBIAN_FRONTEND=noninteractive apt-get remove -y -q nvidiaprep")
		out, code, err := g.Pct("start")
		if err != nil || code == 0 || !strings.Contains(out, "script 'local:snippets/nvidiaprep-hook' does not exist") {
			t.Errorf("pct start on a node without nvidiaprep: exit %d %v\n%s", code, err, out)
		}
		if st := g.State(); st != "STOPPED" {
			t.Errorf("CT 104 after the refused start: %s", st)
		}
		if out, err := nb.node.InstallDeb(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		nb.startGuest(t, g)
		nb.waitLibs(t, g, nb.driver.Version)
		nb.wantGPU0(t, g, nb.driver.Version)
	})

	// The admin's own hookscript, chained by nvidiaprep enable, runs for
	// every phase with the same arguments; disable puts it back.
	t.Run("EnableChainsAdminHookscript", func(t *testing.T) {
		g := nb.guests[103]
		nb.stop(t, g)
		n := nb.node
		if err := n.WriteFile("/var/lib/vz/snippets/admin-hook", []byte("#!/bin/sh\necho \"$*\" >> /var/log/admin-hook.log\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		nodeMust(t, n, "rm -f /var/log/admin-hook.log; nvidiaprep disable 103")
		nodeMust(t, n, "pct set 103 --hookscript local:snippets/admin-hook")
		nodeMust(t, n, "nvidiaprep enable 103 --gpus 0 --required")
		if out := nodeMust(t, n, "pct config 103 | sed -n 's/^hookscript: //p'"); out != "local:snippets/nvidiaprep-hook" {
			t.Errorf("hookscript after enable: %q", out)
		}
		if out := nodeMust(t, n, "cat /etc/nvidiaprep/nvidiaprep.toml"); !strings.Contains(out, `chain = "local:snippets/admin-hook"`) {
			t.Errorf("enable does not record the admin's hookscript:\n%s", out)
		}
		nb.startGuest(t, g)
		nb.wantGPU0(t, g, nb.driver.Version)
		nb.pct(t, g, "shutdown")
		out, _, _ := n.Sh("cat /var/log/admin-hook.log")
		if want := "103 pre-start\n103 post-start\n103 pre-stop\n103 post-stop"; out != want {
			t.Errorf("the admin's hookscript ran:\n%s\nwant:\n%s", out, want)
		}
		// A poweroff inside: no pct, the LXC post-stop hook runs the
		// post-stop phase (through nvidiaprep's hook, chained).
		nodeMust(t, n, "rm -f /var/log/admin-hook.log")
		nb.startGuest(t, g)
		g.Sh("poweroff")
		nb.waitStopped(t, g)
		out, _, _ = n.Sh("cat /var/log/admin-hook.log")
		if want := "103 pre-start\n103 post-start\n103 post-stop"; out != want {
			t.Errorf("the admin's hookscript around a poweroff inside ran:\n%s\nwant:\n%s", out, want)
		}
		nodeMust(t, n, "nvidiaprep disable 103")
		if out := nodeMust(t, n, "pct config 103 | sed -n 's/^hookscript: //p'"); out != "local:snippets/admin-hook" {
			t.Errorf("hookscript after disable: %q, want the admin's back", out)
		}
	})

	// A tutorial's cgroup v1 device line in the guest's .conf: LXC 6.0
	// ignores it on cgroup v2 and the guest starts; LXC 7.0 refuses the
	// config ("Unsupported config key") and the guest does not start. On
	// both, pre-start's task log names the line, what it does on LXC 7.0 and
	// the fix, before lxc-start; without the line the guest starts again.
	t.Run("CgroupV1DeviceKey", func(t *testing.T) {
		g := nb.guests[101]
		if g.State() == "RUNNING" {
			nb.stop(t, g)
		}
		nodeMust(t, nb.node, "echo 'lxc.cgroup.devices.allow: c 195:* rwm' >> "+g.ConfPath())
		out, code, err := g.Pct("start")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "lxc.cgroup.devices.allow") || !strings.Contains(out, "LXC 7.0") || !strings.Contains(out, "delete it from") {
			t.Errorf("pct start's task log does not name the v1 line and its fix:\n%s", out)
		}
		switch {
		case lxcVersion == "7.0." && (code == 0 || g.State() == "RUNNING"):
			t.Errorf("LXC 7.0 started a guest with a cgroup v1 key (exit %d):\n%s", code, out)
		case lxcVersion != "7.0." && code != 0:
			t.Errorf("LXC %s did not start a guest with a cgroup v1 key (exit %d):\n%s", lxcVersion, code, out)
		}
		if g.State() == "RUNNING" {
			nb.stop(t, g)
		}
		nodeMust(t, nb.node, "sed -i '/^lxc.cgroup.devices.allow/d' "+g.ConfPath())
		nb.startGuest(t, g)
		nb.wantGPU0(t, g, nb.driver.Version)
	})

	// The package on Debian 13: Debian 13's lintian finds nothing, it
	// upgrades to a newer build (the drop-ins and the hook link stay) and
	// purges without a trace. Last: the node has no nvidiaprep afterwards.
	t.Run("PackageOnDebian13", func(t *testing.T) {
		n := nb.node
		// Lintian is Debian 13's (the sid node has none); the rest holds
		// for both nodes.
		if root == pvenode.RootTrixie {
			if out, code, err := n.Sh("lintian --fail-on error,warning " + n.DebPath() + " 2>&1"); err != nil || code != 0 {
				t.Errorf("Debian 13's lintian on %s: exit %d %v\n%s", n.DebPath(), code, err, out)
			}
		}
		for _, g := range nb.guests {
			nb.stop(t, g)
		}
		root, err := scenario.ModuleRoot()
		if err != nil {
			t.Fatal(err)
		}
		deb := buildDeb(t, root, filepath.Join(t.TempDir(), "upgrade"), debNew)
		if err := n.UseDeb(deb); err != nil {
			t.Fatal(err)
		}
		if out, err := n.InstallDeb(); err != nil {
			t.Fatalf("upgrade: %v\n%s", err, out)
		}
		nodeMust(t, n, "dpkg-query -W -f '${Version} ${db:Status-Abbrev}' nvidiaprep | grep -qx '0.1.0+upgrade1 ii '")
		nodeMust(t, n, "test -x /usr/lib/nvidiaprep/nvidiaprep-unit-prestart && test -f /usr/lib/systemd/system/pve-container@.service.d/nvidiaprep.conf && test \"$(readlink /var/lib/vz/snippets/nvidiaprep-hook)\" = /usr/lib/nvidiaprep/nvidiaprep-hook")
		nodeMust(t, n, "systemctl show -p DropInPaths pve-container@101.service | grep -q nvidiaprep.conf")
		nodeMust(t, n, "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nvidiaprep")
		out, _, _ := n.Sh("ls -d /etc/nvidiaprep /var/lib/nvidiaprep /var/cache/nvidiaprep /usr/lib/nvidiaprep /var/lib/vz/snippets/nvidiaprep-hook /usr/lib/systemd/system/pve-container@.service.d/nvidiaprep.conf /lib/systemd/system/pve-container@.service.d/nvidiaprep.conf 2>&1; dpkg-query -W -f '${db:Status-Abbrev}' nvidiaprep 2>&1")
		if strings.Count(out, "No such file") != 7 || strings.Contains(out, "ii") {
			t.Errorf("after the purge something of nvidiaprep is left:\n%s", out)
		}
		if out, code, _ := n.Sh("systemctl show -p DropInPaths pve-container@101.service"); code != 0 || strings.Contains(out, "nvidiaprep") {
			t.Errorf("the unit still has nvidiaprep's drop-in after the purge: %s", out)
		}
	})
}

// waitLibs waits until the guest has the NVIDIA libraries of version (a
// start that reprovisions installs them in the background) and no install
// is in progress.
func (nb *nodeBed) waitLibs(t *testing.T, g *pvenode.Guest, version string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _, _ := g.Sh("test -e /var/lib/nvidiaprep/provisioning || cat /var/lib/nvidiaprep/installed")
		if strings.Contains(out, "version="+version+"\n") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CT %d: no libraries %s after 3 minutes (installed: %q)\n%s", g.VMID, version, out, nb.journal(g))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop stops the guest with pct stop (a no-op when stopped).
func (nb *nodeBed) stop(t *testing.T, g *pvenode.Guest) {
	t.Helper()
	nb.pct(t, g, "stop")
	if st := g.State(); st != "STOPPED" {
		t.Fatalf("CT %d after pct stop: %s", g.VMID, st)
	}
}

// waitRebooted waits until the guest runs again with another init than
// pid and its systemd is up.
func (nb *nodeBed) waitRebooted(t *testing.T, g *pvenode.Guest, pid string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if p := g.InitPID(); p != "" && p != pid && g.State() == "RUNNING" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CT %d: not back a minute after reboot (state %s)\n%s", g.VMID, g.State(), nb.journal(g))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := g.WaitSystemd(time.Minute); err != nil {
		t.Fatalf("%v\n%s", err, nb.journal(g))
	}
}

// waitStopped waits until the guest is stopped and its unit is done (the
// post-stop hook has run).
func (nb *nodeBed) waitStopped(t *testing.T, g *pvenode.Guest) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out, _, _ := nb.node.Sh(fmt.Sprintf("systemctl show -P ActiveState pve-container@%d.service", g.VMID))
		if g.State() == "STOPPED" && (out == "inactive" || out == "failed") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("CT %d: not stopped after a minute (state %s, unit %s)\n%s", g.VMID, g.State(), out, nb.journal(g))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
