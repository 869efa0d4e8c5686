package nvmlgpu

import (
	"errors"
	"fmt"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxh100"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/server"
)

func TestGPUsFromMockDGXH100(t *testing.T) {
	srv := dgxh100.New()
	// The mock leaves PciInfo.BusId empty; give each device NVML's 8-digit form.
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		id := fmt.Sprintf("00000000:%02X:00.0", 0x18+i)
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for j := range id {
				p.BusId[j] = int8(id[j])
			}
			return p, nvml.SUCCESS
		}
	}
	gpus, err := newWith(srv).GPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 8 {
		t.Fatalf("want 8 GPUs, got %d", len(gpus))
	}
	seen := map[string]bool{}
	for i, g := range gpus {
		if g.Index != i || g.Minor != i {
			t.Errorf("GPU %d: index %d minor %d", i, g.Index, g.Minor)
		}
		if len(g.UUID) < 5 || g.UUID[:4] != "GPU-" || seen[g.UUID] {
			t.Errorf("GPU %d: bad or repeated UUID %q", i, g.UUID)
		}
		seen[g.UUID] = true
		if want := fmt.Sprintf("0000:%02x:00.0", 0x18+i); g.PCIBusID != want {
			t.Errorf("GPU %d: PCI bus id %q not normalised", i, g.PCIBusID)
		}
	}
	v, err := newWith(dgxh100.New()).DriverVersion()
	if err != nil || v != "550.54.15" {
		t.Fatalf("driver version %q, %v", v, err)
	}
}

func TestLibraryNotFound(t *testing.T) {
	lib := &mock.Interface{
		InitFunc:        func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND },
		ErrorStringFunc: func(nvml.Return) string { return "not found" },
	}
	if _, err := newWith(lib).GPUs(); !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("want ErrLibraryNotFound, got %v", err)
	}
}

// Details adds the model, memory and MIG mode NVML reports.
func TestDetailsFromMockDGXH100(t *testing.T) {
	srv := dgxh100.New()
	for i, d := range srv.Devices {
		dev := d.(*server.Device)
		id := fmt.Sprintf("00000000:%02X:00.0", 0x18+i)
		dev.GetPciInfoFunc = func() (nvml.PciInfo, nvml.Return) {
			var p nvml.PciInfo
			for j := range id {
				p.BusId[j] = int8(id[j])
			}
			return p, nvml.SUCCESS
		}
		if i == 1 { // GPU 1: MIG on after the next reset
			dev.GetMigModeFunc = func() (int, int, nvml.Return) { return nvml.DEVICE_MIG_DISABLE, nvml.DEVICE_MIG_ENABLE, nvml.SUCCESS }
		}
	}
	d, err := newWith(srv).Details()
	if err != nil || len(d) != 8 {
		t.Fatalf("%d GPUs, %v", len(d), err)
	}
	if d[0].Model != "NVIDIA H100 80GB HBM3" || d[0].MemoryBytes < 80<<30 || d[0].PCIBusID != "0000:18:00.0" {
		t.Errorf("GPU 0: %+v", d[0])
	}
	if d[1].MIG != "disabled" || d[1].MIGPending != "enabled" {
		t.Errorf("GPU 1 MIG %q pending %q", d[1].MIG, d[1].MIGPending)
	}
}
