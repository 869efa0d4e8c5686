package doctor

import (
	"fmt"

	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/record"
)

// apps: what the worker found wrong with the container engines inside a
// container (NVIDIA's container toolkit whose config cannot work there).
func (r *run) apps() {
	for _, ct := range r.cts {
		findings, err := record.LoadFindings(r.o.Config.Paths.State, ct.VMID)
		if err != nil {
			r.note("%s", ctmsg.Text(ct.VMID, err))
			continue
		}
		for _, f := range findings {
			r.problem("container-toolkit", ctmsg.Sprintf(ct.VMID, "%s", f), fmt.Sprintf("fix /etc/nvidia-container-runtime/config.toml inside %s (in an unprivileged container: no-cgroups = true under [nvidia-container-cli]), or use nvidiaprep's CDI spec (--device nvidia.com/gpu=0) without the toolkit; then `nvidiaprep provision %d`", ctmsg.Name(ct.VMID), ct.VMID))
		}
	}
}
