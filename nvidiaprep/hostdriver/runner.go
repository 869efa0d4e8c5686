package hostdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"nvidiaprep/nvidiaprep/cmdout"
	"nvidiaprep/nvidiaprep/fsutil"
)

// Command is one program to run on the host.
type Command struct {
	Name string   // the program: an absolute path, or a name looked up in PATH
	Args []string // its arguments
	Env  []string // "KEY=value" added to the runner's clean environment
}

func (c Command) String() string {
	return strings.TrimSpace(c.Name + " " + strings.Join(c.Args, " "))
}

// Result is how a command ended.
type Result struct {
	Stdout, Stderr string
	Exit           int // the exit status; non-zero is not an error of Run
}

// Output is stdout and stderr together, for messages.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// Runner runs commands on the host. Run returns an error only when the
// command could not be run or was stopped (not found, context ended); a
// command that ran and failed reports its status in Result.Exit.
type Runner interface {
	Run(ctx context.Context, c Command) (Result, error)
}

// Exec is the real Runner: it runs each command with a clean environment
// (a fixed PATH, LC_ALL=C so that tools answer in the English this package
// parses) in its own process group, which is killed as a whole when ctx
// ends, so an installer's children do not outlive it.
type Exec struct{}

// execPath is the PATH of every command: the unit gets no reliable one.
const execPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Run implements Runner.
func (Exec) Run(ctx context.Context, c Command) (Result, error) {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Env = append([]string{execPath, "LC_ALL=C"}, c.Env...)
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return r, nil
	case ctx.Err() != nil:
		return r, fmt.Errorf("%s: %w", c.Name, ctx.Err())
	case errors.As(err, &exit) && exit.Exited():
		r.Exit = exit.ExitCode()
		return r, nil
	default:
		return r, fmt.Errorf("running %s: %w", c.Name, err)
	}
}

// binDirs are where lookPath looks, in PATH's order.
var binDirs = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

// lookPath finds an executable program below root and returns its path as
// seen from root ("/usr/sbin/dkms"), or "" when there is none.
func lookPath(root, name string) string {
	p, _ := findProgram(root, name)
	return p
}

// findProgram is lookPath for decisions: a program that may be there but
// cannot be checked (stat fails for another reason than its absence) is an
// error, not an absent program.
func findProgram(root, name string) (string, error) {
	for _, d := range binDirs {
		p := filepath.Join(d, name)
		ok, err := fsutil.IsExecutable(filepath.Join(root, p))
		if ok {
			return p, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", fmt.Errorf("looking for %s: %w", name, err)
		}
	}
	return "", nil
}

// errorLines returns what a failed command's output says: its last few
// error lines ("ERROR: ...", "E: ..."), or its last n lines when it has none.
func errorLines(s string, n int) string {
	var errs []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "ERROR") || strings.HasPrefix(l, "E:") || strings.HasPrefix(l, "Error") {
			errs = append(errs, l)
		}
	}
	if len(errs) == 0 {
		return cmdout.LastLines(s, n)
	}
	if len(errs) > 3 {
		errs = errs[len(errs)-3:]
	}
	return strings.Join(errs, " | ")
}
