package hostcmd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func sh(script string) Command { return Command{Name: "/bin/sh", Args: []string{"-c", script}} }

// A non-zero exit is an *ExitError with the status and the output's error
// lines; stdout stays apart for parsing.
func TestExitIsAnError(t *testing.T) {
	c := sh("echo listing; echo 'E: Unable to locate package x' >&2; echo done; exit 100")
	res, err := Clean().Run(context.Background(), c)
	var e *ExitError
	if !errors.As(err, &e) || e.Code != 100 || e.Tail != "E: Unable to locate package x" {
		t.Fatalf("got %#v (%v)", err, err)
	}
	if want := c.String() + " exited 100: E: Unable to locate package x"; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if res.Stdout != "listing\ndone\n" || !strings.Contains(res.Output, "E: Unable") || !strings.Contains(res.Output, "done") {
		t.Errorf("result %+v", res)
	}
	if code, ok := ExitCode(err); !ok || code != 100 {
		t.Errorf("ExitCode %d %v", code, ok)
	}
	if _, err := Clean().Run(context.Background(), sh("exit 0")); err != nil {
		t.Errorf("exit 0: %v", err)
	}
}

// Without error lines the tail is the output's last lines.
func TestTail(t *testing.T) {
	if got := Tail("1\n2\n3\n4\n5\n6\n7\n\n"); got != "2 | 3 | 4 | 5 | 6 | 7" {
		t.Errorf("got %q", got)
	}
	if got := Tail("ERROR: a\nb\nE: c\nError: d\nERROR: e\nf\n"); got != "E: c | Error: d | ERROR: e" {
		t.Errorf("got %q", got)
	}
}

// A program that cannot be run is no exit.
func TestNotFound(t *testing.T) {
	_, err := Clean().Run(context.Background(), Command{Name: "/nonexistent/prog"})
	if _, ok := ExitCode(err); err == nil || ok || !strings.Contains(err.Error(), "/nonexistent/prog") {
		t.Fatalf("got %v", err)
	}
}

// The deadline kills the whole process group: a child holding the output
// does not keep Run waiting.
func TestTimeoutKillsTheGroup(t *testing.T) {
	e := Clean()
	e.Timeout = 200 * time.Millisecond
	t0 := time.Now()
	_, err := e.Run(context.Background(), sh("sleep 30 & sleep 30"))
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

// Clean gives a fixed environment plus the command's own; a nil Env is
// this process's.
func TestEnvironment(t *testing.T) {
	t.Setenv("HOSTCMD_TEST", "inherited")
	c := sh(`echo "$LC_ALL|$HOSTCMD_TEST|$EXTRA|$(pwd)"`)
	c.Env = []string{"EXTRA=x"}
	res, err := Clean().Run(context.Background(), c)
	if err != nil || res.Stdout != "C||x|/\n" {
		t.Errorf("clean: %q %v", res.Stdout, err)
	}
	res, err = Exec{}.Run(context.Background(), c)
	if err != nil || !strings.Contains(res.Stdout, "|inherited|x|") {
		t.Errorf("inherited: %q %v", res.Stdout, err)
	}
}

// A command that prints more than Keep leaves only its last Keep bytes in
// memory: a 200 MiB kernel log costs Keep, not 200 MiB.
func TestKeepBoundsTheOutput(t *testing.T) {
	c := Command{Name: "/bin/sh", Args: []string{"-c", "head -c 3000000 /dev/zero | tr '\\0' a; echo; echo the end"}, Keep: 4096}
	r, err := Exec{}.Run(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stdout) != 4096 || !strings.HasSuffix(r.Stdout, "aaa\nthe end\n") || len(r.Output) != 4096 {
		t.Errorf("kept %d and %d bytes, ending %q", len(r.Stdout), len(r.Output), r.Stdout[max(0, len(r.Stdout)-20):])
	}
}
