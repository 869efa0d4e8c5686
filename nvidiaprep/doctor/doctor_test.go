package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/record"
)

const version = "580.159.04"

// kernelLog stands in for journalctl and dmesg: it answers with a fixed log,
// or fails for the commands in fail.
type kernelLog struct {
	log  string
	fail map[string]bool
	ran  []string
	// dkms, when set, answers `dkms status` (else the log does): a
	// healthy node's DKMS has the installed driver for its one kernel.
	dkms func() string
}

func (k *kernelLog) Run(_ context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	k.ran = append(k.ran, c.String())
	if k.fail[c.Name] {
		return hostcmd.Result{}, errors.New(c.Name + ": not found")
	}
	if c.Name == "dkms" && k.dkms != nil {
		out := k.dkms()
		return hostcmd.Result{Stdout: out, Output: out}, nil
	}
	if c.Name == "modinfo" && len(c.Args) == 3 && c.Args[0] == "-F" && c.Args[1] == "sig_key" {
		// modinfo -F sig_key <module>: the signer's serial, "" when the
		// module is unsigned; a stand-in module holds its signer as text.
		b, err := os.ReadFile(c.Args[2])
		if err != nil {
			return hostcmd.Result{}, fmt.Errorf("modinfo: %w", err)
		}
		out := ""
		if sig, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "sig_key="); ok {
			out = sig + "\n"
		}
		return hostcmd.Result{Stdout: out, Output: out}, nil
	}
	return hostcmd.Result{Stdout: k.log, Output: k.log}, nil
}

// testKernel is the stand-in node's one kernel, running.
const testKernel = "6.8.12-4-pve"

// node is a healthy stand-in node: driver loaded with its nodes, the
// driver's tree extracted in the cache, no nouveau, CT 101 with the hook.
type node struct {
	t    *testing.T
	host *standin.Host
	drv  standin.Driver
	opts Options
	log  *kernelLog
}

func newNode(t *testing.T) *node {
	t.Helper()
	root := t.TempDir()
	h, err := standin.NewHost(filepath.Join(root, "host"))
	if err != nil {
		t.Fatal(err)
	}
	h.Nodes = &standin.FakeNodes{}
	d := standin.Driver{Version: version, UVMMajor: 509, GPUs: []standin.GPU{{PCIBusID: "0000:01:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", Minor: 0}}}
	if err := h.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := h.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Paths = config.Paths{LXC: filepath.Join(root, "lxc"), Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Cache: filepath.Join(root, "cache"), State: filepath.Join(root, "state")}
	cfg.Containers[101] = config.Container{GPUs: gpusel.Selection{All: true}, Install: true}
	n := &node{t: t, host: h, drv: d, log: &kernelLog{log: "nvidia: loading out-of-tree module taints kernel.\nNVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  580.159.04\n"}}
	cfg.Paths.PVE, cfg.Paths.Root = filepath.Join(root, "pve"), filepath.Join(root, "hostroot")
	n.opts = Options{Config: cfg, Runner: n.log, Nodes: h.Nodes, KernelRelease: testKernel}
	// DKMS has installed whatever driver nvidia-installer's record names
	// for each kernel with its module in updates/dkms (where DKMS installs
	// it): the node's one kernel.
	n.log.dkms = func() string {
		b, err := os.ReadFile(filepath.Join(cfg.Paths.Root, record.NVIDIALog))
		if err != nil {
			return ""
		}
		mods, _ := filepath.Glob(filepath.Join(cfg.Paths.Root, "lib/modules/*/updates/dkms/nvidia.ko"))
		out := ""
		for _, m := range mods {
			release := filepath.Base(filepath.Dir(filepath.Dir(filepath.Dir(m))))
			out += "nvidia/" + record.InstalledVersion(b) + ", " + release + ", x86_64: installed\n"
		}
		return out
	}
	// Its headers, with which DKMS built the module.
	n.write(filepath.Join(cfg.Paths.Root, "lib/modules", testKernel, "build/include/linux/version.h"), "", 0o644)
	n.dkmsModule(testKernel, "")
	n.write(filepath.Join(h.Proc, "modules"), "nvidia_uvm 1 0 - Live 0x0\nnvidia 2 1 nvidia_uvm, Live 0x0\n", 0o644)
	// The loaded driver's tree, extracted from its (stand-in) .run.
	cache := driverrun.Cache{Dir: cfg.Paths.Cache}
	if err := os.MkdirAll(cache.RunsDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := builtRun(version, filepath.Join(cache.RunsDir(), "NVIDIA-Linux-x86_64-"+version+".run")); err != nil {
		t.Fatal(err)
	}
	if _, err := cache.Extract(context.Background(), version, ""); err != nil {
		t.Fatal(err)
	}
	n.write(filepath.Join(n.opts.Config.Paths.Root, "usr/lib/nvidiaprep/nvidiaprep-hook"), "#!/bin/sh\n", 0o755)
	if err := os.MkdirAll(filepath.Join(n.opts.Config.Paths.Root, "var/lib/vz/snippets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(n.opts.Config.Paths.Root, "usr/lib/nvidiaprep/nvidiaprep-hook"), filepath.Join(n.opts.Config.Paths.Root, "var/lib/vz/snippets/nvidiaprep-hook")); err != nil {
		t.Fatal(err)
	}
	for _, d := range unitDropIns {
		n.write(filepath.Join(n.opts.Config.Paths.Root, d), "[Service]\nExecStartPre=/usr/lib/nvidiaprep/nvidiaprep-unit-prestart %i\n", 0o644)
	}
	n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\n")
	return n
}

// dkmsModule leaves the nvidia module DKMS installs for release (its
// updates/dkms), signed by the key with serial sigKey ("" unsigned).
func (n *node) dkmsModule(release, sigKey string) {
	n.t.Helper()
	text := ""
	if sigKey != "" {
		text = "sig_key=" + sigKey + "\n"
	}
	n.write(filepath.Join(n.opts.Config.Paths.Root, "lib/modules", release, "updates/dkms/nvidia.ko"), text, 0o644)
}

func (n *node) write(path, text string, mode os.FileMode) {
	n.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) ct(vmid int, conf string) {
	n.write(filepath.Join(n.opts.Config.Paths.PVE, "lxc", strconv.Itoa(vmid)+".conf"), "arch: amd64\n"+conf, 0o644)
}

func (n *node) run() Report {
	n.t.Helper()
	return Run(context.Background(), n.opts)
}

// want checks that the report holds exactly the given checks, each problem
// naming its fix.
func (n *node) want(r Report, checks ...string) {
	n.t.Helper()
	var got []string
	for _, p := range r.Problems {
		got = append(got, p.Check)
		if p.What == "" || p.Fix == "" {
			n.t.Errorf("problem without what or fix: %+v", p)
		}
	}
	if strings.Join(got, " ") != strings.Join(checks, " ") {
		n.t.Errorf("checks %v, want %v; report:\n%s", got, checks, dump(r))
	}
}

func dump(r Report) string {
	var b strings.Builder
	for _, p := range r.Problems {
		b.WriteString(p.Check + ": " + p.What + "\n  fix: " + p.Fix + "\n")
	}
	for _, s := range r.Notes {
		b.WriteString("note: " + s + "\n")
	}
	return b.String()
}

// whatOf is the text of the first problem check found.
func whatOf(r Report, check string) string {
	for _, p := range r.Problems {
		if p.Check == check {
			return p.What
		}
	}
	return ""
}

func fixOf(r Report, check string) string {
	for _, p := range r.Problems {
		if p.Check == check {
			return p.What + " | " + p.Fix
		}
	}
	return ""
}

func TestHealthyNode(t *testing.T) {
	n := newNode(t)
	r := n.run()
	n.want(r)
	if !r.OK() || len(r.Notes) != 0 {
		t.Errorf("%s", dump(r))
	}
}

func TestDriverNotLoaded(t *testing.T) {
	n := newNode(t)
	if err := n.host.UnloadDriver(); err != nil {
		t.Fatal(err)
	}
	n.opts.Config.Driver.Version = version
	r := n.run()
	n.want(r, "driver-not-loaded")
	if !strings.Contains(fixOf(r, "driver-not-loaded"), "systemctl start nvidiaprep-host-driver.service") {
		t.Error(dump(r))
	}
}

func TestVersionSkewAndFailedProvisioning(t *testing.T) {
	n := newNode(t)
	state := n.opts.Config.Paths.State
	now := time.Now()
	for _, rec := range []record.Provision{
		{VMID: 101, Version: "580.142", Outcome: record.Installed, Started: now},
		{VMID: 102, Version: version, Outcome: record.Failed, Started: now, Error: "nvidia-installer 580.159.04 failed (exit 1)"},
		{VMID: 103, Version: version, Outcome: record.Installed, Started: now},
	} {
		if err := record.Save(state, rec); err != nil {
			t.Fatal(err)
		}
	}
	n.ct(102, "")
	n.ct(103, "")
	r := n.run()
	n.want(r, "version-skew", "provisioning-failed")
	if f := fixOf(r, "version-skew"); !strings.Contains(f, "CT 101 has the user-space libraries of driver 580.142, but the host runs 580.159.04") || !strings.Contains(f, "pct reboot 101") {
		t.Error(f)
	}
	if f := fixOf(r, "provisioning-failed"); !strings.Contains(f, "installer 580.159.04 failed") || !strings.Contains(f, "nvidiaprep provision 102") {
		t.Error(f)
	}
	// The record is the container's own; the report names it, once.
	if w := whatOf(r, "provisioning-failed"); w != "CT 102: installing the user-space libraries "+version+" failed: nvidia-installer 580.159.04 failed (exit 1)" {
		t.Errorf("%q", w)
	}
	// A container that moved to another node of the cluster: its record
	// here is history.
	os.Remove(filepath.Join(n.opts.Config.Paths.PVE, "lxc", "101.conf"))
	n.want(n.run(), "provisioning-failed")
}

func TestMissingNodes(t *testing.T) {
	n := newNode(t)
	os.Remove(filepath.Join(n.host.Dev, "nvidia-uvm"))
	n.write(filepath.Join(n.host.Sys, "module/nvidia_modeset/version"), version+"\n", 0o644)
	r := n.run()
	n.want(r, "device-nodes", "device-nodes")
	if f := dump(r); !strings.Contains(f, "/dev/nvidia-uvm is missing") || !strings.Contains(f, "nvidia-modprobe -u -c=0") ||
		!strings.Contains(f, "/dev/nvidia-modeset is missing") || !strings.Contains(f, "nvidia-modprobe -m") {
		t.Error(f)
	}
	// A node left with an older driver's major.
	if err := n.host.MakeNode("nvidia-uvm", 508, 0, 0o666); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(n.host.Sys, "module/nvidia_modeset"))
	r = n.run()
	n.want(r, "device-nodes")
	if f := dump(r); !strings.Contains(f, "/dev/nvidia-uvm is 508:0, but the driver has 509:0") {
		t.Error(f)
	}
	// nvidia-uvm not loaded at all.
	n.drv.UVMMajor = 0
	if err := n.host.LoadDriver(n.drv); err != nil {
		t.Fatal(err)
	}
	r = n.run()
	n.want(r, "device-nodes")
	if f := dump(r); !strings.Contains(f, "nvidia-uvm module is not loaded") || !strings.Contains(f, "modprobe nvidia-uvm") {
		t.Error(f)
	}
}

// A record whose error holds what a container printed (a newline, terminal
// escapes) gives one problem, printed on one line without the escapes: the
// container cannot forge a PROBLEM line nor drive the admin's terminal.
func TestContainerTextCannotForgeProblems(t *testing.T) {
	n := newNode(t)
	state := n.opts.Config.Paths.State
	hostile := "installer failed\x1b[2J\x1b]0;pwned\x07\nPROBLEM all-clear: nothing to see\n  fix: none"
	if err := record.Save(state, record.Provision{VMID: 102, Version: version, Outcome: record.Failed, Started: time.Now(), Error: hostile, Notes: []string{"a\x1b[31mred\nnote: forged"}}); err != nil {
		t.Fatal(err)
	}
	n.ct(102, "")
	r := n.run()
	n.want(r, "provisioning-failed")
	for _, p := range r.Problems {
		for _, s := range []string{p.What, p.Fix} {
			if strings.ContainsAny(s, "\n\r\x1b\x07") {
				t.Errorf("problem %s carries control characters: %q", p.Check, s)
			}
		}
	}
	if w := fixOf(r, "provisioning-failed"); !strings.Contains(w, `installer failed\x1b[2J`) {
		t.Errorf("the container's text should show, escaped: %q", w)
	}
}

func TestNouveau(t *testing.T) {
	n := newNode(t)
	n.write(filepath.Join(n.host.Proc, "modules"), "drm 1 1 nouveau, Live 0x0\nnouveau 2 0 - Live 0x0\n", 0o644)
	r := n.run()
	n.want(r, "nouveau")
	if !strings.Contains(fixOf(r, "nouveau"), "blacklist nouveau") {
		t.Error(dump(r))
	}
}

func TestHookscripts(t *testing.T) {
	n := newNode(t)
	n.write(filepath.Join(n.opts.Config.Paths.PVE, "storage.cfg"), "dir: local\n\tpath /var/lib/vz\n\tcontent iso\n\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n", 0o644)
	n.ct(102, "hookscript: local-lvm:snippets/nvidiaprep-hook\n")
	n.ct(103, "hookscript: local:snippets/my-own.sh\n") // not ours: not checked
	n.ct(104, "")
	n.opts.Config.Containers[104] = config.Container{GPUs: gpusel.Selection{All: true}}
	r := n.run()
	n.want(r, "hookscript", "hookscript")
	f := dump(r)
	if !strings.Contains(f, "CT 102's hookscript") || !strings.Contains(f, "keeps no files") || !strings.Contains(f, "pct set 102 --hookscript local:snippets/nvidiaprep-hook") {
		t.Error(f)
	}
	if !strings.Contains(f, "CT 104 has a [containers.104] table but no hookscript") || !strings.Contains(f, "nvidiaprep enable 104") {
		t.Error(f)
	}
	// The package's link is gone.
	os.Remove(filepath.Join(n.opts.Config.Paths.Root, "var/lib/vz/snippets/nvidiaprep-hook"))
	r = n.run()
	if f := fixOf(r, "hookscript"); !strings.Contains(f, "CT 101's hookscript local:snippets/nvidiaprep-hook is /var/lib/vz/snippets/nvidiaprep-hook, which does not exist") || !strings.Contains(f, "reinstall nvidiaprep") {
		t.Error(dump(r))
	}
}

func TestHandWrittenLines(t *testing.T) {
	n := newNode(t)
	n.ct(105, "lxc.cgroup2.devices.allow: c 195:* rwm\nlxc.cgroup2.devices.allow: c 237:* rwm\nlxc.mount.entry: /dev/nvidia-uvm dev/nvidia-uvm none bind,optional,create=file\ndev0: /dev/nvidia7\n")
	r := n.run()
	n.want(r, "hand-written-lines", "hand-written-lines")
	f := dump(r)
	if !strings.Contains(f, `CT 105: hand-written line "lxc.cgroup2.devices.allow: c 237:* rwm" allows major 237`) || !strings.Contains(f, "fix: delete it from "+filepath.Join(n.opts.Config.Paths.PVE, "lxc/105.conf")) {
		t.Error(f)
	}
	if !strings.Contains(f, "dev0: /dev/nvidia7 does not exist") || !strings.Contains(f, "pct set 105 --delete dev0") {
		t.Error(f)
	}
}

func TestKernelLogAPIMismatch(t *testing.T) {
	n := newNode(t)
	// The host's own libraries are 580.142 (installed, module not reloaded).
	n.write(filepath.Join(n.opts.Config.Paths.Root, record.NVIDIALog), "1.0-1 (580.142)\n", 0o600)
	n.log.log += "NVRM: API mismatch: the client has the version 580.142, but\nNVRM: this kernel module has the version 580.159.04.\n"
	r := n.run()
	n.want(r, "api-mismatch")
	if !strings.Contains(fixOf(r, "api-mismatch"), "the client has the version 580.142") || !strings.Contains(fixOf(r, "api-mismatch"), "reboot the node") || n.log.ran[0] != "journalctl -k -b -n 5000 --no-pager -q -o cat" {
		t.Error(dump(r), n.log.ran)
	}
	// Without journalctl, dmesg is read.
	n.log.fail = map[string]bool{"journalctl": true}
	n.log.ran = nil
	r = n.run()
	n.want(r, "api-mismatch")
	if len(n.log.ran) < 2 || n.log.ran[1] != "dmesg" {
		t.Errorf("ran %q", n.log.ran)
	}
	// Neither: a note, not a problem.
	n.log.fail["dmesg"] = true
	r = n.run()
	n.want(r)
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "could not read the kernel log") {
		t.Errorf("notes %q", r.Notes)
	}
}

// A container's own failed version check writes the API mismatch line with
// a version of its choosing: doctor says so, names the container its
// records give that version, and never sends the admin to the host.
func TestAPIMismatchFromAContainerDoesNotBlameTheHost(t *testing.T) {
	n := newNode(t)
	n.write(filepath.Join(n.opts.Config.Paths.Root, record.NVIDIALog), "1.0-1 ("+version+")\n", 0o600)
	n.ct(105, "")
	if err := record.Save(n.opts.Config.Paths.State, record.Provision{VMID: 105, Version: "570.86.15", Outcome: record.Installed}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		client, names string
		want          []string
	}{
		{"570.86.15", "CT 105 has the user-space libraries 570.86.15", []string{"version-skew", "api-mismatch-client"}},
		// Nothing nvidiaprep sees has that version: a note of what to look at.
		{"999.1\x1b[2J", "no container's record has that version", []string{"version-skew"}},
	} {
		n.log.log = "NVRM: API mismatch: the client has the version " + c.client + ", but\nNVRM: this kernel module has the version " + version + ".\n"
		r := n.run()
		n.want(r, c.want...)
		f := dump(r) + strings.Join(r.Notes, "\n")
		if !strings.Contains(f, c.names) || !strings.Contains(f, "any container given a GPU can write this line") {
			t.Errorf("client %q: the finding does not say where the line can come from:\n%s", c.client, f)
		}
		if strings.Contains(f, "reboot the node") || strings.Contains(f, "rmmod") || strings.Contains(f, "\x1b") {
			t.Errorf("client %q: the finding sends the admin to the host, or prints the container's text raw:\n%s", c.client, f)
		}
	}
}

func TestRunNotCached(t *testing.T) {
	n := newNode(t)
	cache := driverrun.Cache{Dir: n.opts.Config.Paths.Cache}
	os.RemoveAll(cache.DriversDir())
	os.RemoveAll(cache.RunsDir())
	r := n.run()
	n.want(r, "run-not-cached")
	if !strings.Contains(fixOf(r, "run-not-cached"), "NVIDIA-Linux-x86_64-580.159.04.run") {
		t.Error(dump(r))
	}
}

func TestHostDriverState(t *testing.T) {
	n := newNode(t)
	state := n.opts.Config.Paths.State
	n.write(filepath.Join(state, "host-driver.json"), `{"configured":"590.1","outcome":"failed","error":"dkms build failed","log":"/var/lib/nvidiaprep/log/host-driver.log","time":"2025-11-26T09:00:00Z","extra":{"x":1}}`, 0o644)
	r := n.run()
	n.want(r, "host-driver-failed")
	if f := fixOf(r, "host-driver-failed"); !strings.Contains(f, "590.1: dkms build failed") || !strings.Contains(f, "/var/lib/nvidiaprep/log/host-driver.log") {
		t.Error(f)
	}
	n.write(filepath.Join(state, "host-driver.json"), `{"configured":"590.1","installed":"590.1","loaded":"580.159.04","outcome":"reboot-required"}`, 0o644)
	r = n.run()
	n.want(r, "reboot-pending")
	// An upgrade that waits because a process holds the loaded driver: the
	// installed driver is the loaded one, and doctor still says why.
	n.write(filepath.Join(state, "host-driver.json"), `{"configured":"590.1","installed":"580.159.04","loaded":"580.159.04","outcome":"reboot-required","error":"NVIDIA driver 580.159.04 is loaded and in use (pid 4242 (python3) holds /dev/nvidia0): it stays loaded"}`, 0o644)
	r = n.run()
	n.want(r, "reboot-pending")
	if p := fixOf(r, "reboot-pending"); !strings.Contains(p, "pid 4242 (python3)") {
		t.Error(p)
	}
}

// A [driver] sha256 pin set after the tree was extracted: doctor says the
// tree does not come from the pinned .run, until it does.
func TestTreeNotFromThePinnedRun(t *testing.T) {
	n := newNode(t)
	cache := driverrun.Cache{Dir: n.opts.Config.Paths.Cache}
	run, err := cache.FindRun(version)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := driverrun.SHA256(run)
	if err != nil {
		t.Fatal(err)
	}
	pin := strings.Repeat("ab", 32)
	n.opts.Config.Driver.Version, n.opts.Config.Driver.SHA256 = version, pin
	r := n.run()
	n.want(r, "tree-not-pinned")
	if w := fixOf(r, "tree-not-pinned"); !strings.Contains(w, "comes from the .run with sha256 "+sum+", not from the .run that [driver] sha256 pins ("+pin+")") {
		t.Error(w)
	}
	n.opts.Config.Driver.SHA256 = sum
	n.want(n.run())
}

// A tree changed after its extraction (a file planted in it) is named:
// provisioning does not use it and extracts it again from the .run, or
// asks for the .run when it is gone.
func TestTreeChangedAfterExtraction(t *testing.T) {
	n := newNode(t)
	cache := driverrun.Cache{Dir: n.opts.Config.Paths.Cache}
	n.write(filepath.Join(cache.Tree(version), "nvidia-installer"), "#!/bin/sh\necho planted\n", 0o755)
	r := n.run()
	n.want(r, "tree-changed")
	if w := fixOf(r, "tree-changed"); !strings.Contains(w, `is not used: "nvidia-installer" changed`) || !strings.Contains(w, "nothing to do when the .run is in") {
		t.Error(w)
	}
	os.RemoveAll(cache.RunsDir())
	r = n.run()
	n.want(r, "tree-changed")
	if w := fixOf(r, "tree-changed"); !strings.Contains(w, "put NVIDIA's NVIDIA-Linux-x86_64-"+version+".run in "+cache.RunsDir()) {
		t.Error(w)
	}
}

// The failure modes of the paths Proxmox takes: a chained hookscript gone,
// a container that lost its block, the drop-ins missing.
func TestRestartPaths(t *testing.T) {
	n := newNode(t)
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{All: true}, Install: true, Chain: "local:snippets/mount-nfs.sh"}
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
	os.Remove(filepath.Join(n.opts.Config.Paths.Root, unitDropIns[0]))
	r := Run(context.Background(), n.opts)
	got := map[string]string{}
	for _, p := range r.Problems {
		got[p.Check] += p.What + " / " + p.Fix
	}
	for check, want := range map[string]string{
		"chained-hookscript": "CT 101's own hookscript local:snippets/mount-nfs.sh (/var/lib/vz/snippets/mount-nfs.sh)",
		"lost-block":         "CT 101's generated config " + n.opts.Config.Paths.LXCConfig(101) + " has no nvidiaprep block",
		"unit-drop-in":       "/" + unitDropIns[0] + " is missing",
	} {
		if !strings.Contains(got[check], want) {
			t.Errorf("%s: got %q, want it to say %q", check, got[check], want)
		}
	}
	if len(r.Dependents) != 1 || r.Dependents[0] != 101 {
		t.Errorf("the containers that depend on the hookscript: %v, want [101]", r.Dependents)
	}
	// Mended, all is well again.
	n.write(filepath.Join(n.opts.Config.Paths.Root, "var/lib/vz/snippets/mount-nfs.sh"), "#!/bin/sh\n", 0o755)
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n# BEGIN nvidiaprep: written by nvidiaprep-hook at every start; edits here are lost\n# END nvidiaprep\n", 0o644)
	n.write(filepath.Join(n.opts.Config.Paths.Root, unitDropIns[0]), "[Service]\n", 0o644)
	if r := Run(context.Background(), n.opts); !r.OK() {
		t.Errorf("problems after the fixes: %+v", r.Problems)
	}
}

// Hand-written lines that reach a GPU the selection does not give are
// named, each with its fix, and a strict container is said not to start.
func TestGPUBypass(t *testing.T) {
	n := newNode(t)
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{}}, Strict: true}
	n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\nlxc.cgroup2.devices.allow: c 195:* rwm\ndev0: /dev/nvidia0\n")
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n# BEGIN nvidiaprep: written by nvidiaprep-hook at every start; edits here are lost\n# END nvidiaprep\n", 0o644)
	r := n.run()
	n.want(r, "gpu-bypass", "gpu-bypass")
	f := dump(r)
	for _, want := range []string{`CT 101: hand-written line "lxc.cgroup2.devices.allow: c 195:* rwm" allows every NVIDIA node`, `"dev0: /dev/nvidia0" passes /dev/nvidia0 through`, "with strict = true it does not start", "pct set 101 --delete dev0"} {
		if !strings.Contains(f, want) {
			t.Errorf("doctor lacks %q:\n%s", want, f)
		}
	}
	// Given every GPU, the same lines reach no other GPU, but the rule for
	// every NVIDIA node stays named until it is removed, and the host's
	// node passed through is superseded by the container's copy.
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{All: true}}
	r = n.run()
	n.want(r, "hand-written-lines", "gpu-bypass")
	f = dump(r)
	for _, want := range []string{`"lxc.cgroup2.devices.allow: c 195:* rwm" allows every NVIDIA node (195:*) to this privileged container, beyond the nodes nvidiaprep gives it`,
		`"dev0: /dev/nvidia0" passes the host's /dev/nvidia0 through`, "`nvidiaprep enable 101 --adopt`"} {
		if !strings.Contains(f, want) {
			t.Errorf("doctor lacks %q:\n%s", want, f)
		}
	}
	// Removed, nothing is said.
	n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\n")
	n.want(n.run())
}

// A line in a container's Proxmox config that breaks what the defences rely
// on (its /dev kept across starts) is named: pre-start refuses the start.
func TestLineThatBreaksAPremise(t *testing.T) {
	n := newNode(t)
	n.ct(106, "hookscript: local:snippets/nvidiaprep-hook\nlxc.autodev: 0\n")
	r := n.run()
	n.want(r, "breaks-premise")
	if f := dump(r); !strings.Contains(f, `CT 106: line "lxc.autodev: 0" keeps the container's own /dev`) || !strings.Contains(f, "106.conf") {
		t.Error(f)
	}
}

// On a kernel with fs.fuse.default_request_timeout at 0, a note says what
// it leaves open and how to close it; set, nothing.
func TestFUSERequestTimeoutNote(t *testing.T) {
	n := newNode(t)
	knob := filepath.Join(n.opts.Config.Paths.Proc, "sys/fs/fuse/default_request_timeout")
	n.write(knob, "0\n", 0o644)
	r := n.run()
	n.want(r)
	if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "sysctl fs.fuse.default_request_timeout=") {
		t.Errorf("notes %q", r.Notes)
	}
	n.write(knob, "60\n", 0o644)
	if r := n.run(); len(r.Notes) != 0 {
		t.Errorf("notes %q", r.Notes)
	}
}

// What the worker found wrong with NVIDIA's container toolkit inside a
// container is a problem with its fix; once fixed (the file gone), none.
func TestContainerToolkitFindings(t *testing.T) {
	n := newNode(t)
	if err := record.SaveFindings(n.opts.Config.Paths.State, 101, []string{"it is unprivileged and NVIDIA's container toolkit there lacks no-cgroups = true"}); err != nil {
		t.Fatal(err)
	}
	r := n.run()
	n.want(r, "container-toolkit")
	if w := whatOf(r, "container-toolkit"); w != "CT 101: it is unprivileged and NVIDIA's container toolkit there lacks no-cgroups = true" {
		t.Errorf("%q: want the finding naming CT 101 once", w)
	}
	if f := fixOf(r, "container-toolkit"); !strings.Contains(f, "no-cgroups = true") || !strings.Contains(f, "nvidiaprep provision 101") {
		t.Error(f)
	}
	if err := record.SaveFindings(n.opts.Config.Paths.State, 101, nil); err != nil {
		t.Fatal(err)
	}
	n.want(n.run())
}

// Every installed kernel has the driver's module, or doctor names it with
// the kernel to keep booting; a signature refusal in the kernel log is
// named with the key to enroll.
func TestKernelsAndSignatureRefusals(t *testing.T) {
	n := newNode(t)
	root := n.opts.Config.Paths.Root
	n.write(filepath.Join(root, record.NVIDIALog), "1.0-1 ("+version+")\nNVIDIA Accelerated Graphics Driver for Linux-x86_64\n", 0o600)
	n.write(filepath.Join(root, "boot/vmlinuz-6.8.12-4-pve"), "", 0o644)
	n.write(filepath.Join(root, "boot/vmlinuz-6.8.12-5-pve"), "", 0o644)
	n.opts.KernelRelease = "6.8.12-4-pve"
	// The stand-in answers dkms status and the kernel log alike.
	n.log.dkms = nil
	n.log.log = "nvidia/" + version + ", 6.8.12-4-pve, x86_64: installed\nLoading of unsigned module is rejected\n"
	r := n.run()
	n.want(r, "module-signature", "kernel-not-ready")
	for _, p := range r.Problems {
		switch p.Check {
		case "kernel-not-ready":
			if !strings.Contains(p.What, "kernel 6.8.12-5-pve has no NVIDIA driver "+version+" module: its headers are not installed") ||
				!strings.Contains(p.Fix, "`apt install proxmox-headers-6.8.12-5-pve`") || !strings.Contains(p.Fix, "proxmox-boot-tool kernel pin 6.8.12-4-pve") {
				t.Errorf("%+v", p)
			}
		case "module-signature":
			if !strings.Contains(p.Fix, "mokutil --import /var/lib/dkms/mok.pub") {
				t.Errorf("%+v", p)
			}
		}
	}
}
