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
//   - the kernel gate (kernelguard.Gate, which prepare runs before these
//     checks: gate): will the new module build and be accepted on every
//     installed kernel?
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
type RebootRequiredError struct {
	Why     string
	Holders []Holder // the processes that keep the loaded driver; none for nouveau
}

func (e *RebootRequiredError) Error() string { return e.Why }

// checkUpgrade is run before any step changes the node (see the file's
// comment). It returns the loaded driver's cached .run (to put it back), a
// *RebootRequiredError when the install must wait for a reboot, another
// error when it must not happen.
func checkUpgrade(ctx context.Context, j job) (oldRun string, err error) {
	p, d := j.p, j.d
	if d.KernelModule == config.KernelModuleOpen && !nvversion.AtLeast(d.Version, OpenModulesSince) {
		return "", fmt.Errorf("kernel_module = \"open\" needs driver %s or later (the first with NVIDIA's open kernel modules), but [driver] version is %s, whose package has only the proprietary ones: set kernel_module = \"proprietary\" (or \"auto\") in [driver]", OpenModulesSince, d.Version)
	}
	loaded := j.loaded
	if loaded != "" {
		hs, err := Holders(p.Host("proc"), p.Dev)
		if err != nil {
			return "", fmt.Errorf("driver %s is loaded and whether a process uses it cannot be told (%w), so it is not replaced now", loaded, err)
		}
		if len(hs) > 0 {
			return "", &RebootRequiredError{Holders: hs, Why: fmt.Sprintf("NVIDIA driver %s is loaded and in use (%s): it stays loaded, and driver %s is installed at the next boot, before the guests start: reboot required (or stop those processes and run `nvidiaprep host-driver` again)", loaded, holderList(hs), d.Version)}
		}
		if oldRun, err = j.cache.FindRun(loaded); err != nil {
			return "", fmt.Errorf("driver %s is loaded, and without its .run a failed upgrade could not put it back, so nothing was changed: %w", loaded, err)
		}
	}
	if NouveauBound(p.Sys) {
		j.status("nouveau drives a GPU: releasing it (modprobe -r nouveau)")
		if _, err := j.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"-r", "nouveau"}}); err != nil || NouveauBound(p.Sys) {
			why := "it is still bound"
			if err != nil {
				why = err.Error()
			}
			if berr := blacklistNouveau(ctx, j); berr != nil {
				return "", fmt.Errorf("nouveau drives a GPU and cannot be released (%s), and blacklisting it failed: %w", why, berr)
			}
			return "", &RebootRequiredError{Why: fmt.Sprintf("nouveau drives a GPU and cannot be released now (%s); it is blacklisted (/%s) and the initramfs rebuilt, and driver %s is installed at the next boot: reboot required to release nouveau", why, hostdriverstate.BlacklistFile, d.Version)}
		}
	}
	// Will the new module build and be accepted on every installed kernel
	// (headers, minimum driver per kernel, GPU support, module type,
	// signing key)? kernelguard.Gate answered in prepare (gate), before
	// this; a module that fails anyway is caught by the installer's build
	// or test load and put right by putBack.
	return oldRun, nil
}

// rebootRequired records a run that waits for a reboot (nothing installed).
func (h *host) rebootRequired(led *ledger, rep Report, e *RebootRequiredError) (Report, error) {
	if err := markRebootRequired(h.p.Root); err != nil {
		h.warnf("%v", err)
	}
	rep.Path, rep.Summary, rep.Holders = PathPending, e.Why, e.Holders
	rep.Duration = time.Since(h.start)
	if err := led.end(ending{outcome: hostdriverstate.OutcomeRebootRequired, why: e.Why, durable: true}); err != nil {
		h.warnf("%v", err)
	}
	h.status("%s", e.Why)
	if len(e.Holders) > 0 {
		// The unit and a run by hand refuse: the driver is in use.
		return rep, e
	}
	if h.d.Reboot == config.RebootAuto {
		// Processes with an NVIDIA device node open: containers using a
		// GPU, which a reboot would cut off. When it cannot tell, a reboot
		// is not safe.
		users, err := Holders(h.p.Host("proc"), h.p.Dev)
		switch {
		case err != nil:
			rep.Summary += fmt.Sprintf("; not rebooting by itself although reboot = \"auto\": cannot tell whether a process has an NVIDIA device open (%v); reboot when no container uses a GPU", err)
		case len(users) > 0:
			rep.Summary += fmt.Sprintf("; not rebooting by itself although reboot = \"auto\": %d processes have an NVIDIA device open", len(users))
		default:
			rep.Rebooting = true
			rep.Summary += "; rebooting now (reboot = \"auto\")"
			if err := led.end(ending{outcome: hostdriverstate.OutcomeRebooting, why: e.Why, durable: true}); err != nil {
				h.warnf("%v", err)
			}
			if _, err := h.sh(context.Background(), hostcmd.Command{Name: "systemctl", Args: []string{"--no-block", "reboot"}}); err != nil {
				return rep, err
			}
		}
	}
	return rep, nil
}

// loadNew is after a successful install: the new driver must be loaded
// (the installer loads nvidia, nvidia-modeset and nvidia-drm itself);
// nvidia-uvm is loaded, the device nodes made (named in nodes). Its error
// is put right by putBack.
func loadNew(ctx context.Context, j job) (nodes []string, err error) {
	p, d := j.p, j.d
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil && !errors.Is(err, nvdev.ErrNoDriver) {
		return nil, err
	}
	if loaded != d.Version {
		return nil, fmt.Errorf("the installer finished, but the loaded driver is %s, not %s", orNone(loaded), d.Version)
	}
	if _, err := j.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"nvidia-uvm"}}); err != nil {
		return nil, fmt.Errorf("loading nvidia-uvm: %w", err)
	}
	if err := dkmsRegistered(ctx, j); err != nil {
		return nil, err
	}
	return controlNodes(j.host)
}

// dkmsRegistered proves the installer's DKMS registration with `dkms
// status` for the running kernel: the installer's ldtarball and install
// -k failing is only a warning (exit 0), and /usr/src/nvidia-<v>/dkms.conf
// is there either way.
func dkmsRegistered(ctx context.Context, j job) error {
	d, release := j.d, j.release
	if p, err := findProgram(j.p.Root, "dkms"); err != nil || p == "" {
		return fmt.Errorf("dkms is not installed, so driver %s is not registered with DKMS and a new kernel would boot without it", d.Version)
	}
	res, err := j.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"status", "-m", "nvidia", "-v", d.Version, "-k", release}})
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

// putBack undoes a failed upgrade: what the new installer left is
// uninstalled, and the old driver is installed again from its cached .run
// and loaded. Its error says what it did, for the step's error; its result
// is settled once the old driver is installed again.
func putBack(ctx context.Context, j job, cause error) (result, error) {
	old := j.loaded
	if j.oldRun == "" {
		return result{}, cause
	}
	ctx = context.WithoutCancel(ctx)
	root := j.p.Root
	j.status("%s failed; putting driver %s back", j.step.label(), old)
	if _, err := os.Stat(j.p.Host(record.NVIDIALog)); err == nil {
		c := hostcmd.Command{Name: "/bin/sh", Args: []string{j.run, "--uninstall", "--silent", "--log-file-name=" + UninstallerLog}, Env: j.runEnv()}
		if _, err := j.sh(ctx, c); err != nil {
			j.warnf("removing what the failed install left: %v", err)
		}
	}
	args, err := installerArgs(j, j.oldRun, old)
	if err != nil {
		_ = markRebootRequired(root)
		return result{}, fmt.Errorf("%w; putting driver %s back failed too (%v): no NVIDIA driver is loaded", cause, old, err)
	}
	for i, a := range args {
		if strings.HasPrefix(a, "--log-file-name=") {
			args[i] = "--log-file-name=" + RollbackLog
		}
	}
	if _, err := j.sh(ctx, hostcmd.Command{Name: "/bin/sh", Args: args, Env: j.runEnv()}); err != nil {
		_ = markRebootRequired(root)
		return result{}, fmt.Errorf("%w; putting driver %s back failed too (%v, see %s): no NVIDIA driver is loaded", cause, old, err, RollbackLog)
	}
	res := result{settled: true}
	if _, err := j.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"nvidia-uvm"}}); err != nil {
		j.warnf("loading nvidia-uvm of driver %s: %v", old, err)
	}
	if now, _ := nvdev.LoadedVersion(j.p.Sys, j.p.Proc); now != old {
		_ = markRebootRequired(root)
		return res, fmt.Errorf("%w; driver %s was installed again but is not loaded (loaded: %s): reboot required", cause, old, orNone(now))
	}
	if res.nodes, err = controlNodes(j.host); err != nil {
		j.warnf("device nodes of driver %s: %v", old, err)
	}
	return res, fmt.Errorf("%w; driver %s was put back and is loaded", cause, old)
}

// RollbackLog is the log of the installer run that puts the old driver back.
const RollbackLog = "/var/log/nvidia-installer-rollback.log"

// loadStep is step 6: the new driver loaded (loadNew); when it is not and
// another driver was loaded before, that one is put back.
func loadStep(ctx context.Context, j job) (result, error) {
	d := j.d
	nodes, err := loadNew(ctx, j)
	if err != nil {
		if j.oldRun != "" {
			res, err := putBack(ctx, j, err)
			return res, failed(InstallerLog, true, err)
		}
		_ = markRebootRequired(j.p.Root)
		// This boot's: a later boot without it is a failure with its cause (notLoaded).
		return result{bootID: bootID(j.p.Proc)}, failed(InstallerLog, true, fmt.Errorf("driver %s is installed but not loaded: %w; reboot required", d.Version, err))
	}
	if err := clearRebootRequired(j.p.Root); err != nil {
		j.warnf("%v", err)
	}
	return result{bootID: bootID(j.p.Proc), nodes: nodes,
		summary: fmt.Sprintf("NVIDIA driver %s installed and loaded (was: %s); device nodes %s ready: no reboot needed", d.Version, orNone(j.loaded), strings.Join(nodes, " "))}, nil
}

func beginLoad(j job) string {
	return fmt.Sprintf("loading driver %s and making its device nodes", j.d.Version)
}
