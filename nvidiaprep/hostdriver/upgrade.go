package hostdriver

// The upgrade flow: how the install path loads the new driver without a
// reboot, and puts the old one back when the new one does not load.
//
// NVIDIA's installer (nvidia-installer install_from_cwd; the table in
// integration/standin/README.md has the source lines) rmmods every loaded
// NVIDIA module before it installs, whatever the flags, and removes the old
// driver's files (its .ko files included) before the new module is
// installed: a new module that does not build, load or get accepted would
// leave the node with nothing loadable. So, before anything is removed,
// checkUpgrade finds what would stop the new driver from loading now:
//
//   - a process holding an NVIDIA device node (the installer's rmmod
//     would fail, or unload nvidia-uvm and nvidia-modeset and leave them
//     unloadable): nothing is changed, the loaded driver stays, and the
//     run ends "reboot required" naming the holders (the unit runs again
//     at the next boot, before the guests, when nothing holds the GPU);
//   - nouveau bound to a GPU that `modprobe -r nouveau` cannot release:
//     nouveau is blacklisted and the initramfs rebuilt, nothing else
//     changes, and the run ends "reboot required to release nouveau";
//   - a loaded driver whose .run is not in the cache: a failed upgrade
//     could not put it back, so nothing is changed (refused);
//   - the kernel issue's gate (newModuleAccepted): will the new module
//     build for the running kernel and be accepted by it?
//
// Then the steps run; the installer gets no --skip-module-load, so it
// test-loads the new module and loads it (nvidia-drm, with nvidia and
// nvidia-modeset) itself; loadNew adds nvidia-uvm, checks the loaded
// version and makes the device nodes (the fast path). When the install or
// the load fails and another driver was loaded before, putBack removes
// what the new installer left and installs and loads the old driver again
// from its cached .run: never a node with nothing loaded when it had a
// driver.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvversion"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/untrusted"
)

// OpenModulesSince is the first driver whose package has the open kernel
// modules (kernel-open/).
const OpenModulesSince = "515.43.04"

// Holder is a process with an NVIDIA device node open.
type Holder struct {
	PID  int
	Comm string // its name (/proc/<pid>/comm), escaped
	Node string // the node, as the process sees it
}

func (h Holder) String() string { return fmt.Sprintf("pid %d (%s) holds %s", h.PID, h.Comm, h.Node) }

// Holders lists the processes with a descriptor on an NVIDIA device node
// below dev (<proc>/<pid>/fd links to <dev>/nvidia*), in pid order. proc
// is the host's process table (/proc below [paths] root), not [paths]
// proc, which is where the driver's files are read. A
// process that ended meanwhile is skipped; an unreadable process table is
// an error (then nobody can tell whether the GPU is in use).
func Holders(proc, dev string) ([]Holder, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("listing the processes: %w", err)
	}
	prefix := filepath.Join(dev, "nvidia")
	var out []Holder
	pids := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pids++
		dir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, fd := range fds {
			t, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err != nil || !strings.HasPrefix(t, prefix) {
				continue
			}
			comm, _ := fsutil.ReadRegular(filepath.Join(proc, e.Name(), "comm"), 256)
			out = append(out, Holder{PID: pid, Comm: untrusted.Escape(strings.TrimSpace(string(comm)), 64), Node: untrusted.Escape(t, 256)})
			break
		}
	}
	if pids == 0 {
		return nil, fmt.Errorf("%s lists no process (not the kernel's process table?)", proc)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

func holderList(hs []Holder) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.String()
	}
	return strings.Join(s, "; ")
}

// NouveauBound tells whether nouveau drives a PCI device
// (<sys>/bus/pci/devices/*/driver names it), as nvidia-installer's
// nouveau_is_present reads it.
func NouveauBound(sys string) bool {
	links, _ := filepath.Glob(filepath.Join(sys, "bus/pci/devices/*/driver"))
	for _, l := range links {
		if t, err := os.Readlink(l); err == nil && filepath.Base(t) == "nouveau" {
			return true
		}
	}
	return false
}

// RebootRequiredError is a run that changed nothing (or only blacklisted
// nouveau) because the new driver cannot be loaded before a reboot.
type RebootRequiredError struct{ Why string }

func (e *RebootRequiredError) Error() string { return e.Why }

// checkUpgrade is run before any step changes the node (see the file's
// comment). It returns a *RebootRequiredError when the install must wait
// for a reboot, another error when it must not happen.
func (r *runner) checkUpgrade(ctx context.Context) error {
	p, d := r.paths(), r.driver()
	if d.KernelModule == config.KernelModuleOpen && !nvversion.AtLeast(d.Version, OpenModulesSince) {
		return fmt.Errorf("kernel_module = \"open\" needs driver %s or later (the first with NVIDIA's open kernel modules), but [driver] version is %s, whose package has only the proprietary ones: set kernel_module = \"proprietary\" (or \"auto\") in [driver]", OpenModulesSince, d.Version)
	}
	loaded := r.rep.Loaded
	if loaded != "" {
		hs, err := Holders(r.host("proc"), p.Dev)
		if err != nil {
			return fmt.Errorf("driver %s is loaded and whether a process uses it cannot be told (%w), so it is not replaced now", loaded, err)
		}
		if len(hs) > 0 {
			r.rep.Holders = hs
			return &RebootRequiredError{Why: fmt.Sprintf("NVIDIA driver %s is loaded and in use (%s): it stays loaded, and driver %s is installed at the next boot, before the guests start: reboot required (or stop those processes and run `nvidiaprep host-driver` again)", loaded, holderList(hs), d.Version)}
		}
		run, err := r.cache.FindRun(loaded)
		if err != nil {
			return fmt.Errorf("driver %s is loaded, and without its .run a failed upgrade could not put it back, so nothing was changed: %w", loaded, err)
		}
		r.oldRun = run
	}
	if NouveauBound(p.Sys) {
		r.status("nouveau drives a GPU: releasing it (modprobe -r nouveau)")
		if _, err := r.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"-r", "nouveau"}}); err != nil || NouveauBound(p.Sys) {
			why := "it is still bound"
			if err != nil {
				why = err.Error()
			}
			if berr := r.blacklistNouveau(ctx); berr != nil {
				return fmt.Errorf("nouveau drives a GPU and cannot be released (%s), and blacklisting it failed: %w", why, berr)
			}
			return &RebootRequiredError{Why: fmt.Sprintf("nouveau drives a GPU and cannot be released now (%s); it is blacklisted (/%s) and the initramfs rebuilt, and driver %s is installed at the next boot: reboot required to release nouveau", why, hostdriverstate.BlacklistFile, d.Version)}
		}
	}
	// Will the new module build and be accepted on every installed kernel
	// (headers, minimum driver per kernel, GPU support, module type,
	// signing key)? kernelguard.Gate answered in the prepares (gate), before
	// this; a module that fails anyway is caught by the installer's build
	// or test load and put right by putBack.
	return nil
}

// rebootRequired records a run that waits for a reboot (nothing installed).
func (r *runner) rebootRequired(e *RebootRequiredError) (Report, error) {
	if err := markRebootRequired(r.o.Config.Paths.Root); err != nil {
		r.warnf("%v", err)
	}
	r.rep.Path = PathPending
	r.rep.Summary = e.Why
	r.finish()
	r.st.Outcome, r.st.Error, r.st.Step, r.st.Time, r.st.Duration = hostdriverstate.OutcomeRebootRequired, e.Why, "", time.Now().UTC(), r.rep.Duration
	if err := hostdriverstate.Save(r.paths().State, r.st, true); err != nil {
		r.warnf("%v", err)
	}
	r.status("%s", e.Why)
	if len(r.rep.Holders) > 0 {
		// The unit and a run by hand refuse: the driver is in use.
		return r.rep, e
	}
	if r.driver().Reboot == config.RebootAuto {
		users, err := r.gpuUsers()
		switch {
		case err != nil:
			r.rep.Summary += fmt.Sprintf("; not rebooting by itself although reboot = \"auto\": cannot tell whether a process has an NVIDIA device open (%v); reboot when no container uses a GPU", err)
		case users > 0:
			r.rep.Summary += fmt.Sprintf("; not rebooting by itself although reboot = \"auto\": %d processes have an NVIDIA device open", users)
		default:
			r.st.Outcome, r.rep.Rebooting = hostdriverstate.OutcomeRebooting, true
			r.rep.Summary += "; rebooting now (reboot = \"auto\")"
			if err := hostdriverstate.Save(r.paths().State, r.st, true); err != nil {
				r.warnf("%v", err)
			}
			if _, err := r.sh(context.Background(), hostcmd.Command{Name: "systemctl", Args: []string{"--no-block", "reboot"}}); err != nil {
				return r.rep, err
			}
		}
	}
	return r.rep, nil
}

// loadNew is after a successful install: the new driver must be loaded
// (the installer loads nvidia, nvidia-modeset and nvidia-drm itself);
// nvidia-uvm is loaded, the device nodes made, the containers' tree is
// ready. Its error is put right by putBack.
func (r *runner) loadNew(ctx context.Context) error {
	p, d := r.paths(), r.driver()
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil && !errors.Is(err, nvdev.ErrNoDriver) {
		return err
	}
	if loaded != d.Version {
		return fmt.Errorf("the installer finished, but the loaded driver is %s, not %s", orNone(loaded), d.Version)
	}
	if _, err := r.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"nvidia-uvm"}}); err != nil {
		return fmt.Errorf("loading nvidia-uvm: %w", err)
	}
	if err := r.dkmsRegistered(ctx); err != nil {
		return err
	}
	return r.makeNodes()
}

// dkmsRegistered proves the installer's DKMS registration with `dkms
// status` for the running kernel: the installer's ldtarball and install
// -k failing is only a warning (exit 0), and /usr/src/nvidia-<v>/dkms.conf
// is there either way. (Issue 17 extends this to every installed kernel.)
func (r *runner) dkmsRegistered(ctx context.Context) error {
	d := r.driver()
	if p, err := findProgram(r.o.Config.Paths.Root, "dkms"); err != nil || p == "" {
		return fmt.Errorf("dkms is not installed, so driver %s is not registered with DKMS and a new kernel would boot without it", d.Version)
	}
	release, err := r.kernelRelease()
	if err != nil {
		return err
	}
	res, err := r.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"status", "-m", "nvidia", "-v", d.Version, "-k", release}})
	if err != nil {
		return fmt.Errorf("dkms status: %w", err)
	}
	for _, l := range strings.Split(res.Stdout, "\n") {
		if strings.Contains(l, d.Version) && strings.Contains(l, release) && strings.HasSuffix(strings.TrimSpace(l), ": installed") {
			return nil
		}
	}
	return fmt.Errorf("DKMS did not register driver %s for kernel %s (`dkms status -m nvidia -v %s -k %s` says %q; the installer only warns, see %s): a new kernel would boot without it", d.Version, release, d.Version, release, strings.TrimSpace(res.Stdout), InstallerLog)
}

// makeNodes makes the device nodes containers need for the loaded driver.
func (r *runner) makeNodes() error {
	p := r.paths()
	f := nvdev.Finder{Dev: p.Dev, Proc: p.Proc, Sys: p.Sys, Modprobe: r.o.Modprobe, Warn: func(msg string) { r.warnf("%s", msg) }}
	majors, err := f.Majors()
	if err != nil {
		return err
	}
	nodes, _, err := f.ControlNodes(majors)
	if err != nil {
		return err
	}
	r.rep.Nodes = r.rep.Nodes[:0]
	for _, n := range nodes {
		r.rep.Nodes = append(r.rep.Nodes, n.Name)
	}
	return nil
}

// putBack undoes a failed upgrade: what the new installer left is
// uninstalled, and the old driver is installed again from its cached .run
// and loaded. It says what it did, for the step's error.
func (r *runner) putBack(ctx context.Context, cause error) error {
	old := r.rep.Loaded
	if r.oldRun == "" {
		return cause
	}
	ctx = context.WithoutCancel(ctx)
	r.status("%s failed; putting driver %s back", r.cur.label(), old)
	if _, err := os.Stat(r.host(record.NVIDIALog)); err == nil {
		c := hostcmd.Command{Name: "/bin/sh", Args: []string{r.runFile, "--uninstall", "--silent", "--log-file-name=" + UninstallerLog}, Env: r.runEnv()}
		if _, err := r.sh(ctx, c); err != nil {
			r.warnf("removing what the failed install left: %v", err)
		}
	}
	args, err := r.installerArgs(r.oldRun, old)
	if err != nil {
		_ = markRebootRequired(r.o.Config.Paths.Root)
		return fmt.Errorf("%w; putting driver %s back failed too (%v): no NVIDIA driver is loaded", cause, old, err)
	}
	for i, a := range args {
		if strings.HasPrefix(a, "--log-file-name=") {
			args[i] = "--log-file-name=" + RollbackLog
		}
	}
	if _, err := r.sh(ctx, hostcmd.Command{Name: "/bin/sh", Args: args, Env: r.runEnv()}); err != nil {
		_ = markRebootRequired(r.o.Config.Paths.Root)
		return fmt.Errorf("%w; putting driver %s back failed too (%v, see %s): no NVIDIA driver is loaded", cause, old, err, RollbackLog)
	}
	r.st.Partial = false
	if _, err := r.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"nvidia-uvm"}}); err != nil {
		r.warnf("loading nvidia-uvm of driver %s: %v", old, err)
	}
	if now, _ := nvdev.LoadedVersion(r.paths().Sys, r.paths().Proc); now != old {
		_ = markRebootRequired(r.o.Config.Paths.Root)
		return fmt.Errorf("%w; driver %s was installed again but is not loaded (loaded: %s): reboot required", cause, old, orNone(now))
	}
	if err := r.makeNodes(); err != nil {
		r.warnf("device nodes of driver %s: %v", old, err)
	}
	r.st.Loaded = old
	return fmt.Errorf("%w; driver %s was put back and is loaded", cause, old)
}

// RollbackLog is the log of the installer run that puts the old driver back.
const RollbackLog = "/var/log/nvidia-installer-rollback.log"

// loadStep is step 6: the new driver loaded (loadNew); when it is not and
// another driver was loaded before, that one is put back.
func (r *runner) loadStep(ctx context.Context) error {
	d := r.driver()
	r.rep.Installed, _ = r.installedVersion() // verified by runInstaller
	if err := r.loadNew(ctx); err != nil {
		if r.oldRun != "" {
			return failed(InstallerLog, true, r.putBack(ctx, err))
		}
		_ = markRebootRequired(r.o.Config.Paths.Root)
		r.stampBoot() // a later boot without it is a failure with its cause (notLoaded)
		return failed(InstallerLog, true, fmt.Errorf("driver %s is installed but not loaded: %w; reboot required", d.Version, err))
	}
	if err := clearRebootRequired(r.o.Config.Paths.Root); err != nil {
		r.warnf("%v", err)
	}
	r.st.Loaded = d.Version
	r.stampBoot()
	r.rep.Summary = fmt.Sprintf("NVIDIA driver %s installed and loaded (was: %s); device nodes %s ready: no reboot needed", d.Version, orNone(r.rep.Loaded), strings.Join(r.rep.Nodes, " "))
	r.rep.Summary += kernelWarning(d.Version, r.kernels)
	return nil
}

func (r *runner) beginLoad() string {
	return fmt.Sprintf("loading driver %s and making its device nodes", r.driver().Version)
}
