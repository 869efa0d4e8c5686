package runbin

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestRunGivesOutputInOrderAndExitStatus(t *testing.T) {
	script := `for i in 1 2 3 4 5 6 7 8; do echo out$i; echo err$i >&2; done; echo "$X $PWD"; exit 3`
	r, err := Cmd{Path: "/bin/sh", Args: []string{"-c", script}, Env: []string{"X=x"}}.Run()
	want := "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\nout6\nerr6\nout7\nerr7\nout8\nerr8\nx /\n"
	if err != nil || r.Code != 3 || r.Output != want {
		t.Fatalf("%+v, %v", r, err)
	}
}

func TestRunSplitKeepsStdoutApart(t *testing.T) {
	r, err := Cmd{Path: "/bin/sh", Args: []string{"-c", `echo '{}'; echo warning >&2`}, Split: true}.Run()
	if err != nil || r.Code != 0 || r.Stdout != "{}\n" || r.Stderr != "warning\n" {
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

func TestRunPassesExtraFiles(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "extra")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("inherited\n"); err != nil {
		t.Fatal(err)
	}
	r, err := Cmd{Path: "/bin/sh", Args: []string{"-c", "cat /dev/fd/3"}, ExtraFiles: []*os.File{f}}.Run()
	if err != nil || r.Code != 0 || r.Output != "inherited\n" {
		t.Fatalf("%+v, %v", r, err)
	}
}
