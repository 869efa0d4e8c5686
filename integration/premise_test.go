//go:build integration

package integration_test

// The defences below /dev rely on LXC making the container's /dev afresh
// at every start: a config that turns that off is refused.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/lxctest"
)

// A privileged container with lxc.autodev = 0 keeps its own /dev across
// starts; its root links /dev/.nvidiaprep to a host directory of its
// choosing. Its next start is refused by pre-start, naming the line, and
// LXC never runs: nothing is made at the host path. Before, the container
// started with the link in place and LXC resolved nvidiaprep's mount
// targets through it (this machine's LXC 5.0.2 made nothing on the host;
// the review saw LXC 6.0 make the overlay's mount point there).
func TestAutodevOffIsRefused(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop, ExtraConfig: []string{"lxc.autodev = 0"}})
	planted := filepath.Join(t.TempDir(), "planted")
	prepareAny(t, ct, "mkdir -p /dev && rm -rf /dev/.nvidiaprep && ln -s "+planted+" /dev/.nvidiaprep", false)
	s, err := ct.ProxmoxStart(n.Hook, n.Env())
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	if err == nil || s.PreStart == nil || s.PreStart.OK() {
		t.Fatalf("the start was not refused: %v", err)
	}
	wantAll(t, "pre-start", s.PreStart.Output, `hand-written line "lxc.autodev = 0" keeps the container's own /dev across starts`, "The start is refused")
	if ct.Running() {
		t.Error("the container runs")
	}
	if _, err := os.Lstat(filepath.Join(planted, "drivers")); err == nil {
		t.Errorf("LXC made %s on the host, through the container's link", filepath.Join(planted, "drivers"))
	}
	if b, _ := os.ReadFile(ct.ConfigPath()); strings.Contains(string(b), "BEGIN nvidiaprep") {
		t.Errorf("a block was written:\n%s", b)
	}
}
