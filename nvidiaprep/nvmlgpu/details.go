package nvmlgpu

import (
	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"nvidiaprep/nvidiaprep/nvdev"
)

// Details is what NVML says of a GPU beyond what pre-start needs: its model,
// memory and MIG mode, for `nvidiaprep gpus`. A zero or empty field is
// unknown (NVML did not say, or the GPU has no MIG).
type Details struct {
	nvdev.GPU
	Model       string
	MemoryBytes uint64
	// MIG is "enabled", "disabled" or "" (not supported or unknown);
	// MIGPending is the mode after the next GPU reset when it differs.
	MIG, MIGPending string
}

// Details lists the GPUs with their details.
func (l Lister) Details() ([]Details, error) {
	gpus, err := l.GPUs()
	if err != nil {
		return nil, err
	}
	if err := l.init(); err != nil {
		return nil, err
	}
	defer l.lib.Shutdown()
	out := make([]Details, len(gpus))
	for i, g := range gpus {
		out[i].GPU = g
		d, ret := l.lib.DeviceGetHandleByIndex(g.Index)
		if ret != nvml.SUCCESS {
			continue
		}
		if name, ret := d.GetName(); ret == nvml.SUCCESS {
			out[i].Model = name
		}
		if mem, ret := d.GetMemoryInfo(); ret == nvml.SUCCESS {
			out[i].MemoryBytes = mem.Total
		}
		if cur, pending, ret := d.GetMigMode(); ret == nvml.SUCCESS {
			out[i].MIG, out[i].MIGPending = migMode(cur), migMode(pending)
			if out[i].MIGPending == out[i].MIG {
				out[i].MIGPending = ""
			}
		}
	}
	return out, nil
}

func migMode(m int) string {
	if m == nvml.DEVICE_MIG_ENABLE {
		return "enabled"
	}
	return "disabled"
}
