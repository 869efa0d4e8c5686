package installstate

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/record"

	"golang.org/x/sys/unix"
)

// chrooted starts a stand-in container init: a static program (Go's own
// gofmt, reading a stdin that never ends) chrooted into a directory, so
// that /proc/<pid>/root is that directory as for a container's init.
// openRoot opens the root of process pid through its pidfd, as the
// programs open a container's; it is closed when the test ends.
func openRoot(t *testing.T, pid int) *ctfs.Root {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ctfs.OpenProcess(fd)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func chrooted(t *testing.T) (string, int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("chroot needs root")
	}
	gofmt := filepath.Join(runtime.GOROOT(), "bin", "gofmt")
	bin, err := os.ReadFile(gofmt)
	if err != nil {
		t.Skipf("no static program to chroot: %v", err)
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "init"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/init")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &unix.SysProcAttr{Chroot: root}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a chrooted process: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	return root, cmd.Process.Pid
}

// Current says "current" only when it knows: an install marker or an
// install record that exists but cannot be read (a directory, a FIFO)
// leaves the question open, which is "not current" with the reason.
func TestCurrentOnlyWhenItCanTell(t *testing.T) {
	const v = "580.159.04"
	for _, c := range []struct {
		name  string
		plant func(root string) error
		ok    bool
		why   string
	}{
		{"installed", func(string) error { return nil }, true, ""},
		{"marker is a directory", func(root string) error { return os.Mkdir(filepath.Join(root, Marker), 0o755) }, false, "whether an earlier install finished is unknown"},
		{"marker is a FIFO", func(root string) error { return unix.Mkfifo(filepath.Join(root, Marker), 0o644) }, false, "whether an earlier install finished is unknown"},
		{"marker present", func(root string) error { return os.WriteFile(filepath.Join(root, Marker), []byte(v+"\n"), 0o644) }, false, "an earlier install did not finish"},
		{"record unreadable", func(root string) error {
			os.Remove(filepath.Join(root, record.NVIDIALog))
			return os.Mkdir(filepath.Join(root, record.NVIDIALog), 0o755)
		}, false, "its install record cannot be read"},
		{"no record", func(root string) error { return os.Remove(filepath.Join(root, record.NVIDIALog)) }, false, "no NVIDIA driver is installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, pid := chrooted(t)
			os.MkdirAll(filepath.Join(root, Dir), 0o755)
			os.MkdirAll(filepath.Join(root, path.Dir(record.NVIDIALog)), 0o755)
			os.WriteFile(filepath.Join(root, record.NVIDIALog), []byte("1.0-1 ("+v+")\n"), 0o644)
			if err := c.plant(root); err != nil {
				t.Fatal(err)
			}
			r := openRoot(t, pid)
			ok, why, err := Current(r, v)
			if err != nil || ok != c.ok || !strings.Contains(why, c.why) {
				t.Errorf("Current = %v, %q, %v; want %v, %q", ok, why, err, c.ok, c.why)
			}
		})
	}
}
