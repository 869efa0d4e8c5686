package fdguard

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A descriptor this process inherited without close-on-exec (as from an
// admin's shell) reaches a program it runs until CloseOnExec; after it,
// only what is handed over does.
func TestInheritedDescriptorsDoNotCrossAnExec(t *testing.T) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Inherited: not close-on-exec, as a shell's `exec 7<file` leaves it.
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	visible := func() bool {
		// The shell's own descriptors are above 9; ours is below.
		out, err := exec.Command("/bin/sh", "-c", "ls /proc/self/fd").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range strings.Fields(string(out)) {
			if n == strconv.Itoa(fd) {
				return true
			}
		}
		return false
	}
	if !visible() {
		t.Fatalf("descriptor %d does not reach a child even before CloseOnExec: the test shows nothing", fd)
	}
	if err := CloseOnExec(); err != nil {
		t.Fatal(err)
	}
	if visible() {
		t.Errorf("descriptor %d reached a child after CloseOnExec", fd)
	}
	// Still usable here.
	if _, err := f.Seek(0, 0); err != nil {
		t.Errorf("the descriptor itself was closed: %v", err)
	}
}
