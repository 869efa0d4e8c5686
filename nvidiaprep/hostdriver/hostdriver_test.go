package hostdriver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/record"
)

const (
	verOld  = "535.54.03"
	verWant = "580.159.04"
	release = "6.8.12-4-pve"
)

// runs holds a stand-in .run per version, built once for the package.
var runs = struct {
	sync.Mutex
	dir   string
	paths map[string]string
}{paths: map[string]string{}}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hostdriver-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runs.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// standinRun returns a stand-in NVIDIA .run of version (shared: do not change it).
func standinRun(t testing.TB, version string) string {
	t.Helper()
	runs.Lock()
	defer runs.Unlock()
	if p, ok := runs.paths[version]; ok {
		return p
	}
	p := filepath.Join(runs.dir, driverrun.RunFileName(version))
	if err := standin.BuildRun(p, standin.RunOptions{Version: version}); err != nil {
		t.Fatal(err)
	}
	runs.paths[version] = p
	return p
}

func sha(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// node is a host tree for one test: a root file system, a stand-in
// sys/proc/dev tree and the cache and state directories.
type node struct {
	t      *testing.T
	root   string
	host   *standin.Host
	cfg    config.Config
	runner *fakeRunner
	status []string
	log    bytes.Buffer
}

func newNode(t *testing.T) *node {
	t.Helper()
	dir := t.TempDir()
	h, err := standin.NewHost(filepath.Join(dir, "host"))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, root: filepath.Join(dir, "root"), host: h, cfg: config.Default()}
	n.cfg.Paths = config.Paths{LXC: filepath.Join(dir, "lxc"), Dev: h.Dev, Proc: h.Proc, Sys: h.Sys,
		Cache: filepath.Join(dir, "cache"), State: filepath.Join(dir, "state"), Root: n.root}
	n.cfg.Driver = config.Driver{Version: verWant, KernelModule: config.KernelModuleOpen, Reboot: config.RebootNever}
	n.runner = &fakeRunner{n: n}
	// lib/modules/<release>: what a node running kernel release has.
	for _, d := range []string{"usr/bin", "usr/sbin", "run", "etc", "lib/modules/" + release} {
		if err := os.MkdirAll(filepath.Join(n.root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// tool puts an (empty) executable where lookPath finds it.
func (n *node) tool(path string) {
	n.t.Helper()
	if err := os.WriteFile(filepath.Join(n.root, path), nil, 0o755); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) file(path string) string {
	b, err := os.ReadFile(filepath.Join(n.root, path))
	if err != nil {
		return ""
	}
	return string(b)
}

func (n *node) write(path, content string) {
	n.t.Helper()
	p := filepath.Join(n.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// installed writes nvidia-installer's record of version and the kernel
// module sources a --dkms install leaves.
func (n *node) installed(version string) {
	n.write(record.NVIDIALog, "1.0-1234 ("+version+")\nNVIDIA Accelerated Graphics Driver for Linux-x86_64\n")
	n.write("usr/src/nvidia-"+version+"/dkms.conf", "PACKAGE_NAME=\"nvidia\"\n")
}

func (n *node) run() (Report, error) {
	n.t.Helper()
	return Run(context.Background(), Options{Config: n.cfg, Runner: n.runner,
		Log: zerolog.New(&n.log), Status: func(s string) { n.status = append(n.status, s) },
		KernelRelease: release, DownloadAttempts: 2, DownloadBackoff: time.Millisecond})
}

func (n *node) state() hostdriverstate.State {
	n.t.Helper()
	s, ok, err := hostdriverstate.Load(n.cfg.Paths.State)
	if err != nil || !ok {
		n.t.Fatalf("state file: %v %v", ok, err)
	}
	return s
}

// fakeRunner is a recording Runner that answers like a Debian node with
// the given packages. It stands in for apt, dpkg, dkms and the .run, whose
// real behaviour the integration tests (integration/hostdriver_test.go)
// check in a container.
type fakeRunner struct {
	n     *node
	calls []string
	// dpkg is `dpkg-query -W` output of the whole node.
	dpkg string
	// known are the packages that dpkg knows ("ii", "rc" ...), by name.
	known map[string]string
	// candidates apt knows; afterUpdate joins them after apt-get update.
	candidates, afterUpdate []string
	dkms                    string // `dkms status -m nvidia` output
	simulate                string // `apt-get -s purge` output
	installerExit           int    // the .run's exit status
	noLoad                  bool   // the new driver installs but does not load
	nouveauHeld             bool   // `modprobe -r nouveau` fails
	fail                    map[string]int
	modprobe                reply // `modprobe nvidia`
	// crash, when set, panics after the command whose line starts with
	// it has done its work: the unit killed there (ledger_test.go).
	crash string
}

func (f *fakeRunner) Run(_ context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	r := f.answer(c)
	if f.crash != "" && strings.HasPrefix(c.String(), f.crash) {
		panic(killed)
	}
	out := r.Stdout + r.Stderr
	return hostcmd.Result{Stdout: r.Stdout, Output: out}, hostcmd.Exited(c, r.Exit, out)
}

// reply is how a faked command ends.
type reply struct {
	Stdout, Stderr string
	Exit           int
}

func (f *fakeRunner) answer(c hostcmd.Command) reply {
	line := c.String()
	f.calls = append(f.calls, line)
	for prefix, code := range f.fail {
		if strings.HasPrefix(line, prefix) {
			return reply{Stderr: "E: " + prefix + " failed", Exit: code}
		}
	}
	switch {
	case c.Name == "dpkg-query" && len(c.Args) == 2:
		return reply{Stdout: f.dpkg}
	case c.Name == "dpkg-query":
		var out strings.Builder
		exit := 0
		for _, name := range c.Args[2:] {
			if st, ok := f.known[name]; ok {
				fmt.Fprintf(&out, "%s %s\n", st, name)
			} else {
				exit = 1
			}
		}
		return reply{Stdout: out.String(), Exit: exit}
	case c.Name == "apt-cache":
		var out strings.Builder
		for _, name := range c.Args[1:] {
			if slices.Contains(f.candidates, name) {
				fmt.Fprintf(&out, "%s:\n  Installed: (none)\n  Candidate: 1.0\n  Version table:\n     1.0 500\n", name)
			}
		}
		return reply{Stdout: out.String()}
	case c.Name == "apt-get" && slices.Contains(c.Args, "update"):
		f.candidates = append(f.candidates, f.afterUpdate...)
		return reply{}
	case c.Name == "apt-get" && slices.Contains(c.Args, "-s"):
		return reply{Stdout: f.simulate}
	case c.Name == "dkms" && c.Args[0] == "status":
		return reply{Stdout: f.dkms}
	case c.Name == "/bin/sh" && slices.Contains(c.Args, "--uninstall"), strings.HasSuffix(c.Name, "nvidia-uninstall"):
		os.RemoveAll(filepath.Join(f.n.root, "var/lib/nvidia"))
		return reply{}
	case c.Name == "/bin/sh" && slices.Contains(c.Args, "--dkms"):
		// The installer unloads what is loaded, records the version
		// first, then installs, then loads the new driver.
		v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(c.Args[0]), "NVIDIA-Linux-x86_64-"), ".run")
		f.n.host.UnloadDriver()
		f.n.installed(v)
		f.n.write("usr/lib/x86_64-linux-gnu/libnvidia-ml.so."+v, "lib")
		if f.installerExit != 0 && v == verWant {
			return reply{Stderr: "\nERROR: Installation has failed.  Please see the file '/var/log/nvidia-installer.log' for details.\n", Exit: f.installerExit}
		}
		if !f.noLoad || v != verWant {
			f.n.host.LoadDriver(standin.Driver{Version: v, UVMMajor: 509})
		}
		return reply{}
	case c.Name == "modprobe" && c.Args[0] == "-r":
		if f.nouveauHeld {
			return reply{Stderr: "modprobe: FATAL: Module nouveau is in use.", Exit: 1}
		}
		os.Remove(filepath.Join(f.n.host.Sys, "bus/pci/devices/0000:01:00.0/driver"))
		return reply{}
	case c.Name == "modprobe":
		return f.modprobe
	}
	return reply{}
}

// called tells whether a call starting with prefix was made, and where.
func (f *fakeRunner) called(prefix string) int { return f.calledFrom(0, prefix) }

// calledFrom is called from the from'th call on.
func (f *fakeRunner) calledFrom(from int, prefix string) int {
	for i := from; i < len(f.calls); i++ {
		if strings.HasPrefix(f.calls[i], prefix) {
			return i
		}
	}
	return -1
}

// debianNode is a node with the distribution's NVIDIA packages, a stale
// DKMS module, an earlier .run install and nvidiaprep's own package, whose
// apt has Debian's headers only.
func debianNode(t *testing.T) *node {
	n := newNode(t)
	run := standinRun(t, verWant)
	n.cfg.Driver.Run, n.cfg.Driver.SHA256 = run, sha(t, run)
	for _, p := range []string{"usr/bin/dpkg-query", "usr/sbin/dkms", "usr/sbin/update-initramfs", "usr/bin/nvidia-uninstall"} {
		n.tool(p)
	}
	n.installed(verOld)
	n.write(altMarker, "")
	n.runner.dpkg = "ii  bash\nii  nvidia-driver-libs:amd64\nrc  nvidia-kernel-dkms\nii  nvidiaprep\nii  nvidia-container-toolkit\n"
	n.runner.simulate = "Purg nvidia-driver-libs [1.0]\nPurg nvidia-kernel-dkms [1.0]\n"
	n.runner.known = map[string]string{"dkms": "ii", "gcc": "ii"}
	n.runner.candidates = []string{"linux-headers-" + release, "make"}
	n.runner.dkms = "nvidia/" + verOld + ": added\nnvidia/" + verWant + ", " + release + ", x86_64: installed\n"
	return n
}

func TestInstallRunsTheStepsInOrder(t *testing.T) {
	n := debianNode(t)
	rep, err := n.run()
	if err != nil {
		t.Fatalf("%v\n%s", err, n.log.String())
	}
	if rep.Path != PathInstalled || rep.Installed != verWant {
		t.Errorf("report %+v", rep)
	}
	want := []string{
		"apt-get -q -y -o DPkg::Lock::Timeout=300 install --download-only --no-install-recommends linux-headers-" + release + " make",
		"dpkg-query -W -f=${db:Status-Abbrev} ${Package}",
		"apt-get -s -q purge nvidia-driver-libs:amd64 nvidia-kernel-dkms",
		"apt-get -q -y -o DPkg::Lock::Timeout=300 purge nvidia-driver-libs:amd64 nvidia-kernel-dkms",
		"/usr/bin/nvidia-uninstall --silent --log-file-name=/var/log/nvidia-uninstall.log",
		"dkms remove -m nvidia -v " + verOld + " --all",
		"dkms remove -m nvidia -v " + verWant + " --all",
		"apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends linux-headers-" + release + " make",
		"/usr/sbin/update-initramfs -u",
		"/bin/sh " + n.cfg.Paths.Cache + "/runs/" + driverrun.RunFileName(verWant) + " --silent --dkms --no-nouveau-check --log-file-name=/var/log/nvidia-installer.log --kernel-module-type=open",
		"modprobe nvidia-uvm",
	}
	next := 0
	for _, w := range want {
		i := n.runner.calledFrom(next, w)
		if i < 0 {
			t.Errorf("no call %q after call %d", w, next)
			continue
		}
		next = i + 1
	}
	if t.Failed() {
		t.Logf("calls:\n%s", strings.Join(n.runner.calls, "\n"))
	}
	for _, c := range n.runner.calls {
		if strings.Contains(c, "purge") && (strings.Contains(c, "nvidiaprep") || strings.Contains(c, "container-toolkit")) {
			t.Errorf("purges a package that is not the driver: %s", c)
		}
		if strings.Contains(c, "rmmod") || strings.Contains(c, "modprobe -r") || strings.Contains(c, "reboot") || strings.Contains(c, "--skip-module-load") {
			t.Errorf("unexpected %s", c)
		}
	}
	if got := n.file(hostdriverstate.BlacklistFile); !strings.Contains(got, "blacklist nouveau\n") || !strings.Contains(got, "options nouveau modeset=0\n") {
		t.Errorf("blacklist: %q", got)
	}
	if _, err := os.Stat(filepath.Join(n.root, altMarker)); err == nil {
		t.Error("the alternate-install marker is left")
	}
	if n.file(rebootRequired) != "" {
		t.Errorf("/run/reboot-required: %q", n.file(rebootRequired))
	}
	if _, err := os.Stat(filepath.Join(n.cfg.Paths.Cache, "drivers", verWant, "nvidia-installer")); err != nil {
		t.Errorf("the containers' tree was not extracted: %v", err)
	}
	st := n.state()
	if st.Outcome != hostdriverstate.OutcomeCurrent || st.Installed != verWant || st.Configured != verWant || st.Loaded != verWant || st.Partial {
		t.Errorf("state %+v", st)
	}
	wantStatus := []string{"step 1/6 (fetch)", "step 2/6 (remove)", "step 3/6 (headers)", "step 4/6 (nouveau)", "step 5/6 (install)", "step 6/6 (load)", "installed and loaded (was: none)", "no reboot needed"}
	all := strings.Join(n.status, "\n")
	for _, w := range wantStatus {
		if !strings.Contains(all, w) {
			t.Errorf("no STATUS %q in:\n%s", w, all)
		}
	}

	// The next run: the fast path, nothing run.
	n.runner.calls = nil
	rep, err = n.run()
	if err != nil || rep.Path != PathFast {
		t.Fatalf("second run: %+v %v", rep, err)
	}
	if len(n.runner.calls) != 0 {
		t.Errorf("the fast path ran commands: %v", n.runner.calls)
	}
}

func TestHeadersFallBackAndUpdateLists(t *testing.T) {
	n := debianNode(t)
	n.runner.candidates = nil
	n.runner.afterUpdate = []string{"pve-headers-" + release, "linux-headers-" + release, "make"}
	if _, err := n.run(); err != nil {
		t.Fatalf("%v\n%s", err, n.log.String())
	}
	if n.runner.called("apt-get -q -y -o DPkg::Lock::Timeout=300 update") < 0 {
		t.Error("apt-get update was not run")
	}
	if n.runner.called("apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends pve-headers-"+release+" make") < 0 {
		t.Errorf("pve-headers not preferred over Debian's:\n%s", strings.Join(n.runner.calls, "\n"))
	}
}

func TestProxmoxHeadersAlreadyInstalled(t *testing.T) {
	n := debianNode(t)
	n.runner.known["proxmox-headers-"+release] = "ii"
	n.write("lib/modules/"+release+"/build/include/linux/module.h", "") // what DKMS looks for
	n.runner.known["make"] = "ii"
	if _, err := n.run(); err != nil {
		t.Fatal(err)
	}
	for _, c := range n.runner.calls {
		if strings.HasPrefix(c, "apt-get") && strings.Contains(c, "install") {
			t.Errorf("installs although everything is there: %s", c)
		}
	}
}

// Failures before step 2 change nothing on the node.
func TestFailuresBeforeRemovingChangeNothing(t *testing.T) {
	cases := map[string]struct {
		setup func(n *node)
		step  Step
		want  []string
	}{
		"sha256 mismatch": {func(n *node) { n.cfg.Driver.SHA256 = strings.Repeat("0", 64) }, StepFetch,
			[]string{"step 1/6 (get the driver package) failed", "sha256", strings.Repeat("0", 64), "nothing on the node was changed"}},
		"missing local file": {func(n *node) { n.cfg.Driver.Run = "/nonexistent/NVIDIA.run" }, StepFetch,
			[]string{"/nonexistent/NVIDIA.run", "no such file"}},
		"wrong version": {func(n *node) {
			other := standinRun(n.t, "580.142")
			n.cfg.Driver.Run, n.cfg.Driver.SHA256 = other, sha(n.t, other)
		}, StepFetch, []string{"is driver 580.142, but [driver] version is " + verWant}},
		"no headers": {func(n *node) { n.runner.candidates = []string{"make"} }, StepFetch,
			[]string{"step 1/6", "kernel " + release + " has no headers and apt knows none of", "proxmox-headers-" + release, "pve-headers-" + release, "linux-headers-" + release, "nothing on the node was changed"}},
		"download of packages fails": {func(n *node) {
			n.runner.fail = map[string]int{"apt-get -q -y -o DPkg::Lock::Timeout=300 install --download-only": 100}
		}, StepHeaders,
			[]string{"step 3/6", "exited 100", "/var/log/apt/term.log"}},
		"purge takes more along": {func(n *node) {
			n.runner.simulate += "Remv nvidia-container-toolkit [1.0]\n"
		}, StepRemove, []string{"would also remove nvidia-container-toolkit"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			n := debianNode(t)
			tc.setup(n)
			_, err := n.run()
			var se *StepError
			if !errors.As(err, &se) || se.Step != tc.step {
				t.Fatalf("want a step %d error, got %v", tc.step, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, c := range n.runner.calls {
				if strings.Contains(c, " purge ") && !strings.Contains(c, " -s ") || strings.HasPrefix(c, "dkms remove") || strings.Contains(c, "nvidia-uninstall") || strings.Contains(c, "--dkms") {
					t.Errorf("changed the node: %s", c)
				}
			}
			if got := n.file(record.NVIDIALog); !strings.Contains(got, verOld) {
				t.Errorf("the earlier install is gone: %q", got)
			}
			if n.file(hostdriverstate.BlacklistFile) != "" || n.file(rebootRequired) != "" {
				t.Error("blacklist or reboot marker written")
			}
			// A refusal by the gate keeps the verified .run: the cache is
			// nvidiaprep's, and the next run needs no download.
			if entries, _ := os.ReadDir(filepath.Join(n.cfg.Paths.Cache, "runs")); len(entries) > 0 && tc.step == StepFetch && name != "no headers" {
				t.Errorf("left in the cache: %v", entries)
			}
			if st := n.state(); st.Outcome != hostdriverstate.OutcomeFailed || st.Step != tc.step.Name() {
				t.Errorf("state %+v", st)
			}
		})
	}
}

// A failing installer is rolled back; the next run installs again rather
// than trusting the record the failed install left.
func TestFailingInstallerIsRolledBack(t *testing.T) {
	n := debianNode(t)
	n.runner.installerExit = 1
	_, err := n.run()
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepInstall {
		t.Fatalf("want a step 5 error, got %v", err)
	}
	for _, w := range []string{"step 5/6 (run the NVIDIA installer) failed", "exited 1", "Installation has failed", "its log is /var/log/nvidia-installer.log", "rolled back", "installs again"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	if n.runner.called("/bin/sh "+n.cfg.Paths.Cache+"/runs/"+driverrun.RunFileName(verWant)+" --uninstall --silent") < 0 {
		t.Errorf("no rollback:\n%s", strings.Join(n.runner.calls, "\n"))
	}
	if n.file(record.NVIDIALog) != "" || n.file(rebootRequired) != "" {
		t.Error("half an install is left, or a reboot asked for")
	}
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeFailed || st.Step != "install" || st.Log != InstallerLog {
		t.Errorf("state %+v", st)
	}

	// Cut off with the record left: the next run must not take it for an install.
	n.installed(verWant)
	st := n.state()
	st.Partial = true
	if err := hostdriverstate.Save(n.cfg.Paths.State, st, false); err != nil {
		t.Fatal(err)
	}
	n.runner.installerExit = 0
	n.runner.calls = nil
	rep, err := n.run()
	if err != nil || rep.Path != PathInstalled {
		t.Fatalf("repair run: %+v %v\n%s", rep, err, n.log.String())
	}
}

// nouveauThatStays binds nouveau to the GPU and makes `modprobe -r
// nouveau` fail (a console framebuffer holds it).
func (n *node) nouveauThatStays() {
	n.t.Helper()
	if err := n.host.BindNouveau("0000:01:00.0", true); err != nil {
		n.t.Fatal(err)
	}
	n.runner.nouveauHeld = true
}

// reboot = "auto" reboots when the install must wait for a reboot (here:
// nouveau that cannot be released) and no GPU is in use.
func TestRebootAuto(t *testing.T) {
	n := debianNode(t)
	n.cfg.Driver.Reboot = config.RebootAuto
	n.nouveauThatStays()
	// A process table with processes, none of them using a GPU.
	for _, pid := range []string{"1", "77"} {
		if err := os.MkdirAll(filepath.Join(n.root, "proc", pid, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := n.run()
	if err != nil || !rep.Rebooting {
		t.Fatalf("%+v %v", rep, err)
	}
	if n.runner.called("systemctl --no-block reboot") < 0 {
		t.Errorf("no reboot: %v", n.runner.calls)
	}
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeRebooting {
		t.Errorf("state %+v", st)
	}
	if !strings.Contains(rep.Summary, "reboot required to release nouveau") || n.file(hostdriverstate.BlacklistFile) == "" {
		t.Errorf("summary %q, blacklist %q", rep.Summary, n.file(hostdriverstate.BlacklistFile))
	}
	if n.runner.called("/bin/sh") >= 0 || n.runner.called("apt-get -q -y -o DPkg::Lock::Timeout=300 purge") >= 0 {
		t.Errorf("installed or removed although nouveau stays: %v", n.runner.calls)
	}
	// The next boot, nouveau blacklisted: installed and loaded, no reboot.
	os.Remove(filepath.Join(n.host.Sys, "bus/pci/devices/0000:01:00.0/driver"))
	n.runner.calls = nil
	if rep, err := n.run(); err != nil || rep.Path != PathInstalled || rep.Rebooting || n.runner.called("systemctl") >= 0 {
		t.Errorf("next boot %+v %v %v", rep, err, n.runner.calls)
	}
}

func TestRebootAutoNotWhileGPUsAreInUse(t *testing.T) {
	n := debianNode(t)
	n.cfg.Driver.Reboot = config.RebootAuto
	n.nouveauThatStays()
	// A process of a container holding /dev/nvidia0.
	fd := filepath.Join(n.root, "proc", "4242", "fd")
	if err := os.MkdirAll(fd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(n.cfg.Paths.Dev, "nvidia0"), filepath.Join(fd, "3")); err != nil {
		t.Fatal(err)
	}
	rep, err := n.run()
	if err != nil || rep.Rebooting || !strings.Contains(rep.Summary, "1 processes have an NVIDIA device open") {
		t.Fatalf("%+v %v", rep, err)
	}
	if n.runner.called("systemctl") >= 0 {
		t.Error("rebooted")
	}
}

// When the process table cannot be read (no such directory, a process's
// descriptors unreadable), whether a GPU is in use is unknown: no reboot,
// and the summary says why and what to do.
func TestRebootAutoNotWhenItCannotTell(t *testing.T) {
	for name, prepare := range map[string]func(proc string) error{
		"no process table": func(proc string) error { return os.RemoveAll(proc) },
		"empty process table": func(proc string) error {
			entries, _ := os.ReadDir(proc)
			for _, e := range entries {
				if _, err := strconv.Atoi(e.Name()); err == nil {
					os.RemoveAll(filepath.Join(proc, e.Name()))
				}
			}
			return nil
		},
		"unreadable descriptors": func(proc string) error {
			os.MkdirAll(filepath.Join(proc, "1", "fd"), 0o755)
			os.MkdirAll(filepath.Join(proc, "4242"), 0o755)
			return os.WriteFile(filepath.Join(proc, "4242", "fd"), nil, 0o644) // ENOTDIR
		},
	} {
		t.Run(name, func(t *testing.T) {
			n := debianNode(t)
			n.cfg.Driver.Reboot = config.RebootAuto
			n.nouveauThatStays()
			if err := prepare(filepath.Join(n.root, "proc")); err != nil {
				t.Fatal(err)
			}
			rep, err := n.run()
			if err != nil || rep.Rebooting || !strings.Contains(rep.Summary, "cannot tell whether a process has an NVIDIA device open") {
				t.Fatalf("%+v %v", rep, err)
			}
			if n.runner.called("systemctl") >= 0 {
				t.Error("rebooted")
			}
		})
	}
}

// upgradeNode is a node with driver verOld installed from a cached .run
// and loaded, and a process table with processes that hold no GPU.
func upgradeNode(t *testing.T) *node {
	n := debianNode(t)
	if err := n.host.LoadDriver(standin.Driver{Version: verOld, UVMMajor: 509}); err != nil {
		t.Fatal(err)
	}
	old := standinRun(t, verOld)
	os.MkdirAll(filepath.Join(n.cfg.Paths.Cache, "runs"), 0o755)
	b, err := os.ReadFile(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.cfg.Paths.Cache, "runs", driverrun.RunFileName(verOld)), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []string{"1", "77"} {
		os.MkdirAll(filepath.Join(n.root, "proc", pid, "fd"), 0o755)
	}
	return n
}

// An upgrade with nothing holding the GPU: installed and loaded, no
// reboot; the installer is not told to skip the load or leave modules.
func TestUpgradeLoadsTheNewDriverWithoutReboot(t *testing.T) {
	n := upgradeNode(t)
	rep, err := n.run()
	if err != nil || rep.Path != PathInstalled {
		t.Fatalf("%+v %v\n%s", rep, err, n.log.String())
	}
	if v, _ := os.ReadFile(filepath.Join(n.host.Sys, "module/nvidia/version")); strings.TrimSpace(string(v)) != verWant {
		t.Errorf("loaded %q", v)
	}
	for _, c := range n.runner.calls {
		if strings.Contains(c, "--skip-module-load") || strings.Contains(c, "--allow-installation-with-running-driver") || strings.Contains(c, "--dkms") && strings.Contains(c, "--skip-module-unload") {
			t.Errorf("installer told to leave modules: %s", c)
		}
	}
	if !strings.Contains(rep.Summary, "installed and loaded (was: "+verOld+")") || n.file(rebootRequired) != "" {
		t.Errorf("summary %q, reboot-required %q", rep.Summary, n.file(rebootRequired))
	}
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeCurrent || st.Loaded != verWant {
		t.Errorf("state %+v", st)
	}
}

// A held module: nothing changes, the old driver stays loaded, the run
// refuses naming the process, and a reboot is required.
func TestUpgradeWithAHeldModuleChangesNothing(t *testing.T) {
	n := upgradeNode(t)
	fd := filepath.Join(n.root, "proc", "4242", "fd")
	os.MkdirAll(fd, 0o755)
	os.WriteFile(filepath.Join(n.root, "proc", "4242", "comm"), []byte("python3\n"), 0o644)
	if err := os.Symlink(filepath.Join(n.cfg.Paths.Dev, "nvidia0"), filepath.Join(fd, "5")); err != nil {
		t.Fatal(err)
	}
	rep, err := n.run()
	var rr *RebootRequiredError
	if !errors.As(err, &rr) || len(rep.Holders) != 1 || rep.Holders[0].PID != 4242 {
		t.Fatalf("%+v %v", rep, err)
	}
	for _, w := range []string{"pid 4242 (python3) holds " + filepath.Join(n.cfg.Paths.Dev, "nvidia0"), "stays loaded", "reboot required"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	for _, c := range n.runner.calls {
		if strings.Contains(c, "purge") && !strings.Contains(c, " -s ") || strings.Contains(c, "nvidia-uninstall") || strings.HasPrefix(c, "/bin/sh") || strings.HasPrefix(c, "dkms remove") {
			t.Errorf("changed the node: %s", c)
		}
	}
	if v, _ := os.ReadFile(filepath.Join(n.host.Sys, "module/nvidia/version")); strings.TrimSpace(string(v)) != verOld {
		t.Errorf("loaded %q", v)
	}
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeRebootRequired || !strings.Contains(st.Error, "python3") || n.file(rebootRequired) == "" {
		t.Errorf("state %+v", st)
	}
}

// A new driver that does not load: the old one is installed again and
// loaded; the error says so.
func TestUpgradeFailingNewModulePutsTheOldBack(t *testing.T) {
	for name, setup := range map[string]func(n *node){
		"installer fails": func(n *node) { n.runner.installerExit = 1 },
		"does not load":   func(n *node) { n.runner.noLoad = true },
		// The installer only warns when DKMS fails; dkms.conf is there anyway.
		"DKMS did not register": func(n *node) { n.runner.dkms = "nvidia/" + verWant + ": added\n" },
	} {
		t.Run(name, func(t *testing.T) {
			n := upgradeNode(t)
			setup(n)
			_, err := n.run()
			var se *StepError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), "driver "+verOld+" was put back and is loaded") {
				t.Fatalf("%v\n%s", err, strings.Join(n.runner.calls, "\n"))
			}
			if n.runner.called("/bin/sh "+n.cfg.Paths.Cache+"/runs/"+driverrun.RunFileName(verOld)+" --silent --dkms") < 0 {
				t.Errorf("the old .run was not installed again:\n%s", strings.Join(n.runner.calls, "\n"))
			}
			if v, _ := os.ReadFile(filepath.Join(n.host.Sys, "module/nvidia/version")); strings.TrimSpace(string(v)) != verOld {
				t.Errorf("loaded %q", v)
			}
			if st := n.state(); st.Outcome != hostdriverstate.OutcomeFailed || st.Loaded != verOld {
				t.Errorf("state %+v", st)
			}
		})
	}
}

// Without the loaded driver's .run a failed upgrade could not be undone.
func TestUpgradeWithoutTheOldRunIsRefused(t *testing.T) {
	n := upgradeNode(t)
	os.Remove(filepath.Join(n.cfg.Paths.Cache, "runs", driverrun.RunFileName(verOld)))
	_, err := n.run()
	if err == nil || !strings.Contains(err.Error(), "without its .run a failed upgrade could not put it back") || !strings.Contains(err.Error(), "nothing on the node was changed") {
		t.Fatalf("%v", err)
	}
	if n.runner.called("/bin/sh") >= 0 {
		t.Errorf("ran an installer: %v", n.runner.calls)
	}
}

func TestUnconfigured(t *testing.T) {
	n := newNode(t)
	n.cfg.Driver.Version = ""
	rep, err := n.run()
	if err != nil || rep.Path != PathUnconfigured || len(n.runner.calls) != 0 {
		t.Fatalf("%+v %v %v", rep, err, n.runner.calls)
	}
}

// Nothing to fetch from: the error says what to set.
func TestNoSource(t *testing.T) {
	n := debianNode(t)
	n.cfg.Driver.Run = ""
	_, err := n.run()
	if err == nil || !strings.Contains(err.Error(), "set [driver] run") {
		t.Fatalf("%v", err)
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("device nodes need root")
	}
}

// fastNode is a node whose stand-in driver is the configured one, with its
// .run in the cache.
func fastNode(t *testing.T) *node {
	n := newNode(t)
	needRoot(t)
	d := standin.Driver{Version: verWant, UVMMajor: 509, GPUs: []standin.GPU{{PCIBusID: "0000:01:00.0", UUID: "GPU-aaaaaaaa-0000-0000-0000-000000000001", Minor: 0}}}
	if err := n.host.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	run := standinRun(t, verWant)
	n.cfg.Driver.Run, n.cfg.Driver.SHA256 = run, sha(t, run)
	return n
}

func TestFastPathMakesNodesAndTree(t *testing.T) {
	n := fastNode(t)
	n.write(rebootRequired, rebootRequiredText)
	n.write(rebootRequiredPkgs, "nvidiaprep\n")
	rep, err := n.run()
	if err != nil || rep.Path != PathFast {
		t.Fatalf("%+v %v\n%s", rep, err, n.log.String())
	}
	if !slices.Equal(rep.Nodes, []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"}) {
		t.Errorf("nodes %v", rep.Nodes)
	}
	for _, name := range rep.Nodes {
		if st, err := os.Stat(filepath.Join(n.host.Dev, name)); err != nil || st.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(rep.Tree, "nvidia-installer")); err != nil {
		t.Errorf("tree: %v", err)
	}
	if len(n.runner.calls) != 0 {
		t.Errorf("commands on the fast path: %v", n.runner.calls)
	}
	if n.file(rebootRequired) != "" {
		t.Error("our reboot request was not withdrawn")
	}
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeCurrent || st.Loaded != verWant {
		t.Errorf("state %+v", st)
	}
}

// Another package's reboot request stays.
func TestFastPathKeepsOthersRebootRequest(t *testing.T) {
	n := fastNode(t)
	n.write(rebootRequired, rebootRequiredText)
	n.write(rebootRequiredPkgs, "linux-image-amd64\nnvidiaprep\n")
	if _, err := n.run(); err != nil {
		t.Fatal(err)
	}
	if n.file(rebootRequired) == "" || n.file(rebootRequiredPkgs) != "linux-image-amd64\n" {
		t.Errorf("%q %q", n.file(rebootRequired), n.file(rebootRequiredPkgs))
	}
}

func TestDKMSVersions(t *testing.T) {
	got := dkmsVersions("nvidia/550.54.14, 6.8.12-1-pve, x86_64: installed\nnvidia/550.54.14, 6.8.8-2-pve, x86_64: installed\nnvidia/535.54.03: added\nzfs/2.2.6: added\nnvidia, 470.223.02, 5.15.0, x86_64: installed\n", "nvidia")
	if want := []string{"550.54.14", "535.54.03", "470.223.02"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAlsoRemoved(t *testing.T) {
	sim := "NOTE: This is only a simulation!\nPurg nvidia-driver-libs:amd64 [1.0]\nRemv nvidia-smi [1.0]\nPurg libcuda1 [1]\n"
	if got := alsoRemoved(sim, []string{"nvidia-driver-libs:amd64", "libcuda1"}); !slices.Equal(got, []string{"nvidia-smi"}) {
		t.Errorf("got %v", got)
	}
}

// An install record that cannot be read (a directory, a FIFO where
// /var/lib/nvidia/log belongs) leaves which driver is installed unknown:
// the unit changes nothing and says so, rather than taking it for "none".
func TestUnreadableInstallRecordChangesNothing(t *testing.T) {
	for name, plant := range map[string]func(p string) error{
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
		"fifo":      func(p string) error { return unix.Mkfifo(p, 0o644) },
	} {
		t.Run(name, func(t *testing.T) {
			n := debianNode(t)
			p := filepath.Join(n.root, record.NVIDIALog)
			os.Remove(p)
			if err := plant(p); err != nil {
				t.Fatal(err)
			}
			_, err := n.run()
			if err == nil || !strings.Contains(err.Error(), "which driver is installed is unknown, so nothing was changed") {
				t.Fatalf("got %v", err)
			}
			if len(n.runner.calls) != 0 {
				t.Errorf("ran commands: %v", n.runner.calls)
			}
			if n.file(altMarker) != "" || !fileExists(filepath.Join(n.root, altMarker)) {
				t.Errorf("the alternate-install marker was removed")
			}
		})
	}
}

// A finished install whose state file is unreadable: whether it finished
// is unknown, so it is installed again instead of being taken as done.
func TestUnreadableStateInstallsAgain(t *testing.T) {
	n := debianNode(t)
	n.installed(verWant)
	os.MkdirAll(n.cfg.Paths.State, 0o755)
	os.WriteFile(hostdriverstate.Path(n.cfg.Paths.State), []byte("{not json"), 0o644)
	rep, err := n.run()
	if err != nil || rep.Path != PathInstalled {
		t.Fatalf("%+v %v\n%s", rep, err, n.log.String())
	}
	if !strings.Contains(n.log.String(), "whether the install of driver "+verWant+" recorded in /var/lib/nvidia/log finished is unknown; installing again") {
		t.Errorf("log: %s", n.log.String())
	}
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

// A branch gets only the flags its installer knows (option_table.h by tag).
func TestInstallFlagsByBranch(t *testing.T) {
	for _, c := range []struct {
		version, km string
		want        string
	}{
		{"580.159.04", "open", "--silent --dkms --no-nouveau-check --log-file-name=/var/log/nvidia-installer.log --kernel-module-type=open"},
		{"535.216.01", "open", "--silent --dkms --no-nouveau-check --log-file-name=/var/log/nvidia-installer.log --kernel-module-build-directory=kernel-open"},
		{"535.216.01", "proprietary", "--silent --dkms --no-nouveau-check --log-file-name=/var/log/nvidia-installer.log"},
		{"550.54.14", "auto", "--silent --dkms --no-nouveau-check --log-file-name=/var/log/nvidia-installer.log"},
	} {
		if got := strings.Join(installFlags(c.version, c.km), " "); got != c.want {
			t.Errorf("%s %s:\n%s\nwant\n%s", c.version, c.km, got, c.want)
		}
	}
}

// boot writes the stand-in proc tree's boot id and boot time, as a boot
// of the node sets them.
func (n *node) boot(id string, at time.Time) {
	n.t.Helper()
	// A new boot starts with no NVIDIA module loaded.
	if _, err := os.Stat(filepath.Join(n.cfg.Paths.Proc, "sys/kernel/random/boot_id")); err == nil {
		n.host.UnloadDriver()
	}
	for path, text := range map[string]string{
		"sys/kernel/random/boot_id": id + "\n",
		"stat":                      fmt.Sprintf("cpu  1 2 3 4\nbtime %d\nprocesses 1\n", at.Unix()),
	} {
		p := filepath.Join(n.cfg.Paths.Proc, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			n.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			n.t.Fatal(err)
		}
	}
}

// The reboot loop: the driver is installed, the node reboots, and the
// module is not there (DKMS did not build it: no headers for the kernel).
// Right after the install the driver the installer loaded keeps working
// on this boot; on the later boot the unit fails with the cause it sees and
// a fix that is not "reboot". (Before boot ids were recorded, the unit
// said "reboot required" and exited 0 on every boot.)
func TestLaterBootWithoutTheDriverFails(t *testing.T) {
	n := debianNode(t)
	n.boot("0f2c5a3e-0000-4000-8000-000000000001", time.Now().Add(-time.Hour))
	if _, err := n.run(); err != nil {
		t.Fatalf("install: %v\n%s", err, n.log.String())
	}
	// The installer registered the module but DKMS built nothing.
	n.runner.dkms = "nvidia/" + verWant + ": added\n"

	rep, err := n.run()
	if err != nil || rep.Path != PathFast {
		t.Fatalf("the same boot: %v, path %q; want the loaded driver's fast path", err, rep.Path)
	}

	n.boot("0f2c5a3e-0000-4000-8000-000000000002", time.Now().Add(time.Minute))
	rep, err = n.run()
	if err == nil {
		t.Fatalf("a later boot without the driver succeeded: path %q, %s", rep.Path, rep.Summary)
	}
	for _, w := range []string{
		"NVIDIA driver " + verWant + " is installed but did not load on this boot",
		"the running kernel " + release + " has no NVIDIA driver " + verWant + " module",
		"its headers are not installed",
		"`apt install proxmox-headers-" + release + "`",
		"modprobe nvidia",
		"rebooting again does not help",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(n.cfg.Paths.State, "host-driver.json"))
	if !strings.Contains(string(b), `"outcome": "not-loaded"`) || !strings.Contains(string(b), "its headers are not installed") {
		t.Errorf("state file:\n%s", b)
	}
	if n.file("run/reboot-required") != "" {
		t.Error("still asks for a reboot, which does not help")
	}
	// Every later run fails the same way until it is fixed.
	if _, err := n.run(); err == nil {
		t.Error("the next run succeeded")
	}
}

// With Secure Boot on, the install signs with DKMS's key, made when
// missing, and DKMS is set to sign later kernels' builds with it.
func TestSecureBootInstallSignsWithTheOneKey(t *testing.T) {
	n := debianNode(t)
	if err := n.host.SetSecureBoot(true); err != nil {
		t.Fatal(err)
	}
	if _, err := n.run(); err != nil {
		t.Fatalf("%v\n%s", err, n.log.String())
	}
	i := n.runner.called("/bin/sh " + n.cfg.Paths.Cache + "/runs/" + driverrun.RunFileName(verWant) + " --silent --dkms")
	if i < 0 || !strings.HasSuffix(n.runner.calls[i], " --module-signing-secret-key=/var/lib/dkms/mok.key --module-signing-public-key=/var/lib/dkms/mok.pub") {
		t.Errorf("installer call:\n%s", strings.Join(n.runner.calls, "\n"))
	}
	for _, f := range []string{"var/lib/dkms/mok.key", "var/lib/dkms/mok.pub"} {
		if n.file(f) == "" {
			t.Errorf("%s missing", f)
		}
	}
	if !strings.Contains(n.file("etc/dkms/framework.conf.d/nvidiaprep-signing.conf"), `mok_signing_key="/var/lib/dkms/mok.key"`) {
		t.Error("DKMS is not set to sign")
	}
	if !strings.Contains(n.log.String(), "mokutil --import /var/lib/dkms/mok.pub") {
		t.Errorf("the log does not say how to enroll the key:\n%s", n.log.String())
	}
}

// A GPU the configured module type cannot drive is refused before
// anything changes, naming the GPU.
func TestModuleTypeTheGPUCannotUseChangesNothing(t *testing.T) {
	n := debianNode(t)
	if err := n.host.AddPCIGPU("0000:01:00.0", 0x1b80); err != nil { // Pascal
		t.Fatal(err)
	}
	_, err := n.run()
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepFetch || !strings.Contains(err.Error(), `kernel_module = "open", but GPU 0000:01:00.0 (10de:1b80) NVIDIA GeForce GTX 1080 is older than Turing`) || !strings.Contains(err.Error(), "nothing on the node was changed") {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(n.file(record.NVIDIALog), verOld) || n.runner.called("apt-get -q -y -o DPkg::Lock::Timeout=300 purge") >= 0 {
		t.Error("the node was changed")
	}
}

// The kernel update's reboot loop: the driver was loaded on the last boot,
// the node booted a kernel without its module, and the unit must fail,
// not say "reboot required".
func TestBootAfterAWorkingOneWithoutTheDriverFails(t *testing.T) {
	n := debianNode(t)
	n.installed(verWant)
	n.boot("0f2c5a3e-0000-4000-8000-00000000000a", time.Now().Add(-time.Hour))
	if err := n.host.LoadDriver(standin.Driver{Version: verWant, UVMMajor: 509}); err != nil {
		t.Fatal(err)
	}
	n.host.Nodes = &standin.FakeNodes{}
	if rep, err := n.run(); err != nil || rep.Path != PathFast {
		t.Fatalf("the working boot: %v %+v", err, rep)
	}
	// A new kernel: DKMS has nothing for it.
	if err := n.host.UnloadDriver(); err != nil {
		t.Fatal(err)
	}
	n.boot("0f2c5a3e-0000-4000-8000-00000000000b", time.Now())
	n.runner.dkms = "nvidia/" + verWant + ", 6.8.12-3-pve, x86_64: installed\n"
	rep, err := n.run()
	var nl *NotLoadedError
	if !errors.As(err, &nl) || rep.Path != PathNotLoaded {
		t.Fatalf("%v %+v", err, rep)
	}
	if !strings.Contains(err.Error(), "the running kernel "+release+" has no NVIDIA driver "+verWant+" module") {
		t.Errorf("%v", err)
	}
}

type noModprobe struct{}

func (noModprobe) Modprobe(...string) error { return nil }

// On the real host the unit tries modprobe first: Secure Boot's refusal
// ("Key was rejected by service") is named with the fix that works, and
// that fix ends in a reboot (the MOK manager runs at boot).
func TestModprobeRefusedForItsSignature(t *testing.T) {
	n := debianNode(t)
	n.boot("0f2c5a3e-0000-4000-8000-000000000011", time.Now().Add(-time.Hour))
	if _, err := n.run(); err != nil {
		t.Fatalf("install: %v", err)
	}
	n.boot("0f2c5a3e-0000-4000-8000-000000000012", time.Now())
	n.runner.modprobe = reply{Stderr: "modprobe: ERROR: could not insert 'nvidia': Key was rejected by service\n", Exit: 1}
	_, err := Run(context.Background(), Options{Config: n.cfg, Runner: n.runner, Log: zerolog.New(&n.log), Modprobe: noModprobe{},
		KernelRelease: release, DownloadAttempts: 1, DownloadBackoff: time.Millisecond})
	var nl *NotLoadedError
	if !errors.As(err, &nl) {
		t.Fatalf("%v", err)
	}
	if !strings.Contains(err.Error(), "the kernel refused the NVIDIA module for its signature") || !strings.Contains(err.Error(), "mokutil --import /var/lib/dkms/mok.pub") || strings.Contains(err.Error(), "rebooting again does not help") {
		t.Errorf("%v", err)
	}
	if n.runner.called("modprobe nvidia") < 0 {
		t.Error("modprobe was not tried")
	}
}

// A branch that dropped the node's card is refused before anything
// changes, naming the branch that supports it (590 moved Pascal to 580).
func TestBranchWithoutTheCardChangesNothing(t *testing.T) {
	n := debianNode(t)
	run := standinRun(t, "590.44.01")
	n.cfg.Driver.Version, n.cfg.Driver.Run, n.cfg.Driver.SHA256 = "590.44.01", run, sha(t, run)
	n.cfg.Driver.KernelModule = config.KernelModuleAuto
	if err := n.host.AddPCIGPU("0000:01:00.0", 0x1b80); err != nil {
		t.Fatal(err)
	}
	_, err := n.run()
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepFetch {
		t.Fatalf("%v", err)
	}
	for _, w := range []string{"GPU 0000:01:00.0 (10de:1b80) (NVIDIA GeForce GTX 1080) is not supported by driver 590.44.01", "the 580.xx legacy branch", "set [driver] version to a 580 release", "nothing on the node was changed"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if !strings.Contains(n.file(record.NVIDIALog), verOld) {
		t.Error("the earlier install is gone")
	}
}
