//go:build integration

package integration_test

// Nothing of the host's crosses into a container but what is meant to: an
// admin's shell and a hook's caller may hold descriptors open without
// close-on-exec, which liblxc's attach would pass into the container.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
)

// spyScript replaces the container's dpkg-query, which the worker runs
// through attach, with one that reads every descriptor it inherited above
// stderr into /tmp/leaked and leaves a process behind that keeps them.
const spyScript = `set -e
mv /usr/bin/dpkg-query /usr/bin/dpkg-query.real
cat > /usr/bin/dpkg-query <<'SPY'
#!/bin/sh
for fd in 3 4 5 6 7 8 9; do eval "cat <&$fd" >> /tmp/leaked 2>/dev/null || true; done
setsid sleep 600 </dev/null >/dev/null 2>&1 &
exec /usr/bin/dpkg-query.real "$@"
SPY
chmod 755 /usr/bin/dpkg-query`

// adminFiles are what an admin's shell holds when it runs nvidiaprep: a
// root-only file open for reading (`exec 3</root/secret`) and an
// flock(1) lock (`flock 4`), neither close-on-exec.
func adminFiles(t *testing.T, token string) (files []*os.File, lockPath string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := os.Open(secret)
	if err != nil {
		t.Fatal(err)
	}
	lockPath = filepath.Join(dir, "admin.lock")
	l, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(l.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	return []*os.File{s, l}, lockPath
}

// lockFree tells whether nobody holds an flock on path.
func lockFree(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return false
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return true
}

// An unprivileged container's commands, run by the worker through attach,
// see none of the descriptors of whoever started nvidiaprep: neither when
// an admin runs `nvidiaprep provision` by hand from a shell holding a
// root-only file and an flock(1) lock, nor when the hook, started outside
// systemd, was given them and starts the worker itself. The container
// cannot read the file, and the admin's lock is free once nvidiaprep has
// ended. Before, the container read the file through descriptor 3 and a
// process it left behind kept the admin's lock for as long as it lived.
func TestHostDescriptorsDoNotReachAContainer(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: true, Init: lxctest.ShLoop})
	prepareAny(t, ct, spyScript, false)
	if _, err := ct.ProxmoxStart(preStartOnly(t), n.Env()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })

	for _, via := range []struct {
		name string
		argv []string
		bin  string
	}{
		{"nvidiaprep provision by hand", []string{"provision", id}, admin()},
		{"the hook's post-start without systemd", []string{id, "post-start"}, hook},
	} {
		token := "HOST-ONLY-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		files, lockPath := adminFiles(t, token)
		if out, code := sh(t, ct, "rm -f /tmp/leaked /var/lib/nvidia/log"); code != 0 {
			t.Fatal(out)
		}
		since := time.Now()
		r := runbin.Cmd{Path: via.bin, Args: via.argv, Env: n.Env(), ExtraFiles: files}.Must(t)
		if r.Code != 0 {
			t.Fatalf("%s: exit %d\n%s", via.name, r.Code, r.Output)
		}
		if _, err := n.WaitProvisioned(ct.VMID, since, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		// The worker's descriptors close as it exits, after its record.
		for _, pid := range workerPIDs(ct.VMID) {
			waitExited(pid, 10*time.Second)
		}
		for _, f := range files {
			f.Close()
		}
		if leaked, _ := sh(t, ct, "cat /tmp/leaked 2>/dev/null"); strings.Contains(leaked, token) {
			t.Errorf("%s: the container read the root-only file through an inherited descriptor: %q", via.name, leaked)
		}
		if !lockFree(t, lockPath) {
			t.Errorf("%s: the admin's flock lock is still held after nvidiaprep ended (by a process the container left: %s)", via.name, holders(lockPath))
		}
	}
}
