package devplan

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// getmntentFields splits an lxc.mount.entry value the way LXC reads it:
// LXC hands the values to glibc's getmntent_r, which splits a line at
// blanks and tabs and decodes the escapes \040, \011, \012, \134 and \\
// (misc/mntent_r.c, decode_name).
func getmntentFields(value string) []string {
	value = strings.TrimRight(value, " \t")
	var out []string
	for _, f := range strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == '\t' }) {
		var b strings.Builder
		for i := 0; i < len(f); i++ {
			switch {
			case strings.HasPrefix(f[i:], `\040`):
				b.WriteByte(' ')
				i += 3
			case strings.HasPrefix(f[i:], `\011`):
				b.WriteByte('\t')
				i += 3
			case strings.HasPrefix(f[i:], `\012`):
				b.WriteByte('\n')
				i += 3
			case strings.HasPrefix(f[i:], `\\`):
				b.WriteByte('\\')
				i++
			case strings.HasPrefix(f[i:], `\134`):
				b.WriteByte('\\')
				i += 3
			default:
				b.WriteByte(f[i])
			}
		}
		out = append(out, b.String())
	}
	return out
}

// FuzzLines renders a plan for a node of any name below any device root,
// and the driver cache mount at any path, and checks that each line is one
// config line that LXC reads back as the same mount (source, target,
// options) and that the block they make applies to any config as a block
// must: once equals twice, and no other line changes.
func FuzzLines(f *testing.F) {
	f.Add("dev", "nvidia0", "var/cache/nvidiaprep/drivers", uint32(195), uint32(0), []byte("lxc.arch = amd64\n"))
	f.Add("srv/test dev", "nvidia-caps/nvidia-cap12", "a\tb\\c\nd", uint32(241), uint32(12), []byte(""))
	f.Add(`x\040y`, "nvidia-uvm", `\\134`, uint32(4095), uint32(1048575), []byte("# BEGIN nvidiaprep: written by nvidiaprep-hook at every start; edits here are lost\nx = 1\n# END nvidiaprep\n"))
	f.Fuzz(func(t *testing.T, dev, name, cache string, major, minor uint32, config []byte) {
		// Host paths cannot hold NUL; node names come from the driver and
		// are never empty.
		if name == "" || strings.ContainsRune(dev+name+cache, 0) {
			return
		}
		node := nvdev.Node{Name: name, Path: path.Join("/", dev, name), Major: major, Minor: minor}
		p := ForNodes([]nvdev.Node{node})
		p.Mounts = append(p.Mounts, Mount{Source: path.Join("/", cache), Target: "dev/.nvidiaprep/drivers", Dir: true, ReadOnly: true})
		lines := p.Lines()
		if len(lines) != 3 {
			t.Fatalf("%d lines for one node and one mount: %q", len(lines), lines)
		}
		for i, l := range lines {
			if strings.Contains(l, "\n") {
				t.Fatalf("line %q holds a newline", l)
			}
			key, value, ok := strings.Cut(l, " = ")
			if !ok {
				t.Fatalf("line %q is not key = value", l)
			}
			if i == 0 {
				continue
			}
			m := p.Mounts[i-1]
			opts := "bind,optional,create=file"
			if m.Dir {
				opts = "bind,optional,create=dir,ro"
			}
			want := []string{m.Source, m.Target, "none", opts}
			if got := getmntentFields(value); key != "lxc.mount.entry" || strings.Join(got, "\x00") != strings.Join(want, "\x00") {
				t.Fatalf("%q reads back as %q, want %q", l, got, want)
			}
		}
		once, err := lxcconf.Apply(config, lines)
		if err != nil {
			if strings.ContainsAny(dev+name+cache, "\r") {
				return // a carriage return cannot be written into an LXC config line
			}
			if _, err := lxcconf.Apply(config, nil); err != nil {
				return // broken markers: refused
			}
			t.Fatalf("Apply refused the rendered lines %q: %v", lines, err)
		}
		twice, err := lxcconf.Apply(once, lines)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("applying twice differs: %v\n%q\n%q", err, once, twice)
		}
		stripped, _ := lxcconf.Apply(once, nil)
		clean, _ := lxcconf.Apply(config, nil)
		if len(clean) > 0 && !bytes.HasSuffix(clean, []byte("\n")) {
			clean = append(clean, '\n')
		}
		if !bytes.Equal(stripped, clean) {
			t.Fatalf("lines outside the block changed:\n%q\n%q", stripped, clean)
		}
		entries, err := lxcconf.Entries(once)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			for _, l := range lines {
				if e.Raw == l && !bytes.Contains(clean, []byte(l)) {
					t.Fatalf("a block line counts as the user's: %q", l)
				}
			}
		}
	})
}
