package installstate

import (
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/isolate"
)

// TestMain lets the test binary serve ctfs's isolated reads, as the
// programs do, and hold a worker's lock as another process (holdLock).
func TestMain(m *testing.M) {
	isolate.Serve(ctfs.Ops())
	if path := os.Getenv("INSTALLSTATE_TEST_HOLD"); path != "" {
		if _, err := filelock.TryLockOwned(path); err != nil {
			os.Exit(1)
		}
		os.Stdout.WriteString("ok\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdLock holds the lock at path as a worker does, in another process
// (a process's own POSIX locks never exclude itself), until the test ends.
func holdLock(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"INSTALLSTATE_TEST_HOLD=" + path}
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
