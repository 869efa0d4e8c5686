//go:build integration

package integration_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/hostdriverstate"
)

// Driver versions of the upgrade test. The first is
// the first 580 release for kernels 6.17 and later: the node's running kernel
// is this machine's, and the kernel gate refuses older drivers on it.
const (
	upFirst = "580.105.08"
	up580   = "580.119.02"
	up590   = "590.48.01"
)

// standinModules makes the node's module programs the stand-in ones
// (integration/standin/kmod.sh) on the stand-in tree at /srv/standin, so
// that NVIDIA's (stand-in) installer and nvidiaprep load, unload and test
// modules there, never in the machine's kernel; and gives the node what a
// real node has: the running kernel's /lib/modules directory.
func (n *hostNode) standinModules() {
	n.t.Helper()
	for _, name := range standin.KmodTools {
		if err := n.ct.WriteFile("usr/local/sbin/"+name, []byte(standin.ModuleToolsScript()), 0o755); err != nil {
			n.t.Fatal(err)
		}
	}
	if err := n.ct.WriteFile("etc/nvidiaprep-standin", []byte("NVIDIAPREP_STANDIN_ROOT=/srv/standin\n"), 0o644); err != nil {
		n.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(n.host.Root, ".standin"), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.host.Root, ".standin/uvm-major"), []byte(strconv.Itoa(n.uvm)+"\n"), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// configure writes /etc/nvidiaprep/nvidiaprep.toml for version, served by
// the test's web server, pinned.
func (n *hostNode) configure(version string) {
	n.t.Helper()
	b, err := os.ReadFile(filepath.Join(n.www, standin.RunFileName(version)))
	if err != nil {
		n.t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[paths]
dev = "/srv/standin/dev"
proc = "/srv/standin/proc"
sys = "/srv/standin/sys"

[driver]
version = %q
run = "http://127.0.0.1:%s/%s"
sha256 = "%x"
kernel_module = "open"
`, version, hdPort, standin.RunFileName(version), sha256.Sum256(b))
	if err := os.WriteFile(filepath.Join(n.etc, "nvidiaprep.toml"), []byte(cfg), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// loaded is the stand-in tree's loaded modules, "name=version ...".
func (n *hostNode) loaded() string {
	var out []string
	for _, m := range n.host.LoadedModules() {
		v, _ := os.ReadFile(filepath.Join(n.host.Sys, "module", m, "version"))
		out = append(out, m+"="+strings.TrimSpace(string(v)))
	}
	return strings.Join(out, " ")
}

func allLoaded(v string) string {
	return "nvidia=" + v + " nvidia_drm=" + v + " nvidia_modeset=" + v + " nvidia_uvm=" + v
}

// unit runs the host driver unit (systemctl restart) and returns its exit
// status, its status line and its journal since then.
func (n *hostNode) unit() (int, string, string) {
	n.t.Helper()
	since := n.must("date '+%Y-%m-%d %H:%M:%S'")
	_, code := n.sh("systemctl restart nvidiaprep-host-driver")
	status, _ := n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
	journal, _ := n.sh("journalctl -u nvidiaprep-host-driver --no-pager -o cat --since '" + strings.TrimSpace(since) + "'")
	return code, status, journal
}

// An upgrade at boot needs no reboot; a new module that does not load puts
// the old one back, loaded; a held GPU leaves the old driver loaded and
// says "reboot required" naming the process. The node's installer is the
// faithful stand-in: it unloads every loaded NVIDIA module before it
// installs, test-loads the new one and loads it (integration/standin).
func TestHostDriverUpgradeAtBoot(t *testing.T) {
	t0 := time.Now()
	n := newHostNodeWith(t, nil, upFirst, up580, up590)
	n.standinModules()
	n.boot()
	n.must(`set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io dkms liblxc1 linux-headers-` + n.release + `
mkdir -p /lib/modules/` + n.release + `
systemctl enable nvidiaprep-host-driver`)
	t.Logf("node ready in %v", time.Since(t0).Round(time.Millisecond))

	// A first install, by the unit, with no driver loaded: installed and
	// loaded at once.
	n.configure(upFirst)
	code, status, journal := n.unit()
	if code != 0 || n.loaded() != allLoaded(upFirst) {
		t.Fatalf("first install: exit %d, loaded %q\n%s\n%s", code, n.loaded(), status, journal)
	}
	wantAll(t, "first install", status, "NVIDIA driver "+upFirst+" installed and loaded (was: none)", "no reboot needed")

	t.Run("upgrade at boot", func(t *testing.T) {
		n.configure(up580)
		// Fetched before the reboot (at boot the test's web server is not
		// up yet when the unit runs).
		n.must("install -m 0644 /srv/www/" + standin.RunFileName(up580) + " /var/cache/nvidiaprep/runs/")
		if _, err := n.ct.Stop("", nil); err != nil {
			t.Fatal(err)
		}
		// At boot the old driver is loaded (the stand-in tree keeps it),
		// and nothing holds it: the unit runs before the guests.
		t1 := time.Now()
		n.boot()
		status, _ := n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
		t.Logf("boot with the upgrade in %v:\n%s", time.Since(t1).Round(time.Millisecond), status)
		wantAll(t, "status", status, "active (exited)", "NVIDIA driver "+up580+" installed and loaded (was: "+upFirst+")", "no reboot needed")
		if l := n.loaded(); l != allLoaded(up580) {
			t.Errorf("loaded: %q", l)
		}
		dkms := n.must("dkms status")
		wantAll(t, "dkms status", dkms, "nvidia/"+up580+", "+n.release+", x86_64: installed")
		if strings.Contains(dkms, upFirst) {
			t.Errorf("the old DKMS module is left:\n%s", dkms)
		}
		if out, code := n.sh("ls /run/reboot-required 2>&1"); code == 0 {
			t.Errorf("reboot required: %s", out)
		}
		if s := n.state(); s.Outcome != hostdriverstate.OutcomeCurrent || s.Loaded != up580 {
			t.Errorf("state %+v", s)
		}
		// The containers' tree of the new driver is ready, and the nodes.
		n.must("test -x /var/cache/nvidiaprep/drivers/" + up580 + "/nvidia-installer && test -c /srv/standin/dev/nvidiactl && test -c /srv/standin/dev/nvidia-uvm")
		st := n.must("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep status --wide 2>&1 || true")
		wantAll(t, "nvidiaprep status", st, "driver loaded", up580)
		if strings.Contains(st, "reboot pending     yes") {
			t.Errorf("status says a reboot is pending:\n%s", st)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("a new module that does not load", func(t *testing.T) {
		n.configure(up590)
		n.must("echo NVIDIAPREP_STANDIN_FAIL_LOAD=" + up590 + " >> /etc/nvidiaprep-standin")
		defer n.must("sed -i '/FAIL_LOAD/d' /etc/nvidiaprep-standin")
		code, status, journal := n.unit()
		t.Logf("journal:\n%s", journal)
		if code == 0 {
			t.Errorf("the unit succeeded:\n%s", status)
		}
		wantAll(t, "journal", journal, "step 5/6 (run the NVIDIA installer) failed", "Unable to load the kernel module", "driver "+up580+" was put back and is loaded")
		if l := n.loaded(); l != allLoaded(up580) {
			t.Errorf("loaded: %q (want the old driver back, whole)", l)
		}
		wantAll(t, "dkms status", n.must("dkms status"), "nvidia/"+up580+", "+n.release+", x86_64: installed")
		if s := n.state(); s.Outcome != hostdriverstate.OutcomeFailed || s.Step != "install" || s.Loaded != up580 {
			t.Errorf("state %+v", s)
		}
		doc, _ := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep doctor --wide 2>&1")
		wantAll(t, "doctor", doc, "failed to install driver "+up590, "was put back and is loaded")
	})

	t.Run("a held GPU", func(t *testing.T) {
		if err := n.host.MakeNode("nvidia0", 195, 0, 0o666); err != nil {
			t.Fatal(err)
		}
		// A CUDA program of a container, as the node sees it: a descriptor
		// on the node (O_PATH: a stand-in node cannot be opened).
		n.must(`systemd-run --unit=gpu-holder perl -e 'sysopen(F, "/srv/standin/dev/nvidia0", 010000000) or die "$!"; sleep 600'
for i in $(seq 200); do
	p=$(systemctl show -P MainPID gpu-holder)
	[ "$p" != 0 ] && find /proc/$p/fd -maxdepth 1 -lname /srv/standin/dev/nvidia0 | grep -q . && exit 0
	sleep 0.05
done
echo "gpu-holder does not hold /srv/standin/dev/nvidia0 after 10 s"; exit 1`)
		defer n.sh("systemctl stop gpu-holder")
		pid := strings.TrimSpace(n.must("systemctl show -p MainPID --value gpu-holder"))
		code, status, journal := n.unit()
		t.Logf("journal:\n%s", journal)
		if code == 0 {
			t.Errorf("the unit did not refuse:\n%s", status)
		}
		wantAll(t, "journal", journal, "pid "+pid+" (perl) holds /srv/standin/dev/nvidia0", "stays loaded", "reboot required")
		if l := n.loaded(); l != allLoaded(up580) {
			t.Errorf("loaded: %q (want the old driver untouched)", l)
		}
		n.must("test -e /run/reboot-required")
		if s := n.state(); s.Outcome != hostdriverstate.OutcomeRebootRequired || !strings.Contains(s.Error, "(perl)") {
			t.Errorf("state %+v", s)
		}
		st, _ := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep status --wide 2>&1")
		wantAll(t, "status", st, "reboot pending", "yes", "(perl)")
		doc, _ := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep doctor --wide 2>&1")
		wantAll(t, "doctor", doc, "waits for a reboot", "(perl)")
		// The holder gone, the upgrade goes through without a reboot.
		n.must("systemctl stop gpu-holder")
		code, status, _ = n.unit()
		if code != 0 || n.loaded() != allLoaded(up590) {
			t.Errorf("after the holder left: exit %d, loaded %q\n%s", code, n.loaded(), status)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("nouveau that will not let go", func(t *testing.T) {
		// A boot without the blacklist (an initramfs that still had
		// nouveau): nouveau drives the GPU, a console holds it.
		n.configure(up580)
		if _, err := n.ct.Stop("", nil); err != nil {
			t.Fatal(err)
		}
		if err := n.host.UnloadDriver(); err != nil {
			t.Fatal(err)
		}
		if err := n.host.BindNouveau("0000:01:00.0", true); err != nil {
			t.Fatal(err)
		}
		n.boot()
		status, _ := n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
		wantAll(t, "status", status, "active (exited)", "reboot required to release nouveau")
		n.must("grep -q 'blacklist nouveau' /etc/modprobe.d/nvidiaprep-blacklist-nouveau.conf && test -e /run/reboot-required")
		wantAll(t, "the install record", n.must("head -n1 /var/lib/nvidia/log"), "("+up590+")")
		if s := n.state(); s.Outcome != hostdriverstate.OutcomeRebootRequired || !strings.Contains(s.Error, "nouveau") {
			t.Errorf("state %+v", s)
		}
		// The reboot with the blacklist: nouveau stays out, and the unit
		// installs and loads the driver at boot.
		if _, err := n.ct.Stop("", nil); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(n.host.Sys, "module/nouveau"))
		os.Remove(filepath.Join(n.host.Sys, "bus/pci/devices/0000:01:00.0/driver"))
		os.WriteFile(filepath.Join(n.host.Proc, "modules"), nil, 0o644)
		n.boot()
		status, _ = n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
		wantAll(t, "status after the reboot", status, "active (exited)", "NVIDIA driver "+up580+" installed and loaded (was: none)")
		if l := n.loaded(); l != allLoaded(up580) {
			t.Errorf("loaded: %q", l)
		}
	})
	t.Logf("whole test: %v", time.Since(t0).Round(time.Millisecond))
}
