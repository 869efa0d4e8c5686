package gpucache_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/gpucache"
	"nvidiaprep/nvidiaprep/nvdev"
)

var driver = standin.Driver{Version: "580.159.04", UVMMajor: 509, CapsMajor: 511, GPUs: []standin.GPU{
	{PCIBusID: "0000:01:00.0", UUID: "GPU-aaaaaaaa-0000-0000-0000-000000000001", Minor: 0},
	{PCIBusID: "0000:41:00.0", UUID: "GPU-bbbbbbbb-0000-0000-0000-000000000002", Minor: 1},
}}

// nvml stands for NVML: it counts the times it is asked.
type nvml struct {
	n    int
	migs []nvdev.MIG
}

func (c *nvml) MIGs() ([]nvdev.MIG, error) { c.n++; return c.migs, nil }

var mig110 = nvdev.MIG{UUID: "MIG-aaaa", GPU: 1, Minor: 1, GI: 1, CI: 0}

// node is a booted stand-in host with the driver loaded and GPU 1's MIG
// instance 1/0, and its cache in a fresh state directory.
func node(t *testing.T) (*standin.Host, gpucache.File) {
	t.Helper()
	h, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDriver(driver); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Boot(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.AddMIG(1, 1, 0, 12, 13); err != nil {
		t.Fatal(err)
	}
	return h, gpucache.File{State: filepath.Join(t.TempDir(), "state"), Proc: h.Proc, Sys: h.Sys}
}

// What the writer refreshed, the reader loads, without NVML; a refresh
// that finds nothing changed does not ask NVML again.
func TestRoundTrip(t *testing.T) {
	_, f := node(t)
	n := &nvml{migs: []nvdev.MIG{mig110}}
	if _, asked, err := f.Refresh(n, time.Minute); err != nil || !asked {
		t.Fatalf("first refresh: asked %v, %v", asked, err)
	}
	c, err := f.Load()
	if err != nil || len(c.MIGs) != 1 || c.MIGs[0].UUID != "MIG-aaaa" || c.MIGs[0].GI != 1 || c.MIGs[0].Minor != 1 {
		t.Fatalf("loaded %+v, %v", c, err)
	}
	if _, asked, err := f.Refresh(n, time.Minute); err != nil || asked || n.n != 1 {
		t.Fatalf("second refresh with nothing changed: asked %v (NVML asked %d times), %v", asked, n.n, err)
	}
	if st, err := os.Stat(f.Path()); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("the cache file: %v, %v", st, err)
	}
}

func TestMiss(t *testing.T) {
	_, f := node(t)
	if _, err := f.Load(); !errors.Is(err, gpucache.ErrMiss) {
		t.Fatalf("no cache: got %v, want ErrMiss", err)
	}
}

// A corrupt file is an error that names it and what rewrites it, and the
// next refresh replaces it.
func TestCorrupt(t *testing.T) {
	_, f := node(t)
	os.MkdirAll(f.State, 0o755)
	if err := os.WriteFile(f.Path(), []byte(`{"stamp": {"boot": 7`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.Load()
	if err == nil || errors.Is(err, gpucache.ErrMiss) || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), f.Path()) {
		t.Fatalf("corrupt cache: got %v", err)
	}
	n := &nvml{migs: []nvdev.MIG{mig110}}
	if _, asked, err := f.Refresh(n, time.Minute); err != nil || !asked {
		t.Fatalf("refresh over a corrupt cache: asked %v, %v", asked, err)
	}
	if c, err := f.Load(); err != nil || len(c.MIGs) != 1 {
		t.Fatalf("after the refresh: %+v, %v", c, err)
	}
}

// The cache is not a regular file (a link, a directory): it is not read.
func TestNotRegular(t *testing.T) {
	_, f := node(t)
	os.MkdirAll(f.State, 0o755)
	target := filepath.Join(t.TempDir(), "elsewhere.json")
	os.WriteFile(target, []byte(`{"migs":[]}`), 0o644)
	if err := os.Symlink(target, f.Path()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(); err == nil {
		t.Fatal("a symlinked cache was read")
	}
}

// A cache written for another driver, boot or set of GPUs is ignored by
// the reader (ErrStale, saying what changed), and the next refresh asks
// NVML again.
func TestStaleIsIgnoredAndRefreshed(t *testing.T) {
	h, f := node(t)
	n := &nvml{migs: []nvdev.MIG{mig110}}
	if _, _, err := f.Refresh(n, time.Minute); err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name   string
		change func() error
	}{
		{"driver upgrade", func() error {
			d := driver
			d.Version = "580.172.08"
			return h.LoadDriver(d)
		}},
		{"reboot", func() error { _, err := h.Boot(time.Now()); return err }},
		{"GPU gone", func() error {
			return os.RemoveAll(filepath.Join(h.Proc, "driver/nvidia/gpus", driver.GPUs[0].PCIBusID))
		}},
	}
	for i, c := range changes {
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		_, err := f.Load()
		if !errors.Is(err, gpucache.ErrStale) {
			t.Fatalf("after a %s: got %v, want ErrStale", c.name, err)
		}
		if c.name == "driver upgrade" && !strings.Contains(err.Error(), "580.159.04") {
			t.Errorf("the stale error does not name the cached driver: %v", err)
		}
		if _, asked, err := f.Refresh(n, time.Minute); err != nil || !asked || n.n != i+2 {
			t.Fatalf("refresh after a %s: asked %v (NVML %d times), %v", c.name, asked, n.n, err)
		}
		if _, err := f.Load(); err != nil {
			t.Fatalf("after the refresh following a %s: %v", c.name, err)
		}
	}
}

// A MIG instance made since the last refresh (a MIG change) makes the
// next refresh ask NVML; a node without MIG instances never asks it.
func TestMIGChangeAsksNVML(t *testing.T) {
	h, f := node(t)
	n := &nvml{migs: []nvdev.MIG{mig110}}
	f.Refresh(n, time.Minute)
	if err := h.AddMIG(1, 2, 0, 21, 22); err != nil {
		t.Fatal(err)
	}
	n.migs = append(n.migs, nvdev.MIG{UUID: "MIG-bbbb", GPU: 1, Minor: 1, GI: 2, CI: 0})
	if _, asked, err := f.Refresh(n, time.Minute); err != nil || !asked {
		t.Fatalf("refresh after a new instance: asked %v, %v", asked, err)
	}
	if c, err := f.Load(); err != nil || len(c.MIGs) != 2 {
		t.Fatalf("loaded %+v, %v", c, err)
	}

	h.RemoveMIG(1, 1, 0)
	h.RemoveMIG(1, 2, 0)
	os.RemoveAll(filepath.Join(h.Proc, "driver/nvidia/capabilities/gpu1/mig"))
	n = &nvml{}
	if c, asked, err := f.Refresh(n, time.Minute); err != nil || asked || n.n != 0 || len(c.MIGs) != 0 {
		t.Fatalf("without MIG: %+v, asked %v (%d), %v", c, asked, n.n, err)
	}
}

// An older version's mig.json is read while the new cache does not exist
// (an upgraded node keeps its MIG-<uuid> selectors), and the first refresh
// removes it and the old gpus.json.
func TestUpgradeReadsOldMIGFile(t *testing.T) {
	_, f := node(t)
	os.MkdirAll(f.State, 0o755)
	old := filepath.Join(f.State, "mig.json")
	os.WriteFile(old, []byte(`{"migs":[{"uuid":"MIG-aaaa","gpu":1,"minor":1,"gi":1,"ci":0}]}`), 0o644)
	os.WriteFile(filepath.Join(f.State, "gpus.json"), []byte(`{"key":"x","gpus":[]}`), 0o644)
	c, err := f.Load()
	if err != nil || len(c.MIGs) != 1 || c.MIGs[0].UUID != "MIG-aaaa" {
		t.Fatalf("the old mig.json: %+v, %v", c, err)
	}
	if _, _, err := f.Refresh(&nvml{migs: []nvdev.MIG{mig110}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mig.json", "gpus.json"} {
		if _, err := os.Stat(filepath.Join(f.State, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the refresh: %v", name, err)
		}
	}
}

// hung stands for NVML blocked on a wedged driver.
type hung struct{ release chan struct{} }

func (h hung) MIGs() ([]nvdev.MIG, error) {
	<-h.release
	return nil, errors.New("released")
}

// A hung NVML gives up in time and leaves the cache as it was.
func TestHungNVMLGivesUpInTime(t *testing.T) {
	h, f := node(t)
	f.Refresh(&nvml{migs: []nvdev.MIG{mig110}}, time.Minute)
	h.AddMIG(1, 2, 0, 21, 22)
	stuck := hung{release: make(chan struct{})}
	defer close(stuck.release)
	t0 := time.Now()
	_, _, err := f.Refresh(stuck, 100*time.Millisecond)
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("refreshing took %v with NVML hung", took)
	}
	if err == nil || !strings.Contains(err.Error(), "NVML did not answer within 100ms") {
		t.Errorf("got %v", err)
	}
	if c, err := f.Load(); err != nil || len(c.MIGs) != 1 {
		t.Errorf("the cache after a hung refresh: %+v, %v", c, err)
	}
}

// The hookscript reads the cache, so the package (and all it imports)
// has no cgo: hook/static_test.go checks the whole hook, this the package.
func TestNoCgo(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[1] == "false" && f[2] != "0" {
			t.Errorf("gpucache imports %s, which needs cgo", f[0])
		}
	}
}
