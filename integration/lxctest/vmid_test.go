package lxctest

import (
	"testing"
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
