package ctfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/isolate"
)

// TestMain lets the test binary (static: this package uses no cgo) serve as
// the init of a stand-in container: a process chrooted into a directory, so
// that /proc/<pid>/root is that directory, as for a container's init.
func TestMain(m *testing.M) {
	isolate.Serve(Ops())
	if path := os.Getenv("CTFS_TEST_LOCK"); path != "" {
		// Hold a process-associated fcntl write lock, as apt and dpkg do.
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			os.Exit(1)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString("ok\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	if os.Getenv("CTFS_TEST_SLEEPER") == "1" {
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func chrooted(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "sleeper"), self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/sleeper")
	cmd.Env = []string{"CTFS_TEST_SLEEPER=1"}
	cmd.SysProcAttr = &unix.SysProcAttr{Chroot: root}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a chrooted process: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return root, cmd.Process.Pid
}

func TestSymlinksResolveInsideTheContainer(t *testing.T) {
	root, pid := chrooted(t)
	hostFile := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(hostFile, []byte("HOST SECRET"), 0o600)
	os.MkdirAll(filepath.Join(root, "var/lib/nvidia"), 0o755)
	os.WriteFile(filepath.Join(root, "etc-version"), []byte("580.142\n"), 0o644)
	// The container points its log at the host's secret by absolute path.
	os.Symlink(hostFile, filepath.Join(root, "var/lib/nvidia/log"))
	os.Symlink("/etc-version", filepath.Join(root, "inside"))
	r, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.ReadFile("/var/lib/nvidia/log", 1024); err == nil && strings.Contains(string(b), "HOST SECRET") {
		t.Fatal("read a host file through a container symlink")
	}
	b, err := r.ReadFile("/inside", 1024)
	if err != nil || string(b) != "580.142\n" {
		t.Fatalf("a link inside the container: %q, %v", b, err)
	}
	target, err := r.Readlink("/var/lib/nvidia/log")
	if err != nil || target.Raw() != hostFile {
		t.Fatalf("readlink: %q, %v", target, err)
	}
	if _, err := r.ReadFile("/../../../../"+hostFile, 1024); err == nil {
		t.Fatal("escaped with ..")
	}
	// Several at once, each with its own answer.
	reads := r.ReadFiles(1024, "/inside", "/missing", "/var/lib/nvidia/log")
	if string(reads[0].Data) != "580.142\n" || reads[0].Err != nil || !errors.Is(reads[1].Err, unix.ENOENT) || strings.Contains(string(reads[2].Data), "HOST SECRET") {
		t.Fatalf("ReadFiles: %+v", reads)
	}
}

func TestLockHolder(t *testing.T) {
	root, pid := chrooted(t)
	lock := filepath.Join(root, "var/lib/dpkg/lock-frontend")
	os.MkdirAll(filepath.Dir(lock), 0o755)
	os.WriteFile(lock, nil, 0o640)
	r, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if locked, _, err := r.lockHolder("/var/lib/dpkg/lock-frontend"); err != nil || locked {
		t.Fatalf("free lock: %v %v", locked, err)
	}
	// A process-associated fcntl lock, as apt takes it, held by a child.
	// Its command line holds what would forge sd_notify and log lines and
	// clear an admin's terminal.
	holder := exec.Command(os.Args[0], "holding-the-dpkg-lock", "\nSTATUS=forged\nMAINPID=1\r\x1b[2J")
	holder.Env = []string{"CTFS_TEST_LOCK=" + lock}
	out, _ := holder.StdoutPipe()
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	buf := make([]byte, 3)
	out.Read(buf)
	time.Sleep(10 * time.Millisecond)
	locked, who, err := r.lockHolder("/var/lib/dpkg/lock-frontend")
	if err != nil || !locked || who != holder.Process.Pid {
		t.Fatalf("held lock: locked=%v pid=%d (want %d) err=%v", locked, who, holder.Process.Pid, err)
	}
	name := ProcessName(who).String()
	if !strings.Contains(name, "holding-the-dpkg-lock") || strings.ContainsAny(name, "\n\r\x1b") {
		t.Fatalf("process name %q: want the holder's name, with no control character", name)
	}
	if msg := fmt.Sprintf("STATUS=waiting for the lock, held by %s", ProcessName(who)); strings.Contains(msg, "\nMAINPID=") {
		t.Fatalf("forged notify line: %q", msg)
	}
	if locked, _, err := r.lockHolder("/var/lib/dpkg/missing"); err != nil || locked {
		t.Fatalf("missing file: %v %v", locked, err)
	}
	held := r.LockHolders("/var/lib/dpkg/missing", "/var/lib/dpkg/lock-frontend")
	if held[0] != (Held{}) || !held[1].Locked || held[1].Pid != holder.Process.Pid || held[1].Err != nil {
		t.Fatalf("LockHolders: %+v", held)
	}
}

// A container's device node or FIFO where the host reads a file or probes a
// lock is refused without being opened: opening a device runs its driver's
// open on the host, outside the container's device cgroup.
func TestDeviceNodesAndFIFOsAreNeverOpened(t *testing.T) {
	root, pid := chrooted(t)
	dir := filepath.Join(root, "var/lib/dpkg")
	os.MkdirAll(dir, 0o755)
	nodes := map[string]string{"dev": "a character device", "fifo": "a FIFO", "sub": "a directory"}
	if err := unix.Mknod(filepath.Join(dir, "dev"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	// The container's link to its own device node.
	os.Symlink("/var/lib/dpkg/dev", filepath.Join(dir, "link"))
	nodes["link"] = "a character device"
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	for _, n := range []string{"dev", "fifo", "sub"} {
		if _, err := unix.InotifyAddWatch(in, filepath.Join(dir, n), unix.IN_OPEN); err != nil {
			t.Fatal(err)
		}
	}
	r, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for name, kind := range nodes {
		p := "/var/lib/dpkg/" + name
		_, err := r.ReadFile(p, 64)
		var nr *NotRegularError
		if !errors.As(err, &nr) || nr.Kind != kind || !strings.Contains(err.Error(), p+" is "+kind) {
			t.Errorf("ReadFile(%s): %v, want it refused as %s", p, err, kind)
		}
		if _, _, err := r.lockHolder(p); !errors.As(err, &nr) {
			t.Errorf("LockHolder(%s): %v, want it refused", p, err)
		}
	}
	buf := make([]byte, 4096)
	if n, _ := unix.Read(in, buf); n > 0 {
		t.Errorf("the host opened a device node, FIFO or directory of the container (%d bytes of inotify events)", n)
	}
}

// A Proxmox mount point makes /var/lib a mount of the container's own: the
// host reads across it. A procfs or sysfs the container mounts and links a
// path into is refused, unread.
func TestReadsCrossTheContainersMountsButNotIntoPseudoFileSystems(t *testing.T) {
	root, pid := chrooted(t)
	volume := t.TempDir()
	os.MkdirAll(filepath.Join(volume, "nvidia"), 0o755)
	os.WriteFile(filepath.Join(volume, "nvidia/log"), []byte("580.142\n"), 0o644)
	mount := func(src, target, fstype string, flags uintptr) {
		t.Helper()
		os.MkdirAll(target, 0o755)
		if err := unix.Mount(src, target, fstype, flags, ""); err != nil {
			t.Fatalf("mount %s: %v", target, err)
		}
		t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })
	}
	mount(volume, filepath.Join(root, "var/lib"), "", unix.MS_BIND)
	mount("proc", filepath.Join(root, "mnt/proc"), "proc", 0)
	mount("sysfs", filepath.Join(root, "mnt/sys"), "sysfs", 0)
	os.Symlink("/mnt/proc/version", filepath.Join(root, "var/lib/nvidia/proc-link"))
	r, err := Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if b, err := r.ReadFile("/var/lib/nvidia/log", 1024); err != nil || string(b) != "580.142\n" {
		t.Fatalf("a file on the container's own /var/lib mount: %q, %v", b, err)
	}
	if locked, _, err := r.lockHolder("/var/lib/nvidia/log"); err != nil || locked {
		t.Fatalf("a lock on the container's own /var/lib mount: %v, %v", locked, err)
	}
	for _, p := range []string{"/var/lib/nvidia/proc-link", "/mnt/proc/version", "/mnt/sys/kernel/uevent_seqnum"} {
		b, err := r.ReadFile(p, 1024)
		var special *SpecialFSError
		if !errors.As(err, &special) {
			t.Errorf("%s: read %q, %v; want a SpecialFSError", p, b, err)
			continue
		}
		if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "mount a regular file system there") {
			t.Errorf("%s: the error does not name the path and the fix: %v", p, err)
		}
	}
}

// Through a pidfd the root opened is the process's own, and once the
// process has ended it is an error, never the root of whatever process got
// its pid since.
func TestOpenProcessFollowsThePidfd(t *testing.T) {
	root, pid := chrooted(t)
	os.WriteFile(filepath.Join(root, "inside"), []byte("the container's"), 0o644)
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	r, err := OpenProcess(pidfd)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.ReadFile("/inside", 64)
	r.Close()
	if err != nil || string(b) != "the container's" {
		t.Fatalf("read %q, %v", b, err)
	}
	unix.Kill(pid, unix.SIGKILL)
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
	if r, err := OpenProcess(pidfd); err == nil {
		r.Close()
		t.Fatal("opened the root of a process that has ended")
	}
}
