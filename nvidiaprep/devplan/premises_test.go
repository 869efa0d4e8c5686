package devplan

import (
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
	got := Premises(entries, []string{"dev/nvidiactl", "dev/nvidia0"}, "/etc/pve/lxc/101.conf")
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
