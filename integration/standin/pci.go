package standin

import (
	"fmt"
	"os"
	"path/filepath"
)

// AddPCIGPU writes an NVIDIA display controller into the stand-in sysfs
// the way the kernel's PCI core lays it out
// (<sys>/bus/pci/devices/<address>/{vendor,device,class,subsystem_vendor,subsystem_device},
// each "0x%04x" or "0x%06x" and a newline): present whether or not a
// driver is loaded, which is what the checks before an install read.
func (h *Host) AddPCIGPU(address string, device uint16) error {
	dir := filepath.Join(h.Sys, "bus", "pci", "devices", address)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stand-in PCI device: %w", err)
	}
	for name, value := range map[string]string{
		"vendor":           "0x10de\n",
		"device":           fmt.Sprintf("0x%04x\n", device),
		"class":            "0x030200\n", // 3D controller, as data-center GPUs are
		"subsystem_vendor": "0x10de\n",
		"subsystem_device": "0x0000\n",
	} {
		if err := writeFile(filepath.Join(dir, name), value); err != nil {
			return err
		}
	}
	return nil
}
