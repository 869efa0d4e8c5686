package nvdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// isDRMName tells a DRM node of a GPU: a primary node (cardN) or a render
// node (renderD<128+N>). Connectors (card0-DP-1) and control nodes are not.
// Matched by hand, not by a package-level regexp: the hook compiles nothing
// it may not use at every start.
func isDRMName(name string) bool {
	for _, prefix := range []string{"card", "renderD"} {
		if digits, ok := strings.CutPrefix(name, prefix); ok {
			return isDigits(digits)
		}
	}
	return false
}

// isDigits tells a non-empty run of ASCII digits.
func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// DRMNodes returns the DRM nodes (/dev/dri/cardN, /dev/dri/renderDN; major
// 226 when nvidia-drm is loaded) of the given GPUs, matched to each GPU by
// its PCI address: <sys>/class/drm/<node>/device links to the PCI device
// (../../../0000:01:00.0), never guessed from an index, since the DRM
// numbering follows probe order, not NVML's. Numbers come from
// <sys>/class/drm/<node>/dev. Nodes are named "dri/<node>" below the dev
// root, in the GPUs' order. A GPU without DRM nodes (nvidia-drm not loaded)
// has none; a node missing on the host is skipped.
func (f Finder) DRMNodes(gpus []GPU) ([]Node, error) {
	byPCI, err := DRMByPCI(f.Sys)
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, g := range gpus {
		for _, n := range byPCI[g.PCIBusID] {
			n.Path = filepath.Join(f.Dev, n.Name)
			st, err := OrReal(f.Nodes).Stat(n.Path)
			if err != nil || !st.Is(n) {
				f.warn(fmt.Sprintf("%s (%s of GPU %s) is not on the host as %s: not given", n.Path, n.Name, g.PCIBusID, n.Device()))
				continue
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// DRMByPCI lists <sys>/class/drm's card and render nodes by the PCI
// address of their device, each list in name order (card before renderD).
func DRMByPCI(sys string) (map[string][]Node, error) {
	dir := filepath.Join(sys, "class/drm")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing DRM nodes: %w", err)
	}
	out := map[string][]Node{}
	for _, e := range entries {
		name := e.Name()
		if !isDRMName(name) {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, name, "device"))
		if err != nil {
			continue // a virtual DRM device (vgem, simpledrm without PCI)
		}
		pci := NormalizePCIBusID(filepath.Base(target))
		if strings.Count(pci, ":") != 2 {
			continue
		}
		b, err := fsutil.ReadRegular(filepath.Join(dir, name, "dev"), 64)
		if err != nil {
			return nil, fmt.Errorf("listing DRM nodes: %w", err)
		}
		maj, min, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		major, err1 := strconv.ParseUint(maj, 10, 32)
		minor, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("listing DRM nodes: %s/%s/dev is %q, not major:minor", dir, name, b)
		}
		out[pci] = append(out[pci], Node{Name: "dri/" + name, Major: uint32(major), Minor: uint32(minor)})
	}
	for _, l := range out {
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	}
	return out, nil
}
