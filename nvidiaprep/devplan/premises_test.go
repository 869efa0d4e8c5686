package devplan

import (
	"slices"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/lxcconf"
)

func TestPremises(t *testing.T) {
	conf := strings.Join([]string{
		"lxc.autodev = 1",
		"lxc.autodev = 0",
		"lxc.mount.entry = /srv/mydev dev none bind,create=dir 0 0",
		"lxc.mount.entry = /srv/trap dev/.nvidiaprep none bind,create=dir 0 0",
		"lxc.mount.entry = /srv/trap dev/.nvidiaprep/drivers/580.142 none bind,create=dir 0 0",
		"lxc.mount.entry = /dev/.nvidiaprep/102/nvidia1 dev/nvidia9 none bind,create=file 0 0",
		"lxc.mount.entry = /tmp/fake dev/nvidia0 none bind,create=file 0 0",
		"lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file",
		"lxc.mount.entry = /mnt/data mnt/data none bind,create=dir 0 0",
		"lxc.hook.autodev = sh -c 'ln -s /host /dev/.nvidiaprep'",
		"lxc.hook.mount = /usr/local/bin/chmod-dev-nvidia0.sh",
		"lxc.hook.pre-start = /usr/share/lxc/hooks/lxc-pve-prestart-hook",
		"lxc.hook.start-host = /usr/local/bin/fix-perms /dev/nvidia0",
		"",
	}, "\n")
	entries, err := lxcconf.Entries([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	// Judged as pre-start does: on what remains once the binds of the
	// host's own nodes are left out.
	targets := []string{"dev/nvidiactl", "dev/nvidia0"}
	got := Premises(Except(entries, HostNodeBinds(entries, targets, "/dev")), targets, "/etc/pve/lxc/101.conf")
	var lines []string
	for _, f := range got {
		lines = append(lines, f.Line)
		if !strings.Contains(f.Fix, "/etc/pve/lxc/101.conf") || f.What == "" {
			t.Errorf("%+v", f)
		}
	}
	want := []string{
		"lxc.autodev = 0",
		"lxc.mount.entry = /srv/mydev dev none bind,create=dir 0 0",
		"lxc.mount.entry = /srv/trap dev/.nvidiaprep none bind,create=dir 0 0",
		"lxc.mount.entry = /srv/trap dev/.nvidiaprep/drivers/580.142 none bind,create=dir 0 0",
		"lxc.mount.entry = /dev/.nvidiaprep/102/nvidia1 dev/nvidia9 none bind,create=file 0 0",
		"lxc.mount.entry = /tmp/fake dev/nvidia0 none bind,create=file 0 0",
		"lxc.hook.autodev = sh -c 'ln -s /host /dev/.nvidiaprep'",
		"lxc.hook.start-host = /usr/local/bin/fix-perms /dev/nvidia0",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("named\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// The lines pre-start leaves out are exactly the binds of the host's own
// node at the path of the same name that nvidiaprep mounts; given the
// config with them, Premises names them, so nothing is both kept and
// let pass.
func TestHostNodeBinds(t *testing.T) {
	conf := strings.Join([]string{
		"lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file",                            // 1: left out
		"lxc.mount.entry = /srv/dev/nvidiactl /dev/nvidiactl none bind,create=file",                            // 2: left out (the host tree's node; absolute target)
		"lxc.mount.entry = /dev/nvidia-uvm/ dev//nvidia-uvm none bind,create=file",                             // 3: left out
		"lxc.mount.entry = /dev/nvidia1 dev/nvidia0 none bind,optional,create=file",                            // 4: another node
		"lxc.mount.entry = /tmp/fake dev/nvidia0 none bind,create=file 0 0",                                    // 5: not a node
		"lxc.mount.entry = /srv/dev/nvidia1 dev/nvidia1 none bind,create=file",                                 // 6: not a path nvidiaprep mounts
		"lxc.mount.entry = tmpfs dev/nvidiactl tmpfs defaults 0 0",                                             // 7: not a node
		"lxc.mount.entry = /dev/nvidia0 dev/nvidia0x none bind,create=file",                                    // 8: another path
		"lxc.mount.entry = /srv/dev/nvidia-caps/nvidia-cap1 dev/nvidia-caps/nvidia-cap1 none bind,create=file", // 9: left out
		"",
	}, "\n")
	entries, err := lxcconf.Entries([]byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	targets := []string{"dev/nvidiactl", "dev/nvidia0", "dev/nvidia-uvm", "dev/nvidia-caps/nvidia-cap1"}
	got := HostNodeBinds(entries, targets, "/srv/dev")
	if want := []int{1, 2, 3, 9}; !slices.Equal(got, want) {
		t.Errorf("left out lines %v, want %v", got, want)
	}
	var named []int
	for _, f := range Premises(entries, targets, "/etc/pve/lxc/101.conf") {
		for _, e := range entries {
			if strings.TrimSpace(e.Raw) == f.Line {
				named = append(named, e.Line)
			}
		}
	}
	if want := []int{1, 2, 3, 4, 5, 7, 9}; !slices.Equal(named, want) {
		t.Errorf("Premises names lines %v of the whole config, want %v", named, want)
	}
}
