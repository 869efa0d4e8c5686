package main

import (
	"fmt"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/gpucache"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvmlgpu"
)

// nvmlTimeout bounds one NVML listing, which can block on a wedged driver.
const nvmlTimeout = 30 * time.Second

// gpuCache is the node's cache of what only NVML knows, which pre-start
// reads without NVML.
func gpuCache(p config.Paths) gpucache.File {
	return gpucache.File{State: p.State, Proc: p.Proc, Sys: p.Sys}
}

// refreshGPUCache is the one writer of the GPU cache (package gpucache says
// who calls it and when): on the real host only (NVML describes this
// machine, not a relocated tree) and only with a driver loaded. Failing
// leaves the cache as it was: a start then goes on with procfs; the error
// says what that costs, for the caller to warn with.
func refreshGPUCache(p config.Paths) error {
	if p.Proc != "/proc" || p.Sys != "/sys" {
		return nil
	}
	if _, err := nvdev.LoadedVersion(p.Sys, p.Proc); err != nil {
		return nil // no driver: nothing to list
	}
	if _, _, err := gpuCache(p).Refresh(nvmlgpu.New(), nvmlTimeout); err != nil {
		return fmt.Errorf("%w; until a refresh succeeds, a MIG-<uuid> selector of an instance made since the last one matches nothing at its container's start", err)
	}
	return nil
}
