package kernelguard

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/secureboot"
)

// fake answers dkms status, modinfo and the installer's recommendation,
// and records proxmox-boot-tool's calls (it writes the pin file as the
// real one does: /etc/kernel/proxmox-boot-pin).
type fake struct {
	root, dkms, sigKey, recommend string
	calls                         []string
}

func (f *fake) Run(_ context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	f.calls = append(f.calls, c.String())
	switch {
	case c.Name == "dkms":
		return hostcmd.Result{Stdout: f.dkms}, nil
	case c.Name == "modinfo":
		return hostcmd.Result{Stdout: f.sigKey + "\n"}, nil
	case c.Name == "/bin/sh":
		return hostcmd.Result{Stdout: f.recommend + "\n"}, nil
	case c.Name == "proxmox-boot-tool" && len(c.Args) == 3 && c.Args[1] == "pin":
		os.MkdirAll(filepath.Join(f.root, "etc/kernel"), 0o755)
		return hostcmd.Result{}, os.WriteFile(filepath.Join(f.root, pinFile), []byte(c.Args[2]+"\n"), 0o644)
	case c.Name == "proxmox-boot-tool" && len(c.Args) == 2 && c.Args[1] == "unpin":
		return hostcmd.Result{}, os.Remove(filepath.Join(f.root, pinFile))
	}
	return hostcmd.Result{}, hostcmd.Exited(c, 127, "not found")
}

func write(t *testing.T, path, text string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

type node struct {
	root string
	host *standin.Host
	cfg  config.Config
	f    *fake
}

func newNode(t *testing.T, kernels ...string) *node {
	t.Helper()
	dir := t.TempDir()
	h, err := standin.NewHost(filepath.Join(dir, "host"))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{root: filepath.Join(dir, "root"), host: h, cfg: config.Default()}
	n.cfg.Paths = config.Paths{Root: n.root, Sys: h.Sys, Proc: h.Proc, Dev: h.Dev, State: filepath.Join(dir, "state"), Cache: filepath.Join(dir, "cache")}
	n.f = &fake{root: n.root}
	for _, k := range kernels {
		write(t, filepath.Join(n.root, "boot/vmlinuz-"+k), "")
	}
	return n
}

func (n *node) installed(t *testing.T, version string) {
	write(t, filepath.Join(n.root, record.NVIDIALog), "1.0-1 ("+version+")\nNVIDIA Accelerated Graphics Driver for Linux-x86_64\n")
}

func (n *node) guard(t *testing.T, release string) (GuardReport, string) {
	t.Helper()
	var out bytes.Buffer
	rep, err := KernelInstalled(context.Background(), GuardInput{Config: n.cfg, Release: release, Running: "6.8.12-4-pve", Runner: n.f, Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	return rep, out.String()
}

// A new kernel without headers: said loudly with the fix and the kernel
// to keep booting, marked, and (pin_working_kernel) pinned; once its
// module is built, unmarked and unpinned.
func TestNewKernelWithoutItsModule(t *testing.T) {
	n := newNode(t, "6.8.12-4-pve", "6.8.12-5-pve")
	n.installed(t, "580.105.08")
	n.cfg.Driver.PinWorkingKernel = true
	n.f.dkms = "nvidia/580.105.08, 6.8.12-4-pve, x86_64: installed\n"
	rep, out := n.guard(t, "6.8.12-5-pve")
	for _, w := range []string{
		"kernel 6.8.12-5-pve has NO NVIDIA driver 580.105.08 module: its headers are not installed",
		"`apt install proxmox-headers-6.8.12-5-pve`",
		"keep booting kernel 6.8.12-4-pve, which has it: proxmox-boot-tool kernel pin 6.8.12-4-pve && proxmox-boot-tool refresh",
		"pinned kernel 6.8.12-4-pve",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if len(rep.NotReady) != 1 || rep.Working != "6.8.12-4-pve" || rep.Pinned != "6.8.12-4-pve" {
		t.Errorf("%+v", rep)
	}
	marker, _ := os.ReadFile(filepath.Join(n.root, notReadyMarker))
	if !strings.Contains(string(marker), "kernel 6.8.12-5-pve has no NVIDIA driver 580.105.08 module") {
		t.Errorf("marker: %q", marker)
	}
	if pin, _ := os.ReadFile(filepath.Join(n.root, pinFile)); string(pin) != "6.8.12-4-pve\n" {
		t.Errorf("pin %q", pin)
	}
	st, ok, err := loadState(n.cfg.Paths.State)
	if !ok || err != nil || st.Pinned != "6.8.12-4-pve" || len(st.Kernels) != 2 {
		t.Errorf("state %+v %v", st, err)
	}

	// The headers arrive and DKMS builds it.
	n.f.dkms += "nvidia/580.105.08, 6.8.12-5-pve, x86_64: installed\n"
	_, out = n.guard(t, "6.8.12-5-pve")
	if !strings.Contains(out, "kernel 6.8.12-5-pve has NVIDIA driver 580.105.08's module (dkms status: installed)") || !strings.Contains(out, "unpinned kernel 6.8.12-4-pve") {
		t.Errorf("output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(n.root, notReadyMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(n.root, pinFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin left: %v", err)
	}
}

// Without pin_working_kernel nothing is pinned; --all is quiet when every
// kernel is ready; without a .run install there is nothing to check.
func TestPinOffAndQuietWhenReady(t *testing.T) {
	n := newNode(t, "6.8.12-4-pve", "6.8.12-5-pve")
	if _, out := n.guard(t, ""); out != "" {
		t.Errorf("no driver, --all: %q", out)
	}
	n.installed(t, "580.105.08")
	n.f.dkms = "nvidia/580.105.08, 6.8.12-4-pve, x86_64: installed\n"
	_, out := n.guard(t, "")
	if !strings.Contains(out, "kernel 6.8.12-5-pve has NO NVIDIA driver") || strings.Contains(out, "pinned") {
		t.Errorf("output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(n.root, pinFile)); err == nil {
		t.Error("pinned with pin_working_kernel off")
	}
	n.f.dkms += "nvidia/580.105.08, 6.8.12-5-pve, x86_64: installed\n"
	if _, out := n.guard(t, ""); out != "" {
		t.Errorf("--all with every kernel ready: %q", out)
	}
}

// With Secure Boot on, a module signed by a key the firmware does not
// trust is not ready: the fix is to enroll the one key.
func TestSecureBootSigner(t *testing.T) {
	n := newNode(t, "6.8.12-4-pve")
	n.installed(t, "580.105.08")
	n.f.dkms = "nvidia/580.105.08, 6.8.12-4-pve, x86_64: installed\n"
	write(t, filepath.Join(n.root, "lib/modules/6.8.12-4-pve/updates/dkms/nvidia.ko"), "")
	if err := n.host.SetSecureBoot(true); err != nil {
		t.Fatal(err)
	}
	_, out := n.guard(t, "6.8.12-4-pve") // makes the key and DKMS's signing configuration
	if !strings.Contains(out, "made the module signing key /var/lib/dkms/mok.pub") || !strings.Contains(out, "its module is not signed") {
		t.Errorf("output:\n%s", out)
	}
	key, err := secureboot.ReadKey(n.root)
	if err != nil {
		t.Fatal(err)
	}
	n.f.sigKey = secureboot.SigKey(key.Cert)
	_, out = n.guard(t, "6.8.12-4-pve")
	if !strings.Contains(out, "signed by key "+n.f.sigKey+", which is not enrolled") || !strings.Contains(out, secureboot.ImportCommand) {
		t.Errorf("output:\n%s", out)
	}
	if err := n.host.EnrollMOK(key.Cert.Raw); err != nil {
		t.Fatal(err)
	}
	if _, out = n.guard(t, "6.8.12-4-pve"); !strings.Contains(out, "has NVIDIA driver 580.105.08's module") {
		t.Errorf("enrolled:\n%s", out)
	}
}

// The gate lists every reason at once, before anything changes.
func TestGateRefusesWithEveryReason(t *testing.T) {
	n := newNode(t, "6.17.2-1-pve", "6.8.12-4-pve")
	tree := extract(t, "550.163.01")
	for addr, dev := range map[string]uint16{"0000:01:00.0": 0x1b80, "0000:02:00.0": 0x2b85} {
		if err := n.host.AddPCIGPU(addr, dev); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Gate(context.Background(), GateInput{Version: "550.163.01", Tree: tree, KernelModule: "open",
		Root: n.root, Sys: n.host.Sys, Running: "6.8.12-4-pve", Runner: n.f})
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("%v", err)
	}
	for _, w := range []string{
		"GPU 0000:01:00.0 (10de:1b80) NVIDIA GeForce GTX 1080 is older than Turing",
		"kernel 6.17.2-1-pve needs NVIDIA driver 580.105.08 or later",
		"kernel 6.8.12-4-pve has no headers and apt knows none of proxmox-headers-6.8.12-4-pve",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal lacks %q:\n%v", w, err)
		}
	}
	if len(re.Reasons) != 4 {
		t.Errorf("reasons: %q", re.Reasons)
	}
}

// auto asks the installer (570.86 and later) and takes its answer; Secure
// Boot makes the key; installable headers are planned, not refused.
func TestGatePlan(t *testing.T) {
	n := newNode(t, "6.8.12-4-pve")
	tree := extract(t, "580.105.08")
	n.host.AddPCIGPU("0000:01:00.0", 0x2330)
	n.host.SetSecureBoot(true)
	n.f.recommend = "open"
	p, err := Gate(context.Background(), GateInput{Version: "580.105.08", Tree: tree, KernelModule: "auto",
		Root: n.root, Sys: n.host.Sys, Running: "6.8.12-4-pve", Runner: n.f, CreateKey: true,
		Installable: func(_ context.Context, pkgs []string) (map[string]bool, error) {
			return map[string]bool{"proxmox-headers-6.8.12-4-pve": true}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ModuleType != "open" || strings.Join(p.Headers, " ") != "proxmox-headers-6.8.12-4-pve" || p.Signing == nil || !p.KeyCreated || p.Enrolled {
		t.Errorf("plan %+v", p)
	}
	if len(p.Notes) == 0 || !strings.Contains(strings.Join(p.Notes, " "), "mokutil --import /var/lib/dkms/mok.pub") {
		t.Errorf("notes %q", p.Notes)
	}
	if !strings.Contains(strings.Join(n.f.calls, "\n"), "--print-recommended-kernel-module-type") {
		t.Errorf("the installer was not asked: %q", n.f.calls)
	}
}

func extract(t *testing.T, version string) string {
	t.Helper()
	dir := t.TempDir()
	run := filepath.Join(dir, "runs", driverrun.RunFileName(version))
	os.MkdirAll(filepath.Dir(run), 0o755)
	if err := standin.BuildRun(run, standin.RunOptions{Version: version}); err != nil {
		t.Fatal(err)
	}
	tr, err := driverrun.Cache{Dir: dir}.Extract(context.Background(), version, "")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
