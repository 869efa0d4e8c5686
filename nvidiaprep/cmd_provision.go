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
	"nvidiaprep/nvidiaprep/ctmsg"
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
		log.Error().Err(err).Msg(ctmsg.Sprintf(vmid, "configuration: %v; correct the file, then run this again", err))
		return 1
	}
	if err := cfg.ContainerError(vmid); err != nil {
		log.Error().Err(err).Msg(ctmsg.Sprintf(vmid, "its table in the configuration: %v; correct the line, then run this again", err))
		return 1
	}
	if why := notRunning(cfg.Paths.LXC, vmid); why != "" {
		log.Error().Msg(why)
		return 1
	}
	if err := refreshGPUCache(cfg.Paths); err != nil {
		log.Warn().Err(err).Msg(ctmsg.Text(vmid, err))
	}
	w := provision.Worker{Config: cfg, VMID: vmid, Log: log, Status: func(s string) {
		line.Step(s)
		daemon.SdNotify(false, "STATUS="+s)
	}}
	err = w.Run(context.Background())
	switch {
	case errors.Is(err, provision.ErrBusy):
		log.Info().Msg(ctmsg.Sprintf(vmid, "another worker is provisioning it; leaving it to that one"))
		return 0
	case err != nil:
		daemon.SdNotify(false, "STATUS=failed: "+err.Error())
		log.Error().Err(err).Msg(ctmsg.Text(vmid, err))
		return 1
	}
	return 0
}

// notRunning says why container vmid cannot be provisioned now, before the
// worker writes anything, or "" when it runs.
func notRunning(lxcPath string, vmid int) string {
	c, err := ctexec.Open(lxcPath, vmid)
	if err != nil {
		return ctmsg.Text(vmid, err)
	}
	defer c.Close()
	if !c.Defined() {
		return fmt.Sprintf("%s is not running: there is no container %d in %s; check the vmid", ctmsg.Name(vmid), vmid, lxcPath)
	}
	pid, err := c.InitPID(context.Background())
	switch {
	case err != nil:
		return ctmsg.Text(vmid, err)
	case pid <= 0:
		return fmt.Sprintf("%s is not running: start it (pct start %d), and its post-start provisions it", ctmsg.Name(vmid), vmid)
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
