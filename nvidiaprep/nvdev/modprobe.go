package nvdev

import (
	"context"
	"time"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
)

// ExecModprobe runs the real nvidia-modprobe, for at most Timeout. Wire it
// only for the real host: it acts on the real /dev and kernel modules.
type ExecModprobe struct {
	Path    string
	Timeout time.Duration
}

// Modprobe implements Modprober.
func (m ExecModprobe) Modprobe(args ...string) error {
	_, err := hostcmd.Exec{Timeout: m.Timeout}.Run(context.Background(), hostcmd.Command{Name: m.Path, Args: args})
	return err
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
