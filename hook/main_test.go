package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/nvdev"
)

// hungLister stands for NVML blocked on a wedged driver.
type hungLister struct{ release chan struct{} }

func (h hungLister) GPUs() ([]nvdev.GPU, error) {
	<-h.release
	return nil, errors.New("released")
}

func TestHungNVMLFallsBackInTime(t *testing.T) {
	hung := hungLister{release: make(chan struct{})}
	defer close(hung.release)
	procfs := nvdev.ProcGPUs{Proc: t.TempDir()}
	var heard error
	l := nvdev.Fallback{Primary: deadlineLister{lister: hung, timeout: 100 * time.Millisecond}, Secondary: procfs,
		OnFallback: func(err error) { heard = err }}
	t0 := time.Now()
	l.GPUs()
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("listing GPUs took %v with NVML hung", took)
	}
	if heard == nil || !strings.Contains(heard.Error(), "NVML did not answer within 100ms") {
		t.Errorf("fallback heard %v", heard)
	}
}

// An nvidia-modprobe that hangs, and leaves a child holding its output, is
// given up on at its deadline.
func TestModprobeHasADeadline(t *testing.T) {
	script := filepath.Join(t.TempDir(), "nvidia-modprobe")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 30 &\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err := modprobe{path: script, timeout: 200 * time.Millisecond}.Modprobe("-u", "-c=0")
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("a hung nvidia-modprobe held pre-start %v", took)
	}
	if err == nil || !strings.Contains(err.Error(), "-u -c=0 did not finish within 200ms") {
		t.Errorf("error %v", err)
	}
}
