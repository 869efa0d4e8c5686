package lxctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestVMIDsAreUniqueAndReleased(t *testing.T) {
	var a, b int
	t.Run("hold two", func(t *testing.T) {
		a, b = VMID(t), VMID(t)
		if a == b || a < firstVMID || a > lastVMID || b < firstVMID || b > lastVMID {
			t.Fatalf("VMID gave %d and %d", a, b)
		}
		if id, err := takeVMID(func(id int) bool { return id != a && id != b }); err != nil || id == a || id == b {
			t.Fatalf("third id %d, %v", id, err)
		} else {
			releaseVMID(id)
		}
	})
	// The subtest ended: both ids are free again.
	vmids.Lock()
	defer vmids.Unlock()
	if vmids.taken[a] || vmids.taken[b] {
		t.Errorf("%d and %d still taken after their test ended", a, b)
	}
}

func TestVMIDSkipsIDsTakenOnTheMachine(t *testing.T) {
	busy := map[int]bool{firstVMID: true, firstVMID + 1: true}
	id, err := takeVMID(func(id int) bool { return !busy[id] })
	if err != nil || id != firstVMID+2 {
		t.Fatalf("got %d, %v; want %d", id, err, firstVMID+2)
	}
	releaseVMID(id)
	if _, err := takeVMID(func(int) bool { return false }); err == nil {
		t.Error("no free id on the machine, but takeVMID gave one")
	}
}

// An id another process holds is not handed out here: a second test binary
// (another package, a run beside a flocked one) never gets the same id.
func TestVMIDSkipsIDsAnotherProcessHolds(t *testing.T) {
	// The id VMID gives next, released here and held by flock(1).
	id := VMID(t)
	releaseVMID(id)
	lock := filepath.Join(os.TempDir(), fmt.Sprintf("lxctest-vmid-%d.lock", id))
	holder := exec.Command("flock", "-n", lock, "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	// Wait until flock(1) holds it: a try of our own then fails.
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := os.Open(lock)
		if err == nil {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			f.Close()
			if err != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("flock(1) did not take the lock within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := VMID(t); got == id {
		t.Fatalf("VMID gave %d, which another process holds", got)
	}
}
