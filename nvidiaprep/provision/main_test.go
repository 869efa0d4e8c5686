package provision

import (
	"os"
	"testing"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/isolate"
)

// TestMain lets the test binary serve ctfs's isolated reads, as the
// programs do.
func TestMain(m *testing.M) {
	isolate.Serve(ctfs.Ops())
	os.Exit(m.Run())
}
