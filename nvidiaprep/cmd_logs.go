package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/launch"
	"nvidiaprep/nvidiaprep/untrusted"
)

// logsRun is `nvidiaprep logs <vmid> [-f]`: the journal of the worker's
// transient unit on a node run by systemd, else the detached worker's log
// file.
func (h host) logsRun(c *cli.Call) int {
	vmid, err := config.ParseVMID(c.Args[0])
	if err != nil {
		return c.Fail(cli.ExitUsage, "%v", err)
	}
	cfg, err := config.Load(h.getenv)
	if err != nil {
		return c.Fail(cli.ExitFail, "configuration: %v", err)
	}
	follow := c.Bool("f") || c.Bool("follow")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	file := filepath.Join(cfg.Paths.State, "log", strconv.Itoa(vmid)+".log")
	if _, err := os.Stat(cfg.Paths.Host("/run/systemd/system")); err == nil {
		if journalctl, err := h.lookPath("journalctl"); err == nil {
			unit := launch.Unit(vmid)
			args := []string{"--unit", unit, "--no-pager", "--output", "short-iso"}
			if follow {
				args = append(args, "--follow")
			}
			cmd := exec.CommandContext(ctx, journalctl, args...)
			cmd.Stdout, cmd.Stderr = c.Stdout, c.Stderr
			err := cmd.Run()
			if ctx.Err() != nil { // interrupted while following: done
				return cli.ExitOK
			}
			if err != nil {
				return c.Fail(cli.ExitFail, "%s", ctmsg.Sprintf(vmid, "journalctl --unit %s: %v", unit, err))
			}
			return cli.ExitOK
		}
	}
	f, err := fsutil.OpenRegular(file)
	if errors.Is(err, os.ErrNotExist) {
		return c.Fail(cli.ExitFail, "%s", ctmsg.Sprintf(vmid, "no worker log %s: no provisioning has run for it on this node (it runs at a start when the container's libraries are not the loaded driver's)", file))
	}
	if err != nil {
		return c.Fail(cli.ExitFail, "%s", ctmsg.Text(vmid, err))
	}
	defer f.Close()
	if err := copyLines(c.Stdout, f); err != nil {
		return c.Fail(cli.ExitFail, "%s", ctmsg.Sprintf(vmid, "reading %s: %v", file, err))
	}
	if follow {
		if err := followFile(ctx, f, c.Stdout, 300*time.Millisecond); err != nil {
			return c.Fail(cli.ExitFail, "%s", ctmsg.Sprintf(vmid, "following %s: %v", file, err))
		}
	}
	return cli.ExitOK
}

// copyLines copies whole lines from r, each escaped as untrusted text (a
// worker log holds lines the container's programs printed, already
// escaped when written; a hand-edited log may not be).
func copyLines(w io.Writer, r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if _, err := fmt.Fprintln(w, untrusted.Escape(sc.Text(), 1<<16)); err != nil {
			return err
		}
	}
	return sc.Err()
}

// followFile prints what is appended to f from its current offset on,
// polling every tick, until ctx ends.
func followFile(ctx context.Context, f *os.File, w io.Writer, tick time.Duration) error {
	var pending []byte
	buf := make([]byte, 32<<10)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		for {
			n, err := f.Read(buf)
			pending = append(pending, buf[:n]...)
			for {
				i := indexNewline(pending)
				if i < 0 {
					break
				}
				if _, err := fmt.Fprintln(w, untrusted.Escape(string(pending[:i]), 1<<16)); err != nil {
					return err
				}
				pending = pending[i+1:]
			}
			if err != nil || n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}
