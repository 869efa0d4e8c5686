package runbin

import (
	"strings"
	"testing"
	"time"
)

func TestRunGivesOutputAndExitStatus(t *testing.T) {
	r, err := Cmd{Path: "/bin/sh", Args: []string{"-c", `echo out; echo err >&2; echo "$X $PWD"; exit 3`}, Env: []string{"X=x"}}.Run()
	if err != nil || r.Code != 3 || r.Stdout != "out\nx /\n" || r.Output != "out\nerr\nx /\n" {
		t.Fatalf("%+v, %v", r, err)
	}
}

func TestRunKillsAtItsLimit(t *testing.T) {
	start := time.Now()
	r, err := Cmd{Path: "/bin/sh", Args: []string{"-c", "echo started; sleep 60 & wait"}, Limit: 200 * time.Millisecond}.Run()
	if err == nil || !strings.Contains(err.Error(), "did not finish within") || r.Code != -1 || r.Output != "started\n" {
		t.Fatalf("%+v, %v", r, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("killed after %v: the child kept it waiting", took)
	}
}

func TestRunSaysWhenItCannotRun(t *testing.T) {
	if r, err := (Cmd{Path: "/nonexistent/bin"}).Run(); err == nil || r.Code != -1 {
		t.Fatalf("%+v, %v", r, err)
	}
}
