package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// check loads a file as the hook would, in place of the node's (or, with
// --cluster, of the cluster's), against this node: exit status 1 and
// file:line when a start would be refused, 0 when all loads.
func TestCheckCommand(t *testing.T) {
	h, _, dir := gpuHost(t, "hookscript: local:snippets/nvidiaprep-hook\n")
	check := func(a []string, o, e *bytes.Buffer) int { return h.check(a, o, e) }
	os.WriteFile(filepath.Join(dir, "nvidiaprep.toml"), []byte("# node\n"), 0o644)
	code, out, _ := call(check)
	if code != 0 || !strings.Contains(out, "loads as the hook would load it") {
		t.Errorf("the files in effect: exit %d\n%s", code, out)
	}
	draft := filepath.Join(dir, "draft.toml")
	os.WriteFile(draft, []byte("[containers.9540]\ngpus = [\"7\"]\nrequired = true\n\n[containers.9541]\ngpu = [\"0\"]\n"), 0o644)
	code, out, _ = call(check, draft)
	for _, want := range []string{
		draft + ":2: containers.9540.gpus: error: GPU selector \"7\" matches no GPU on this node",
		draft + ":6: containers.9541.gpu: error: unknown key",
	} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q:\n%s", code, want, out)
		}
	}
	// As the cluster file, one that does not parse: every start refused.
	os.WriteFile(draft, []byte("[containers.9540]\ngpus = [\"0\"\n"), 0o644)
	if code, out, _ = call(check, "--cluster", draft); code != 1 || !strings.Contains(out, draft+":2: ") || !strings.Contains(out, "every start of a container that uses nvidiaprep's hookscript is refused") {
		t.Errorf("a cluster file that does not parse: exit %d\n%s", code, out)
	}
	if code, out, _ = call(check, "--json", draft); code != 1 || !strings.Contains(out, `"severity": "error"`) {
		t.Errorf("--json: exit %d\n%s", code, out)
	}
}
