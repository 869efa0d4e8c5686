//go:build integration

package integration_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/nvidiaprep/record"
)

// The hookscript has no cgo: a node whose liblxc.so.1 or libnvidia-ml.so.1
// cannot be loaded (a broken upgrade, a half-installed driver) still starts
// its GPU containers. Both libraries are made unloadable for the hook (an
// LD_LIBRARY_PATH of corrupt files by those names, which the dynamic loader
// takes before the system's); the admin program, which links liblxc, cannot
// even start there, and the hook does the whole start: pre-start writes the
// block, post-start finds the container's init in its cgroup (no liblxc)
// and starts the worker, which installs with the node's real liblxc.
func TestHookStartsWithoutLiblxcOrNVML(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "[containers."+id+"]\ngpus = [\"0\"]\n")
	broken := t.TempDir()
	for _, lib := range []string{"liblxc.so.1", "libnvidia-ml.so.1"} {
		if err := os.WriteFile(filepath.Join(broken, lib), []byte("not a shared object\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(n.Env(), "LD_LIBRARY_PATH="+broken)

	// The environment breaks what links liblxc.
	if out, code := runbin.Exit(t, admin(), env, "--help"); code == 0 || !strings.Contains(out, "liblxc.so.1") {
		t.Fatalf("the admin program started with a corrupt liblxc.so.1 (exit %d): %s; the test proves nothing", code, out)
	}

	ct := newCT(t, n, vmid, lxctest.Options{})
	since := time.Now()
	s, err := ct.ProxmoxStart(n.Hook, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	if !s.PreStart.OK() || !s.PostStart.OK() {
		t.Fatalf("pre-start exit %d: %s\npost-start exit %d: %s", s.PreStart.ExitCode, s.PreStart.Output, s.PostStart.ExitCode, s.PostStart.Output)
	}
	if out, code := sh(t, ct, "test -c /dev/nvidia0 && test -c /dev/nvidiactl && echo ok"); code != 0 || out != "ok" {
		t.Errorf("the container lacks its GPU nodes: exit %d %s", code, out)
	}
	p, err := n.WaitProvisioned(vmid, since, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if p.Outcome != record.Installed || p.Version != driverA {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	wantInstalled(t, ct, driverA)
}

// Post-start asks nothing of the container's LXC monitor (it finds the init
// in the container's cgroup): with the monitor stopped (SIGSTOP), where
// liblxc's query for the init waited out its 10 s deadline and failed the
// phase, post-start of a current container still returns 0 at once.
func TestPostStartDoesNotWaitForTheMonitor(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "[containers."+id+"]\ngpus = [\"0\"]\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	startProvisioned(t, n, ct)
	stopMonitor(t, ct)
	t0 := time.Now()
	r, err := runbin.Cmd{Path: n.Hook, Args: []string{id, "post-start"}, Env: n.Env(), Limit: time.Minute}.Run()
	if took := time.Since(t0); err != nil || r.Code != 0 || took > 5*time.Second {
		t.Errorf("post-start with the monitor stopped: exit %d, %v after %v:\n%s", r.Code, err, took, r.Output)
	}
}
