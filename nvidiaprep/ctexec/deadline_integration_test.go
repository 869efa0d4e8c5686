//go:build integration

package ctexec_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/nvidiaprep/ctexec"
)

// A command that leaves a process holding its output ends when it ends,
// with what it wrote; one that outlives its deadline, with a background
// process holding its output too, is given up on soon after the deadline.
func TestRunDoesNotWaitForBackgroundProcesses(t *testing.T) {
	bed := lxctest.NewTestBed(t)
	ct, err := bed.NewContainer(9730, lxctest.Options{Init: lxctest.ShLoop})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	c, err := ctexec.Open(bed.LXCPath, 9730)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t0 := time.Now()
	r, err := c.Run(context.Background(), []string{"sh", "-c", "sleep 60 & echo started; exit 4"}, nil)
	if err != nil || r.Exit != 4 || r.Stdout.Raw() != "started\n" {
		t.Fatalf("got %+v, %v", r, err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("Run waited %v for a background process", took)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 = time.Now()
	_, err = c.Run(ctx, []string{"sh", "-c", "sleep 60 & sleep 60"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the deadline", err)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("Run took %v past a 300ms deadline", took)
	}
}
