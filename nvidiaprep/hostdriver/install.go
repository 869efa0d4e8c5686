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

	"nvidiaprep/nvidiaprep/cmdout"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/nvflags"
	"nvidiaprep/nvidiaprep/nvpkgs"
	"nvidiaprep/nvidiaprep/record"
)

// beginFetch says where step 1 gets the .run from.
func (r *runner) beginFetch() string {
	d := r.driver()
	src := d.Run
	if src == "" {
		src = r.cache.RunsDir()
	}
	return fmt.Sprintf("getting NVIDIA driver %s from %s", d.Version, src)
}

// fetchStep is step 1: the .run in the cache, verified, and extracted for
// the containers.
func (r *runner) fetchStep(ctx context.Context) error {
	d := r.driver()
	if d.SHA256 == "" {
		r.warnf("[driver] sha256 is not set: the driver package is not verified; pin it")
	}
	run, err := r.fetcher().fetch(ctx)
	if err != nil {
		return err
	}
	tree, err := r.cache.Extract(ctx, d.Version, d.SHA256)
	if err != nil {
		return err
	}
	r.runFile, r.rep.Tree = run, tree
	return r.gate(ctx)
}

// sh runs a command (a non-zero exit is a *hostcmd.ExitError) and logs it.
func (r *runner) sh(ctx context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	r.o.Log.Debug().Msgf("running %s", c)
	return r.o.Runner.Run(ctx, c)
}

// aptEnv keeps apt and dpkg from asking.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}

func (r *runner) aptLockTimeout() string {
	return "DPkg::Lock::Timeout=" + strconv.Itoa(int(r.o.Config.Provision.DpkgLockTimeout.Seconds()))
}

// apt runs apt-get with the lock timeout, quietly, without questions.
func (r *runner) apt(ctx context.Context, args ...string) (hostcmd.Result, error) {
	a := append([]string{"-q", "-y", "-o", r.aptLockTimeout()}, args...)
	return r.sh(ctx, hostcmd.Command{Name: "apt-get", Args: a, Env: aptEnv})
}

// dpkgStatus returns the dpkg status ("ii", "rc", ...) of the named
// packages that dpkg knows.
func (r *runner) dpkgStatus(ctx context.Context, names ...string) (map[string]string, error) {
	res, err := r.o.Runner.Run(ctx, hostcmd.Command{Name: "dpkg-query", Args: append([]string{"-W", "-f=" + nvpkgs.QueryFormat}, names...)})
	// Exit 1 only means some names are unknown.
	if code, ok := hostcmd.ExitCode(err); ok && code == 1 {
		err = nil
	} else if ok {
		return nil, fmt.Errorf("dpkg-query exited %d: %s", code, cmdout.LastLines(res.Output, 4))
	}
	if err != nil {
		return nil, err
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

// prepareHeaders is step 3's prepare: it picks the headers package and
// downloads what step 3 will install, updating apt's lists once when it
// knows no headers package: before anything is removed, the packages are
// on the node.
func (r *runner) prepareHeaders(ctx context.Context) error {
	pkgs, err := r.headerPackages(ctx)
	if err != nil {
		return failed(aptLog, false, err)
	}
	r.headerPkgs = pkgs
	return nil
}

// headerPackages returns the packages step 3 installs, downloaded: the
// headers of every installed kernel that lacks them (the gate found them),
// the headers metapackage, and the build tools DKMS needs.
func (r *runner) headerPackages(ctx context.Context) ([]string, error) {
	release, err := r.kernelRelease()
	if err != nil {
		return nil, err
	}
	r.status("checking that the headers of every installed kernel (%s) can be installed, before anything is removed", strings.Join(r.plan.Kernels, " "))
	want, err := r.kernelPackages(ctx, release)
	if err != nil {
		return nil, err
	}
	have, err := r.dpkgStatus(ctx, buildTools...)
	if err != nil {
		return nil, err
	}
	for _, t := range buildTools {
		if !strings.HasPrefix(have[t], "ii") {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		r.logf("the headers of every kernel and %s are installed", strings.Join(buildTools, ", "))
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
	res, err := r.sh(ctx, hostcmd.Command{Name: "apt-cache", Args: append([]string{"policy"}, names...)})
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
func (r *runner) remove(ctx context.Context) error {
	if changed, err := r.purgeDistroPackages(ctx); err != nil {
		return failed(aptLog, changed, err)
	}
	if err := r.uninstallRun(ctx, r.runFile); err != nil {
		return failed(UninstallerLog, true, err)
	}
	return r.removeDKMS(ctx)
}

// purgeDistroPackages purges the distribution's NVIDIA driver packages,
// but only when apt would remove nothing else with them. changed tells
// whether it got as far as purging.
func (r *runner) purgeDistroPackages(ctx context.Context) (changed bool, err error) {
	if p, err := findProgram(r.o.Config.Paths.Root, "dpkg-query"); err != nil || p == "" {
		return false, err // none: not a dpkg system; an error: cannot tell
	}
	res, err := r.sh(ctx, hostcmd.Command{Name: "dpkg-query", Args: []string{"-W", "-f=" + nvpkgs.QueryFormat}})
	if err != nil {
		return false, err
	}
	pkgs := nvpkgs.DriverPackages(res.Stdout)
	if len(pkgs) > 0 {
		sim, err := r.sh(ctx, hostcmd.Command{Name: "apt-get", Args: append([]string{"-s", "-q", "purge"}, pkgs...), Env: aptEnv})
		if err != nil {
			return false, err
		}
		if extra := alsoRemoved(sim.Stdout, pkgs); len(extra) > 0 {
			return false, fmt.Errorf("purging the distribution's NVIDIA packages (%s) would also remove %s, which depend on them; remove or keep those yourself, then run again", strings.Join(pkgs, " "), strings.Join(extra, " "))
		}
		r.stepf("purging the distribution's NVIDIA packages: %s", strings.Join(pkgs, " "))
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
	b, err := fsutil.ReadRegular(r.host(record.NVIDIALog), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	r.stepf("uninstalling the earlier .run install of driver %s", orNone(record.InstalledVersion(b)))
	c := hostcmd.Command{Name: "/bin/sh", Args: append([]string{run, "--uninstall"}, r.uninstallArgs()...), Env: r.runEnv()}
	if p := lookPath(r.o.Config.Paths.Root, "nvidia-uninstall"); p != "" {
		c = hostcmd.Command{Name: p, Args: r.uninstallArgs()}
	}
	if _, err := r.sh(ctx, c); err != nil {
		return err
	}
	if _, err := os.Stat(r.host(record.NVIDIALog)); !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return fmt.Errorf("after %s, cannot tell whether %s is gone: %w", c.Name, record.NVIDIALog, err)
		}
		return fmt.Errorf("%s left %s behind", c.Name, record.NVIDIALog)
	}
	r.st.Partial = false
	return nil
}

// removeDKMS removes every version of the nvidia DKMS module that is left:
// the installer registers its own again, and a stale one breaks the build
// hooks of every later kernel.
func (r *runner) removeDKMS(ctx context.Context) error {
	if p, err := findProgram(r.o.Config.Paths.Root, "dkms"); err != nil || p == "" {
		return err
	}
	res, err := r.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"status", "-m", "nvidia"}})
	if err != nil {
		return err
	}
	for _, v := range dkmsVersions(res.Stdout, "nvidia") {
		r.stepf("removing the DKMS module nvidia/%s", v)
		if _, err := r.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"remove", "-m", "nvidia", "-v", v, "--all"}}); err != nil {
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

func (r *runner) beginHeaders() string {
	if len(r.headerPkgs) == 0 {
		return fmt.Sprintf("kernel headers and %s are installed", strings.Join(buildTools, ", "))
	}
	return "installing " + strings.Join(r.headerPkgs, " ")
}

// installPackages is step 3 (its packages were downloaded before step 2).
func (r *runner) installPackages(ctx context.Context) error {
	if len(r.headerPkgs) == 0 {
		return nil
	}
	if _, err := r.apt(ctx, append([]string{"install", "--no-install-recommends"}, r.headerPkgs...)...); err != nil {
		return failed(aptLog, true, err)
	}
	return nil
}

// blacklistNouveau is step 4. The initramfs is rebuilt when the blacklist
// is new or changed; when that fails the blacklist goes again, so that the
// next run redoes both.
func (r *runner) blacklistNouveau(ctx context.Context) error {
	path := r.host(hostdriverstate.BlacklistFile)
	old, err := fsutil.ReadRegular(path, 1<<20)
	if bytes.Equal(old, []byte(blacklistContents)) {
		r.logf("/%s is in place", hostdriverstate.BlacklistFile)
		return nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := fsutil.WriteFileDurable(path, []byte(blacklistContents), 0o644); err != nil {
		return err
	}
	upd := lookPath(r.o.Config.Paths.Root, "update-initramfs")
	if upd == "" {
		r.logf("update-initramfs is not installed: no initramfs to rebuild")
		return nil
	}
	r.stepf("rebuilding the initramfs without nouveau (update-initramfs -u)")
	if _, err := r.sh(ctx, hostcmd.Command{Name: upd, Args: []string{"-u"}}); err != nil {
		os.Remove(path)
		return err
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

// installerArgs are the .run's arguments for a silent host install of
// version: the module type the gate chose, and with Secure Boot on the
// signing key (the old driver put back after a failed upgrade is signed
// with it too).
func (r *runner) installerArgs(run, version string) ([]string, error) {
	sign, err := r.signingFlags()
	if err != nil {
		return nil, err
	}
	a := append([]string{run}, installFlags(version, r.moduleType())...)
	return append(a, sign...), nil
}

// installFlags are nvidia-installer's flags for a host install of version,
// only those its branch knows (an unknown option is exit 1; nvflags):
// --kernel-module-type from 555.42.02 (before it "open" is the kernel-open
// build directory). No --skip-module-load: the installer test-loads the new
// module and loads it as its last step (nvidia-drm, and with it nvidia and
// nvidia-modeset), which upgrade.go's checks made possible (nothing holds
// the old driver, nouveau is released); no
// --allow-installation-with-running-driver: a module still loaded after
// the installer's own rmmod must fail the install, not leave the node
// with half its modules.
func installFlags(version, kernelModule string) []string {
	a := []string{"--silent", "--dkms", "--no-nouveau-check"}
	a = append(a, "--log-file-name="+InstallerLog)
	switch km := kernelModule; {
	case (km == config.KernelModuleOpen || km == config.KernelModuleProprietary) && nvflags.Knows(version, nvflags.KernelModuleType):
		a = append(a, nvflags.KernelModuleType+"="+km)
	case km == config.KernelModuleOpen && nvflags.Knows(version, nvflags.KernelModuleBuildDirectory):
		a = append(a, nvflags.KernelModuleBuildDirectory+"=kernel-open")
	}
	return a
}

func (r *runner) beginInstaller() string {
	return fmt.Sprintf("running %s --dkms", filepath.Base(r.runFile))
}

// runInstaller is step 5; a failed install is rolled back (then it is no
// longer partial).
func (r *runner) runInstaller(ctx context.Context) error {
	d, run := r.driver(), r.runFile
	args, err := r.installerArgs(run, d.Version)
	if err != nil {
		return failed("", false, err)
	}
	res, err := r.sh(ctx, hostcmd.Command{Name: "/bin/sh", Args: args, Env: r.runEnv()})
	if err != nil {
		release, _ := r.kernelRelease()
		if cause := installerCause(res.Output, d.Version, release); cause != "" {
			err = fmt.Errorf("%w: %s", err, cause)
		}
	}
	if err == nil {
		if have, rerr := r.installedVersion(); rerr != nil {
			err = fmt.Errorf("the installer succeeded, but its record cannot be read: %w", rerr)
		} else if have != d.Version {
			err = fmt.Errorf("the installer succeeded, but %s records driver %q", record.NVIDIALog, have)
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
		r.kernels = r.dkmsEveryKernel(ctx)
		return nil
	}
	_, statErr := os.Stat(r.host(record.NVIDIALog))
	if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
		// It may have installed files: left marked partial, the next run
		// uninstalls them before it installs.
		err = fmt.Errorf("%w; cannot tell whether it installed files (%v), so nothing was rolled back: the next run removes them first", err, statErr)
	}
	if statErr == nil {
		r.status("%s failed; rolling back what the installer installed", r.cur.label())
		c := hostcmd.Command{Name: "/bin/sh", Args: append([]string{run, "--uninstall"}, r.uninstallArgs()...), Env: r.runEnv()}
		if _, uerr := r.sh(context.WithoutCancel(ctx), c); uerr != nil {
			err = fmt.Errorf("%w; rolling it back failed too: %v (see %s)", err, uerr, UninstallerLog)
		} else {
			r.st.Partial = false
			err = fmt.Errorf("%w; the partial install was rolled back", err)
		}
	}
	// The installer unloaded the old driver: put it back and load it.
	return failed(InstallerLog, true, r.putBack(ctx, err))
}

// gpuUsers counts the processes that have an NVIDIA device node open
// (Holders): containers using a GPU, which a reboot would cut off. When it
// cannot tell, it says so: a reboot is then not safe.
func (r *runner) gpuUsers() (int, error) {
	hs, err := Holders(r.host("proc"), r.paths().Dev)
	return len(hs), err
}
