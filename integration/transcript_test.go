//go:build integration

package integration_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/pvenode"
)

// transcript records a session at the node's shell as Markdown.
type transcript struct {
	t *testing.T
	n *pvenode.Node
	b strings.Builder
}

// say adds a sentence of narration.
func (tr *transcript) say(text string) { tr.b.WriteString("\n" + text + "\n") }

// run types cmd at the node's root shell and records it with its output
// (not on a terminal: 80 columns, no colour) and a non-zero exit status.
func (tr *transcript) run(cmd string) (string, int) {
	tr.t.Helper()
	out, code, err := tr.n.Sh("cd /root && " + cmd + " 2>&1")
	if err != nil {
		tr.t.Fatalf("%s: %v", cmd, err)
	}
	out = strings.TrimRight(out, "\n")
	tr.b.WriteString("\n```console\nroot@pve1:~# " + cmd + "\n")
	if out != "" {
		tr.b.WriteString(out + "\n")
	}
	if code != 0 {
		fmt.Fprintf(&tr.b, "[exit status %d]\n", code)
	}
	tr.b.WriteString("```\n")
	return out, code
}

// TestFirstTenMinutes is a new admin's first ten minutes on a Proxmox VE
// 9-like node (the node bed, the real .deb installed with apt, real
// nested containers, stand-in GPUs): install, look, enable, start, status,
// doctor, a typo, a wrong GPU. With NVIDIAPREP_TRANSCRIPT=<file> it writes
// the session there (docs/transcript.sh: docs/first-ten-minutes.md).
func TestFirstTenMinutes(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a node")
	}
	n, _ := bootNode(t, "")
	g101, err := n.NewGuest(101, pvenode.GuestOptions{Root: pvenode.RootTrixie})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.NewGuest(102, pvenode.GuestOptions{Root: pvenode.RootBookworm, Unprivileged: true}); err != nil {
		t.Fatal(err)
	}
	tr := &transcript{t: t, n: n}
	fmt.Fprintf(&tr.b, "# A new admin's first ten minutes\n\n"+
		"Recorded by `docs/transcript.sh` (`TestFirstTenMinutes` in integration/transcript_test.go) on %s\n"+
		"on the node bed: a Proxmox VE 9-like node (Debian 13, LXC 6.0, systemd, a stand-in `pct`) in a\n"+
		"container, nvidiaprep's real `.deb` installed with apt, real nested containers 101 (Debian 13)\n"+
		"and 102 (Debian 12, unprivileged), and two stand-in GPUs (driver %s). The node's\n"+
		"`/etc/nvidiaprep/nvidiaprep.toml` points `[paths]` at the stand-in GPU tree; everything else is\n"+
		"as an admin would see it. Rerun it after a change: `bash docs/transcript.sh`. (Recorded before\n"+
		"`nvidiaprep check`, per-table configuration errors and enable's checks of GPU selectors landed: the\n"+
		"typo and wrong-GPU parts show them once they have; rerun it then.)\n",
		time.Now().UTC().Format("2006-01-02"), driverB)

	tr.say("## Install\n\nThe package built with `make deb` is copied to the node and installed with apt.")
	tr.run("DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall " + n.DebPath() + " | tail -n 4")
	if out, code := tr.run("nvidiaprep --version"); code != 0 || !strings.HasPrefix(out, "nvidiaprep ") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	tr.run("nvidiaprep")

	tr.say("## Look before enabling anything")
	tr.run("nvidiaprep gpus")
	tr.run("nvidiaprep doctor")

	tr.say("## Give container 101 its GPU, and start it")
	tr.run("nvidiaprep enable --help")
	if _, code := tr.run("nvidiaprep enable 101 --gpus 0"); code != 0 {
		t.Fatalf("enable 101: exit %d", code)
	}
	if out, code := tr.run("pct start 101"); code != 0 {
		t.Fatalf("pct start 101: exit %d\n%s", code, out)
	}
	tr.say("The libraries are installed in the background; `status` right after the start:")
	tr.run("nvidiaprep status")
	if out := waitProvisioning(n, 101); !strings.Contains(out, `"outcome": "installed"`) {
		t.Fatalf("CT 101 not provisioned in 3 minutes:\n%s", out)
	}
	tr.say("A little later:")
	if out, _ := tr.run("nvidiaprep status 101"); !strings.Contains(out, "user space          "+driverB) || !strings.Contains(out, "state               running") {
		t.Errorf("status 101 after the install:\n%s", out)
	}
	tr.run("nvidiaprep logs 101 | tail -n 5")
	if out, code, _ := g101.Sh("ls /dev/nvidia0 /dev/nvidiactl && cat /var/lib/nvidiaprep/installed"); code != 0 {
		t.Errorf("CT 101 lacks its GPU: %s", out)
	}
	tr.run("lxc-attach -n 101 -- sh -c 'ls /dev/nvidia*; cat /var/lib/nvidiaprep/installed'")
	tr.run("nvidiaprep doctor")

	tr.say("## A typo")
	if out, code := tr.run("nvidiaprep stauts"); code != 2 || !strings.Contains(out, `did you mean "status"?`) {
		t.Errorf("stauts: exit %d %q", code, out)
	}
	if out, code := tr.run("nvidiaprep enable 102 --gpu 1"); code != 2 || !strings.Contains(out, "did you mean --gpus?") {
		t.Errorf("--gpu: exit %d %q", code, out)
	}
	tr.say("A typo in the configuration file itself (a key of container 102's table):")
	tr.run(`printf '\n[containers.102]\ngpu = ["1"]\n' >> /etc/nvidiaprep/nvidiaprep.toml`)
	tr.run("nvidiaprep check")
	tr.run("nvidiaprep doctor")
	tr.run("pct reboot 101")
	tr.say("Fixed, and 101 started again if the bad line kept it from starting:")
	tr.run(`sed -i 's/^gpu = /gpus = /' /etc/nvidiaprep/nvidiaprep.toml && nvidiaprep doctor`)
	tr.run("lxc-info -n 101 -s -H | grep -q RUNNING || pct start 101")

	tr.say("## A GPU this node does not have")
	tr.run("nvidiaprep enable 102 --gpus 7 --required")
	tr.run("pct start 102")
	tr.run("nvidiaprep status")
	tr.run("nvidiaprep doctor")
	tr.say("Corrected:")
	if _, code := tr.run("nvidiaprep enable 102 --gpus 1 --required"); code != 0 {
		t.Errorf("enable 102 --gpus 1: exit %d", code)
	}
	tr.run("pct start 102 || pct reboot 102")
	tr.run("nvidiaprep gpus")
	if out := waitProvisioning(n, 102); !strings.Contains(out, `"outcome": "installed"`) {
		t.Errorf("CT 102 not provisioned in 3 minutes:\n%s", out)
	}
	tr.say("A minute later:")
	tr.run("nvidiaprep status")

	if path := os.Getenv("NVIDIAPREP_TRANSCRIPT"); path != "" {
		if err := os.WriteFile(path, []byte(tr.b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
}

// waitProvisioning waits up to 3 minutes for the container's provisioning
// to end and returns its last_provisioning (status --json).
func waitProvisioning(n *pvenode.Node, vmid int) string {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out, _, _ := n.Sh(fmt.Sprintf("nvidiaprep status %d --json | sed -n '/\"last_provisioning\"/,/}/p'", vmid))
		if strings.Contains(out, `"outcome": "installed"`) || strings.Contains(out, `"outcome": "failed"`) || time.Now().After(deadline) {
			return out
		}
		time.Sleep(2 * time.Second)
	}
}
