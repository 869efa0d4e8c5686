package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/hostcmd"
)

// recorder stands in for pct: it records the commands and fails those
// named in fail.
type recorder struct {
	ran  []string
	fail string
}

func (r *recorder) Run(_ context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	cmd := c.String()
	r.ran = append(r.ran, cmd)
	if r.fail != "" && strings.Contains(cmd, r.fail) {
		return hostcmd.Result{}, errors.New("pct: script 'local:snippets/nvidiaprep-hook' does not exist")
	}
	return hostcmd.Result{}, nil
}

// testHost is a Proxmox node in a temporary directory with pct (a recorder)
// or without.
func testHost(t *testing.T, withPct bool) (host, *recorder, string) {
	t.Helper()
	dir := t.TempDir()
	rec := &recorder{}
	env := map[string]string{config.EnvNode: filepath.Join(dir, "nvidiaprep.toml"), config.EnvCluster: filepath.Join(dir, "cluster.toml")}
	os.WriteFile(env[config.EnvCluster], []byte("[paths]\npve = \""+filepath.Join(dir, "pve")+"\"\n\n[containers.9510]\ngpus = [\"1\"]\ninstall = false\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "pve/lxc"), 0o755)
	h := host{
		getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		lookPath: func(name string) (string, error) {
			if withPct {
				return "/usr/sbin/" + name, nil
			}
			return "", errors.New("not found")
		},
		runner: rec, now: time.Now,
	}
	return h, rec, dir
}

// enable, disable and check run one command through the command layer, as
// `nvidiaprep <name> args...` would.
func (h host) enable(args []string, stdout, stderr io.Writer) int {
	return newApp(h).Run(append([]string{"enable"}, args...), stdout, stderr)
}

func (h host) disable(args []string, stdout, stderr io.Writer) int {
	return newApp(h).Run(append([]string{"disable"}, args...), stdout, stderr)
}

func (h host) check(args []string, stdout, stderr io.Writer) int {
	return newApp(h).Run(append([]string{"check"}, args...), stdout, stderr)
}

func call(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := f(args, &o, &e)
	return code, o.String(), e.String()
}

func TestEnableRecordsAndSetsHookscript(t *testing.T) {
	h, rec, dir := testHost(t, true)
	conf := filepath.Join(dir, "nvidiaprep.toml")
	os.WriteFile(conf, []byte("# my node\n[provision]\nmax_concurrent = 3 # slow disks\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pve/lxc/9510.conf"), []byte("arch: amd64\n"), 0o644)
	enable := func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }
	code, out, errOut := call(enable, "9510", "--required")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	b, _ := os.ReadFile(conf)
	// The cluster table's keys are written out in the new table (its strict
	// and chain, when set, would be inherited key by key).
	want := "# my node\n[provision]\nmax_concurrent = 3 # slow disks\n\n[containers.9510]\ngpus = [\"1\"]\nrequired = true\ninstall = false\n"
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
	if len(rec.ran) != 1 || rec.ran[0] != "pct set 9510 --hookscript local:snippets/nvidiaprep-hook" {
		t.Errorf("ran %q", rec.ran)
	}
	if !strings.Contains(out, "CT 9510: GPUs 1, required, libraries not installed; recorded in [containers.9510] of "+conf) || !strings.Contains(out, "pct reboot 9510") {
		t.Errorf("output:\n%s", out)
	}

	// Bad input changes nothing and runs nothing.
	for _, args := range [][]string{{"9510", "--gpus", "0,banana"}, {"9510", "--gpus"}, {"95x"}, {}, {"9510", "9511"}} {
		rec.ran = nil
		code, out, errOut = call(enable, args...)
		if code == 0 || len(rec.ran) != 0 {
			t.Errorf("%v: exit %d, ran %q: %s%s", args, code, rec.ran, out, errOut)
		}
		if after, _ := os.ReadFile(conf); string(after) != want {
			t.Errorf("%v changed the file:\n%s", args, after)
		}
	}
	if _, _, errOut = call(enable, "9510", "--gpus", "0,banana"); !strings.Contains(errOut, conf+":6: containers.9510.gpus: invalid GPU selector \"banana\"") {
		t.Errorf("error: %s", errOut)
	}
	// A container this node does not have.
	if code, _, errOut = call(enable, "9511"); code != 1 || !strings.Contains(errOut, "9511.conf") {
		t.Errorf("exit %d: %s", code, errOut)
	}
	// pct fails: said, with the hint.
	rec.fail = "--hookscript"
	if code, _, errOut = call(enable, "9510"); code != 1 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "/var/lib/vz/snippets/nvidiaprep-hook") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func TestEnableWithoutPctPrintsTheCommand(t *testing.T) {
	h, rec, dir := testHost(t, false)
	os.RemoveAll(filepath.Join(dir, "pve"))
	code, out, errOut := call(func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }, "--gpus", "0000:01:00.0,all-wrong", "9520")
	if code != 1 {
		t.Errorf("a bad selector: exit %d %s%s", code, out, errOut)
	}
	code, out, errOut = call(func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }, "--gpus", "0000:01:00.0", "9520")
	if code != 0 || len(rec.ran) != 0 || !strings.Contains(out, "on the node, run:\n  pct set 9520 --hookscript local:snippets/nvidiaprep-hook\n") {
		t.Errorf("exit %d, ran %q:\n%s%s", code, rec.ran, out, errOut)
	}
	cfg, err := config.Load(h.getenv)
	if err != nil || cfg.Containers[9520].GPUs.Selectors[0] != "0000:01:00.0" || !cfg.Containers[9520].Install {
		t.Errorf("%v %+v", err, cfg.Containers)
	}
}

func TestDisable(t *testing.T) {
	h, rec, dir := testHost(t, true)
	conf := filepath.Join(dir, "nvidiaprep.toml")
	os.WriteFile(conf, []byte("[containers.9530]\ngpus = [\"0\"]\n\n[containers.9531]\ngpus = []\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pve/lxc/9530.conf"), []byte("hookscript: local:snippets/nvidiaprep-hook\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pve/lxc/9531.conf"), []byte("hookscript: local:snippets/mine.sh\n"), 0o644)
	disable := func(a []string, o, e *bytes.Buffer) int { return h.disable(a, o, e) }
	code, out, errOut := call(disable, "9530")
	if code != 0 || len(rec.ran) != 1 || rec.ran[0] != "pct set 9530 --delete hookscript" {
		t.Errorf("exit %d, ran %q: %s%s", code, rec.ran, out, errOut)
	}
	if b, _ := os.ReadFile(conf); string(b) != "[containers.9531]\ngpus = []\n" {
		t.Errorf("file:\n%s", b)
	}
	// Another hookscript is left alone.
	rec.ran = nil
	code, out, _ = call(disable, "9531")
	if code != 0 || len(rec.ran) != 0 || !strings.Contains(out, "not nvidiaprep's: left alone") {
		t.Errorf("exit %d, ran %q: %s", code, rec.ran, out)
	}
	// The cluster's table is named.
	if _, out, _ = call(disable, "9510"); !strings.Contains(out, "cluster file") {
		t.Errorf("%s", out)
	}
}

// The package's default configuration loads, and means the defaults.
func TestPackagedConfigLoads(t *testing.T) {
	cfg, err := config.LoadFiles(config.File{Path: "../packaging/nvidiaprep.toml"})
	if err != nil {
		t.Fatal(err)
	}
	def := config.Default()
	if cfg.Paths != def.Paths || cfg.Provision != def.Provision || cfg.Driver != def.Driver || len(cfg.Containers) != 0 {
		t.Errorf("%+v", cfg)
	}
	// Every commented line, uncommented, is a valid file too.
	b, _ := os.ReadFile("../packaging/nvidiaprep.toml")
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#[") || strings.HasPrefix(l, "#") && strings.Contains(l, " = ") {
			l = l[1:]
		}
		lines = append(lines, l)
	}
	p := filepath.Join(t.TempDir(), "n.toml")
	os.WriteFile(p, []byte(strings.Join(lines, "\n")), 0o644)
	if _, err := config.LoadFiles(config.File{Path: p}); err != nil {
		t.Errorf("uncommented: %v", err)
	}
}

// The man page documents every command.
func TestManPageHasEveryCommand(t *testing.T) {
	raw, err := os.ReadFile("../packaging/nvidiaprep.8")
	if err != nil {
		t.Fatal(err)
	}
	b := strings.ReplaceAll(string(raw), `\-`, "-")
	for _, c := range newApp(host{}).Commands {
		if !strings.Contains(b, ".B nvidiaprep "+c.Name) || !strings.Contains(b, "\n.BI \""+c.Name+" ") && !strings.Contains(b, "\n.B "+c.Name) && !strings.Contains(b, "\n.BR "+c.Name) {
			t.Errorf("the man page lacks %s", c.Name)
		}
	}
}

// enable keeps the admin's own hookscript (chained), and disable puts it back.
func TestEnableChainsTheAdminsHookscript(t *testing.T) {
	h, rec, dir := testHost(t, true)
	conf := filepath.Join(dir, "nvidiaprep.toml")
	ctConf := filepath.Join(dir, "pve/lxc/9540.conf")
	os.WriteFile(ctConf, []byte("arch: amd64\nhookscript: local:snippets/mount-nfs.sh\n"), 0o644)
	enable := func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }
	disable := func(a []string, o, e *bytes.Buffer) int { return h.disable(a, o, e) }
	code, out, errOut := call(enable, "9540", "--gpus", "0")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	cfg, err := config.Load(h.getenv)
	if err != nil || cfg.Container(9540).Chain != "local:snippets/mount-nfs.sh" {
		t.Fatalf("chain not recorded: %v %+v", err, cfg.Container(9540))
	}
	if len(rec.ran) != 1 || rec.ran[0] != "pct set 9540 --hookscript local:snippets/nvidiaprep-hook" {
		t.Errorf("ran %q", rec.ran)
	}
	if !strings.Contains(out, "its own hookscript local:snippets/mount-nfs.sh is kept") {
		t.Errorf("enable does not say the admin's hookscript is kept:\n%s", out)
	}
	// A second enable, now that the hookscript is nvidiaprep's, keeps the chain.
	os.WriteFile(ctConf, []byte("arch: amd64\nhookscript: local:snippets/nvidiaprep-hook\n"), 0o644)
	if code, out, errOut = call(enable, "9540", "--required"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if cfg, _ := config.Load(h.getenv); cfg.Container(9540).Chain != "local:snippets/mount-nfs.sh" || !cfg.Container(9540).Required {
		t.Errorf("a second enable lost the chain: %+v", cfg.Container(9540))
	}
	rec.ran = nil
	if code, out, errOut = call(disable, "9540"); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	if len(rec.ran) != 1 || rec.ran[0] != "pct set 9540 --hookscript local:snippets/mount-nfs.sh" {
		t.Errorf("disable ran %q, want the admin's hookscript put back", rec.ran)
	}
	if b, _ := os.ReadFile(conf); strings.Contains(string(b), "9540") {
		t.Errorf("the table is still there:\n%s", b)
	}
}

// A container whose hookscript is nvidiaprep's hook under another name (a
// link to the installed hook, or a copy of one of nvidiaprep's programs)
// gets nvidiaprep's hook, and no chain: recorded as the chain, it would
// run itself without end.
func TestEnableDoesNotChainTheHookItself(t *testing.T) {
	h, _, dir := testHost(t, true)
	root := filepath.Join(dir, "root")
	snippets := filepath.Join(root, "var/lib/vz/snippets")
	installed := filepath.Join(root, "usr/lib/nvidiaprep/nvidiaprep-hook")
	for _, d := range []string{snippets, filepath.Dir(installed)} {
		os.MkdirAll(d, 0o755)
	}
	os.WriteFile(installed, []byte("#!/bin/sh\n"), 0o755)
	self, err := os.ReadFile("/proc/self/exe") // a build of nvidiaprep's module
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(snippets, "gpu-copy"), self, 0o755)
	os.Symlink(installed, filepath.Join(snippets, "gpu-link"))
	os.WriteFile(filepath.Join(snippets, "mount-nfs.sh"), []byte("#!/bin/sh\n"), 0o755)
	cluster := filepath.Join(dir, "cluster.toml")
	b, _ := os.ReadFile(cluster)
	os.WriteFile(cluster, []byte(strings.Replace(string(b), "[paths]\n", "[paths]\nroot = \""+root+"\"\n", 1)), 0o644)
	os.WriteFile(filepath.Join(dir, "pve/storage.cfg"), []byte("dir: local\n\tpath /var/lib/vz\n\tcontent snippets\n"), 0o644)
	enable := func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }
	for vmid, c := range map[string]struct{ volid, chain string }{
		"9541": {"local:snippets/gpu-link", ""},
		"9542": {"local:snippets/gpu-copy", ""},
		"9543": {"local:snippets/mount-nfs.sh", "local:snippets/mount-nfs.sh"},
	} {
		os.WriteFile(filepath.Join(dir, "pve/lxc", vmid+".conf"), []byte("arch: amd64\nhookscript: "+c.volid+"\n"), 0o644)
		code, out, errOut := call(enable, vmid, "--gpus", "0")
		if code != 0 {
			t.Fatalf("CT %s: exit %d: %s%s", vmid, code, out, errOut)
		}
		id, _ := config.ParseVMID(vmid)
		cfg, err := config.Load(h.getenv)
		if err != nil || cfg.Container(id).Chain != c.chain {
			t.Errorf("CT %s (%s): chain %q, want %q (%v)", vmid, c.volid, cfg.Container(id).Chain, c.chain, err)
		}
		if c.chain == "" && !strings.Contains(out, "is nvidiaprep's hook under another name") {
			t.Errorf("CT %s: enable does not say why it keeps no chain:\n%s", vmid, out)
		}
	}
}

// enable and disable name the container once in each error, whatever layer
// it comes from.
func TestEnableDisableNameTheContainerOnce(t *testing.T) {
	h, _, dir := testHost(t, true)
	enable := func(a []string, o, e *bytes.Buffer) int { return h.enable(a, o, e) }
	disable := func(a []string, o, e *bytes.Buffer) int { return h.disable(a, o, e) }
	os.WriteFile(filepath.Join(dir, "pve/lxc/9510.conf"), []byte("arch: amd64\n"), 0o644)
	code, _, errOut := call(enable, "9510", "--gpus", "0,0")
	if code != 1 || !strings.Contains(errOut, `CT 9510: GPU "0" is listed twice: list it once; nothing was changed`) || strings.Count(errOut, "CT 9510") != 1 {
		t.Errorf("enable --gpus 0,0: exit %d: %s", code, errOut)
	}
	// Proxmox's config of the container cannot be read: a directory.
	os.Remove(filepath.Join(dir, "pve/lxc/9510.conf"))
	os.Mkdir(filepath.Join(dir, "pve/lxc/9510.conf"), 0o755)
	for name, f := range map[string]func([]string, *bytes.Buffer, *bytes.Buffer) int{"enable": enable, "disable": disable} {
		code, _, errOut := call(f, "9510")
		if code != 1 || !strings.Contains(errOut, "CT 9510: ") || strings.Count(errOut, "CT 9510") != 1 {
			t.Errorf("%s: exit %d, want 1 and CT 9510 named once: %s", name, code, errOut)
		}
	}
}
