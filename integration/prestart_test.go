//go:build integration

package integration_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/nvidiaprep/lxcconf"
)

// A privileged container given GPU 0 reaches nvidia0 and the control nodes
// as far as the (absent) driver, and the device cgroup refuses GPU 1, even
// through a node the container makes itself.
func TestPrivilegedContainerSeesOnlyItsGPU(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "[containers."+id+"]\ngpus = [\"0\"]\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	s := start(t, n, ct)
	if !s.PreStart.OK() {
		t.Fatalf("pre-start: %s", s.PreStart.Output)
	}
	for _, p := range []string{"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"} {
		wantOpen(t, ct, p, "No such device or address")
	}
	if out, code := sh(t, ct, "ls /dev/nvidia1"); code == 0 {
		t.Errorf("nvidia1 is mounted in a container given GPU 0: %s", out)
	}
	out, code := sh(t, ct, "mknod /tmp/nvidia1 c 195 1 && cat /tmp/nvidia1")
	if code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("a self-made nvidia1 node: exit %d %q, want Operation not permitted", code, out)
	}
}

func TestUnprivilegedContainerGetsItsGPU(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "[containers."+id+"]\ngpus = [\"GPU-1d2a0c41-7c39-4a3b-9d35-000000000000\"]\n")
	ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: true})
	start(t, n, ct)
	for _, p := range []string{"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} {
		wantOpen(t, ct, p, "No such device or address")
	}
	if out, code := sh(t, ct, "ls /dev/nvidia1"); code == 0 {
		t.Errorf("nvidia1 is mounted in a container given GPU 0: %s", out)
	}
}

// Five restarts leave one identical block; a second pre-start on the same
// generated config (a hook run twice) changes nothing.
func TestRestartsLeaveOneIdenticalBlock(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	var first string
	for i := 0; i < 5; i++ {
		if _, err := ct.ProxmoxStart(n.Hook, n.Env()); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(ct.ConfigPath())
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = string(b)
		}
		if string(b) != first || strings.Count(first, lxcconf.Begin) != 1 {
			t.Fatalf("start %d: block differs or repeats:\n%s", i, b)
		}
		wantOpen(t, ct, "/dev/nvidia1", "No such device or address") // all GPUs by default
		if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
			t.Fatal(err)
		}
	}
	if err := ct.WriteGeneratedConfig(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if out, code := runbin.Exit(t, n.Hook, n.Env(), id, "pre-start"); code != 0 {
			t.Fatalf("pre-start: exit %d\n%s", code, out)
		}
	}
	b, _ := os.ReadFile(ct.ConfigPath())
	if string(b) != first {
		t.Fatalf("pre-start twice differs from a start:\n%s", b)
	}
}

func TestNoGPUsGetsNothing(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "[containers."+id+"]\ngpus = []\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	start(t, n, ct)
	if out, code := sh(t, ct, "ls /dev/ | grep nvidia"); code == 0 {
		t.Errorf("a container with gpus = [] has NVIDIA nodes: %s", out)
	}
	b, _ := os.ReadFile(ct.ConfigPath())
	if strings.Contains(string(b), lxcconf.Begin) {
		t.Errorf("a block was written for gpus = []:\n%s", b)
	}
}

// With no driver loaded, a container that requires its GPU does not start
// and the task log says why and what to run; another starts without GPU.
func TestNoDriverRequiredRefusesToStart(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	vmid2 := lxctest.VMID(t)
	n := newNode(t, "[containers."+id+"]\nrequired = true\n")
	if err := n.Host.UnloadDriver(); err != nil {
		t.Fatal(err)
	}
	ct := newCT(t, n, vmid, lxctest.Options{})
	s, err := ct.ProxmoxStart(n.Hook, n.Env())
	t.Cleanup(func() { ct.Stop("", nil) })
	if err == nil || ct.Running() {
		t.Fatal("a container that requires its GPU started without a driver")
	}
	for _, want := range []string{"CT " + id + " requires its GPU", "no NVIDIA driver is loaded", "modprobe nvidia"} {
		if !strings.Contains(s.PreStart.Output, want) {
			t.Errorf("task log lacks %q:\n%s", want, s.PreStart.Output)
		}
	}

	other := newCT(t, n, vmid2, lxctest.Options{})
	s = start(t, n, other)
	if !strings.Contains(s.PreStart.Output, "starts without GPU") {
		t.Errorf("task log does not say CT %d starts without GPU:\n%s", vmid2, s.PreStart.Output)
	}
	if out, code := sh(t, other, "ls /dev/ | grep nvidia"); code == 0 {
		t.Errorf("NVIDIA nodes without a driver: %s", out)
	}
}

// A hand-written rule with an old uvm major gets a warning naming it and
// the fix; a hand-written mount of a node nvidiaprep mounts is left out of
// the start's config, so the node is mounted once, as the container's copy.
func TestHandWrittenLines(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "")
	stale := "lxc.cgroup2.devices.allow = c 1:99 rwm" // major 1 is mem: registered, so not stale
	old := "lxc.cgroup2.devices.allow = c 99:* rwm"
	ct := newCT(t, n, vmid, lxctest.Options{ExtraConfig: []string{
		stale, old,
		"lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file",
	}})
	s := start(t, n, ct)
	if !strings.Contains(s.PreStart.Output, `c 99:* rwm`) || !strings.Contains(s.PreStart.Output, filepath.Join(n.PVEDir(), "lxc/"+id+".conf")) {
		t.Errorf("no warning about the stale rule:\n%s", s.PreStart.Output)
	}
	if strings.Contains(s.PreStart.Output, "c 1:99") {
		t.Errorf("warned about a rule for a registered major:\n%s", s.PreStart.Output)
	}
	// The hand-written bind is left out of the start's config (LXC would
	// mount it and skip the container's copy): nvidia0 is mounted once.
	b, _ := os.ReadFile(ct.ConfigPath())
	mounts := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "lxc.mount.entry") && strings.Contains(l, " dev/nvidia0 none") {
			mounts++
		}
	}
	if mounts != 1 || !strings.Contains(string(b), lxcconf.Disabled+"lxc.mount.entry = /dev/nvidia0 dev/nvidia0") {
		t.Errorf("nvidia0 mounted %d times, or the hand-written bind not left out:\n%s", mounts, b)
	}
}
