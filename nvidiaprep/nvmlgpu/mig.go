package nvmlgpu

import (
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"nvidiaprep/nvidiaprep/nvdev"
)

// MIGs implements gpucache.NVML: every MIG device of every GPU in MIG
// mode, with its UUID, parent (index, minor, PCI bus id), GPU instance and
// compute instance ids, as NVML reports them (GetMigDeviceHandleByIndex,
// GetGpuInstanceId, GetComputeInstanceId). Their capabilities' minors and
// modes are procfs's (nvdev.ProcMIGs); nvdev.WithUUIDs joins the two.
func (l Lister) MIGs() ([]nvdev.MIG, error) {
	if err := l.init(); err != nil {
		return nil, err
	}
	defer l.lib.Shutdown()
	count, ret := l.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML: counting GPUs: %s", l.lib.ErrorString(ret))
	}
	var out []nvdev.MIG
	for i := 0; i < count; i++ {
		g, err := l.gpu(i)
		if err != nil {
			return nil, err
		}
		d, _ := l.lib.DeviceGetHandleByIndex(i)
		mode, _, ret := d.GetMigMode()
		if ret == nvml.ERROR_NOT_SUPPORTED || ret == nvml.SUCCESS && mode != nvml.DEVICE_MIG_ENABLE {
			continue
		}
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: GPU %d MIG mode: %s", i, l.lib.ErrorString(ret))
		}
		max, ret := d.GetMaxMigDeviceCount()
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("NVML: GPU %d MIG device count: %s", i, l.lib.ErrorString(ret))
		}
		for j := 0; j < max; j++ {
			m, ret := d.GetMigDeviceHandleByIndex(j)
			if ret == nvml.ERROR_NOT_FOUND || ret == nvml.ERROR_INVALID_ARGUMENT {
				continue // no MIG device in this slot
			}
			if ret != nvml.SUCCESS {
				return nil, fmt.Errorf("NVML: GPU %d MIG device %d: %s", i, j, l.lib.ErrorString(ret))
			}
			uuid, r1 := m.GetUUID()
			gi, r2 := m.GetGpuInstanceId()
			ci, r3 := m.GetComputeInstanceId()
			if r1 != nvml.SUCCESS || r2 != nvml.SUCCESS || r3 != nvml.SUCCESS {
				return nil, fmt.Errorf("NVML: GPU %d MIG device %d: UUID %s, GI %s, CI %s", i, j, l.lib.ErrorString(r1), l.lib.ErrorString(r2), l.lib.ErrorString(r3))
			}
			out = append(out, nvdev.MIG{UUID: uuid, GPU: g.Index, Minor: g.Minor, PCIBusID: g.PCIBusID, GI: gi, CI: ci})
		}
	}
	return out, nil
}
