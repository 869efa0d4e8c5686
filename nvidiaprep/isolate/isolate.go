// Package isolate runs an operation that may block for ever in the kernel in
// a child process of this same program, with a deadline, so that the caller
// never does: a read of a container's files that lands on a FUSE server
// that never answers waits uninterruptibly (SIGKILL does not end it once
// the server has read the request), and a process that waits so keeps its
// descriptors, and with them its locks.
//
// The child is this program again (/proc/self/exe, which stays the binary
// that runs even when the package is upgraded meanwhile), started with only
// the descriptors a Call names: it holds no slot, lock or log of the
// caller's. Each program that makes Calls runs Serve first thing in main,
// with the operations it offers. Past its deadline the child is killed;
// when the kill does not end it, the Call's Unstick may free it (abort a
// FUSE connection), and otherwise the child is abandoned, holding nothing
// of the caller's: the Call returns an *AbandonedError that says what was
// abandoned. Any host operation on container-controlled files (reads,
// writes, lock probes) can go through it: give it an Op.
package isolate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// childArg is argv[1] of a child; argv[2] names its operation, argv[3]
// says how many descriptors it was given.
const childArg = "--nvidiaprep-isolated-op"

// An Op runs in the child: in is the Call's In, files its Files (the
// child's descriptors 3, 4, ...). What it returns goes back as the Call's
// result; an error becomes an *OpError. It should encode its own expected
// failures in its result and keep errors for the unexpected.
type Op func(in []byte, files []*os.File) ([]byte, error)

// Ops are the operations a program offers its children, by name.
type Ops map[string]Op

// Serve runs the operation this process was started for and exits, when it
// is a child of a Call; otherwise it returns at once. Programs call it
// first in main, before anything else opens a file.
func Serve(ops Ops) {
	if len(os.Args) != 4 || os.Args[1] != childArg {
		return
	}
	n, err := strconv.Atoi(os.Args[3])
	if err != nil || n < 0 || n > 64 {
		os.Exit(2)
	}
	os.Exit(serve(ops, os.Args[2], n, os.Stdin, os.Stdout))
}

// Status bytes that start a child's answer.
const (
	statusOK    = 'o'
	statusError = 'e'
)

// maxIn bounds what a child reads as its input.
const maxIn = 1 << 20

func serve(ops Ops, name string, nfiles int, stdin io.Reader, stdout io.Writer) int {
	op, ok := ops[name]
	if !ok {
		fmt.Fprintf(stdout, "%cthis program offers no isolated operation %q", statusError, name)
		return 0
	}
	in, err := io.ReadAll(io.LimitReader(stdin, maxIn))
	if err != nil {
		fmt.Fprintf(stdout, "%creading the request: %v", statusError, err)
		return 0
	}
	files := make([]*os.File, nfiles)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), fmt.Sprintf("fd %d", 3+i))
	}
	out, err := op(in, files)
	if err != nil {
		fmt.Fprintf(stdout, "%c%v", statusError, err)
		return 0
	}
	stdout.Write([]byte{statusOK})
	stdout.Write(out)
	return 0
}

// Call is one operation to run in a child.
type Call struct {
	Op    string     // the name Serve knows it by
	In    []byte     // the child's input
	Files []*os.File // descriptors the child gets, as 3, 4, ...; nothing else crosses
	// What names the operation for messages: "reading /var/lib/dpkg/lock
	// inside CT 101".
	What string
	// Timeout bounds the child (ctx's deadline too); 0 is DefaultTimeout.
	Timeout time.Duration
	// Unstick, when not nil, is called once a child that outlived its
	// deadline has not ended within KillGrace of SIGKILL: it may free the
	// child (abort the FUSE connection it waits on) and says what it did
	// ("" for nothing).
	Unstick func() string
	// Exe is the program to start; "" is this one (/proc/self/exe).
	Exe string
}

// Timeouts of a Call.
const (
	DefaultTimeout = 15 * time.Second
	// KillGrace is how long a killed child is given to end, before Unstick
	// and again after it.
	KillGrace = 2 * time.Second
)

// maxOut bounds a child's answer.
const maxOut = 64 << 20

// AbandonedError means a child did not end by its deadline, even after
// SIGKILL: it waits in the kernel. It holds none of the caller's
// descriptors but those of its Call.
type AbandonedError struct {
	What     string
	Timeout  time.Duration
	PID      int
	Unstuck  string // what Unstick did, "" for nothing
	Finished bool   // Unstick freed it: it ended
}

func (e *AbandonedError) Error() string {
	s := fmt.Sprintf("%s did not finish within %v (a file system there that does not answer, such as a FUSE server?)", e.What, e.Timeout)
	switch {
	case e.Finished:
		return s + "; " + e.Unstuck + ", which ended it"
	case e.Unstuck != "":
		return fmt.Sprintf("%s; %s, and the reading process %d is still stuck: it is abandoned, holding nothing of nvidiaprep's", s, e.Unstuck, e.PID)
	}
	return fmt.Sprintf("%s; the reading process %d is stuck in the kernel and abandoned, holding nothing of nvidiaprep's", s, e.PID)
}

// OpError is an error the operation itself returned in the child, or a
// child that failed before it answered.
type OpError struct {
	What string
	Msg  string
}

func (e *OpError) Error() string { return e.What + ": " + e.Msg }

// errDeadline is what an *AbandonedError matches with errors.Is.
var errDeadline = errors.New("deadline passed")

// Is makes errors.Is(err, errDeadline) true for an abandoned call.
func (e *AbandonedError) Is(target error) bool { return target == errDeadline }

// Run runs c in a child and returns its answer.
func Run(ctx context.Context, c Call) ([]byte, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	exe := c.Exe
	if exe == "" {
		exe = "/proc/self/exe"
	}
	cmd := exec.Command(exe, childArg, c.Op, strconv.Itoa(len(c.Files)))
	cmd.Args[0] = "nvidiaprep-isolated"
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(c.In)
	var out, errOut capped
	out.max, errOut.max = maxOut, 4096
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.ExtraFiles = c.Files
	// Its own process group: a terminal's signals are the caller's affair.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: starting its process: %w", c.What, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-done:
	case <-timer.C:
		return nil, abandon(cmd, done, c, timeout)
	case <-ctx.Done():
		cmd.Process.Kill()
		go func() { <-done }()
		return nil, fmt.Errorf("%s: %w", c.What, ctx.Err())
	}
	b := out.Bytes()
	if len(b) == 0 {
		return nil, &OpError{What: c.What, Msg: fmt.Sprintf("its process gave no answer (%v): %s", err, bytes.TrimSpace(errOut.Bytes()))}
	}
	if b[0] == statusError {
		return nil, &OpError{What: c.What, Msg: string(b[1:])}
	}
	if b[0] != statusOK || out.over {
		return nil, &OpError{What: c.What, Msg: "its process gave a malformed answer"}
	}
	return b[1:], nil
}

// abandon kills a child past its deadline and waits KillGrace for it; one
// that does not end is given to Unstick, and waited for KillGrace again.
// It returns the *AbandonedError to report.
func abandon(cmd *exec.Cmd, done chan error, c Call, timeout time.Duration) *AbandonedError {
	cmd.Process.Kill()
	select {
	case <-done:
		return &AbandonedError{What: c.What, Timeout: timeout, PID: cmd.Process.Pid, Finished: true, Unstuck: "its process was killed"}
	case <-time.After(KillGrace):
	}
	e := &AbandonedError{What: c.What, Timeout: timeout, PID: cmd.Process.Pid}
	if c.Unstick != nil {
		e.Unstuck = c.Unstick()
	}
	if e.Unstuck != "" {
		select {
		case <-done:
			e.Finished = true
			return e
		case <-time.After(KillGrace):
		}
	}
	go func() { <-done }() // reaped whenever the kernel lets it go
	return e
}

// capped keeps the first max bytes written and notes more.
type capped struct {
	b    bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.b.Len(); len(p) > room {
		c.over = true
		c.b.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.b.Write(p)
}

func (c *capped) Bytes() []byte { return c.b.Bytes() }
