package isolate

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// testOps are what this test binary offers its children.
var testOps = Ops{
	"echo": func(in []byte, files []*os.File) ([]byte, error) {
		var extra []byte
		for _, f := range files {
			b, _ := io.ReadAll(f)
			extra = append(extra, b...)
		}
		return append(in, extra...), nil
	},
	"fail": func([]byte, []*os.File) ([]byte, error) { return nil, errors.New("it went wrong") },
	"hang": func([]byte, []*os.File) ([]byte, error) { time.Sleep(time.Hour); return nil, nil },
	"fds": func([]byte, []*os.File) ([]byte, error) {
		d, _ := os.ReadDir("/proc/self/fd")
		var out []string
		for _, e := range d {
			l, _ := os.Readlink("/proc/self/fd/" + e.Name())
			out = append(out, l)
		}
		return []byte(strings.Join(out, "\n")), nil
	},
	"crash": func([]byte, []*os.File) ([]byte, error) { os.Exit(3); return nil, nil },
}

func TestMain(m *testing.M) {
	Serve(testOps)
	os.Exit(m.Run())
}

func TestRunAnswersErrsAndGivesUp(t *testing.T) {
	ctx := context.Background()
	f, err := os.CreateTemp(t.TempDir(), "passed")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(" and a file")
	f.Seek(0, 0)
	out, err := Run(ctx, Call{Op: "echo", In: []byte("hello"), Files: []*os.File{f}, What: "echoing"})
	if err != nil || string(out) != "hello and a file" {
		t.Errorf("echo: %q, %v", out, err)
	}
	var opErr *OpError
	if _, err := Run(ctx, Call{Op: "fail", What: "failing"}); !errors.As(err, &opErr) || !strings.Contains(err.Error(), "failing: it went wrong") {
		t.Errorf("fail: %v", err)
	}
	if _, err := Run(ctx, Call{Op: "crash", What: "crashing"}); !errors.As(err, &opErr) || !strings.Contains(err.Error(), "gave no answer") {
		t.Errorf("crash: %v", err)
	}
	if _, err := Run(ctx, Call{Op: "nosuch", What: "asking"}); !errors.As(err, &opErr) {
		t.Errorf("unknown op: %v", err)
	}
	t0 := time.Now()
	_, err = Run(ctx, Call{Op: "hang", What: "reading /var/lib/dpkg/lock inside CT 7", Timeout: 200 * time.Millisecond})
	var ab *AbandonedError
	if !errors.As(err, &ab) || !errors.Is(err, errDeadline) || !ab.Finished || !strings.Contains(err.Error(), "reading /var/lib/dpkg/lock inside CT 7 did not finish within 200ms") {
		t.Errorf("hang: %v", err)
	}
	if d := time.Since(t0); d > KillGrace {
		t.Errorf("a killable child took %v to give up on", d)
	}
}

// The child gets stdio and the Call's files, nothing of the caller's.
func TestChildHoldsOnlyWhatItIsGiven(t *testing.T) {
	for i := 0; i < 5; i++ {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	out, err := Run(context.Background(), Call{Op: "fds", What: "listing"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "/proc/") && strings.Contains(string(out), "status") {
		t.Errorf("the child holds the caller's files:\n%s", out)
	}
}
