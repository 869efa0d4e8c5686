package status

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/record"
)

// asJSON is the report's document as a script reads it.
func asJSON(t *testing.T, r Report) map[string]any {
	t.Helper()
	b, err := json.Marshal(r.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// asList is v as a JSON array; the test fails when it is none.
func asList(t *testing.T, what string, v any) []any {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is %#v, not a list", what, v)
	}
	return l
}

// wantObject checks that obj has exactly the keys of want, with their values.
func wantObject(t *testing.T, what string, obj any, want map[string]any) {
	t.Helper()
	got, ok := obj.(map[string]any)
	if !ok {
		t.Errorf("%s is %#v, not an object", what, obj)
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}

// The kernels the text lists under "kernels" are in the JSON, each with
// every key (null where the text has nothing), and the kernel to pin.
func TestJSONKernels(t *testing.T) {
	r := Report{Node: Node{Installed: "580.159.04", Loaded: "580.159.04", Kernels: []kernels.Kernel{
		{Release: "6.8.12-5-pve", Bootable: true, Headers: false,
			Why: "its headers are not installed, so DKMS cannot build driver 580.159.04's module for it",
			Fix: "`apt install proxmox-headers-6.8.12-5-pve` (DKMS then builds the module), then `nvidiaprep kernel-installed 6.8.12-5-pve`"},
		{Release: "6.8.12-4-pve", Running: true, Bootable: true, Headers: true, DKMS: "installed", Ready: true},
	}}}
	node := asJSON(t, r)["node"].(map[string]any)
	ks, ok := node["kernels"].([]any)
	if !ok || len(ks) != 2 {
		t.Fatalf("kernels: %#v", node["kernels"])
	}
	wantObject(t, "the kernel not ready", ks[0], map[string]any{
		"release": "6.8.12-5-pve", "running": false, "bootable": true, "headers": false, "dkms": nil, "build_log": nil, "ready": false,
		"why": r.Node.Kernels[0].Why, "fix": r.Node.Kernels[0].Fix,
	})
	wantObject(t, "the running kernel", ks[1], map[string]any{
		"release": "6.8.12-4-pve", "running": true, "bootable": true, "headers": true, "dkms": "installed", "build_log": nil, "ready": true,
		"why": nil, "fix": nil,
	})
	wantObject(t, "working_kernel", node["working_kernel"], map[string]any{
		"release": "6.8.12-4-pve", "pin_command": "proxmox-boot-tool kernel pin 6.8.12-4-pve && proxmox-boot-tool refresh",
	})
}

// No kernel has the driver: none to pin; none listed: [] and null.
func TestJSONNoKernels(t *testing.T) {
	r := Report{Node: Node{Installed: "580.159.04", Kernels: []kernels.Kernel{
		{Release: "6.8.12-5-pve", Running: true, Bootable: true, DKMS: "built", BuildLog: "/var/lib/dkms/nvidia/580.159.04/6.8.12-5-pve/x86_64/log/make.log", Why: "w", Fix: "f"},
	}}}
	node := asJSON(t, r)["node"].(map[string]any)
	if v, ok := node["working_kernel"]; !ok || v != nil {
		t.Errorf("working_kernel with no ready kernel: %#v (present %v), want null", v, ok)
	}
	if k := asList(t, "kernels", node["kernels"])[0].(map[string]any); k["build_log"] != r.Node.Kernels[0].BuildLog || k["dkms"] != "built" {
		t.Errorf("kernel: %#v", k)
	}

	doc := asJSON(t, Report{})
	node = doc["node"].(map[string]any)
	for _, key := range []string{"kernels", "reboot_pending_why", "gpus", "device_nodes"} {
		if l, ok := node[key].([]any); !ok || len(l) != 0 {
			t.Errorf("node.%s of an empty report is %#v, want []", key, node[key])
		}
	}
	for _, key := range []string{"working_kernel", "host_driver_unit"} {
		if v, ok := node[key]; !ok || v != nil {
			t.Errorf("node.%s of an empty report is %#v (present %v), want null", key, v, ok)
		}
	}
}

// A boot that came up without the installed driver: the text says "did not
// load on this boot"; the JSON lists each cause with its fix, no reboot
// pending and no reason for one.
func TestJSONNotLoadedCauses(t *testing.T) {
	r := Report{Node: Node{Installed: "580.159.04", HostDriver: &HostDriver{Configured: "580.159.04", Installed: "580.159.04", Outcome: "not-loaded",
		Error: "NVIDIA driver 580.159.04 is installed but did not load on this boot; ...",
		Causes: []kernelguard.Cause{
			{What: "the running kernel 6.8.12-5-pve has no NVIDIA module", Fix: "`dkms autoinstall -k 6.8.12-5-pve`, then reboot", RebootHelps: true},
			{What: "Secure Boot rejected the module: its signer is not enrolled", Fix: "enroll the key with mokutil --import"},
		}}}}
	node := asJSON(t, r)["node"].(map[string]any)
	unit := node["host_driver_unit"].(map[string]any)
	causes, ok := unit["causes"].([]any)
	if !ok || len(causes) != 2 {
		t.Fatalf("causes: %#v", unit["causes"])
	}
	wantObject(t, "cause 1", causes[0], map[string]any{"what": "the running kernel 6.8.12-5-pve has no NVIDIA module", "fix": "`dkms autoinstall -k 6.8.12-5-pve`, then reboot", "reboot_helps": true})
	wantObject(t, "cause 2", causes[1], map[string]any{"what": "Secure Boot rejected the module: its signer is not enrolled", "fix": "enroll the key with mokutil --import", "reboot_helps": false})
	if unit["outcome"] != "not-loaded" || node["reboot_pending"] != false || len(asList(t, "reboot_pending_why", node["reboot_pending_why"])) != 0 {
		t.Errorf("node: %#v", node)
	}

	// A run without causes: [] rather than null.
	r.Node.HostDriver.Causes, r.Node.HostDriver.Outcome = nil, "current"
	unit = asJSON(t, r)["node"].(map[string]any)["host_driver_unit"].(map[string]any)
	if l, ok := unit["causes"].([]any); !ok || len(l) != 0 {
		t.Errorf("causes of a current run: %#v, want []", unit["causes"])
	}
}

// Each reason for a pending reboot is a sentence of reboot_pending_why,
// read by Gather as the text's "reboot pending yes" is.
func TestRebootPendingWhy(t *testing.T) {
	for _, c := range []struct {
		name              string
		hostDriver        string // host-driver.json; "" none
		installed, loaded string // the installer's record, the loaded module
		pkgs              string // /run/reboot-required.pkgs; "" none
		want              []string
	}{
		{name: "current", hostDriver: `{"configured":"580.159.04","installed":"580.159.04","loaded":"580.159.04","outcome":"current"}`, loaded: "580.159.04"},
		{name: "installed, not loaded", hostDriver: `{"configured":"580.159.04","installed":"580.159.04","outcome":"reboot-required"}`, loaded: "580.142",
			want: []string{"the host driver unit installed driver 580.159.04; it loads at the next boot"}},
		{name: "nouveau holds the GPU", hostDriver: `{"configured":"580.159.04","outcome":"reboot-required","error":"nouveau drives a GPU and cannot be released now\u001b[2J"}`,
			want: []string{`nouveau drives a GPU and cannot be released now\x1b[2J`}},
		{name: "rebooting", hostDriver: `{"configured":"580.159.04","installed":"580.159.04","outcome":"rebooting"}`, loaded: "580.142",
			want: []string{`the host driver unit installed driver 580.159.04; it loads at the next boot; the host driver unit reboots the node now (reboot = "auto")`}},
		{name: "installed by hand", installed: "580.159.04", loaded: "580.142",
			want: []string{"driver 580.159.04 is installed, but the loaded module is 580.142's; the installed one loads at the next boot"}},
		{name: "a boot came up with the old module", hostDriver: `{"configured":"580.159.04","installed":"580.159.04","outcome":"not-loaded"}`, loaded: "580.142"},
		{name: "Debian's list", loaded: "580.142", pkgs: "linux-image-amd64\nnvidiaprep\n",
			want: []string{"/run/reboot-required.pkgs (Debian's list of packages that want a reboot) lists nvidiaprep"}},
		{name: "another package's reboot", loaded: "580.142", pkgs: "linux-image-amd64\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			h, err := standin.NewHost(filepath.Join(root, "host"))
			if err != nil {
				t.Fatal(err)
			}
			h.Nodes = &standin.FakeNodes{}
			if c.loaded != "" {
				if err := h.LoadDriver(standin.Driver{Version: c.loaded, UVMMajor: 509}); err != nil {
					t.Fatal(err)
				}
			}
			cfg := config.Default()
			cfg.Paths = config.Paths{LXC: filepath.Join(root, "lxc"), Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Cache: filepath.Join(root, "cache"),
				State: filepath.Join(root, "state"), PVE: filepath.Join(root, "pve"), Root: filepath.Join(root, "root")}
			if c.hostDriver != "" {
				write(t, filepath.Join(cfg.Paths.State, "host-driver.json"), c.hostDriver)
			}
			if c.installed != "" {
				write(t, cfg.Paths.Host(record.NVIDIALog), "1.0-1 ("+c.installed+")\n")
			}
			if c.pkgs != "" {
				write(t, cfg.Paths.Host(rebootRequired), c.pkgs)
			}
			r := Gather(Options{Config: cfg, Nodes: h.Nodes, Kernels: KernelsOptions{Runner: dkmsStatus(""), Running: "6.8.12-4-pve"}})
			node := asJSON(t, r)["node"].(map[string]any)
			var why []string
			for _, s := range asList(t, "reboot_pending_why", node["reboot_pending_why"]) {
				why = append(why, s.(string))
			}
			if !slices.Equal(why, c.want) || node["reboot_pending"] != (len(c.want) > 0) {
				t.Errorf("reboot_pending %v, reboot_pending_why %q; want %q (problems %q)", node["reboot_pending"], why, c.want, r.Problems)
			}
		})
	}
}

// The render nodes the text lists among the device nodes are in the JSON
// with the GPU whose they are, as are the GPUs' nvidia<minor> nodes.
func TestJSONDeviceNodesGPU(t *testing.T) {
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
	if err := h.AddDRM("0000:41:00.0", 2); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Paths = config.Paths{LXC: filepath.Join(root, "lxc"), Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Cache: filepath.Join(root, "cache"), State: filepath.Join(root, "state"), PVE: filepath.Join(root, "pve")}
	r := Gather(Options{Config: cfg, Nodes: h.Nodes})
	byName := map[string]map[string]any{}
	for _, n := range asJSON(t, r)["node"].(map[string]any)["device_nodes"].([]any) {
		byName[n.(map[string]any)["name"].(string)] = n.(map[string]any)
	}
	wantObject(t, "dri/renderD130", byName["dri/renderD130"], map[string]any{
		"name": "dri/renderD130", "present": true, "device": "226:130", "driver_device": "226:130", "correct": true, "gpu_pci_address": "0000:41:00.0"})
	wantObject(t, "dri/card2", byName["dri/card2"], map[string]any{
		"name": "dri/card2", "present": true, "device": "226:2", "driver_device": "226:2", "correct": true, "gpu_pci_address": "0000:41:00.0"})
	if g := byName["nvidia1"]["gpu_pci_address"]; g != "0000:41:00.0" {
		t.Errorf("nvidia1's GPU: %v", g)
	}
	if g := byName["nvidia0"]["gpu_pci_address"]; g != "0000:01:00.0" {
		t.Errorf("nvidia0's GPU: %v", g)
	}
	if g, ok := byName["nvidiactl"]["gpu_pci_address"]; !ok || g != nil {
		t.Errorf("nvidiactl's GPU: %#v (present %v), want null", g, ok)
	}
	var names []string
	for n := range byName {
		names = append(names, n)
	}
	slices.Sort(names)
	if got := strings.Join(names, " "); got != "dri/card2 dri/renderD130 nvidia-uvm nvidia-uvm-tools nvidia0 nvidia1 nvidiactl" {
		t.Errorf("device nodes: %s", got)
	}
}
