package main

import (
	"strings"
	"testing"
	"time"
)

// A timed command that hangs, with a child holding its output, ends at the
// limit (its process group killed) as an error naming the command and the
// limit; one that finishes is timed, and one that fails is an error with
// what it printed.
func TestTimeCmdHasADeadline(t *testing.T) {
	d, err := timeCmdWithin(300*time.Millisecond, nil, "/bin/sh", "-c", "sleep 60 & sleep 60")
	if err == nil || !strings.Contains(err.Error(), "/bin/sh -c sleep 60 & sleep 60 did not finish within 300ms") {
		t.Errorf("a hanging command: %v after %v, want the deadline's error naming it", err, d)
	}
	if d, err := timeCmdWithin(time.Minute, nil, "/bin/true"); err != nil || d <= 0 {
		t.Errorf("/bin/true: %v, %v", d, err)
	}
	if _, err := timeCmdWithin(time.Minute, nil, "/bin/sh", "-c", "echo broken; exit 3"); err == nil || !strings.Contains(err.Error(), "exited 3") || !strings.Contains(err.Error(), "broken") {
		t.Errorf("a failing command: %v, want its status and output", err)
	}
}
