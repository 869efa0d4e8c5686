//go:build integration

package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/record"
)

// hostileTraps are the traps a privileged container's root sets, one set
// per round, at every path the host side reads or writes, pointing at the
// host's files and directories. @H@ is the host's canary directory, which
// does not exist inside the container. A round wants a correct install,
// unless it names the refusal the record must hold, or LXC's own.
var hostileTraps = []struct {
	name, script string
	refused      string   // "" wants a correct install; else the record's error names this
	unopened     []string // paths inside that the host must not open
	noStart      string   // LXC refuses to start the container, saying this
	init         string   // the container's init (lxctest.Options.Init)
	config       []string // the container's extra lxc.* lines
}{{
	name: "symlinks to host files",
	script: `set -e
mkdir -p /var/lib/nvidia /var/lib/nvidiaprep /usr/lib/nvidia
# nvidia-installer's record, pointing at a host file that says driver A is installed
ln -sfn @H@/nvidia-log /var/lib/nvidia/log
ln -sfn @H@/provisioning /var/lib/nvidiaprep/provisioning
ln -sfn /etc/shadow /var/lib/nvidiaprep/installed
ln -sfn @H@/installed.tmp /var/lib/nvidiaprep/installed.tmp
# the driver tree's mount target (create=dir), absent on the host
ln -sfn @H@/absent/drivers /var/lib/nvidiaprep/drivers
# apt's and dpkg's locks: a host file the host holds locked, /etc/shadow, host directories
ln -sfn @H@/lock-frontend /var/lib/dpkg/lock-frontend
ln -sfn /etc/shadow /var/lib/dpkg/lock
ln -sfn @H@/dir /var/cache/apt/archives/lock
ln -sfn @H@/dir/ /var/lib/apt/lists/lock
# the library directory
ln -sfn /etc/shadow /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
ln -sfn @H@/libnvidia-ml /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.` + driverA + `
ln -sfn @H@/dir /usr/lib/x86_64-linux-gnu/libcuda.so.1
ln -sfn @H@/dir /usr/lib64
ln -sfn /etc/shadow /usr/lib/nvidia/alternate-install-present
# a command whose output floods the worker (64 MiB)
mv /usr/bin/dpkg-query /usr/bin/dpkg-query.real
printf '#!/bin/sh\nhead -c 67108864 /dev/zero | tr "\\\\0" x\n' > /usr/bin/dpkg-query
chmod 755 /usr/bin/dpkg-query
`,
}, {
	name: "directory symlinks",
	script: `set -e
rm -rf /var/lib/nvidia /var/lib/nvidiaprep
# the whole state directory, and nvidia-installer's, to host directories
ln -sfn @H@/dir /var/lib/nvidiaprep
ln -sfn @H@/dir /var/lib/nvidia
`,
}, {
	name: "device nodes and fifos",
	script: `set -e
mkdir -p /var/lib/nvidia /var/lib/nvidiaprep
rm -f /var/lib/nvidia/log /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock
mkfifo /var/lib/nvidia/log
mknod /var/lib/nvidiaprep/provisioning c 1 3
mknod /var/lib/dpkg/lock-frontend c 1 3
mkfifo /var/lib/dpkg/lock
`,
	refused: "/var/lib/dpkg/lock-frontend is a character device, not a regular file",
	// Post-start reads the first two, the worker probes the locks; nothing
	// inside opens them before the refusal.
	unopened: []string{"/var/lib/nvidia/log", "/var/lib/nvidiaprep/provisioning", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"},
}, {
	// The host reads across the container's own mounts, but not into the
	// kernel's files: procfs and sysfs mounted inside, linked from where the
	// host reads (the host's memory figures as the install record).
	name: "links into procfs and sysfs mounted inside",
	script: `set -e
mkdir -p /var/lib/nvidia /var/lib/nvidiaprep /mnt/proc /mnt/sys
rm -f /var/lib/nvidia/log /var/lib/dpkg/lock
ln -s /mnt/proc/meminfo /var/lib/nvidia/log
ln -s /mnt/sys/kernel/uevent_seqnum /var/lib/nvidiaprep/provisioning
ln -s /mnt/proc/version /var/lib/dpkg/lock
`,
	refused: "/var/lib/dpkg/lock lies on a file system of type 0x9fa0 inside the container",
	// mounted at every start, before anything looks
	config: []string{"lxc.mount.entry = proc mnt/proc proc nosuid,nodev,noexec,create=dir 0 0", "lxc.mount.entry = sysfs mnt/sys sysfs ro,nosuid,nodev,noexec,create=dir 0 0"},
}, {
	// The driver tree's mount point is below /dev, which LXC mounts afresh:
	// a container that replaces the /dev of its file system with a link to
	// a host directory is not started.
	name: "dev linked to a host directory",
	script: `set -e
umount -l /dev
rm -rf /dev
ln -s @H@/dir /dev
`,
	noStart: `Failed to mount "/dev"`,
	init:    lxctest.ShLoop, // stops at once without /dev
}}

// A privileged container whose root has set traps at every path the host
// side touches, pointing at the host's files: after provisioning no host
// file was read, written or replaced, nothing of the host reached the logs,
// and the container got a correct install or a clear refusal.
func TestHostileContainerCannotReachTheHost(t *testing.T) {
	n := provisionNode(t, "[provision]\ndpkg_lock_timeout = \"15s\"\n")
	// The driver tree is extracted before the snapshot: it is host state the
	// containers must not change.
	cache := driverrun.Cache{Dir: filepath.Join(n.Host.Root, "cache")}
	if _, err := cache.Extract(context.Background(), driverA, ""); err != nil {
		t.Fatal(err)
	}
	// Made by pre-start: the overlay's empty layer, the parent of the
	// containers' copies of their device nodes.
	for _, d := range []string{cache.EmptyLayer(), filepath.Dir(nvdev.CopiesDir(n.Host.Dev, 0))} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := newCanaries(t)
	// A host process holds the canary lock file locked: a worker that
	// followed the container's lock-frontend link would wait for it.
	holder := exec.Command(holdlock, filepath.Join(h.dir, "lock-frontend"), "600")
	said, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	held := make(chan string, 1)
	go func() { line, _ := bufio.NewReader(said).ReadString('\n'); held <- line }()
	select {
	case line := <-held:
		if !strings.HasPrefix(line, "holding ") {
			t.Fatalf("holdlock: %q, want it to hold the canary lock", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("holdlock does not hold the canary lock after 30 s")
	}

	watched := []string{"/etc/shadow", h.dir, filepath.Join(n.Host.Root, "cache"), n.Host.Dev, n.Host.Sys, n.Host.Proc, n.Config}
	before := treeState(t, true, watched...)
	h.resetAtimes(t)
	atimes := h.atimes(t)

	for _, trap := range hostileTraps {
		vmid := lxctest.VMID(t) // the test's, as the bed that keeps its container
		t.Run(trap.name, func(t *testing.T) {
			ct := newCT(t, n, vmid, lxctest.Options{Init: trap.init, ExtraConfig: trap.config})
			prepareAny(t, ct, strings.ReplaceAll(trap.script, "@H@", h.dir), trap.init == "")
			peak := watchWorkerMemory(t, vmid)
			since := time.Now()
			s, err := ct.ProxmoxStart(n.Hook, n.Env())
			t.Cleanup(func() { ct.Stop(n.Hook, n.Env()) })
			if trap.noStart != "" {
				if err == nil || !strings.Contains(err.Error(), trap.noStart) {
					t.Errorf("started: %v; want LXC to refuse, naming %s", err, trap.noStart)
				}
				// LXC leaves the failed start's empty cgroups behind.
				for _, g := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
					os.Remove(fmt.Sprintf("%s/lxc.monitor/%d", g, vmid))
					os.Remove(fmt.Sprintf("%s/lxc/%d", g, vmid))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !s.PreStart.OK() || !s.PostStart.OK() {
				t.Fatalf("pre-start: %s\npost-start: %s", s.PreStart.Output, s.PostStart.Output)
			}
			opened := watchOpens(t, ct, trap.unopened)
			p, err := n.WaitProvisioned(vmid, since, 2*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if len(trap.unopened) > 0 {
				// Post-start ran before the watch: once more, watched.
				since = time.Now()
				if out, code := runbin.Exit(t, n.Hook, n.Env(), strconv.Itoa(vmid), "post-start"); code != 0 {
					t.Fatalf("post-start: exit %d\n%s", code, out)
				}
				if p, err = n.WaitProvisioned(vmid, since, 2*time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			if n := opened(); n > 0 {
				t.Errorf("the host opened %d times the container's device nodes and FIFOs %v", n, trap.unopened)
			}
			kib := peak()
			t.Logf("worker's peak memory: %d KiB", kib)
			if kib > 48<<10 {
				t.Errorf("the worker's memory peaked at %d KiB: a container's output is not bounded", kib)
			}
			log := n.WorkerLog(vmid)
			rec, _ := os.ReadFile(record.Path(n.StateDir(), vmid))
			h.wantNotLeaked(t, s.PreStart.Output+s.PostStart.Output+log+string(rec))
			if _, err := os.Lstat(filepath.Join(h.dir, "absent")); err == nil {
				t.Errorf("LXC created the driver tree's mount target on the host, following the container's link")
			}
			if trap.refused != "" {
				if p.Outcome != record.Failed || !strings.Contains(p.Error, trap.refused) {
					t.Errorf("want a refusal naming %s; record %+v\n%s", trap.refused, p, log)
				}
				return
			}
			if p.Outcome != record.Installed {
				t.Fatalf("record %+v\n%s", p, log)
			}
			wantInstalled(t, ct, driverA)
		})
	}
	h.wantAtimes(t, atimes)
	// The containers' own copies of their device nodes are nvidiaprep's,
	// made by pre-start below the host's dev root: the rest must not change.
	copies := filepath.Dir(nvdev.CopiesDir(n.Host.Dev, 0))
	wantSameTree(t, "host", without(before, copies), without(treeState(t, true, watched...), copies))
}

// prepareAny is prepare for a container with or without systemd.
func prepareAny(t *testing.T, ct *lxctest.CT, script string, systemd bool) {
	t.Helper()
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	if systemd {
		if err := ct.WaitSystemd(time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if out, code := sh(t, ct, script); code != 0 {
		t.Fatalf("%s: %s", script, out)
	}
	if _, err := ct.Stop("", nil); err != nil {
		t.Fatal(err)
	}
}

// canaries is a host directory of files and a directory that the
// container's links point at, each file with a unique content.
type canaries struct {
	dir    string
	paths  []string // the canaries, files and directories
	tokens []string
}

func newCanaries(t *testing.T) *canaries {
	t.Helper()
	h := &canaries{dir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(h.dir, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	h.paths = []string{h.dir, filepath.Join(h.dir, "dir")}
	files := map[string]string{
		// A valid install record of the host's version: a host that read it
		// would think the container current.
		"nvidia-log":    "1.0-580142 (" + driverA + ")\nNVIDIA Accelerated Graphics Driver for Linux-x86_64\n",
		"provisioning":  "",
		"installed.tmp": "",
		"libnvidia-ml":  "",
		"lock-frontend": "",
		"dir/inside":    "",
	}
	for name, content := range files {
		token := fmt.Sprintf("CANARY-%s-%d", name, time.Now().UnixNano())
		h.tokens = append(h.tokens, token)
		p := filepath.Join(h.dir, name)
		if err := os.WriteFile(p, []byte(content+token+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		h.paths = append(h.paths, p)
	}
	return h
}

// resetAtimes sets every canary's access time far before its change time,
// so that relatime records any later read (or listing), keeping its
// modification time.
func (h *canaries) resetAtimes(t *testing.T) {
	t.Helper()
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, p := range h.paths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, time.Unix(st.Mtim.Unix())); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *canaries) atimes(t *testing.T) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for _, p := range h.paths {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		out[p] = time.Unix(st.Atim.Unix())
	}
	return out
}

// wantAtimes fails for each canary read (or directory listed) since atimes.
func (h *canaries) wantAtimes(t *testing.T, before map[string]time.Time) {
	t.Helper()
	for p, at := range h.atimes(t) {
		if !at.Equal(before[p]) {
			t.Errorf("the host canary %s was read (access time %v, was %v)", p, at, before[p])
		}
	}
}

// wantNotLeaked fails when text holds a canary's content or a line of the
// host's /etc/shadow with a password.
func (h *canaries) wantNotLeaked(t *testing.T, text string) {
	t.Helper()
	for _, tok := range h.tokens {
		if strings.Contains(text, tok) {
			t.Errorf("the host file holding %s reached the logs:\n%s", tok, text)
		}
	}
	shadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(shadow), "\n") {
		if f := strings.Split(line, ":"); len(f) > 2 && len(f[1]) > 2 && strings.Contains(text, f[1]) {
			t.Errorf("the host's /etc/shadow entry of %s reached the logs", f[0])
		}
	}
}

// watchWorkerMemory samples the peak resident memory (VmHWM) of the
// container's provisioning worker until the test ends; peak returns the
// highest seen, in KiB.
func watchWorkerMemory(t *testing.T, vmid int) (peak func() int64) {
	t.Helper()
	var max atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			for _, pid := range workerPIDs(vmid) {
				if kib := vmHWM(pid); kib > max.Load() {
					max.Store(kib)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { close(done); <-stopped }) }
	t.Cleanup(stop)
	return func() int64 { stop(); return max.Load() }
}

func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kib
		}
	}
	return 0
}

// watchOpens watches the container's files at paths (inside it) for opens
// from now on; opened stops and returns how many it saw. Only opens that
// read or write count: O_PATH opens raise no event.
func watchOpens(t *testing.T, ct *lxctest.CT, paths []string) (opened func() int) {
	t.Helper()
	if len(paths) == 0 {
		return func() int { return 0 }
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if _, err := unix.InotifyAddWatch(fd, ct.RootFS()+p, unix.IN_OPEN); err != nil {
			unix.Close(fd)
			t.Fatal(err)
		}
	}
	return func() int {
		defer unix.Close(fd)
		buf := make([]byte, 64<<10)
		n, _ := unix.Read(fd, buf)
		events := 0
		for off := 0; off+unix.SizeofInotifyEvent <= n; events++ {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		return events
	}
}

// treeAttacks are what a privileged container's root tries on the node's
// shared driver tree, each printing "WROTE <how>" when it changed a file
// there. @T@ is the tree of the version installed.
var treeAttacks = []struct{ name, script string }{
	{"bind remount read-write", `mount -o remount,bind,rw /dev/.nvidiaprep/drivers && echo "mounted: remount,bind,rw"`},
	{"remount read-write", `mount -o remount,rw /dev/.nvidiaprep/drivers && echo "mounted: remount,rw"`},
	{"a second mount of the same source", `mkdir -p /mnt/again && src=$(awk '$5 == "/dev/.nvidiaprep/drivers" {print $4}' /proc/self/mountinfo) &&
mount --bind /dev/.nvidiaprep/drivers /mnt/again && mount -o remount,bind,rw /mnt/again && echo "mounted: a rw bind of $src" &&
printf '#!/bin/sh\necho planted >/planted-ran\n' >/mnt/again/@V@/nvidia-installer && echo "WROTE through /mnt/again"`},
}

// A privileged container's root tries every way it has to make the node's
// shared driver tree writable and plant an installer in it: each fails, the
// host's tree is unchanged, and the next container provisioned from the tree
// (an unprivileged victim) gets the real install, never the planted program.
func TestPrivilegedContainerCannotChangeTheSharedDriverTree(t *testing.T) {
	vmid := lxctest.VMID(t)
	vmid2 := lxctest.VMID(t)
	vmid3 := lxctest.VMID(t)
	n := provisionNode(t, "")
	cache := driverrun.Cache{Dir: filepath.Join(n.Host.Root, "cache")}
	if _, err := cache.Extract(context.Background(), driverA, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cache.EmptyLayer(), 0o755); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, true, cache.DriversDir(), cache.EmptyLayer())

	attacker := newCT(t, n, vmid, lxctest.Options{})
	_, _, _ = startProvisioned(t, n, attacker)
	plant := `printf '#!/bin/sh\necho planted >/planted-ran\nexit 0\n' >/dev/.nvidiaprep/drivers/@V@/nvidia-installer && echo "WROTE the installer"
mkdir /dev/.nvidiaprep/drivers/@V@/x && echo "WROTE a directory"`
	for _, a := range treeAttacks {
		script := strings.ReplaceAll(a.script+"\n"+plant, "@V@", driverA)
		out, _ := sh(t, attacker, script)
		t.Logf("%s: %s", a.name, out)
		if strings.Contains(out, "WROTE") {
			t.Errorf("%s: the privileged container changed the shared driver tree:\n%s", a.name, out)
		}
	}
	wantSameTree(t, "host", before, treeState(t, true, cache.DriversDir(), cache.EmptyLayer()))

	victim := newCT(t, n, vmid2, lxctest.Options{Unprivileged: true})
	_, p, _ := startProvisioned(t, n, victim)
	if p.Outcome != record.Installed {
		t.Fatalf("the victim's record: %+v\n%s", p, n.WorkerLog(vmid2))
	}
	wantInstalled(t, victim, driverA)
	if out, code := sh(t, victim, "cat /planted-ran"); code == 0 {
		t.Errorf("the planted installer ran in the victim: %s", out)
	}

	// A tree changed behind nvidiaprep's back (as through the read-only
	// bind of an older nvidiaprep, or by a host tool): the next install
	// says so and runs from the tree extracted again from the .run.
	planted := "#!/bin/sh\necho planted >/planted-ran\nexit 0\n"
	if err := os.WriteFile(filepath.Join(cache.Tree(driverA), "nvidia-installer"), []byte(planted), 0o755); err != nil {
		t.Fatal(err)
	}
	next := newCT(t, n, vmid3, lxctest.Options{Unprivileged: true})
	if _, p, _ := startProvisioned(t, n, next); p.Outcome != record.Installed {
		t.Fatalf("record after the tree changed: %+v\n%s", p, n.WorkerLog(vmid3))
	}
	wantInstalled(t, next, driverA)
	if out, code := sh(t, next, "cat /planted-ran"); code == 0 {
		t.Errorf("the installer planted in the node's tree ran: %s", out)
	}
	if log := n.WorkerLog(vmid3); !strings.Contains(log, `changed after its extraction ("nvidia-installer" changed); extracting it again from its .run`) {
		t.Errorf("the worker does not say the tree changed:\n%s", log)
	}
	if b, _ := os.ReadFile(filepath.Join(cache.Tree(driverA), "nvidia-installer")); string(b) == planted {
		t.Error("the planted installer is still in the node's tree")
	}
}

// A privileged container's root changes the device nodes it sees (mode,
// owner, times): they are its own copies, so the host's nodes stay as they
// were and another container still reaches the device through its own.
func TestPrivilegedContainerCannotChangeTheHostsDeviceNodes(t *testing.T) {
	vmid := lxctest.VMID(t)
	vmid2 := lxctest.VMID(t)
	n := newNode(t, "")
	nodes := []string{"nvidia0", "nvidiactl", "nvidia-uvm"}
	hostState := func() string {
		var b strings.Builder
		for _, name := range nodes {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(n.Host.Dev, name), &st); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s mode %o owner %d:%d ctime %d.%d\n", name, st.Mode, st.Uid, st.Gid, st.Ctim.Sec, st.Ctim.Nsec)
		}
		return b.String()
	}
	before := hostState()
	attacker := newCT(t, n, vmid, lxctest.Options{})
	start(t, n, attacker)
	out, code := sh(t, attacker, "chmod 000 /dev/nvidia0 /dev/nvidiactl /dev/nvidia-uvm && chown 1234:1234 /dev/nvidia0 && touch -d 2001-01-01 /dev/nvidiactl && stat -c '%a %u' /dev/nvidia0")
	if code != 0 || out != "0 1234" {
		t.Fatalf("the container's root could not change what it sees (exit %d): %s", code, out)
	}
	if after := hostState(); after != before {
		t.Errorf("the container changed the host's device nodes:\nbefore:\n%safter:\n%s", before, after)
	}
	// Its next start gives it copies as the host's nodes are again.
	if _, err := attacker.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	start(t, n, attacker)
	if out, _ := sh(t, attacker, "stat -c '%a %u' /dev/nvidia0"); out != "666 0" {
		t.Errorf("after a restart the container's /dev/nvidia0 is %q, want the host's 666 0", out)
	}
	other := newCT(t, n, vmid2, lxctest.Options{Unprivileged: true})
	start(t, n, other)
	for _, name := range nodes {
		wantOpen(t, other, "/dev/"+name, "No such device or address")
	}
}
