package lxcparse

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	lxc "github.com/lxc/go-lxc"

	"nvidiaprep/nvidiaprep/devplan"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// generated is a config as Proxmox's update_lxc_config writes it for an
// unprivileged container, with a hand-written line.
const generated = `lxc.cgroup.relative = 0
lxc.cgroup.dir.monitor = lxc.monitor/101
lxc.cgroup.dir.container = lxc/101
lxc.cgroup.dir.container.inner = ns
lxc.arch = amd64
lxc.cgroup2.devices.deny =
lxc.cgroup2.devices.allow =
lxc.cgroup2.devices.allow = a
lxc.idmap = u 0 100000 65536
lxc.idmap = g 0 100000 65536
lxc.monitor.unshare = 1
lxc.tty.max = 0
lxc.console.path = none
lxc.cgroup2.devices.deny = c 5:1 rwm
lxc.mount.entry = /srv/data mnt/data none bind,create=dir 0 0
lxc.rootfs.path = /var/lib/lxc/101/rootfs
`

// dir holds the config file that load writes, one per test process: a
// fuzz worker calls its target one input at a time, and a directory made
// and removed per input would cost more than the parsing.
var dir string

func TestMain(m *testing.M) {
	var err error
	if dir, err = os.MkdirTemp("", "lxcparse-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// view is what liblxc makes of a config: its mount entries and device
// rules, in order, or the error of its parser.
type view struct {
	mounts, allows []string
}

// load parses config with liblxc's own parser (lxc_config_read, as
// lxc-start reads /var/lib/lxc/<vmid>/config).
func load(t *testing.T, config []byte) (view, error) {
	t.Helper()
	file := filepath.Join(dir, "config")
	if err := os.WriteFile(file, config, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := lxc.NewContainer("fuzz", dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	if err := c.LoadConfigFile(file); err != nil {
		return view{}, err
	}
	return view{mounts: nonEmpty(c.ConfigItem("lxc.mount.entry")), allows: nonEmpty(c.ConfigItem("lxc.cgroup2.devices.allow"))}, nil
}

func nonEmpty(v []string) []string {
	var out []string
	for _, s := range v {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// unsafeToLoad tells the configs that would make liblxc read other files
// (lxc.include), or open log files, while loading: not for a fuzzer.
func unsafeToLoad(config []byte) bool {
	return bytes.Contains(config, []byte("include")) || bytes.Contains(config, []byte("log"))
}

// FuzzLiblxcAcceptsTheBlock checks pre-start's edit against liblxc: a
// config that liblxc's parser accepted is still accepted with nvidiaprep's
// block (rendered from nodes of any name, below any device root) applied,
// and liblxc then sees the config's own mount entries followed by ours,
// byte for byte as rendered, and our device rule last.
func FuzzLiblxcAcceptsTheBlock(f *testing.F) {
	f.Add([]byte(generated), "dev", "nvidia0", uint32(195), uint32(0))
	f.Add([]byte(generated+lxcconf.Begin+"\nlxc.mount.entry = /old dev/old none bind 0 0\n"+lxcconf.End+"\n"), "srv/test dev", "nvidia-caps/nvidia-cap12", uint32(241), uint32(12))
	f.Add([]byte("lxc.arch = amd64"), `a\b`, "x\ty z", uint32(1), uint32(2))
	f.Add([]byte(""), "dev", "nvidia-uvm", uint32(4095), uint32(1048575))
	f.Fuzz(func(t *testing.T, config []byte, dev, name string, major, minor uint32) {
		if unsafeToLoad(config) || name == "" || strings.ContainsRune(dev+name, 0) {
			return
		}
		clean, err := lxcconf.Apply(config, nil)
		if err != nil {
			return // broken markers: pre-start refuses the config
		}
		if _, err := load(t, config); err != nil {
			return // liblxc refused it already
		}
		user, err := load(t, clean)
		if err != nil {
			t.Fatalf("liblxc accepts the config but not without our old block:\n%q", config)
		}
		p := devplan.ForNodes([]nvdev.Node{{Name: name, Path: path.Join("/", dev, name), Major: major, Minor: minor}})
		m, err := devplan.ReadOnlyOverlay("dev/.nvidiaprep/drivers", path.Join("/", dev, "drivers"), path.Join("/", dev, "empty"))
		if err != nil {
			return // config refuses such a cache path
		}
		p.Mounts = append(p.Mounts, m)
		lines := append([]string{"# driver 580.159.04; GPUs 0=0000:01:00.0"}, p.Lines()...)
		out, err := lxcconf.Apply(config, lines)
		if err != nil {
			if strings.ContainsRune(dev+name, '\r') {
				return // refused: a carriage return cannot be written into a config line
			}
			t.Fatalf("Apply refused %q: %v", lines, err)
		}
		got, err := load(t, out)
		if err != nil {
			t.Fatalf("liblxc accepted the config but refuses it with our block: %v\n%q", err, out)
		}
		var want []string
		for _, l := range lines[len(lines)-2:] {
			want = append(want, strings.TrimPrefix(l, "lxc.mount.entry = "))
		}
		want = append(append([]string(nil), user.mounts...), want...)
		if strings.Join(got.mounts, "\n") != strings.Join(want, "\n") {
			t.Fatalf("liblxc reads the mount entries as\n%q\nwant\n%q\nconfig:\n%q", got.mounts, want, out)
		}
		rule := strings.TrimPrefix(lines[1], "lxc.cgroup2.devices.allow = ")
		if len(got.allows) == 0 || got.allows[len(got.allows)-1] != rule {
			t.Fatalf("liblxc reads the device rules as %q, want %q last\nconfig:\n%q", got.allows, rule, out)
		}
	})
}
