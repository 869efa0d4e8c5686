package filelock

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLockExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "locks", "101.lock")
	a, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrBusy) {
		t.Fatalf("second lock: want ErrBusy, got %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := Wait(ctx, path); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a held lock: want the deadline, got %v", err)
	}
	a.Unlock()
	b, err := Wait(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	b.Unlock()
}

// TestWaitAnyLimitsHolders runs WaitAnyOwned's loop with flock's locks,
// which exclude each other within one process.
func TestWaitAnyLimitsHolders(t *testing.T) {
	prefix := filepath.Join(t.TempDir(), "slot")
	x, err := waitAny(context.Background(), prefix, 2, TryLock)
	if err != nil {
		t.Fatal(err)
	}
	y, err := waitAny(context.Background(), prefix, 2, TryLock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := waitAny(ctx, prefix, 2, TryLock); err == nil {
		t.Fatal("a third holder got a slot of two")
	}
	x.Unlock()
	z, err := waitAny(context.Background(), prefix, 2, TryLock)
	if err != nil {
		t.Fatal(err)
	}
	y.Unlock()
	z.Unlock()
}
