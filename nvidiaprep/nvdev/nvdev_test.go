package nvdev_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/nvdev"
)

var twoGPUs = []standin.GPU{
	{PCIBusID: "0000:41:00.0", UUID: "GPU-bbbbbbbb-0000-0000-0000-000000000002", Minor: 1},
	{PCIBusID: "0000:01:00.0", UUID: "GPU-aaaaaaaa-0000-0000-0000-000000000001", Minor: 0},
}

func host(t *testing.T, d standin.Driver) *standin.Host {
	t.Helper()
	h, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	return h
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating device nodes needs root")
	}
}

func TestLoadedVersion(t *testing.T) {
	h := host(t, standin.Driver{Version: "580.159.04", UVMMajor: 509, GPUs: twoGPUs})
	if v, err := nvdev.LoadedVersion(h.Sys, h.Proc); err != nil || v != "580.159.04" {
		t.Fatalf("sysfs: got %q, %v", v, err)
	}
	// Without sysfs the procfs line answers.
	os.RemoveAll(filepath.Join(h.Sys, "module"))
	if v, err := nvdev.LoadedVersion(h.Sys, h.Proc); err != nil || v != "580.159.04" {
		t.Fatalf("procfs: got %q, %v", v, err)
	}
	if err := h.UnloadDriver(); err != nil {
		t.Fatal(err)
	}
	if _, err := nvdev.LoadedVersion(h.Sys, h.Proc); !errors.Is(err, nvdev.ErrNoDriver) {
		t.Fatalf("unloaded: want ErrNoDriver, got %v", err)
	}
}

// /sys and /proc disagreeing, or /sys holding no driver version (four
// parts, text): which driver runs is unknown, and the error says what each
// file says and what to do, instead of taking one or saying none is loaded.
func TestLoadedVersionWhenItCannotTell(t *testing.T) {
	for _, c := range []struct {
		name, sys string
		noProc    bool
		want      []string
	}{
		{"disagree", "580.142\n", false, []string{"reports driver 580.142 in", "but 580.159.04 in", "must agree", "reload the module"}},
		{"four parts", "580.159.04.1\n", false, []string{`reports version "580.159.04.1"`, "it has 4 parts, but an NVIDIA driver version has two or three numbers", "modinfo nvidia"}},
		{"four parts, no procfs", "580.159.04.1\n", true, []string{"it has 4 parts"}},
		{"garbage", "\x1b[2J\n", false, []string{`"\x1b[2J"`, "two or three numbers"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := host(t, standin.Driver{Version: "580.159.04", UVMMajor: 509, GPUs: twoGPUs})
			if err := os.WriteFile(filepath.Join(h.Sys, "module/nvidia/version"), []byte(c.sys), 0o644); err != nil {
				t.Fatal(err)
			}
			if c.noProc {
				os.Remove(filepath.Join(h.Proc, "driver/nvidia/version"))
			}
			v, err := nvdev.LoadedVersion(h.Sys, h.Proc)
			if err == nil || errors.Is(err, nvdev.ErrNoDriver) {
				t.Fatalf("got %q, %v; want an error", v, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestParseProcVersionRealLine(t *testing.T) {
	v, err := nvdev.ParseProcVersion(strings.NewReader("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (dvs-builder@U22-I3-AE18-23-3)  Wed Oct 15 2025\nGCC version:  gcc version 12.3.0\n"))
	if err != nil || v != "580.159.04" {
		t.Fatalf("got %q, %v", v, err)
	}
	if _, err := nvdev.ParseProcVersion(strings.NewReader("garbage\n")); err == nil {
		t.Fatal("want an error without an NVRM line")
	}
}

func TestParseDevicesRealHost(t *testing.T) {
	in := "Character devices:\n  1 mem\n195 nvidia\n195 nvidiactl\n238 nvidia-uvm\n239 nvidia-nvswitch\n241 nvidia-caps\n\nBlock devices:\n  7 loop\n238 blockthing\n"
	m, err := nvdev.ParseDevices(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m["nvidia"] != 195 || m["nvidiactl"] != 195 || m["nvidia-uvm"] != 238 || m["nvidia-caps"] != 241 {
		t.Fatalf("got %v", m)
	}
	if _, ok := m["blockthing"]; ok {
		t.Fatal("block devices must not count")
	}
	if _, err := nvdev.ParseDevices(strings.NewReader("Character devices:\nx nvidia\n")); err == nil {
		t.Fatal("want an error on a malformed line")
	}
}

func TestProcGPUsOrderedByBus(t *testing.T) {
	h := host(t, standin.Driver{Version: "580.159.04", GPUs: twoGPUs})
	gpus, err := nvdev.ProcGPUs{Proc: h.Proc}.GPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(gpus) != 2 || gpus[0].PCIBusID != "0000:01:00.0" || gpus[0].Index != 0 || gpus[0].Minor != 0 ||
		gpus[1].Minor != 1 || gpus[1].UUID != twoGPUs[0].UUID {
		t.Fatalf("got %+v", gpus)
	}
}

func TestSelect(t *testing.T) {
	gpus := []nvdev.GPU{
		{Index: 0, UUID: "GPU-aaaa", PCIBusID: "0000:01:00.0", Minor: 3},
		{Index: 1, UUID: "GPU-bbbb", PCIBusID: "0000:41:00.0", Minor: 0},
	}
	cases := []struct {
		sel       []string
		want      []int // indexes
		unmatched bool
	}{
		{nil, []int{0, 1}, false},
		{[]string{}, nil, false},
		{[]string{"all"}, []int{0, 1}, false},
		{[]string{"1"}, []int{1}, false},
		{[]string{"gpu-AAAA"}, nil, true}, // UUIDs keep their "GPU-" prefix
		{[]string{"GPU-bbbb", "0"}, []int{0, 1}, false},
		{[]string{"00000000:41:00.0"}, []int{1}, false},
		{[]string{"41:00.0"}, []int{1}, false},
		{[]string{"2", "0"}, []int{0}, true},
		{[]string{"1", "GPU-bbbb"}, []int{1}, false},
	}
	for _, c := range cases {
		sel := gpusel.Of(c.sel...)
		if c.sel == nil { // the nil list stood for every GPU
			sel = gpusel.Every()
		}
		got, err := nvdev.Select(gpus, sel)
		var u *nvdev.UnmatchedError
		if errors.As(err, &u) != c.unmatched {
			t.Errorf("%v: err %v, want unmatched=%v", c.sel, err, c.unmatched)
		}
		var idx []int
		for _, g := range got {
			idx = append(idx, g.Index)
		}
		if len(idx) != len(c.want) || (len(idx) > 0 && !equal(idx, c.want)) {
			t.Errorf("%v: got %v want %v", c.sel, idx, c.want)
		}
	}
}

func equal(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestControlAndGPUNodesUseLiveNumbers(t *testing.T) {
	d := standin.Driver{Version: "580.159.04", UVMMajor: 509, GPUs: twoGPUs}
	h := host(t, d)
	h.Nodes = &standin.FakeNodes{}
	if err := h.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	f := nvdev.Finder{Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Nodes: h.Nodes}
	majors, err := f.Majors()
	if err != nil {
		t.Fatal(err)
	}
	ctl, _, err := f.ControlNodes(majors)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]uint32{"nvidiactl": {195, 255}, "nvidia-uvm": {509, 0}, "nvidia-uvm-tools": {509, 1}}
	if len(ctl) != len(want) {
		t.Fatalf("control nodes %+v", ctl)
	}
	for _, n := range ctl {
		if w := want[n.Name]; w != [2]uint32{n.Major, n.Minor} || n.Path != filepath.Join(h.Dev, n.Name) {
			t.Errorf("%+v, want %v", n, w)
		}
	}
	gn, err := f.GPUNodes(majors, []nvdev.GPU{{Minor: 1}})
	if err != nil || len(gn) != 1 || gn[0].Name != "nvidia1" || gn[0].Minor != 1 {
		t.Fatalf("GPU nodes %+v, %v", gn, err)
	}
}

func TestMissingAndStaleNodesAreCreated(t *testing.T) {
	needRoot(t)
	d := standin.Driver{Version: "580.159.04", UVMMajor: 508, GPUs: twoGPUs[:1], Modeset: true}
	h := host(t, d)
	// Only nvidiactl exists; nvidia-uvm was left by an older driver with major 511.
	if err := standin.MakeNode(filepath.Join(h.Dev, "nvidiactl"), 195, 255, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := standin.MakeNode(filepath.Join(h.Dev, "nvidia-uvm"), 511, 0, 0o666); err != nil {
		t.Fatal(err)
	}
	f := nvdev.Finder{Dev: h.Dev, Proc: h.Proc, Sys: h.Sys}
	majors, _ := f.Majors()
	ctl, _, err := f.ControlNodes(majors)
	if err != nil {
		t.Fatal(err)
	}
	if len(ctl) != 4 {
		t.Fatalf("want ctl, uvm, uvm-tools, modeset; got %+v", ctl)
	}
	for name, mm := range map[string][2]uint32{"nvidia-uvm": {508, 0}, "nvidia-uvm-tools": {508, 1}, "nvidia-modeset": {195, 254}} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(h.Dev, name), &st); err != nil {
			t.Fatalf("%s not created: %v", name, err)
		}
		if unix.Major(st.Rdev) != mm[0] || unix.Minor(st.Rdev) != mm[1] || st.Mode&0o777 != 0o666 {
			t.Errorf("%s is %d:%d mode %o, want %v mode 666", name, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mode&0o777, mm)
		}
	}
}

type recordingModprobe struct {
	calls [][]string
	load  func(args []string)
}

func (r *recordingModprobe) Modprobe(args ...string) error {
	r.calls = append(r.calls, args)
	if r.load != nil {
		r.load(args)
	}
	return nil
}

func TestUVMNotLoadedIsLoadedThroughModprobe(t *testing.T) {
	d := standin.Driver{Version: "580.159.04", GPUs: twoGPUs[:1]} // no uvm yet
	h := host(t, d)
	h.Nodes = &standin.FakeNodes{}
	mp := &recordingModprobe{load: func(args []string) {
		if args[0] == "-u" { // as nvidia-modprobe -u: the module registers its major
			d.UVMMajor = 507
			if err := h.LoadDriver(d); err != nil {
				t.Fatal(err)
			}
		}
	}}
	f := nvdev.Finder{Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Nodes: h.Nodes, Modprobe: mp}
	majors, _ := f.Majors()
	ctl, _, err := f.ControlNodes(majors)
	if err != nil {
		t.Fatal(err)
	}
	if len(mp.calls) < 1 || strings.Join(mp.calls[0], " ") != "-u -c=0" {
		t.Fatalf("nvidia-modprobe calls %v", mp.calls)
	}
	found := false
	for _, n := range ctl {
		found = found || (n.Name == "nvidia-uvm" && n.Major == 507)
	}
	if !found {
		t.Fatalf("nvidia-uvm with the fresh major missing: %+v", ctl)
	}
}

func TestCapNodesForMIG(t *testing.T) {
	d := standin.Driver{Version: "580.159.04", UVMMajor: 509, CapsMajor: 506, GPUs: twoGPUs}
	h := host(t, d)
	h.Nodes = &standin.FakeNodes{}
	caps := filepath.Join(h.Proc, "driver/nvidia/capabilities")
	write := func(rel, content string) {
		p := filepath.Join(caps, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	write("mig/config", "DeviceFileMinor: 1\nDeviceFileMode: 256\nDeviceFileModify: 1\n")
	write("mig/monitor", "DeviceFileMinor: 2\nDeviceFileMode: 292\nDeviceFileModify: 1\n")
	write("gpu0/mig/gi1/access", "DeviceFileMinor: 12\nDeviceFileMode: 292\nDeviceFileModify: 1\n")
	write("gpu0/mig/gi1/ci0/access", "DeviceFileMinor: 13\nDeviceFileMode: 292\nDeviceFileModify: 1\n")
	f := nvdev.Finder{Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Nodes: h.Nodes}
	majors, _ := f.Majors()
	nodes, err := f.CapNodes(majors, []nvdev.GPU{{Minor: 0}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
		if n.Major != 506 {
			t.Errorf("%s major %d, want the live nvidia-caps major 506", n.Name, n.Major)
		}
	}
	if strings.Join(names, " ") != "nvidia-caps/nvidia-cap12 nvidia-caps/nvidia-cap13 nvidia-caps/nvidia-cap2" {
		t.Fatalf("got %v", names)
	}
	if none, err := f.CapNodes(majors, []nvdev.GPU{{Minor: 1}}); err != nil || len(none) != 0 {
		t.Fatalf("a GPU without MIG needs no caps: %v %v", none, err)
	}
}

// The one list of nodes a container needs: numbers from the majors given,
// the driver's fixed control minors, nodes of modules not loaded marked
// unregistered rather than left out, MIG capabilities with their modes.
func TestExpectedNodes(t *testing.T) {
	majors := nvdev.Majors{"nvidia": 195, "nvidiactl": 195, "nvidia-caps": 506}
	got := nvdev.ExpectedNodes("/d", nvdev.Want{Majors: majors, Modeset: true, GPUs: []nvdev.GPU{{Minor: 3}}, Caps: []nvdev.Cap{{Minor: 12, Mode: 0o444}}})
	var lines []string
	for _, e := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %o %v %d", e.Name, e.Path, e.Device(), e.Mode, e.Registered, e.Kind))
	}
	want := []string{
		"nvidiactl /d/nvidiactl 195:255 666 true 0",
		"nvidia-uvm /d/nvidia-uvm 0:0 666 false 1",
		"nvidia-uvm-tools /d/nvidia-uvm-tools 0:1 666 false 1",
		"nvidia-modeset /d/nvidia-modeset 195:254 666 true 0",
		"nvidia3 /d/nvidia3 195:3 666 true 2",
		"nvidia-caps/nvidia-cap12 /d/nvidia-caps/nvidia-cap12 506:12 444 true 3",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// Without a driver nothing is registered, and nothing else is read.
	for _, e := range nvdev.ExpectedNodes("/d", nvdev.Want{GPUs: []nvdev.GPU{{Minor: 0}}}) {
		if e.Registered {
			t.Errorf("%s registered without majors", e.Name)
		}
	}
}
