package devplan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/pve"
)

// The usual tutorial lines, as an admin writes them into
// /etc/pve/lxc/<vmid>.conf, among lines that are not NVIDIA's.
const tutorial = `arch: amd64
hostname: ml
lxc.cgroup2.devices.allow: c 195:* rwm
lxc.cgroup2.devices.allow: c 238:* rwm
lxc.cgroup2.devices.allow: c 509:* rwm
lxc.cgroup2.devices.allow: c 226:* rwm
lxc.cgroup2.devices.allow: a
lxc.cgroup.devices.allow: c 195:* rwm
lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
lxc.mount.entry: /dev/nvidiactl dev/nvidiactl none bind,optional,create=file
lxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file
lxc.mount.entry: /dev/nvidia3 dev/nvidia3 none bind,optional,create=file
lxc.mount.entry: /dev/dri dev/dri none bind,optional,create=dir
dev0: /dev/nvidia-uvm-tools,mode=0666
dev1: /dev/ttyUSB0
`

func tutorialCT(t *testing.T) (pve.CT, []Passthrough, string) {
	t.Helper()
	dev := t.TempDir()
	for _, n := range []string{"nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"} {
		os.WriteFile(filepath.Join(dev, n), nil, 0o666)
	}
	ct := pve.ParseCT(101, "/etc/pve/lxc/101.conf", []byte(tutorial))
	var devs []Passthrough
	for _, d := range ct.Devices {
		devs = append(devs, Passthrough{Key: d.Key, Path: d.Path, Line: d.Raw, At: d.Line})
	}
	return ct, devs, dev
}

var tutorialMajors = nvdev.Majors{"nvidia": 195, "nvidiactl": 195, "nvidia-uvm": 238, "drm": 226}

// Each working NVIDIA line is named with the line, its number and the
// command that removes it; the lines that are not NVIDIA's, and those that
// cannot work (Stale's), are not.
func TestSuperseded(t *testing.T) {
	ct, devs, dev := tutorialCT(t)
	got := Superseded(ct.LXC, devs, tutorialMajors, dev, 101, ct.Path, Grant{Given: []uint32{0}}.Gives)
	want := map[int]string{
		4:  "is superseded: nvidiaprep writes the rules",
		9:  "binds the host's /dev/nvidia0: nvidiaprep mounts the container's own copy there instead",
		10: "binds the host's /dev/nvidiactl",
		11: "binds the host's /dev/nvidia-uvm",
		14: "passes the host's /dev/nvidia-uvm-tools through",
	}
	if len(got) != len(want) {
		t.Errorf("%d findings, want %d:\n%s", len(got), len(want), render(got))
	}
	for _, f := range got {
		if w, ok := want[f.At]; !ok || !strings.Contains(f.What, w) || !strings.Contains(f.Fix, "`nvidiaprep enable 101 --adopt` removes it from /etc/pve/lxc/101.conf") {
			t.Errorf("line %d: %s; want %q", f.At, f, w)
		}
	}
}

// Adoptable is every NVIDIA line, working or not, and nothing else.
func TestAdoptable(t *testing.T) {
	ct, devs, _ := tutorialCT(t)
	got := Adoptable(ct.LXC, devs, tutorialMajors)
	want := []int{3, 4, 5, 8, 9, 10, 11, 12, 14}
	if len(got) != len(want) {
		t.Fatalf("lines %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("lines %v, want %v", got, want)
		}
	}
	// Without other NVIDIA lines, an unregistered major is not NVIDIA's.
	other := pve.ParseCT(102, "x", []byte("lxc.cgroup2.devices.allow: c 509:* rwm\n"))
	if got := Adoptable(other.LXC, nil, tutorialMajors); len(got) != 0 {
		t.Errorf("lines %v of a config without NVIDIA lines", got)
	}
}

func TestWithout(t *testing.T) {
	fs := []Finding{{Line: "lxc.cgroup2.devices.allow: c 195:3 rw"}, {Line: "dev0: /dev/nvidia2"}, {Line: "lxc.mount.entry: /dev/nvidiactl dev/nvidiactl none bind"}}
	named := []Finding{{Line: "lxc.cgroup2.devices.allow = c 195:3  rw"}, {Line: "dev0: /dev/nvidia2"}}
	if got := Without(fs, named); len(got) != 1 || got[0].Line != fs[2].Line {
		t.Errorf("Without = %v", got)
	}
}

// A bind or devN: entry of a node the block does not give (MIG capability
// nodes of a container given a whole GPU) stays in the generated config and
// keeps working, so it is not called superseded, nor told to be removed.
func TestNodesTheBlockDoesNotGiveAreNotSuperseded(t *testing.T) {
	dev := t.TempDir()
	os.MkdirAll(filepath.Join(dev, "nvidia-caps"), 0o755)
	for _, n := range []string{"nvidia0", "nvidia-caps/nvidia-cap1", "nvidia-caps/nvidia-cap2"} {
		os.WriteFile(filepath.Join(dev, n), nil, 0o666)
	}
	conf := "lxc.mount.entry: /dev/nvidia-caps/nvidia-cap2 dev/nvidia-caps/nvidia-cap2 none bind,optional,create=file\n" +
		"lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n" +
		"dev0: /dev/nvidia-caps/nvidia-cap1\n"
	ct := pve.ParseCT(101, "/etc/pve/lxc/101.conf", []byte(conf))
	var devs []Passthrough
	for _, d := range ct.Devices {
		devs = append(devs, Passthrough{Key: d.Key, Path: d.Path, Line: d.Raw, At: d.Line})
	}
	got := Superseded(ct.LXC, devs, tutorialMajors, dev, 101, ct.Path, Grant{Given: []uint32{0}}.Gives)
	if len(got) != 1 || got[0].At != 2 {
		t.Errorf("findings:\n%s\nwant only line 2 (the bind of /dev/nvidia0, which the block replaces)", render(got))
	}
	every := func(string) bool { return true }
	if n := len(Superseded(ct.LXC, devs, tutorialMajors, dev, 101, ct.Path, every)); n != 3 {
		t.Errorf("%d findings when the block gives every node, want 3", n)
	}
}

func TestSelectionGives(t *testing.T) {
	s := Grant{Given: []uint32{1}}
	for node, want := range map[string]bool{"nvidiactl": true, "nvidia-uvm-tools": true, "nvidia1": true, "nvidia0": false,
		"nvidia-caps/nvidia-cap1": false, "dri/renderD128": true, "nvidia-nvswitchctl": false} {
		if got := s.Gives(node); got != want {
			t.Errorf("Gives(%q) = %v, want %v", node, got, want)
		}
	}
	if !(Grant{All: true}).Gives("nvidia7") {
		t.Error("a container given every GPU is not given nvidia7")
	}
}
