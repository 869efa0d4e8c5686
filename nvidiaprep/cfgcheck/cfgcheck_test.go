package cfgcheck

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/nvdev"
)

var twoGPUs = []nvdev.GPU{
	{Index: 0, UUID: "GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d", PCIBusID: "0000:01:00.0", Minor: 0},
	{Index: 1, UUID: "GPU-11111111-2222-3333-4444-555555555555", PCIBusID: "0000:02:00.0", Minor: 1},
}

func listed(gpus []nvdev.GPU) func(config.Paths) ([]nvdev.GPU, error) {
	return func(config.Paths) ([]nvdev.GPU, error) { return gpus, nil }
}

// node writes a node tree: the configuration file (node.toml, its [paths]
// below dir) and Proxmox's configs of the containers named.
func node(t *testing.T, tables string, cts map[string]string) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	for vmid, text := range cts {
		p := filepath.Join(dir, "pve/lxc", vmid+".conf")
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file = filepath.Join(dir, "node.toml")
	text := "[paths]\npve = \"" + filepath.Join(dir, "pve") + "\"\nroot = \"" + dir + "\"\n\n" + tables
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func findings(r Report) string {
	var b strings.Builder
	for _, f := range r.Findings {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func TestCheckAgainstThisNode(t *testing.T) {
	hooked := "hookscript: local:snippets/nvidiaprep-hook\n"
	_, file := node(t, `[containers.101]
gpus = ["0"]

[containers.102]
gpus = ["7"]
required = true

[containers.103]
gpus = ["3", "1"]

[containers.104]
gpus = ["1", "0000:02:00.0"]

[containers.105]
gpus = []
required = true

[containers.106]
gpus = ["0"]
chain = "local:snippets/gone.sh"

[containers.107]
gpu = ["0"]

[containers.900]
gpus = ["5"]
`, map[string]string{"101": hooked, "102": hooked, "103": hooked, "104": hooked, "105": hooked, "106": hooked, "107": hooked, "108": hooked, "109": "arch: amd64\n"})
	r := Check(Options{Files: []config.File{{Path: file}}, GPUs: listed(twoGPUs)})
	got := findings(r)
	for _, want := range []string{
		file + ":9: containers.102.gpus: error: GPU selector \"7\" matches no GPU on this node; GPUs here: 0 (GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d, 0000:01:00.0); 1 (GPU-11111111-2222-3333-4444-555555555555, 0000:02:00.0); CT 102 has required = true, so it does not start",
		file + ":13: containers.103.gpus: warning: GPU selector \"3\" matches no GPU",
		file + ":16: containers.104.gpus: warning: GPU selectors \"1\" and \"0000:02:00.0\" name the same GPU 1",
		file + ":20: containers.105.required: warning: required = true with gpus = []",
		file + ":24: containers.106.chain: error: script 'local:snippets/gone.sh' does not exist",
		file + ":27: containers.107.gpu: error: unknown key (known keys: gpus, required, install, chain, strict, gid, mode) (CT 107's start is refused until it is corrected; other containers start)",
		file + ": containers.900: note: CT 900 is not on this node",
		"note: CT 108 uses nvidiaprep's hookscript without a [containers.108] table: it gets every GPU of the node (the default)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("findings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "containers.101") || strings.Contains(got, "109") {
		t.Errorf("findings about CT 101 or 109, which are fine:\n%s", got)
	}
	if r.OK() {
		t.Errorf("OK with errors")
	}
}

func TestCheckOKAndFileErrors(t *testing.T) {
	_, file := node(t, "[containers.101]\ngpus = [\"GPU-8f6b1c2d-3e4f-5a6b-7c8d-9e0f1a2b3c4d\"]\nrequired = true\n",
		map[string]string{"101": "hookscript: local:snippets/nvidiaprep-hook\n"})
	r := Check(Options{Files: []config.File{{Path: file}}, GPUs: listed(twoGPUs)})
	if !r.OK() || len(r.Findings) != 0 || len(r.Files) != 1 {
		t.Errorf("a good file: %+v", r)
	}
	// No GPU listed: said, not an error.
	r = Check(Options{Files: []config.File{{Path: file}}, GPUs: listed(nil)})
	if !r.OK() || !strings.Contains(findings(r), "the GPU selectors are not checked") {
		t.Errorf("no GPUs: %s", findings(r))
	}
	// A file that does not parse, or over a limit: every start refused.
	for _, text := range []string{"[containers.101\n", "x = " + strings.Repeat("[", 20) + strings.Repeat("]", 20) + "\n"} {
		os.WriteFile(file, []byte(text), 0o644)
		r = Check(Options{Files: []config.File{{Path: file}}, GPUs: listed(twoGPUs)})
		if r.OK() || len(r.Findings) != 1 || !strings.HasPrefix(r.Findings[0].String(), file+":1: ") || !strings.Contains(r.Findings[0].Msg, "every start of a container that uses nvidiaprep's hookscript is refused") {
			t.Errorf("%q: %s", text, findings(r))
		}
	}
}
