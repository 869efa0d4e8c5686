package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each phase names the container once in every line of its task log, its
// errors included, whatever layer they come from (post-start printed
// "CT 101: CT 101: ..."). Here CT 101's generated LXC config is a
// directory: pre-start cannot read it, and post-start cannot find its
// cgroup in it.
func TestPhasesNameTheContainerOnce(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"lxc/101/config", "pve", "dev", "proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(root, "nvidiaprep.toml")
	text := "[paths]\n"
	for _, k := range []string{"lxc", "dev", "proc", "sys", "cache", "state", "pve"} {
		text += k + ` = "` + filepath.Join(root, k) + "\"\n"
	}
	if err := os.WriteFile(conf, []byte(text+"\n[containers.101]\ninstall = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NVIDIAPREP_CONFIG", conf)
	t.Setenv("NVIDIAPREP_CLUSTER_CONFIG", "")
	for _, phase := range []string{"pre-start", "post-start", "boot"} {
		var out, errOut bytes.Buffer
		code := run([]string{"101", phase}, &out, &errOut)
		log := strings.TrimSpace(errOut.String())
		if code == 0 && phase == "pre-start" || !strings.Contains(log, "CT 101") {
			t.Errorf("%s: exit %d, want a failure naming CT 101:\n%s", phase, code, log)
		}
		for _, line := range strings.Split(log, "\n") {
			if strings.HasPrefix(line, "usage:") {
				break
			}
			if n := strings.Count(line, "CT 101"); n != 1 || strings.Contains(line, "vmid=") {
				t.Errorf("%s: %q names the container %d times, want once", phase, line, n)
			}
		}
	}
}
