package nvdev_test

import (
	"os"
	"path/filepath"
	"testing"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/nvdev"
)

type countingLister struct {
	n    int
	gpus []nvdev.GPU
}

func (c *countingLister) GPUs() ([]nvdev.GPU, error) { c.n++; return c.gpus, nil }

func TestCachedGPUsAsksNVMLOncePerBootAndDriver(t *testing.T) {
	d := standin.Driver{Version: "580.159.04", UVMMajor: 509, GPUs: twoGPUs}
	h := host(t, d)
	boot := filepath.Join(h.Proc, "sys/kernel/random/boot_id")
	os.MkdirAll(filepath.Dir(boot), 0o755)
	os.WriteFile(boot, []byte("boot-1\n"), 0o644)
	nvml := &countingLister{gpus: []nvdev.GPU{{Index: 0, UUID: "GPU-a", Minor: 0}}}
	c := nvdev.CachedGPUs{Lister: nvml, Path: filepath.Join(t.TempDir(), "state", "gpus.json"), Proc: h.Proc, Sys: h.Sys}
	for i := 0; i < 3; i++ {
		gpus, err := c.GPUs()
		if err != nil || len(gpus) != 1 || gpus[0].UUID != "GPU-a" {
			t.Fatalf("got %+v, %v", gpus, err)
		}
	}
	if nvml.n != 1 {
		t.Fatalf("NVML asked %d times, want once", nvml.n)
	}
	// A new driver, a reboot or another set of GPUs asks NVML again.
	d.Version = "580.142"
	h.LoadDriver(d)
	c.GPUs()
	os.WriteFile(boot, []byte("boot-2\n"), 0o644)
	c.GPUs()
	os.RemoveAll(filepath.Join(h.Proc, "driver/nvidia/gpus", twoGPUs[0].PCIBusID))
	c.GPUs()
	if nvml.n != 4 {
		t.Fatalf("NVML asked %d times, want 4", nvml.n)
	}
}
