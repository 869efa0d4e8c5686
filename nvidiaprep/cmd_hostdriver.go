package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

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
	if len(args) != 0 {
		fmt.Fprintf(stderr, "nvidiaprep host-driver: takes no arguments\n%s", usage())
		return 2
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
	// Run reports its outcome itself (log and STATUS).
	if _, err := hostdriver.Run(context.Background(), o); err != nil {
		status("failed: " + err.Error())
		log.Error().Msgf("host driver %s: %v", cfg.Driver.Version, err)
		return 1
	}
	refreshGPUCache(cfg.Paths, log)
	return 0
}
