//go:build integration

package integration_test

// A container's chained hookscript that is nvidiaprep's hook itself, under
// another name or behind a wrapper, must not run itself without end.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nvidiaprep/integration/runbin"
)

// pidsCgroup makes a cgroup that allows at most max processes (cgroup v1's
// pids hierarchy, or v2's), so that a hook that recurses cannot take the
// machine down with it; its processes are killed at the end.
func pidsCgroup(t *testing.T, max int) (dir string, limited func() int) {
	t.Helper()
	name := fmt.Sprintf("nvidiaprep-test-%d", os.Getpid())
	dir = filepath.Join("/sys/fs/cgroup/pids", name)
	if _, err := os.Stat("/sys/fs/cgroup/pids"); err != nil {
		dir = filepath.Join("/sys/fs/cgroup", name)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(max)), 0o644); err != nil {
		os.Remove(dir)
		t.Fatalf("no pids controller: %v", err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			pids := strings.Fields(string(b))
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		os.Remove(dir)
	})
	// How often a fork failed for the limit: "max N" in pids.events.
	limited = func() int {
		b, _ := os.ReadFile(filepath.Join(dir, "pids.events"))
		n := 0
		fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(string(b)), "max "), "%d", &n)
		return n
	}
	return dir, limited
}

// A chained hookscript that is the hook itself: a link to it under another
// name, a copy of it, and wrapper scripts that run it (one clearing the
// environment). The hook refuses the first two by what the file is, and
// the wrappers by finding itself, for the same container, among its
// ancestors: pre-start fails at once, saying why, and no second hook runs
// below the first (the link and the copy) or below the second (the
// wrappers). Before, each recursed without limit: here, until the
// cgroup's 64 processes were used up.
func TestChainedHookscriptThatIsTheHookDoesNotRecurse(t *testing.T) {
	root := t.TempDir()
	snippets := filepath.Join(root, "vz/snippets")
	for _, d := range []string{snippets, filepath.Join(root, "lxc/9794"), filepath.Join(root, "pve")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "pve/storage.cfg"), []byte("dir: local\n\tpath "+filepath.Join(root, "vz")+"\n\tcontent snippets\n"), 0o644)
	os.WriteFile(filepath.Join(root, "lxc/9794/config"), []byte("lxc.uts.name = ct9794\n"), 0o644)
	bin, err := os.ReadFile(hook)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(hook, filepath.Join(snippets, "gpu-link")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(snippets, "gpu-copy"), bin, 0o755)
	os.WriteFile(filepath.Join(snippets, "gpu-wrapper"), []byte("#!/bin/sh\n"+hook+" \"$@\"\n"), 0o755)
	// A wrapper that clears the environment, and with it the chain's mark.
	os.WriteFile(filepath.Join(snippets, "gpu-env-wrapper"), []byte("#!/bin/sh\nexec env -i NVIDIAPREP_CONFIG=\"$NVIDIAPREP_CONFIG\" NVIDIAPREP_CLUSTER_CONFIG= "+hook+" \"$@\"\n"), 0o755)
	for _, c := range []struct{ name, want string }{
		{"gpu-link", "is nvidiaprep's hook itself (it is /proc/self/exe)"},
		{"gpu-copy", "is nvidiaprep's hook itself (it is a build of nvidiaprep's nvidiaprep/hook)"},
		{"gpu-wrapper", "runs this one below it"},
		{"gpu-env-wrapper", "runs this one below it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := filepath.Join(root, c.name+".toml")
			os.WriteFile(cfg, []byte(fmt.Sprintf("[paths]\nlxc = %q\npve = %q\nstate = %q\ncache = %q\ndev = %q\nproc = %q\nsys = %q\n\n[containers.9794]\ngpus = []\ninstall = false\nchain = \"local:snippets/%s\"\n",
				filepath.Join(root, "lxc"), filepath.Join(root, "pve"), filepath.Join(root, "state"), filepath.Join(root, "cache"), root, root, root, c.name)), 0o644)
			dir, limited := pidsCgroup(t, 64)
			t0 := time.Now()
			r, err := runbin.Cmd{Path: "/bin/sh", Args: []string{"-c", "echo $$ > " + dir + "/cgroup.procs && exec " + hook + " 9794 pre-start"},
				Env: []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIAPREP_CONFIG=" + cfg, "NVIDIAPREP_CLUSTER_CONFIG="}, Limit: 30 * time.Second}.Run()
			out, code := r.Output, r.Code
			if code != 1 || !strings.Contains(out, c.want) {
				t.Errorf("pre-start: exit %d after %v (%v), want 1 and %q:\n%.3000s", code, time.Since(t0).Round(time.Millisecond), err, c.want, out)
			}
			if n := limited(); n > 0 {
				t.Errorf("the hooks ran into the cgroup's limit of 64 processes %d times: it recursed", n)
			}
			if n := strings.Count(out, "its own hookscript failed in pre-start"); n > 1 {
				t.Errorf("%d nested hooks failed, want one at most", n)
			}
		})
	}
}
