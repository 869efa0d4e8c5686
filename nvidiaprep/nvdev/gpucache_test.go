package nvdev_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// Pre-start reads the cache without NVML (Lister nil): what the admin
// program wrote for this boot, driver and GPUs, and a miss otherwise.
func TestCachedGPUsReaderNeverAsksNVML(t *testing.T) {
	d := standin.Driver{Version: "580.159.04", UVMMajor: 509, GPUs: twoGPUs}
	h := host(t, d)
	boot := filepath.Join(h.Proc, "sys/kernel/random/boot_id")
	os.MkdirAll(filepath.Dir(boot), 0o755)
	os.WriteFile(boot, []byte("boot-1\n"), 0o644)
	path := filepath.Join(t.TempDir(), "gpus.json")
	reader := nvdev.CachedGPUs{Path: path, Proc: h.Proc, Sys: h.Sys}
	if _, err := reader.GPUs(); !errors.Is(err, nvdev.ErrCacheMiss) {
		t.Fatalf("no cache yet: got %v, want ErrCacheMiss", err)
	}
	writer := reader
	writer.Lister = &countingLister{gpus: []nvdev.GPU{{Index: 0, UUID: "GPU-a", Minor: 0}}}
	writer.GPUs()
	if gpus, err := reader.GPUs(); err != nil || len(gpus) != 1 || gpus[0].UUID != "GPU-a" {
		t.Fatalf("after the admin program wrote it: %+v, %v", gpus, err)
	}
	os.WriteFile(boot, []byte("boot-2\n"), 0o644)
	if _, err := reader.GPUs(); !errors.Is(err, nvdev.ErrCacheMiss) {
		t.Fatalf("after a reboot: got %v, want ErrCacheMiss", err)
	}
}

// hungLister stands for NVML blocked on a wedged driver.
type hungLister struct{ release chan struct{} }

func (h hungLister) GPUs() ([]nvdev.GPU, error) {
	<-h.release
	return nil, errors.New("released")
}

func TestHungNVMLGivesUpInTime(t *testing.T) {
	hung := hungLister{release: make(chan struct{})}
	defer close(hung.release)
	t0 := time.Now()
	_, err := nvdev.Deadline{Lister: hung, Timeout: 100 * time.Millisecond}.GPUs()
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("listing GPUs took %v with NVML hung", took)
	}
	if err == nil || !strings.Contains(err.Error(), "NVML did not answer within 100ms") {
		t.Errorf("got %v", err)
	}
}
