package nvdev_test

import (
	"errors"
	"os"
	"testing"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/nvdev"
)

// BootID is the id the boot wrote, without its newline; a later boot's
// differs; with no procfs it is an error, which each caller judges.
func TestBootID(t *testing.T) {
	h, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nvdev.BootID(h.Proc); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no boot_id: %v, want not exist", err)
	}
	first, err := h.Boot(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := nvdev.BootID(h.Proc); err != nil || got != first {
		t.Errorf("BootID = %q, %v; want %q", got, err, first)
	}
	second, err := h.Boot(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := nvdev.BootID(h.Proc); got != second || got == first {
		t.Errorf("after a second boot BootID = %q, want %q (not the first boot's %q)", got, second, first)
	}
	// This machine's own procfs: a UUID.
	if got, err := nvdev.BootID("/proc"); err != nil || len(got) != 36 {
		t.Errorf("BootID(/proc) = %q, %v; want this boot's UUID", got, err)
	}
}
