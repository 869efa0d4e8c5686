package status

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
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/term"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestGatherAndWrite(t *testing.T) {
	root := t.TempDir()
	h, err := standin.NewHost(filepath.Join(root, "host"))
	if err != nil {
		t.Fatal(err)
	}
	h.Nodes = &standin.FakeNodes{}
	d := standin.Driver{Version: "580.142", UVMMajor: 509, GPUs: []standin.GPU{
		{PCIBusID: "0000:01:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", Minor: 0},
		{PCIBusID: "0000:41:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000001", Minor: 1},
	}}
	if err := h.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := h.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(h.Dev, "nvidia1"))
	cfg := config.Default()
	cfg.Paths = config.Paths{LXC: filepath.Join(root, "lxc"), Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Cache: filepath.Join(root, "cache"), State: filepath.Join(root, "state")}
	cfg.Driver.Version = "580.159.04"
	cfg.Containers[9501] = config.Container{GPUs: gpusel.Selection{Selectors: []string{"0"}}, Required: true, Install: true}
	cfg.Containers[9503] = config.Container{GPUs: gpusel.Selection{All: true}, Install: true, Chain: "local:snippets/mount-nfs.sh"}
	started := time.Date(2025, 11, 26, 9, 0, 0, 0, time.UTC)
	if err := record.Save(cfg.Paths.State, record.Provision{VMID: 9501, Version: "580.142", Outcome: record.Installed, Started: started, Finished: started.Add(42 * time.Second), Duration: 42 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if err := record.Save(cfg.Paths.State, record.Provision{VMID: 9502, Version: "580.142", Outcome: record.Failed, Started: started, Error: "CT 9502: no space left on device"}); err != nil {
		t.Fatal(err)
	}
	write(t, cfg.Paths.LXCConfig(9501), "lxc.arch = amd64\n"+lxcconf.Begin+"\n# driver 580.142; GPUs 0=0000:01:00.0\nlxc.cgroup2.devices.allow = c 195:0 rw\n"+lxcconf.End+"\n")
	write(t, filepath.Join(cfg.Paths.State, "host-driver.json"), `{"configured":"580.159.04","installed":"580.159.04","loaded":"580.142","outcome":"reboot-required","time":"2025-11-26T08:00:00Z","future_field":true}`)
	pveDir := filepath.Join(root, "pve")
	write(t, filepath.Join(pveDir, "lxc/9501.conf"), "hookscript: local:snippets/nvidiaprep-hook\n")
	write(t, filepath.Join(pveDir, "lxc/9503.conf"), "hookscript: local:snippets/nvidiaprep-hook\n")
	write(t, filepath.Join(pveDir, "lxc/9502.conf"), "arch: amd64\n")
	write(t, filepath.Join(pveDir, "lxc/9504.conf"), "arch: amd64\n") // no hook: not listed
	// Only a record, and not on this node (migrated): not listed.
	if err := record.Save(cfg.Paths.State, record.Provision{VMID: 9505, Version: "580.142", Outcome: record.Installed, Started: started}); err != nil {
		t.Fatal(err)
	}

	cfg.Paths.PVE, cfg.Paths.Root = pveDir, filepath.Join(root, "none")
	// Two kernels: the running one has the module, the new one no headers.
	write(t, filepath.Join(cfg.Paths.Root, "boot/vmlinuz-6.8.12-4-pve"), "")
	write(t, filepath.Join(cfg.Paths.Root, "boot/vmlinuz-6.8.12-5-pve"), "")
	dkms := dkmsStatus("nvidia/580.159.04, 6.8.12-4-pve, x86_64: installed\n")
	r := Gather(Options{Config: cfg, Nodes: h.Nodes, Kernels: KernelsOptions{Runner: dkms, Running: "6.8.12-4-pve"}})
	n := r.Node
	if n.Configured != "580.159.04" || n.Installed != "580.159.04" || n.Loaded != "580.142" || !n.RebootPending || len(n.GPUs) != 2 {
		t.Errorf("node %+v", n)
	}
	var missing []string
	for _, d := range n.DeviceNodes {
		if !d.Present {
			missing = append(missing, d.Name)
		}
	}
	if strings.Join(missing, " ") != "nvidia1" || len(n.DeviceNodes) != 5 {
		t.Errorf("device nodes %+v", n.DeviceNodes)
	}
	if len(r.Containers) != 3 || r.Containers[0].VMID != 9501 || r.Containers[1].VMID != 9502 || r.Containers[2].VMID != 9503 {
		t.Fatalf("containers %+v", r.Containers)
	}
	c := r.Containers[0]
	if c.GPUs != "0" || !c.Required || c.Given != "0=0000:01:00.0" || c.Version != "580.142" || c.Outcome != "installed" || c.Duration != 42*time.Second || c.Hookscript == "" {
		t.Errorf("CT 9501 %+v", c)
	}
	if c := r.Containers[1]; c.Hookscript != "" || !c.HookKnown || c.Outcome != "failed" || c.GPUs != "all" {
		t.Errorf("CT 9502 %+v", c)
	}
	if len(r.Problems) != 0 {
		t.Errorf("problems %q", r.Problems)
	}

	var b bytes.Buffer
	if err := Write(&b, r, started.Add(time.Hour), term.Style{Width: 80}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"driver configured   580.159.04", "driver loaded       580.142", "reboot pending      yes",
		"host driver unit    reboot-required", "nvidia1 MISSING", "nvidiactl 195:255",
		"9501  ?      0 (required)  0      580.142     installed 580.142, 59m ago, 42s",
		"9502  ?      all           -      -           failed 580.142, 1h ago",
		"CT 9502: no hookscript: nvidiaprep does not run for it (nvidiaprep enable 9502).",
		// The record is an old version's, which named the container itself:
		// the line names it once.
		"CT 9502: the last provisioning (580.142) failed: no space left on device",
		"CT 9503: nvidiaprep's hook runs its own hookscript local:snippets/mount-nfs.sh\n  first",
		"CT 9503: libraries will be installed at the next start",
		"install it on every node it can move to",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	// Every installed kernel, whole with --wide.
	b.Reset()
	if err := Write(&b, r, started.Add(time.Hour), term.Style{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"kernels             6.8.12-5-pve: NOT READY: its headers are not installed",
		"fix: `apt install proxmox-headers-6.8.12-5-pve` (DKMS then builds the module)",
		"6.8.12-4-pve (running): driver 580.159.04 built (dkms: installed)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(out, "CT 9502: libraries will be installed") {
		t.Errorf("CT 9502 has no nvidiaprep hookscript, so nothing will be installed:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if term.Len(l) > 80 {
			t.Errorf("a line of %d columns: %q", term.Len(l), l)
		}
	}
}

// dkmsStatus answers `dkms status` as DKMS would on a node with that state.
type dkmsStatus string

func (d dkmsStatus) Run(_ context.Context, c hostcmd.Command) (hostcmd.Result, error) {
	if c.Name != "dkms" {
		return hostcmd.Result{}, hostcmd.Exited(c, 127, c.Name+": not found")
	}
	return hostcmd.Result{Stdout: string(d), Output: string(d)}, nil
}

func TestNoDriverNoContainers(t *testing.T) {
	root := t.TempDir()
	cfg := config.Default()
	cfg.Paths = config.Paths{LXC: filepath.Join(root, "lxc"), Dev: root, Proc: root, Sys: root, Cache: root, State: root}
	cfg.Paths.PVE, cfg.Paths.Root = filepath.Join(root, "pve"), filepath.Join(root, "x")
	r := Gather(Options{Config: cfg})
	var b bytes.Buffer
	Write(&b, r, time.Now(), term.Style{Width: 80})
	for _, want := range []string{"none (no NVIDIA kernel module is loaded)", "device nodes        none (no driver)", "No container uses the hookscript"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
}

// The chain value is a file's text: its control characters print escaped,
// on the one line, and cannot clear the admin's terminal.
func TestChainPrintsEscaped(t *testing.T) {
	r := Report{Containers: []Container{{VMID: 9503, HookKnown: true, Hookscript: "local:snippets/nvidiaprep-hook", GPUs: "all", Install: true,
		Chain: "local:snippets/a\x1b[2J\nCT 9504: forged line\r.sh"}}}
	var b strings.Builder
	if err := Write(&b, r, time.Now(), term.Style{Width: 200}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.ContainsAny(out, "\x1b\r") || strings.Contains(out, "\nCT 9504: forged") {
		t.Errorf("the chain's control characters reach the terminal:\n%q", out)
	}
	if !strings.Contains(out, `CT 9503: nvidiaprep's hook runs its own hookscript local:snippets/a\x1b[2J\nCT 9504: forged line\r.sh first`) {
		t.Errorf("the chain is not shown escaped:\n%s", out)
	}
}

// status shows each GPU's DRM nodes, found by PCI address.
func TestStatusShowsDRMNodes(t *testing.T) {
	root := t.TempDir()
	h, err := standin.NewHost(filepath.Join(root, "host"))
	if err != nil {
		t.Fatal(err)
	}
	h.Nodes = &standin.FakeNodes{}
	d := standin.Driver{Version: "580.142", UVMMajor: 509, GPUs: []standin.GPU{{PCIBusID: "0000:01:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", Minor: 0}}}
	if err := h.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := h.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	if err := h.AddDRM("0000:01:00.0", 2); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Paths = config.Paths{LXC: filepath.Join(root, "lxc"), Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Cache: filepath.Join(root, "cache"), State: filepath.Join(root, "state"), PVE: filepath.Join(root, "pve")}
	r := Gather(Options{Config: cfg, Nodes: h.Nodes})
	var names []string
	for _, n := range r.Node.DeviceNodes {
		if n.Present {
			names = append(names, n.Name+"="+n.Device)
		}
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "dri/card2=226:2 dri/renderD130=226:130") {
		t.Errorf("device nodes: %s", got)
	}
}
