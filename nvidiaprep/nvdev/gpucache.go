package nvdev

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/fsutil"
)

// CachedGPUs remembers what Lister (NVML) said, keyed by what would change
// the answer: the boot, the loaded driver version and the GPUs the driver
// lists in <proc>/driver/nvidia/gpus. It is how facts that only NVML knows
// reach the hookscript, which has no NVML (no cgo):
//   - The admin program writes it, with Lister NVML: the host driver unit at
//     every boot once the driver is loaded (before pve-guests starts the
//     onboot containers), and every provisioning worker. Each asks NVML only
//     when the key changed, so NVML's initialisation (tens of milliseconds on
//     a real H100) is paid once per boot and driver.
//   - Pre-start reads it with Lister nil and never asks NVML: a miss (no
//     file, or another boot, driver or set of GPUs) is ErrCacheMiss, and
//     pre-start goes on with what procfs says (every whole GPU's index, UUID,
//     PCI address and minor are there).
//
// A cache that cannot be read or written only costs the NVML call.
type CachedGPUs struct {
	Lister    GPULister // nil: read the cache only
	Path      string    // e.g. <state>/gpus.json
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
	if c.Lister == nil {
		return nil, ErrCacheMiss
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

// ErrCacheMiss means the GPU cache holds no answer for this boot, driver
// and set of GPUs, and CachedGPUs had no Lister to ask.
var ErrCacheMiss = errors.New("the GPU cache has no answer for this boot, driver and GPUs")

// Deadline gives up on a GPU listing (NVML, which can block on a wedged
// driver) that does not answer within Timeout. The call it gives up on goes
// on in the background until the process exits.
type Deadline struct {
	Lister  GPULister
	Timeout time.Duration
}

// GPUs implements GPULister.
func (d Deadline) GPUs() ([]GPU, error) {
	type result struct {
		gpus []GPU
		err  error
	}
	done := make(chan result, 1)
	go func() {
		g, err := d.Lister.GPUs()
		done <- result{g, err}
	}()
	select {
	case r := <-done:
		return r.gpus, r.err
	case <-time.After(d.Timeout):
		return nil, fmt.Errorf("NVML did not answer within %v (a hung driver?)", d.Timeout)
	}
}
