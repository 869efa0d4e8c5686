package lxctest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
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
// processes (other test binaries, another worktree's run) are kept apart by
// the flock that every real-container run takes (docs/testing.md).
var vmids = struct {
	sync.Mutex
	taken map[int]bool
}{taken: map[int]bool{}}

// VMID hands test t a container id that no other test of this process
// holds and that is free on the machine (no /var/lib/lxc/<id>, no LXC
// cgroup of that id), and releases it when t ends. Use it for every
// container whose id carries no meaning of its own; build the expected
// messages and configuration tables from it. Take it with the t whose end
// closes the container's bed (a subtest's id is released when the subtest
// ends, while a parent's bed still holds its container).
func VMID(t testing.TB) int {
	t.Helper()
	id, err := takeVMID(freeOnMachine)
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
	return 0, fmt.Errorf("lxctest: no free vmid in %d-%d (this process holds %d; the rest have a /var/lib/lxc/<id> or an LXC cgroup)", firstVMID, lastVMID, len(vmids.taken))
}

func releaseVMID(id int) {
	vmids.Lock()
	defer vmids.Unlock()
	delete(vmids.taken, id)
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
