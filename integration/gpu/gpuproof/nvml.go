package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvmlgpu"
)

// nvmlCalls is how often the product's NVML listing is timed.
const nvmlCalls = 10

// nvmlReport prints what nvmlgpu (the product's only NVML code) lists, how
// long each listing takes (each is a full init, list, shutdown, as in one
// pre-start), and more from NVML directly: versions, names, memory,
// persistence and MIG modes.
func nvmlReport(w io.Writer) ([]nvdev.GPU, error) {
	fmt.Fprintf(w, "\nnvmlgpu.New().GPUs() (what pre-start calls), %d times:\n", nvmlCalls)
	var gpus []nvdev.GPU
	var times []time.Duration
	for i := 0; i < nvmlCalls; i++ {
		t0 := time.Now()
		g, err := nvmlgpu.New().GPUs()
		times = append(times, time.Since(t0))
		if err != nil {
			fmt.Fprintf(w, "  error: %v\n", err)
			return nil, err
		}
		gpus = g
	}
	for _, g := range gpus {
		fmt.Fprintf(w, "  index=%d uuid=%s minor=%d pci=%s\n", g.Index, g.UUID, g.Minor, g.PCIBusID)
	}
	first := times[0]
	slices.Sort(times)
	fmt.Fprintf(w, "nvml_gpus_first_ms=%.1f\nnvml_gpus_median_ms=%.1f\nnvml_gpus_max_ms=%.1f\ngpu_count=%d\n",
		ms(first), ms(times[len(times)/2]), ms(times[len(times)-1]), len(gpus))

	lib := nvml.New()
	if ret := lib.Init(); ret != nvml.SUCCESS {
		fmt.Fprintf(w, "NVML init: %s\n", lib.ErrorString(ret))
		return gpus, nil
	}
	defer lib.Shutdown()
	drv, _ := lib.SystemGetDriverVersion()
	nv, _ := lib.SystemGetNVMLVersion()
	cuda, _ := lib.SystemGetCudaDriverVersion()
	fmt.Fprintf(w, "\nNVML directly: driver %s, NVML %s, CUDA driver API %d.%d\n", drv, nv, cuda/1000, cuda%1000/10)
	fmt.Fprintf(w, "nvml_driver_version=%s\nnvml_version=%s\n", drv, nv)
	n, _ := lib.DeviceGetCount()
	for i := 0; i < n; i++ {
		d, ret := lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			fmt.Fprintf(w, "  GPU %d: %s\n", i, lib.ErrorString(ret))
			continue
		}
		name, _ := d.GetName()
		mem, _ := d.GetMemoryInfo()
		pm, pmRet := d.GetPersistenceMode()
		cur, _, migRet := d.GetMigMode()
		mig := "not supported"
		if migRet == nvml.SUCCESS {
			mig = map[int]string{0: "disabled", 1: "enabled"}[cur]
		}
		persist := "unknown"
		if pmRet == nvml.SUCCESS {
			persist = map[nvml.EnableState]string{nvml.FEATURE_DISABLED: "off", nvml.FEATURE_ENABLED: "on"}[pm]
		}
		fmt.Fprintf(w, "  GPU %d: %s, %d MiB, persistence mode %s, MIG %s\n", i, name, mem.Total>>20, persist, mig)
		if i == 0 {
			fmt.Fprintf(w, "gpu0_name=%s\npersistence_mode=%s\n", name, persist)
		}
	}
	return gpus, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// devNumbers returns a device node's major and minor.
func devNumbers(st os.FileInfo) (uint32, uint32) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return unix.Major(s.Rdev), unix.Minor(s.Rdev)
	}
	return 0, 0
}
