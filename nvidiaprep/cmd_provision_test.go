package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The worker's command names the container once in each line it prints.
func TestProvisionNamesTheContainerOnce(t *testing.T) {
	h, _, dir := testHost(t, false)
	h.euid = func() int { return 0 }
	conf := filepath.Join(dir, "worker.toml")
	t.Setenv("NVIDIAPREP_CONFIG", conf)
	t.Setenv("NVIDIAPREP_CLUSTER_CONFIG", "")
	for _, tc := range []struct{ name, config, want string }{
		{"no container", "[paths]\nlxc = \"" + filepath.Join(dir, "lxc") + "\"\nstate = \"" + filepath.Join(dir, "state") + "\"\n",
			"CT 9702 is not running: there is no container 9702 in " + filepath.Join(dir, "lxc")},
		{"config not TOML", "[containers.9702\n", "CT 9702: configuration: " + conf},
		{"its table", "[containers.9702]\ngpu = 1\n", "CT 9702: its table in the configuration: "},
	} {
		if err := os.WriteFile(conf, []byte(tc.config), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runApp(h, "provision", "9702")
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, want 1 and %q:\n%s%s", tc.name, code, tc.want, out, errOut)
		}
		for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
			if n := strings.Count(line, "CT 9702"); n != 1 || strings.Contains(line, "vmid=") {
				t.Errorf("%s: %q names the container %d times", tc.name, line, n)
			}
		}
	}
}
