package cdispec

import (
	"fmt"
	"nvidiaprep/nvidiaprep/installstate"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tags.cncf.io/container-device-interface/pkg/cdi"
)

func input() Input {
	return Input{
		Key: installstate.SpecKey("580.159.04", []string{"# driver 580.159.04; GPUs 1=0000:41:00.0 3=0000:81:00.0"}),
		// Given out of bus order: indexes inside follow the bus.
		GPUs: []GPU{
			{UUID: "GPU-bbbb", PCIBusID: "0000:81:00.0", Node: "/dev/nvidia3"},
			{UUID: "GPU-aaaa", PCIBusID: "0000:41:00.0", Node: "/dev/nvidia1"},
		},
		Nodes: []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"},
		Files: []string{"/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/bin/nvidia-smi"},
	}
}

// A spec a runtime loads from /etc/cdi names GPU 1 of the host "0" inside,
// by UUID too, and "all" holds both.
func TestSpecLoadsAsPodmanLoadsIt(t *testing.T) {
	data, err := Render(input())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nvidia.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false))
	if err != nil {
		t.Fatal(err)
	}
	if errs := cache.GetErrors(); len(errs) > 0 {
		t.Fatalf("CDI cache errors: %v", errs)
	}
	want := []string{"nvidia.com/gpu=0", "nvidia.com/gpu=1", "nvidia.com/gpu=GPU-aaaa", "nvidia.com/gpu=GPU-bbbb", "nvidia.com/gpu=all"}
	got := cache.ListDevices()
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("devices %v, want %v", got, want)
	}
	dev := cache.GetDevice("nvidia.com/gpu=0")
	if n := dev.ContainerEdits.DeviceNodes; len(n) != 1 || n[0].Path != "/dev/nvidia1" {
		t.Errorf("gpu=0 gives %+v, want /dev/nvidia1 (the host's GPU on the first bus)", n)
	}
	if n := cache.GetDevice("nvidia.com/gpu=all").ContainerEdits.DeviceNodes; len(n) != 2 {
		t.Errorf("gpu=all gives %d nodes, want 2", len(n))
	}
	spec := dev.GetSpec()
	var mounts []string
	for _, m := range spec.ContainerEdits.Mounts {
		mounts = append(mounts, m.ContainerPath)
		if !slices.Contains(m.Options, "ro") {
			t.Errorf("%s is mounted writable", m.ContainerPath)
		}
	}
	for _, f := range input().Files {
		if !slices.Contains(mounts, f) {
			t.Errorf("%s is not mounted; mounts: %v", f, mounts)
		}
	}
	if len(spec.ContainerEdits.Hooks) != 0 {
		t.Errorf("the spec has hooks (nvidia-cdi-hook is not inside): %v", spec.ContainerEdits.Hooks)
	}
	if spec.Version != Version {
		t.Errorf("cdiVersion %s, want %s", spec.Version, Version)
	}
}

func TestHeaderKeyAndOurs(t *testing.T) {
	in := input()
	data, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := installstate.SpecHeaderKey(data); !ok || k != in.Key {
		t.Errorf("HeaderKey = %q, %v; want %q", k, ok, in.Key)
	}
	if _, ours := installstate.SpecHeaderKey([]byte("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")); ours {
		t.Error("a spec nvidia-ctk wrote counts as nvidiaprep's")
	}
	if installstate.SpecKey("580.159.04", []string{"a"}) == installstate.SpecKey("580.159.05", []string{"a"}) || installstate.SpecKey("1", []string{"a"}) == installstate.SpecKey("1", []string{"b"}) {
		t.Error("the key does not change with the version or the block")
	}
}

func TestRenderRefusesWhatCDIRefuses(t *testing.T) {
	in := input()
	in.GPUs = nil
	if _, err := Render(in); err == nil {
		t.Error("a spec without GPUs was rendered")
	}
	in = input()
	in.Files = append(in.Files, "relative/lib.so")
	if _, err := Render(in); err == nil {
		t.Error("a relative path was accepted")
	}
	in = input()
	in.GPUs[0].UUID = "GPU-bad uuid"
	if _, err := Render(in); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("a device name with a space: %v, want invalid", err)
	}
}

func TestGIDIsGivenToEveryNode(t *testing.T) {
	in := input()
	gid := uint32(44)
	in.GID = &gid
	s, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Devices {
		for _, n := range d.ContainerEdits.DeviceNodes {
			if n.GID == nil || *n.GID != 44 {
				t.Errorf("%s: %s has gid %v", d.Name, n.Path, n.GID)
			}
		}
	}
	if _, err := Render(in); err != nil {
		t.Errorf("a spec with a gid: %v", err)
	}
}

// A GPU's DRM nodes come with it (and with "all"), not with the others.
func TestDRMNodesComeWithTheirGPU(t *testing.T) {
	in := input()
	in.GPUs[1].Extra = []string{"/dev/dri/card1", "/dev/dri/renderD129"} // GPU-aaaa, index 0 inside
	s, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string][]string{}
	for _, d := range s.Devices {
		for _, n := range d.ContainerEdits.DeviceNodes {
			nodes[d.Name] = append(nodes[d.Name], n.Path)
		}
	}
	if got := strings.Join(nodes["0"], " "); got != "/dev/nvidia1 /dev/dri/card1 /dev/dri/renderD129" {
		t.Errorf("gpu=0: %s", got)
	}
	if got := strings.Join(nodes["1"], " "); got != "/dev/nvidia3" {
		t.Errorf("gpu=1: %s", got)
	}
	if len(nodes["all"]) != 4 {
		t.Errorf("gpu=all: %v", nodes["all"])
	}
}

// A MIG device is a device of its own, by <gpu>:<gi>:<ci> and UUID, with
// its parent's node and its two capabilities; a container with MIG devices
// alone has a spec too.
func TestMIGDevices(t *testing.T) {
	in := input()
	in.GPUs = nil
	in.MIGs = []MIG{{Name: "0:2:0", UUID: "MIG-1234", Nodes: []string{"/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap21", "/dev/nvidia-caps/nvidia-cap22"}}}
	data, err := Render(in)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nvidia.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	cache, err := cdi.NewCache(cdi.WithSpecDirs(dir), cdi.WithAutoRefresh(false))
	if err != nil {
		t.Fatal(err)
	}
	got := cache.ListDevices()
	slices.Sort(got)
	if want := []string{"nvidia.com/gpu=0:2:0", "nvidia.com/gpu=MIG-1234", "nvidia.com/gpu=all"}; !slices.Equal(got, want) {
		t.Fatalf("devices %v, want %v", got, want)
	}
	if n := cache.GetDevice("nvidia.com/gpu=MIG-1234").ContainerEdits.DeviceNodes; len(n) != 3 || n[2].Path != "/dev/nvidia-caps/nvidia-cap22" {
		t.Errorf("MIG-1234 nodes %+v", n)
	}
}

// BenchmarkRender: building, marshalling and validating the spec of a
// container with one GPU and a real driver's number of files (about 80
// libraries, links and programs).
func BenchmarkRender(b *testing.B) {
	in := input()
	for i := 0; i < 80; i++ {
		in.Files = append(in.Files, fmt.Sprintf("/usr/lib/x86_64-linux-gnu/libnvidia-x%d.so.580.159.04", i))
	}
	for b.Loop() {
		if _, err := Render(in); err != nil {
			b.Fatal(err)
		}
	}
}
