package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/journal"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/kernels"
)

// kernelInstalledCmd is the kernel guard: /etc/kernel/postinst.d/nvidiaprep
// and /etc/kernel/header_postinst.d/nvidiaprep run it with the kernel's
// release after DKMS's own hook, and apt's DPkg::Post-Invoke with --all
// (which says nothing when every kernel has the module). It prints to the
// terminal apt writes to and logs to the journal; a kernel without its
// module is said loudly but is no failure (exit 0): a failing hook would
// leave the kernel package half-configured. Exit 2 is wrong usage.
func kernelInstalledCmd(c *cli.Call) int {
	stderr := c.Stderr
	release := ""
	switch {
	case c.Bool("all") && len(c.Args) == 0:
	case !c.Bool("all") && len(c.Args) > 0 && c.Args[0] != "":
		release = c.Args[0]
	default:
		return c.Fail(cli.ExitUsage, "give a kernel release, or --all\nusage: nvidiaprep kernel-installed <kernel-release> [<image>] | --all")
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep: cannot check the NVIDIA module for new kernels: configuration: %v\n", err)
		return 0
	}
	in := kernelguard.GuardInput{Config: cfg, Release: release, Running: kernels.Running(), Runner: hostcmd.Clean(), Out: stderr}
	if journal.Enabled() {
		in.Journal = func(msg string) {
			journal.Send(msg, journal.PriErr, map[string]string{"SYSLOG_IDENTIFIER": "nvidiaprep-kernel"})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := kernelguard.KernelInstalled(ctx, in); err != nil {
		what := "the installed kernels"
		if release != "" {
			what = "kernel " + release
		}
		fmt.Fprintf(stderr, "nvidiaprep: cannot check the NVIDIA module for %s: %v; run `nvidiaprep doctor` before rebooting\n", what, err)
	}
	return 0
}
