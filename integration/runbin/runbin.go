// Package runbin is the test kit's one way to run a program on the host and
// look at what it did: its output and its exit status, under a deadline
// (the program's process group is killed at it, as hostcmd.Exec does in the
// product, so that a child it left does not hold the test).
package runbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// DefaultLimit bounds a command whose Cmd.Limit is 0.
const DefaultLimit = 5 * time.Minute

// Cmd is one program to run.
type Cmd struct {
	Path string
	Args []string
	// Env is the program's whole environment; nil is this process's.
	Env []string
	// Dir is where it runs; "" is "/", as Proxmox runs a hookscript.
	Dir string
	// Limit is how long it may run before it is killed (an error then);
	// 0 is DefaultLimit.
	Limit time.Duration
	// ExtraFiles are open files the program inherits, as descriptors 3
	// and up (exec.Cmd.ExtraFiles).
	ExtraFiles []*os.File
	// Split keeps stdout apart from stderr (Result.Stdout, Result.Stderr),
	// for a test that parses stdout. Without it both go through one pipe,
	// so that Result.Output has them in the order they were printed.
	Split bool
}

// Result is what the program did.
type Result struct {
	Output string // stdout and stderr: as printed, or with Split stdout then stderr
	Stdout string // with Split: stdout alone
	Stderr string // with Split: stderr alone
	Code   int    // exit status; -1 when it did not exit by itself
}

// Run runs c. The error says why it could not run, or that it ran past its
// limit or died of a signal; an exit status other than 0 is no error.
func (c Cmd) Run() (Result, error) {
	limit := c.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Path, c.Args...)
	cmd.Env, cmd.Dir, cmd.ExtraFiles = c.Env, c.Dir, c.ExtraFiles
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if c.Split {
		cmd.Stderr = &stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := Result{Output: out.String(), Code: -1}
	if c.Split {
		r.Stdout, r.Stderr, r.Output = r.Output, stderr.String(), r.Output+stderr.String()
	}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s %q did not finish within %v: %w", c.Path, c.Args, limit, ctx.Err())
	case err == nil:
		r.Code = 0
		return r, nil
	case errors.As(err, &exit) && exit.Exited():
		r.Code = exit.ExitCode()
		return r, nil
	}
	return r, fmt.Errorf("%s %q: %w", c.Path, c.Args, err)
}

// Must runs c and fails t when it could not run, ran past its limit or died
// of a signal.
func (c Cmd) Must(t testing.TB) Result {
	t.Helper()
	r, err := c.Run()
	if err != nil {
		t.Fatalf("%v\n%s", err, r.Output)
	}
	return r
}

// Exit runs path with env and args (Cmd's defaults otherwise) and returns
// its output, stdout and stderr as printed, and its exit status; it fails t
// as Must does.
func Exit(t testing.TB, path string, env []string, args ...string) (string, int) {
	t.Helper()
	r := Cmd{Path: path, Args: args, Env: env}.Must(t)
	return r.Output, r.Code
}

// Try is Exit for goroutines other than the test's: the error says what
// Must would have failed the test with.
func Try(path string, env []string, args ...string) (string, int, error) {
	r, err := Cmd{Path: path, Args: args, Env: env}.Run()
	return r.Output, r.Code, err
}
