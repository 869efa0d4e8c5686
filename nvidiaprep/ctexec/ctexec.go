// Package ctexec runs commands inside a running LXC container through
// liblxc's attach (go-lxc), with deadlines: the only way nvidiaprep acts
// inside a container, so the container's own paths and symlinks resolve
// inside the container, never against the host.
package ctexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/fdguard"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Env is the whole environment of commands run inside a container.
var Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "DEBIAN_FRONTEND=noninteractive"}

// Container is one LXC container, named by its vmid as Proxmox names them.
type Container struct {
	VMID int
	c    *lxc.Container // go-lxc locks it for each call
	// stuck is set once a liblxc query did not return in time.
	stuck atomic.Bool
}

// Open opens container vmid under lxcpath (Proxmox: /var/lib/lxc).
func Open(lxcpath string, vmid int) (*Container, error) {
	c, err := lxc.NewContainer(strconv.Itoa(vmid), lxcpath)
	if err != nil {
		return nil, fmt.Errorf("opening through liblxc: %w", err)
	}
	return &Container{VMID: vmid, c: c}, nil
}

// Close releases liblxc's handle; one that a query left stuck is left to
// the process's end (releasing it would wait for that query).
func (c *Container) Close() {
	if !c.stuck.Load() {
		c.c.Release()
	}
}

// Defined reports whether the container has an LXC config (Proxmox writes
// <lxcpath>/<vmid>/config at every start).
func (c *Container) Defined() bool { return c.c.Defined() }

// queryTimeout bounds each question to the container's LXC monitor (its
// state, its init's pid): a monitor that does not answer (stopped, stuck)
// is an error after it, never a wait without end.
const queryTimeout = 10 * time.Second

// InitPID is the host pid of the container's init, or -1 when it does not
// run. liblxc asks the container's monitor: when that does not answer
// before ctx ends or queryTimeout passes, it is an error.
func (c *Container) InitPID(ctx context.Context) (int, error) {
	return ask(ctx, c, "its init's pid", c.c.InitPid)
}

// Root opens the running container's root from the host (ctfs), through
// its init's pidfd, so that the root is its init's even if the init ends
// meanwhile and its pid is reused. A container that does not run is
// ErrStopped.
func (c *Container) Root(ctx context.Context) (*ctfs.Root, error) {
	type pidfd struct {
		f   *os.File
		err error
	}
	got, err := ask(ctx, c, "its init's pidfd", func() pidfd {
		f, err := c.c.InitPidFd()
		return pidfd{f, err}
	})
	if err != nil {
		return nil, err
	}
	if got.err != nil {
		if running, rerr := c.running(ctx); rerr == nil && !running {
			return nil, ErrStopped
		}
		return nil, fmt.Errorf("asking LXC for its init's pidfd: %w", got.err)
	}
	defer got.f.Close()
	r, err := ctfs.OpenProcess(int(got.f.Fd()))
	if err != nil {
		return nil, fmt.Errorf("opening its root: %w", err)
	}
	return r, nil
}

// ask runs one liblxc query with a deadline. A query that does not return
// is left to a goroutine (liblxc offers no way to cancel it), and the
// container is marked stuck: go-lxc's handle stays locked by it.
func ask[T any](ctx context.Context, c *Container, what string, query func() T) (T, error) {
	vmid := c.VMID
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	done := make(chan T, 1)
	go func() { done <- query() }()
	select {
	case v := <-done:
		return v, nil
	case <-ctx.Done():
		c.stuck.Store(true)
		var zero T
		return zero, fmt.Errorf("asking LXC for %s: the container's monitor did not answer (%w); is its lxc-start process stopped or stuck? (`lxc-info -n %d`, `ps -o pid,stat,cmd -C lxc-start`)", what, ctx.Err(), vmid)
	}
}

// Result is what a command did. Its output is the container's text: parse
// it with Raw, print it as it is (its String escapes it).
type Result struct {
	Stdout, Stderr untrusted.Text
	Exit           int
}

// Output is stdout followed by stderr.
func (r Result) Output() untrusted.Text { return untrusted.Concat(r.Stdout, r.Stderr) }

// ErrStopped means the container stopped while a command ran or before it.
var ErrStopped = errors.New("container is not running")

// Run runs argv inside the container with Env, feeding it stdin (may be nil),
// and waits for it until ctx ends; then the command is killed. A non-zero
// exit is not an error: look at Result.Exit. Of each output stream it keeps
// the first MiB and the last 64 KiB.
func (c *Container) Run(ctx context.Context, argv []string, stdin io.Reader) (Result, error) {
	var out, errOut capped
	exit, err := c.Stream(ctx, argv, stdin, &out, &errOut)
	return Result{Stdout: untrusted.New(out.String()), Stderr: untrusted.New(errOut.String()), Exit: exit}, err
}

// Grace periods of Stream, once its deadline has passed or its command has
// ended: a process stuck in the kernel cannot be waited for, and a process
// the command left in the background may hold its output open for ever.
const (
	killGrace  = 5 * time.Second // for a killed command to be reaped
	drainGrace = 2 * time.Second // for the output to close after the command ended
)

// Stream is Run with the command's output written to stdout and stderr as it
// comes. Every step has a deadline: liblxc's attach and state queries (which
// talk to the container's monitor, which may hang), the command itself, and
// its output, which a background process it started may keep open.
func (c *Container) Stream(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	running, err := c.running(ctx)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", argv[0], err)
	}
	if !running {
		return -1, fmt.Errorf("%s: %w", argv[0], ErrStopped)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return -1, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return -1, err
	}
	closeChildEnds := func() { inR.Close(); outW.Close(); errW.Close() }
	closeOurEnds := func() { inW.Close(); outR.Close(); errR.Close() }
	// The boundary: nothing of the host's but the command's stdio crosses
	// into the container (liblxc's attach passes on every descriptor
	// without close-on-exec, its own and cgo's included).
	if err := fdguard.CloseOnExec(); err != nil {
		closeChildEnds()
		closeOurEnds()
		return -1, fmt.Errorf("%s: marking the host's descriptors close-on-exec before attaching: %w", argv[0], err)
	}
	opts := lxc.DefaultAttachOptions
	opts.ClearEnv = true
	opts.Env = Env
	opts.StdinFd, opts.StdoutFd, opts.StderrFd = inR.Fd(), outW.Fd(), errW.Fd()
	type attached struct {
		pid int
		err error
	}
	attachDone := make(chan attached, 1)
	go func() {
		pid, err := c.c.RunCommandNoWait(argv, opts)
		attachDone <- attached{pid, err}
	}()
	var a attached
	select {
	case a = <-attachDone:
	case <-ctx.Done():
		// liblxc did not return: leave it a goroutine that cleans up after it.
		go func() {
			if a := <-attachDone; a.err == nil {
				unix.Kill(a.pid, unix.SIGKILL)
				var ws unix.WaitStatus
				unix.Wait4(a.pid, &ws, 0, nil)
			}
			closeChildEnds()
			closeOurEnds()
		}()
		return -1, fmt.Errorf("attach to run %s did not return: %w", argv[0], ctx.Err())
	}
	closeChildEnds()
	if a.err != nil {
		closeOurEnds()
		if running, rerr := c.running(ctx); rerr == nil && !running {
			return -1, fmt.Errorf("%s: %w", argv[0], ErrStopped)
		}
		return -1, fmt.Errorf("attach to run %s: %w", argv[0], a.err)
	}
	pid := a.pid
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		if stdin != nil {
			io.Copy(inW, stdin)
		}
		inW.Close()
	}()
	go func() { defer wg.Done(); io.Copy(stdout, outR); outR.Close() }()
	go func() { defer wg.Done(); io.Copy(stderr, errR); errR.Close() }()
	copied := make(chan struct{})
	go func() { wg.Wait(); close(copied) }()

	type reaped struct {
		ws  unix.WaitStatus
		err error
	}
	waitDone := make(chan reaped, 1)
	go func() {
		var r reaped
		_, r.err = unix.Wait4(pid, &r.ws, 0, nil)
		waitDone <- r
	}()
	var r reaped
	select {
	case r = <-waitDone:
	case <-ctx.Done():
		unix.Kill(pid, unix.SIGKILL)
		select {
		case r = <-waitDone:
		case <-time.After(killGrace):
			closeOurEnds()
			return -1, fmt.Errorf("%s outlived its deadline and did not end within %v of SIGKILL (stuck in the kernel?): %w", argv[0], killGrace, ctx.Err())
		}
	}
	select {
	case <-copied:
	case <-time.After(drainGrace):
		closeOurEnds() // a background process holds the output: stop reading it
		<-copied
	}
	if r.err != nil {
		return -1, fmt.Errorf("waiting for %s: %w", argv[0], r.err)
	}
	if ctx.Err() != nil {
		return -1, fmt.Errorf("%s: %w", argv[0], ctx.Err())
	}
	code := r.ws.ExitStatus()
	if r.ws.Signaled() {
		code = 128 + int(r.ws.Signal())
	}
	// Killed, or a shell reporting its child killed: a container that is
	// stopping kills what runs in it, and its state may still say RUNNING
	// for a moment.
	if code == 128+int(syscall.SIGKILL) || code == 128+int(syscall.SIGTERM) {
		if c.stopsSoon(ctx) {
			return -1, fmt.Errorf("%s: %w", argv[0], ErrStopped)
		}
	}
	return code, nil
}

// stopSettle is how long a killed command's container is watched for its
// stop before the kill counts as the command's own failure.
const stopSettle = 3 * time.Second

// stopsSoon tells whether the container stops within stopSettle.
func (c *Container) stopsSoon(ctx context.Context) bool {
	deadline := time.Now().Add(stopSettle)
	for {
		running, err := c.running(ctx)
		if err == nil && !running {
			return true
		}
		if err != nil || time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// running asks liblxc whether the container runs, until ctx ends or
// queryTimeout passes.
func (c *Container) running(ctx context.Context) (bool, error) {
	return ask(ctx, c, "its state", c.c.Running)
}
