package prestart

import (
	"slices"
	"testing"

	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/lxcconf"
)

// What pre-start wrote reads back as what it gave: the version, GPU 1 of
// the host and the nodes bound into the container, not the driver cache.
func TestGivenReadsBackTheBlock(t *testing.T) {
	f := setup(t, true)
	f.host.DriverCache.Dir = t.TempDir()
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1"), Install: true}, f.logger()); err != nil {
		t.Fatal(err)
	}
	block, err := lxcconf.Block([]byte(f.config(t)))
	if err != nil {
		t.Fatal(err)
	}
	g := ReadGiven(block)
	if g.Version != "580.159.04" || len(g.GPUs) != 1 || g.GPUs[0] != (GivenGPU{HostIndex: 1, PCIBusID: "0000:41:00.0"}) {
		t.Errorf("given %+v", g)
	}
	want := []string{"/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia1"}
	if !slices.Equal(g.Nodes, want) {
		t.Errorf("nodes %q, want %q", g.Nodes, want)
	}
	if g := ReadGiven(nil); g.Version != "" || g.GPUs != nil || g.Nodes != nil {
		t.Errorf("no block gives %+v", g)
	}
}
