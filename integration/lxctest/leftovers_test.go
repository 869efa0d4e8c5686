//go:build integration

package lxctest_test

import (
	"bufio"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
)

// vmidKilled is fixed: the test process that is killed and this one, which
// checks what it left, must agree on it without talking (outside VMID's range).
const vmidKilled = 9470

// ownerDirEnv makes TestKilledOwnerHelper the test process that
// TestKilledTestLeavesNothingBehind kills: its bed's directory.
const ownerDirEnv = "LXCTEST_KILLED_OWNER_BED"

// TestKilledOwnerHelper starts a container and waits to be killed; it runs
// only as TestKilledTestLeavesNothingBehind's child.
func TestKilledOwnerHelper(t *testing.T) {
	dir := os.Getenv(ownerDirEnv)
	if dir == "" {
		t.Skip("the test process that TestKilledTestLeavesNothingBehind kills")
	}
	b, err := lxctest.NewBed(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.NewContainer(vmidKilled, lxctest.Options{Init: lxctest.ShLoop})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	fmt.Println("started")
	time.Sleep(2 * time.Minute)
}

// cgroups lists container vmid's cgroups that exist on the machine.
func cgroups(vmid int) []string {
	var out []string
	for _, root := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		for _, sub := range []string{"lxc", "lxc.monitor"} {
			p := filepath.Join(root, sub, strconv.Itoa(vmid))
			if _, err := os.Stat(filepath.Join(p, "cgroup.events")); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// populated tells whether a process runs in one of container vmid's cgroups.
func populated(vmid int) bool {
	for _, p := range cgroups(vmid) {
		b, _ := os.ReadFile(filepath.Join(p, "cgroup.events"))
		if strings.Contains(string(b), "populated 1") {
			return true
		}
	}
	return false
}

// monitorPID finds the LXC monitor of container vmid of lxcpath by its
// process title ("[lxc monitor] <lxcpath> <vmid>").
func monitorPID(t *testing.T, lxcpath string, vmid int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	want := fmt.Sprintf("[lxc monitor] %s %d", lxcpath, vmid)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") == want {
			return pid
		}
	}
	t.Fatalf("no process %q", want)
	return 0
}

// A test process that ends without its cleanups (killed; go test's
// -timeout ends one so too) leaves no container running: its bed's
// watchdog stops them. And the empty cgroups that a container killed with
// its monitor leaves (LXC removes them only when the monitor sees the stop)
// do not fail the next start of that vmid on the machine.
func TestKilledTestLeavesNothingBehind(t *testing.T) {
	dir, err := os.MkdirTemp("", "lxctest-")
	if err != nil {
		t.Fatal(err)
	}
	lxcpath := filepath.Join(dir, "lxc")
	t.Cleanup(func() {
		osexec.Command("lxc-stop", "-k", "-n", strconv.Itoa(vmidKilled), "-P", lxcpath).Run()
		os.RemoveAll(dir)
	})
	cmd := osexec.Command(os.Args[0], "-test.run=^TestKilledOwnerHelper$", "-test.v")
	cmd.Env = append(os.Environ(), ownerDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan string, 1)
	go func() {
		var seen strings.Builder
		for s := bufio.NewScanner(out); s.Scan(); {
			seen.WriteString(s.Text() + "\n")
			if s.Text() == "started" {
				started <- ""
				return
			}
		}
		started <- seen.String()
	}()
	select {
	case failed := <-started:
		if failed != "" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the helper did not start its container:\n%s", failed)
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the helper did not start its container within a minute")
	}
	if len(cgroups(vmidKilled)) == 0 {
		t.Fatalf("container %d runs without a cgroup", vmidKilled)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for len(cgroups(vmidKilled)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("30s after its test process was killed, container %d still has %v", vmidKilled, cgroups(vmidKilled))
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A container whose monitor is killed (SIGKILL: LXC's init dies with
	// it) leaves its cgroups, empty.
	b := lxctest.NewTestBed(t)
	c, err := b.NewContainer(vmidKilled, lxctest.Options{Init: lxctest.ShLoop})
	if err != nil {
		t.Fatal(err)
	}
	start(t, c, "", nil)
	if err := osexec.Command("kill", "-KILL", strconv.Itoa(monitorPID(t, b.LXCPath, vmidKilled))).Run(); err != nil {
		t.Fatal(err)
	}
	// Its init dies with the monitor (LXC's death signal), a moment later.
	for deadline := time.Now().Add(10 * time.Second); c.Running() || populated(vmidKilled); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the container runs on without its monitor")
		}
	}
	if len(cgroups(vmidKilled)) == 0 {
		t.Log("LXC removed the cgroups without its monitor: nothing is left to clear")
	}
	again, err := lxctest.NewTestBed(t).NewContainer(vmidKilled, lxctest.Options{Init: lxctest.ShLoop})
	if err != nil {
		t.Fatal(err)
	}
	start(t, again, "", nil)
}
