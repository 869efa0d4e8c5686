//go:build integration

// Package systemdworker_test runs package launch's transient-unit path in a
// systemd-booted test container: the machine the tests run on has no
// systemd as PID 1. A static probe program (./probe) stands for both the
// hookscript's launcher and the provisioning worker.
package systemdworker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/nvidiaprep/launch"
)

const probe = "/usr/local/bin/probe"

// buildProbe builds the probe statically into a temporary directory.
func buildProbe(t *testing.T) []byte {
	t.Helper()
	root, err := scenario.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "probe")
	if err := scenario.GoBuild(root, out, "./integration/systemdworker/probe", "CGO_ENABLED=0"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bootWithProbe makes a systemd container with the probe in it and boots it.
func bootWithProbe(t *testing.T, vmid int) *lxctest.CT {
	t.Helper()
	bin := buildProbe(t)
	bed := lxctest.NewTestBed(t)
	ct, err := bed.NewContainer(vmid, lxctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFile(probe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatalf("start: %v\n(log: %s)", err, ct.LogPath())
	}
	t.Cleanup(func() {
		if _, err := ct.Stop("", nil); err != nil {
			t.Error(err)
		}
	})
	if err := ct.WaitSystemd(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	return ct
}

// run runs a command in the container; it fails the test if lxc-attach did.
func run(t *testing.T, ct *lxctest.CT, args ...string) (string, int) {
	t.Helper()
	out, errOut, code, err := ct.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out + errOut), code
}

// launchJob runs "probe launch vmid argv..." and returns its sentence and
// how long it took; it fails the test when the launcher failed.
func launchJob(t *testing.T, ct *lxctest.CT, vmid int, argv ...string) (string, time.Duration) {
	t.Helper()
	t0 := time.Now()
	out, code := run(t, ct, append([]string{probe, "launch", fmt.Sprint(vmid)}, argv...)...)
	d := time.Since(t0)
	if code != 0 {
		t.Fatalf("probe launch %d %v: exit %d: %s", vmid, argv, code, out)
	}
	return out, d
}

// show is the unit's properties, as systemctl show prints them.
func show(t *testing.T, ct *lxctest.CT, unit string, props ...string) map[string]string {
	t.Helper()
	out, code := run(t, ct, "systemctl", "show", "-p", strings.Join(props, ","), unit)
	if code != 0 {
		t.Fatalf("systemctl show %s: exit %d: %s", unit, code, out)
	}
	m := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitFor polls cond every 100 ms until it returns true or timeout passes;
// it returns the last description cond gave.
func waitFor(timeout time.Duration, cond func() (bool, string)) (bool, string) {
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok || time.Now().After(deadline) {
			return ok, last
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func running(state string) bool {
	switch state {
	case "active", "activating", "reloading", "deactivating":
		return true
	}
	return false
}

// waitEnded waits until the unit is no longer running.
func waitEnded(t *testing.T, ct *lxctest.CT, unit string, timeout time.Duration) map[string]string {
	t.Helper()
	var p map[string]string
	if ok, _ := waitFor(timeout, func() (bool, string) {
		p = show(t, ct, unit, "LoadState", "ActiveState", "SubState", "Result", "StatusText")
		return !running(p["ActiveState"]), ""
	}); !ok {
		t.Fatalf("%s still running after %v: %v", unit, timeout, p)
	}
	return p
}

// waitJournal waits until journalctl's output for the match holds want n
// times, and returns that output.
func waitJournal(t *testing.T, ct *lxctest.CT, want string, n int, match ...string) string {
	t.Helper()
	args := append([]string{"journalctl", "--no-pager", "-o", "cat"}, match...)
	ok, out := waitFor(10*time.Second, func() (bool, string) {
		out, _ := run(t, ct, args...)
		return strings.Count(out, want) >= n, out
	})
	if !ok {
		t.Fatalf("%v: want %q %d times in 10 s, got:\n%s", args, want, n, out)
	}
	return out
}

var startedRE = regexp.MustCompile(`^started (\S+); follow it with: systemctl status (\S+); journalctl -u (\S+)$`)

func wantStarted(t *testing.T, sentence string, unit string) {
	t.Helper()
	m := startedRE.FindStringSubmatch(sentence)
	if m == nil || m[1] != unit || m[2] != unit || m[3] != unit {
		t.Fatalf("launch said %q; want it started %s", sentence, unit)
	}
}

// TestTransientWorker runs workers through launch.Start in a container
// booted by systemd: the launcher returns at once; the worker runs as the
// transient unit nvidiaprep-provision-<vmid>.service with its environment,
// its STATUS= lines and its output in the journal; a second launch while it
// runs starts nothing; the unit's name is free again after a success, and a
// failed unit is cleared by the next launch.
func TestTransientWorker(t *testing.T) {
	ct := bootWithProbe(t, lxctest.VMID(t))
	if out, code := run(t, ct, "test", "-d", "/run/systemd/system"); code != 0 {
		t.Fatalf("no /run/systemd/system in the container: %s", out)
	}

	unit := launch.Unit(101)
	if unit != "nvidiaprep-provision-101.service" {
		t.Fatalf("launch.Unit(101) = %q", unit)
	}

	// 1. The launcher returns while the 3 s worker runs.
	s, d := launchJob(t, ct, 101, probe, "work", "3")
	t.Logf("launch 101: %v: %s", d, s)
	wantStarted(t, s, unit)
	if d > 2*time.Second {
		t.Errorf("launch took %v; it should not wait for the 3 s worker", d)
	}

	// 2. While it runs: active, with the worker's STATUS=.
	var p map[string]string
	ok, _ := waitFor(2*time.Second, func() (bool, string) {
		p = show(t, ct, unit, "ActiveState", "StatusText", "InvocationID", "MainPID", "Type", "NotifyAccess")
		return p["ActiveState"] == "active" && p["StatusText"] != "", ""
	})
	if !ok {
		t.Fatalf("%s: %v; want active with a StatusText", unit, p)
	}
	t.Logf("running: %v", p)
	if p["StatusText"] != "step one" {
		t.Errorf("StatusText %q, want %q", p["StatusText"], "step one")
	}
	inv1 := p["InvocationID"]
	if inv1 == "" {
		t.Fatalf("no InvocationID: %v", p)
	}
	if out, _ := run(t, ct, "systemctl", "status", "--no-pager", unit); !strings.Contains(out, "Status: \"step one\"") {
		t.Errorf("systemctl status does not show the worker's status:\n%s", out)
	}

	// 3. A second launch while it runs starts nothing.
	s, _ = launchJob(t, ct, 101, probe, "work", "3")
	if !strings.HasPrefix(s, unit+" is already running; ") {
		t.Errorf("second launch said %q; want %s is already running", s, unit)
	}
	if q := show(t, ct, unit, "ActiveState", "InvocationID", "MainPID"); q["InvocationID"] != inv1 || q["MainPID"] != p["MainPID"] {
		t.Errorf("after the second launch: %v; want invocation %s, pid %s still", q, inv1, p["MainPID"])
	}

	// 4. After it ends: its output in the journal, the unit gone.
	end := waitEnded(t, ct, unit, 10*time.Second)
	t.Logf("ended: %v", end)
	if end["ActiveState"] == "failed" {
		t.Fatalf("%s failed: %v", unit, end)
	}
	j := waitJournal(t, ct, "work done", 1, "_SYSTEMD_INVOCATION_ID="+inv1)
	if n := strings.Count(j, "work started"); n != 1 {
		t.Errorf("invocation %s started the work %d times:\n%s", inv1, n, j)
	}
	waitJournal(t, ct, "work done", 1, "-u", unit)
	if out, code := run(t, ct, "systemctl", "is-active", unit); code == 0 {
		t.Errorf("systemctl is-active %s after the end: %s", unit, out)
	}
	if out, _ := run(t, ct, "systemctl", "is-failed", unit); out == "failed" {
		t.Errorf("systemctl is-failed %s: %s", unit, out)
	}
	if n := strings.Count(waitJournal(t, ct, "work started", 1, "-u", unit), "work started"); n != 1 {
		t.Errorf("%d workers ran for 101, want 1", n)
	}

	// 5. The name is free again after the success.
	// (The launcher only queues the start job: wait for the run's output
	// before waiting for its end.)
	s, _ = launchJob(t, ct, 101, probe, "work", "0.5")
	wantStarted(t, s, unit)
	waitJournal(t, ct, "work done", 2, "-u", unit)
	end = waitEnded(t, ct, unit, 10*time.Second)
	if end["ActiveState"] == "failed" {
		t.Fatalf("second run of %s failed: %v", unit, end)
	}

	// 6. A failing worker leaves a failed unit with its last status.
	unit2 := launch.Unit(102)
	s, _ = launchJob(t, ct, 102, probe, "fail")
	wantStarted(t, s, unit2)
	if ok, out := waitFor(5*time.Second, func() (bool, string) {
		out, _ := run(t, ct, "systemctl", "is-failed", unit2)
		return out == "failed", out
	}); !ok {
		j, _ := run(t, ct, "journalctl", "--no-pager", "-n", "8")
		// go-systemd's PropExecStart(argv, true) sets systemd's
		// ignore-failure flag ("-" before the path): exit 1 counts as success.
		t.Fatalf("systemctl is-failed %s: %q, want failed (%v): was the exit status ignored (PropExecStart's second argument must be false)?\njournal:\n%s", unit2, out, show(t, ct, unit2, "LoadState", "ActiveState", "Result", "StatusText"), j)
	}
	p = show(t, ct, unit2, "ActiveState", "Result", "StatusText", "ExecMainStatus", "InvocationID")
	t.Logf("failed: %v", p)
	if p["StatusText"] != "failed: boom" || p["ExecMainStatus"] != "1" {
		t.Errorf("%s: %v; want StatusText %q, ExecMainStatus 1", unit2, p, "failed: boom")
	}
	inv2 := p["InvocationID"]
	waitJournal(t, ct, "work failed: boom", 1, "-u", unit2)

	// 7. The next launch clears the failed unit and starts again, twice
	// (failing, then working), so that the reset is not a one-off.
	for i, argv := range [][]string{{probe, "fail"}, {probe, "work", "0.5"}} {
		s, _ = launchJob(t, ct, 102, argv...)
		wantStarted(t, s, unit2)
		if i == 0 {
			waitJournal(t, ct, "work failed: boom", 2, "-u", unit2)
		} else {
			waitJournal(t, ct, "work done", 1, "-u", unit2)
		}
		end = waitEnded(t, ct, unit2, 10*time.Second)
		inv := show(t, ct, unit2, "InvocationID")["InvocationID"]
		t.Logf("relaunch %d of 102 (%v): %s; ended %v", i+1, argv[1:], s, end)
		if i == 0 {
			if end["ActiveState"] != "failed" || inv == "" || inv == inv2 {
				t.Errorf("relaunch of the failed %s: %v, invocation %q (before %s); want a new failed run", unit2, end, inv, inv2)
			}
			continue
		}
		if end["ActiveState"] == "failed" {
			t.Errorf("relaunch of %s after a failure: %v; want success", unit2, end)
		}
		if out, _ := run(t, ct, "systemctl", "is-failed", unit2); out == "failed" {
			t.Errorf("systemctl is-failed %s after a successful relaunch: %s", unit2, out)
		}
	}
}
