package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/coreos/go-systemd/v22/daemon"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/logging"
	"nvidiaprep/nvidiaprep/progress"
	"nvidiaprep/nvidiaprep/provision"
)

func provisionCmd(c *cli.Call) int {
	stderr := c.Stderr
	vmid, err := config.ParseVMID(c.Args[0])
	if err != nil {
		return c.Fail(cli.ExitUsage, "%v", err)
	}
	// Run by hand on a terminal, a status line shows the current step; in
	// logs and the journal the log lines alone tell it.
	line := progressFor(stderr)
	defer line.Stop()
	log := logging.New(line.Writer(stderr), os.Getenv("NVIDIAPREP_DEBUG") != "").With().Int("vmid", vmid).Str("phase", "provision").Logger()
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		log.Error().Err(err).Msgf("CT %d: configuration: %v; correct the file, then run this again", vmid, err)
		return 1
	}
	if err := cfg.ContainerError(vmid); err != nil {
		log.Error().Err(err).Msgf("CT %d: its table in the configuration: %v; correct the line, then run this again", vmid, err)
		return 1
	}
	if why := notRunning(cfg.Paths.LXC, vmid); why != "" {
		log.Error().Msg(why)
		return 1
	}
	if err := refreshGPUCache(cfg.Paths); err != nil {
		log.Warn().Err(err).Msgf("CT %d: %v", vmid, err)
	}
	w := provision.Worker{Config: cfg, VMID: vmid, Log: log, Status: func(s string) {
		line.Step(s)
		daemon.SdNotify(false, "STATUS="+s)
	}}
	err = w.Run(context.Background())
	switch {
	case errors.Is(err, provision.ErrBusy):
		log.Info().Msgf("CT %d: another worker is provisioning it; leaving it to that one", vmid)
		return 0
	case err != nil:
		daemon.SdNotify(false, "STATUS=failed: "+err.Error())
		log.Error().Err(err).Msg(err.Error())
		return 1
	}
	return 0
}

// notRunning says why container vmid cannot be provisioned now, before the
// worker writes anything, or "" when it runs.
func notRunning(lxcPath string, vmid int) string {
	c, err := ctexec.Open(lxcPath, vmid)
	if err != nil {
		return err.Error()
	}
	defer c.Close()
	if !c.Defined() {
		return fmt.Sprintf("CT %d is not running: there is no container %d in %s; check the vmid", vmid, vmid, lxcPath)
	}
	pid, err := c.InitPID(context.Background())
	switch {
	case err != nil:
		return err.Error()
	case pid <= 0:
		return fmt.Sprintf("CT %d is not running: start it (pct start %d), and its post-start provisions it", vmid, vmid)
	}
	return ""
}

// progressFor returns a status line on the process's stderr when that is a
// terminal, and one that draws nothing otherwise.
func progressFor(stderr io.Writer) *progress.Line {
	if f, ok := stderr.(*os.File); ok && f == os.Stderr {
		return progress.New(f)
	}
	return nil
}
