package nvdev

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// CachedGPUs remembers what Lister (NVML) said, keyed by what would change
// the answer: the boot, the loaded driver version and the GPUs the driver
// lists in <proc>/driver/nvidia/gpus. NVML stays the source of truth, but its
// initialisation (tens of milliseconds on a real H100) is paid once per boot
// and driver, not at every container start. A cache that cannot be read or
// written only costs the NVML call.
type CachedGPUs struct {
	Lister    GPULister
	Path      string // e.g. <state>/gpus.json
	Proc, Sys string
}

type gpuCache struct {
	Key  string `json:"key"`
	GPUs []GPU  `json:"gpus"`
}

// GPUs implements GPULister.
func (c CachedGPUs) GPUs() ([]GPU, error) {
	key, keyErr := c.key()
	if keyErr == nil {
		if b, err := fsutil.ReadRegular(c.Path, 1<<20); err == nil {
			var cached gpuCache
			if json.Unmarshal(b, &cached) == nil && cached.Key == key {
				return cached.GPUs, nil
			}
		}
	}
	gpus, err := c.Lister.GPUs()
	if err != nil || keyErr != nil {
		return gpus, err
	}
	if b, err := json.Marshal(gpuCache{Key: key, GPUs: gpus}); err == nil {
		if os.MkdirAll(filepath.Dir(c.Path), 0o755) == nil {
			_ = fsutil.WriteFileAtomic(c.Path, b, 0o644) // a cache: failing to keep it is harmless
		}
	}
	return gpus, nil
}

func (c CachedGPUs) key() (string, error) {
	boot, err := fsutil.ReadRegular(filepath.Join(c.Proc, "sys/kernel/random/boot_id"), 4096)
	if err != nil {
		return "", err
	}
	version, err := LoadedVersion(c.Sys, c.Proc)
	if err != nil {
		return "", err
	}
	entries, err := os.ReadDir(filepath.Join(c.Proc, "driver/nvidia/gpus"))
	if err != nil {
		return "", err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return strings.TrimSpace(string(boot)) + "|" + version + "|" + strings.Join(names, ","), nil
}
