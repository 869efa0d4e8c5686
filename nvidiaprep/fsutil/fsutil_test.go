package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWriteFileAtomicKeepsModeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("new\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(got) != "new\n" || st.Mode().Perm() != 0o640 {
		t.Fatalf("content %q mode %v; want new content, mode kept 0640", got, st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestWriteFileAtomicMissingDirChangesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "config")
	if err := WriteFileAtomic(path, []byte("x"), 0o644); err == nil {
		t.Fatal("want an error for a missing directory")
	}
}

// A FIFO (no writer), a device and a directory where a file belongs are
// refused at once, naming the path and what it is; a larger file than the
// reader accepts is refused; a link to a regular file is read.
func TestReadRegularRefusesWhatIsNoFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for path, kind := range map[string]string{fifo: "a FIFO", "/dev/zero": "a character device", dir: "a directory"} {
		done := make(chan error, 1)
		go func() { _, err := ReadRegular(path, 1<<20); done <- err }()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), path+" is "+kind+", not a regular file") {
				t.Errorf("%s: %v", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("reading %s hangs", path)
		}
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 2048), 0o644)
	if _, err := ReadRegular(big, 1024); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), big) {
		t.Errorf("a file over the cap: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(big, link)
	if b, err := ReadRegular(link, 4096); err != nil || len(b) != 2048 {
		t.Errorf("a link to a file: %d bytes, %v", len(b), err)
	}
	if _, err := ReadRegular(filepath.Join(dir, "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}

// ReadRegular reads a file of exactly its limit whole, and refuses one byte
// more; a procfs file, whose size fstat gives as 0, is read whole however
// long (more than one read's first buffer), and so is a file that grew
// after fstat.
func TestReadRegularReadsWholeFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	data := []byte(strings.Repeat("0123456789abcdef", 300)) // 4800 bytes
	os.WriteFile(path, data, 0o644)
	if b, err := ReadRegular(path, int64(len(data))); err != nil || string(b) != string(data) {
		t.Errorf("a file of exactly the limit: %d bytes, %v", len(b), err)
	}
	if _, err := ReadRegular(path, int64(len(data))-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a file one byte over the limit: %v", err)
	}
	want, err := os.ReadFile("/proc/self/maps")
	if err != nil || len(want) < 1024 {
		t.Skipf("/proc/self/maps: %d bytes, %v", len(want), err)
	}
	if b, err := ReadRegular("/proc/self/maps", 1<<20); err != nil || len(b) < 1024 || !strings.HasPrefix(string(b), string(want[:256])) {
		t.Errorf("/proc/self/maps (fstat size 0): %d bytes, %v", len(b), err)
	}
	if _, err := ReadRegular("/proc/self/maps", 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("/proc/self/maps over a limit of 100: %v", err)
	}
}
