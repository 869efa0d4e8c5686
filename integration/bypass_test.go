//go:build integration

package integration_test

import (
	"strconv"
	"strings"
	"testing"

	"nvidiaprep/integration/lxctest"
)

// A privileged container given GPU 1 that also carries a hand-written
// "c 195:* rwm" reaches GPU 0 (it makes the node itself): pre-start names
// the line and its fix in the task log; with strict = true it refuses the
// start instead.
func TestHandWrittenRuleThatBypassesTheSelection(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "[containers."+id+"]\ngpus = [\"1\"]\ninstall = false\n")
	ct := newCT(t, n, vmid, lxctest.Options{ExtraConfig: []string{"lxc.cgroup2.devices.allow = c 195:* rwm"}})
	s := start(t, n, ct)
	if !strings.Contains(s.PreStart.Output, `hand-written line "lxc.cgroup2.devices.allow = c 195:* rwm" allows every NVIDIA node (195:*) to this privileged container`) ||
		!strings.Contains(s.PreStart.Output, "gpus in [containers."+id+"]") {
		t.Errorf("the task log does not name the line and its fix:\n%s", s.PreStart.Output)
	}
	// What the warning is about is real: GPU 0 opens as far as the driver.
	if out, _ := sh(t, ct, "mknod /tmp/nvidia0 c 195 0 && cat /tmp/nvidia0 </dev/null"); !strings.Contains(out, "No such device or address") {
		t.Errorf("the hand-written rule does not reach GPU 0 (%q): the warning would be wrong", out)
	}
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	if err := n.WriteConfig("[containers." + id + "]\ngpus = [\"1\"]\ninstall = false\nstrict = true\n"); err != nil {
		t.Fatal(err)
	}
	_, err := ct.ProxmoxStart(n.Hook, n.Env())
	if err == nil || !strings.Contains(err.Error(), "CT "+id+" has strict = true in [containers."+id+"]") || !strings.Contains(err.Error(), "c 195:* rwm") {
		t.Fatalf("strict = true: start %v, want it refused naming the line", err)
	}
	if ct.Running() {
		t.Errorf("the container runs although strict = true refused its start")
	}
}
