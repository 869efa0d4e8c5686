package provision

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/untrusted"
)

// installSize is about how many bytes an install writes: the regular files
// at the top of the version's extracted tree (libraries and programs; the
// kernel sources below it are not installed with --no-kernel-module).
func installSize(tree string) int64 {
	entries, err := os.ReadDir(tree)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}

// fullHint explains a failed install when a directory the installer
// writes to has less room than the install needs: "" when none is short,
// else a sentence with what to do, ending in "; ". scripts/space.sh
// measures the free space.
func (s session) fullHint(ctx context.Context, need int64) string {
	r, err := s.ct.Run(ctx, spaceScript.argv(), nil)
	if err != nil || r.Exit != 0 {
		return ""
	}
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout.Raw()), "\n") {
		dir, avail, ok := strings.Cut(line, " ")
		kib, err := strconv.ParseInt(strings.TrimSpace(avail), 10, 64)
		if !ok || err != nil || kib*1024 >= need {
			continue
		}
		return fmt.Sprintf("the container's file system is full: %s has %d KiB free, the driver needs about %d KiB: free space in it (or grow its disk: pct resize %d rootfs +1G), then restart it; ",
			untrusted.New(dir), kib, (need+1023)/1024, s.vmid())
	}
	return ""
}
