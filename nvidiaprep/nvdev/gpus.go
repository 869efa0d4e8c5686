package nvdev

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// GPU is one physical GPU as the driver knows it.
type GPU struct {
	Index    int    // NVML index (PCI bus order)
	UUID     string // "GPU-..."
	PCIBusID string // normalised: "0000:01:00.0"
	Minor    int    // device minor: /dev/nvidia<Minor>
}

// GPULister lists the host's GPUs.
type GPULister interface {
	GPUs() ([]GPU, error)
}

// ProcGPUs lists GPUs from <proc>/driver/nvidia/gpus/*/information, the
// fallback when NVML is not available. Indexes follow PCI bus order, as NVML's
// do by default.
type ProcGPUs struct {
	Proc string
}

// GPUs implements GPULister.
func (p ProcGPUs) GPUs() ([]GPU, error) {
	dir := filepath.Join(p.Proc, "driver/nvidia/gpus")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing GPUs: %w", err)
	}
	var gpus []GPU
	for _, e := range entries {
		path := filepath.Join(dir, e.Name(), "information")
		f, err := fsutil.OpenRegular(path)
		if err != nil {
			return nil, fmt.Errorf("listing GPUs: %w", err)
		}
		g, err := ParseInformation(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("listing GPUs: %s: %w", path, err)
		}
		if g.PCIBusID == "" {
			g.PCIBusID = NormalizePCIBusID(e.Name())
		}
		gpus = append(gpus, g)
	}
	sort.Slice(gpus, func(i, j int) bool { return gpus[i].PCIBusID < gpus[j].PCIBusID })
	for i := range gpus {
		gpus[i].Index = i
	}
	return gpus, nil
}

// ParseInformation reads one /proc/driver/nvidia/gpus/<pci>/information file
// ("GPU UUID:", "Bus Location:", "Device Minor:" lines).
func ParseInformation(r io.Reader) (GPU, error) {
	g := GPU{Minor: -1}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.TrimSpace(key) {
		case "GPU UUID":
			g.UUID = value
		case "Bus Location":
			g.PCIBusID = NormalizePCIBusID(value)
		case "Device Minor":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return GPU{}, fmt.Errorf("bad Device Minor %q", value)
			}
			g.Minor = n
		}
	}
	if err := sc.Err(); err != nil {
		return GPU{}, err
	}
	if g.Minor < 0 {
		return GPU{}, errors.New("no \"Device Minor:\" line")
	}
	return g, nil
}

// NormalizePCIBusID writes a PCI bus id as "dddd:bb:dd.f" in lower case,
// whether NVML's 8-digit domain ("00000000:01:00.0"), a 4-digit one or none
// ("01:00.0") was given.
func NormalizePCIBusID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	parts := strings.Split(id, ":")
	switch len(parts) {
	case 2:
		return "0000:" + id
	case 3:
		domain := strings.TrimLeft(parts[0], "0")
		if len(domain) < 4 {
			domain = strings.Repeat("0", 4-len(domain)) + domain
		}
		return domain + ":" + parts[1] + ":" + parts[2]
	}
	return id
}

// ProcModels reads each GPU's "Model:" line from
// <proc>/driver/nvidia/gpus/*/information, by normalised PCI bus id; what
// cannot be read is left out.
func ProcModels(proc string) map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir(filepath.Join(proc, "driver/nvidia/gpus"))
	for _, e := range entries {
		b, err := fsutil.ReadRegular(filepath.Join(proc, "driver/nvidia/gpus", e.Name(), "information"), 1<<16)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "Model" {
				out[NormalizePCIBusID(e.Name())] = strings.TrimSpace(v)
			}
		}
	}
	return out
}
