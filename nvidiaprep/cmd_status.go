package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/launch"
	"nvidiaprep/nvidiaprep/provision"
	"nvidiaprep/nvidiaprep/status"
	"nvidiaprep/nvidiaprep/term"
	"nvidiaprep/nvidiaprep/untrusted"
)

// statusDoc is status's JSON document (docs/json.md).
type statusDoc struct {
	cli.Envelope
	status.JSON
}

var statusJSONKeys = []string{"node", "containers", "problems"}

// statusRun is `nvidiaprep status [<vmid>]`.
func (h host) statusRun(c *cli.Call) int {
	only := 0
	if len(c.Args) == 1 {
		vmid, err := config.ParseVMID(c.Args[0])
		if err != nil {
			return c.Fail(cli.ExitUsage, "%v", err)
		}
		only = vmid
	}
	cfg, err := config.Load(h.getenv)
	if err != nil {
		return c.Fail(cli.ExitFail, "configuration: %v\n(nvidiaprep doctor says the same; until it is fixed, containers that use the hookscript refuse to start)", err)
	}
	if err := refreshGPUCache(cfg.Paths); err != nil {
		fmt.Fprintf(c.Stderr, "nvidiaprep status: %v\n", err)
	}
	r := status.Gather(status.Options{Config: cfg, Only: only, Probe: h.probe(cfg.Paths.LXC), LiveStep: h.liveStep(cfg.Paths.State)})
	if c.JSON {
		if err := cli.WriteJSON(c.Stdout, statusDoc{Envelope: c.Envelope(), JSON: r.ToJSON()}); err != nil {
			return c.Fail(cli.ExitFail, "%v", err)
		}
		return cli.ExitOK
	}
	st := h.style(c)
	if only != 0 {
		err = status.WriteOne(c.Stdout, r, only, h.now(), st)
	} else {
		err = status.Write(c.Stdout, r, h.now(), st)
	}
	if err != nil {
		return c.Fail(cli.ExitFail, "%v", err)
	}
	return cli.ExitOK
}

// style is how the command's text output is drawn: the terminal's width
// (or $COLUMNS, else 80; none with --wide) and colour on a terminal.
func (h host) style(c *cli.Call) term.Style {
	st := term.For(c.Stdout, h.getenv)
	if c.Bool("wide") {
		st.Width = 0
	}
	return st
}

// probe looks into each container through liblxc. liblxc reads the
// generated config, so a config that is no regular file (a FIFO would
// block it) is not handed to it; and the whole look is bounded.
func (h host) probe(lxcPath string) func(int) status.Probe {
	if h.probeCT != nil {
		return h.probeCT
	}
	return func(vmid int) status.Probe {
		conf := filepath.Join(lxcPath, strconv.Itoa(vmid), "config")
		f, err := fsutil.OpenRegular(conf)
		if errors.Is(err, os.ErrNotExist) {
			return status.Probe{State: status.Stopped} // never started on this node
		}
		if err != nil {
			return status.Probe{Err: err}
		}
		f.Close()
		done := make(chan status.Probe, 1)
		go func() { done <- lookInto(lxcPath, vmid) }()
		select {
		case p := <-done:
			return p
		case <-time.After(probeTimeout):
			// The look goes on until the process exits; status does not wait.
			return status.Probe{Err: ctmsg.Errorf(vmid, "its LXC monitor did not answer within %v", probeTimeout)}
		}
	}
}

// probeTimeout bounds one look into a container.
const probeTimeout = 5 * time.Second

func lookInto(lxcPath string, vmid int) status.Probe {
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	c, err := ctexec.Open(lxcPath, vmid)
	if err != nil {
		return status.Probe{Err: err}
	}
	defer c.Close()
	if !c.Defined() {
		return status.Probe{State: status.Stopped}
	}
	root, err := c.Root(ctx)
	if errors.Is(err, ctexec.ErrStopped) {
		return status.Probe{State: status.Stopped}
	}
	if err != nil {
		return status.Probe{Err: err}
	}
	defer root.Close()
	v, unfinished := provision.Inspect(root)
	return status.Probe{State: status.Running, Installed: v, Unfinished: unfinished}
}

// liveStep is what a container's worker is doing now: its unit's STATUS=
// text (systemd), else the last line of its log (a detached worker).
func (h host) liveStep(stateDir string) func(int) string {
	return func(vmid int) string {
		if _, err := h.lookPath("systemctl"); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			res, err := h.runner.Run(ctx, hostcmd.Command{Name: "systemctl", Args: []string{"show", "--property=StatusText", "--value", launch.Unit(vmid)}})
			if s := strings.TrimSpace(res.Stdout); err == nil && s != "" {
				return untrusted.Escape(s, 200)
			}
		}
		return lastLine(filepath.Join(stateDir, "log", strconv.Itoa(vmid)+".log"))
	}
}

// lastLine is the last non-empty line of a log file, escaped; "" when
// there is none.
func lastLine(path string) string {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	const tail = 4096
	off := max(0, st.Size()-tail)
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	return untrusted.Escape(strings.TrimSpace(lines[len(lines)-1]), 200)
}
