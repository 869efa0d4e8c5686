package provision

import (
	"os"
	"testing"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/filelock/locktest"
	"nvidiaprep/nvidiaprep/isolate"
)

// holdEnv names the lock the test binary holds when started by holdLock.
const holdEnv = "PROVISION_TEST_HOLD"

// TestMain lets the test binary serve ctfs's isolated reads, as the
// programs do, and hold a worker's lock as another process (holdLock).
func TestMain(m *testing.M) {
	isolate.Serve(ctfs.Ops())
	locktest.Serve(holdEnv)
	os.Exit(m.Run())
}

// holdLock holds the lock at path as a worker does, in another process,
// until the test ends.
func holdLock(t *testing.T, path string) (release func()) {
	return locktest.Hold(t, holdEnv, path)
}
