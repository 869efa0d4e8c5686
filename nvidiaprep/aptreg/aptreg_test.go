package aptreg

import (
	"slices"
	"strings"
	"testing"
)

var installed = []Entry{
	{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.580.159.04"},
	{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so.1", Target: "libcuda.so.580.159.04"},
	{Path: "/usr/lib/x86_64-linux-gnu/libcuda.so", Target: "libcuda.so.1"},
	{Path: "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.580.159.04"},
	{Path: "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1", Target: "libnvidia-ml.so.580.159.04"},
	{Path: "/usr/lib/x86_64-linux-gnu/libnvidia-nvvm.so.580.159.04"},
	{Path: "/usr/lib/x86_64-linux-gnu/libnvidia-nvvm.so.4", Target: "libnvidia-nvvm.so.580.159.04"},
	{Path: "/usr/lib/x86_64-linux-gnu/libnvidia-pkcs11-openssl3.so.580.159.04"},
	{Path: "/usr/bin/nvidia-smi"},
}

// The names are Debian's own for what was installed: libcuda1, libnvidia-ml1
// (what nvidia-cuda-dev and libnvidia-ml-dev depend on), the sonames
// Debian's packages provide, and nvidia-smi.
func TestNamesAreDebians(t *testing.T) {
	pk, vi := Names(installed)
	want := []string{"libcuda1", "libnvidia-ml1", "libnvidia-nvvm4", "libnvidia-pkcs11-openssl3", "nvidia-smi"}
	if !slices.Equal(pk, want) {
		t.Errorf("packages %q, want %q", pk, want)
	}
	if !slices.Equal(vi, []string{"libcuda.so.1", "libnvidia-ml.so.1", "libnvidia-nvvm.so.4"}) {
		t.Errorf("virtual %q", vi)
	}
}

func TestControlAndPin(t *testing.T) {
	pk, vi := Names(installed)
	c := Control("580.159.04", pk, vi)
	for _, want := range []string{"Package: nvidiaprep-nvidia-driver\n", "Version: 580.159.04\n", "libcuda1 (= 580.159.04)", "libcuda.so.1 (= 580.159.04)", "Conflicts: libcuda1, libnvidia-ml1,"} {
		if !strings.Contains(c, want) {
			t.Errorf("control lacks %q:\n%s", want, c)
		}
	}
	if strings.Contains(c, "Depends:") {
		t.Errorf("the registration depends on something:\n%s", c)
	}
	p := Pin("580.159.04", []string{"libcuda1", "libnvcuvid1", "nvidia-driver", "libnvidia-ml-dev", "nvidia-cuda-toolkit", "bash"}, pk)
	line := ""
	for _, l := range strings.Split(p, "\n") {
		if strings.HasPrefix(l, "Package: ") {
			line = l
		}
	}
	got := strings.Fields(strings.TrimPrefix(line, "Package: "))
	for _, n := range []string{"libcuda1", "libnvcuvid1", "nvidia-driver", "libnvidia-ml1", "nvidia-smi"} {
		if !slices.Contains(got, n) {
			t.Errorf("pin lacks %s: %s", n, line)
		}
	}
	for _, n := range []string{"libnvidia-ml-dev", "nvidia-cuda-toolkit", "bash", Package} {
		if slices.Contains(got, n) {
			t.Errorf("pin refuses %s: %s", n, line)
		}
	}
	if !strings.Contains(p, "Pin-Priority: -1") {
		t.Errorf("pin:\n%s", p)
	}
}
