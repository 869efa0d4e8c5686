// Package locktest lets a package's tests hold a worker's lock in another
// process, as a running worker does: a process's own POSIX locks
// (filelock.TryLockOwned) never exclude itself.
package locktest

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/filelock"
)

// Serve, called at the start of a TestMain, makes the test binary, when
// started by Hold with env set, take the lock named there, say so, and
// keep it for a minute or until killed.
func Serve(env string) {
	path := os.Getenv(env)
	if path == "" {
		return
	}
	if _, err := filelock.TryLockOwned(path); err != nil {
		os.Exit(1)
	}
	os.Stdout.WriteString("ok\n")
	time.Sleep(time.Minute)
	os.Exit(0)
}

// Hold holds the lock at path in another process (this test binary, run
// with env=path: see Serve) until release or the test's end.
func Hold(t testing.TB, env, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{env + "=" + path}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 3)
	if n, _ := io.ReadFull(out, buf); n != 3 {
		t.Fatalf("the lock holder did not take %s", path)
	}
	release = func() { cmd.Process.Kill(); cmd.Wait() }
	t.Cleanup(release)
	return release
}
