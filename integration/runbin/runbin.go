// Package runbin is the test kit's one way to run a program on the host and
// look at what it did: its output (stdout alone, and stdout and stderr as
// printed) and its exit status, under a deadline. It runs the program with
// the product's own runner (hostcmd.Exec: its own process group, killed as
// a whole at the deadline) and hands back the exit status instead of an
// error, which is what a test compares.
package runbin

import (
	"context"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/hostcmd"
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
}

// Result is what the program did.
type Result struct {
	Stdout string // stdout alone
	Output string // stdout and stderr, interleaved as printed
	Code   int    // exit status
}

// Run runs c. The error says why it could not run, or that it ran past its
// limit or died of a signal; an exit status other than 0 is no error.
func (c Cmd) Run() (Result, error) {
	e := hostcmd.Exec{Env: c.Env, Dir: c.Dir, Timeout: c.Limit}
	if e.Dir == "" {
		e.Dir = "/"
	}
	if e.Timeout == 0 {
		e.Timeout = DefaultLimit
	}
	r, err := e.Run(context.Background(), hostcmd.Command{Name: c.Path, Args: c.Args})
	res := Result{Stdout: r.Stdout, Output: r.Output}
	if code, ok := hostcmd.ExitCode(err); ok {
		res.Code = code
		return res, nil
	}
	if err != nil {
		res.Code = -1
	}
	return res, err
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
