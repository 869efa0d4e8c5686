//go:build integration

package integration_test

// Bad input: each case runs the built binaries the way Proxmox or an admin
// would, and checks the exit status, the message (what failed, for which
// container, what to do) and that nothing changed on disk: the generated
// config, the host's trees, and the container's files, checksummed before
// and after. Where provisioning fails, the host record says failed with the
// error, and the container is left as it was, or in a state the next start
// repairs.

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/record"
)

// admin is the nvidiaprep program the hook was built beside.
func admin() string { return filepath.Join(filepath.Dir(hook), "nvidiaprep") }

// ctFilesScript lists, with checksums, the files inside a container that
// nvidiaprep and the installer write: libraries, binaries, NVIDIA's and
// nvidiaprep's records, the loader cache and the installer logs. It runs
// with bash, which works where /bin/sh is gone. (The read-only driver cache
// is mounted under /dev, not listed here.)
const ctFilesScript = `for d in /usr/lib/x86_64-linux-gnu /usr/bin /usr/lib/nvidia /var/lib/nvidia /var/lib/nvidiaprep /etc/ld.so.cache /var/log/nvidia-installer.log /var/log/nvidia-uninstall.log /etc/nvidiaprep-standin; do
	[ -e "$d" ] || [ -L "$d" ] || continue
	find "$d" -xdev \( -type f -o -type l \) -printf '%p %y %m %s %l\n'
	find "$d" -xdev -type f -exec md5sum {} +
done | LC_ALL=C sort`

// ctFiles runs ctFilesScript in the running container.
func ctFiles(t *testing.T, ct *lxctest.CT) string {
	t.Helper()
	out, errOut, code, err := ct.Exec("/bin/bash", "-c", ctFilesScript)
	if err != nil || code != 0 {
		t.Fatalf("CT %d: listing its files: exit %d %v: %s", ct.VMID, code, err, errOut)
	}
	return out
}

// wantSameCT reports the lines of two ctFiles listings that differ.
func wantSameCT(t *testing.T, ct *lxctest.CT, before, after string) {
	t.Helper()
	if before == after {
		return
	}
	b, a := lineSet(before), lineSet(after)
	for l := range b {
		if !a[l] {
			t.Errorf("CT %d: changed or removed: %s", ct.VMID, l)
		}
	}
	for l := range a {
		if !b[l] {
			t.Errorf("CT %d: changed or created: %s", ct.VMID, l)
		}
	}
}

func lineSet(s string) map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(s, "\n") {
		m[l] = true
	}
	return m
}

// wantAll reports the wanted strings that out lacks.
func wantAll(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

// lineOf is the 1-based line of path that starts with prefix.
func lineOf(t *testing.T, path, prefix string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line %q", path, prefix)
	return 0
}

// Arguments, configuration and GPU selection: refused with the right exit
// status and a message saying what, for which container and what to do,
// before anything is written. The first container has a generated config and is
// never started; the second has none.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	vmid2 := lxctest.VMID(t)
	id2 := strconv.Itoa(vmid2)
	n := newNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	if err := ct.WriteGeneratedConfig(); err != nil {
		t.Fatal(err)
	}
	usage := "usage: nvidiaprep-hook <vmid> <phase>"
	vmidRule := "want a number from 100 to 999999999"
	notTOML := "[containers." + id + "\ngpus = [\"0\"]\n"
	for _, c := range []struct {
		name   string
		config string // the node config's tables
		admin  bool   // run the nvidiaprep program, not the hook
		args   []string
		exit   int
		want   []string
		// line, when set, is the config line that the message must name
		// ("nvidiaprep.toml:<n>"): the first one starting with it.
		line string
	}{
		{name: "vmid abc", args: []string{"abc", "pre-start"}, exit: 2, want: []string{`invalid vmid "abc": not a decimal number`, vmidRule, usage}},
		{name: "vmid path", args: []string{"../../etc", "pre-start"}, exit: 2, want: []string{`invalid vmid "../../etc"`, vmidRule}},
		{name: "vmid empty", args: []string{"", "pre-start"}, exit: 2, want: []string{`invalid vmid "": empty`, vmidRule}},
		{name: "vmid negative", args: []string{"-" + id, "pre-start"}, exit: 2, want: []string{`invalid vmid "-` + id + `"`, vmidRule}},
		{name: "vmid huge", args: []string{"99999999999999999999999", "post-start"}, exit: 2, want: []string{`invalid vmid "99999999999999999999999": out of range`, vmidRule}},
		{name: "vmid above Proxmox's range", args: []string{"1000000000", "pre-start"}, exit: 2, want: []string{"out of range", vmidRule}},
		{name: "unknown phase", args: []string{id, "boot"}, exit: 2, want: []string{`CT ` + id + `: unknown phase "boot"`, "pre-start, post-start, pre-stop, post-stop"}},
		{name: "no arguments", args: nil, exit: 2, want: []string{"want 2 arguments, got 0", usage}},
		{name: "one argument", args: []string{id}, exit: 2, want: []string{"want 2 arguments, got 1", usage}},
		{name: "three arguments", args: []string{id, "pre-start", "x"}, exit: 2, want: []string{"want 2 arguments, got 3", usage}},
		{name: "no generated config", args: []string{id2, "pre-start"}, exit: 1, want: []string{"CT " + id2 + ": no generated LXC config at " + filepath.Join(n.Bed.LXCPath, id2, "config"), "pct start " + id2, "check the vmid"}},
		{name: "post-start without a container", args: []string{id2, "post-start"}, exit: 0, want: []string{"CT " + id2 + " is not running after its start; nothing to provision"}},
		{name: "config not TOML", config: notTOML, args: []string{id, "pre-start"}, exit: 1, line: "[containers." + id, want: []string{"CT " + id + ": configuration: " + n.Config, "correct the file"}},
		{name: "config not TOML post-start", config: notTOML, args: []string{id, "post-start"}, exit: 1, line: "[containers." + id, want: []string{"CT " + id + ": configuration: " + n.Config, "correct the file"}},
		{name: "unknown key", config: "[containers." + id + "]\ngpu = [\"0\"]\n", args: []string{id, "pre-start"}, exit: 1, line: "gpu =",
			want: []string{"CT " + id + ": its table in the configuration: ", "containers." + id + ".gpu: unknown key (known keys: gpus, required, install, chain, strict, gid, mode)", "only this container's start is refused"}},
		// An error in another container's table is that container's alone.
		{name: "unknown key in another table", config: "[containers." + id2 + "]\ngpu = [\"0\"]\n\n[containers." + id + "]\ngpus = []\n", args: []string{id, "pre-start"}, exit: 0,
			want: []string{"CT " + id + ": no GPUs configured (gpus = [])"}},
		{name: "bad selector in another table", config: "[containers." + id2 + "]\ngpus = [\"GPU-x\"]\n\n[containers." + id + "]\ngpus = []\n", args: []string{id, "post-start"}, exit: 0},
		{name: "no GPU matches, required", config: "[containers." + id + "]\ngpus = [\"7\"]\nrequired = true\n", args: []string{id, "pre-start"}, exit: 1,
			want: []string{"CT " + id + " requires its GPU", `GPU selector "7" matches no GPU on this node`, "GPUs here: 0 (GPU-", "Fix gpus in [containers." + id + "]", "set required = false"}},
		{name: "no GPU matches, not required", config: "[containers." + id + "]\ngpus = [\"7\"]\nrequired = false\n", args: []string{id, "pre-start"}, exit: 0,
			want: []string{`CT ` + id + `: GPU selector "7" matches no GPU on this node`, "fix gpus in [containers." + id + "]", "CT " + id + " starts without GPU"}},
		{name: "worker vmid abc", admin: true, args: []string{"provision", "abc"}, exit: 2, want: []string{`nvidiaprep provision: invalid vmid "abc"`, vmidRule}},
		{name: "worker without vmid", admin: true, args: []string{"provision"}, exit: 2, want: []string{"nvidiaprep provision: missing <vmid>", "usage: nvidiaprep provision <vmid>", "nvidiaprep provision --help"}},
		{name: "worker two vmids", admin: true, args: []string{"provision", id, id2}, exit: 2, want: []string{`nvidiaprep provision: too many arguments: "` + id + ` ` + id2 + `" (want <vmid>)`}},
		{name: "worker unknown command", admin: true, args: []string{"provison", id}, exit: 2, want: []string{`nvidiaprep: unknown command "provison"; did you mean "provision"?`, "nvidiaprep help"}},
		{name: "worker config not TOML", admin: true, config: notTOML, args: []string{"provision", id}, exit: 1, line: "[containers." + id, want: []string{"CT " + id + ": configuration: "}},
		{name: "worker for a stopped container", admin: true, args: []string{"provision", id}, exit: 1, want: []string{"CT " + id + " is not running", "pct start " + id}},
		{name: "worker for no container", admin: true, args: []string{"provision", id2}, exit: 1, want: []string{"CT " + id2 + " is not running", "there is no container " + id2 + " in " + n.Bed.LXCPath}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := n.WriteConfig(c.config); err != nil {
				t.Fatal(err)
			}
			want := c.want
			if c.line != "" {
				want = append(want, fmt.Sprintf("%s:%d:", n.Config, lineOf(t, n.Config, c.line)))
			}
			before := treeState(t, false, n.Host.Root, n.Bed.LXCPath)
			bin := hook
			if c.admin {
				bin = admin()
			}
			out, code := runbin.Exit(t, bin, n.Env(), c.args...)
			if code != c.exit {
				t.Errorf("exit %d, want %d:\n%s", code, c.exit, out)
			}
			wantAll(t, "the message", out, want...)
			onceEach(t, out, "CT "+id, "CT "+id2)
			wantSameTree(t, "host", before, treeState(t, false, n.Host.Root, n.Bed.LXCPath))
		})
	}
}

// onceEach checks that no line of out names one of the containers twice
// (post-start printed "CT 101: CT 101: ...").
func onceEach(t *testing.T, out string, names ...string) {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		for _, name := range names {
			if n := strings.Count(l, name+":") + strings.Count(l, name+" "); n > 1 {
				t.Errorf("%q names %s %d times, want once", l, name, n)
			}
		}
	}
}

// failedProvision waits for the worker's record since since and checks
// that it failed with an error that holds want. The record is the
// container's own, so its error does not name it; the worker's log line
// does, exactly once.
func failedProvision(t *testing.T, n *scenario.Node, vmid int, since time.Time, want ...string) record.Provision {
	t.Helper()
	p, err := n.WaitProvisioned(vmid, since, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if p.Outcome != record.Failed {
		t.Fatalf("CT %d: record %+v, want failed\nworker log:\n%s", vmid, p, n.WorkerLog(vmid))
	}
	wantAll(t, "the record's error", p.Error, want...)
	name := fmt.Sprintf("CT %d", vmid)
	if strings.Contains(p.Error, name) {
		t.Errorf("the record's error names %s: %s", name, p.Error)
	}
	line := name + ": " + p.Error
	wantAll(t, "the worker log", waitLogged(n, vmid, line), line)
	for _, l := range strings.Split(n.WorkerLog(vmid), "\n") {
		if strings.Contains(l, p.Error) && strings.Count(l, name) != 1 {
			t.Errorf("the worker log's line names %s %d times, want once: %s", name, strings.Count(l, name), l)
		}
	}
	return p
}

// waitLogged waits, up to 10 s, until the worker log of vmid holds line,
// and returns the log. The worker logs its error after it has saved the
// record that WaitProvisioned waits for.
func waitLogged(n *scenario.Node, vmid int, line string) string {
	log := n.WorkerLog(vmid)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log, line) && time.Now().Before(deadline); log = n.WorkerLog(vmid) {
		time.Sleep(50 * time.Millisecond)
	}
	return log
}

// postStart runs the post-start phase by hand on a running container, as
// Proxmox does at its start, and checks that it started a worker.
func postStart(t *testing.T, n *scenario.Node, ct *lxctest.CT) {
	t.Helper()
	out, code := runbin.Exit(t, n.Hook, n.Env(), strconv.Itoa(ct.VMID), "post-start")
	if code != 0 || !strings.Contains(out, "in the background") {
		t.Fatalf("post-start: exit %d:\n%s", code, out)
	}
}

// baseline starts the container without the hook, runs script in it with
// bash (if any), lists its files, and stops it: the container as it was.
func baseline(t *testing.T, ct *lxctest.CT, script string) string {
	t.Helper()
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	if script != "" {
		if _, errOut, code, err := ct.Exec("/bin/bash", "-c", script); err != nil || code != 0 {
			t.Fatalf("CT %d: %s: exit %d %v %s", ct.VMID, script, code, err, errOut)
		}
	}
	files := ctFiles(t, ct)
	if _, err := ct.Stop("", nil); err != nil {
		t.Fatal(err)
	}
	return files
}

// The node's driver package is missing, not NVIDIA's, or fails its pinned
// sha256; then the installer fails half way. Each is said in the worker's
// record and log, with what to do; the first three change nothing in the
// container, the generated config or the driver cache; the failed install
// leaves a state that the next start repairs.
func TestBadDriverPackagesAndAFailingInstaller(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := newNode(t, "")
	if err := n.SwitchDriver(driverA); err != nil {
		t.Fatal(err)
	}
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	files := baseline(t, ct, "")
	runs := filepath.Join(n.Host.Root, "cache", "runs")
	tree := filepath.Join(n.Host.Root, "cache", "drivers", driverA)
	runName := standin.RunFileName(driverA)
	var config []byte
	var cache map[string]string
	unchanged := func(t *testing.T) {
		t.Helper()
		wantSameCT(t, ct, files, ctFiles(t, ct))
		if b, _ := os.ReadFile(ct.ConfigPath()); string(b) != string(config) {
			t.Errorf("the generated config changed:\n%s\nwas:\n%s", b, config)
		}
		wantSameTree(t, "driver cache", cache, treeState(t, false, filepath.Join(n.Host.Root, "cache")))
		if _, err := os.Stat(tree); err == nil {
			t.Errorf("the driver tree %s was extracted", tree)
		}
	}

	since := time.Now()
	s := start(t, n, ct)
	if !s.PostStart.OK() || !strings.Contains(s.PostStart.Output, "in the background") {
		t.Fatalf("post-start:\n%s", s.PostStart.Output)
	}
	config, _ = os.ReadFile(ct.ConfigPath())
	t.Run("missing .run", func(t *testing.T) {
		failedProvision(t, n, vmid, since, "no NVIDIA driver .run for version "+driverA+" in "+runs,
			"put NVIDIA's "+runName+" there")
		cache = treeState(t, false, filepath.Join(n.Host.Root, "cache")) // pre-start made drivers/ for its mount
		unchanged(t)
	})
	t.Run("not NVIDIA's format", func(t *testing.T) {
		if err := os.MkdirAll(runs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(runs, runName), []byte("<html><body>404 Not Found</body></html>\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cache = treeState(t, false, filepath.Join(n.Host.Root, "cache"))
		since := time.Now()
		postStart(t, n, ct)
		failedProvision(t, n, vmid, since, runName+": not an NVIDIA driver .run", "put NVIDIA's "+runName+" there")
		unchanged(t)
	})
	t.Run("sha256 mismatch", func(t *testing.T) {
		if err := n.CacheRun(driverA, standin.RunOptions{}); err != nil {
			t.Fatal(err)
		}
		pin := strings.Repeat("0", 64)
		if err := n.WriteConfig(fmt.Sprintf("[driver]\nversion = %q\nsha256 = %q\n", driverA, pin)); err != nil {
			t.Fatal(err)
		}
		cache = treeState(t, false, filepath.Join(n.Host.Root, "cache"))
		since := time.Now()
		postStart(t, n, ct)
		failedProvision(t, n, vmid, since, filepath.Join(runs, runName)+" has sha256 ", "but the configuration pins "+pin,
			"replace it with NVIDIA's file or fix [driver] sha256")
		unchanged(t)
	})
	t.Run("installer exits 1", func(t *testing.T) {
		if err := n.WriteConfig(""); err != nil {
			t.Fatal(err)
		}
		if out, code := sh(t, ct, "echo NVIDIAPREP_STANDIN_FAIL_INSTALL=1 > "+standin.StandinControls); code != 0 {
			t.Fatal(out)
		}
		since := time.Now()
		postStart(t, n, ct)
		failedProvision(t, n, vmid, since, "nvidia-installer "+driverA+" failed (exit 1)",
			"Stand-in: the installation fails here", "its log is /var/log/nvidia-installer.log inside the container")
		if b, _ := os.ReadFile(ct.ConfigPath()); string(b) != string(config) {
			t.Errorf("the generated config changed:\n%s", b)
		}
		// The next start repairs it.
		if out, code := sh(t, ct, "rm "+standin.StandinControls); code != 0 {
			t.Fatal(out)
		}
		if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
			t.Fatal(err)
		}
		s, p, _ := startProvisioned(t, n, ct)
		if p.Outcome != record.Installed {
			t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
		}
		wantAll(t, "post-start", s.PostStart.Output, "an earlier install did not finish")
		wantInstalled(t, ct, driverA)
	})
}

// bashInit is the init of a container without /bin/sh: a bash loop that
// sleeps until LXC stops it.
const bashInit = "#!/bin/bash\ntrap 'exit 0' PWR TERM INT\nwhile :; do sleep 1 & wait $!; done\n"

// A container without /bin/sh is refused with a message that says so;
// nothing in it changes.
func TestContainerWithoutShell(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: "/usr/local/sbin/bash-init"})
	if err := ct.WriteFile("/usr/local/sbin/bash-init", []byte(bashInit), 0o755); err != nil {
		t.Fatal(err)
	}
	files := baseline(t, ct, "rm /usr/bin/sh")
	since := time.Now()
	start(t, n, ct)
	failedProvision(t, n, vmid, since, "no working /bin/sh (exit ", "nvidiaprep needs a POSIX shell", "nothing was changed")
	wantSameCT(t, ct, files, ctFiles(t, ct))
}

// fillScript fills the container's disk but for 64 KiB: room for the
// worker's marker and the installer's record, not for the libraries.
const fillScript = `dd if=/dev/zero of=/reserve bs=64k count=1 2>/dev/null
dd if=/dev/zero of=/filler bs=64k 2>/dev/null
test -s /filler && rm /reserve`

// A container whose disk is full: the worker says so, with what to do, and
// the container is left in a state the next start repairs once space has
// been freed.
func TestContainerWithAFullDisk(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop, DiskSize: 16 << 20})
	baseline(t, ct, fillScript)
	since := time.Now()
	start(t, n, ct)
	config, _ := os.ReadFile(ct.ConfigPath())
	// NVIDIA's installer goes on after a file it cannot install and exits 0
	// (continue_after_error): the manifest check finds what is missing.
	failedProvision(t, n, vmid, since, "the install of "+driverA+" is incomplete although nvidia-installer exited 0", "Cannot install ",
		"the container's file system is full: /usr/lib/x86_64-linux-gnu has ", "free space in it (or grow its disk: pct resize "+id+" rootfs +1G), then restart it")
	if b, _ := os.ReadFile(ct.ConfigPath()); string(b) != string(config) {
		t.Errorf("the generated config changed:\n%s", b)
	}
	if out, code := sh(t, ct, "rm /filler"); code != 0 {
		t.Fatal(out)
	}
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	s, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	wantAll(t, "post-start", s.PostStart.Output, "an earlier install did not finish")
	wantInstalled(t, ct, driverA)
}

// A dpkg lock that is never released: the worker gives up at its deadline
// and says who holds the lock; nothing in the container changed.
func TestDpkgLockNeverReleased(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "[provision]\ndpkg_lock_timeout = \"3s\"\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	unit := "[Unit]\nDescription=stand-in for an apt that never ends\n[Service]\nType=notify\nExecStart=/usr/local/bin/holdlock /var/lib/dpkg/lock-frontend 3600\n"
	writeCTFiles(t, ct, map[string]ctFile{
		"usr/local/bin/holdlock":              holdlockFile(t),
		"etc/systemd/system/holdlock.service": {[]byte(unit), 0o644},
		// Enabled without a symlink (WriteFile writes files): a drop-in.
		"etc/systemd/system/multi-user.target.d/holdlock.conf": {[]byte("[Unit]\nWants=holdlock.service\n"), 0o644},
	})
	since := time.Now()
	start(t, n, ct)
	// The worker cannot change anything before it has the lock.
	files := ctFiles(t, ct)
	failedProvision(t, n, vmid, since, "/var/lib/dpkg/lock-frontend is still held by /usr/local/bin/holdlock /var/lib/dpkg/lock-frontend 3600 (pid ",
		"after 3s; nothing was changed", "Let it finish (or stop it), then restart the container")
	wantSameCT(t, ct, files, ctFiles(t, ct))
}

// A process inside the container holds the dpkg lock under a command line
// that would forge sd_notify assignments and log lines and clear the
// admin's terminal: the worker's STATUS= datagrams, its log and its record
// name the holder, escaped, on one line each.
func TestLockHolderNameCannotForgeLines(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "[provision]\ndpkg_lock_timeout = \"6s\"\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	forger := "#!/bin/bash\nexec -a $'apt\\nSTATUS=forged\\nMAINPID=1\\n\\x1b[2J' /usr/local/bin/holdlock /var/lib/dpkg/lock-frontend 3600\n"
	unit := "[Unit]\nDescription=a lock holder with a forging name\n[Service]\nType=notify\nExecStart=/usr/local/bin/forger\n"
	writeCTFiles(t, ct, map[string]ctFile{
		"usr/local/bin/holdlock":                             holdlockFile(t),
		"usr/local/bin/forger":                               {[]byte(forger), 0o755},
		"etc/systemd/system/forger.service":                  {[]byte(unit), 0o644},
		"etc/systemd/system/multi-user.target.d/forger.conf": {[]byte("[Unit]\nWants=forger.service\n"), 0o644},
	})
	// The worker's sd_notify socket: what `systemctl status` would show.
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The reader stops at the test's own end mark, sent once the worker has
	// exited: a socket's datagrams are read in the order they were sent.
	const endMark = "END-OF-TEST"
	var datagrams []string
	read := make(chan struct{})
	go func() {
		defer close(read)
		buf := make([]byte, 1<<16)
		for {
			k, err := conn.Read(buf)
			if err != nil || string(buf[:k]) == endMark {
				return
			}
			datagrams = append(datagrams, string(buf[:k]))
		}
	}()
	since := time.Now()
	if _, err := ct.ProxmoxStart(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
	const holder = `is still held by apt\nSTATUS=forged\nMAINPID=1\n\x1b[2J /var/lib/dpkg/lock-frontend 3600 (pid `
	p := failedProvision(t, n, vmid, since, holder)
	// This machine has no systemd: the worker post-start started is a
	// detached process, without the notify socket a transient unit gets.
	// The worker run again as that unit runs it: with NOTIFY_SOCKET.
	out, code := runbin.Exit(t, admin(), append(n.Env(), "NOTIFY_SOCKET="+sock), "provision", id)
	if code == 0 || !strings.Contains(out, holder) {
		t.Errorf("provision with a notify socket: exit %d, want the holder named:\n%s", code, out)
	}
	end, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := end.Write([]byte(endMark)); err != nil {
		t.Fatal(err)
	}
	end.Close()
	select {
	case <-read:
	case <-time.After(10 * time.Second):
		t.Fatal("the notify socket's datagrams were not read within 10 s")
	}
	held := false
	for _, d := range datagrams {
		for _, line := range strings.Split(d, "\n") {
			if !strings.HasPrefix(line, "STATUS=") || strings.HasPrefix(line, "STATUS=forged") || strings.Contains(line, "\x1b") {
				t.Errorf("a forged or raw notify line %q in the datagram %q", line, d)
			}
		}
		held = held || strings.Contains(d, `held by apt\nSTATUS=forged`)
	}
	if !held {
		t.Errorf("no STATUS= line names the holder; datagrams: %q", datagrams)
	}
	log := n.WorkerLog(vmid)
	for _, line := range strings.Split(log, "\n") {
		if strings.HasPrefix(line, "STATUS=") || strings.HasPrefix(line, "MAINPID=") || strings.Contains(line, "\x1b") {
			t.Errorf("a forged or raw line in the worker log: %q", line)
		}
	}
	if strings.ContainsAny(p.Error, "\n\x1b") {
		t.Errorf("the record's error holds control characters: %q", p.Error)
	}
}

// A FIFO or a device where the node config, a container's LXC config or its
// record belongs: the hook, status and doctor neither hang nor read an
// endless stream; they finish within seconds, naming the path and what is
// there instead of a file.
func TestFIFOsAndDevicesWhereFilesBelong(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	if err := ct.WriteGeneratedConfig(); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	withConfig := func(path string) []string {
		var env []string
		for _, e := range n.Env() {
			if !strings.HasPrefix(e, "NVIDIAPREP_CONFIG=") {
				env = append(env, e)
			}
		}
		return append(env, "NVIDIAPREP_CONFIG="+path)
	}
	run := func(t *testing.T, env []string, bin string, args ...string) (string, int) {
		t.Helper()
		r := runbin.Cmd{Path: bin, Args: args, Env: env, Limit: 20 * time.Second}.Must(t)
		return r.Output, r.Code
	}
	for _, c := range []struct {
		name string
		env  []string
		want string
	}{
		{"config /dev/zero", withConfig("/dev/zero"), "/dev/zero is a character device, not a regular file"},
		{"config a FIFO", withConfig(fifo), fifo + " is a FIFO, not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, args := range [][]string{{id, "pre-start"}, {id, "post-start"}} {
				out, code := run(t, c.env, hook, args...)
				if code != 1 || !strings.Contains(out, c.want) {
					t.Errorf("hook %v: exit %d, want 1 naming %q:\n%s", args, code, c.want, out)
				}
			}
			for _, cmd := range []string{"status", "doctor"} {
				out, code := run(t, c.env, admin(), cmd, "--wide")
				if code == 0 || !strings.Contains(out, c.want) {
					t.Errorf("%s: exit %d, want a failure naming %q:\n%s", cmd, code, c.want, out)
				}
			}
		})
	}
	t.Run("LXC config and record FIFOs", func(t *testing.T) {
		if err := n.WriteConfig("[containers." + id + "]\ngpus = [\"0\"]\n"); err != nil {
			t.Fatal(err)
		}
		lxcConfig := filepath.Join(n.Bed.LXCPath, id, "config")
		os.Remove(lxcConfig)
		rec := record.Path(n.StateDir(), vmid)
		os.MkdirAll(filepath.Dir(rec), 0o755)
		os.Remove(rec)
		for _, p := range []string{lxcConfig, rec} {
			if err := unix.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			// LXC's own tools would wait on the FIFO for ever when the bed
			// looks at the container at its end.
			t.Cleanup(func() { os.Remove(p) })
		}
		// LXC's own tools, which the test bed's clean-up runs, would hang on it.
		t.Cleanup(func() { os.Remove(lxcConfig); os.Remove(rec); ct.WriteGeneratedConfig() })
		out, code := run(t, n.Env(), hook, id, "pre-start")
		if code != 1 || !strings.Contains(out, lxcConfig+" is a FIFO, not a regular file") {
			t.Errorf("pre-start: exit %d, want 1 naming the LXC config:\n%s", code, out)
		}
		out, _ = run(t, n.Env(), admin(), "status", "--wide")
		wantAll(t, "status", out, rec+" is a FIFO, not a regular file")
		run(t, n.Env(), admin(), "doctor")
	})
}

// The container's LXC monitor does not answer (SIGSTOP): the worker gives
// up within its query deadline with a message naming the monitor, and
// releases the container's lock: a second run says the same, not "another
// worker is provisioning it".
func TestProvisionWithAStoppedMonitorEnds(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop("", nil) })
	stopMonitor(t, ct)
	for i := range 2 {
		t0 := time.Now()
		r, err := runbin.Cmd{Path: admin(), Args: []string{"provision", id}, Env: n.Env(), Limit: 90 * time.Second}.Run()
		out, code, took := r.Output, r.Code, time.Since(t0)
		if err != nil {
			t.Fatalf("run %d: %v after %v:\n%s", i, err, took, out)
		}
		if code != 1 || !strings.Contains(out, "CT "+id+": asking LXC for its init's pid: the container's monitor did not answer") {
			t.Errorf("run %d: exit %d, want 1 naming the monitor:\n%s", i, code, out)
		}
		if took > 30*time.Second {
			t.Errorf("run %d took %v", i, took)
		}
	}
}
