package lxctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/runbin"
)

// ShLoop is an Options.Init for a container without systemd: the bed
// installs /bin/sh-loop, a shell loop that sleeps until LXC stops it.
const ShLoop = "/bin/sh-loop"

const shLoopScript = `#!/bin/sh
# init of an nvidiaprep test container without systemd: sleep until stopped
trap 'exit 0' PWR TERM INT
while :; do sleep 1 & wait $!; done
`

// cleanPath is the only environment of commands run inside containers.
const cleanPath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

// Options choose what kind of container NewContainer makes.
type Options struct {
	// Unprivileged makes an unprivileged container (Proxmox's
	// "unprivileged: 1"): ids mapped by 100000, Proxmox's userns configs.
	Unprivileged bool
	// ExtraConfig are raw "lxc.key = value" lines appended to the generated
	// config, as Proxmox appends the lxc.* lines of /etc/pve/lxc/<vmid>.conf.
	ExtraConfig []string
	// Init is the container's init (lxc.init.cmd); "" boots systemd.
	// ShLoop gives a container without systemd.
	Init string
	// DiskSize, when > 0, is the size in bytes of the container's disk, as
	// Proxmox's "rootfs: ...,size=": its writable layer is a tmpfs of that
	// size, so writes beyond it fail with "No space left on device".
	// Without overlayfs that layer holds a full copy of the root file
	// system, which must fit.
	DiskSize int64
	// Root is the cached tree (a directory name in the cache, such as
	// "rootfs-trixie") the root file system starts from; "" is Debian
	// bookworm.
	Root string
}

// CT is one container of a Bed.
type CT struct {
	VMID int
	Bed  *Bed
	// ExecLimit bounds each Exec; 0 is DefaultExecLimit.
	ExecLimit time.Duration

	opts Options
	disk disk
}

// NewContainer prepares container vmid: its directory <LXCPath>/<vmid>/ and
// its root file system data (an overlay over the cached tree, or a copy),
// unmounted. Nothing is written to the config until a start. It fails if
// the vmid is taken in this bed, or by a running container on the machine;
// the empty cgroups of a container killed with its monitor it removes.
func (b *Bed) NewContainer(vmid int, o Options) (*CT, error) {
	if vmid <= 0 {
		return nil, fmt.Errorf("lxctest: invalid vmid %d", vmid)
	}
	if err := clearLeftoverCgroups(vmid); err != nil {
		return nil, err
	}
	c := &CT{VMID: vmid, Bed: b, opts: o}
	b.mu.Lock()
	if _, dup := b.cts[vmid]; dup {
		b.mu.Unlock()
		return nil, fmt.Errorf("lxctest: container %d exists in bed %s", vmid, b.Dir)
	}
	b.cts[vmid] = c
	b.mu.Unlock()
	if err := c.prepare(); err != nil {
		return nil, fmt.Errorf("lxctest: container %d: %w", vmid, err)
	}
	return c, nil
}

func (c *CT) prepare() error {
	lower, err := c.Bed.LowerDir(c.opts.Root, c.opts.Unprivileged)
	if err != nil {
		return err
	}
	owner := 0
	if c.opts.Unprivileged {
		owner = IDShift
	}
	if err := os.MkdirAll(filepath.Join(c.dir(), "rootfs"), 0o755); err != nil {
		return err
	}
	if c.opts.DiskSize > 0 {
		// Below the bed's directory, so that Bed.Close unmounts it.
		dir := c.Bed.diskDir(c.VMID)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0755", c.opts.DiskSize)); err != nil {
			return fmt.Errorf("disk of %d bytes: %w", c.opts.DiskSize, err)
		}
	}
	d, err := prepareDisk(c.Bed.diskDir(c.VMID), lower, c.Bed.overlay, owner)
	if err != nil {
		return err
	}
	c.disk = d
	// Proxmox's pre-start hook sets the hostname in the container's files
	// too (PVE::LXC::Setup); else systemd would take the cached tree's.
	if err := d.writeFile("/etc/hostname", []byte(fmt.Sprintf("ct%d\n", c.VMID)), 0o644); err != nil {
		return err
	}
	if c.opts.Init == ShLoop {
		return d.writeFile(ShLoop, []byte(shLoopScript), 0o755)
	}
	return nil
}

// dir is <LXCPath>/<vmid>, Proxmox's /var/lib/lxc/<vmid>.
func (c *CT) dir() string { return filepath.Join(c.Bed.LXCPath, strconv.Itoa(c.VMID)) }

// LogPath is the file lxc-start logs the container's starts to (level INFO).
func (c *CT) LogPath() string { return filepath.Join(c.Bed.diskDir(c.VMID), "lxc.log") }

// WriteFile writes a file into the stopped container's root file system,
// owned by the container's root; name is the path inside the container.
func (c *CT) WriteFile(name string, data []byte, perm os.FileMode) error {
	if c.Running() {
		return fmt.Errorf("lxctest: container %d: WriteFile needs a stopped container", c.VMID)
	}
	if err := c.disk.writeFile(name, data, perm); err != nil {
		return fmt.Errorf("lxctest: container %d: %w", c.VMID, err)
	}
	return nil
}

// HookRun is one run of a hookscript phase.
type HookRun struct {
	Phase    string
	Output   string // stdout and stderr together
	ExitCode int    // -1 when the hook could not be run at all
	Duration time.Duration
}

// OK tells whether the hook exited 0.
func (h *HookRun) OK() bool { return h != nil && h.ExitCode == 0 }

// Start tells what ProxmoxStart did. The hook runs are nil without a hook
// or when the start ended before them.
type Start struct {
	PreStart, PostStart *HookRun
	LXCStart            time.Duration // lxc-start until RUNNING
}

// Stop tells what CT.Stop did.
type Stop struct {
	PreStop, PostStop *HookRun
	LXCStop           time.Duration
}

// ProxmoxStart starts the container in the order of Proxmox's "pct start":
// WriteGeneratedConfig; "<hook> <vmid> pre-start" (a failure aborts the
// start; the error holds the hook's output); lxc-start, daemonized, in a
// private mount namespace with pure cgroup v2, which first mounts the root
// file system there (Proxmox's LXC pre-start hook does that, in the
// monitor's unshared namespace: the host never sees it mounted); wait until
// RUNNING; "<hook> <vmid> post-start", whose failure is only recorded (a
// warning on Proxmox). hook "" means no hookscript. The hook runs with
// exactly env, or with only PATH when env is nil.
func (c *CT) ProxmoxStart(hook string, env []string) (Start, error) {
	var s Start
	if c.Running() {
		return s, fmt.Errorf("lxctest: container %d already running", c.VMID)
	}
	if err := c.WriteGeneratedConfig(); err != nil {
		return s, err
	}
	if hook != "" {
		s.PreStart = c.runHook(hook, "pre-start", env)
		if !s.PreStart.OK() {
			return s, fmt.Errorf("lxctest: container %d: hookscript pre-start failed (exit %d), start aborted:\n%s", c.VMID, s.PreStart.ExitCode, s.PreStart.Output)
		}
	}
	t0 := time.Now()
	if err := c.lxcStart(); err != nil {
		return s, err
	}
	if err := c.lxc("lxc-wait", "-s", "RUNNING", "-t", "30"); err != nil {
		return s, fmt.Errorf("lxctest: container %d did not reach RUNNING: %w", c.VMID, err)
	}
	s.LXCStart = time.Since(t0)
	if hook != "" {
		s.PostStart = c.runHook(hook, "post-start", env)
	}
	return s, nil
}

// Stop stops the container as Proxmox's "pct stop" does: "<hook> <vmid>
// pre-stop" (a failure aborts the stop), lxc-stop (which kills when init has
// not stopped within 10 s), then "<hook> <vmid> post-stop" (its failure is an
// error here; Proxmox only warns). A stopped container is left alone.
func (c *CT) Stop(hook string, env []string) (Stop, error) {
	var s Stop
	if !c.Running() {
		return s, nil
	}
	if hook != "" {
		s.PreStop = c.runHook(hook, "pre-stop", env)
		if !s.PreStop.OK() {
			return s, fmt.Errorf("lxctest: container %d: hookscript pre-stop failed (exit %d), stop aborted:\n%s", c.VMID, s.PreStop.ExitCode, s.PreStop.Output)
		}
	}
	t0 := time.Now()
	if err := c.lxc("lxc-stop", "-t", "10"); err != nil && c.Running() {
		return s, fmt.Errorf("lxctest: container %d: %w", c.VMID, err)
	}
	s.LXCStop = time.Since(t0)
	if hook != "" {
		s.PostStop = c.runHook(hook, "post-stop", env)
		if !s.PostStop.OK() {
			return s, fmt.Errorf("lxctest: container %d: hookscript post-stop failed (exit %d):\n%s", c.VMID, s.PostStop.ExitCode, s.PostStop.Output)
		}
	}
	return s, nil
}

// kill stops the container at once, without hooks.
func (c *CT) kill() error {
	if !c.Running() {
		return nil
	}
	if err := c.lxc("lxc-stop", "-k"); err != nil && c.Running() {
		return fmt.Errorf("lxctest: container %d: kill: %w", c.VMID, err)
	}
	return nil
}

// runHook runs "<hook> <vmid> <phase>" on the host.
func (c *CT) runHook(hook, phase string, env []string) *HookRun {
	return c.run(phase, env, hook, strconv.Itoa(c.VMID), phase)
}

// runProgram runs "<program> <vmid>" on the host, as a unit's
// ExecStartPre=<program> %i does.
func (c *CT) runProgram(program string, env []string) *HookRun {
	return c.run(filepath.Base(program), env, program, strconv.Itoa(c.VMID))
}

func (c *CT) run(phase string, env []string, argv ...string) *HookRun {
	if env == nil {
		env = []string{cleanPath}
	}
	t0 := time.Now()
	r, err := runbin.Cmd{Path: argv[0], Args: argv[1:], Env: env}.Run()
	h := &HookRun{Phase: phase, Output: r.Output, ExitCode: r.Code, Duration: time.Since(t0)}
	if err != nil {
		h.Output += err.Error()
	}
	return h
}

// DefaultExecLimit bounds one Exec: longer than any command the tests run inside a
// container (the toolkit tier's apt install of CUDA, a DKMS build), short
// enough that a hung one ends the test with its name, not go test's
// timeout with every goroutine.
const DefaultExecLimit = 30 * time.Minute

// Exec runs a command inside the running container with lxc-attach and a
// clean environment (PATH=/usr/sbin:/usr/bin:/sbin:/bin, plus container=lxc
// and the config's lxc.environment) and returns its output and exit code.
// err is set only when lxc-attach reported an error of its own: the
// container is not running, or the command could not be executed (then
// code is 127). lxc-attach works from the host's mount namespace against
// containers started in the pure cgroup v2 one; the command runs in the
// container's cgroup (<container>/ns/.lxc), under its device rules. A
// command still running after c.ExecLimit is killed with lxc-attach's process
// group, and err says so.
func (c *CT) Exec(args ...string) (stdout, stderr string, code int, err error) {
	a := append([]string{"-n", strconv.Itoa(c.VMID), "-P", c.Bed.LXCPath, "--clear-env", "--set-var", cleanPath, "--"}, args...)
	var runErr error
	// lxc-attach first re-executes itself from a memfd (LXC's guard
	// against CVE-2019-5736); when that fails ("Failed to rexec as memfd",
	// seen once on a busy 2-core machine) nothing ran in the container
	// yet, so it is tried again. That message is printed only by
	// lxc_rexec() (src/lxc/rexec.c), which lxc-attach calls from a
	// constructor (src/lxc/tools/lxc_attach.c, lxc_attach_rexec) that
	// _exit()s on failure, before main parses its options or talks to the
	// container: the command cannot have run, so a retry cannot run it twice. The copy
	// into the memfd and fexecve() are LXC's own; nothing of the
	// container's is involved, so there is no earlier cause to wait on.
	limit := c.ExecLimit
	if limit == 0 {
		limit = DefaultExecLimit
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for try := 0; ; try++ {
		cmd := exec.CommandContext(ctx, "lxc-attach", a...)
		cmd.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		runErr = cmd.Run()
		stdout, stderr = o.String(), e.String()
		if ctx.Err() != nil {
			return stdout, stderr, -1, fmt.Errorf("lxctest: container %d: %q did not finish within %s: killed", c.VMID, args, limit)
		}
		if runErr == nil || !strings.Contains(stderr, "Failed to rexec as memfd") || try == 4 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	var exit *exec.ExitError
	switch {
	case runErr == nil:
		return stdout, stderr, 0, nil
	case !errors.As(runErr, &exit):
		return stdout, stderr, -1, fmt.Errorf("lxctest: container %d: lxc-attach: %w", c.VMID, runErr)
	case strings.Contains(stderr, fmt.Sprintf("lxc-attach: %d: ", c.VMID)):
		return stdout, stderr, exit.ExitCode(), fmt.Errorf("lxctest: container %d: lxc-attach failed: %s", c.VMID, strings.TrimSpace(stderr))
	}
	return stdout, stderr, exit.ExitCode(), nil
}

// WaitSystemd waits until systemd in the container has booted:
// "systemctl is-system-running --wait" says running or degraded.
func (c *CT) WaitSystemd(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		out, errOut, _, err := c.Exec("timeout", fmt.Sprint(int(time.Until(deadline).Seconds())+1), "systemctl", "is-system-running", "--wait")
		if err != nil {
			return err
		}
		state := strings.TrimSpace(out)
		switch state {
		case "running", "degraded":
			return nil
		case "maintenance", "stopping":
			return fmt.Errorf("lxctest: container %d: systemd is %s", c.VMID, state)
		}
		// Right after the start systemd's bus is not up yet.
		last = strings.TrimSpace(state + " " + errOut)
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("lxctest: container %d: systemd not up after %v (last: %s)", c.VMID, timeout, last)
}

// Running tells whether the container is running.
func (c *CT) Running() bool {
	out, err := c.lxcOutput("lxc-info", "-s", "-H")
	return err == nil && strings.TrimSpace(out) == "RUNNING"
}

// InitPID is the host pid of the container's init, 0 when not running.
func (c *CT) InitPID() int {
	out, err := c.lxcOutput("lxc-info", "-p", "-H")
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(out))
	return pid
}

// RootFS is a host path of the running container's root file system,
// /proc/<init pid>/root, or "" when it is not running. (As on Proxmox,
// <LXCPath>/<vmid>/rootfs is empty on the host.) Absolute symbolic links in
// it point to the host's files.
func (c *CT) RootFS() string {
	if pid := c.InitPID(); pid > 0 {
		return fmt.Sprintf("/proc/%d/root", pid)
	}
	return ""
}

// lxc runs an lxc-* tool on the container.
func (c *CT) lxc(tool string, args ...string) error {
	_, err := c.lxcOutput(tool, args...)
	return err
}

// lxcToolTimeout bounds one run of an lxc-* tool: they block on a hung
// monitor, or on a config that is a FIFO.
const lxcToolTimeout = 2 * time.Minute

func (c *CT) lxcOutput(tool string, args ...string) (string, error) {
	a := append([]string{"-n", strconv.Itoa(c.VMID), "-P", c.Bed.LXCPath}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), lxcToolTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, tool, a...).CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("%s %v: no answer within %v", tool, a, lxcToolTimeout)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", tool, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// WritableLayer is the host directory that takes the container's writes:
// the overlayfs upper directory, or the full copy without overlayfs. Its
// growth is what the container wrote.
func (c *CT) WritableLayer() string { return c.disk.layers()[0] }
