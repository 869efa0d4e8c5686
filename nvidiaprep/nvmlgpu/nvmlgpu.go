// Package nvmlgpu lists GPUs through NVML (go-nvml). It is the only package
// that touches NVML, behind nvdev.GPULister. go-nvml loads libnvidia-ml.so.1
// at run time, so this builds and runs on hosts without NVIDIA libraries:
// Init then fails with ERROR_LIBRARY_NOT_FOUND and callers fall back to procfs.
package nvmlgpu

import (
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"nvidiaprep/nvidiaprep/nvdev"
)

// Lister implements nvdev.GPULister with NVML.
type Lister struct {
	lib nvml.Interface
}

// New returns a Lister over the real NVML library.
func New() Lister { return Lister{lib: nvml.New()} }

// newWith returns a Lister over lib (go-nvml's mock servers in tests).
func newWith(lib nvml.Interface) Lister { return Lister{lib: lib} }

// ErrLibraryNotFound means libnvidia-ml.so.1 is not installed on this host.
var ErrLibraryNotFound = errors.New("NVML library libnvidia-ml.so.1 not found")

// GPUs implements nvdev.GPULister.
func (l Lister) GPUs() ([]nvdev.GPU, error) {
	if err := l.init(); err != nil {
		return nil, err
	}
	defer l.lib.Shutdown()
	count, ret := l.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("NVML: counting GPUs: %s", l.lib.ErrorString(ret))
	}
	gpus := make([]nvdev.GPU, 0, count)
	for i := 0; i < count; i++ {
		g, err := l.gpu(i)
		if err != nil {
			return nil, err
		}
		gpus = append(gpus, g)
	}
	return gpus, nil
}

// DriverVersion returns the driver version NVML reports.
func (l Lister) DriverVersion() (string, error) {
	if err := l.init(); err != nil {
		return "", err
	}
	defer l.lib.Shutdown()
	v, ret := l.lib.SystemGetDriverVersion()
	if ret != nvml.SUCCESS {
		return "", fmt.Errorf("NVML: driver version: %s", l.lib.ErrorString(ret))
	}
	return v, nil
}

func (l Lister) init() error {
	switch ret := l.lib.Init(); ret {
	case nvml.SUCCESS:
		return nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return ErrLibraryNotFound
	default:
		return fmt.Errorf("NVML init: %s", l.lib.ErrorString(ret))
	}
}

func (l Lister) gpu(i int) (nvdev.GPU, error) {
	d, ret := l.lib.DeviceGetHandleByIndex(i)
	if ret != nvml.SUCCESS {
		return nvdev.GPU{}, fmt.Errorf("NVML: GPU %d: %s", i, l.lib.ErrorString(ret))
	}
	uuid, ret := d.GetUUID()
	if ret != nvml.SUCCESS {
		return nvdev.GPU{}, fmt.Errorf("NVML: GPU %d UUID: %s", i, l.lib.ErrorString(ret))
	}
	minor, ret := d.GetMinorNumber()
	if ret != nvml.SUCCESS {
		return nvdev.GPU{}, fmt.Errorf("NVML: GPU %d minor number: %s", i, l.lib.ErrorString(ret))
	}
	pci, ret := d.GetPciInfo()
	if ret != nvml.SUCCESS {
		return nvdev.GPU{}, fmt.Errorf("NVML: GPU %d PCI info: %s", i, l.lib.ErrorString(ret))
	}
	return nvdev.GPU{Index: i, UUID: uuid, Minor: minor, PCIBusID: nvdev.NormalizePCIBusID(busID(pci.BusId))}, nil
}

// busID converts NVML's NUL-terminated C char array to a string.
func busID(raw [32]int8) string {
	b := make([]byte, 0, len(raw))
	for _, c := range raw {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	return string(b)
}
