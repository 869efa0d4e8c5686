package lxctest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// The vmids that VMID hands out. Tests that need a fixed vmid for their
// meaning (a node bed's own container, a fixture's file names) use ids from
// 9400 up, outside this range; integration/bench uses 99xx.
const (
	firstVMID = 9000
	lastVMID  = 9399
)

// vmids are the ids handed out in this process and not yet released. It is
// the one piece of process-wide state of the kit: LXC's container names and
// cgroups are machine-wide, so uniqueness cannot belong to one Bed. Other
// processes (another package's test binary, another worktree's run, a
// `make test` beside a flocked run) are kept apart by a lock file per id
// (lockVMID), held while the id is taken and dropped by the kernel when a
// process dies.
var vmids = struct {
	sync.Mutex
	taken map[int]bool
	locks map[int]*os.File // the lock file of each id VMID took
}{taken: map[int]bool{}, locks: map[int]*os.File{}}

// VMID hands test t a container id that no other test of this process
// holds, that no other process holds (its lock file), and that is free on
// the machine (no /var/lib/lxc/<id>, no LXC cgroup of that id), and
// releases it when t ends. Use it for every
// container whose id carries no meaning of its own; build the expected
// messages and configuration tables from it. Take it with the t whose end
// closes the container's bed (a subtest's id is released when the subtest
// ends, while a parent's bed still holds its container).
func VMID(t testing.TB) int {
	t.Helper()
	id, err := takeVMID(func(id int) bool { return freeOnMachine(id) && lockVMID(id) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseVMID(id) })
	return id
}

// takeVMID takes the lowest id in range that is not taken here and that
// free accepts.
func takeVMID(free func(int) bool) (int, error) {
	vmids.Lock()
	defer vmids.Unlock()
	for id := firstVMID; id <= lastVMID; id++ {
		if !vmids.taken[id] && free(id) {
			vmids.taken[id] = true
			return id, nil
		}
	}
	return 0, fmt.Errorf("lxctest: no free vmid in %d-%d (this process holds %d; the rest have a /var/lib/lxc/<id>, an LXC cgroup or another process's lock in %s)", firstVMID, lastVMID, len(vmids.taken), os.TempDir())
}

func releaseVMID(id int) {
	vmids.Lock()
	defer vmids.Unlock()
	delete(vmids.taken, id)
	if f := vmids.locks[id]; f != nil {
		f.Close() // drops the flock
		delete(vmids.locks, id)
	}
}

// lockVMID takes id's lock file (<tmp>/lxctest-vmid-<id>.lock) for this
// process without waiting; false when another process holds it. Called
// with vmids held.
func lockVMID(id int) bool {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("lxctest-vmid-%d.lock", id)), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false
	}
	vmids.locks[id] = f
	return true
}

// freeOnMachine tells whether no container of that id is known to the
// machine's LXC (/var/lib/lxc/<id>) or has left a cgroup (running, or
// killed with its monitor: NewContainer would clear an empty one, but a
// free id needs no clearing).
func freeOnMachine(id int) bool {
	paths := append(cgroupDirs(id), filepath.Join("/var/lib/lxc", strconv.Itoa(id)))
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	return true
}
