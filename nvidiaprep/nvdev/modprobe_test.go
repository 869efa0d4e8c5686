package nvdev

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An nvidia-modprobe that hangs, and leaves a child holding its output, is
// given up on at its deadline.
func TestModprobeHasADeadline(t *testing.T) {
	script := filepath.Join(t.TempDir(), "nvidia-modprobe")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nsleep 30 &\nexec sleep 30\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	err := ExecModprobe{Path: script, Timeout: 200 * time.Millisecond}.Modprobe("-u", "-c=0")
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("a hung nvidia-modprobe held pre-start %v", took)
	}
	if err == nil || !strings.Contains(err.Error(), "-u -c=0 did not finish within 200ms") {
		t.Errorf("error %v", err)
	}
}
