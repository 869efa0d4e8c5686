package nvdev

import (
	"path/filepath"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// BootID is this boot's id, <proc>/sys/kernel/random/boot_id: a random
// UUID the kernel makes afresh at each boot, which tells facts recorded in
// this boot (a loaded driver, a GPU cache) from an earlier boot's.
func BootID(proc string) (string, error) {
	b, err := fsutil.ReadRegular(filepath.Join(proc, "sys/kernel/random/boot_id"), 128)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
