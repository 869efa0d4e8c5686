package hostdriver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

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
func gate(ctx context.Context, h *host, release, tree string) (kernelguard.Plan, error) {
	d := h.d
	plan, err := kernelguard.Gate(ctx, kernelguard.GateInput{
		Version: d.Version, Tree: tree, KernelModule: d.KernelModule,
		Root: h.p.Root, Sys: h.p.Sys, Running: release, Runner: h.o.Runner,
		Installable: h.installable, CreateKey: true,
	})
	if err != nil {
		return plan, err
	}
	for _, n := range plan.Notes {
		h.warnf("%s", n)
	}
	if plan.KeyCreated {
		h.logf("Secure Boot is on: made the module signing key %s and %s (DKMS and the installer sign with it)", secureboot.KeyPath, secureboot.CertPath)
	}
	return plan, nil
}

// installable tells which packages apt can install, updating its lists
// once when it knows none of some.
func (h *host) installable(ctx context.Context, pkgs []string) (map[string]bool, error) {
	avail, err := aptCandidates(ctx, h, pkgs...)
	if err != nil || !slices.ContainsFunc(pkgs, func(p string) bool { return !avail[p] }) {
		return avail, err
	}
	h.status("apt knows none of %s: updating its package lists", strings.Join(slices.DeleteFunc(slices.Clone(pkgs), func(p string) bool { return avail[p] }), ", "))
	if _, err := h.apt(ctx, "update"); err != nil {
		return nil, err
	}
	return aptCandidates(ctx, h, pkgs...)
}

// kernelPackages are the headers the gate found missing, and the headers
// metapackage of the running kernel's kind (proxmox-default-headers,
// linux-headers-amd64) when apt has it and it is not installed: with it,
// every later kernel's headers come in the same apt run as the kernel, so
// DKMS builds the module inside that run, before any reboot (a job that
// installed them after dpkg ends would run where the admin does not look,
// and could lose the race with a reboot).
func kernelPackages(ctx context.Context, j job) ([]string, error) {
	pkgs := slices.Clone(j.plan.Headers)
	meta := kernels.Metapackage(j.release)
	if meta == "" {
		return pkgs, nil
	}
	have, err := dpkgStatus(ctx, j.o.Runner, meta)
	if err != nil || strings.HasPrefix(have[meta], "ii") {
		return pkgs, err
	}
	avail, err := aptCandidates(ctx, j.host, meta)
	if err != nil {
		return nil, err
	}
	if avail[meta] {
		pkgs = append(pkgs, meta)
	} else {
		j.warnf("apt has no %s: the headers of later kernels do not come with them; install them with each kernel (`apt install %s`)", meta, kernels.HeadersFor("<release>"))
	}
	return pkgs, nil
}

// signingFlags are the installer's --module-signing-* options with Secure
// Boot on (every branch nvidiaprep installs knows them), after DKMS is
// set to sign with the same key.
func signingFlags(j job) ([]string, error) {
	k := j.plan.Signing
	if k == nil {
		return nil, nil
	}
	if changed, err := secureboot.EnsureDKMSSigning(j.p.Root); err != nil {
		return nil, err
	} else if changed {
		j.logf("DKMS signs with %s from now on (%s)", secureboot.KeyPath, secureboot.DKMSConf)
	}
	return []string{"--module-signing-secret-key=" + k.KeyPath, "--module-signing-public-key=" + k.CertPath}, nil
}

// dkmsEveryKernel has DKMS build the new module for every installed kernel
// the installer did not build it for (the installer builds for the running
// one), with DKMS's own autoinstall, then proves the result with `dkms
// status`. A kernel left without its module does not fail the install:
// the running kernel may still boot it; it is said loudly (summary, log,
// the kernel guard's state and marker for status and doctor).
func dkmsEveryKernel(ctx context.Context, j job) []kernels.Kernel {
	release, v := j.release, j.d.Version
	c := kernels.Checker{Root: j.p.Root, Running: release, Runner: j.o.Runner}
	states, err := kernels.Status(ctx, j.o.Runner, v)
	if err != nil {
		j.warnf("%v", err)
	}
	for _, k := range j.plan.Kernels {
		if k == release || states[k] == "installed" {
			continue
		}
		j.stepf("building the module for kernel %s with DKMS (dkms autoinstall -k %s)", k, k)
		if _, err := j.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"autoinstall", "-k", k}}); err != nil {
			j.warnf("dkms autoinstall -k %s: %v", k, err)
		}
	}
	ks, err := c.Check(ctx, v)
	if err != nil {
		j.warnf("%v", err)
		return nil
	}
	_, err = kernelguard.KernelInstalled(ctx, kernelguard.GuardInput{Config: j.o.Config, Running: release, Runner: j.o.Runner, Out: logWriter{j.host}})
	if err != nil {
		j.warnf("%v", err)
	}
	return ks
}

// logWriter sends the guard's lines to the unit's log.
type logWriter struct{ h *host }

func (w logWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if l = strings.TrimPrefix(l, "nvidiaprep: "); strings.Trim(l, "*") != "" {
			w.h.warnf("%s", l)
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
func bootID(proc string) string {
	id, err := nvdev.BootID(proc)
	if err != nil {
		return ""
	}
	return id
}

// laterBoot tells whether this boot is a later one than the install's
// recorded in prev: by boot id, else (a state written before boot ids
// were) by the boot time.
func laterBoot(proc string, prev hostdriverstate.State) bool {
	if prev.BootID != "" {
		cur := bootID(proc)
		return cur != "" && cur != prev.BootID
	}
	return bootedAfter(proc, prev.Time)
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
func (h *host) notLoaded(ctx context.Context, led *ledger, rep Report, prev hostdriverstate.State) (Report, error) {
	d, p := h.d, h.p
	release, _ := h.kernelRelease()
	// On the real host (Modprobe is wired only there), load it first: at
	// boot udev may not have yet, and when it cannot load, modprobe says
	// why ("Key was rejected by service").
	probe := ""
	if h.o.Modprobe != nil {
		res, err := h.sh(ctx, hostcmd.Command{Name: "modprobe", Args: []string{"nvidia"}})
		if loaded, _ := nvdev.LoadedVersion(p.Sys, p.Proc); err == nil && loaded == d.Version {
			h.logf("loaded driver %s with modprobe", loaded)
			rep.Loaded = loaded
			return h.fastPath(ctx, led, rep)
		}
		if err != nil {
			probe = res.Output
		}
	}
	klog, err := kernelguard.KernelLog(ctx, h.o.Runner)
	if err != nil {
		h.warnf("%v", err)
	}
	klog += "\n" + probe
	tree := ""
	if h.cache.Extracted(d.Version) {
		tree = h.cache.Tree(d.Version)
	}
	causes := kernelguard.WhyNotLoaded(ctx, kernelguard.NotLoadedInput{
		Version: d.Version, KernelModule: d.KernelModule, Tree: tree,
		Root: p.Root, Sys: p.Sys, Proc: p.Proc, Running: release,
		Runner: h.o.Runner, KernelLog: klog,
	})
	e := &NotLoadedError{Version: d.Version, Causes: causes}
	if err := clearRebootRequired(p.Root); err != nil {
		h.warnf("%v", err)
	}
	rep.Path = PathNotLoaded
	rep.Duration = time.Since(h.start)
	// Since the install: its time and boot.
	if err := led.end(ending{outcome: hostdriverstate.OutcomeNotLoaded, why: e.Error(), since: prev.Time, bootID: prev.BootID, causes: causes}); err != nil {
		h.warnf("%v", err)
	}
	return rep, e
}
