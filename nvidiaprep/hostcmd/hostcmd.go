// Package hostcmd runs a program on the host: a program with arguments, an
// optional deadline, its output (stdout alone for parsing, and stdout and
// stderr together for messages); an exit status other than 0 is an
// *ExitError that carries the status and what the output says. Callers take
// a Runner, so that tests can record; Exec is the real one.
package hostcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"nvidiaprep/nvidiaprep/cmdout"
)

// Command is one program to run on the host.
type Command struct {
	Name string   // the program: an absolute path, or a name looked up in PATH
	Args []string // its arguments
	Env  []string // "KEY=value" added to the runner's environment
	// Keep, when > 0, bounds what is kept of the output: only its last Keep
	// bytes (of stdout, and of stdout and stderr together), however much
	// the command prints.
	Keep int
}

func (c Command) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// Result is what a command printed.
type Result struct {
	Stdout string // what it printed on stdout, for parsing
	Output string // stdout and stderr together, as printed, for messages
}

// ExitError is a command that ran and exited with a status other than 0.
type ExitError struct {
	Command string // as Command.String gives it
	Code    int    // the exit status
	Tail    string // what its output says: see Tail
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s exited %d: %s", e.Command, e.Code, e.Tail)
}

// Exited is the error of c exiting with code after printing output: nil
// for 0, else an *ExitError. Exec reports exits with it, and fakes in
// tests should too.
func Exited(c Command, code int, output string) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Command: c.String(), Code: code, Tail: Tail(output)}
}

// ExitCode is err's exit status when err is (or wraps) an *ExitError.
func ExitCode(err error) (int, bool) {
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

// Tail returns what a failed command's output says: its last few error
// lines ("ERROR: ...", "E: ...", "Error..."), or its last 6 lines when it
// has none, joined with " | ".
func Tail(output string) string {
	var errs []string
	for _, l := range strings.Split(output, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "ERROR") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Error") {
			errs = append(errs, l)
		}
	}
	if len(errs) == 0 {
		return cmdout.LastLines(output, 6)
	}
	if len(errs) > 3 {
		errs = errs[len(errs)-3:]
	}
	return strings.Join(errs, " | ")
}

// Runner runs commands on the host. A command that ran and exited non-zero
// is an *ExitError (with its Result); any other error means it could not
// be run or was stopped.
type Runner interface {
	Run(ctx context.Context, c Command) (Result, error)
}

// Exec is the real Runner. Each command runs in its own process group,
// which is killed as a whole when ctx ends or Timeout passes, so that a
// child (an installer's) does not outlive it.
type Exec struct {
	// Env is every command's environment, before Command.Env; nil is this
	// process's own.
	Env []string
	// Dir is where commands run; "" is this process's working directory.
	Dir string
	// Timeout bounds each command; 0 leaves it to ctx.
	Timeout time.Duration
}

// cleanPath is Clean's PATH.
const cleanPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Clean is Exec for a systemd unit or hookscript, which get no reliable
// environment: a fixed PATH, LC_ALL=C (tools answer in the English that
// callers parse), run in /.
func Clean() Exec { return Exec{Env: []string{cleanPath, "LC_ALL=C"}, Dir: "/"} }

// Run implements Runner.
func (e Exec) Run(ctx context.Context, c Command) (Result, error) {
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.Timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	env := e.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = slices.Concat(env, c.Env)
	cmd.Dir = e.Dir
	stdout := &tail{keep: c.Keep}
	output := &lockedBuffer{b: tail{keep: c.Keep}}
	cmd.Stdout, cmd.Stderr = multi{stdout, output}, output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // a child left holding the output does not hold us
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Output: output.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return r, nil
	case e.Timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return r, fmt.Errorf("%s did not finish within %v: %w", c, e.Timeout, ctx.Err())
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s: %w", c.Name, ctx.Err())
	case errors.As(err, &exit) && exit.Exited():
		return r, Exited(c, exit.ExitCode(), r.Output)
	default:
		return r, fmt.Errorf("running %s: %w", c.Name, err)
	}
}

// tail keeps what is written, or only its last keep bytes when keep > 0
// (it holds at most twice that, and drops the older half at once).
type tail struct {
	b    []byte
	keep int
}

func (t *tail) Write(p []byte) (int, error) {
	n := len(p)
	if t.keep > 0 && len(p) > t.keep {
		p = p[len(p)-t.keep:]
	}
	t.b = append(t.b, p...)
	if t.keep > 0 && len(t.b) > 2*t.keep {
		t.b = append(t.b[:0], t.b[len(t.b)-t.keep:]...)
	}
	return n, nil
}

func (t *tail) String() string {
	if t.keep > 0 && len(t.b) > t.keep {
		return string(t.b[len(t.b)-t.keep:])
	}
	return string(t.b)
}

// lockedBuffer is written by the goroutines that copy stdout and stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  tail
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// multi writes to stdout and to the combined output.
type multi struct {
	stdout *tail
	output *lockedBuffer
}

func (m multi) Write(p []byte) (int, error) {
	m.stdout.Write(p)
	return m.output.Write(p)
}
