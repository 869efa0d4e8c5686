//go:build integration

package integration_test

// A container's file system that never answers must not stall the node:
// the host reads a container's files in processes of their own, with a
// deadline, and holds the node's install slot in a lock no such process
// can keep.

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/nvidiaprep/isolate"
	"nvidiaprep/nvidiaprep/record"
)

// fuseLines are what Proxmox's `features: fuse=1` adds to a container's
// config: /dev/fuse, allowed and bound.
var fuseLines = []string{
	"lxc.cgroup2.devices.allow = c 10:229 rwm",
	"lxc.mount.entry = /dev/fuse dev/fuse none bind,create=file 0 0",
}

// withFusectl mounts fusectl at /sys/fs/fuse/connections, as systemd does
// on a Proxmox node (sys-fs-fuse-connections.mount), when it is not.
func withFusectl(t *testing.T) {
	t.Helper()
	const dir = "/sys/fs/fuse/connections"
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), " "+dir+" ") {
		return
	}
	if err := unix.Mount("none", dir, "fusectl", 0, ""); err != nil {
		t.Fatalf("mounting fusectl: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, 0) })
}

// withStall puts fusestall into the stopped ct.
func withStall(t *testing.T, ct *lxctest.CT) {
	t.Helper()
	bin, err := os.ReadFile(fusestall)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFile("usr/local/bin/fusestall", bin, 0o755); err != nil {
		t.Fatal(err)
	}
}

// stallIn starts fusestall inside ct at dir, in the background, and waits
// until it is mounted.
func stallIn(t *testing.T, ct *lxctest.CT, dir string) {
	t.Helper()
	script := "mkdir -p " + dir + " && (setsid /usr/local/bin/fusestall " + dir + " </dev/null >/dev/null 2>&1 &) && " +
		"for i in $(seq 50); do grep -q ' " + dir + " .* fuse.fusestall ' /proc/self/mountinfo && exit 0; sleep 0.1; done; exit 1"
	if out, code := sh(t, ct, script); code != 0 {
		t.Fatalf("CT %d: fusestall at %s: %s", ct.VMID, dir, out)
	}
}

// Two privileged containers run a FUSE server that never answers (Proxmox's
// fuse=1 allows it): one mounts it over /var/lib/dpkg, whose locks the
// worker probes from the host; the other links /var/lib/dpkg into it,
// which no look at its mounts can see before the lookup. With one install
// slot on the node, an innocent container started after them still gets
// its slot and its install: the first is refused before the host crosses
// into the mount, the second's read is abandoned at its deadline (its FUSE
// connection aborted through fusectl), and both say which container and
// which path. Before, the worker hung in openat2 in uninterruptible sleep,
// holding the slot, and the innocent container's install failed waiting
// for it.
func TestFUSEServerThatNeverAnswersHoldsNoSlot(t *testing.T) {
	vmid := lxctest.VMID(t)
	vmid2 := lxctest.VMID(t)
	vmid3 := lxctest.VMID(t)
	withFusectl(t)
	n := provisionNode(t, "[provision]\nmax_concurrent = 1\ninstall_timeout = \"80s\"\n")
	over := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop, ExtraConfig: fuseLines})
	linked := newCT(t, n, vmid2, lxctest.Options{Init: lxctest.ShLoop, ExtraConfig: fuseLines})
	victim := newCT(t, n, vmid3, lxctest.Options{Unprivileged: true, Init: lxctest.ShLoop})
	for _, ct := range []*lxctest.CT{over, linked} {
		withStall(t, ct)
		if _, err := ct.ProxmoxStart(preStartOnly(t), n.Env()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	}
	stallIn(t, over, "/var/lib/dpkg")
	stallIn(t, linked, "/srv/stall")
	if out, code := sh(t, linked, "mv /var/lib/dpkg /var/lib/dpkg.real && ln -s /srv/stall /var/lib/dpkg"); code != 0 {
		t.Fatal(out)
	}
	since := time.Now()
	for _, ct := range []*lxctest.CT{over, linked} {
		if out, code, err := runbin.Try(hook, n.Env(), strconv.Itoa(ct.VMID), "post-start"); code != 0 || err != nil {
			t.Fatalf("CT %d post-start: exit %d %v:\n%s", ct.VMID, code, err, out)
		}
	}
	_, p, _ := startProvisioned(t, n, victim)
	if p.Outcome != record.Installed {
		t.Fatalf("the innocent CT %d: %+v\n%s", victim.VMID, p, n.WorkerLog(victim.VMID))
	}
	wantInstalled(t, victim, driverA)
	took := time.Since(since)

	for _, c := range []struct {
		ct   *lxctest.CT
		want []string
	}{
		{over, []string{"/var/lib/dpkg/lock-frontend lies below /var/lib/dpkg, a fuse.fusestall mount inside the container", "the host does not cross into it", "nothing was changed"}},
		{linked, []string{"probing /var/lib/dpkg/lock-frontend: probing the locks /var/lib/dpkg/lock-frontend, /var/lib/dpkg/lock, /var/cache/apt/archives/lock, /var/lib/apt/lists/lock inside the container did not finish within", "FUSE connection of /srv/stall (fuse.fusestall", "was aborted", "which ended it"}},
	} {
		// The innocent container may win the slot before a hostile one:
		// that one's read is then abandoned after the innocent install.
		p, err := n.WaitProvisioned(c.ct.VMID, since, isolate.DefaultTimeout+2*isolate.KillGrace+30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if p.Outcome != record.Failed {
			t.Errorf("CT %d: %+v, want a failed record", c.ct.VMID, p)
		}
		wantAll(t, "CT "+strconv.Itoa(c.ct.VMID)+"'s record", p.Error, c.want...)
		line := "CT " + strconv.Itoa(c.ct.VMID) + ": " + c.want[0]
		wantAll(t, "CT "+strconv.Itoa(c.ct.VMID)+"'s worker log", waitLogged(n, c.ct.VMID, line), line)
		// The worker exits after its record and its log line: give it the
		// moment, not a stalled read.
		for _, pid := range workerPIDs(c.ct.VMID) {
			if !waitExited(pid, 10*time.Second) {
				t.Errorf("CT %d: worker %d still runs 10 s after its record", c.ct.VMID, pid)
			}
		}
	}
	t.Logf("the innocent container was installed %v after the hostile ones' post-starts (one slot, three workers: it waits for a hostile worker that took the slot first)", took.Round(time.Second))
}
