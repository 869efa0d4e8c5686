//go:build integration

package integration_test

import (
	"strings"
	"testing"
	"time"
)

// The reboot loop, as a new user meets it on a stand-in node: the unit
// installs the driver and asks for a reboot; the node reboots, and the
// module is not there (DKMS built nothing for the running kernel). The
// unit must fail (red) and say why, and status and doctor must not answer
// "reboot". (Before boot ids were recorded, the unit said "reboot required"
// and exited 0 after every reboot, status said the driver loads at the next
// boot and doctor said to reboot: a loop.)
func TestRebootLoopIsRed(t *testing.T) {
	n := newHostNode(t)
	if _, err := n.host.Boot(time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	n.boot()
	n.must("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends liblxc1 && systemctl enable nvidiaprep-host-driver")
	if out, code := n.sh("systemctl start nvidiaprep-host-driver"); code != 0 {
		log, _ := n.sh("journalctl -u nvidiaprep-host-driver --no-pager | tail -n 30")
		t.Fatalf("install: exit %d: %s\n%s", code, out, log)
	}
	status, _ := n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
	wantContains(t, "after the install", status, "active (exited)", "reboot required")

	// The reboot: a new boot id, still no module loaded.
	if _, err := n.ct.Stop("", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := n.host.Boot(time.Now()); err != nil {
		t.Fatal(err)
	}
	n.boot()
	n.sh("systemctl is-system-running --wait")
	status, _ = n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
	t.Logf("systemctl status after the reboot:\n%s", status)
	if state, _ := n.sh("systemctl is-failed nvidiaprep-host-driver"); strings.TrimSpace(state) != "failed" {
		t.Errorf("the unit is %q after a reboot without the driver, want failed", strings.TrimSpace(state))
	}
	wantContains(t, "systemctl status", status, "NVIDIA driver "+hdWant+" is installed but did not load on this boot",
		"the running kernel "+n.release+" has no NVIDIA driver "+hdWant+" module", "rebooting again does not help")
	if strings.Contains(status, "reboot required") {
		t.Errorf("the unit still asks for a reboot")
	}

	st, _ := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep status")
	t.Logf("nvidiaprep status:\n%s", st)
	wantContains(t, "status", st, "reboot pending     no: the installed driver did not load on this boot", "host driver unit   not-loaded")
	if strings.Contains(st, "loads at the next boot") {
		t.Error("status says the driver loads at the next boot")
	}
	doc, code := n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep doctor")
	t.Logf("nvidiaprep doctor:\n%s", doc)
	if code != 1 {
		t.Errorf("doctor exit %d", code)
	}
	wantContains(t, "doctor", doc, "PROBLEM driver-not-loaded-after-reboot: driver "+hdWant+" is installed but did not load on this boot: the running kernel "+n.release, "(a reboot alone does not help)")
	if strings.Contains(doc, "reboot the node when its guests allow it") {
		t.Error("doctor says to reboot")
	}
}
