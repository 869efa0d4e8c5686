package standin

import (
	"fmt"
	"os"
	"path/filepath"
)

// AddMIG makes a MIG device of the GPU with device minor gpuMinor appear as
// the driver shows one in procfs: the access files of its GPU instance gi
// and compute instance ci (/proc/driver/nvidia/capabilities/gpu<minor>/mig/
// gi<G>/access, .../ci<C>/access: DeviceFileMinor, DeviceFileMode 292 =
// 0444, DeviceFileModify 1) and their lines in
// /proc/driver/nvidia-caps/mig-minors (the driver's table; the real one
// lists every possible capability, this one those added and config and
// monitor).
func (h *Host) AddMIG(gpuMinor, gi, ci int, giCap, ciCap uint32) error {
	base := filepath.Join(h.Proc, "driver/nvidia/capabilities", fmt.Sprintf("gpu%d", gpuMinor), "mig", fmt.Sprintf("gi%d", gi))
	access := func(minor uint32) string {
		return fmt.Sprintf("DeviceFileMinor: %d\nDeviceFileMode: 292\nDeviceFileModify: 1\n", minor)
	}
	if err := writeFile(filepath.Join(base, "access"), access(giCap)); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(base, fmt.Sprintf("ci%d", ci), "access"), access(ciCap)); err != nil {
		return err
	}
	minors := filepath.Join(h.Proc, "driver/nvidia-caps/mig-minors")
	old, err := os.ReadFile(minors)
	if os.IsNotExist(err) {
		old, err = []byte("config 1\nmonitor 2\n"), nil
	}
	if err != nil {
		return err
	}
	return writeFile(minors, string(old)+fmt.Sprintf("gpu%d/gi%d/access %d\ngpu%d/gi%d/ci%d/access %d\n", gpuMinor, gi, giCap, gpuMinor, gi, ci, ciCap))
}

// RemoveMIG destroys a MIG device's compute instance in procfs (its
// access file goes, as when `nvidia-smi mig -dci` runs).
func (h *Host) RemoveMIG(gpuMinor, gi, ci int) error {
	return os.RemoveAll(filepath.Join(h.Proc, "driver/nvidia/capabilities", fmt.Sprintf("gpu%d", gpuMinor), "mig", fmt.Sprintf("gi%d", gi), fmt.Sprintf("ci%d", ci)))
}
