package main

import (
	"errors"
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
