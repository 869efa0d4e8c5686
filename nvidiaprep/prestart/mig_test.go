package prestart

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/gpucache"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// migSetup is the two-GPU host with GPU 1 in MIG mode: GI 1 with CI 0
// (caps 12, 13) and GI 2 with CI 0 (caps 21, 22); nvidia-caps major 511.
func migSetup(t *testing.T) fixture {
	t.Helper()
	f := setup(t, true)
	d := driver
	d.CapsMajor = 511
	if err := f.sh.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	for _, m := range [][5]int{{1, 1, 0, 12, 13}, {1, 2, 0, 21, 22}} {
		if err := f.sh.AddMIG(m[0], m[1], m[2], uint32(m[3]), uint32(m[4])); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// A MIG device selected as <gpu>:<gi>:<ci> gives the parent's node,
// nvidiactl and exactly its two capabilities (with DeviceFileMode's 0444),
// not the parent's other instance nor the config and monitor
// capabilities.
func TestMIGDeviceGetsOnlyItsCapabilities(t *testing.T) {
	f := migSetup(t)
	res, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1:2:0"), Required: true}, f.logger())
	if err != nil {
		t.Fatal(err)
	}
	got := f.config(t)
	for _, want := range []string{"c 195:1 rw", "c 511:21 rw", "c 511:22 rw", "dev/nvidia-caps/nvidia-cap21 ", "dev/nvidia1 ", "dev/nvidiactl ", "; MIG 1:2:0@1"} {
		if !strings.Contains(got, want) {
			t.Errorf("block lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"511:12", "511:13", "511:1 ", "511:2 ", "195:0 "} {
		if strings.Contains(got, not) {
			t.Errorf("block has %q:\n%s", not, got)
		}
	}
	st, err := f.host.Nodes.Stat(nvdev.CopiesDir(f.sh.Dev, 101) + "/nvidia-caps/nvidia-cap22")
	if err != nil || st.Perm != 0o444 || st.Major != 511 || st.Minor != 22 {
		t.Errorf("the CI capability's copy: %+v, %v; want 511:22 mode 0444", st, err)
	}
	if len(res.MIGs) != 1 || res.MIGs[0].Name() != "1:2:0" {
		t.Errorf("result MIGs %+v", res.MIGs)
	}
	block, _ := lxcconf.Block([]byte(got))
	if g := ReadGiven(block); len(g.MIGs) != 1 || g.MIGs[0] != (GivenMIG{Name: "1:2:0", Minor: 1}) || len(g.GPUs) != 0 {
		t.Errorf("given %+v", g)
	}
}

// By UUID through the MIG cache (NVML's UUIDs; procfs has none); an
// instance destroyed since: required refuses the start naming it, else the
// container starts without it and the log says so.
func TestMIGByUUIDAndVanished(t *testing.T) {
	f := migSetup(t)
	f.host.GPUCache = cacheMIGs(t, f, fakeMIGs{{UUID: "MIG-aaaa", GPU: 1, Minor: 1, GI: 1, CI: 0}})
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("MIG-aaaa"), Required: true}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if got := f.config(t); !strings.Contains(got, "c 511:13 rw") || !strings.Contains(got, "1:1:0@1=MIG-aaaa") {
		t.Errorf("MIG-aaaa is not given:\n%s", got)
	}
	if err := f.sh.RemoveMIG(1, 1, 0); err != nil {
		t.Fatal(err)
	}
	_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("MIG-aaaa"), Required: true}, f.logger())
	var req *RequiredError
	if !errors.As(err, &req) || !errors.Is(err, ErrMIG) || !strings.Contains(err.Error(), "MIG-aaaa") {
		t.Fatalf("a vanished required instance: %v", err)
	}
	f.log.Reset()
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("MIG-aaaa", "0")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.log.String(), "starts without MIG-aaaa") {
		t.Errorf("no warning naming the vanished instance:\n%s", f.log)
	}
	if got := f.config(t); !strings.Contains(got, "c 195:0 rw") || strings.Contains(got, "511:") {
		t.Errorf("without the instance, GPU 0 alone:\n%s", got)
	}
}

// cacheMIGs boots the stand-in host and writes the GPU cache as the admin
// program does, with migs as NVML's answer.
func cacheMIGs(t *testing.T, f fixture, migs fakeMIGs) gpucache.File {
	t.Helper()
	if _, err := f.sh.Boot(time.Now()); err != nil {
		t.Fatal(err)
	}
	c := gpucache.File{State: t.TempDir(), Proc: f.sh.Proc, Sys: f.sh.Sys}
	if _, _, err := c.Refresh(migs, time.Minute); err != nil {
		t.Fatal(err)
	}
	return c
}

// A cache written before a reboot, or corrupt, is not used: MIG-<uuid>
// selectors match nothing (the log says why and what refreshes it), while
// a <gpu>:<gi>:<ci> selector and whole GPUs, which procfs alone serves,
// still start, required or not.
func TestMIGCacheStaleOrCorruptStillStarts(t *testing.T) {
	f := migSetup(t)
	f.host.GPUCache = cacheMIGs(t, f, fakeMIGs{{UUID: "MIG-aaaa", GPU: 1, Minor: 1, GI: 1, CI: 0}})
	if _, err := f.sh.Boot(time.Now()); err != nil { // a reboot since the refresh
		t.Fatal(err)
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("MIG-aaaa", "0")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(f.log.String(), "another boot") || !strings.Contains(f.log.String(), "nvidiaprep status") {
		t.Errorf("the log does not say the cache is stale and what refreshes it:\n%s", f.log)
	}
	if got := f.config(t); !strings.Contains(got, "c 195:0 rw") || strings.Contains(got, "511:13") {
		t.Errorf("a stale cache's UUID was used, or GPU 0 not given:\n%s", got)
	}
	if err := os.WriteFile(f.host.GPUCache.Path(), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1:1:0", "0"), Required: true}, f.logger()); err != nil {
		t.Fatalf("a corrupt cache failed a start that procfs serves: %v", err)
	}
	if got := f.config(t); !strings.Contains(got, "c 511:13 rw") || !strings.Contains(got, "c 195:0 rw") {
		t.Errorf("1:1:0 and GPU 0 not given with a corrupt cache:\n%s", got)
	}
}

type fakeMIGs []nvdev.MIG

func (m fakeMIGs) MIGs() ([]nvdev.MIG, error) { return m, nil }

// The old form MIG-GPU-<parent uuid>/<gi>/<ci> names the same instance.
func TestOldMIGForm(t *testing.T) {
	f := migSetup(t)
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("MIG-" + driver.GPUs[1].UUID + "/2/0"), Required: true}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if got := f.config(t); !strings.Contains(got, "c 511:22 rw") {
		t.Errorf("the old form does not give 1:2:0:\n%s", got)
	}
}
