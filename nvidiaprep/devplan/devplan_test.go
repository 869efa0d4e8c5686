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

func TestReadOnlyOverlay(t *testing.T) {
	m, err := ReadOnlyOverlay("dev/.x/drivers", "/var/cache/x/drivers", "/var/cache/x/empty")
	if err != nil {
		t.Fatal(err)
	}
	got := Plan{Mounts: []Mount{m}}.Lines()[0]
	if want := "lxc.mount.entry = overlay dev/.x/drivers overlay lowerdir=/var/cache/x/drivers:/var/cache/x/empty,ro,optional,create=dir"; got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	for _, layers := range [][]string{
		{"/one"},
		{"/a,upperdir=/tmp/u", "/b"},
		{"/a:/etc", "/b"},
		{"/a b", "/b"},
		{`/a\`, "/b"},
		{"relative", "/b"},
	} {
		if _, err := ReadOnlyOverlay("dev/x", layers...); err == nil {
			t.Errorf("layers %q: no error", layers)
		}
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
	w := render(Stale(hand, majors, dev, "/etc/pve/lxc/101.conf"))
	for _, want := range []string{"c 509:* rwm", "nvidia-uvm is 238", "cgroup v1 key", "LXC 7.0", "/dev/nvidia3", "/etc/pve/lxc/101.conf"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if strings.Contains(w, "238:*") || strings.Contains(w, "/dev/nvidia0 ") {
		t.Errorf("warned about a working line:\n%s", w)
	}
	// Without NVIDIA lines, an unregistered major is somebody else's business.
	other := entries(t, "lxc.cgroup2.devices.allow = c 509:* rwm\n")
	if w := Stale(other, majors, dev, "x"); len(w) != 0 {
		t.Fatalf("unexpected warnings %v", w)
	}
}

func render(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

// Lines that reach a GPU the container is not given are named, each with
// its fix; what the selection gives, or what cannot reach a GPU, is not.
func TestBypasses(t *testing.T) {
	hand := entries(t, `lxc.cgroup2.devices.allow = c 195:* rwm
lxc.cgroup2.devices.allow = a
lxc.cgroup2.devices.allow = c *:* rwm
lxc.cgroup2.devices.allow = c 195:0 rw
lxc.cgroup2.devices.allow = c 195:3 rw
lxc.cgroup2.devices.allow = c 195:255 rw
lxc.cgroup2.devices.allow = c 238:* rwm
lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
lxc.mount.entry = /dev/nvidia1 dev/nvidia1 none bind,optional,create=file
lxc.mount.entry = /dev dev none rbind
lxc.mount.entry = /dev/nvidiactl dev/nvidiactl none bind,optional,create=file
`)
	devs := []Passthrough{{Key: "dev0", Path: "/dev/nvidia2", Line: "dev0: /dev/nvidia2,mode=0666"}, {Key: "dev1", Path: "/dev/nvidia0", Line: "dev1: /dev/nvidia0"}}
	sel := Grant{VMID: 101, Given: []uint32{0}, Privileged: true, PVEConf: "/etc/pve/lxc/101.conf"}
	got := render(Bypasses(hand, devs, sel))
	for _, want := range []string{
		`"lxc.cgroup2.devices.allow = c 195:* rwm" allows every NVIDIA node`,
		`"lxc.cgroup2.devices.allow = a" allows every device`,
		`"lxc.cgroup2.devices.allow = c *:* rwm" allows every device`,
		`"lxc.cgroup2.devices.allow = c 195:3 rw" allows /dev/nvidia3 (195:3), a GPU the container is not given: delete it from /etc/pve/lxc/101.conf, or give the container that GPU (gpus in [containers.101])`,
		`"lxc.mount.entry = /dev/nvidia1 dev/nvidia1 none bind,optional,create=file" mounts /dev/nvidia1`,
		`"lxc.mount.entry = /dev dev none rbind" mounts the host's whole /dev`,
		`"dev0: /dev/nvidia2,mode=0666" passes /dev/nvidia2 through, a GPU the container is not given: ` + "`pct set 101 --delete dev0`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\n"); n != 7 {
		t.Errorf("%d findings, want 7 (the given GPU, nvidiactl and uvm reach no other GPU):\n%s", n, got)
	}
	// Unprivileged: Proxmox allows every device anyway; only mounts and devN count.
	sel.Privileged = false
	if got := render(Bypasses(hand, devs, sel)); strings.Count(got, "\n") != 3 || strings.Contains(got, "allows") {
		t.Errorf("unprivileged findings:\n%s", got)
	}
	// A container given every GPU reaches no other, but the rule for
	// every NVIDIA node stays named: nothing nvidiaprep adds narrows it.
	got = render(Bypasses(hand, devs, Grant{VMID: 101, All: true, Privileged: true, PVEConf: "/etc/pve/lxc/101.conf"}))
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, `"lxc.cgroup2.devices.allow = c 195:* rwm" allows every NVIDIA node (195:*)`) || !strings.Contains(got, "nvidiaprep enable 101 --adopt") {
		t.Errorf("a container with all GPUs:\n%s", got)
	}
	if got := Bypasses(hand, devs, Grant{VMID: 101, All: true}); len(got) != 0 {
		t.Errorf("an unprivileged container with all GPUs: %v", got)
	}
}
