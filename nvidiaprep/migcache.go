package main

import (
	"path/filepath"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvmlgpu"
)

// migCache is the node's cache of MIG device UUIDs, which pre-start
// reads (it needs no NVML): <state>/mig.json.
func migCache(p config.Paths) nvdev.MIGCache {
	return nvdev.MIGCache{Path: filepath.Join(p.State, "mig.json")}
}

// refreshMIGCache asks NVML for the MIG devices and rewrites the cache,
// when this is the real host (NVML describes this machine, not a relocated
// tree) and procfs shows a MIG instance (so that a node without MIG never
// pays NVML's start). The provisioning worker and `nvidiaprep status` call
// it: a MIG-<uuid> selector made since the last refresh is unknown to
// pre-start until one of them ran. A failure only leaves the cache as it
// was.
func refreshMIGCache(p config.Paths) error {
	if p.Proc != "/proc" {
		return nil
	}
	if gi, _ := filepath.Glob(filepath.Join(p.Proc, "driver/nvidia/capabilities/gpu*/mig/gi*")); len(gi) == 0 {
		return nil
	}
	_, err := migCache(p).Refresh(nvmlgpu.New())
	return err
}
