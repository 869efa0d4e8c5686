//go:build integration

package integration_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/lxcconf"
)

// givenOnlyGPU0 checks that the container reaches GPU 0 and the control
// nodes as far as the (absent) driver, and that the cgroup refuses GPU 1.
func givenOnlyGPU0(t *testing.T, ct *lxctest.CT, when string) {
	t.Helper()
	for _, p := range []string{"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} {
		out, code := sh(t, ct, "cat "+p+" </dev/null")
		if code == 0 || !strings.Contains(out, "No such device or address") {
			t.Errorf("%s: CT %d: cat %s: exit %d %q, want No such device or address (given)", when, ct.VMID, p, code, out)
		}
	}
	if out, code := sh(t, ct, "mknod /tmp/nvidia1 c 195 1 && cat /tmp/nvidia1; rm -f /tmp/nvidia1"); !strings.Contains(out, "Operation not permitted") {
		t.Errorf("%s: CT %d: a self-made nvidia1: exit %d %q, want Operation not permitted", when, ct.VMID, code, out)
	}
}

// A reboot typed inside the container runs no hookscript: Proxmox's
// post-stop hook writes the LXC config anew and the unit restarts. With
// nvidiaprep's drop-in (nvidiaprep-unit-prestart as ExecStartPre=) the
// container keeps exactly its GPU, three reboots in a row; with Proxmox's
// unit alone it comes back without it.
func TestRebootFromInsideKeepsTheGPU(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    lxctest.Options
	}{{"privileged", lxctest.Options{}}, {"unprivileged", lxctest.Options{Unprivileged: true}}} {
		t.Run(tc.name, func(t *testing.T) {
			vmid := lxctest.VMID(t)
			n := newNode(t, "[containers."+strconv.Itoa(vmid)+"]\ngpus = [\"0\"]\ninstall = false\n")
			if err := n.SetHookscript(vmid); err != nil {
				t.Fatal(err)
			}
			ct := newCT(t, n, vmid, tc.o)
			start(t, n, ct)
			givenOnlyGPU0(t, ct, "after pct start")
			for i := 1; i <= 3; i++ {
				init := ct.InitPID()
				run, err := ct.RebootFromInside(n.UnitPreStart(), n.Env())
				if err != nil {
					t.Fatal(err)
				}
				if now := ct.InitPID(); now == init || now == 0 {
					t.Fatalf("reboot %d: init pid %d, before %d: the container did not restart", i, now, init)
				}
				if err := ct.WaitSystemd(time.Minute); err != nil {
					t.Fatal(err)
				}
				b, _ := os.ReadFile(ct.ConfigPath())
				if strings.Count(string(b), lxcconf.Begin) != 1 {
					t.Errorf("reboot %d: the config has %d blocks, want 1 (drop-in said %q)", i, strings.Count(string(b), lxcconf.Begin), run.Output)
				}
				givenOnlyGPU0(t, ct, "reboot "+strconv.Itoa(i))
			}
			// Proxmox's unit without nvidiaprep's drop-in: the GPU is gone.
			if _, err := ct.RebootFromInside("", nil); err != nil {
				t.Fatal(err)
			}
			if out, code := sh(t, ct, "ls /dev/nvidia0 && cat /dev/nvidia0 </dev/null"); code == 0 || strings.Contains(out, "No such device or address") {
				t.Errorf("without the drop-in the container still reaches GPU 0 after a reboot from inside (%q): the test proves nothing", out)
			}
		})
	}
}

// The drop-in never holds up a container that is not nvidiaprep's: no
// hookscript, or another one; it starts as it would without nvidiaprep.
func TestRebootFromInsideOfAnotherContainer(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := newNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop("", nil) })
	run, err := ct.RebootFromInside(n.UnitPreStart(), n.Env())
	if err != nil {
		t.Fatal(err)
	}
	if run.Output != "" {
		t.Errorf("the drop-in said %q for a container without nvidiaprep's hookscript", run.Output)
	}
	b, _ := os.ReadFile(ct.ConfigPath())
	if strings.Contains(string(b), lxcconf.Begin) {
		t.Errorf("a container without nvidiaprep's hookscript got a block:\n%s", b)
	}
}

// A host reboot that reloads the driver with another nvidia-uvm major (the
// dynamic major moves with kernels and module load order): the next start
// gives the live numbers, and the container reaches uvm again.
func TestHostRebootWithNewUVMMajor(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := newNode(t, "[containers."+id+"]\ngpus = [\"0\"]\ninstall = false\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	start(t, n, ct)
	givenOnlyGPU0(t, ct, "before the host reboot")
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	old := n.Driver.UVMMajor
	major, err := standin.FreeMajor("/proc/devices", old)
	if err != nil {
		t.Fatal(err)
	}
	n.Driver.UVMMajor = major
	if err := n.Host.LoadDriver(n.Driver); err != nil {
		t.Fatal(err)
	}
	start(t, n, ct)
	givenOnlyGPU0(t, ct, "after the host reboot")
	b, _ := os.ReadFile(ct.ConfigPath())
	if !strings.Contains(string(b), "c "+strconv.Itoa(major)+":0 rw") || strings.Contains(string(b), "c "+strconv.Itoa(old)+":0 rw") {
		t.Errorf("the block does not give the new uvm major %d (old %d):\n%s", major, old, b)
	}
	if out, _ := sh(t, ct, "stat -c %t /dev/nvidia-uvm"); out != strconv.FormatInt(int64(major), 16) {
		t.Errorf("/dev/nvidia-uvm inside has major 0x%s, want %d", out, major)
	}
}
