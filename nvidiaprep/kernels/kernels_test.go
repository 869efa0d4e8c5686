package kernels

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestParseStatus(t *testing.T) {
	out := "nvidia/535.261.03, 6.1.0-57-amd64, x86_64: installed\n" +
		"nvidia/535.261.03, 6.1.0-50-amd64, x86_64: built\n" +
		"nvidia/535.261.03, 6.8.12-4-pve, x86_64: installed (WARNING! Diff between built and installed module!)\n" +
		"nvidia/580.142, 6.1.0-57-amd64, x86_64: installed\n" +
		"nvidia, 535.261.03, 5.15.0-1-pve, x86_64: installed\n" +
		"nvidia/535.261.03: added\n"
	got := parseStatus(out, "nvidia", "535.261.03")
	want := map[string]string{"6.1.0-57-amd64": "installed", "6.1.0-50-amd64": "built", "6.8.12-4-pve": "installed", "5.15.0-1-pve": "installed"}
	if len(got) != len(want) {
		t.Errorf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(path), 0o755)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestInstalledNewestFirstWithTheRunning(t *testing.T) {
	root := t.TempDir()
	for _, r := range []string{"6.8.12-9-pve", "6.8.12-10-pve", "6.14.8-2-pve"} {
		write(t, filepath.Join(root, "boot", "vmlinuz-"+r), "")
	}
	// The running kernel's image was removed; its modules are still there.
	if err := os.MkdirAll(filepath.Join(root, "lib/modules/6.5.13-1-pve"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Installed(root, "6.5.13-1-pve")
	want := []string{"6.14.8-2-pve", "6.8.12-10-pve", "6.8.12-9-pve", "6.5.13-1-pve"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("%v %v, want %v", got, err, want)
	}
}

// In a container or a chroot the running kernel is the machine's: nothing
// of it is below root, so it is none of root's kernels (status and doctor
// said it was NOT READY, with a headers package to install for it).
func TestInstalledLeavesOutAnotherRootsRunningKernel(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "boot", "vmlinuz-6.1.0-57-amd64"), "")
	got, err := Installed(root, "6.18.44-fc-v1272")
	if want := []string{"6.1.0-57-amd64"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("%v %v, want %v", got, err, want)
	}
}

func TestJudgeAndBuildLog(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "boot/vmlinuz-6.1.0-57-amd64"), "")
	write(t, filepath.Join(root, "lib/modules/6.1.0-57-amd64/build/include/linux/module.h"), "")
	write(t, filepath.Join(root, "var/lib/dkms/nvidia/535.261.03/build/make.log"), "DKMS make.log for nvidia-535.261.03 for kernel 6.1.0-57-amd64 (x86_64)\nerror: ...\n")
	c := Checker{Root: root, Running: "6.1.0-50-amd64"}
	k := c.Judge("535.261.03", "6.1.0-57-amd64", "")
	if k.Ready || !k.Bootable || k.BuildLog != "/var/lib/dkms/nvidia/535.261.03/build/make.log" || k.Fix == "" {
		t.Errorf("failed build: %+v", k)
	}
	if k := c.Judge("535.261.03", "6.1.0-50-amd64", ""); k.Ready || k.Headers || k.Bootable || k.BuildLog != "" ||
		k.Fix != "`apt install linux-headers-6.1.0-50-amd64` (DKMS then builds the module), then `nvidiaprep kernel-installed 6.1.0-50-amd64`" {
		t.Errorf("no headers: %+v", k)
	}
	if k := c.Judge("535.261.03", "6.17.2-1-pve", "installed"); k.Ready || k.Why == "" {
		t.Errorf("a kernel too new for the driver: %+v", k)
	}
	if k := c.Judge("580.105.08", "6.17.2-1-pve", "installed"); !k.Ready {
		t.Errorf("built: %+v", k)
	}
}

func TestMetapackage(t *testing.T) {
	for r, want := range map[string]string{"6.8.12-4-pve": "proxmox-default-headers", "6.1.0-57-amd64": "linux-headers-amd64", "6.1.0-57-cloud-amd64": "linux-headers-cloud-amd64", "6.18.44-fc-v1272": ""} {
		if got := Metapackage(r); got != want {
			t.Errorf("%s: %q, want %q", r, got, want)
		}
	}
}
