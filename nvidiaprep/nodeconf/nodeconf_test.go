package nodeconf

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/gpusel"
)

const adminFile = `# my node
[paths]
cache = "/srv/nvidia"   # big disk

# Plex
[containers.101]
# the A100 only
gpus = [
  "0",   # A100
]
install = false  # we ship our own

[containers.102]
gpus = []
`

func ptr[T any](v T) *T { return &v }

func TestSetContainerEditsInPlace(t *testing.T) {
	sel := gpusel.ParseFlag("1,GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d")
	out, err := SetContainer([]byte(adminFile), 101, Settings{GPUs: &sel, Required: ptr(true)}, config.Container{})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(adminFile, "gpus = [\n  \"0\",   # A100\n]\ninstall = false  # we ship our own\n",
		"gpus = [\"1\", \"GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d\"]\ninstall = false  # we ship our own\nrequired = true\n", 1)
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	cfg := load(t, out)
	ct := cfg.Containers[101]
	if !ct.Required || ct.Install || len(ct.GPUs.Selectors) != 2 || len(cfg.Containers[102].GPUs.Selectors) != 0 || cfg.Paths.Cache != "/srv/nvidia" {
		t.Errorf("loaded %+v", cfg)
	}
	// The same edit again changes nothing.
	again, err := SetContainer(out, 101, Settings{GPUs: &sel, Required: ptr(true)}, config.Container{})
	if err != nil || string(again) != string(out) {
		t.Errorf("second edit: %v\n%s", err, again)
	}
}

func TestSetContainerKeepsTrailingComment(t *testing.T) {
	out, err := SetContainer([]byte("[containers.101]\nrequired = false # why\n"), 101, Settings{Required: ptr(true)}, config.Container{})
	if err != nil || string(out) != "[containers.101]\nrequired = true  # why\n" {
		t.Errorf("%v\n%q", err, out)
	}
}

func TestSetContainerAppendsFullTable(t *testing.T) {
	base := config.Container{GPUs: gpusel.Selection{Selectors: []string{"0"}}, Install: true} // from the cluster file
	out, err := SetContainer([]byte(adminFile), 103, Settings{Required: ptr(true)}, base)
	if err != nil {
		t.Fatal(err)
	}
	want := adminFile + "\n[containers.103]\ngpus = [\"0\"]\nrequired = true\ninstall = true\n"
	if string(out) != want {
		t.Errorf("got:\n%s", out)
	}
	out, err = SetContainer(nil, 104, Settings{}, config.Container{GPUs: gpusel.Selection{All: true}, Install: true})
	if err != nil || string(out) != "[containers.104]\ngpus = [\"all\"]\nrequired = false\ninstall = true\n" {
		t.Errorf("%v %q", err, out)
	}
}

func TestRemoveContainer(t *testing.T) {
	out, found, err := RemoveContainer([]byte(adminFile), 101)
	if err != nil || !found {
		t.Fatal(found, err)
	}
	// The comment above the header stays: it may be about more than the table.
	want := "# my node\n[paths]\ncache = \"/srv/nvidia\"   # big disk\n\n# Plex\n\n[containers.102]\ngpus = []\n"
	if string(out) != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
	out, found, err = RemoveContainer([]byte(adminFile), 102)
	if err != nil || !found || string(out) != strings.TrimSuffix(adminFile, "\n[containers.102]\ngpus = []\n") {
		t.Errorf("%v %v\n%q", found, err, out)
	}
	if _, found, _ := RemoveContainer([]byte(adminFile), 999); found {
		t.Error("found a table that does not exist")
	}
}

func TestOtherFormsAreRefused(t *testing.T) {
	for _, text := range []string{
		"containers.101.gpus = [\"0\"]\n",
		"[containers]\n101 = { gpus = [\"0\"] }\n",
	} {
		if _, err := SetContainer([]byte(text), 101, Settings{Required: ptr(true)}, config.Container{}); err == nil || !strings.Contains(err.Error(), "form other than a [containers.101] table") {
			t.Errorf("%q: %v", text, err)
		}
	}
	if _, err := SetContainer([]byte("[paths\n"), 101, Settings{}, config.Container{}); err == nil || !strings.Contains(err.Error(), "does not parse") {
		t.Errorf("broken file: %v", err)
	}
}

func TestScanIgnoresBracketsInValues(t *testing.T) {
	text := "[provision]\nx = \"\"\"\n[containers.101]\n\"\"\"\n[containers.101]\ngpus = [\n[\"a\"],\n]\n"
	lines := scan(text)
	var headers []int
	for i, l := range lines {
		if l.isHeader {
			headers = append(headers, i)
		}
	}
	if len(headers) != 2 || headers[1] != 4 || lines[5].span != 3 {
		t.Errorf("headers %v, spans %+v", headers, lines)
	}
}

func TestEditChecksBeforeReplacing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "nvidiaprep.toml")
	if err := os.WriteFile(path, []byte(adminFile), 0o640); err != nil {
		t.Fatal(err)
	}
	bad := gpusel.ParseFlag("0,banana")
	err := Edit(context.Background(), path, config.File{}, func(b []byte) ([]byte, error) {
		return SetContainer(b, 101, Settings{GPUs: &bad}, config.Container{})
	})
	if err == nil || !strings.Contains(err.Error(), path+":8: containers.101.gpus: invalid GPU selector \"banana\"") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Errorf("error %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != adminFile {
		t.Errorf("the file changed:\n%s", b)
	}
	good := gpusel.ParseFlag("all")
	if err := Edit(context.Background(), path, config.File{}, func(b []byte) ([]byte, error) {
		return SetContainer(b, 101, Settings{GPUs: &good}, config.Container{})
	}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's 0640", st.Mode().Perm())
	}
	// A missing file is created.
	fresh := filepath.Join(dir, "sub", "n.toml")
	if err := Edit(context.Background(), fresh, config.File{}, func(b []byte) ([]byte, error) {
		return SetContainer(b, 101, Settings{}, config.Container{GPUs: gpusel.Selection{All: true}, Install: true})
	}); err != nil {
		t.Fatal(err)
	}
	if cfg, err := config.LoadFiles(config.File{Path: fresh}); err != nil || !cfg.Containers[101].GPUs.All {
		t.Errorf("%v %+v", err, cfg)
	}
}

func load(t *testing.T, text []byte) config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "n.toml")
	if err := os.WriteFile(p, text, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadFiles(config.File{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A node file saved with a UTF-8 byte order mark (the hook reads it fine)
// is edited like any other, its mark kept; its table is found in place.
func TestByteOrderMarkIsKept(t *testing.T) {
	yes := true
	for _, text := range []string{"\ufeff[containers.101]\ngpus = [\"0\"]\n", "\ufeff# node\n[containers.101]\ngpus = [\"0\"]\n"} {
		out, err := SetContainer([]byte(text), 101, Settings{Required: &yes}, config.Container{})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !strings.HasPrefix(string(out), "\ufeff") || strings.Count(string(out), "[containers.101]") != 1 || !strings.Contains(string(out), "required = true") {
			t.Errorf("%q: got %q", text, out)
		}
		out, found, err := RemoveContainer([]byte(text), 101)
		if err != nil || !found || strings.Contains(string(out), "containers") || (len(out) > 0 && !strings.HasPrefix(string(out), "\ufeff")) {
			t.Errorf("remove %q: %q %v %v", text, out, found, err)
		}
	}
}

// A node file that is a symbolic link stays one: its target is edited; a
// link to nothing is an error that changes nothing.
func TestEditFollowsALinkedNodeFile(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "repo", "node.toml")
	os.MkdirAll(filepath.Dir(target), 0o755)
	os.WriteFile(target, []byte("[containers.101]\ngpus = [\"0\"]\n"), 0o644)
	link := filepath.Join(dir, "nvidiaprep.toml")
	os.Symlink("repo/node.toml", link)
	yes := true
	err := Edit(context.Background(), link, config.File{}, func(b []byte) ([]byte, error) {
		return SetContainer(b, 101, Settings{Required: &yes}, config.Container{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if to, err := os.Readlink(link); err != nil || to != "repo/node.toml" {
		t.Fatalf("the link was replaced: %q %v", to, err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "required = true") {
		t.Fatalf("the target was not edited: %q", b)
	}
	dangling := filepath.Join(dir, "dangling.toml")
	os.Symlink("missing/node.toml", dangling)
	err = Edit(context.Background(), dangling, config.File{}, func(b []byte) ([]byte, error) { return []byte("x = 1\n"), nil })
	if err == nil || !strings.Contains(err.Error(), "symbolic link to missing/node.toml") {
		t.Fatalf("a link to nothing: %v", err)
	}
	if to, _ := os.Readlink(dangling); to != "missing/node.toml" {
		t.Fatalf("the dangling link was replaced")
	}
}
