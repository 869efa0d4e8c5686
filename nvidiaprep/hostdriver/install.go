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
func beginFetch(h *host) string {
	d := h.d
	src := d.Run
	if src == "" {
		src = h.cache.RunsDir()
	}
	return fmt.Sprintf("getting NVIDIA driver %s from %s", d.Version, src)
}

// fetchStep is step 1: the .run in the cache, verified, and extracted for
// the containers (prepare then runs the kernel gate on the tree).
func fetchStep(ctx context.Context, h *host) (run, tree string, err error) {
	d := h.d
	if d.SHA256 == "" {
		h.warnf("[driver] sha256 is not set: the driver package is not verified; pin it")
	}
	if run, err = h.fetcher().fetch(ctx); err != nil {
		return "", "", err
	}
	if tree, err = h.cache.Extract(ctx, d.Version, d.SHA256); err != nil {
		return "", "", err
	}
	return run, tree, nil
}

// sh runs a command (a non-zero exit is a *hostcmd.ExitError) and logs it.
func (h *host) sh(ctx context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	h.o.Log.Debug().Msgf("running %s", c)
	return h.o.Runner.Run(ctx, c)
}

// aptEnv keeps apt and dpkg from asking.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}

// apt runs apt-get with dpkg's lock timeout, quietly, without questions.
func (h *host) apt(ctx context.Context, args ...string) (hostcmd.Result, error) {
	lock := "DPkg::Lock::Timeout=" + strconv.Itoa(int(h.o.Config.Provision.DpkgLockTimeout.Seconds()))
	a := append([]string{"-q", "-y", "-o", lock}, args...)
	return h.sh(ctx, hostcmd.Command{Name: "apt-get", Args: a, Env: aptEnv})
}

// dpkgStatus returns the dpkg status ("ii", "rc", ...) of the named
// packages that dpkg knows.
func dpkgStatus(ctx context.Context, run hostcmd.Runner, names ...string) (map[string]string, error) {
	res, err := run.Run(ctx, hostcmd.Command{Name: "dpkg-query", Args: append([]string{"-W", "-f=" + nvpkgs.QueryFormat}, names...)})
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

// headerPackages returns the packages step 3 installs, downloaded before
// anything is removed (prepare): the headers of every installed kernel
// that lacks them (the gate found them), the headers metapackage, and the
// build tools DKMS needs.
func headerPackages(ctx context.Context, j job) ([]string, error) {
	j.status("checking that the headers of every installed kernel (%s) can be installed, before anything is removed", strings.Join(j.plan.Kernels, " "))
	want, err := kernelPackages(ctx, j)
	if err != nil {
		return nil, err
	}
	have, err := dpkgStatus(ctx, j.o.Runner, buildTools...)
	if err != nil {
		return nil, err
	}
	for _, t := range buildTools {
		if !strings.HasPrefix(have[t], "ii") {
			want = append(want, t)
		}
	}
	if len(want) == 0 {
		j.logf("the headers of every kernel and %s are installed", strings.Join(buildTools, ", "))
		return nil, nil
	}
	j.status("downloading %s", strings.Join(want, " "))
	if _, err := j.apt(ctx, append([]string{"install", "--download-only", "--no-install-recommends"}, want...)...); err != nil {
		return nil, err
	}
	return want, nil
}

// aptCandidates tells which packages apt could install (apt-cache policy
// shows a candidate).
func aptCandidates(ctx context.Context, h *host, names ...string) (map[string]bool, error) {
	res, err := h.sh(ctx, hostcmd.Command{Name: "apt-cache", Args: append([]string{"policy"}, names...)})
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

// removeStep is step 2.
func removeStep(ctx context.Context, j job) (result, error) {
	if changed, err := purgeDistroPackages(ctx, j); err != nil {
		return result{}, failed(aptLog, changed, err)
	}
	settled, err := uninstallRun(ctx, j)
	if err != nil {
		return result{}, failed(UninstallerLog, true, err)
	}
	return result{settled: settled}, removeDKMS(ctx, j)
}

// purgeDistroPackages purges the distribution's NVIDIA driver packages,
// but only when apt would remove nothing else with them. changed tells
// whether it got as far as purging.
func purgeDistroPackages(ctx context.Context, j job) (changed bool, err error) {
	if p, err := findProgram(j.p.Root, "dpkg-query"); err != nil || p == "" {
		return false, err // none: not a dpkg system; an error: cannot tell
	}
	res, err := j.sh(ctx, hostcmd.Command{Name: "dpkg-query", Args: []string{"-W", "-f=" + nvpkgs.QueryFormat}})
	if err != nil {
		return false, err
	}
	pkgs := nvpkgs.DriverPackages(res.Stdout)
	if len(pkgs) > 0 {
		sim, err := j.sh(ctx, hostcmd.Command{Name: "apt-get", Args: append([]string{"-s", "-q", "purge"}, pkgs...), Env: aptEnv})
		if err != nil {
			return false, err
		}
		if extra := alsoRemoved(sim.Stdout, pkgs); len(extra) > 0 {
			return false, fmt.Errorf("purging the distribution's NVIDIA packages (%s) would also remove %s, which depend on them; remove or keep those yourself, then run again", strings.Join(pkgs, " "), strings.Join(extra, " "))
		}
		j.stepf("purging the distribution's NVIDIA packages: %s", strings.Join(pkgs, " "))
		if _, err := j.apt(ctx, append([]string{"purge"}, pkgs...)...); err != nil {
			return true, err
		}
	}
	// Left by packages that are gone now; it would stop the installer.
	if err := os.Remove(j.p.Host(altMarker)); err != nil && !errors.Is(err, os.ErrNotExist) {
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
func uninstallArgs(loaded string) []string {
	a := []string{"--silent", "--log-file-name=" + UninstallerLog}
	if loaded != "" {
		a = append(a, "--skip-module-unload")
	}
	return a
}

// uninstallRun removes an earlier .run install with its own
// nvidia-uninstall, or with the configured .run's --uninstall when that is
// gone (both read /var/lib/nvidia/log). settled tells that it removed one
// (whatever was half installed is gone with it).
func uninstallRun(ctx context.Context, j job) (settled bool, err error) {
	b, err := fsutil.ReadRegular(j.p.Host(record.NVIDIALog), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	j.stepf("uninstalling the earlier .run install of driver %s", orNone(record.InstalledVersion(b)))
	c := hostcmd.Command{Name: "/bin/sh", Args: append([]string{j.run, "--uninstall"}, uninstallArgs(j.loaded)...), Env: j.runEnv()}
	if p := lookPath(j.p.Root, "nvidia-uninstall"); p != "" {
		c = hostcmd.Command{Name: p, Args: uninstallArgs(j.loaded)}
	}
	if _, err := j.sh(ctx, c); err != nil {
		return false, err
	}
	if _, err := os.Stat(j.p.Host(record.NVIDIALog)); !errors.Is(err, os.ErrNotExist) {
		if err != nil {
			return false, fmt.Errorf("after %s, cannot tell whether %s is gone: %w", c.Name, record.NVIDIALog, err)
		}
		return false, fmt.Errorf("%s left %s behind", c.Name, record.NVIDIALog)
	}
	return true, nil
}

// removeDKMS removes every version of the nvidia DKMS module that is left:
// the installer registers its own again, and a stale one breaks the build
// hooks of every later kernel.
func removeDKMS(ctx context.Context, j job) error {
	if p, err := findProgram(j.p.Root, "dkms"); err != nil || p == "" {
		return err
	}
	res, err := j.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"status", "-m", "nvidia"}})
	if err != nil {
		return err
	}
	for _, v := range dkmsVersions(res.Stdout, "nvidia") {
		j.stepf("removing the DKMS module nvidia/%s", v)
		if _, err := j.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"remove", "-m", "nvidia", "-v", v, "--all"}}); err != nil {
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

func beginHeaders(j job) string {
	if len(j.pkgs) == 0 {
		return fmt.Sprintf("kernel headers and %s are installed", strings.Join(buildTools, ", "))
	}
	return "installing " + strings.Join(j.pkgs, " ")
}

// installPackages is step 3 (its packages were downloaded before step 2).
func installPackages(ctx context.Context, j job) (result, error) {
	if len(j.pkgs) == 0 {
		return result{}, nil
	}
	if _, err := j.apt(ctx, append([]string{"install", "--no-install-recommends"}, j.pkgs...)...); err != nil {
		return result{}, failed(aptLog, true, err)
	}
	return result{}, nil
}

// blacklistNouveau is step 4. The initramfs is rebuilt when the blacklist
// is new or changed; when that fails the blacklist goes again, so that the
// next run redoes both.
func blacklistNouveau(ctx context.Context, j job) error {
	path := j.p.Host(hostdriverstate.BlacklistFile)
	old, err := fsutil.ReadRegular(path, 1<<20)
	if bytes.Equal(old, []byte(blacklistContents)) {
		j.logf("/%s is in place", hostdriverstate.BlacklistFile)
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
	upd := lookPath(j.p.Root, "update-initramfs")
	if upd == "" {
		j.logf("update-initramfs is not installed: no initramfs to rebuild")
		return nil
	}
	j.stepf("rebuilding the initramfs without nouveau (update-initramfs -u)")
	if _, err := j.sh(ctx, hostcmd.Command{Name: upd, Args: []string{"-u"}}); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}

// runEnv gives the .run's stub a temporary directory in the cache, which
// allows execution where /tmp may not.
func (h *host) runEnv() []string {
	tmp := h.cache.TmpDir()
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil
	}
	return []string{"TMPDIR=" + tmp}
}

// installerArgs are the .run's arguments for a silent host install of
// version: the module type the gate chose, and with Secure Boot on the
// signing key (the old driver put back after a failed upgrade is signed
// with it too).
func installerArgs(j job, run, version string) ([]string, error) {
	sign, err := signingFlags(j)
	if err != nil {
		return nil, err
	}
	a := append([]string{run}, installFlags(version, j.plan.ModuleType)...)
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

func beginInstaller(j job) string {
	return fmt.Sprintf("running %s --dkms", filepath.Base(j.run))
}

// runInstaller is step 5; a failed install is rolled back (then it is
// settled) and the driver loaded before put back.
func runInstaller(ctx context.Context, j job) (result, error) {
	d, run := j.d, j.run
	args, err := installerArgs(j, run, d.Version)
	if err != nil {
		return result{}, failed("", false, err)
	}
	res, err := j.sh(ctx, hostcmd.Command{Name: "/bin/sh", Args: args, Env: j.runEnv()})
	if err != nil {
		if cause := installerCause(res.Output, d.Version, j.release); cause != "" {
			err = fmt.Errorf("%w: %s", err, cause)
		}
	}
	if err == nil {
		if have, rerr := record.ReadInstalledVersion(j.p.Root); rerr != nil {
			err = fmt.Errorf("the installer succeeded, but its record cannot be read: %w", rerr)
		} else if have != d.Version {
			err = fmt.Errorf("the installer succeeded, but %s records driver %q", record.NVIDIALog, have)
		}
	}
	if err == nil {
		// NVIDIA's installer goes on after a file it cannot install and
		// exits 0 (command-list.c execute_command_list, continue_after_error).
		src := filepath.Join("/usr/src", "nvidia-"+d.Version, "dkms.conf")
		if st, serr := os.Stat(j.p.Host(src)); serr != nil || !st.Mode().IsRegular() {
			err = fmt.Errorf("the installer exited 0, but %s is not there: it went on after files it could not install (\"Cannot install\" in %s), and DKMS has no module to build", src, InstallerLog)
		}
	}
	if err == nil {
		// Installed in this boot: step 6 records it before it loads, so a
		// run cut off there is told from a later boot by boot id.
		return result{bootID: bootID(j.p.Proc), warning: kernelWarning(d.Version, dkmsEveryKernel(ctx, j))}, nil
	}
	var out result
	_, statErr := os.Stat(j.p.Host(record.NVIDIALog))
	if statErr != nil && !errors.Is(statErr, os.ErrNotExist) {
		// It may have installed files: left marked partial, the next run
		// uninstalls them before it installs.
		err = fmt.Errorf("%w; cannot tell whether it installed files (%v), so nothing was rolled back: the next run removes them first", err, statErr)
	}
	if statErr == nil {
		j.status("%s failed; rolling back what the installer installed", j.step.label())
		c := hostcmd.Command{Name: "/bin/sh", Args: append([]string{run, "--uninstall"}, uninstallArgs(j.loaded)...), Env: j.runEnv()}
		if _, uerr := j.sh(context.WithoutCancel(ctx), c); uerr != nil {
			err = fmt.Errorf("%w; rolling it back failed too: %v (see %s)", err, uerr, UninstallerLog)
		} else {
			out.settled = true
			err = fmt.Errorf("%w; the partial install was rolled back", err)
		}
	}
	// The installer unloaded the old driver: put it back and load it.
	back, err := putBack(ctx, j, err)
	out.settled, out.nodes = out.settled || back.settled, back.nodes
	return out, failed(InstallerLog, true, err)
}
