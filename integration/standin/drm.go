package standin

import (
	"fmt"
	"os"
	"path/filepath"
)

// DRMMajor is the DRM subsystem's character major (drm_core, fixed).
const DRMMajor = 226

// AddDRM gives the GPU at pci the DRM nodes nvidia-drm makes for it, as the
// kernel shows them: <sys>/class/drm/card<card> and renderD<128+card>,
// each with a device link to the PCI device's directory and a dev file
// "226:<minor>", and the nodes /dev/dri/card<card>, /dev/dri/renderD<128+card>
// (root:root 0660 here; the render group owns them on a real host). The
// card number is the kernel's probe order, which need not follow the GPUs'
// indexes: tests give them out of order.
func (h *Host) AddDRM(pci string, card int) error {
	dev := filepath.Join(h.Sys, "devices/pci0000:00", pci)
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	for _, n := range []struct {
		name  string
		minor int
	}{{fmt.Sprintf("card%d", card), card}, {fmt.Sprintf("renderD%d", 128+card), 128 + card}} {
		dir := filepath.Join(h.Sys, "class/drm", n.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		link := filepath.Join(dir, "device")
		_ = os.Remove(link)
		rel, err := filepath.Rel(dir, dev)
		if err != nil {
			return err
		}
		if err := os.Symlink(rel, link); err != nil {
			return err
		}
		if err := writeFile(filepath.Join(dir, "dev"), fmt.Sprintf("%d:%d\n", DRMMajor, n.minor)); err != nil {
			return err
		}
		if err := h.MakeNode("dri/"+n.name, DRMMajor, n.minor, 0o660); err != nil {
			return err
		}
	}
	return nil
}
