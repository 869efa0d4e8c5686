package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// chainNode is a node tree with a container 101 whose [containers.101]
// chains the admin's hookscript local:snippets/admin.sh, which appends its
// arguments to calls.
type chainNode struct {
	snippets, calls, lxcConfig string
}

func newChainNode(t *testing.T, script string) chainNode {
	t.Helper()
	root := t.TempDir()
	n := chainNode{snippets: filepath.Join(root, "vz/snippets"), calls: filepath.Join(root, "calls"),
		lxcConfig: filepath.Join(root, "lxc/101/config")}
	for _, d := range []string{n.snippets, filepath.Dir(n.lxcConfig), filepath.Join(root, "pve"), filepath.Join(root, "dev"), filepath.Join(root, "proc"), filepath.Join(root, "sys")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "pve/storage.cfg"), "dir: local\n\tpath "+filepath.Join(root, "vz")+"\n\tcontent snippets,vztmpl\n", 0o644)
	write(n.lxcConfig, "lxc.uts.name = ct101\n", 0o644)
	if script != "" {
		write(filepath.Join(n.snippets, "admin.sh"), "#!/bin/sh\necho \"$1 $2\" >>"+n.calls+"\n"+script, 0o755)
	}
	cfg := filepath.Join(root, "nvidiaprep.toml")
	write(cfg, `[paths]
lxc = "`+filepath.Join(root, "lxc")+`"
dev = "`+filepath.Join(root, "dev")+`"
proc = "`+filepath.Join(root, "proc")+`"
sys = "`+filepath.Join(root, "sys")+`"
cache = "`+filepath.Join(root, "cache")+`"
state = "`+filepath.Join(root, "state")+`"
pve = "`+filepath.Join(root, "pve")+`"

[containers.101]
install = false
chain = "local:snippets/admin.sh"
`, 0o644)
	t.Setenv("NVIDIAPREP_CONFIG", cfg)
	t.Setenv("NVIDIAPREP_CLUSTER_CONFIG", "")
	return n
}

func (n chainNode) callsMade(t *testing.T) string {
	b, err := os.ReadFile(n.calls)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestChainedHookscriptRunsInEveryPhase(t *testing.T) {
	n := newChainNode(t, "echo admin-says-hello\n")
	for _, phase := range []string{"pre-start", "post-start", "pre-stop", "post-stop"} {
		var out, errb bytes.Buffer
		if rc := run([]string{"101", phase}, &out, &errb); rc != 0 {
			t.Fatalf("%s: exit %d: %s", phase, rc, errb.String())
		}
		if !strings.Contains(out.String(), "admin-says-hello") {
			t.Errorf("%s: the admin's hookscript's output is not in the task log: %q", phase, out.String())
		}
	}
	if got, want := n.callsMade(t), "101 pre-start\n101 post-start\n101 pre-stop\n101 post-stop\n"; got != want {
		t.Errorf("the admin's hookscript was called as\n%s\nwant\n%s", got, want)
	}
}

func TestChainedPreStartFailureAbortsTheStart(t *testing.T) {
	n := newChainNode(t, "exit 3\n")
	before, _ := os.ReadFile(n.lxcConfig)
	var out, errb bytes.Buffer
	if rc := run([]string{"101", "pre-start"}, &out, &errb); rc != 1 {
		t.Fatalf("exit %d, want 1 (Proxmox aborts the start): %s", rc, errb.String())
	}
	if msg := errb.String(); !strings.Contains(msg, "local:snippets/admin.sh") || !strings.Contains(msg, "start is aborted") || !strings.Contains(msg, "exit status 3") {
		t.Errorf("the task log does not say which hookscript failed and what follows: %s", msg)
	}
	if after, _ := os.ReadFile(n.lxcConfig); !bytes.Equal(before, after) {
		t.Errorf("the LXC config changed although the start is aborted:\n%s", after)
	}
	// In post-start a failure is only reported: nvidiaprep's part still runs.
	errb.Reset()
	if rc := run([]string{"101", "post-start"}, &out, &errb); rc != 1 {
		t.Errorf("post-start: exit %d, want 1 (Proxmox warns)", rc)
	}
}

func TestNoChainRunsNvidiaprepAlone(t *testing.T) {
	n := newChainNode(t, "")
	var out, errb bytes.Buffer
	if rc := run([]string{"--no-chain", "101", "pre-start"}, &out, &errb); rc != 0 {
		t.Fatalf("exit %d: %s", rc, errb.String())
	}
	if got := n.callsMade(t); got != "" {
		t.Errorf("--no-chain ran the admin's hookscript: %q", got)
	}
}

func TestMissingChainedHookscriptIsNamed(t *testing.T) {
	newChainNode(t, "") // no admin.sh
	var out, errb bytes.Buffer
	if rc := run([]string{"101", "pre-start"}, &out, &errb); rc != 1 {
		t.Fatalf("exit %d, want 1: Proxmox refuses to start a container whose hookscript is missing", rc)
	}
	if msg := errb.String(); !strings.Contains(msg, "script 'local:snippets/admin.sh' does not exist") {
		t.Errorf("the task log does not name the missing hookscript: %s", msg)
	}
	// A stop is never held up by it.
	if rc := run([]string{"101", "pre-stop"}, &out, &errb); rc != 1 {
		t.Errorf("pre-stop with the chained hookscript missing: exit %d, want 1 (reported)", rc)
	}
}
