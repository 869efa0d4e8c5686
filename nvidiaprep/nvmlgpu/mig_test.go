package nvmlgpu

import (
	"fmt"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"

	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/nvdev"
)

// migGPU is a go-nvml mock GPU (minor minor) with MIG devices, each
// {gi, ci}, in slots 0.. of up to 7; migOn false: MIG mode off.
func migGPU(minor int, migOn bool, devs ...[2]int) *mock.Device {
	mig := make([]*mock.Device, len(devs))
	for k, gc := range devs {
		gc, k := gc, k
		mig[k] = &mock.Device{
			GetUUIDFunc:              func() (string, nvml.Return) { return fmt.Sprintf("MIG-%d-%d-%d", minor, gc[0], gc[1]), nvml.SUCCESS },
			GetGpuInstanceIdFunc:     func() (int, nvml.Return) { return gc[0], nvml.SUCCESS },
			GetComputeInstanceIdFunc: func() (int, nvml.Return) { return gc[1], nvml.SUCCESS },
		}
	}
	mode := nvml.DEVICE_MIG_DISABLE
	if migOn {
		mode = nvml.DEVICE_MIG_ENABLE
	}
	return &mock.Device{
		GetUUIDFunc:        func() (string, nvml.Return) { return fmt.Sprintf("GPU-%d", minor), nvml.SUCCESS },
		GetMinorNumberFunc: func() (int, nvml.Return) { return minor, nvml.SUCCESS },
		GetPciInfoFunc: func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for i, c := range fmt.Sprintf("00000000:%02X:00.0", 0x10+minor) {
				p.BusId[i] = int8(c)
			}
			return p, nvml.SUCCESS
		},
		GetMigModeFunc:           func() (int, int, nvml.Return) { return mode, mode, nvml.SUCCESS },
		GetMaxMigDeviceCountFunc: func() (int, nvml.Return) { return 7, nvml.SUCCESS },
		GetMigDeviceHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) {
			if i >= len(mig) {
				return nil, nvml.ERROR_NOT_FOUND
			}
			return mig[i], nvml.SUCCESS
		},
	}
}

// NVML's MIG devices, joined with procfs's instances, give each instance
// that exists its UUID; NVML's list and procfs's agree on which exist.
func TestMIGsFromNVMLAgreeWithProcfs(t *testing.T) {
	gpus := []*mock.Device{migGPU(0, false), migGPU(1, true, [2]int{1, 0}, [2]int{2, 0})}
	lib := &mock.Interface{
		InitFunc:                   func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:               func() nvml.Return { return nvml.SUCCESS },
		ErrorStringFunc:            func(r nvml.Return) string { return fmt.Sprint(int(r)) },
		DeviceGetCountFunc:         func() (int, nvml.Return) { return len(gpus), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) { return gpus[i], nvml.SUCCESS },
	}
	migs, err := newWith(lib).MIGs()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) != 2 || migs[0].UUID != "MIG-1-1-0" || migs[0].GPU != 1 || migs[0].Minor != 1 || migs[1].GI != 2 || migs[0].PCIBusID != "0000:11:00.0" {
		t.Fatalf("MIGs %+v", migs)
	}
	// procfs shows GI 2 only: GI 1 was destroyed since NVML was asked.
	proc := []nvdev.MIG{{GPU: 1, Minor: 1, GI: 2, CI: 0}}
	joined := nvdev.WithUUIDs(proc, migs)
	if len(joined) != 1 || joined[0].UUID != "MIG-1-2-0" {
		t.Errorf("joined %+v", joined)
	}
	if picked, unmatched := nvdev.SelectMIGs(joined, gpusel.Of("MIG-1-1-0", "MIG-1-2-0")); len(picked) != 1 || len(unmatched) != 1 || unmatched[0] != "MIG-1-1-0" {
		t.Errorf("picked %+v, unmatched %v", picked, unmatched)
	}
}
