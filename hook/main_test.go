package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/logging"
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

// The task log names the container once: errors from ctexec and launch
// begin with "CT <vmid>:" themselves (post-start printed "CT 101: CT 101:").
func TestPostStartNamesTheContainerOnce(t *testing.T) {
	var b bytes.Buffer
	log := logging.New(&b, false)
	for _, err := range []error{
		fmt.Errorf("CT 101: connecting to systemd: %w", errors.New("no such file")),
		fmt.Errorf("CT 101: %w", ctexec.ErrStopped),
		errors.New("no worker program: nvidiaprep is not in /usr/bin"),
	} {
		b.Reset()
		log.Error().Err(err).Msg(ctMessage(101, err))
		if n := strings.Count(b.String(), "CT 101"); n != 1 {
			t.Errorf("%q names the container %d times", b.String(), n)
		}
	}
	// Another container's name in the error is not taken for this one's.
	if got := ctMessage(1010, errors.New("CT 101: x")); got != "CT 1010: CT 101: x" {
		t.Errorf("%q", got)
	}
}
