package status

import (
	"path/filepath"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/nvdev"
)

// drmNodes lists the GPUs' DRM nodes (/dev/dri/cardN, renderDN, matched by
// PCI address in /sys/class/drm) beside the NVIDIA nodes: containers get
// those of their GPUs. It creates nothing.
func drmNodes(p config.Paths, nfs nvdev.NodeFS, gpus []nvdev.GPU) ([]DeviceNode, error) {
	byPCI, err := nvdev.DRMByPCI(p.Sys)
	if err != nil {
		return nil, err
	}
	var out []DeviceNode
	for _, g := range gpus {
		for _, n := range byPCI[g.PCIBusID] {
			d := DeviceNode{Name: n.Name, GPU: g.PCIBusID}
			if st, err := nfs.Stat(filepath.Join(p.Dev, n.Name)); err == nil && st.Char {
				d.Present = true
				d.Device = nvdev.Node{Major: st.Major, Minor: st.Minor}.Device()
			}
			if d.Device != n.Device() {
				d.Want = n.Device()
			}
			out = append(out, d)
		}
	}
	return out, nil
}
