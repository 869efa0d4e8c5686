package hostdriver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Plan tells a person what a run would do, and changes nothing itself.
func TestPlan(t *testing.T) {
	n := upgradeNode(t)
	o := Options{Config: n.cfg, Runner: n.runner}
	text, changes, err := Plan(o)
	if err != nil || !changes || !strings.Contains(text, "UNLOAD driver "+verOld) || !strings.Contains(text, "driver "+verOld+" is installed and loaded again") {
		t.Fatalf("idle node: %v %v\n%s", changes, err, text)
	}
	fd := filepath.Join(n.root, "proc", "4242", "fd")
	os.MkdirAll(fd, 0o755)
	os.WriteFile(filepath.Join(n.root, "proc", "4242", "comm"), []byte("python3\n"), 0o644)
	os.Symlink(filepath.Join(n.cfg.Paths.Dev, "nvidiactl"), filepath.Join(fd, "3"))
	text, changes, err = Plan(o)
	if err != nil || changes || !strings.Contains(text, "pid 4242 (python3) holds") || !strings.Contains(text, "reboot required") {
		t.Fatalf("held: %v %v\n%s", changes, err, text)
	}
	if len(n.runner.calls) != 0 || fileExists(StatePath(n.cfg.Paths.State)) {
		t.Errorf("Plan ran %v or wrote the state", n.runner.calls)
	}
}

// kernel_module = "open" before 515.43.04: refused before anything changes.
func TestOpenModulesBefore515Refused(t *testing.T) {
	n := debianNode(t)
	run := standinRun(t, "510.108.03")
	n.cfg.Driver.Version, n.cfg.Driver.Run, n.cfg.Driver.SHA256 = "510.108.03", run, sha(t, run)
	_, err := n.run()
	if err == nil || !strings.Contains(err.Error(), `kernel_module = "open" needs driver 515.43.04 or later`) || !strings.Contains(err.Error(), "nothing on the node was changed") {
		t.Fatalf("%v", err)
	}
	for _, c := range n.runner.calls {
		if strings.Contains(c, "purge") && !strings.Contains(c, " -s ") || strings.HasPrefix(c, "/bin/sh") {
			t.Errorf("changed the node: %s", c)
		}
	}
}
