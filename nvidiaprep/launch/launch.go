// Package launch starts the provisioning worker of a container detached from
// the hook, so that post-start returns in milliseconds. On a node run by
// systemd the worker is a transient service, nvidiaprep-provision-<vmid>,
// started through go-systemd: `systemctl status` and `journalctl -u` show
// its progress (its STATUS= lines) and its result. Without systemd it is a
// process in a session of its own, writing to a log file.
package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/ctmsg"
)

// Job is a worker to start.
type Job struct {
	VMID int
	Argv []string // absolute path first
	Env  []string // extra environment, "KEY=value"
	// LogDir receives <vmid>.log when there is no systemd.
	LogDir string
}

// workerNice is the worker's scheduling niceness.
const workerNice = 10

// Unit is the transient unit's name for a container.
func Unit(vmid int) string { return fmt.Sprintf("nvidiaprep-provision-%d.service", vmid) }

// Start starts the job and returns a sentence saying where to follow it. A
// worker already running for the container is left alone.
func Start(ctx context.Context, j Job) (string, error) {
	if systemdBooted() {
		return transient(ctx, j)
	}
	return detached(j)
}

// systemdBooted is sd_booted(3): systemd runs this system when
// /run/systemd/system is a directory. (go-systemd's util has it too, but
// that package needs cgo, and the hookscript has none.)
func systemdBooted() bool {
	st, err := os.Lstat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// transient starts the job as a transient systemd service.
func transient(ctx context.Context, j Job) (string, error) {
	conn, err := sddbus.NewSystemdConnectionContext(ctx)
	if err != nil {
		return "", fmt.Errorf("connecting to systemd: %w", err)
	}
	defer conn.Close()
	unit := Unit(j.VMID)
	props := []sddbus.Property{
		sddbus.PropDescription("nvidiaprep: NVIDIA user-space libraries for " + ctmsg.Name(j.VMID)),
		// go-systemd calls this flag uncleanIsFailure, but systemd reads it as
		// "ignore failure" (a "-" prefix): false keeps a failed worker failed.
		sddbus.PropExecStart(j.Argv, false),
		sddbus.PropType("exec"),
		{Name: "NotifyAccess", Value: godbus.MakeVariant("all")},
		// Installs yield the CPU and disk to the start path (the hooks of
		// the guests starting after this one) and to the guests themselves.
		{Name: "Nice", Value: godbus.MakeVariant(int32(workerNice))},
		{Name: "IOSchedulingClass", Value: godbus.MakeVariant(int32(2))},    // best effort,
		{Name: "IOSchedulingPriority", Value: godbus.MakeVariant(int32(7))}, // its lowest level
	}
	if len(j.Env) > 0 {
		props = append(props, sddbus.Property{Name: "Environment", Value: godbus.MakeVariant(j.Env)})
	}
	follow := fmt.Sprintf("follow it with: systemctl status %s; journalctl -u %s", unit, unit)
	_, err = conn.StartTransientUnitContext(ctx, unit, "fail", props, nil)
	if err == nil {
		return "started " + unit + "; " + follow, nil
	}
	if !unitExists(err) {
		return "", fmt.Errorf("starting %s: %w", unit, err)
	}
	// A unit of that name is loaded: running now, or failed and kept for a look.
	p, perr := conn.GetUnitPropertyContext(ctx, unit, "ActiveState")
	if perr == nil {
		switch strings.Trim(p.Value.String(), `"`) {
		case "active", "activating", "reloading", "deactivating":
			return unit + " is already running; " + follow, nil
		}
	}
	if err := conn.ResetFailedUnitContext(ctx, unit); err != nil {
		return "", fmt.Errorf("clearing the earlier %s: %w", unit, err)
	}
	if _, err := conn.StartTransientUnitContext(ctx, unit, "fail", props, nil); err != nil {
		return "", fmt.Errorf("starting %s: %w", unit, err)
	}
	return "started " + unit + "; " + follow, nil
}

func unitExists(err error) bool {
	var de godbus.Error
	if errors.As(err, &de) {
		return de.Name == "org.freedesktop.systemd1.UnitExists"
	}
	return strings.Contains(err.Error(), "already exists")
}

// detached starts the job as a process in a new session, its output
// appended to <LogDir>/<vmid>.log. The worker's own lock keeps a second
// worker from doing anything.
func detached(j Job) (string, error) {
	if err := os.MkdirAll(j.LogDir, 0o755); err != nil {
		return "", fmt.Errorf("worker log: %w", err)
	}
	logPath := filepath.Join(j.LogDir, fmt.Sprintf("%d.log", j.VMID))
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return "", fmt.Errorf("worker log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(j.Argv[0], j.Argv[1:]...)
	// As in the transient unit, the worker's environment is the job's and
	// systemd's default PATH, never the hook's own (Proxmox's task, or a
	// loader path that would keep liblxc from loading).
	cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, j.Env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting the worker %s: %w", j.Argv[0], err)
	}
	pid := cmd.Process.Pid
	// As the transient unit's Nice=: installs yield the CPU to the start
	// path. Set before the worker starts anything of its own, which inherits it.
	_ = unix.Setpriority(unix.PRIO_PROCESS, pid, workerNice) // best effort: a slower start path only
	cmd.Process.Release()
	return fmt.Sprintf("started worker pid %d; log %s", pid, logPath), nil
}
