package nvdev

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/fsutil"
)

// ExecModprobe runs the real nvidia-modprobe, for at most Timeout. Wire it
// only for the real host: it acts on the real /dev and kernel modules.
type ExecModprobe struct {
	Path    string
	Timeout time.Duration
}

// Modprobe implements Modprober.
func (m ExecModprobe) Modprobe(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), m.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, m.Path, args...)
	cmd.WaitDelay = time.Second // a child left holding its output does not hold us
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("%s %s did not finish within %v: %w", m.Path, strings.Join(args, " "), m.Timeout, ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", m.Path, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// FindModprobe finds nvidia-modprobe where NVIDIA's installer and packages
// put it, without $PATH (a hookscript gets no reliable environment); ""
// when there is none.
func FindModprobe() string {
	for _, p := range []string{"/usr/bin/nvidia-modprobe", "/usr/sbin/nvidia-modprobe", "/usr/local/bin/nvidia-modprobe", "/usr/local/sbin/nvidia-modprobe"} {
		if ok, _ := fsutil.IsExecutable(p); ok {
			return p
		}
	}
	return ""
}
