package standin

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"
)

// Boot writes what a boot of the node sets in the stand-in procfs: a new
// /proc/sys/kernel/random/boot_id (a random UUID, as the kernel makes one
// per boot) and the boot time (btime in /proc/stat). It returns the id.
func (h *Host) Boot(at time.Time) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id := fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	if err := writeFile(filepath.Join(h.Proc, "sys/kernel/random/boot_id"), id+"\n"); err != nil {
		return "", err
	}
	if err := writeFile(filepath.Join(h.Proc, "stat"), fmt.Sprintf("cpu  1 0 1 100 0 0 0 0 0 0\nbtime %d\nprocesses 1\n", at.Unix())); err != nil {
		return "", err
	}
	return id, nil
}
