package main

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvmlgpu"
)

// nvmlTimeout bounds one NVML listing, which can block on a wedged driver.
const nvmlTimeout = 30 * time.Second

// refreshGPUCache brings <state>/gpus.json, what NVML knows of this boot's
// GPUs, up to date for the hookscript, which has no NVML (nvdev.CachedGPUs
// says who writes and reads it). NVML is asked only when the boot, driver or
// set of GPUs changed, and only for the real host's paths (NVML describes
// this machine, not a relocated tree). Failing only leaves the cache stale.
func refreshGPUCache(p config.Paths, log zerolog.Logger) {
	if p.Proc != "/proc" || p.Dev != "/dev" {
		return
	}
	if _, err := nvdev.LoadedVersion(p.Sys, p.Proc); err != nil {
		return // no driver: nothing to list
	}
	c := nvdev.CachedGPUs{Lister: nvdev.Deadline{Lister: nvmlgpu.New(), Timeout: nvmlTimeout},
		Path: filepath.Join(p.State, "gpus.json"), Proc: p.Proc, Sys: p.Sys}
	if _, err := c.GPUs(); err != nil && !errors.Is(err, nvmlgpu.ErrLibraryNotFound) {
		log.Warn().Err(err).Msgf("NVML's GPU list was not cached for the hookscript: %v", err)
	}
}
