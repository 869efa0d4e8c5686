//go:build integration

package integration_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/record"
)

// killPoint is a moment of an install at which the crash test kills the
// provisioning worker, the installer inside the container, or both.
type killPoint struct {
	name string
	// at tells, from what the host sees of the install, that the moment has
	// come. It is asked every few milliseconds.
	at func(o *progress) bool
	// worker and installer are what to kill.
	worker, installer bool
	// pause makes the stand-in installer sleep this long (s) before it
	// copies anything; perFile, before each file and link.
	pause, perFile string
	// fresh removes the version's extracted tree first, so the worker extracts it.
	fresh bool
	// late points may come after the worker has finished (their window is
	// short): nothing to kill then.
	late bool
}

// Paths inside the container that the kill points watch.
const (
	ctMarker = "/var/lib/nvidiaprep/provisioning"
	ctNVLog  = "/var/lib/nvidia/log"
)

var killPoints = []killPoint{
	{name: "worker just started", worker: true, at: func(o *progress) bool { return len(workerPIDs(o.vmid)) > 0 }},
	{name: "record saved as running", worker: true, at: func(o *progress) bool {
		p, ok, _ := record.Load(o.n.StateDir(), o.vmid)
		return ok && p.Outcome == record.Running && !p.Started.Before(o.since)
	}},
	{name: "extracting the driver tree", worker: true, fresh: true, at: func(o *progress) bool {
		_, err := os.Stat(filepath.Join(o.n.Host.Root, "cache", "tmp", "extract-"+o.version))
		return err == nil
	}},
	{name: "tree ready", worker: true, at: func(o *progress) bool { return o.logged("preparing driver") }},
	{name: "before the dpkg locks", worker: true, at: func(o *progress) bool { return o.logged("init is not systemd") }},
	{name: "cleaning begun", worker: true, at: func(o *progress) bool { return o.logged("removing conflicting NVIDIA installs") }},
	{name: "marker written", worker: true, at: func(o *progress) bool { return o.exists(ctMarker) }},
	{name: "uninstalling the old version", worker: true, at: func(o *progress) bool { return o.newer("/var/log/nvidia-uninstall.log") }},
	{name: "old version's libraries removed", worker: true, at: func(o *progress) bool {
		return o.exists(ctMarker) && !o.exists(libDir+"/libcuda.so."+o.old)
	}},
	{name: "installer starting", worker: true, perFile: "0.1", at: func(o *progress) bool { return o.logged("installing NVIDIA user-space libraries") }},
	// The worker's earlier steps run short commands that name the installer
	// too (checkMount's `test -x "$1"`, the old version's uninstall): the
	// point comes once the install has begun.
	{name: "installer starting, installer killed", installer: true, perFile: "0.1", at: func(o *progress) bool {
		return o.logged("installing NVIDIA user-space libraries") && len(installerPIDs(o.vmid)) > 0
	}},
	{name: "installer paused, worker killed", worker: true, pause: "2", at: func(o *progress) bool { return o.installerSays("Stand-in: sleeping") }},
	{name: "installer paused, installer killed", installer: true, pause: "2", at: func(o *progress) bool { return o.installerSays("Stand-in: sleeping") }},
	{name: "first file installed", worker: true, perFile: "0.3", at: func(o *progress) bool { return o.entries("1: ") >= 1 }},
	{name: "half the files installed, installer killed", installer: true, perFile: "0.3", at: func(o *progress) bool { return o.entries("1: ") >= 4 }},
	{name: "files installed, links begun", worker: true, perFile: "0.3", at: func(o *progress) bool { return o.entries("0: ") >= 1 }},
	{name: "two files installed, both killed", worker: true, installer: true, perFile: "0.3", at: func(o *progress) bool { return o.entries("1: ") >= 2 }},
	{name: "verifying", worker: true, late: true, at: func(o *progress) bool { return o.logged("verifying") }},
	{name: "in-container record written", worker: true, late: true, at: func(o *progress) bool {
		b, _ := os.ReadFile(o.root + "/var/lib/nvidiaprep/installed")
		return strings.Contains(string(b), "version="+o.version+"\n") && o.newer("/var/lib/nvidiaprep/installed")
	}},
	{name: "marker removed", worker: true, late: true, at: func(o *progress) bool {
		if o.exists(ctMarker) {
			o.seen = true
		}
		return o.seen && !o.exists(ctMarker)
	}},
}

// The provisioning worker (and the installer inside the container) killed
// with SIGKILL at 20 points of an install, each an upgrade or downgrade
// between drivers A and B: each time the lock is free at once, and the next
// start of the container converges to exactly the host's version, with no
// "running" record left and no file of the other version.
func TestKilledInstallsConverge(t *testing.T) {
	n := provisionNode(t, "")
	// B's .run is as big as a real one's kernel sources make it, so that its
	// extraction takes a moment.
	if err := n.CacheRun(driverB, standin.RunOptions{PayloadBytes: 128 << 20}); err != nil {
		t.Fatal(err)
	}
	cache := driverrun.Cache{Dir: filepath.Join(n.Host.Root, "cache")}
	for _, v := range []string{driverA, driverB} {
		if _, err := cache.Extract(context.Background(), v, ""); err != nil {
			t.Fatal(err)
		}
	}
	// One container without systemd, so that a start and a stop take a
	// moment; its install is the same.
	vmid := lxctest.VMID(t)
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	converge(t, n, ct, driverA, driverB)

	t0 := time.Now()
	landed := 0
	for i, kp := range killPoints {
		version, old := driverB, driverA
		if i%2 == 1 {
			version, old = driverA, driverB
		}
		r0 := time.Now()
		if !t.Run(fmt.Sprintf("%02d %s", i+1, kp.name), func(t *testing.T) {
			if killRound(t, n, ct, cache, kp, version, old) {
				landed++
			}
			converge(t, n, ct, version, old)
			t.Logf("kill and convergence in %v", time.Since(r0).Round(10*time.Millisecond))
		}) {
			t.FailNow()
		}
	}
	t.Logf("%d kill points, %d of them with something left to kill, in %v", len(killPoints), landed, time.Since(t0).Round(time.Second))
}

// killRound starts the container with the host on version, kills at kp and
// stops the container. It reports whether it killed something.
func killRound(t *testing.T, n *scenario.Node, ct *lxctest.CT, cache driverrun.Cache, kp killPoint, version, old string) bool {
	t.Helper()
	if err := n.SwitchDriver(version); err != nil {
		t.Fatal(err)
	}
	if kp.fresh {
		if err := os.RemoveAll(cache.Tree(version)); err != nil {
			t.Fatal(err)
		}
	}
	controls := ""
	if kp.pause != "" {
		controls += "NVIDIAPREP_STANDIN_INSTALL_DELAY=" + kp.pause + "\n"
	}
	if kp.perFile != "" {
		controls += "NVIDIAPREP_STANDIN_FILE_DELAY=" + kp.perFile + "\n"
	}
	if err := ct.WriteFile(standin.StandinControls, []byte(controls), 0o644); err != nil {
		t.Fatal(err)
	}
	o := &progress{n: n, vmid: ct.VMID, version: version, old: old, since: time.Now()}
	o.logOffset = len(n.WorkerLog(ct.VMID))
	if _, err := ct.ProxmoxStart(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	o.root = ct.RootFS()
	deadline := time.Now().Add(time.Minute)
	for !kp.at(o) {
		if time.Now().After(deadline) {
			t.Fatalf("the kill point never came\nworker log:\n%s", n.WorkerLog(ct.VMID)[o.logOffset:])
		}
		time.Sleep(2 * time.Millisecond)
	}
	var killed []int
	if kp.installer {
		killed = append(killed, kill(installerPIDs(ct.VMID))...)
	}
	if kp.worker {
		killed = append(killed, kill(workerPIDs(ct.VMID))...)
	}
	t.Logf("killed %v; then: marker %v, %d files and %d links of %s installed, worker log: %q", killed, o.exists(ctMarker), o.entries("1: "), o.entries("0: "), version, lastLine(n.WorkerLog(ct.VMID)[o.logOffset:]))
	if len(killed) == 0 && !kp.late {
		t.Errorf("nothing to kill at %q: the install had gone past it\nworker log:\n%s", kp.name, n.WorkerLog(ct.VMID)[o.logOffset:])
	}
	// A worker that was not killed finishes (its installer was).
	for _, pid := range workerPIDs(ct.VMID) {
		if !waitExited(pid, time.Minute) {
			t.Fatal("the worker does not end")
		}
	}
	for _, pid := range killed {
		if !waitExited(pid, 10*time.Second) {
			t.Fatalf("pid %d does not end after SIGKILL", pid)
		}
	}
	if kp.fresh {
		// The killed worker's extraction goes on as an orphan: until it
		// ends, the next worker must not take the version's lock (and
		// remove the temporary tree the orphan writes into). The orphan is
		// the .run's stub extracting into this node's tree of the version:
		// `sh <run> --extract-only --target <tmp>/extract-<version>`
		// (driverrun), not any other extraction on the machine.
		target := filepath.Join(cache.TmpDir(), "extract-"+version)
		orphans := findPIDs(func(argv []string) bool {
			return len(argv) == 5 && argv[2] == "--extract-only" && argv[3] == "--target" && argv[4] == target
		})
		lock, err := filelock.TryLock(filepath.Join(cache.DriversDir(), "."+version+".lock"))
		if err == nil {
			// Released at once: held, it would keep the next worker waiting.
			lock.Unlock()
		}
		switch {
		case len(orphans) == 0:
			t.Log("the extraction ended with the worker")
		case err == nil:
			t.Errorf("the extraction %v goes on after the worker was killed, and the version's lock is free", orphans)
		case errors.Is(err, filelock.ErrBusy):
			t.Logf("the orphaned extraction %v holds the version's lock", orphans)
		default:
			t.Fatal(err)
		}
	}
	// The worker's locks die with it, and with the helper processes liblxc's
	// attach forks from it (copies of the worker until they exec or exit),
	// which outlive it by a moment.
	for _, l := range []string{fmt.Sprintf("locks/ct-%d.lock", ct.VMID), "locks/install-slot-0", "locks/install-slot-1"} {
		path := filepath.Join(n.StateDir(), l)
		if wait, err := waitFree(path, 5*time.Second); err != nil {
			t.Errorf("%s is still held 5 s after the kill: %v; open in %s", l, err, holders(path))
		} else if wait > 5*time.Millisecond {
			t.Logf("%s was free %v after the worker ended", l, wait.Round(time.Millisecond))
		}
	}
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFile(standin.StandinControls, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return len(killed) > 0
}

// converge starts the container, lets it be provisioned if post-start says
// it must be, checks that it has exactly version, and stops it.
func converge(t *testing.T, n *scenario.Node, ct *lxctest.CT, version, old string) {
	t.Helper()
	if err := n.SwitchDriver(version); err != nil {
		t.Fatal(err)
	}
	since := time.Now()
	s, err := ct.ProxmoxStart(n.Hook, n.Env())
	if err != nil {
		t.Fatal(err)
	}
	if !s.PostStart.OK() {
		t.Fatalf("post-start: %s", s.PostStart.Output)
	}
	var p record.Provision
	if strings.Contains(s.PostStart.Output, "the worker updates it in the background") {
		// The kill came after the install had completed inside, before the
		// CDI spec was written: post-start settled the record, and a worker
		// writes the spec only.
		for deadline := time.Now().Add(time.Minute); len(workerPIDs(ct.VMID)) > 0 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
		}
		p, _, _ = record.Load(n.StateDir(), ct.VMID)
		t.Logf("post-start found the libraries current: %s", strings.TrimSpace(s.PostStart.Output))
		if out, _ := sh(t, ct, "head -n 1 /etc/cdi/nvidia.yaml"); !strings.HasPrefix(out, "# nvidiaprep") {
			t.Errorf("the CDI spec was not written: %q\nworker log:\n%s", out, n.WorkerLog(ct.VMID))
		}
	} else if strings.Contains(s.PostStart.Output, "in the background") {
		if p, err = n.WaitProvisioned(ct.VMID, since, 2*time.Minute); err != nil {
			ps, _ := exec.Command("ps", "--ppid", "2", "-N", "-o", "pid,ppid,stat,wchan:20,args").CombinedOutput()
			lock := filepath.Join(n.Host.Root, "cache", "drivers", "."+version+".lock")
			held := holders(lock)
			// A Go worker that hangs says where: SIGQUIT writes its
			// goroutines to its log.
			before := len(n.WorkerLog(ct.VMID))
			for _, pid := range workerPIDs(ct.VMID) {
				syscall.Kill(pid, syscall.SIGQUIT)
			}
			time.Sleep(time.Second)
			t.Fatalf("%v\n%s is open in: %s\nprocesses:\n%s\nthe worker's goroutines:\n%s", err, lock, held, ps, n.WorkerLog(ct.VMID)[before:])
		}
	} else {
		// The kill came after the install had completed inside.
		p, _, _ = record.Load(n.StateDir(), ct.VMID)
		t.Logf("post-start found the container current: %s", strings.TrimSpace(s.PostStart.Output))
	}
	if p.Outcome != record.Installed || p.Version != version {
		t.Errorf("record %+v\npost-start: %s\nworker log:\n%s", p, s.PostStart.Output, n.WorkerLog(ct.VMID))
	}
	wantInstalled(t, ct, version)
	if out, _ := sh(t, ct, "find / -xdev -name '*"+old+"*'; grep -c '"+old+"' "+ctNVLog); out != "0" {
		t.Errorf("files of driver %s remain beside %s:\n%s", old, version, out)
	}
	// The record, and the control file of the apt registration (no
	// temporary file of a killed worker).
	if out, _ := sh(t, ct, "ls -A /var/lib/nvidiaprep"); out != "aptreg.control\ninstalled" {
		t.Errorf("/var/lib/nvidiaprep holds %q, want only the record and the registration", out)
	}
	if left, _ := filepath.Glob(filepath.Join(n.Host.Root, "cache", "tmp", "extract-*")); len(left) > 0 {
		t.Errorf("half-extracted trees are left: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(n.StateDir(), "containers", ".*")); len(left) > 0 {
		t.Errorf("temporary records are left: %v", left)
	}
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
}

// progress is what the host sees of one install: the worker's log, the
// host record and the container's files (through /proc/<pid>/root: the
// test trusts its own container).
type progress struct {
	n            *scenario.Node
	vmid         int
	version, old string
	since        time.Time
	logOffset    int
	root         string
	seen         bool // a kill point's own memory
}

func (o *progress) logged(s string) bool {
	l := o.n.WorkerLog(o.vmid)
	return len(l) > o.logOffset && strings.Contains(l[o.logOffset:], s)
}

func (o *progress) exists(p string) bool {
	_, err := os.Lstat(o.root + p)
	return err == nil
}

// newer tells whether the file inside was modified during this install.
func (o *progress) newer(p string) bool {
	fi, err := os.Lstat(o.root + p)
	return err == nil && fi.ModTime().After(o.since)
}

func (o *progress) installerSays(s string) bool {
	b, _ := os.ReadFile(o.root + "/var/log/nvidia-installer.log")
	return o.newer("/var/log/nvidia-installer.log") && strings.Contains(string(b), s)
}

// entries counts the lines of the new version's /var/lib/nvidia/log that
// start with prefix ("1: " a file, "0: " a link).
func (o *progress) entries(prefix string) int {
	b, err := os.ReadFile(o.root + ctNVLog)
	if err != nil || !strings.Contains(string(b), "("+o.version+")") {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

// waitFree waits until the lock at path is free, and says how long it took.
func waitFree(path string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for {
		lock, err := filelock.TryLockOwned(path)
		if err == nil {
			lock.Unlock()
			return time.Since(t0), nil
		}
		if time.Since(t0) > timeout {
			return 0, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitExited waits until process pid has exited: gone, or a zombie whose
// every thread has exited (its files, and so its locks, are closed with its
// last thread; its command line empties, and its first thread turns zombie,
// earlier).
func waitExited(pid int, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return true
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && (b[i+2] == 'Z' || b[i+2] == 'X') && len(tasks) <= 1 {
			return true
		}
	}
	return false
}

// kill sends SIGKILL to pids and returns those it reached.
func kill(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			out = append(out, pid)
		}
	}
	return out
}

// installerPIDs are the host pids of the nvidia-installer that the worker
// runs from the driver tree inside container vmid.
func installerPIDs(vmid int) []int {
	tree := "/" + driverrun.MountPoint + "/"
	cgroup := fmt.Sprintf("/lxc/%d/", vmid)
	return findPIDs(func(argv []string) bool {
		for _, a := range argv {
			if strings.HasPrefix(a, tree) && strings.HasSuffix(a, "/nvidia-installer") {
				return true
			}
		}
		return false
	}, func(pid int) bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		return strings.Contains(string(b), cgroup)
	})
}

// workerPIDs are the host pids of the provisioning workers of vmid: the
// processes whose command line is "<dir>/nvidiaprep provision <vmid>".
func workerPIDs(vmid int) []int {
	return findPIDs(func(argv []string) bool {
		return len(argv) == 3 && filepath.Base(argv[0]) == "nvidiaprep" && argv[1] == "provision" && argv[2] == strconv.Itoa(vmid)
	})
}

// findPIDs scans the host's process table for command lines that match,
// and processes that pass every extra check.
func findPIDs(match func(argv []string) bool, also ...func(pid int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
next:
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 || !match(strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")) {
			continue
		}
		for _, ok := range also {
			if !ok(pid) {
				continue next
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// holders names the processes that have path open.
func holders(path string) string {
	var out []string
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if target, err := os.Readlink(fd); err == nil && target == path {
			pid := strings.Split(fd, "/")[2]
			b, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			out = append(out, fmt.Sprintf("pid %s (%s)", pid, strings.ReplaceAll(string(b), "\x00", " ")))
		}
	}
	return strings.Join(out, ", ")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
