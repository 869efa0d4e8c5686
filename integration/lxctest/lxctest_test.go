//go:build integration

package lxctest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/standin"
)

func start(t *testing.T, c *lxctest.CT, hook string, env []string) lxctest.Start {
	t.Helper()
	s, err := c.ProxmoxStart(hook, env)
	if err != nil {
		t.Fatalf("start: %v\n(log: %s)", err, c.LogPath())
	}
	return s
}

func waitSystemd(t *testing.T, c *lxctest.CT) {
	t.Helper()
	if err := c.WaitSystemd(60 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// exec runs a command in the container and fails the test if lxc-attach did.
func exec(t *testing.T, c *lxctest.CT, args ...string) (string, int) {
	t.Helper()
	out, errOut, code, err := c.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out + errOut, code
}

// standinNodes makes stand-in /dev/nvidia0 and /dev/nvidia1 (195:0, 195:1,
// mode 0666) in the bed and returns the mount entries that bind them into a
// container, as users write them into /etc/pve/lxc/<vmid>.conf.
func standinNodes(t *testing.T, b *lxctest.Bed) []string {
	t.Helper()
	var lines []string
	for _, n := range []string{"nvidia0", "nvidia1"} {
		p := filepath.Join(b.Dir, "dev", n)
		if err := standin.MakeNode(p, 195, int(n[len(n)-1]-'0'), 0o666); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, "lxc.mount.entry = "+p+" dev/"+n+" none bind,optional,create=file")
	}
	return lines
}

// wantOpenError asserts that reading path in the container fails with msg.
func wantOpenError(t *testing.T, c *lxctest.CT, path, msg string) {
	t.Helper()
	out, code := exec(t, c, "cat", path)
	if code == 0 || !strings.Contains(out, msg) {
		t.Errorf("cat %s: exit %d, %q; want an error %q", path, code, strings.TrimSpace(out), msg)
	}
}

func TestPrivilegedBootsSystemd(t *testing.T) {
	t.Parallel()
	b := lxctest.NewTestBed(t)
	c, err := b.NewContainer(lxctest.VMID(t), lxctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	s := start(t, c, "", nil)
	waitSystemd(t, c)
	t.Logf("overlay: %v; lxc-start: %v; start and systemd boot: %v", b.Overlay(), s.LXCStart, time.Since(t0))

	if out, _ := exec(t, c, "cat", "/proc/1/comm"); strings.TrimSpace(out) != "systemd" {
		t.Errorf("init is %q, want systemd", out)
	}
	if out, _ := exec(t, c, "hostname"); strings.TrimSpace(out) != fmt.Sprintf("ct%d", c.VMID) {
		t.Errorf("hostname %q, want ct%d", out, c.VMID)
	}
	if _, err := os.Stat(filepath.Join(c.RootFS(), "usr/lib/systemd/systemd")); err != nil {
		t.Errorf("RootFS %s: %v", c.RootFS(), err)
	}
	// As on Proxmox, the root file system is not mounted in the host's view.
	if ents, err := os.ReadDir(filepath.Join(b.LXCPath, strconv.Itoa(c.VMID), "rootfs")); err != nil || len(ents) != 0 {
		t.Errorf("rootfs dir on the host: %d entries, %v; want empty", len(ents), err)
	}
	if _, err := c.Stop("", nil); err != nil {
		t.Fatal(err)
	}
	if c.Running() || c.RootFS() != "" {
		t.Errorf("still running after Stop")
	}
	if _, _, _, err := c.Exec("true"); err == nil {
		t.Errorf("Exec in a stopped container: no error")
	}
}

// TestDeviceCgroup checks what the test bed relies on: under
// pure cgroup v2, a node that the device cgroup allows opens as far as the
// (missing) driver, ENXIO; one it does not allow fails with EPERM.
func TestDeviceCgroup(t *testing.T) {
	t.Parallel()
	b := lxctest.NewTestBed(t)
	extra := append([]string{"lxc.cgroup2.devices.allow = c 195:0 rw"}, standinNodes(t, b)...)
	c, err := b.NewContainer(lxctest.VMID(t), lxctest.Options{ExtraConfig: extra})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c, "", nil)
	waitSystemd(t, c)

	wantOpenError(t, c, "/dev/nvidia0", "No such device or address")
	wantOpenError(t, c, "/dev/nvidia1", "Operation not permitted")
	// Making a node does not get around the cgroup.
	if out, code := exec(t, c, "mknod", "/tmp/n1", "c", "195", "1"); code != 0 {
		t.Fatalf("mknod in a privileged container: exit %d: %s", code, out)
	}
	wantOpenError(t, c, "/tmp/n1", "Operation not permitted")
}

func TestUnprivileged(t *testing.T) {
	t.Parallel()
	b := lxctest.NewTestBed(t)
	c, err := b.NewContainer(lxctest.VMID(t), lxctest.Options{Unprivileged: true, ExtraConfig: standinNodes(t, b)})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	start(t, c, "", nil)
	waitSystemd(t, c)
	t.Logf("unprivileged start and systemd boot: %v", time.Since(t0))

	if out, _ := exec(t, c, "cat", "/proc/self/uid_map"); !strings.Contains(out, "100000") {
		t.Errorf("uid_map %q, want root mapped to 100000", out)
	}
	if out, _ := exec(t, c, "stat", "-c", "%u %a", "/usr/bin/passwd"); strings.TrimSpace(out) != "0 4755" {
		t.Errorf("/usr/bin/passwd: %q, want owner 0 and mode 4755 (setuid kept by the shift)", out)
	}
	// Proxmox's "lxc.cgroup2.devices.allow = a": every mounted node is
	// reachable; only the choice of mounts decides.
	wantOpenError(t, c, "/dev/nvidia0", "No such device or address")
	wantOpenError(t, c, "/dev/nvidia1", "No such device or address")
	if out, code := exec(t, c, "mknod", "/tmp/n1", "c", "195", "1"); code == 0 {
		t.Errorf("mknod in an unprivileged container succeeded: %s", out)
	}
}

// hookScript logs each phase with what it sees: whether the root file
// system is visible at <lxcpath>/<vmid>/rootfs and through /proc/<pid>/root,
// and whether the config was regenerated. It fails pre-start while $FAIL
// exists.
const hookScript = `#!/bin/sh
vmid=$1 phase=$2
if [ -e "$LXCPATH/$vmid/rootfs/usr/bin" ]; then root=mounted; else root=empty; fi
pid=$(lxc-info -n "$vmid" -P "$LXCPATH" -p -H 2>/dev/null || true)
if [ -n "$pid" ] && [ -e "/proc/$pid/root/usr/bin" ]; then proc=visible; else proc=none; fi
if grep -qx "lxc.uts.name = ct$vmid" "$LXCPATH/$vmid/config"; then conf=generated; else conf=stale; fi
echo "$phase rootfs=$root procroot=$proc config=$conf" >>"$LOG"
echo "hook: $phase"
if [ "$phase" = pre-start ] && [ -e "$FAIL" ]; then echo "hook: refusing to start"; exit 3; fi
exit 0
`

func TestProxmoxStartHookOrder(t *testing.T) {
	t.Parallel()
	b := lxctest.NewTestBed(t)
	hook := filepath.Join(b.Dir, "hook.sh")
	if err := os.WriteFile(hook, []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	log, fail := filepath.Join(b.Dir, "hook.log"), filepath.Join(b.Dir, "fail")
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LXCPATH=" + b.LXCPath, "LOG=" + log, "FAIL=" + fail}
	c, err := b.NewContainer(lxctest.VMID(t), lxctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A stale config from an earlier start, which Proxmox overwrites first.
	if err := os.MkdirAll(filepath.Dir(c.ConfigPath()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.ConfigPath(), []byte("lxc.uts.name = stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	s := start(t, c, hook, env)
	if !s.PreStart.OK() || !s.PostStart.OK() || s.PostStart.Output != "hook: post-start\n" {
		t.Errorf("hook runs: %+v %+v", s.PreStart, s.PostStart)
	}
	if _, err := c.Stop(hook, env); err != nil {
		t.Fatal(err)
	}
	// A failing pre-start aborts the next start, with the hook's output.
	if err := os.WriteFile(fail, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = c.ProxmoxStart(hook, env)
	if err == nil || !strings.Contains(err.Error(), "hook: refusing to start") {
		t.Errorf("start with a failing pre-start: %v; want an error with the hook's output", err)
	}
	if c.Running() {
		t.Errorf("container started despite the failing pre-start")
	}
	// And the root file system mounts again on a second start.
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	start(t, c, hook, env)

	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := `pre-start rootfs=empty procroot=none config=generated
post-start rootfs=empty procroot=visible config=generated
pre-stop rootfs=empty procroot=visible config=generated
post-stop rootfs=empty procroot=none config=generated
pre-start rootfs=empty procroot=none config=generated
pre-start rootfs=empty procroot=none config=generated
post-start rootfs=empty procroot=visible config=generated
`
	if string(got) != want {
		t.Errorf("hook log:\n%s\nwant:\n%s", got, want)
	}
}

func TestShLoopInit(t *testing.T) {
	t.Parallel()
	b := lxctest.NewTestBed(t)
	c, err := b.NewContainer(lxctest.VMID(t), lxctest.Options{Init: lxctest.ShLoop})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c, "", nil)
	if out, _ := exec(t, c, "cat", "/proc/1/cmdline"); !strings.Contains(out, "sh-loop") {
		t.Errorf("init cmdline %q, want sh-loop", out)
	}
	// A command that hangs inside is killed at the limit, and the error
	// names it.
	c.ExecLimit = time.Second
	t0 := time.Now()
	if _, _, _, err := c.Exec("sleep", "60"); err == nil || !strings.Contains(err.Error(), "did not finish within 1s") || time.Since(t0) > 20*time.Second {
		t.Errorf("a hung command: %v after %v", err, time.Since(t0))
	}
	c.ExecLimit = 0
	s, err := c.Stop("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.LXCStop > 5*time.Second {
		t.Errorf("stopping the sh-loop init took %v; it should exit on SIGPWR", s.LXCStop)
	}
}
