//go:build integration

// Scenario tests on real LXC containers under pure cgroup v2, started the
// way Proxmox starts them, with the real nvidiaprep binaries. Run them as
// root after integration/setup.sh: go test -tags integration ./integration/
package integration_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
)

// hook is the hookscript binary built once for all tests (the nvidiaprep
// program beside it); holdlock and fusestall are integration/cmd/holdlock
// and integration/cmd/fusestall, static.
var hook, holdlock, fusestall string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "nvidiaprep-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		root, err := scenario.ModuleRoot()
		if err == nil {
			hook, err = scenario.BuildHook(root, dir)
		}
		if err == nil {
			holdlock = dir + "/holdlock"
			err = scenario.GoBuild(root, holdlock, "./integration/cmd/holdlock", "CGO_ENABLED=0")
		}
		if err == nil {
			fusestall = dir + "/fusestall"
			err = scenario.GoBuild(root, fusestall, "./integration/cmd/fusestall", "CGO_ENABLED=0")
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// newNode makes a bed and a node with two stand-in GPUs and the given
// container tables.
func newNode(t *testing.T, tables string) *scenario.Node {
	t.Helper()
	bed := lxctest.NewTestBed(t)
	d, err := scenario.TwoGPUs("580.159.04")
	if err != nil {
		t.Fatal(err)
	}
	n, err := scenario.NewNode(bed, hook, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.WriteConfig(tables); err != nil {
		t.Fatal(err)
	}
	return n
}

func newCT(t *testing.T, n *scenario.Node, vmid int, o lxctest.Options) *lxctest.CT {
	t.Helper()
	ct, err := n.Bed.NewContainer(vmid, o)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func start(t *testing.T, n *scenario.Node, ct *lxctest.CT) lxctest.Start {
	t.Helper()
	s, err := ct.ProxmoxStart(n.Hook, n.Env())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	return s
}

func sh(t *testing.T, ct *lxctest.CT, script string) (string, int) {
	t.Helper()
	out, code, err := scenario.Sh(ct, script)
	if err != nil {
		t.Fatalf("CT %d: %s: %v", ct.VMID, script, err)
	}
	return out, code
}

// wantOpen checks what opening path inside the container gives: "No such
// device or address" means the cgroup let it through to a missing driver,
// "Operation not permitted" that the cgroup refused it.
func wantOpen(t *testing.T, ct *lxctest.CT, path, want string) {
	t.Helper()
	out, code := sh(t, ct, "cat "+path+" </dev/null")
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("CT %d: cat %s: exit %d %q, want %q", ct.VMID, path, code, out, want)
	}
}

// stopMonitor stops (SIGSTOP) the LXC monitor of the running container ct,
// its init's parent, so that it answers no query, until the test ends.
func stopMonitor(t *testing.T, ct *lxctest.CT) {
	t.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", ct.InitPID()))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	monitor, err := strconv.Atoi(f[1]) // the init's parent: lxc-start's monitor
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(monitor, unix.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(monitor, unix.SIGCONT) })
}
