package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriver"
	"nvidiaprep/nvidiaprep/logging"
	"nvidiaprep/nvidiaprep/nvdev"
)

// hostDriverCmd is the body of nvidiaprep-host-driver.service: exit 0 when
// the node has (or, after a reboot, will have) the configured driver, 1 when
// a step failed, 2 for wrong usage.
func hostDriverCmd(args []string, _, stderr io.Writer) int {
	yes := false
	for _, a := range args {
		switch a {
		case "--yes", "-y":
			yes = true
		default:
			fmt.Fprintf(stderr, "nvidiaprep host-driver: unknown argument %q\n%s", a, usage())
			return 2
		}
	}
	line := progressFor(stderr)
	defer line.Stop()
	log := logging.New(line.Writer(stderr), os.Getenv("NVIDIAPREP_DEBUG") != "").With().Str("phase", "host-driver").Logger()
	status := func(s string) {
		line.Step(s)
		daemon.SdNotify(false, "STATUS="+s)
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		log.Error().Msgf("host driver: configuration: %v", err)
		status("failed: configuration: " + err.Error())
		return 1
	}
	o := hostdriver.Options{Config: cfg, Runner: hostcmd.Clean(), Log: log, Status: status}
	// nvidia-modprobe acts on the real /dev and modules: only for the real
	// host's paths, as in the hookscript.
	if cfg.Paths.Proc == "/proc" && cfg.Paths.Dev == "/dev" {
		if p := nvdev.FindModprobe(); p != "" {
			o.Modprobe = nvdev.ExecModprobe{Path: p, Timeout: time.Minute}
		}
	}
	// By hand at a terminal, a run that changes the node shows its plan and
	// asks first; the unit (no terminal) and --yes never ask.
	if !yes && isTerminal(os.Stdin) {
		plan, changes, err := hostdriver.Plan(o)
		if err == nil && changes {
			fmt.Fprint(stderr, plan)
			if !confirm(os.Stdin, stderr, "Go on? [y/N] ") {
				fmt.Fprintln(stderr, "nvidiaprep host-driver: nothing was changed")
				return 1
			}
		}
	}
	// Run reports its outcome itself (log and STATUS).
	if _, err := hostdriver.Run(context.Background(), o); err != nil {
		status("failed: " + err.Error())
		log.Error().Msgf("host driver %s: %v", cfg.Driver.Version, err)
		return 1
	}
	return 0
}

// isTerminal tells whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// confirm asks question and reads a yes.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprint(out, question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}
