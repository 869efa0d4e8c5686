package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/pve"
)

// gpuHost is testHost on a node with two stand-in GPUs (its procfs, sysfs
// and /dev in [paths]) and CT 9540 in Proxmox's configs.
func gpuHost(t *testing.T, pveConf string) (host, *recorder, string) {
	t.Helper()
	h, rec, dir := testHost(t, true)
	sh, err := standin.NewHost(filepath.Join(dir, "host"))
	if err != nil {
		t.Fatal(err)
	}
	d := standin.Driver{Version: "580.159.04", UVMMajor: 509, GPUs: []standin.GPU{
		{PCIBusID: "0000:01:00.0", UUID: "GPU-aaaaaaaa-0000-0000-0000-000000000001", Minor: 0},
		{PCIBusID: "0000:41:00.0", UUID: "GPU-bbbbbbbb-0000-0000-0000-000000000002", Minor: 1},
	}}
	if err := sh.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	cluster := "[paths]\npve = \"" + filepath.Join(dir, "pve") + "\"\nproc = \"" + sh.Proc + "\"\nsys = \"" + sh.Sys + "\"\ndev = \"" + sh.Dev +
		"\"\nroot = \"" + dir + "\"\ncache = \"" + filepath.Join(dir, "cache") + "\"\n"
	os.WriteFile(filepath.Join(dir, "cluster.toml"), []byte(cluster), 0o644)
	os.WriteFile(filepath.Join(dir, "pve/lxc/9540.conf"), []byte(pveConf), 0o640)
	return h, rec, dir
}

// enable checks its selectors against this node before it writes or runs
// anything: a GPU the node does not have is refused with the node's GPUs
// (--force records it), so is a GPU listed twice, however written, and no
// GPU with --required. (Before, each was recorded, and enable said "GPUs 7,
// libraries installed".)
func TestEnableChecksSelectorsAgainstThisNode(t *testing.T) {
	h, rec, dir := gpuHost(t, "arch: amd64\n")
	conf := filepath.Join(dir, "nvidiaprep.toml")
	enable := func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"9540", "--gpus", "7"}, `GPU selector "7" matches no GPU on this node; GPUs here: 0 (GPU-aaaaaaaa-0000-0000-0000-000000000001, 0000:01:00.0); 1 (GPU-bbbbbbbb-0000-0000-0000-000000000002, 0000:41:00.0); give GPUs of this node, or --force`},
		{[]string{"9540", "--gpus", "GPU-cccccccc-0000-0000-0000-000000000003"}, "matches no GPU on this node"},
		{[]string{"9540", "--gpus", "0000:02:00.0"}, "matches no GPU on this node"},
		{[]string{"9540", "--gpus", "0,0"}, `GPU "0" is listed twice`},
		{[]string{"9540", "--gpus", "1,0000:41:00.0"}, `GPU selectors "1" and "0000:41:00.0" name the same GPU 1`},
		{[]string{"9540", "--gpus", "none", "--required"}, "no GPU with required: there is nothing to require"},
	} {
		code, out, errOut := call(enable, tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "nothing was changed") {
			t.Errorf("%v: exit %d, %s%s; want %q", tc.args, code, out, errOut, tc.want)
		}
		if _, err := os.Stat(conf); err == nil || len(rec.ran) != 0 {
			t.Fatalf("%v wrote the file or ran %q", tc.args, rec.ran)
		}
	}
	code, out, errOut := call(enable, "9540", "--gpus", "7", "--force")
	if code != 0 || !strings.Contains(errOut, "recorded anyway (--force)") || !strings.Contains(out, "GPUs 7") {
		t.Errorf("--force: exit %d, %s%s", code, out, errOut)
	}
	code, out, errOut = call(enable, "9540", "--gpus", "GPU-BBBBBBBB-0000-0000-0000-000000000002,0")
	if code != 0 {
		t.Errorf("two GPUs of this node: exit %d, %s%s", code, out, errOut)
	}
}

// --dry-run prints the table and the block the next start would get, and
// changes nothing.
func TestEnableDryRun(t *testing.T) {
	h, rec, dir := gpuHost(t, "arch: amd64\nlxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n")
	conf := filepath.Join(dir, "nvidiaprep.toml")
	os.WriteFile(conf, []byte("# mine\n"), 0o644)
	code, out, errOut := call(func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }, "9540", "--gpus", "1", "--required", "--dry-run", "--adopt")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{
		"CT 9540: " + conf + " would hold:\n  [containers.9540]\n  gpus = [\"1\"]\n  required = true\n  install = true\n",
		"  # driver 580.159.04; GPUs 1=0000:41:00.0\n",
		"  lxc.cgroup2.devices.allow = c 195:1 rw\n",
		"/dev/.nvidiaprep/9540/nvidia1 dev/nvidia1 none bind,optional,create=file\n",
		"dev/.nvidiaprep/drivers overlay lowerdir=",
		"would run: pct set 9540 --hookscript local:snippets/nvidiaprep-hook\n",
		"would remove the hand-written NVIDIA lines that nvidiaprep supersedes from " + filepath.Join(dir, "pve/lxc/9540.conf") + ":\n  -2: lxc.mount.entry: /dev/nvidia0",
		"Nothing was changed (--dry-run).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nvidia0 dev/nvidia0 none bind,optional,create=file\n  lxc") || strings.Contains(out, "c 195:0 rw") {
		t.Errorf("the block gives GPU 0:\n%s", out)
	}
	if b, _ := os.ReadFile(conf); string(b) != "# mine\n" || len(rec.ran) != 0 {
		t.Errorf("--dry-run changed the file (%q) or ran %q", b, rec.ran)
	}
	if _, err := os.Stat(filepath.Join(dir, "host/dev/.nvidiaprep")); err == nil {
		t.Errorf("--dry-run made the container's node copies")
	}
}

// --adopt shows the hand-written NVIDIA lines, then removes them under
// Proxmox's config lock, every other line (snapshots included) byte for
// byte; a lock that stays held ends the wait with nothing removed.
func TestEnableAdopt(t *testing.T) {
	orig := "arch: amd64\r\nhostname: ml\nlxc.cgroup2.devices.allow: c 195:* rwm\nlxc.cgroup2.devices.allow: c 509:* rwm\nlxc.cgroup2.devices.allow: c 226:* rwm\n" +
		"lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\nlxc.mount.entry: /dev/dri dev/dri none bind,optional,create=dir\n" +
		"dev0: /dev/nvidia-uvm\n# a comment: lxc.cgroup2.devices.allow: c 195:* rwm\n\n[snap1]\nlxc.cgroup2.devices.allow: c 195:* rwm\n"
	want := "arch: amd64\r\nhostname: ml\nlxc.cgroup2.devices.allow: c 226:* rwm\n" +
		"lxc.mount.entry: /dev/dri dev/dri none bind,optional,create=dir\n" +
		"# a comment: lxc.cgroup2.devices.allow: c 195:* rwm\n\n[snap1]\nlxc.cgroup2.devices.allow: c 195:* rwm\n"
	h, rec, dir := gpuHost(t, orig)
	path := filepath.Join(dir, "pve/lxc/9540.conf")
	enable := func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }

	// Proxmox holds the lock (a pct command, a backup): the wait ends.
	lock, err := filelock.TryLock(pve.ConfigLock(dir, 9540))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	text, _ := os.ReadFile(path)
	if err := pve.RemoveLines(ctx, filepath.Join(dir, "pve"), dir, 9540, text, []int{3}); err == nil || !strings.Contains(err.Error(), "Proxmox's config lock") {
		t.Errorf("with the lock held: %v", err)
	}
	lock.Unlock()
	if b, _ := os.ReadFile(path); string(b) != orig {
		t.Fatalf("changed while locked:\n%s", b)
	}

	code, out, errOut := call(enable, "9540", "--gpus", "0", "--adopt")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Errorf("config:\n%q\nwant\n%q", b, want)
	}
	for _, w := range []string{"removing the hand-written NVIDIA lines that nvidiaprep supersedes from " + path + ":\n  -3: lxc.cgroup2.devices.allow: c 195:* rwm\n  -4: lxc.cgroup2.devices.allow: c 509:* rwm\n  -6: lxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n  -8: dev0: /dev/nvidia-uvm\n",
		"removed 4 line(s)"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	// The hookscript is set before the lines go: a container never has neither.
	if len(rec.ran) != 1 || strings.Index(out, "ran: pct set") > strings.Index(out, "removing") {
		t.Errorf("ran %q; output:\n%s", rec.ran, out)
	}
	// Again: nothing left to adopt.
	if code, out, _ = call(enable, "9540", "--adopt"); code != 0 || !strings.Contains(out, "nothing to adopt") {
		t.Errorf("exit %d: %s", code, out)
	}
	cfg, err := config.Load(h.getenv)
	if err != nil || cfg.Container(9540).GPUs.Selectors[0] != "0" {
		t.Errorf("%v %+v", err, cfg.Container(9540))
	}
}

// A node table that enable writes keeps what the cluster table sets and it
// does not: strict = true and the chain. (Before, the node table replaced
// the cluster's whole, and both were dropped silently.)
func TestEnableKeepsInheritedStrictAndChain(t *testing.T) {
	h, _, dir := gpuHost(t, "hookscript: local:snippets/nvidiaprep-hook\n")
	cl := filepath.Join(dir, "cluster.toml")
	b, _ := os.ReadFile(cl)
	os.WriteFile(cl, append(b, "\n[containers.9540]\ngpus = [\"0\"]\nstrict = true\nchain = \"local:snippets/nfs.sh\"\n"...), 0o644)
	code, out, errOut := call(func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }, "9540", "--gpus", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	cfg, err := config.Load(h.getenv)
	if c := cfg.Container(9540); err != nil || !c.Strict || c.Chain != "local:snippets/nfs.sh" || c.GPUs.Selectors[0] != "1" {
		t.Errorf("CT 9540 after enable: %+v, %v; want GPU 1, strict and the cluster's chain", c, err)
	}
}
