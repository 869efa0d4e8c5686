//go:build integration

package ctexec_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/nvidiaprep/ctexec"
)

func TestRunInsideARealContainer(t *testing.T) {
	bed := lxctest.NewTestBed(t)
	ct, err := bed.NewContainer(201, lxctest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	c, err := ctexec.Open(bed.LXCPath, 201)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if pid, err := c.InitPID(context.Background()); err != nil || pid <= 0 {
		t.Fatalf("init pid %d, %v", pid, err)
	}
	res, err := c.Run(context.Background(), []string{"sh", "-c", "cat; echo err >&2; cat /etc/hostname; exit 3"}, strings.NewReader("in\n"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Exit != 3 || res.Stdout.Raw() != "in\nct201\n" || res.Stderr.Raw() != "err\n" {
		t.Fatalf("got %+v", res)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if _, err := c.Run(ctx, []string{"sleep", "30"}, nil); !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 5*time.Second {
		t.Fatalf("deadline: %v after %v", err, time.Since(t0))
	}
	ct.Stop("", nil)
	if _, err := c.Run(context.Background(), []string{"true"}, nil); !errors.Is(err, ctexec.ErrStopped) {
		t.Fatalf("stopped container: %v", err)
	}
}

func BenchmarkAttachTrue(b *testing.B) {
	bed := lxctest.NewTestBed(b)
	ct, err := bed.NewContainer(202, lxctest.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		b.Fatal(err)
	}
	c, err := ctexec.Open(bed.LXCPath, 202)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r, err := c.Run(context.Background(), []string{"true"}, nil); err != nil || r.Exit != 0 {
			b.Fatal(r, err)
		}
	}
}
