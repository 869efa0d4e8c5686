//go:build integration

package integration_test

// Concurrency: hooks of the same container running at once, and a
// container stopped in the middle of its install.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/record"
)

// 20 pre-starts of one container at once, on one generated config and
// with device nodes missing, all succeed and leave one block, the same one
// a lone pre-start writes, no temporary files, and nodes that work.
func TestTwentySimultaneousPreStarts(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	if err := ct.WriteGeneratedConfig(); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"nvidia0", "nvidia-uvm", "nvidiactl"} {
		if err := os.Remove(filepath.Join(n.Host.Dev, node)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	outs := make([]string, 20)
	codes := make([]int, 20)
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], codes[i], _ = runbin.Try(hook, n.Env(), id, "pre-start")
		}(i)
	}
	wg.Wait()
	for i := range outs {
		if codes[i] != 0 {
			t.Errorf("pre-start %d: exit %d:\n%s", i, codes[i], outs[i])
		}
	}
	after, err := os.ReadFile(ct.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if c := strings.Count(string(after), lxcconf.Begin); c != 1 || strings.Count(string(after), lxcconf.End) != 1 {
		t.Fatalf("%d blocks:\n%s", c, after)
	}
	// A lone pre-start on a fresh generated config writes the same.
	if err := ct.WriteGeneratedConfig(); err != nil {
		t.Fatal(err)
	}
	if out, code := runbin.Exit(t, hook, n.Env(), id, "pre-start"); code != 0 {
		t.Fatalf("pre-start: %s", out)
	}
	alone, _ := os.ReadFile(ct.ConfigPath())
	if string(alone) != string(after) {
		t.Errorf("20 pre-starts at once wrote\n%s\na lone one\n%s", after, alone)
	}
	for _, dir := range []string{filepath.Dir(ct.ConfigPath()), n.Host.Dev} {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp-") || strings.Contains(e.Name(), ".nvidiaprep-") {
				t.Errorf("temporary file left: %s", filepath.Join(dir, e.Name()))
			}
		}
	}
	// The container starts with that block (a 21st pre-start) and reaches
	// the recreated nodes as far as the absent driver.
	start(t, n, ct)
	for _, p := range []string{"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} {
		wantOpen(t, ct, p, "No such device or address")
	}
}

// preStartOnly writes a hookscript that runs the real hook's pre-start and
// skips its post-start, so that a test can run post-starts itself.
func preStartOnly(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pre-start-only")
	script := fmt.Sprintf("#!/bin/sh\n[ \"$2\" = post-start ] && exit 0\nexec %s \"$@\"\n", hook)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// installDelay makes the stand-in installer inside ct sleep secs seconds
// before it copies anything (ct must be stopped).
func installDelay(t *testing.T, ct *lxctest.CT, secs int) {
	t.Helper()
	if err := ct.WriteFile(standin.StandinControls, fmt.Appendf(nil, "NVIDIAPREP_STANDIN_INSTALL_DELAY=%d\n", secs), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Two post-starts of a container at once start two workers, of which one
// installs and the other leaves it to that one.
func TestTwoSimultaneousPostStarts(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	installDelay(t, ct, 2)
	if _, err := ct.ProxmoxStart(preStartOnly(t), n.Env()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	since := time.Now()
	var wg sync.WaitGroup
	outs := make([]string, 2)
	codes := make([]int, 2)
	for i := range outs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			outs[i], codes[i], _ = runbin.Try(hook, n.Env(), id, "post-start")
		}(i)
	}
	wg.Wait()
	for i := range outs {
		if codes[i] != 0 {
			t.Errorf("post-start %d: exit %d:\n%s", i, codes[i], outs[i])
		}
	}
	p, err := n.WaitProvisioned(vmid, since, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	log := n.WorkerLog(vmid)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(log, "phase=provision") < 2 && time.Now().Before(deadline); log = n.WorkerLog(vmid) {
		time.Sleep(50 * time.Millisecond)
	}
	if c := strings.Count(log, "installing NVIDIA user-space libraries "+driverA); c != 1 {
		t.Errorf("%d installs, want 1:\n%s", c, log)
	}
	workers := strings.Count(log, "waiting for one of") + strings.Count(log, "another worker is provisioning it")
	if !strings.Contains(log, "another worker is provisioning it; leaving it to that one") || workers != 2 {
		t.Errorf("the log does not show two workers, one of which left the install to the other:\n%s", log)
	}
	wantInstalled(t, ct, driverA)
}

// A container stopped while its installer runs: the worker ends at once
// with a failed record that says so, and the next start installs.
func TestContainerStoppedDuringItsInstall(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	installDelay(t, ct, 60)
	since := time.Now()
	start(t, n, ct)
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(n.WorkerLog(vmid), "installing NVIDIA user-space libraries") {
		if time.Now().After(deadline) {
			t.Fatalf("the installer did not start:\n%s", n.WorkerLog(vmid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The stop comes while the installer itself sleeps, as it says in its log.
	for {
		b, _ := os.ReadFile(ct.RootFS() + "/var/log/nvidia-installer.log")
		if strings.Contains(string(b), "Stand-in: sleeping") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the installer did not reach its sleep:\n%s\nworker log:\n%s", b, n.WorkerLog(vmid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopped := time.Now()
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	p := failedProvision(t, n, vmid, since, "it stopped during the install of "+driverA, "its next start installs again")
	if took := p.Finished.Sub(stopped); took > 15*time.Second {
		t.Errorf("the worker ended %v after the stop", took)
	}

	installDelay(t, ct, 0)
	s, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	wantAll(t, "post-start", s.PostStart.Output, "an earlier install did not finish")
	wantInstalled(t, ct, driverA)
}
