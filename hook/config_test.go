package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hook reads the configuration per container: an error in one
// container's table refuses that container's start alone, naming the line
// once; a container without a table is told it gets every GPU, and a table
// named by no vmid is pointed out to it. (Before, CT 101's start was
// refused for CT 102's typo, and the default was silent.)
func TestHookConfigPerContainer(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "nvidiaprep.toml")
	text := "[paths]\nlxc = \"" + filepath.Join(dir, "lxc") + "\"\npve = \"" + filepath.Join(dir, "pve") + "\"\nproc = \"" + dir + "\"\nsys = \"" + dir + "\"\ndev = \"" + dir + "\"\n\n" +
		"[containers.102]\nrequried = true\n\n[containers.1O1]\ngpus = [\"0\"]\n\n[containers.103]\ngpus = []\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NVIDIAPREP_CONFIG", conf)
	t.Setenv("NVIDIAPREP_CLUSTER_CONFIG", "")
	hook := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	code, out := hook("102", "pre-start")
	if code != 1 || strings.Count(out, conf+":9: containers.102.requried: unknown key") != 1 || !strings.Contains(out, "only this container's start is refused") {
		t.Errorf("CT 102: exit %d\n%s", code, out)
	}
	// CT 103 has no generated config here, so its pre-start fails for that,
	// not for CT 102's table.
	code, out = hook("103", "post-start")
	if code != 0 || strings.Contains(out, "102") {
		t.Errorf("CT 103: exit %d\n%s", code, out)
	}
	_, out = hook("101", "pre-start")
	for _, want := range []string{
		"CT 101: no [containers.101] table in " + conf + ", so it gets every GPU of the node (the default)",
		conf + ":11: containers.1O1: invalid vmid \"1O1\"",
		"this table applies to no container",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("CT 101's task log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "requried") {
		t.Errorf("CT 101's task log names CT 102's error:\n%s", out)
	}
}
