package hostdriver

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/secureboot"
)

// The host driver unit's part in kernel support: the gate before anything
// changes (kernelguard.Gate), the headers of every installed kernel, the
// signing key, DKMS for every kernel after the installer, and the boot
// that came up without the installed driver.

// gate runs kernelguard.Gate on the extracted tree: a refusal ends the run
// before anything on the node changes.
func (r *runner) gate(ctx context.Context) error {
	release, err := r.kernelRelease()
	if err != nil {
		return err
	}
	d := r.driver()
	plan, err := kernelguard.Gate(ctx, kernelguard.GateInput{
		Version: d.Version, Tree: r.rep.Tree, KernelModule: d.KernelModule,
		Root: r.paths().Root, Sys: r.paths().Sys, Running: release, Runner: r.o.Runner,
		Installable: r.installable, CreateKey: true,
	})
	if err != nil {
		return err
	}
	for _, n := range plan.Notes {
		r.warnf("%s", n)
	}
	if plan.KeyCreated {
		r.logf("Secure Boot is on: made the module signing key %s and %s (DKMS and the installer sign with it)", secureboot.KeyPath, secureboot.CertPath)
	}
	r.plan = plan
	return nil
}

// installable tells which packages apt can install, updating its lists
// once when it knows none of some.
func (r *runner) installable(ctx context.Context, pkgs []string) (map[string]bool, error) {
	avail, err := r.aptCandidates(ctx, pkgs...)
	if err != nil || !slices.ContainsFunc(pkgs, func(p string) bool { return !avail[p] }) {
		return avail, err
	}
	r.status("apt knows none of %s: updating its package lists", strings.Join(slices.DeleteFunc(slices.Clone(pkgs), func(p string) bool { return avail[p] }), ", "))
	if _, err := r.apt(ctx, "update"); err != nil {
		return nil, err
	}
	return r.aptCandidates(ctx, pkgs...)
}

// kernelPackages are the headers the gate found missing, and the headers
// metapackage of the running kernel's kind (proxmox-default-headers,
// linux-headers-amd64) when apt has it and it is not installed: with it,
// every later kernel's headers come in the same apt run as the kernel, so
// DKMS builds the module inside that run, before any reboot (a job that
// installed them after dpkg ends would run where the admin does not look,
// and could lose the race with a reboot).
func (r *runner) kernelPackages(ctx context.Context, release string) ([]string, error) {
	pkgs := slices.Clone(r.plan.Headers)
	meta := kernels.Metapackage(release)
	if meta == "" {
		return pkgs, nil
	}
	have, err := r.dpkgStatus(ctx, meta)
	if err != nil || strings.HasPrefix(have[meta], "ii") {
		return pkgs, err
	}
	avail, err := r.aptCandidates(ctx, meta)
	if err != nil {
		return nil, err
	}
	if avail[meta] {
		pkgs = append(pkgs, meta)
	} else {
		r.warnf("apt has no %s: the headers of later kernels do not come with them; install them with each kernel (`apt install %s`)", meta, kernels.HeadersFor("<release>"))
	}
	return pkgs, nil
}

// signingFlags are the installer's --module-signing-* options with Secure
// Boot on (every branch nvidiaprep installs knows them), after DKMS is
// set to sign with the same key.
func (r *runner) signingFlags() ([]string, error) {
	k := r.plan.Signing
	if k == nil {
		return nil, nil
	}
	if changed, err := secureboot.EnsureDKMSSigning(r.paths().Root); err != nil {
		return nil, err
	} else if changed {
		r.logf("DKMS signs with %s from now on (%s)", secureboot.KeyPath, secureboot.DKMSConf)
	}
	return []string{"--module-signing-secret-key=" + k.KeyPath, "--module-signing-public-key=" + k.CertPath}, nil
}

// moduleType is the kernel module type the gate chose (the configured
// one, or for "auto" the installer's recommendation or the GPUs'), as
// installFlags takes it.
func (r *runner) moduleType() string { return r.plan.ModuleType }

// dkmsEveryKernel has DKMS build the new module for every installed kernel
// the installer did not build it for (the installer builds for the running
// one), with DKMS's own autoinstall, then proves the result with `dkms
// status`. A kernel left without its module does not fail the install:
// the running kernel may still boot it; it is said loudly (summary, log,
// the kernel guard's state and marker for status and doctor).
func (r *runner) dkmsEveryKernel(ctx context.Context) []kernels.Kernel {
	release, err := r.kernelRelease()
	if err != nil {
		r.warnf("%v", err)
		return nil
	}
	v := r.driver().Version
	c := kernels.Checker{Root: r.paths().Root, Running: release, Runner: r.o.Runner}
	states, err := kernels.Status(ctx, r.o.Runner, v)
	if err != nil {
		r.warnf("%v", err)
	}
	for _, k := range r.plan.Kernels {
		if k == release || states[k] == "installed" {
			continue
		}
		r.stepf("building the module for kernel %s with DKMS (dkms autoinstall -k %s)", k, k)
		if _, err := r.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"autoinstall", "-k", k}}); err != nil {
			r.warnf("dkms autoinstall -k %s: %v", k, err)
		}
	}
	ks, err := c.Check(ctx, v)
	if err != nil {
		r.warnf("%v", err)
		return nil
	}
	_, err = kernelguard.KernelInstalled(ctx, kernelguard.GuardInput{Config: r.o.Config, Running: release, Runner: r.o.Runner, Out: logWriter{r}})
	if err != nil {
		r.warnf("%v", err)
	}
	return ks
}

// logWriter sends the guard's lines to the unit's log.
type logWriter struct{ r *runner }

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l = strings.TrimPrefix(l, "nvidiaprep: "); strings.Trim(l, "*") != "" {
			w.r.warnf("%s", l)
		}
	}
	return len(p), nil
}

// kernelWarning sums up the kernels left without the module, for the
// summary; "" when none.
func kernelWarning(v string, ks []kernels.Kernel) string {
	var out []string
	for _, k := range ks {
		if k.Bootable && !k.Ready {
			out = append(out, fmt.Sprintf("kernel %s has no driver %s module (%s; fix: %s)", k.Release, v, k.Why, k.Fix))
		}
	}
	if len(out) == 0 {
		return ""
	}
	if w := kernels.Working(ks); w != "" {
		out = append(out, "do not boot those before the fix; keep booting "+w+": "+kernels.PinCommand(w))
	}
	return "; WARNING: " + strings.Join(out, "; ")
}

// bootID is this boot's id (<proc>/sys/kernel/random/boot_id); "" when
// it cannot be read.
func (r *runner) bootID() string {
	b, err := fsutil.ReadRegular(filepath.Join(r.paths().Proc, "sys/kernel/random/boot_id"), 128)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// laterBoot tells whether this boot is a later one than the install's
// recorded in prev: by boot id, else (a state written before boot ids
// were) by the boot time.
func (r *runner) laterBoot(prev hostdriverstate.State) bool {
	if prev.BootID != "" {
		cur := r.bootID()
		return cur != "" && cur != prev.BootID
	}
	return r.bootedAfter(prev.Time)
}

// NotLoadedError is a boot after the install that came up without the
// installed driver: the unit fails with the causes it sees.
type NotLoadedError struct {
	Version string
	Causes  []kernelguard.Cause
}

func (e *NotLoadedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "NVIDIA driver %s is installed but did not load on this boot", e.Version)
	reboot := false
	for i, c := range e.Causes {
		fmt.Fprintf(&b, "; cause %d: %s; fix: %s", i+1, c.What, c.Fix)
		reboot = reboot || c.RebootHelps
	}
	if !reboot {
		b.WriteString("; rebooting again does not help")
	}
	return b.String()
}

// notLoaded is the pending path on a later boot than the install's: the
// driver should have loaded and did not. It records the causes and fails.
func (r *runner) notLoaded(ctx context.Context, prev hostdriverstate.State) (Report, error) {
	d := r.driver()
	release, _ := r.kernelRelease()
	// On the real host (Modprobe is wired only there), load it first: at
	// boot udev may not have yet, and when it cannot load, modprobe says
	// why ("Key was rejected by service").
	probe := ""
	if r.o.Modprobe != nil {
		res, err := r.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"nvidia"}})
		if loaded, _ := nvdev.LoadedVersion(r.paths().Sys, r.paths().Proc); err == nil && loaded == d.Version {
			r.logf("loaded driver %s with modprobe", loaded)
			r.rep.Loaded, r.st.Loaded = loaded, loaded
			return r.fastPath(ctx)
		}
		if err != nil {
			probe = res.Output
		}
	}
	klog, err := kernelguard.KernelLog(ctx, r.o.Runner)
	if err != nil {
		r.warnf("%v", err)
	}
	klog += "\n" + probe
	tree := ""
	if r.cache.Extracted(d.Version) {
		tree = r.cache.Tree(d.Version)
	}
	causes := kernelguard.WhyNotLoaded(ctx, kernelguard.NotLoadedInput{
		Version: d.Version, KernelModule: d.KernelModule, Tree: tree,
		Root: r.paths().Root, Sys: r.paths().Sys, Proc: r.paths().Proc, Running: release,
		Runner: r.o.Runner, KernelLog: klog,
	})
	e := &NotLoadedError{Version: d.Version, Causes: causes}
	if err := clearRebootRequired(r.paths().Root); err != nil {
		r.warnf("%v", err)
	}
	r.rep.Path = PathNotLoaded
	r.st.Outcome, r.st.Error, r.st.BootID, r.st.Causes = hostdriverstate.OutcomeNotLoaded, e.Error(), prev.BootID, causes
	r.st.Time = prev.Time
	r.finish()
	r.st.Duration = r.rep.Duration
	if err := hostdriverstate.Save(r.paths().State, r.st, false); err != nil {
		r.warnf("%v", err)
	}
	return r.rep, e
}

// stamp records this boot in the state after an install.
func (r *runner) stampBoot() { r.st.BootID = r.bootID() }
