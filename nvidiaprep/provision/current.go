package provision

import (
	"context"

	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/installstate"
)

// current tells whether the running container already has version's
// libraries: a worker that takes the lock just after another one finished
// has nothing left to do.
func (w Worker) current(version string) bool {
	ct, err := ctexec.Open(w.Config.Paths.LXC, w.VMID)
	if err != nil {
		return false
	}
	defer ct.Close()
	root, err := ct.Root(context.Background())
	if err != nil {
		return false
	}
	defer root.Close()
	ok, _, err := installstate.Current(root, version)
	return err == nil && ok
}
