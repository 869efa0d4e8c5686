package ctinit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCgroupDirFromTheGeneratedConfig(t *testing.T) {
	for _, c := range []struct{ config, want string }{
		{"lxc.cgroup.relative = 0\nlxc.cgroup.dir.monitor = lxc.monitor/101\nlxc.cgroup.dir.container = lxc/101\nlxc.cgroup.dir.container.inner = ns\n", "lxc/101"},
		{"lxc.arch = amd64\n", "lxc.payload.101"},                   // LXC's default
		{"lxc.cgroup.dir.container = /../../lxc/101/\n", "lxc/101"}, // never above the mount
	} {
		got, err := CgroupDir([]byte(c.config), 101)
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.config, got, err, c.want)
		}
	}
	if _, err := CgroupDir([]byte("lxc.cgroup.dir.container = /\n"), 101); err == nil {
		t.Errorf("the cgroup root was taken for a container's cgroup")
	}
}

// tree is a cgroup mount and a process table: cgroups maps a cgroup (below
// the mount) to its processes, status each pid to its NSpid line.
type tree struct {
	Host
	t *testing.T
}

func newTree(t *testing.T) tree {
	d := t.TempDir()
	return tree{Host{Cgroup: filepath.Join(d, "cgroup"), Proc: filepath.Join(d, "proc")}, t}
}

func (tr tree) cgroup(dir string, pids ...int) {
	p := filepath.Join(tr.Cgroup, dir)
	if err := os.MkdirAll(p, 0o755); err != nil {
		tr.t.Fatal(err)
	}
	var procs string
	for _, pid := range pids {
		procs += strconv.Itoa(pid) + "\n"
		tr.process(pid, "", dir)
	}
	if err := os.WriteFile(filepath.Join(p, "cgroup.procs"), []byte(procs), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

// process writes pid's status (NSpid: nspid, unless empty) and cgroup.
func (tr tree) process(pid int, nspid, cgroup string) {
	p := filepath.Join(tr.Proc, strconv.Itoa(pid))
	os.MkdirAll(p, 0o755)
	if nspid != "" {
		os.WriteFile(filepath.Join(p, "status"), []byte("Name:\tx\nNSpid:\t"+nspid+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(p, "cgroup"), []byte("0::/"+cgroup+"\n"), 0o644)
}

// child is a real process, so that its pidfd can be opened.
func child(t *testing.T) int {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// The init is found where systemd moves it (ns/init.scope, below LXC's
// ns/), past the container's other processes and the init of a pid
// namespace the container started itself (a level deeper).
func TestInitIsPidOneOneLevelDown(t *testing.T) {
	tr := newTree(t)
	init := child(t)
	tr.cgroup("lxc/101")
	tr.cgroup("lxc/101/ns", 4000, 4001)
	tr.process(4000, "4000 57", "lxc/101/ns")   // a process of the container
	tr.process(4001, "4001 60 1", "lxc/101/ns") // a nested container's init
	tr.cgroup("lxc/101/ns/init.scope", init)
	tr.process(init, fmt.Sprint(init, " 1"), "lxc/101/ns/init.scope")
	tr.cgroup("lxc/102/ns", 5000)
	tr.process(5000, "5000 1", "lxc/102/ns") // another container's init
	f, err := tr.Init("lxc/101")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pid, err := pidOfFD(f)
	if err != nil || pid != init {
		t.Errorf("pidfd names %d (%v), want the init %d", pid, err, init)
	}
}

func TestStoppedContainer(t *testing.T) {
	tr := newTree(t)
	if _, err := tr.Init("lxc/101"); !errors.Is(err, ErrStopped) {
		t.Errorf("no cgroup: got %v, want ErrStopped", err)
	}
	tr.cgroup("lxc/101/ns", 4000)
	tr.process(4000, "4000 57", "lxc/101/ns")
	if _, err := tr.Init("lxc/101"); !errors.Is(err, ErrStopped) {
		t.Errorf("no init: got %v, want ErrStopped", err)
	}
	// An init that ended (its pid gone) between the look and the pidfd.
	tr.cgroup("lxc/103/ns", 1<<22-3)
	tr.process(1<<22-3, "4194301 1", "lxc/103/ns")
	if _, err := tr.Init("lxc/103"); !errors.Is(err, ErrStopped) {
		t.Errorf("ended init: got %v, want ErrStopped", err)
	}
}

// A container that makes more sub-cgroups than the walk's bound gets an
// error, not a walk without end.
func TestWalkIsBounded(t *testing.T) {
	tr := newTree(t)
	tr.cgroup("lxc/101")
	tr.cgroup("lxc/101/ns")
	for i := 0; i < maxCgroups; i++ {
		os.MkdirAll(filepath.Join(tr.Cgroup, "lxc/101/ns", strconv.Itoa(i)), 0o755)
	}
	_, err := tr.Init("lxc/101")
	if err == nil || errors.Is(err, ErrStopped) {
		t.Errorf("got %v, want an error naming the bound", err)
	}
}

func pidOfFD(f *os.File) (int, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		return 0, err
	}
	var pid int
	for _, l := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(l, "Pid:\t%d", &pid); err == nil {
			return pid, nil
		}
	}
	return 0, errors.New("no Pid: line")
}

// LXC's base is the cgroup of the host's pid 1 without systemd's
// /init.scope: the root on a Proxmox node, a cgroup of its own on a host
// whose init is something else (the GPU machine of 2026-12-05: pid 1 in
// /process_api/core, the container's init in /process_api/core/lxc/101/ns).
func TestInitBelowTheInitsCgroup(t *testing.T) {
	for cgroup, want := range map[string]string{
		"0::/init.scope\n": "",
		"12:pids:/\n1:name=systemd:/init.scope\n0::/init.scope\n": "",
		"0::/\n":                        "",
		"0::/process_api/core\n":        "process_api/core",
		"0::/system.slice/init.scope\n": "system.slice",
		"0::/../../escape/init.scope\n": "escape",
		"1:name=systemd:/\n":            "",
	} {
		tr := newTree(t)
		os.MkdirAll(filepath.Join(tr.Proc, "1"), 0o755)
		os.WriteFile(filepath.Join(tr.Proc, "1", "cgroup"), []byte(cgroup), 0o644)
		if got := InitBase(tr.Proc); got != want {
			t.Errorf("%q: base %q, want %q", cgroup, got, want)
		}
	}
	if got := InitBase(t.TempDir()); got != "" {
		t.Errorf("no proc/1/cgroup: base %q, want the root", got)
	}

	tr := newTree(t)
	tr.Base = "process_api/core"
	init := child(t)
	tr.cgroup("process_api/core/lxc/101")
	tr.cgroup("process_api/core/lxc/101/ns", init)
	tr.process(init, fmt.Sprint(init, " 1"), "process_api/core/lxc/101/ns")
	f, err := tr.Init("lxc/101")
	if err != nil {
		t.Fatalf("below the base: %v", err)
	}
	f.Close()
	tr.Base = ""
	if _, err := tr.Init("lxc/101"); !errors.Is(err, ErrStopped) {
		t.Errorf("at the root, where this host's LXC puts nothing: got %v, want ErrStopped", err)
	}
}
