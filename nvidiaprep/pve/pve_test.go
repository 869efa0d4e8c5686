package pve

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const ct101 = `arch: amd64
cores: 2
dev0: /dev/nvidia0,gid=44
dev1: path=/dev/nvidia-uvm
hookscript: local:snippets/nvidiaprep-hook
lxc.cgroup2.devices.allow: c 195:* rwm
lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file
unprivileged: 1

[snap1]
hookscript: local:snippets/old
lxc.cgroup.devices.allow: c 195:* rwm
`

func TestParseCT(t *testing.T) {
	ct := ParseCT(101, "/etc/pve/lxc/101.conf", []byte(ct101))
	if ct.Hookscript != "local:snippets/nvidiaprep-hook" || !ct.UsesHook() {
		t.Errorf("hookscript %q", ct.Hookscript)
	}
	if len(ct.LXC) != 2 || ct.LXC[0].Key != "lxc.cgroup2.devices.allow" || ct.LXC[0].Value != "c 195:* rwm" || ct.LXC[0].Line != 6 {
		t.Errorf("lxc lines %+v (the snapshot's must not count)", ct.LXC)
	}
	if len(ct.Devices) != 2 || ct.Devices[0].Path != "/dev/nvidia0" || ct.Devices[1].Path != "/dev/nvidia-uvm" {
		t.Errorf("devices %+v", ct.Devices)
	}
	if other := ParseCT(102, "", []byte("hookscript: local:snippets/mine.sh\n")); other.UsesHook() {
		t.Error("another hookscript counts as nvidiaprep's")
	}
}

func TestReadCTs(t *testing.T) {
	dir := t.TempDir()
	if cts, err := ReadCTs(dir); err != nil || cts != nil {
		t.Errorf("no lxc dir: %v %v", cts, err)
	}
	os.MkdirAll(filepath.Join(dir, "lxc"), 0o755)
	for name, text := range map[string]string{"101.conf": ct101, "99.conf": "", "abc.conf": "", "100.conf": "arch: amd64\n", "102.conf.tmp": ""} {
		os.WriteFile(filepath.Join(dir, "lxc", name), []byte(text), 0o644)
	}
	cts, err := ReadCTs(dir)
	if err != nil || len(cts) != 2 || cts[0].VMID != 100 || cts[1].VMID != 101 || cts[1].Path != CTPath(dir, 101) {
		t.Errorf("%+v %v", cts, err)
	}
}

const storageCfg = `dir: local
	path /var/lib/vz
	content iso,vztmpl,backup

lvmthin: local-lvm
	thinpool data
	vgname pve
	content rootdir,images

nfs: shared
	export /export
	server 10.0.0.1
	content snippets,iso
`

func TestHookscriptPath(t *testing.T) {
	st := parseStorage([]byte(storageCfg))
	if len(st) != 3 || st[2].Path != "/mnt/pve/shared" || !slices.Contains(st[2].Content, "snippets") || slices.Contains(st[0].Content, "snippets") {
		t.Fatalf("%+v", st)
	}
	for vol, want := range map[string]string{
		"local:snippets/nvidiaprep-hook":  "/var/lib/vz/snippets/nvidiaprep-hook",
		"shared:snippets/nvidiaprep-hook": "/mnt/pve/shared/snippets/nvidiaprep-hook",
		"local-lvm:snippets/x":            "keeps no files",
		"local:iso/nvidiaprep-hook":       "not in a snippets directory",
		"nowhere:snippets/x":              "does not define",
		"/var/lib/vz/snippets/x":          "not a volume id",
	} {
		p, err := hookscriptPath(vol, st)
		got := p
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, want) {
			t.Errorf("%s: %q, want %q", vol, got, want)
		}
	}
	def, err := ReadStorage(t.TempDir())
	if err != nil || len(def) != 1 || def[0].Path != "/var/lib/vz" {
		t.Errorf("default storage %+v %v", def, err)
	}
}
