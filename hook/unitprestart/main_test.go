package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/lxcconf"
)

// gateNode is a node tree: <root>/pve/lxc/<vmid>.conf and
// <root>/lxc/<vmid>/config, with nvidiaprep's [paths] pointing there.
type gateNode struct{ root string }

func newGateNode(t *testing.T) gateNode {
	t.Helper()
	n := gateNode{root: t.TempDir()}
	cfg := filepath.Join(n.root, "nvidiaprep.toml")
	text := "[paths]\nlxc = \"" + filepath.Join(n.root, "lxc") + "\"\npve = \"" + filepath.Join(n.root, "pve") + "\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NVIDIAPREP_CONFIG", cfg)
	t.Setenv("NVIDIAPREP_CLUSTER_CONFIG", "")
	return n
}

func (n gateNode) ct(t *testing.T, vmid, pveConf, lxcConfig string, age time.Duration) {
	t.Helper()
	p := filepath.Join(n.root, "pve/lxc", vmid+".conf")
	l := filepath.Join(n.root, "lxc", vmid, "config")
	for path, text := range map[string]string{p: pveConf, l: lxcConfig} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mtime := time.Now().Add(-age)
	if err := os.Chtimes(l, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// gate runs the program and returns its exit status and what it would exec.
func gate(t *testing.T, vmid string) (int, []string, string) {
	t.Helper()
	var execd []string
	var stderr bytes.Buffer
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nvidiaprep-hook"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rc := run([]string{vmid}, &stderr, time.Now(), dir, func(hook string, argv []string) error {
		execd = argv
		return os.ErrInvalid // stands for the exec that never returns
	})
	return rc, execd, stderr.String()
}

const block = lxcconf.Begin + "\n# driver 580.159.04; GPUs 0=0000:01:00.0\nlxc.cgroup2.devices.allow = c 195:0 rw\n" + lxcconf.End + "\n"

func TestGateLeavesOtherContainersAlone(t *testing.T) {
	n := newGateNode(t)
	n.ct(t, "200", "arch: amd64\nhookscript: local:snippets/other.sh\n", "lxc.uts.name = ct200\n", 0)
	n.ct(t, "201", "arch: amd64\n", "lxc.uts.name = ct201\n", 0)
	for _, vmid := range []string{"200", "201", "202", "not-a-vmid"} {
		if rc, execd, msg := gate(t, vmid); rc != 0 || execd != nil || msg != "" {
			t.Errorf("CT %s: exit %d, ran %v, said %q; want exit 0 and nothing run or said", vmid, rc, execd, msg)
		}
	}
}

func TestGateAppliesPreStartAfterARebootFromInside(t *testing.T) {
	n := newGateNode(t)
	// The post-stop hook wrote the config anew: no block.
	n.ct(t, "101", "hookscript: local:snippets/nvidiaprep-hook\n", "lxc.uts.name = ct101\n", 0)
	rc, execd, _ := gate(t, "101")
	if rc != 1 || len(execd) != 4 || !strings.HasSuffix(execd[0], "/nvidiaprep-hook") || strings.Join(execd[1:], " ") != "--no-chain 101 pre-start" {
		t.Errorf("exit %d, exec %v; want nvidiaprep-hook --no-chain 101 pre-start", rc, execd)
	}
}

func TestGateSkipsWhatThisStartsHookscriptWrote(t *testing.T) {
	n := newGateNode(t)
	n.ct(t, "101", "hookscript: local:snippets/nvidiaprep-hook\n", "lxc.uts.name = ct101\n"+block, 2*time.Second)
	if rc, execd, _ := gate(t, "101"); rc != 0 || execd != nil {
		t.Errorf("a block written 2 s ago: exit %d, exec %v; want it left as it is", rc, execd)
	}
	// A block from a start long ago may name another driver's numbers.
	n.ct(t, "101", "hookscript: local:snippets/nvidiaprep-hook\n", "lxc.uts.name = ct101\n"+block, 10*time.Minute)
	if _, execd, _ := gate(t, "101"); execd == nil {
		t.Errorf("a block written 10 minutes ago was taken as this start's")
	}
}

// TestGateReadsOnlyPathsOfTheConfiguration: the drop-in decides from
// [paths] and the container's Proxmox config alone. A configuration whose
// other tables do not load, or a cluster file over the limits, still finds
// the container where [paths] says: nvidiaprep's container gets the hook's
// pre-start (which reports the file), the others are left alone. (Before,
// a file that did not load sent the drop-in to /etc/pve, where it found no
// container and let nvidiaprep's restart without its GPU, silently; and the
// decoder spent seconds on the nested tables at every start.)
func TestGateReadsOnlyPathsOfTheConfiguration(t *testing.T) {
	n := newGateNode(t)
	cfg := os.Getenv("NVIDIAPREP_CONFIG")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	broken := string(text) + "\n[containers.101]\ngpus = [\"0\"\n"
	if err := os.WriteFile(cfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	cluster := filepath.Join(n.root, "cluster.toml")
	nested := "x = " + strings.Repeat("{a = ", 2700) + "1" + strings.Repeat("}", 2700) + "\n"
	if err := os.WriteFile(cluster, []byte(nested), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NVIDIAPREP_CLUSTER_CONFIG", cluster)
	n.ct(t, "101", "hookscript: local:snippets/nvidiaprep-hook\n", "lxc.uts.name = ct101\n", 0)
	n.ct(t, "200", "arch: amd64\n", "lxc.uts.name = ct200\n", 0)
	if rc, execd, _ := gate(t, "101"); rc != 1 || strings.Join(execd[1:], " ") != "--no-chain 101 pre-start" {
		t.Errorf("nvidiaprep's container: exit %d, exec %v; want the hook's pre-start", rc, execd)
	}
	if rc, execd, msg := gate(t, "200"); rc != 0 || execd != nil || msg != "" {
		t.Errorf("another container: exit %d, ran %v, said %q; want exit 0 and nothing run or said", rc, execd, msg)
	}
}
