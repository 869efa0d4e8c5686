package doctor

import (
	"context"
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/secureboot"
)

func (r *run) running() string {
	if r.o.KernelRelease != "" {
		return r.o.KernelRelease
	}
	return kernels.Running()
}

// kernels: every installed kernel has the installed driver's module (DKMS
// built it; with Secure Boot, signed by an enrolled key); a kernel without
// it leaves the node without GPUs when it boots.
func (r *run) kernels(ctx context.Context) {
	p := r.o.Config.Paths
	version, err := record.ReadInstalledVersion(p.Root)
	if err != nil {
		r.note("%v", err)
		return
	}
	if version == "" {
		return
	}
	ks, err := kernels.Checker{Root: p.Root, Running: r.running(), Runner: r.o.Runner}.Check(ctx, version)
	if err != nil {
		r.note("the kernels' NVIDIA modules: %v", err)
		return
	}
	for i := range ks {
		if !ks[i].Ready {
			continue
		}
		why, err := kernelguard.SignatureProblem(ctx, r.o.Runner, p.Root, p.Sys, ks[i].Release)
		if err != nil {
			r.note("%v", err)
		} else if why != "" {
			r.problem("module-signature", fmt.Sprintf("kernel %s: %s", ks[i].Release, why), signFix(version, ks[i].Release, strings.Contains(why, "not signed")))
		}
	}
	working := kernels.Working(ks)
	for _, k := range ks {
		if k.Ready {
			continue
		}
		fix := k.Fix
		if working != "" && working != k.Release {
			fix += fmt.Sprintf("; until then keep booting kernel %s, which has it: `%s`", working, kernels.PinCommand(working))
		}
		what := fmt.Sprintf("kernel %s has no NVIDIA driver %s module: %s; booting it leaves the node without GPUs", k.Release, version, k.Why)
		if k.Running {
			what = fmt.Sprintf("the running kernel %s has no NVIDIA driver %s module: %s", k.Release, version, k.Why)
		}
		r.problem("kernel-not-ready", what, fix)
	}
}

// signFix is the fix for a module Secure Boot refuses. A module signed by
// a key the firmware does not trust loads once that key is enrolled; an
// unsigned one must first be built again, signed: `nvidiaprep
// kernel-installed` makes the key and has DKMS sign with it (it writes
// secureboot.DKMSConf), and DKMS signs only what it builds after that.
func signFix(version, release string, unsigned bool) string {
	enroll := "enroll the key DKMS and the installer sign with: " + secureboot.EnrollFix
	if !unsigned {
		return enroll
	}
	return fmt.Sprintf("have DKMS sign it: `nvidiaprep kernel-installed %s` (makes the key and DKMS's signing configuration), then `dkms remove %s/%s -k %s && dkms install %s/%s -k %s`; then %s",
		release, kernels.Module, version, release, kernels.Module, version, release, enroll)
}

// notLoaded: a boot after the install came up without the driver: the
// causes as they are now, each with its fix.
func (r *run) notLoaded(h hostdriverstate.State) {
	p := r.o.Config.Paths
	klog, _ := kernelguard.KernelLog(context.Background(), r.o.Runner)
	tree := ""
	if c := (driverrun.Cache{Dir: p.Cache}); c.Extracted(h.Installed) {
		tree = c.Tree(h.Installed)
	}
	causes := kernelguard.WhyNotLoaded(context.Background(), kernelguard.NotLoadedInput{
		Version: h.Installed, KernelModule: r.o.Config.Driver.KernelModule, Tree: tree,
		Root: p.Root, Sys: p.Sys, Proc: p.Proc, Running: r.running(), Runner: r.o.Runner, KernelLog: klog,
	})
	for _, c := range causes {
		fix := c.Fix
		if !c.RebootHelps {
			fix += " (a reboot alone does not help)"
		}
		r.problem("driver-not-loaded-after-reboot", fmt.Sprintf("driver %s is installed but did not load on this boot: %s", h.Installed, c.What), fix)
	}
}
