// Package ctinit finds a running LXC container's init from the host without
// liblxc (no cgo): the hookscript's post-start looks into the container with
// it, so the hook starts even when liblxc cannot be loaded.
//
// LXC puts the container's processes in the cgroup its config names
// (Proxmox writes lxc.cgroup.dir.container = lxc/<vmid> with
// lxc.cgroup.relative = 0), below the cgroup of the host's pid 1 with a
// trailing /init.scope cut off (LXC's cgfsng for a container root starts:
// on a Proxmox node, systemd's /init.scope, so <cgroup2 mount>/lxc/<vmid>),
// and the container cannot move a process out of that subtree. The init is the one
// process there that is pid 1 of a pid namespace one level below the host's
// (NSpid "<host pid> 1"): the kernel writes that line, and a process of the
// container that starts a pid namespace of its own is a level deeper.
package ctinit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/lxcconf"
)

// ErrStopped means the container does not run (no cgroup, or no init in it).
var ErrStopped = errors.New("container is not running")

// Host is where the host's kernel tables are; filesystem roots are
// injectable for tests.
type Host struct {
	Cgroup string // the cgroup2 mount, /sys/fs/cgroup
	Proc   string // the kernel's process table, /proc
	// Base is the cgroup below which LXC puts the containers that root
	// starts, relative to Cgroup: "" for the mount's root (InitBase).
	Base string
}

// Real is the running host: its cgroup2 mount is /sys/fs/cgroup (Proxmox
// VE 7 and later), or /sys/fs/cgroup/unified on a host booted with the
// hybrid v1 layout (LXC's containers are in the cgroup2 hierarchy there too).
func Real() (Host, error) {
	for _, dir := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return Host{Cgroup: dir, Proc: "/proc", Base: InitBase("/proc")}, nil
		}
	}
	return Host{}, errors.New("no cgroup2 file system at /sys/fs/cgroup or /sys/fs/cgroup/unified")
}

// InitBase is LXC's base for the containers root starts with
// lxc.cgroup.relative = 0: the cgroup2 path of the host's pid 1 (proc's
// 1/cgroup), without a trailing /init.scope (systemd's own cgroup), relative
// to the mount; "" (the root) when it cannot be read. On a Proxmox node
// that is the root; on a host whose init is not systemd it may be a cgroup
// of its own.
func InitBase(proc string) string {
	b, err := fsutil.ReadRegular(filepath.Join(proc, "1", "cgroup"), 64<<10)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			p = strings.TrimSuffix(filepath.Clean("/"+strings.TrimSpace(p)), "/init.scope")
			return strings.TrimPrefix(p, "/")
		}
	}
	return ""
}

// Limits of the walk through the container's cgroups: the container creates
// sub-cgroups, so their number is the container's to choose.
const (
	maxCgroups = 4096
	maxPIDs    = 65536
)

// CgroupDir is the container's cgroup, relative to the cgroup2 mount, from
// its generated LXC config: lxc.cgroup.dir.container, or LXC's default
// lxc.payload.<vmid>.
func CgroupDir(config []byte, vmid int) (string, error) {
	entries, err := lxcconf.Entries(config)
	if err != nil {
		return "", err
	}
	dir := "lxc.payload." + strconv.Itoa(vmid)
	for _, e := range entries {
		if e.Key == "lxc.cgroup.dir.container" && e.Value != "" {
			dir = e.Value
		}
	}
	dir = filepath.Clean("/" + dir)[1:]
	if dir == "" {
		return "", fmt.Errorf("lxc.cgroup.dir.container names the cgroup root")
	}
	return dir, nil
}

// Init opens a pidfd of the init of the container whose cgroup is dir
// (CgroupDir), below h.Base. The pidfd keeps naming that process even if
// the pid is reused; it is checked again after it was opened.
func (h Host) Init(dir string) (*os.File, error) {
	dir = filepath.Join(h.Base, dir)
	pid, err := h.findInit(filepath.Join(h.Cgroup, dir))
	if err != nil {
		return nil, err
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil, ErrStopped
		}
		return nil, fmt.Errorf("pidfd_open of its init %d: %w", pid, err)
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	// The pid could have ended and been reused between the look and the
	// open: the process the pidfd names must still be that init.
	if !h.isInit(pid) || !h.inCgroup(pid, dir) {
		f.Close()
		return nil, ErrStopped
	}
	return f, nil
}

// Root opens the running container's root through its init's pidfd (ctfs).
func (h Host) Root(dir string) (*ctfs.Root, error) {
	f, err := h.Init(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ctfs.OpenProcess(int(f.Fd()))
}

// findInit walks the cgroup subtree breadth first (the init is near its
// top: LXC starts it in the container's cgroup, or its inner ns/, and
// systemd moves itself to init.scope below that).
func (h Host) findInit(top string) (int, error) {
	queue := []string{top}
	seen, pids := 0, 0
	for len(queue) > 0 && seen < maxCgroups {
		dir := queue[0]
		queue = queue[1:]
		seen++
		procs, err := fsutil.ReadRegular(filepath.Join(dir, "cgroup.procs"), 1<<20)
		if errors.Is(err, os.ErrNotExist) && dir == top {
			return 0, ErrStopped
		}
		if err != nil {
			continue // removed meanwhile
		}
		for _, f := range strings.Fields(string(procs)) {
			if pids++; pids > maxPIDs {
				return 0, fmt.Errorf("no init among the first %d processes of cgroup %s", maxPIDs, top)
			}
			if pid, err := strconv.Atoi(f); err == nil && h.isInit(pid) {
				return pid, nil
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		var subs []string
		for _, e := range entries {
			if e.IsDir() {
				subs = append(subs, filepath.Join(dir, e.Name()))
			}
		}
		sort.Strings(subs)
		queue = append(queue, subs...)
	}
	if len(queue) > 0 {
		return 0, fmt.Errorf("no init in the first %d cgroups below %s", maxCgroups, top)
	}
	return 0, ErrStopped
}

// isInit tells whether pid is pid 1 of a pid namespace directly below the
// one of h.Proc.
func (h Host) isInit(pid int) bool {
	b, err := fsutil.ReadRegular(filepath.Join(h.Proc, strconv.Itoa(pid), "status"), 64<<10)
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("NSpid:")); ok {
			f := strings.Fields(string(v))
			return len(f) == 2 && f[1] == "1"
		}
	}
	return false
}

// inCgroup tells whether pid's cgroup2 path is dir or below it.
func (h Host) inCgroup(pid int, dir string) bool {
	b, err := fsutil.ReadRegular(filepath.Join(h.Proc, strconv.Itoa(pid), "cgroup"), 64<<10)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			p = strings.TrimPrefix(p, "/")
			return p == dir || strings.HasPrefix(p, dir+"/")
		}
	}
	return false
}
