package hostdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/cmdout"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/nvflags"
	"nvidiaprep/nvidiaprep/provision"
	"nvidiaprep/nvidiaprep/record"
)

// Step is one of the install path's six steps.
type Step int

// The install path's steps, in order.
const (
	StepFetch Step = iota + 1
	StepRemove
	StepHeaders
	StepNouveau
	StepInstall
	StepReboot
)

var stepNames = [...]string{"", "fetch", "remove", "headers", "nouveau", "install", "reboot"}
var stepTitles = [...]string{"", "get the driver package", "remove other NVIDIA drivers",
	"install kernel headers and build tools", "blacklist nouveau", "run the NVIDIA installer", "mark the reboot"}

// Name is the step's short name, as the state file records it.
func (s Step) Name() string { return stepNames[s] }

// Title says what the step does.
func (s Step) Title() string { return stepTitles[s] }

// StepError is a failed run: which step, where its log is, and why.
type StepError struct {
	Step Step   // the install step; 0 on the fast path
	Name string // the fast path's part when Step is 0
	Log  string // where the step's full log is, "" when the message says all
	// Changed tells whether the node had been changed before the failure
	// (then the next run goes on from where this one stopped).
	Changed bool
	Err     error
}

func (e *StepError) Error() string {
	var b strings.Builder
	if e.Step > 0 {
		fmt.Fprintf(&b, "step %d/6 (%s) failed: %v", e.Step, e.Step.Title(), e.Err)
	} else {
		fmt.Fprintf(&b, "%s failed: %v", e.Name, e.Err)
	}
	if e.Log != "" {
		fmt.Fprintf(&b, "; its log is %s", e.Log)
	}
	switch {
	case e.Step == 0:
	case e.Changed:
		b.WriteString("; the next run of nvidiaprep host-driver (at the next boot, or by hand) installs again")
	default:
		b.WriteString("; nothing on the node was changed")
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// install runs the six steps.
func (r *runner) install(ctx context.Context) (Report, error) {
	d := r.driver()
	src := d.Run
	if src == "" {
		src = r.cache.RunsDir()
	}
	r.step(StepFetch, "getting NVIDIA driver %s from %s", d.Version, src)
	if d.SHA256 == "" {
		r.warnf("[driver] sha256 is not set: the driver package is not verified; pin it")
	}
	run, err := r.fetcher().fetch(ctx)
	if err != nil {
		return r.rep, r.fail(StepFetch, "", false, err)
	}
	tree, err := r.cache.Extract(ctx, d.Version, d.SHA256)
	if err != nil {
		return r.rep, r.fail(StepFetch, "", false, err)
	}
	r.rep.Tree = tree
	pkgs, err := r.prepareHeaders(ctx)
	if err != nil {
		return r.rep, r.fail(StepHeaders, aptLog, false, err)
	}

	// From here on the node changes.
	if err := r.remove(ctx, run); err != nil {
		return r.rep, err
	}
	if err := r.installPackages(ctx, pkgs); err != nil {
		return r.rep, err
	}
	if err := r.blacklistNouveau(ctx); err != nil {
		return r.rep, err
	}
	if err := r.runInstaller(ctx, run); err != nil {
		return r.rep, err
	}
	return r.markReboot(ctx)
}

// step records and announces the start of a step.
func (r *runner) step(s Step, format string, args ...any) {
	r.status("step %d/6 (%s): %s", s, s.Name(), fmt.Sprintf(format, args...))
	r.st.Step = s.Name()
	if s > StepFetch {
		r.st.Outcome, r.st.Time = OutcomeInstalling, time.Now().UTC()
		if err := saveState(r.paths().State, r.st, true); err != nil {
			r.warnf("%v", err)
		}
	}
}

// fail records a failed step and returns its error.
func (r *runner) fail(s Step, log string, changed bool, err error) error {
	e := &StepError{Step: s, Log: log, Changed: changed, Err: err}
	r.st.Installed, _ = r.installedVersion() // for the record only; "" when unreadable
	r.st.Step, r.st.Outcome, r.st.Error, r.st.Log = s.Name(), OutcomeFailed, e.Error(), log
	r.st.Time, r.st.Duration = time.Now().UTC(), time.Since(r.start)
	if serr := saveState(r.paths().State, r.st, true); serr != nil {
		r.warnf("%v", serr)
	}
	return e
}

// sh runs a command and turns a non-zero exit into an error.
func (r *runner) sh(ctx context.Context, c Command) (Result, error) {
	r.o.Log.Debug().Msgf("running %s", c)
	res, err := r.o.Runner.Run(ctx, c)
	if err != nil {
		return res, err
	}
	if res.Exit != 0 {
		return res, fmt.Errorf("%s exited %d: %s", c, res.Exit, errorLines(res.Output(), 6))
	}
	return res, nil
}

// aptEnv keeps apt and dpkg from asking.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}

func (r *runner) aptLockTimeout() string {
	return "DPkg::Lock::Timeout=" + strconv.Itoa(int(r.o.Config.Provision.DpkgLockTimeout.Seconds()))
}

// apt runs apt-get with the lock timeout, quietly, without questions.
func (r *runner) apt(ctx context.Context, args ...string) (Result, error) {
	a := append([]string{"-q", "-y", "-o", r.aptLockTimeout()}, args...)
	return r.sh(ctx, Command{Name: "apt-get", Args: a, Env: aptEnv})
}

// dpkgStatus returns the dpkg status ("ii", "rc", ...) of the named
// packages that dpkg knows.
func (r *runner) dpkgStatus(ctx context.Context, names ...string) (map[string]string, error) {
	res, err := r.o.Runner.Run(ctx, Command{Name: "dpkg-query", Args: append([]string{"-W", "-f=${db:Status-Abbrev} ${Package}\n"}, names...)})
	if err != nil {
		return nil, err
	}
	// Exit 1 only means some names are unknown.
	if res.Exit > 1 {
		return nil, fmt.Errorf("dpkg-query exited %d: %s", res.Exit, cmdout.LastLines(res.Output(), 4))
	}
	out := map[string]string{}
	for _, l := range strings.Split(res.Stdout, "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			out[strings.SplitN(f[1], ":", 2)[0]] = f[0]
		}
	}
	return out, nil
}

// buildTools are what DKMS needs besides the headers to build the module.
var buildTools = []string{"dkms", "gcc", "make"}

// headerCandidates are the running kernel's headers packages, in order of
// preference: Proxmox VE 8+, older Proxmox VE, Debian.
func headerCandidates(release string) []string {
	return []string{"proxmox-headers-" + release, "pve-headers-" + release, "linux-headers-" + release}
}

// prepareHeaders picks the headers package and downloads what step 3 will
// install, updating apt's lists once when it knows no headers package:
// before anything is removed, the packages are on the node. It returns the
// packages to install.
func (r *runner) prepareHeaders(ctx context.Context) ([]string, error) {
	release, err := r.kernelRelease()
	if err != nil {
		return nil, err
	}
	cands := headerCandidates(release)
	r.status("checking that the headers of kernel %s can be installed, before anything is removed", release)
	have, err := r.dpkgStatus(ctx, append(slices.Clone(cands), buildTools...)...)
	if err != nil {
		return nil, err
	}
	var want []string
	header := ""
	for _, c := range cands {
		if strings.HasPrefix(have[c], "ii") {
			header = c
			break
		}
	}
	if header == "" {
		for pass := 0; pass < 2 && header == ""; pass++ {
			if pass == 1 {
				r.status("apt knows none of %s: updating its package lists", strings.Join(cands, ", "))
				if _, err := r.apt(ctx, "update"); err != nil {
					return nil, err
				}
			}
			avail, err := r.aptCandidates(ctx, cands...)
			if err != nil {
				return nil, err
			}
			for _, c := range cands {
				if avail[c] {
					header = c
					break
				}
			}
		}
		if header == "" {
			return nil, fmt.Errorf("no headers package for the running kernel %s: apt knows none of %s (even after apt-get update); add the repository that has them (on Proxmox VE the pve-no-subscription or enterprise repository), or boot a kernel whose headers are available", release, strings.Join(cands, ", "))
		}
		want = append(want, header)
	}
	for _, t := range buildTools {
		if !strings.HasPrefix(have[t], "ii") {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		r.logf("%s and %s are installed", header, strings.Join(buildTools, ", "))
		return nil, nil
	}
	r.status("downloading %s", strings.Join(want, " "))
	if _, err := r.apt(ctx, append([]string{"install", "--download-only", "--no-install-recommends"}, want...)...); err != nil {
		return nil, err
	}
	return want, nil
}

// aptCandidates tells which packages apt could install (apt-cache policy
// shows a candidate).
func (r *runner) aptCandidates(ctx context.Context, names ...string) (map[string]bool, error) {
	res, err := r.sh(ctx, Command{Name: "apt-cache", Args: append([]string{"policy"}, names...)})
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	pkg := ""
	for _, l := range strings.Split(res.Stdout, "\n") {
		if l != "" && l[0] != ' ' && strings.HasSuffix(l, ":") {
			pkg = strings.TrimSuffix(l, ":")
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Candidate:"); ok && pkg != "" {
			out[pkg] = strings.TrimSpace(v) != "(none)"
		}
	}
	return out, nil
}

// remove is step 2.
func (r *runner) remove(ctx context.Context, run string) error {
	r.step(StepRemove, "removing other NVIDIA drivers")
	if changed, err := r.purgeDistroPackages(ctx); err != nil {
		return r.fail(StepRemove, aptLog, changed, err)
	}
	if err := r.uninstallRun(ctx, run); err != nil {
		return r.fail(StepRemove, UninstallerLog, true, err)
	}
	if err := r.removeDKMS(ctx); err != nil {
		return r.fail(StepRemove, "", true, err)
	}
	return nil
}

// purgeDistroPackages purges the distribution's NVIDIA driver packages,
// but only when apt would remove nothing else with them. changed tells
// whether it got as far as purging.
func (r *runner) purgeDistroPackages(ctx context.Context) (changed bool, err error) {
	if p, err := findProgram(r.o.Root, "dpkg-query"); err != nil || p == "" {
		return false, err // none: not a dpkg system; an error: cannot tell
	}
	res, err := r.sh(ctx, Command{Name: "dpkg-query", Args: []string{"-W", "-f=${db:Status-Abbrev} ${Package}\n"}})
	if err != nil {
		return false, err
	}
	pkgs := provision.DriverPackages(res.Stdout)
	if len(pkgs) > 0 {
		sim, err := r.sh(ctx, Command{Name: "apt-get", Args: append([]string{"-s", "-q", "purge"}, pkgs...), Env: aptEnv})
		if err != nil {
			return false, err
		}
		if extra := alsoRemoved(sim.Stdout, pkgs); len(extra) > 0 {
			return false, fmt.Errorf("purging the distribution's NVIDIA packages (%s) would also remove %s, which depend on them; remove or keep those yourself, then run again", strings.Join(pkgs, " "), strings.Join(extra, " "))
		}
		r.status("step 2/6 (remove): purging the distribution's NVIDIA packages: %s", strings.Join(pkgs, " "))
		if _, err := r.apt(ctx, append([]string{"purge"}, pkgs...)...); err != nil {
			return true, err
		}
	}
	// Left by packages that are gone now; it would stop the installer.
	if err := os.Remove(r.host(altMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return true, err
	}
	return len(pkgs) > 0, nil
}

// alsoRemoved lists the packages that `apt-get -s purge` output would
// remove beyond pkgs.
func alsoRemoved(sim string, pkgs []string) []string {
	want := map[string]bool{}
	for _, p := range pkgs {
		want[strings.SplitN(p, ":", 2)[0]] = true
	}
	var extra []string
	for _, l := range strings.Split(sim, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && (f[0] == "Purg" || f[0] == "Remv") && !want[strings.SplitN(f[1], ":", 2)[0]] {
			extra = append(extra, f[1])
		}
	}
	return extra
}

// uninstallArgs are the uninstaller's flags: silent, a known log, and with
// a module loaded, no attempt to unload it.
func (r *runner) uninstallArgs() []string {
	a := []string{"--silent", "--log-file-name=" + UninstallerLog}
	if r.rep.Loaded != "" {
		a = append(a, "--skip-module-unload")
	}
	return a
}

// uninstallRun removes an earlier .run install with its own
// nvidia-uninstall, or with the configured .run's --uninstall when that is
// gone (both read /var/lib/nvidia/log).
func (r *runner) uninstallRun(ctx context.Context, run string) error {
	b, err := fsutil.ReadRegular(r.host(nvidiaLog), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	r.status("step 2/6 (remove): uninstalling the earlier .run install of driver %s", orNone(record.InstalledVersion(b)))
	c := Command{Name: "/bin/sh", Args: append([]string{run, "--uninstall"}, r.uninstallArgs()...), Env: r.runEnv()}
	if p := lookPath(r.o.Root, "nvidia-uninstall"); p != "" {
		c = Command{Name: p, Args: r.uninstallArgs()}
	}
	if _, err := r.sh(ctx, c); err != nil {
		return err
	}
	if _, err := os.Stat(r.host(nvidiaLog)); !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return fmt.Errorf("after %s, cannot tell whether /%s is gone: %w", c.Name, nvidiaLog, err)
		}
		return fmt.Errorf("%s left /%s behind", c.Name, nvidiaLog)
	}
	r.st.Partial = false
	return nil
}

// removeDKMS removes every version of the nvidia DKMS module that is left:
// the installer registers its own again, and a stale one breaks the build
// hooks of every later kernel.
func (r *runner) removeDKMS(ctx context.Context) error {
	if p, err := findProgram(r.o.Root, "dkms"); err != nil || p == "" {
		return err
	}
	res, err := r.sh(ctx, Command{Name: "dkms", Args: []string{"status", "-m", "nvidia"}})
	if err != nil {
		return err
	}
	for _, v := range dkmsVersions(res.Stdout, "nvidia") {
		r.status("step 2/6 (remove): removing the DKMS module nvidia/%s", v)
		if _, err := r.sh(ctx, Command{Name: "dkms", Args: []string{"remove", "-m", "nvidia", "-v", v, "--all"}}); err != nil {
			return err
		}
	}
	return nil
}

// dkmsVersions reads the versions of module from `dkms status` output, in
// dkms 3's form ("nvidia/550.54.14, 6.8.12-1-pve, x86_64: installed",
// "nvidia/550.54.14: added") and dkms 2's ("nvidia, 550.54.14, ...").
func dkmsVersions(status, module string) []string {
	var out []string
	for _, l := range strings.Split(status, "\n") {
		l = strings.TrimSpace(l)
		var v string
		if rest, ok := strings.CutPrefix(l, module+"/"); ok {
			v = strings.FieldsFunc(rest, func(c rune) bool { return c == ',' || c == ':' || c == ' ' })[0]
		} else if rest, ok := strings.CutPrefix(l, module+","); ok {
			if f := strings.FieldsFunc(rest, func(c rune) bool { return c == ',' || c == ':' || c == ' ' }); len(f) > 0 {
				v = f[0]
			}
		}
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// installPackages is step 3 (its packages were downloaded before step 2).
func (r *runner) installPackages(ctx context.Context, pkgs []string) error {
	if len(pkgs) == 0 {
		r.step(StepHeaders, "kernel headers and %s are installed", strings.Join(buildTools, ", "))
		return nil
	}
	r.step(StepHeaders, "installing %s", strings.Join(pkgs, " "))
	if _, err := r.apt(ctx, append([]string{"install", "--no-install-recommends"}, pkgs...)...); err != nil {
		return r.fail(StepHeaders, aptLog, true, err)
	}
	return nil
}

// blacklistNouveau is step 4. The initramfs is rebuilt when the blacklist
// is new or changed; when that fails the blacklist goes again, so that the
// next run redoes both.
func (r *runner) blacklistNouveau(ctx context.Context) error {
	r.step(StepNouveau, "blacklisting nouveau in /%s", BlacklistFile)
	path := r.host(BlacklistFile)
	old, err := fsutil.ReadRegular(path, 1<<20)
	if bytes.Equal(old, []byte(blacklistContents)) {
		r.logf("/%s is in place", BlacklistFile)
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return r.fail(StepNouveau, "", true, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return r.fail(StepNouveau, "", true, err)
	}
	if err := fsutil.WriteFileDurable(path, []byte(blacklistContents), 0o644); err != nil {
		return r.fail(StepNouveau, "", true, err)
	}
	upd := lookPath(r.o.Root, "update-initramfs")
	if upd == "" {
		r.logf("update-initramfs is not installed: no initramfs to rebuild")
		return nil
	}
	r.status("step 4/6 (nouveau): rebuilding the initramfs without nouveau (update-initramfs -u)")
	if _, err := r.sh(ctx, Command{Name: upd, Args: []string{"-u"}}); err != nil {
		os.Remove(path)
		return r.fail(StepNouveau, "", true, err)
	}
	return nil
}

// runEnv gives the .run's stub a temporary directory in the cache, which
// allows execution where /tmp may not.
func (r *runner) runEnv() []string {
	tmp := r.cache.TmpDir()
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil
	}
	return []string{"TMPDIR=" + tmp}
}

// installerArgs are the .run's arguments for a silent host install.
func (r *runner) installerArgs(run string) []string {
	return append([]string{run}, installFlags(r.driver().Version, r.driver().KernelModule, r.rep.Loaded != "")...)
}

// installFlags are nvidia-installer's flags for a host install of version,
// only those its branch knows (an unknown option is exit 1; nvflags):
// --skip-module-load from 550.40.07 (before it the installer loads the new
// module as its last step), --kernel-module-type from 555.42.02 (before it
// "open" is the kernel-open build directory),
// --allow-installation-with-running-driver from 545.23.06.
func installFlags(version, kernelModule string, loaded bool) []string {
	a := []string{"--silent", "--dkms", "--no-nouveau-check"}
	if nvflags.Knows(version, nvflags.SkipModuleLoad) {
		a = append(a, nvflags.SkipModuleLoad)
	}
	a = append(a, "--log-file-name="+InstallerLog)
	switch km := kernelModule; {
	case (km == config.KernelModuleOpen || km == config.KernelModuleProprietary) && nvflags.Knows(version, nvflags.KernelModuleType):
		a = append(a, nvflags.KernelModuleType+"="+km)
	case km == config.KernelModuleOpen && nvflags.Knows(version, nvflags.KernelModuleBuildDirectory):
		a = append(a, nvflags.KernelModuleBuildDirectory+"=kernel-open")
	}
	if loaded {
		if nvflags.Knows(version, nvflags.AllowRunningDriver) {
			a = append(a, nvflags.AllowRunningDriver)
		}
		a = append(a, "--skip-module-unload")
	}
	return a
}

// runInstaller is step 5; a failed install is rolled back.
func (r *runner) runInstaller(ctx context.Context, run string) error {
	d := r.driver()
	r.st.Partial = true // until the install is verified or rolled back
	r.step(StepInstall, "running %s --dkms", filepath.Base(run))
	_, err := r.sh(ctx, Command{Name: "/bin/sh", Args: r.installerArgs(run), Env: r.runEnv()})
	if err == nil {
		if have, rerr := r.installedVersion(); rerr != nil {
			err = fmt.Errorf("the installer succeeded, but its record cannot be read: %w", rerr)
		} else if have != d.Version {
			err = fmt.Errorf("the installer succeeded, but /%s records driver %q", nvidiaLog, have)
		}
	}
	if err == nil {
		// NVIDIA's installer goes on after a file it cannot install and
		// exits 0 (command-list.c execute_command_list, continue_after_error).
		src := filepath.Join("/usr/src", "nvidia-"+d.Version, "dkms.conf")
		if st, serr := os.Stat(r.host(src)); serr != nil || !st.Mode().IsRegular() {
			err = fmt.Errorf("the installer exited 0, but %s is not there: it went on after files it could not install (\"Cannot install\" in %s), and DKMS has no module to build", src, InstallerLog)
		}
	}
	if err == nil {
		r.st.Partial = false
		return nil
	}
	_, statErr := os.Stat(r.host(nvidiaLog))
	if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
		// It may have installed files: left marked partial, the next run
		// uninstalls them before it installs.
		err = fmt.Errorf("%w; cannot tell whether it installed files (%v), so nothing was rolled back: the next run removes them first", err, statErr)
	}
	if statErr == nil {
		r.status("step 5/6 (install) failed; rolling back what the installer installed")
		c := Command{Name: "/bin/sh", Args: append([]string{run, "--uninstall"}, r.uninstallArgs()...), Env: r.runEnv()}
		if _, uerr := r.sh(context.WithoutCancel(ctx), c); uerr != nil {
			err = fmt.Errorf("%w; rolling it back failed too: %v (see %s)", err, uerr, UninstallerLog)
		} else {
			r.st.Partial = false
			err = fmt.Errorf("%w; the partial install was rolled back", err)
		}
	}
	return r.fail(StepInstall, InstallerLog, true, err)
}

// markReboot is step 6.
func (r *runner) markReboot(ctx context.Context) (Report, error) {
	d := r.driver()
	r.step(StepReboot, "driver %s is installed; it loads at the next boot", d.Version)
	if err := markRebootRequired(r.o.Root); err != nil {
		return r.rep, r.fail(StepReboot, "", true, err)
	}
	r.rep.Installed, _ = r.installedVersion() // verified by runInstaller
	r.st.Installed = r.rep.Installed
	r.rep.Path = PathInstalled
	r.st.Outcome, r.st.Error, r.st.Log = OutcomeRebootRequired, "", ""
	r.rep.Summary = fmt.Sprintf("NVIDIA driver %s installed (loaded: %s): reboot required", d.Version, orNone(r.rep.Loaded))
	if d.Reboot == config.RebootAuto {
		users, err := r.gpuUsers()
		switch {
		case err != nil:
			r.rep.Summary += fmt.Sprintf("; not rebooting by itself although reboot = \"auto\": cannot tell whether a process has an NVIDIA device open (%v); reboot when no container uses a GPU", err)
		case users > 0:
			r.rep.Summary += fmt.Sprintf("; not rebooting by itself although reboot = \"auto\": %d processes have an NVIDIA device open", users)
		default:
			r.rep.Rebooting = true
			r.st.Outcome = OutcomeRebooting
			r.rep.Summary = fmt.Sprintf("NVIDIA driver %s installed (loaded: %s): rebooting now (reboot = \"auto\")", d.Version, orNone(r.rep.Loaded))
		}
	}
	r.finish()
	r.st.Time, r.st.Duration = time.Now().UTC(), r.rep.Duration
	if err := saveState(r.paths().State, r.st, true); err != nil {
		return r.rep, r.fail(StepReboot, "", true, err)
	}
	r.status("%s", r.rep.Summary)
	if r.rep.Rebooting {
		// --no-block: the reboot waits for this unit to finish, not the reverse.
		if _, err := r.sh(ctx, Command{Name: "systemctl", Args: []string{"--no-block", "reboot"}}); err != nil {
			return r.rep, r.fail(StepReboot, "", true, err)
		}
	}
	return r.rep, nil
}

// gpuUsers counts the processes that have an NVIDIA device node open
// (a <proc>/<pid>/fd link to /dev/nvidia*, as the process sees it):
// containers using a GPU, which a reboot would cut off. At boot, before the
// guests start, there are none. When it cannot read the process table, or
// a process's descriptors for another reason than the process being gone,
// it cannot tell, and says so: a reboot is then not safe.
func (r *runner) gpuUsers() (int, error) {
	proc := r.paths().Proc
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, fmt.Errorf("listing the processes: %w", err)
	}
	n, pids := 0, 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		pids++
		dir := filepath.Join(proc, e.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // it ended meanwhile
		}
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, fd := range fds {
			if t, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(t, "/dev/nvidia") {
				n++
				break
			}
		}
	}
	if pids == 0 {
		return 0, fmt.Errorf("%s lists no process (not the kernel's process table?)", proc)
	}
	return n, nil
}
