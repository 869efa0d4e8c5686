package prestart

import (
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// A GPU's DRM nodes are found by its PCI address, not its index: the
// kernel numbered the cards the other way round. The container gets GPU
// 0's card1 and renderD129, with their rules, and copies of mode 0666.
func TestDRMNodesFollowThePCIAddress(t *testing.T) {
	f := setup(t, true)
	if err := f.sh.AddDRM("0000:41:00.0", 0); err != nil {
		t.Fatal(err)
	}
	if err := f.sh.AddDRM("0000:01:00.0", 1); err != nil {
		t.Fatal(err)
	}
	res, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0")}, f.logger())
	if err != nil {
		t.Fatal(err)
	}
	got := f.config(t)
	copies := nvdev.CopiesDir(f.sh.Dev, 101)
	for _, want := range []string{"c 226:1 rw", "c 226:129 rw", copies + "/dri/card1 dev/dri/card1 ", copies + "/dri/renderD129 dev/dri/renderD129 "} {
		if !strings.Contains(got, want) {
			t.Errorf("block lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"226:0 ", "226:128", "dri/card0", "renderD128"} {
		if strings.Contains(got, not) {
			t.Errorf("block has GPU 1's %q:\n%s", not, got)
		}
	}
	st, err := f.host.Nodes.Stat(copies + "/dri/renderD129")
	if err != nil || st.Perm != 0o666 {
		t.Errorf("the copy of renderD129: mode %o, %v; want 0666", st.Perm, err)
	}
	if host, _ := f.host.Nodes.Stat(f.sh.Dev + "/dri/renderD129"); host.Perm != 0o660 {
		t.Errorf("the host's renderD129 changed: %o", host.Perm)
	}
	block, _ := lxcconf.Block([]byte(got))
	if g := ReadGiven(block); !strings.Contains(strings.Join(g.Nodes, " "), "/dev/dri/renderD129") {
		t.Errorf("given nodes %q lack the render node", g.Nodes)
	}
	found := false
	for _, n := range res.Nodes {
		found = found || n.Name == "dri/card1"
	}
	if !found {
		t.Errorf("result nodes %+v lack dri/card1", res.Nodes)
	}
}
