package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/status"
	"nvidiaprep/nvidiaprep/term"
)

// statusNode is jsonNode with more containers: 102 runs with the libraries
// of an older driver and its last install (of the loaded one) failed; 103
// is stopped and was never provisioned; 104 is being provisioned now.
func statusNode(t *testing.T) (host, config.Paths) {
	t.Helper()
	h := jsonNode(t)
	cfg, err := config.Load(h.getenv)
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Paths
	for _, id := range []string{"102", "103", "104"} {
		os.WriteFile(filepath.Join(p.PVE, "lxc", id+".conf"), []byte("arch: amd64\nhookscript: local:snippets/nvidiaprep-hook\n"), 0o644)
	}
	now := time.Now().UTC()
	long := "CT 102: nvidia-installer exited 1: ERROR: Unable to find the development tool `cc` in your path; please make sure that you have the package 'gcc' installed"
	record.Save(p.State, record.Provision{VMID: 102, Version: "580.159.04", Outcome: record.Failed, Started: now.Add(-time.Hour), Finished: now.Add(-time.Hour), Error: long})
	record.Save(p.State, record.Provision{VMID: 104, Version: "580.159.04", Outcome: record.Running, Started: now})
	os.MkdirAll(filepath.Join(p.State, "log"), 0o755)
	os.WriteFile(filepath.Join(p.State, "log", "104.log"), []byte("02:00:00 INF CT 104: extracting\n02:00:01 INF CT 104: waiting for apt's lock (held by unattended-upgr, pid 312)\n"), 0o644)
	h.probeCT = func(vmid int) status.Probe {
		switch vmid {
		case 102:
			return status.Probe{State: status.Running, Installed: "570.86.15"}
		case 103:
			return status.Probe{State: status.Stopped}
		case 104:
			return status.Probe{State: status.Running}
		}
		return status.Probe{State: status.Running, Installed: "580.159.04"}
	}
	return h, p
}

// status shows what an admin needs at a glance, in 80 columns: running or
// stopped, the libraries a container has and a failed attempt apart, a
// skew marked, "will be installed at the next start", the worker's step.
func TestStatusForAnAdmin(t *testing.T) {
	h, _ := statusNode(t)
	code, out, errOut := runApp(h, "status")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"CT   STATE    GPUS          GIVEN  USER SPACE        LAST PROVISIONING",
		"101  running  0 (required)  0      580.159.04        installed 580.159.04",
		"102  running  all           -      570.86.15 (skew)  failed 580.159.04, 1h ago",
		"103  stopped  all           -      -                 never",
		"104  running  all           -      none              running 580.159.04: 02:00:",
		// An old version's record, which named the container itself: once here.
		"CT 102: the last provisioning (580.159.04) failed: nvidia-installer exited 1:\n  ERROR",
		"CT 102: it has the libraries of 570.86.15, the host runs 580.159.04: CUDA there",
		"CT 103: libraries will be installed at the next start (pct reboot 103, if it",
		"CT 104: installing the libraries now: 02:00:01 INF CT 104: waiting for apt's",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if term.Len(l) > 80 {
			t.Errorf("%d columns: %q", term.Len(l), l)
		}
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("colour on a pipe:\n%q", out)
	}
	if strings.Contains(out, "CT 101: libraries will be installed") {
		t.Errorf("CT 101 has the loaded driver's libraries:\n%s", out)
	}
	// $COLUMNS narrower still fits; --wide prints every value whole.
	env := h.getenv
	h.getenv = func(k string) (string, bool) {
		if k == "COLUMNS" {
			return "60", true
		}
		return env(k)
	}
	_, out, _ = runApp(h, "status")
	for _, l := range strings.Split(out, "\n") {
		if term.Len(l) > 60 {
			t.Errorf("COLUMNS=60: %d columns: %q", term.Len(l), l)
		}
	}
	h.getenv = env
	_, out, _ = runApp(h, "status", "--wide")
	if !strings.Contains(out, "please make sure that you have the package 'gcc' installed\n") || !strings.Contains(out, "failed 580.159.04, 1h ago: nvidia-installer exited 1: ERROR") {
		t.Errorf("--wide cuts:\n%s", out)
	}
	// One container in full.
	_, out, _ = runApp(h, "status", "102")
	for _, want := range []string{"CT 102\n", "  state               running", "  user space          570.86.15 (the host runs 580.159.04: version skew)", "  last provisioning   failed 580.159.04", "  log                 nvidiaprep logs 102"} {
		if !strings.Contains(out, want) {
			t.Errorf("status 102 lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "CT 101") || strings.Contains(out, "CT 103") {
		t.Errorf("status 102 shows others:\n%s", out)
	}
}

// logs prints the worker's log, escaped, and follows it with -f.
func TestLogs(t *testing.T) {
	h, p := statusNode(t)
	code, out, errOut := runApp(h, "logs", "104")
	if code != 0 || !strings.HasSuffix(out, "waiting for apt's lock (held by unattended-upgr, pid 312)\n") {
		t.Errorf("exit %d: %q %s", code, out, errOut)
	}
	code, _, errOut = runApp(h, "logs", "103")
	if code != 1 || !strings.Contains(errOut, "no provisioning has run for it on this node") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// -f: lines appended later come out, a line at a time, escaped.
	f, err := os.Open(filepath.Join(p.State, "log", "104.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Seek(0, 2)
	ctx, cancel := context.WithCancel(context.Background())
	var got strings.Builder
	done := make(chan error)
	go func() { done <- followFile(ctx, f, &got, 10*time.Millisecond) }()
	w, _ := os.OpenFile(filepath.Join(p.State, "log", "104.log"), os.O_APPEND|os.O_WRONLY, 0)
	w.WriteString("02:00:02 INF CT 104: installing\x1b[2J")
	time.Sleep(50 * time.Millisecond)
	w.WriteString(" 580.159.04\n")
	w.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(got.String(), "\n") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.String() != "02:00:02 INF CT 104: installing\\x1b[2J 580.159.04\n" {
		t.Errorf("followed %q", got.String())
	}
}

// gpus lists each GPU with the selectors enable takes and the containers
// given it.
func TestGPUs(t *testing.T) {
	h, _ := statusNode(t)
	code, out, errOut := runApp(h, "gpus")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, wide, _ := runApp(h, "gpus", "--wide"); !strings.Contains(wide, "INDEX  PCI ADDRESS   UUID                                      MODEL        CONTAINERS\n0      0000:01:00.0  GPU-1d2a0c41-7c39-4a3b-9d35-000000000000  NVIDIA H200  CT 101, 102, 103, 104\n") {
		t.Errorf("gpus --wide:\n%s", wide)
	}
	for _, want := range []string{"GPU 0  0000:01:00.0\n", "  uuid        GPU-1d2a0c41-7c39-4a3b-9d35-000000000000\n", "  model       NVIDIA H200\n", "  containers  CT 101, 102, 103, 104\n", "nvidiaprep enable <vmid> --gpus 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("gpus lacks %q:\n%s", want, out)
		}
	}
}

// doctor's text fits 80 columns (each problem wrapped, its fix below it);
// --wide keeps one line each.
func TestDoctorFitsTheWidth(t *testing.T) {
	h, _ := statusNode(t)
	code, out, _ := runApp(h, "doctor")
	if code != 1 || !strings.Contains(out, "PROBLEM ") || !strings.Contains(out, "\n  fix: ") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if term.Len(l) > 80 {
			t.Errorf("%d columns: %q", term.Len(l), l)
		}
	}
	_, wide, _ := runApp(h, "doctor", "--wide")
	if strings.Count(wide, "\n") >= strings.Count(out, "\n") || !strings.Contains(wide, "\n  fix: ") {
		t.Errorf("--wide wraps:\n%s", wide)
	}
}

// The look into a container never hands liblxc a generated config that is
// no regular file (a FIFO blocks its reader): it is an error at once.
func TestProbeRefusesAFIFOConfig(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "9801"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(dir, "9801", "config"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan status.Probe, 1)
	go func() { done <- (host{}).probe(dir)(9801) }()
	select {
	case p := <-done:
		if p.Err == nil || !strings.Contains(p.Err.Error(), "is a FIFO, not a regular file") || p.State != "" {
			t.Errorf("%+v", p)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the probe blocks on a FIFO config")
	}
	if p := (host{}).probe(dir)(9802); p.State != status.Stopped || p.Err != nil {
		t.Errorf("a container never started here: %+v", p)
	}
}
