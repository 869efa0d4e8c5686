package status

import (
	"context"
	"fmt"
	"time"

	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/kernels"
)

// KernelsOptions say how status reads the kernels.
type KernelsOptions struct {
	Runner  hostcmd.Runner // runs `dkms status`; nil: hostcmd.Clean()
	Running string         // uname -r; "" reads it from the kernel
}

// gatherKernels lists every installed kernel with the state of the
// installed driver's module for it (and, with Secure Boot on, whether the
// module's signer is enrolled).
func gatherKernels(o Options, installed string, problem func(error)) []kernels.Kernel {
	if installed == "" {
		return nil
	}
	run, running := o.Kernels.Runner, o.Kernels.Running
	if run == nil {
		run = hostcmd.Clean()
	}
	if running == "" {
		running = kernels.Running()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := o.Config.Paths
	ks, err := kernels.Checker{Root: p.Root, Running: running, Runner: run}.Check(ctx, installed)
	if err != nil {
		problem(fmt.Errorf("the kernels' NVIDIA modules: %w", err))
		return nil
	}
	for i := range ks {
		if !ks[i].Ready {
			continue
		}
		why, err := kernelguard.SignatureProblem(ctx, run, p.Root, p.Sys, ks[i].Release)
		if err != nil {
			problem(err)
		} else if why != "" {
			ks[i].Ready, ks[i].Why = false, why
		}
	}
	return ks
}
