//go:build integration

package integration_test

import (
	"strings"
	"testing"
	"time"
)

// The reboot loop, as a new user met it on a stand-in node: the unit
// installed the driver and asked for a reboot; the node rebooted, and the
// module was not there (it never built for the running kernel), and the
// unit said "reboot required" again, green (status: the driver loads at the
// next boot; doctor: reboot the node).
//
// Since driver upgrades need no reboot (issue 18), NVIDIA's installer
// builds, test-loads and loads the module while the unit runs, so a module
// that cannot be built for the running kernel is known at once: the unit
// fails (red) at the install with the build's cause and log (the installer
// stops before it installs any file) and says nothing of a reboot; and a reboot changes nothing:
// the unit at the next boot fails red again with the same cause, and
// status and doctor never answer "reboot". The node's module programs are
// the stand-in ones (integration/standin: no module reaches the machine's
// kernel), and the build fails as the real one does where the module does
// not build (NVIDIAPREP_STANDIN_FAIL_BUILD, installer.sh row 11).
//
// A boot without a driver that did load at its install (the kernel guard's
// boot id) is TestBootWithoutTheInstalledDriverIsRed.
func TestRebootLoopIsRed(t *testing.T) {
	n := newHostNode(t)
	n.standinModules()
	if _, err := n.host.Boot(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	n.boot()
	n.must(`set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io dkms liblxc1 linux-headers-` + n.release + `
mkdir -p /lib/modules/` + n.release + `
echo NVIDIAPREP_STANDIN_FAIL_BUILD=1 >>/etc/nvidiaprep-standin
systemctl enable nvidiaprep-host-driver`)

	redWithTheBuildsCause := func(when string, start bool) {
		t.Helper()
		out, code := "", 0
		if start {
			out, code = n.sh("systemctl start nvidiaprep-host-driver")
		}
		status, _ := n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
		journal, _ := n.sh("journalctl -u nvidiaprep-host-driver --no-pager -b -o cat | tail -n 20")
		t.Logf("%s: systemctl start: exit %d %s\nsystemctl status:\n%s\njournal:\n%s", when, code, out, status, journal)
		if state, _ := n.sh("systemctl is-failed nvidiaprep-host-driver"); strings.TrimSpace(state) != "failed" {
			t.Errorf("%s: the unit is %q, want failed", when, strings.TrimSpace(state))
		}
		wantAll(t, when+": journal", journal, "step 5/6 (run the NVIDIA installer) failed", `"Building kernel modules"`,
			"the NVIDIA kernel module did not build for kernel "+n.release, "/var/log/nvidia-installer.log",
			"rebooting does not help")
		if strings.Contains(journal, "reboot required") || strings.Contains(status, "reboot required") {
			t.Errorf("%s: the unit asks for a reboot", when)
		}
		if out, code := n.sh("ls /run/reboot-required /var/lib/nvidia 2>&1"); code == 0 || strings.Count(out, "No such file") != 2 {
			t.Errorf("%s: a reboot marker or half an install is left:\n%s", when, out)
		}
		if out := n.must("cat /srv/standin/proc/modules 2>/dev/null || true"); strings.Contains(out, "nvidia") {
			t.Errorf("%s: a module is loaded:\n%s", when, out)
		}
		st, _ := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep status")
		t.Logf("%s: nvidiaprep status:\n%s", when, st)
		wantAll(t, when+": status", strings.Join(strings.Fields(st), " "), "host driver unit failed", "step 5/6", "did not build for kernel "+n.release, "rebooting does not help")
		for _, bad := range []string{"reboot pending     yes", "loads at the next boot"} {
			if strings.Contains(st, bad) {
				t.Errorf("%s: status says %q", when, bad)
			}
		}
		doc, code := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep doctor")
		t.Logf("%s: nvidiaprep doctor:\n%s", when, doc)
		if code != 1 {
			t.Errorf("%s: doctor exit %d, want 1", when, code)
		}
		wantAll(t, when+": doctor", strings.Join(strings.Fields(doc), " "), "PROBLEM host-driver-failed", "did not build for kernel "+n.release, "rebooting does not help")
		if strings.Contains(doc, "reboot the node") || strings.Contains(doc, "a reboot may be needed") {
			t.Errorf("%s: doctor says to reboot", when)
		}
	}
	redWithTheBuildsCause("the install", true)

	// The reboot an admin tries anyway: a new boot id, no module loaded; the
	// unit runs at boot (its .run is in the cache) and is red again.
	if _, err := n.ct.Stop("", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.host.Boot(time.Now()); err != nil {
		t.Fatal(err)
	}
	n.boot()
	n.sh("systemctl is-system-running --wait")
	redWithTheBuildsCause("after the reboot", false)
}
