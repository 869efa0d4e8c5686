package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriver"
	"nvidiaprep/nvidiaprep/logging"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/progress"
)

// hostDriverCmd is the body of nvidiaprep-host-driver.service: exit 0 when
// the node has (or, after a reboot, will have) the configured driver, 1 when
// a step failed, 2 for wrong usage.
func hostDriverCmd(c *cli.Call) int {
	stderr := c.Stderr
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
	// An admin at a terminal sees the plan and answers; the unit (no
	// terminal) and --yes go on.
	if !c.Bool("yes") && progress.IsTerminal(os.Stdin) && progress.IsTerminal(os.Stderr) {
		ask := confirmPlan(os.Stdin, line.Writer(stderr))
		o.Confirm = func(p hostdriver.Plan) bool {
			line.Hold()
			return ask(p)
		}
	}
	// nvidia-modprobe acts on the real /dev and modules: only for the real
	// host's paths, as in the hookscript.
	if cfg.Paths.Proc == "/proc" && cfg.Paths.Dev == "/dev" {
		if p := nvdev.FindModprobe(); p != "" {
			o.Modprobe = nvdev.ExecModprobe{Path: p, Timeout: time.Minute}
		}
	}
	// Run reports its outcome itself (log and STATUS).
	_, err = hostdriver.Run(context.Background(), o)
	if errors.Is(err, hostdriver.ErrDeclined) {
		line.Stop()
		fmt.Fprintf(stderr, "nvidiaprep host-driver: %v\n", err)
		return 1
	}
	if err != nil {
		status("failed: " + err.Error())
		log.Error().Msgf("host driver %s: %v", cfg.Driver.Version, err)
		return 1
	}
	if err := refreshGPUCache(cfg.Paths); err != nil {
		log.Warn().Err(err).Msg(err.Error())
	}
	return 0
}

// confirmPlan shows an install's plan on out and reads the answer from in:
// "y" or "yes" goes on, anything else (or nothing) does not.
func confirmPlan(in io.Reader, out io.Writer) func(hostdriver.Plan) bool {
	return func(p hostdriver.Plan) bool {
		var b strings.Builder
		fmt.Fprintf(&b, "Installing NVIDIA driver %s will:\n", p.Version)
		for _, l := range p.Lines() {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
		b.WriteString("Go on? [y/N] ")
		io.WriteString(out, b.String())
		answer, _ := bufio.NewReader(in).ReadString('\n')
		switch strings.ToLower(strings.TrimSpace(answer)) {
		case "y", "yes":
			return true
		}
		return false
	}
}
