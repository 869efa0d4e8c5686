package config

import (
	"errors"
	"nvidiaprep/nvidiaprep/gpusel"
	"reflect"
	"strings"
	"testing"
)

// TestErrorInOneTableIsThatContainersAlone: a mistake inside one
// container's table refuses that container (ContainerError) and leaves the
// others, in either file, as configured; a table named by no vmid applies to
// no container. (Before, each of these was an error of the whole load, so
// every container's start was refused.)
func TestErrorInOneTableIsThatContainersAlone(t *testing.T) {
	dir := t.TempDir()
	cluster := writeFile(t, dir, "cluster.toml", `
[containers.101]
gpus = ["0"]
strict = true

[containers.102]
gpus = ["0"]
requried = true

[containers.1O3]
gpus = ["1"]
`)
	node := writeFile(t, dir, "node.toml", `
[containers.104]
gpus = ["GPU-8f6b"]

[containers.105]
gpus = ["1"]
required = "yes"
install = false

[containers.106]
gpus = ["1"]
`)
	cfg, err := LoadFiles(File{Path: cluster}, File{Path: node})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	for vmid, want := range map[int]string{
		102: cluster + ":8: containers.102.requried: unknown key",
		104: node + ":3: containers.104.gpus: invalid GPU selector \"GPU-8f6b\"",
		105: node + ":7: containers.105.required: must be a boolean",
	} {
		err := cfg.ContainerError(vmid)
		var e *Error
		if !errors.As(err, &e) || e.VMID != vmid || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("CT %d: error %v, want one starting %q", vmid, err, want)
		}
		if !cfg.HasTable(vmid) {
			t.Errorf("CT %d: HasTable false for a table with an error", vmid)
		}
	}
	for _, vmid := range []int{101, 103, 106, 107} {
		if err := cfg.ContainerError(vmid); err != nil {
			t.Errorf("CT %d: error %v from another container's table", vmid, err)
		}
	}
	if c := cfg.Container(101); !c.Strict || !reflect.DeepEqual(c.GPUs.Selectors, []string{"0"}) {
		t.Errorf("CT 101 = %+v", c)
	}
	if c := cfg.Container(106); !reflect.DeepEqual(c.GPUs.Selectors, []string{"1"}) || !c.Install {
		t.Errorf("CT 106 = %+v", c)
	}
	// The table that names no container: reported, refusing nothing.
	var orphan *Error
	for _, p := range cfg.Problems {
		if p.VMID == 0 {
			orphan = p
		}
	}
	if orphan == nil || orphan.Key != "containers.1O3" || orphan.Line != 10 || !strings.Contains(orphan.Msg, "invalid vmid") {
		t.Errorf("problems %v: want one for containers.1O3 at line 10", cfg.Problems)
	}
	if len(cfg.Problems) != 4 {
		t.Errorf("problems %v: want 4", cfg.Problems)
	}

	// What is not confined to a container's table still refuses the load.
	for _, text := range []string{
		"[containers.101]\ngpus = [\"0\"\n",               // does not parse
		"[contianers.101]\ngpus = [\"0\"]\n",              // not a container's table
		"[paths]\nlxc = \"x\"\n[containers.101]\n",        // the node's paths
		"[containers.101]\n[containers.101]\ngpus = []\n", // defined twice: does not parse
	} {
		p := writeFile(t, dir, "bad.toml", text)
		if _, err := LoadFiles(File{Path: p}); err == nil {
			t.Errorf("%q loaded", text)
		}
	}
}

// TestNodeTableKeepsWhatItDoesNotSet: a node table (as enable writes it:
// gpus, required, install) keeps the cluster's strict and chain, and says
// where each value came from. (Before, the node's table replaced the
// cluster's whole, dropping strict = true and the chain silently.)
func TestNodeTableKeepsWhatItDoesNotSet(t *testing.T) {
	dir := t.TempDir()
	cluster := writeFile(t, dir, "cluster.toml", "[containers.101]\ngpus = [\"0\"]\nstrict = true\nchain = \"local:snippets/nfs.sh\"\n")
	node := writeFile(t, dir, "node.toml", "[containers.101]\ngpus = [\"1\"]\nrequired = true\ninstall = true\n")
	cfg, err := LoadFiles(File{Path: cluster}, File{Path: node})
	if err != nil {
		t.Fatal(err)
	}
	want := Container{GPUs: gpusel.Selection{Selectors: []string{"1"}}, Required: true, Install: true, Strict: true, Chain: "local:snippets/nfs.sh"}
	if got := cfg.Container(101); !reflect.DeepEqual(got, want) {
		t.Errorf("CT 101 = %+v\nwant       %+v", got, want)
	}
	o := cfg.Origins[101]
	if g := o["gpus"]; len(g) != 2 || g[0] != (Origin{cluster, 2, `["0"]`}) || g[1] != (Origin{node, 2, `["1"]`}) {
		t.Errorf("gpus came from %v", g)
	}
	if s := o["strict"]; len(s) != 1 || s[0] != (Origin{cluster, 3, "true"}) {
		t.Errorf("strict came from %v", s)
	}
	// The node can still turn strict off, and drop the chain.
	node2 := writeFile(t, dir, "node2.toml", "[containers.101]\nstrict = false\nchain = \"\"\n")
	cfg, err = LoadFiles(File{Path: cluster}, File{Path: node2})
	if c := cfg.Container(101); err != nil || c.Strict || c.Chain != "" {
		t.Errorf("CT 101 = %+v, %v; want strict and chain off", c, err)
	}
	if cfg.HasTable(102) || !reflect.DeepEqual(cfg.Container(102), defaultContainerForTest()) {
		t.Errorf("CT 102 without a table = %+v", cfg.Container(102))
	}
}

func defaultContainerForTest() Container {
	return Container{GPUs: gpusel.Selection{All: true}, Install: true}
}
