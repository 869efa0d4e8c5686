//go:build integration

package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/nvidiaprep/nvdev"
)

// A container whose Proxmox config still has the usual tutorial lines (a
// broad "c 195:* rwm", the uvm major's rule, binds of the host's nvidiactl,
// nvidia0 and nvidia-uvm) gets its own copies of the nodes all the same,
// and what its root does to them (chmod) stays in them. LXC mounts only the
// first entry for a path (it skips a later one, which finds a mount point
// there), so mounting the copies after the binds is not enough: pre-start
// leaves the binds out of this start's generated config. The task log
// names each line with the command that removes it. (Before, nvidiaprep
// left out its mounts where a hand-written bind had the same target, and
// its rules where a hand-written rule covered them: the container kept the
// host's own nodes, and its chmod changed the host's.)
func TestTutorialLinesGetTheCopiesNotTheHostsNodes(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := newNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"0\"]\ninstall = false\n", vmid))
	majors, err := nvdev.ReadMajors(n.Host.Proc)
	if err != nil {
		t.Fatal(err)
	}
	uvm := majors["nvidia-uvm"]
	hand := []string{
		"lxc.cgroup2.devices.allow = c 195:* rwm",
		fmt.Sprintf("lxc.cgroup2.devices.allow = c %d:* rwm", uvm),
	}
	names := []string{"nvidiactl", "nvidia0", "nvidia-uvm"}
	for _, name := range names {
		hand = append(hand, fmt.Sprintf("lxc.mount.entry = %s dev/%s none bind,optional,create=file", filepath.Join(n.Host.Dev, name), name))
	}
	// Proxmox's config holds the same lines (as "lxc.key: value").
	if err := n.SetHookscript(vmid); err != nil {
		t.Fatal(err)
	}
	pveConf := filepath.Join(n.PVEDir(), "lxc", fmt.Sprintf("%d.conf", vmid))
	f, err := os.OpenFile(pveConf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range hand {
		fmt.Fprintln(f, strings.Replace(l, " = ", ": ", 1))
	}
	f.Close()
	ct := newCT(t, n, vmid, lxctest.Options{ExtraConfig: hand})
	s := start(t, n, ct)

	copies := nvdev.CopiesDir(n.Host.Dev, vmid)
	for _, name := range names {
		host, copy := devIno(t, filepath.Join(n.Host.Dev, name)), devIno(t, filepath.Join(copies, name))
		out, code := sh(t, ct, "stat -c '%d:%i' /dev/"+name)
		switch got := strings.TrimSpace(out); {
		case code != 0:
			t.Errorf("/dev/%s in the container: %s", name, out)
		case got == host:
			t.Errorf("/dev/%s in the container is the host's node %s, not the container's copy %s", name, host, copy)
		case got != copy:
			t.Errorf("/dev/%s in the container is %s, want the copy %s", name, got, copy)
		}
	}
	// The container's root changes its copy, never the host's node.
	if out, code := sh(t, ct, "chmod 0600 /dev/nvidiactl && stat -c %a /dev/nvidiactl"); code != 0 || strings.TrimSpace(out) != "600" {
		t.Fatalf("chmod in the container: %s", out)
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(n.Host.Dev, "nvidiactl"), &st); err != nil || st.Mode&0o777 != 0o666 {
		t.Errorf("the host's nvidiactl: mode %o, %v; want 666, untouched", st.Mode&0o777, err)
	}
	// The task log names the lines, with the command that removes them.
	log := s.PreStart.Output
	for _, want := range []string{
		`allows every NVIDIA node (195:*) to this privileged container`,
		fmt.Sprintf(`c %d:* rwm" is superseded`, uvm),
		"binds the host's " + filepath.Join(n.Host.Dev, "nvidiactl") + ": nvidiaprep mounts the container's own copy there instead",
		fmt.Sprintf("`nvidiaprep enable %d --adopt` removes it from %s", vmid, pveConf),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the task log lacks %q:\n%s", want, log)
		}
	}
}

// devIno is a file's "device:inode", as stat -c '%d:%i' prints it.
func devIno(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}
