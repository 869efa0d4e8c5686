package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/tomlscan"
)

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// env returns a getenv that looks names up in m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	want := Default()
	if want.Paths.LXCConfig(101) != "/var/lib/lxc/101/config" {
		t.Errorf("LXCConfig(101) = %q", want.Paths.LXCConfig(101))
	}
	if c := want.Container(101); !c.GPUs.All || c.GPUs.Selectors != nil || c.Required || !c.Install {
		t.Errorf("default container = %+v, want all GPUs, not required, install", c)
	}

	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	empty := writeFile(t, dir, "empty.toml", "# nothing here\n")
	for _, tc := range []struct {
		name  string
		files []File
		read  []string
	}{
		{"no files", nil, nil},
		{"empty names", []File{{}, {}}, nil},
		{"missing optional files", []File{{Path: missing, Optional: true}, {Path: missing, Optional: true}}, nil},
		{"empty file", []File{{Path: empty}}, []string{empty}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadFiles(tc.files...)
			if err != nil {
				t.Fatal(err)
			}
			w := want
			w.Files = tc.read
			if !reflect.DeepEqual(got, w) {
				t.Errorf("got  %+v\nwant %+v", got, w)
			}
		})
	}

	got, err := Load(env(map[string]string{EnvCluster: "", EnvNode: ""}))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Load with both variables empty = %+v, %v; want defaults", got, err)
	}
}

func TestSources(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []File
	}{
		{nil, []File{{ClusterFile, true}, {NodeFile, true}}},
		{map[string]string{EnvCluster: "", EnvNode: "/x.toml"}, []File{{"", false}, {"/x.toml", false}}},
		{map[string]string{EnvCluster: "/c.toml"}, []File{{"/c.toml", false}, {NodeFile, true}}},
	} {
		if got := Sources(env(tc.env)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Sources(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestLoadMissingNamedFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	for _, e := range []map[string]string{
		{EnvCluster: "", EnvNode: missing},
		{EnvCluster: missing, EnvNode: ""},
	} {
		_, err := Load(env(e))
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
			t.Errorf("Load(%v) error = %v, want one that names %s and wraps fs.ErrNotExist", e, err, missing)
		}
	}
}

func TestNodeOverridesCluster(t *testing.T) {
	dir := t.TempDir()
	cluster := writeFile(t, dir, "cluster.toml", `
[paths]
lxc = "/cluster/lxc"
dev = "/cluster/dev"

[provision]
max_concurrent = 4
install_timeout = "30m"

[containers.101]
gpus = ["0"]
required = true
install = false

[containers.102]
gpus = []
`)
	node := writeFile(t, dir, "node.toml", `
[paths]
dev = "/node/dev/"   # cleaned

[provision]
max_concurrent = 1

[containers.101]
gpus = ["GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d"]
`)
	got, err := Load(env(map[string]string{EnvCluster: cluster, EnvNode: node}))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Paths.LXC = "/cluster/lxc"
	want.Paths.Dev = "/node/dev"
	want.Provision.MaxConcurrent = 1
	want.Provision.InstallTimeout = 30 * time.Minute
	want.Containers = map[int]Container{
		// The node's table overrides the keys it sets and keeps the
		// cluster's others.
		101: {GPUs: gpusel.Selection{Selectors: []string{"GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d"}}, Required: true},
		102: {GPUs: gpusel.Selection{Selectors: []string{}}, Install: true},
	}
	want.Files = []string{cluster, node}
	want.Origins = map[int]map[string][]Origin{
		101: {
			"gpus":     {{cluster, 11, `["0"]`}, {node, 9, `["GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d"]`}},
			"required": {{cluster, 12, "true"}},
			"install":  {{cluster, 13, "false"}},
		},
		102: {"gpus": {{cluster, 16, "[]"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if !got.Container(102).GPUs.None() || got.Container(103).GPUs.None() {
		t.Errorf("None: 102 %v, 103 %v", got.Container(102).GPUs.None(), got.Container(103).GPUs.None())
	}
}

func TestGPUs(t *testing.T) {
	for _, tc := range []struct {
		toml string
		want gpusel.Selection
	}{
		{"required = true", gpusel.Selection{All: true}},
		{`gpus = ["all"]`, gpusel.Selection{All: true}},
		{`gpus = []`, gpusel.Selection{Selectors: []string{}}},
		{`gpus = ["0", "12", "GPU-8F6B1C2D-3E4F-5A6B-7C8D-9E0F1A2B3C4D", "MIG-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d",
			"MIG-GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d/1/0", "0000:01:00.0", "00000000:c1:1f.7", "01:00.1"]`,
			gpusel.Selection{Selectors: []string{"0", "12", "GPU-8F6B1C2D-3E4F-5A6B-7C8D-9E0F1A2B3C4D", "MIG-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d",
				"MIG-GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d/1/0", "0000:01:00.0", "00000000:c1:1f.7", "01:00.1"}}},
	} {
		p := writeFile(t, t.TempDir(), "node.toml", "[containers.101]\n"+tc.toml+"\n")
		cfg, err := LoadFiles(File{Path: p})
		if err != nil {
			t.Errorf("%s: %v", tc.toml, err)
			continue
		}
		if got := cfg.Container(101).GPUs; !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: GPUs = %#v, want %#v", tc.toml, got, tc.want)
		}
	}
}

// TestSpellings loads files that spell the same configuration differently.
func TestSpellings(t *testing.T) {
	want := Default()
	want.Paths.Cache = "/c"
	want.Driver = Driver{Version: "550.54.14", Run: "https://example.com/NVIDIA.run",
		SHA256: strings.Repeat("ab", 32), KernelModule: KernelModuleOpen, Reboot: RebootAuto, PinWorkingKernel: true}
	want.Containers = map[int]Container{101: {GPUs: gpusel.Selection{Selectors: []string{"0"}}, Required: true}}
	for _, text := range []string{
		`
[paths]
cache = "/c"
[driver]
version = "550.54.14"
run = "https://example.com/NVIDIA.run"
sha256 = "` + strings.Repeat("ab", 32) + `"
kernel_module = "open"
reboot = "auto"
pin_working_kernel = true
[containers.101]
gpus = ["0"]
required = true
install = false
`,
		`
paths.cache = '/c'
driver = { version = "550.54.14", run = "https://example.com/NVIDIA.run", sha256 = "` + strings.Repeat("ab", 32) + `", kernel_module = "open", reboot = "auto", pin_working_kernel = true }
containers.101.gpus = ["0"]
containers."101".required = true
containers.101.install = false
`,
		`
[containers]
101 = { gpus = [
  "0", # the first
], required = true, install = false }
[paths]
cache = "/c/./"
[driver]
version = "550.54.14"
run = """https://example.com/NVIDIA.run"""
sha256 = "` + strings.ToUpper(strings.Repeat("ab", 32)) + `"
kernel_module = "open"
reboot = "auto"
pin_working_kernel = true
`,
	} {
		p := writeFile(t, t.TempDir(), "node.toml", text)
		got, err := LoadFiles(File{Path: p})
		if err != nil {
			t.Errorf("%v\n%s", err, text)
			continue
		}
		want.Files = []string{p}
		want.Driver.SHA256 = got.Driver.SHA256 // the case is kept as written
		got.Origins = nil                      // lines differ; TestNodeOverridesCluster checks them
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got  %+v\nwant %+v\n%s", got, want, text)
		}
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		toml string
		line int
		key  string
		msg  string // a part of the message
	}{
		{"syntax", "[paths]\nlxc = /var/lib\n", 2, "paths.lxc", "expected value"},
		{"broken table header", "[paths]\nlxc = \"/x\"\n\n[containers.101\ngpus = []\n", 4, "", "expected '.' or ']' to end table name"},
		{"unterminated string", "[paths]\nlxc = \"/x\ndev = \"/dev\"\n", 2, "paths.lxc", "strings cannot contain newlines"},
		{"duplicate key", "[paths]\nlxc = \"/a\"\nlxc = \"/b\"\n", 3, "paths.lxc", "already been defined"},
		{"unknown top-level key", "# c\nbogus = 1\n[paths]\n", 2, "bogus", "unknown key (known keys: paths, provision, driver, containers)"},
		{"unknown key in paths", "[paths]\nlxc = \"/x\"\nlcx = \"/y\"\n", 3, "paths.lcx", "unknown key (known keys: lxc, dev, proc, sys, cache, state, pve, root)"},
		{"key in the wrong case", "[paths]\nLXC = \"/x\"\n", 2, "paths.LXC", "unknown key"},
		{"unknown key in container", "\n[containers.101]\ngpus = []\ngpu = [\"0\"]\n", 4, "containers.101.gpu", "unknown key (known keys: gpus, required, install, chain, strict, gid, mode)"},
		{"unknown dotted key", "[provision]\nmax_concurrent = 1\n[paths]\ndev.x = \"/x\"\n", 4, "paths.dev", "must be a string, not a table"},
		{"unknown key in inline table", "\npaths = { lxc = \"/x\", bogus = \"/y\" }\n", 2, "paths.bogus", "unknown key"},
		{"unknown key in multi-line inline table", "paths = {\n lxc = \"/x\",\n  bogus = 1 }\n", 3, "paths.bogus", "unknown key"},
		{"unknown key after multi-line string", "[driver]\nversion = \"\"\"\nnope = 1\n\"\"\"\nnope = 2\n", 5, "driver.nope", "unknown key"},
		{"bad vmid", "[containers.abc]\ngpus = []\n", 1, "containers.abc", `invalid vmid "abc": not a decimal number`},
		{"vmid with leading zero", "[containers.101]\n[containers.042]\n", 2, "containers.042", `invalid vmid "042": leading zero`},
		{"vmid out of range", "containers.99.gpus = []\n", 1, "containers.99", "out of range"},
		{"quoted vmid", "[containers.\"1 01\"]\n", 1, `containers."1 01"`, "invalid vmid"},
		{"bad selector", "[containers.101]\ngpus = [\n  \"0\", # first\n  \"GPU0\",\n]\n", 2, "containers.101.gpus", `invalid GPU selector "GPU0": want a GPU index`},
		{"bad PCI bus id", "[containers.101]\ngpus = [\"0000:01:20.0\"]\n", 2, "containers.101.gpus", "invalid GPU selector"},
		{"short UUID", "[containers.101]\ngpus = [\"GPU-8f6b\"]\n", 2, "containers.101.gpus", "invalid GPU selector"},
		{"all with others", "[containers.101]\ngpus = [\"all\", \"0\"]\n", 2, "containers.101.gpus", `"all" must be the only selector`},
		{"relative path", "[paths]\ncache = \"var/cache\"\n", 2, "paths.cache", `must be an absolute path, not "var/cache"`},
		{"empty path", "[paths]\n\nlxc = ''\n", 3, "paths.lxc", "must be an absolute path"},
		{"cache path with a colon", "[paths]\ncache = \"/srv/a:b\"\n", 2, "paths.cache", `"/srv/a:b" must not contain whitespace, commas, colons`},
		{"cache path with a space", "[paths]\ncache = \"/srv/nv cache\"\n", 2, "paths.cache", "must not contain whitespace"},
		{"gpus a string", "[containers.101]\ngpus = \"0\"\n", 2, "containers.101.gpus", "must be an array of GPU selectors (strings), not a string"},
		{"gpus of integers", "[containers.101]\ngpus = [0]\n", 2, "containers.101.gpus", "must be an array of GPU selectors (strings)"},
		{"gpus of tables", "[containers.101]\ngpus = [{a = 1}]\n", 2, "containers.101.gpus", "must be an array of GPU selectors (strings)"},
		{"required a string", "[containers.101]\nrequired = \"yes\"\n", 2, "containers.101.required", "must be a boolean"},
		{"paths a string", "paths = \"/x\"\n", 1, "paths", "must be a table, not a string"},
		{"container a boolean", "[containers]\n101 = true\n", 2, "containers.101", "must be a table, not a boolean"},
		{"array of tables", "[[containers]]\nx = 1\n", 1, "containers", "must be a table, not an array of tables"},
		{"bad duration", "[provision]\nsystemd_timeout = \"2 minutes\"\n", 2, "provision.systemd_timeout", `invalid duration "2 minutes": must be a positive duration`},
		{"zero duration", "[provision]\ninstall_timeout = \"0s\"\n", 2, "provision.install_timeout", "positive"},
		{"negative duration", "[provision]\ndpkg_lock_timeout = \"-1m\"\n", 2, "provision.dpkg_lock_timeout", "positive"},
		{"duration an integer", "[provision]\nsystemd_timeout = 120\n", 2, "provision.systemd_timeout", "must be a string, not an integer"},
		{"several bad durations", "[provision]\ninstall_timeout = \"y\"\nsystemd_timeout = \"x\"\ndpkg_lock_timeout = \"z\"\n", 2, "provision.install_timeout", `invalid duration "y"`},
		{"multi-line duration", "[provision]\n\nsystemd_timeout = \"\"\"\n2m\n\"\"\"\n", 3, "provision.systemd_timeout", `invalid duration "2m\n"`},
		{"dotted duration", "provision.dpkg_lock_timeout = '1 h'\n", 1, "provision.dpkg_lock_timeout", `invalid duration "1 h"`},
		{"byte order mark", "\ufeff# node\n[containers.101]\ngpus = [\"x\"]\n", 3, "containers.101.gpus", "invalid GPU selector"},
		{"byte order mark, syntax", "\ufeff\n\n[x\n", 3, "", "expected '.' or ']' to end table name"},
		{"max_concurrent 0", "[provision]\nmax_concurrent = 0\n", 2, "provision.max_concurrent", "must be at least 1"},
		{"bad version", "[driver]\nversion = \"latest\"\n", 2, "driver.version", "invalid version"},
		{"four-part version", "[driver]\nversion = \"580.159.04.1\"\n", 2, "driver.version", "it has 4 parts, but an NVIDIA driver version has two or three numbers"},
		{"relative installer", "[driver]\nrun = \"NVIDIA.run\"\n", 2, "driver.run", "absolute path or an http(s) URL"},
		{"ftp installer", "[driver]\nrun = \"ftp://example.com/NVIDIA.run\"\n", 2, "driver.run", "absolute path or an http(s) URL"},
		{"bad sha256", "[driver]\nsha256 = \"abc\"\n", 2, "driver.sha256", "64 hexadecimal digits"},
		{"bad kernel module", "[driver]\nkernel_module = \"nouveau\"\n", 2, "driver.kernel_module", `want "open", "proprietary" or "auto"`},
		{"bad reboot", "[driver]\nreboot = \"always\"\n", 2, "driver.reboot", `want "never" or "auto"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "node.toml", tc.toml)
			cfg, err := Load(env(map[string]string{EnvCluster: "", EnvNode: p}))
			if strings.HasPrefix(tc.key, "containers.") {
				// Confined to one container's table: the file loads, and
				// the error is that container's.
				if err != nil || len(cfg.Problems) != 1 {
					t.Fatalf("Load = %v, problems %v; want one problem and no error", err, cfg.Problems)
				}
				err = cfg.Problems[0]
				if vmid, verr := ParseVMID(strings.Split(tc.key, ".")[1]); verr == nil && cfg.ContainerError(vmid) != err {
					t.Errorf("ContainerError(%d) = %v, want %v", vmid, cfg.ContainerError(vmid), err)
				}
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %v, want an *Error", err)
			}
			if e.File != p || e.Line != tc.line || e.Key != tc.key || !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("error = %+v, want file %s, line %d, key %s, message containing %q", e, p, tc.line, tc.key, tc.msg)
			}
			prefix := p + ":" + strconv.Itoa(tc.line) + ": "
			if tc.key != "" {
				prefix += tc.key + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("error = %q, want it to start with %q", err, prefix)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	dir := t.TempDir()
	cluster := writeFile(t, dir, "cluster.toml", "[containers.101]\ngpus = [\"0\"]\n")
	node := writeFile(t, dir, "node.toml", "# node\n\n[paths]\nlxc = \"/var/lib/lxc\"\n\n[containers.101]\ngpu = [\"0\"]\n")
	cfg, err := LoadFiles(File{Path: cluster}, File{Path: node})
	want := node + ":7: containers.101.gpu: unknown key (known keys: gpus, required, install, chain, strict, gid, mode)"
	if err != nil || cfg.ContainerError(101) == nil || cfg.ContainerError(101).Error() != want {
		t.Errorf("error = %v, CT 101's = %v\nwant    %s", err, cfg.ContainerError(101), want)
	}

	// An error in the cluster file names the cluster file.
	bad := writeFile(t, dir, "bad.toml", "[containers.101]\ngpus = [\"x\"]\n")
	cfg, err = LoadFiles(File{Path: bad}, File{Path: node})
	if err != nil || cfg.ContainerError(101) == nil || !strings.HasPrefix(cfg.ContainerError(101).Error(), bad+":2: containers.101.gpus: ") {
		t.Errorf("error = %v, CT 101's = %v, want one about %s:2", err, cfg.ContainerError(101), bad)
	}
}

func TestParseVMID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int // 0: an error
	}{
		{"abc", 0}, {"../../etc", 0}, {"", 0}, {"-1", 0}, {"+100", 0}, {"99", 0},
		{"1000000000", 0}, {"99999999999999999999999", 0}, {"0101", 0}, {" 101", 0}, {"101 ", 0}, {"1_000", 0},
		{"100", 100}, {"101", 101}, {"999999999", 999999999},
	} {
		got, err := ParseVMID(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseVMID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "invalid vmid "+strconv.Quote(tc.in)+": ") {
			t.Errorf("ParseVMID(%q) error = %q", tc.in, err)
		}
	}
}

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"",
		"[paths]\nlxc = \"/var/lib/lxc\"\ndev = \"/dev/../dev\"\n",
		"[containers.101]\ngpus = [\"0\", \"0000:01:00.0\"]\nrequired = true\n",
		"containers = { 102 = { gpus = [] } }\n[provision]\nsystemd_timeout = \"1m\"\n",
		"[driver]\nversion = \"550.54.14\"\nrun = \"\"\"/x.run\"\"\"\n",
		"[[containers]]\na = [{b = 1}]\n",
		"[paths]\nlxc = 'relative'\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ix := tomlscan.Scan(data) // must not panic or hang on anything
		if md, err := toml.Decode(string(data), &struct{}{}); err == nil {
			for _, k := range md.Keys() {
				if ix.Line(k.String()) == 0 {
					t.Fatalf("tomlscan does not find %q", k)
				}
			}
		}
		l := newLoader(Limits{})
		if err := l.add("fuzz.toml", data); err != nil {
			var e *Error
			if !errors.As(err, &e) || e.File != "fuzz.toml" {
				t.Fatalf("error %v is not an *Error naming the file", err)
			}
			if e.Line < 0 || e.Line > bytes.Count(data, []byte("\n"))+1 {
				t.Fatalf("error %v names line %d of a file of %d lines", err, e.Line, bytes.Count(data, []byte("\n"))+1)
			}
			return
		}
		p := l.cfg.Paths
		for _, s := range []string{p.LXC, p.Dev, p.Proc, p.Sys, p.Cache, p.State} {
			if !filepath.IsAbs(s) || filepath.Clean(s) != s {
				t.Fatalf("path %q is not absolute and clean", s)
			}
		}
		for id, c := range l.cfg.Containers {
			if id < MinVMID || id > MaxVMID || c.GPUs.All != (c.GPUs.Selectors == nil) {
				t.Fatalf("container %d: %+v", id, c)
			}
		}
	})
}

func TestChain(t *testing.T) {
	dir := t.TempDir()
	load := func(text string) (Config, error) {
		p := filepath.Join(dir, "node.toml")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return LoadFiles(File{Path: p})
	}
	cfg, err := load("[containers.101]\nchain = \"local:snippets/mount-nfs.sh\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Container(101).Chain; got != "local:snippets/mount-nfs.sh" {
		t.Errorf("chain = %q", got)
	}
	if got := cfg.Container(102).Chain; got != "" {
		t.Errorf("a container without a table chains %q", got)
	}
	for _, bad := range []string{"mount-nfs.sh", "local:mount-nfs.sh", "local:snippets/", "local:snippets/a/b", ":snippets/x", "local:snippets/nvidiaprep-hook"} {
		cfg, err := load("[containers.101]\nchain = \"" + bad + "\"\n")
		if err == nil {
			err = cfg.ContainerError(101)
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != "containers.101.chain" || ce.Line != 2 {
			t.Errorf("chain %q: error %v, want one for containers.101.chain at line 2", bad, err)
		}
	}
}

// gid and mode give the container's device nodes a group and mode inside;
// anything else is named with its line.
func TestNodeGIDAndMode(t *testing.T) {
	p := writeFile(t, t.TempDir(), "node.toml", "[containers.101]\ngid = 44\nmode = \"0660\"\n")
	cfg, err := LoadFiles(File{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Container(101); c.NodeGID == nil || *c.NodeGID != 44 || c.NodeMode != 0o660 {
		t.Errorf("container %+v", c)
	}
	if c := cfg.Container(102); c.NodeGID != nil || c.NodeMode != 0 {
		t.Errorf("a container without the keys: %+v", c)
	}
	for text, want := range map[string]string{
		"[containers.101]\ngid = -1\n":        "gid -1",
		"[containers.101]\ngid = 70000\n":     "gid 70000",
		"[containers.101]\nmode = \"0777\"\n": `mode "0777"`,
		"[containers.101]\nmode = \"rw\"\n":   `mode "rw"`,
		"[containers.101]\nmode = 660\n":      "mode",
		"[containers.101]\ngid = \"video\"\n": "gid",
	} {
		// An error in a container's table is that container's alone.
		cfg, err := LoadFiles(File{Path: writeFile(t, t.TempDir(), "node.toml", text)})
		if err == nil {
			err = cfg.ContainerError(101)
		}
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "node.toml:2:") {
			t.Errorf("%q: %v, want an error naming %q at line 2", text, err, want)
		}
	}
}

func TestMIGTripleSelector(t *testing.T) {
	p := writeFile(t, t.TempDir(), "node.toml", "[containers.101]\ngpus = [\"0:1:0\", \"MIG-GPU-1d2a0c41-7c39-4a3b-9d35-000000000000/1/0\"]\n")
	cfg, err := LoadFiles(File{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Container(101).GPUs.Selectors; len(got) != 2 || got[0] != "0:1:0" {
		t.Errorf("selectors %q", got)
	}
	if cfg, err := LoadFiles(File{Path: writeFile(t, t.TempDir(), "node.toml", "[containers.101]\ngpus = [\"0:x:0\"]\n")}); err == nil && cfg.ContainerError(101) == nil {
		t.Error("0:x:0 was accepted")
	}
}
