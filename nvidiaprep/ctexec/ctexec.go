// Package ctexec runs commands inside a running LXC container through
// liblxc's attach (go-lxc), with deadlines: the only way nvidiaprep acts
// inside a container, so the container's own paths and symlinks resolve
// inside the container, never against the host.
package ctexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	lxc "github.com/lxc/go-lxc"
	"golang.org/x/sys/unix"
)

// Env is the whole environment of commands run inside a container.
var Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "DEBIAN_FRONTEND=noninteractive"}

// Container is one LXC container, named by its vmid as Proxmox names them.
type Container struct {
	VMID int
	c    *lxc.Container
	mu   sync.Mutex
}

// Open opens container vmid under lxcpath (Proxmox: /var/lib/lxc).
func Open(lxcpath string, vmid int) (*Container, error) {
	c, err := lxc.NewContainer(strconv.Itoa(vmid), lxcpath)
	if err != nil {
		return nil, fmt.Errorf("CT %d: opening through liblxc: %w", vmid, err)
	}
	return &Container{VMID: vmid, c: c}, nil
}

// Close releases liblxc's handle.
func (c *Container) Close() { c.c.Release() }

// Running reports whether the container runs.
func (c *Container) Running() bool { return c.c.Running() }

// InitPID is the host pid of the container's init, or -1.
func (c *Container) InitPID() int { return c.c.InitPid() }

// Result is what a command did.
type Result struct {
	Stdout, Stderr string
	Exit           int
}

// ErrStopped means the container stopped while a command ran or before it.
var ErrStopped = errors.New("container is not running")

// Run runs argv inside the container with Env, feeding it stdin (may be nil),
// and waits for it until ctx ends; then the command is killed. A non-zero
// exit is not an error: look at Result.Exit.
func (c *Container) Run(ctx context.Context, argv []string, stdin io.Reader) (Result, error) {
	var out, errOut bytes.Buffer
	exit, err := c.Stream(ctx, argv, stdin, &out, &errOut)
	return Result{Stdout: out.String(), Stderr: errOut.String(), Exit: exit}, err
}

// Stream is Run with the command's output written to stdout and stderr as it comes.
func (c *Container) Stream(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if !c.Running() {
		return -1, fmt.Errorf("CT %d: %s: %w", c.VMID, argv[0], ErrStopped)
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
	opts := lxc.DefaultAttachOptions
	opts.ClearEnv = true
	opts.Env = Env
	opts.StdinFd, opts.StdoutFd, opts.StderrFd = inR.Fd(), outW.Fd(), errW.Fd()
	c.mu.Lock()
	pid, err := c.c.RunCommandNoWait(argv, opts)
	c.mu.Unlock()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		if !c.Running() {
			return -1, fmt.Errorf("CT %d: %s: %w", c.VMID, argv[0], ErrStopped)
		}
		return -1, fmt.Errorf("CT %d: attach to run %s: %w", c.VMID, argv[0], err)
	}
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

	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			unix.Kill(pid, unix.SIGKILL)
		case <-done:
		}
	}()
	var ws unix.WaitStatus
	_, werr := unix.Wait4(pid, &ws, 0, nil)
	close(done)
	wg.Wait()
	if werr != nil {
		return -1, fmt.Errorf("CT %d: waiting for %s: %w", c.VMID, argv[0], werr)
	}
	if ctx.Err() != nil {
		return -1, fmt.Errorf("CT %d: %s: %w", c.VMID, argv[0], ctx.Err())
	}
	if ws.Signaled() {
		if !c.Running() {
			return -1, fmt.Errorf("CT %d: %s: %w", c.VMID, argv[0], ErrStopped)
		}
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
