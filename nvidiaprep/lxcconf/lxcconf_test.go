package lxcconf

import (
	"bytes"
	"strings"
	"testing"
)

const generated = `lxc.cgroup.relative = 0
lxc.cgroup.dir.monitor = lxc.monitor/101
lxc.arch = amd64
lxc.include = /usr/share/lxc/config/debian.common.conf
# a comment the user kept
lxc.cgroup2.devices.allow = c 195:* rwm
lxc.rootfs.path = /var/lib/lxc/101/rootfs
`

func TestApplyAppendsAndReplaces(t *testing.T) {
	once, err := Apply([]byte(generated), []string{"lxc.cgroup2.devices.allow = c 195:0 rw"})
	if err != nil {
		t.Fatal(err)
	}
	want := generated + Begin + "\nlxc.cgroup2.devices.allow = c 195:0 rw\n" + End + "\n"
	if string(once) != want {
		t.Fatalf("got\n%s\nwant\n%s", once, want)
	}
	twice, _ := Apply(once, []string{"lxc.cgroup2.devices.allow = c 195:0 rw"})
	if !bytes.Equal(once, twice) {
		t.Fatalf("applying twice differs from once:\n%s", twice)
	}
	replaced, _ := Apply(once, []string{"lxc.cgroup2.devices.allow = c 195:1 rw"})
	if strings.Contains(string(replaced), "195:0 rw") || strings.Count(string(replaced), Begin) != 1 {
		t.Fatalf("block not replaced:\n%s", replaced)
	}
	removed, _ := Apply(once, nil)
	if string(removed) != generated {
		t.Fatalf("removing the block must restore the config byte for byte:\n%q", removed)
	}
}

func TestApplyKeepsOddBytes(t *testing.T) {
	in := "lxc.arch = amd64\r\n  lxc.tty.max=0  \n\nno newline at end"
	out, err := Apply([]byte(in), []string{"x = y"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), in+"\n"+Begin) {
		t.Fatalf("other lines changed: %q", out)
	}
}

func TestBrokenMarkersAreRefused(t *testing.T) {
	for _, in := range []string{
		generated + Begin + "\nx = 1\n",
		generated + End + "\n",
		generated + Begin + "\n" + End + "\n" + Begin + "\n" + End + "\n",
	} {
		if _, err := Apply([]byte(in), []string{"a = b"}); err == nil {
			t.Errorf("want an error for\n%s", in)
		}
		if _, err := Entries([]byte(in)); err == nil {
			t.Errorf("Entries: want an error for\n%s", in)
		}
	}
}

func TestEntriesSkipOurBlockAndComments(t *testing.T) {
	in, _ := Apply([]byte(generated), []string{"lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file"})
	entries, err := Entries(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		t.Fatalf("want the 6 generated entries, got %+v", entries)
	}
	e := entries[4]
	if e.Line != 6 || e.Key != "lxc.cgroup2.devices.allow" || e.Value != "c 195:* rwm" {
		t.Fatalf("entry %+v", e)
	}
}

func TestApplyRejectsLineBreaksInLines(t *testing.T) {
	if _, err := Apply([]byte(generated), []string{"a = b\nlxc.hook.pre-start = /evil"}); err == nil {
		t.Fatal("a line with a line break must be refused")
	}
}

// FuzzApply: lines that are not ours come out byte for byte, applying twice
// equals applying once, and removing the block gives back the input when the
// input ended with a newline.
// liblxc stops reading a config at a NUL byte: such a config is refused,
// since the block after it would be ignored.
func TestNULIsRefused(t *testing.T) {
	config := []byte(generated + "lxc.arch = amd64\x00\n")
	for _, err := range []error{second(Apply(config, []string{"x = y"})), second(Entries(config))} {
		if err == nil || !strings.Contains(err.Error(), "line 8: a NUL byte") {
			t.Errorf("error %v, want a NUL byte on line 8", err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

func FuzzApply(f *testing.F) {
	f.Add([]byte(generated), "lxc.cgroup2.devices.allow = c 195:0 rw")
	f.Add([]byte(""), "x = y")
	f.Add([]byte("a = b"), "")
	f.Add([]byte(generated+Begin+"\nold = 1\n"+End+"\n"), "new = 2")
	f.Fuzz(func(t *testing.T, config []byte, line string) {
		if strings.ContainsAny(line, "\r\n") {
			return
		}
		var lines []string
		if line != "" {
			lines = []string{line}
		}
		once, err := Apply(config, lines)
		if err != nil {
			return // broken markers: refused, nothing to check
		}
		twice, err := Apply(once, lines)
		if err != nil || !bytes.Equal(once, twice) {
			t.Fatalf("applying twice differs: %v\n%q\n%q", err, once, twice)
		}
		stripped, err := Apply(once, nil)
		if err != nil {
			t.Fatal(err)
		}
		clean, _ := Apply(config, nil)
		if len(lines) > 0 && len(clean) > 0 && !bytes.HasSuffix(clean, []byte("\n")) {
			clean = append(clean, '\n')
		}
		if !bytes.Equal(stripped, clean) {
			t.Fatalf("lines outside the block changed:\n%q\n%q", stripped, clean)
		}
		if !bytes.Contains(config, []byte(Begin)) && !bytes.HasPrefix(once, config) {
			t.Fatalf("the input is not a prefix of the output:\n%q\n%q", config, once)
		}
	})
}

func TestDisable(t *testing.T) {
	in := "a = 1\r\nlxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind\nb = 2\nlast = 3"
	got := string(Disable([]byte(in), []int{2, 4, 9}))
	want := "a = 1\r\n" + Disabled + "lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind\nb = 2\n" + Disabled + "last = 3"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	e, err := Entries([]byte(got))
	if err != nil || len(e) != 2 || e[0].Key != "a" || e[1].Key != "b" {
		t.Errorf("entries of the result: %+v, %v", e, err)
	}
	if string(Disable([]byte(in), nil)) != in {
		t.Errorf("no lines changed the config")
	}
}

func TestBlockReadsBackWhatApplyWrote(t *testing.T) {
	lines := []string{"# driver 580.159.04; GPUs 0=0000:01:00.0", "lxc.cgroup2.devices.allow = c 195:0 rw"}
	cfg, err := Apply([]byte("lxc.arch = amd64\n"), lines)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Block(append(cfg, "lxc.tty.max = 0\n"...))
	if err != nil || strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Errorf("Block = %q, %v; want %q", got, err, lines)
	}
	if got, err := Block([]byte("lxc.arch = amd64\n")); got != nil || err != nil {
		t.Errorf("no block: %q, %v", got, err)
	}
	if _, err := Block([]byte(Begin + "\n")); err == nil {
		t.Error("a block without its END was read")
	}
}
