package devplan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

var nodes = []nvdev.Node{
	{Name: "nvidiactl", Path: "/dev/nvidiactl", Major: 195, Minor: 255},
	{Name: "nvidia-uvm", Path: "/dev/nvidia-uvm", Major: 238, Minor: 0},
	{Name: "nvidia0", Path: "/dev/nvidia0", Major: 195, Minor: 0},
	{Name: "nvidia-caps/nvidia-cap12", Path: "/srv/test dev/nvidia-caps/nvidia-cap12", Major: 241, Minor: 12},
}

func TestLinesGolden(t *testing.T) {
	got := strings.Join(ForNodes(nodes).Lines(), "\n")
	want := `lxc.cgroup2.devices.allow = c 195:255 rw
lxc.cgroup2.devices.allow = c 238:0 rw
lxc.cgroup2.devices.allow = c 195:0 rw
lxc.cgroup2.devices.allow = c 241:12 rw
lxc.mount.entry = /dev/nvidiactl dev/nvidiactl none bind,optional,create=file
lxc.mount.entry = /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file
lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
lxc.mount.entry = /srv/test\040dev/nvidia-caps/nvidia-cap12 dev/nvidia-caps/nvidia-cap12 none bind,optional,create=file`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	ro := Plan{Mounts: []Mount{{Source: "/var/cache/x", Target: "run/x", Dir: true, ReadOnly: true}}}.Lines()
	if ro[0] != "lxc.mount.entry = /var/cache/x run/x none bind,optional,create=dir,ro" {
		t.Fatalf("got %q", ro[0])
	}
}

func entries(t *testing.T, config string) []lxcconf.Entry {
	t.Helper()
	e, err := lxcconf.Entries([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHandWrittenLinesAreNotDuplicated(t *testing.T) {
	hand := entries(t, `lxc.cgroup2.devices.allow = a
lxc.cgroup2.devices.allow = c 195:* rwm
lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
lxc.mount.entry: /dev/nvidia-uvm /dev/nvidia-uvm none bind 0 0
`)
	p := ForNodes(nodes).WithoutHandWritten(hand)
	got := strings.Join(p.Lines(), "\n")
	if strings.Contains(got, "c 195:") || strings.Contains(got, " dev/nvidia0 ") {
		t.Fatalf("duplicates of hand-written lines:\n%s", got)
	}
	for _, want := range []string{"c 238:0 rw", "c 241:12 rw", " dev/nvidiactl ", " dev/nvidia-uvm "} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
}

func TestStaleWarnings(t *testing.T) {
	dev := t.TempDir()
	os.WriteFile(filepath.Join(dev, "nvidia0"), nil, 0o666)
	majors := nvdev.Majors{"nvidia": 195, "nvidiactl": 195, "nvidia-uvm": 238, "mem": 1}
	hand := entries(t, `lxc.cgroup2.devices.allow = c 195:* rwm
lxc.cgroup2.devices.allow = c 509:* rwm
lxc.cgroup2.devices.allow = c 238:* rwm
lxc.cgroup.devices.allow = c 195:* rwm
lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
lxc.mount.entry = /dev/nvidia3 dev/nvidia3 none bind,optional,create=file
`)
	w := strings.Join(StaleWarnings(hand, majors, dev, "/etc/pve/lxc/101.conf"), "\n")
	for _, want := range []string{"c 509:* rwm", "nvidia-uvm is 238", "cgroup v1 key", "/dev/nvidia3", "/etc/pve/lxc/101.conf"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if strings.Contains(w, "238:*") || strings.Contains(w, "/dev/nvidia0 ") {
		t.Errorf("warned about a working line:\n%s", w)
	}
	// Without NVIDIA lines, an unregistered major is somebody else's business.
	other := entries(t, "lxc.cgroup2.devices.allow = c 509:* rwm\n")
	if w := StaleWarnings(other, majors, dev, "x"); len(w) != 0 {
		t.Fatalf("unexpected warnings %v", w)
	}
}
