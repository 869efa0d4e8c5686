package nvsupport

import (
	"fmt"
	"nvidiaprep/nvidiaprep/nvversion"
	"strconv"
	"strings"
)

// KernelMin is a known minimum driver for kernels from one release on,
// with where that is known from. This table is the one place for it; a
// kernel it does not name is left to the DKMS build and its check.
type KernelMin struct {
	Kernel  string   // the first kernel (major.minor) it applies to
	Driver  string   // the oldest driver known to build and load there
	Sources []string // where that is known from
}

// kernelMins, in ascending Kernel order.
var kernelMins = []KernelMin{
	{Kernel: "6.17", Driver: "580.105.08", Sources: []string{
		"ProxMenux's NVIDIA installer holds kernels 6.17 and later to 580.105.08 or later after users' DKMS build failures",
		"NVIDIA/open-gpu-kernel-modules issue 1143: 550.163.01 (Debian 13's) does not build on 6.17",
	}},
	{Kernel: "7.0", Driver: "580.105.08", Sources: []string{
		"ProxMenux's NVIDIA installer: kernels 7.x (Proxmox VE 9.2) need 580.105.08 or later",
	}},
}

// minDriver returns the known minimum driver for kernel release (such as
// "6.17.2-1-pve"); ok is false when none is known.
func minDriver(release string) (KernelMin, bool) {
	maj, min, ok := kernelMajorMinor(release)
	if !ok {
		return KernelMin{}, false
	}
	var found KernelMin
	ok = false
	for _, k := range kernelMins {
		kmaj, kmin, _ := kernelMajorMinor(k.Kernel)
		if maj > kmaj || maj == kmaj && min >= kmin {
			found, ok = k, true
		}
	}
	return found, ok
}

// CheckKernel says why driver version is known not to work on kernel
// release; "" when it is not known not to.
func CheckKernel(version, release string) string {
	k, ok := minDriver(release)
	if !ok || nvversion.AtLeast(version, k.Driver) {
		return ""
	}
	return fmt.Sprintf("kernel %s needs NVIDIA driver %s or later (known for kernels %s and later: %s); driver %s is older: set [driver] version to %s or later, or keep booting an older kernel",
		release, k.Driver, k.Kernel, strings.Join(k.Sources, "; "), version, k.Driver)
}

func kernelMajorMinor(release string) (int, int, bool) {
	p := strings.SplitN(release, ".", 3)
	if len(p) < 2 {
		return 0, 0, false
	}
	maj, err := strconv.Atoi(p[0])
	if err != nil {
		return 0, 0, false
	}
	minStr := p[1]
	if i := strings.IndexFunc(minStr, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minStr = minStr[:i]
	}
	min, err := strconv.Atoi(minStr)
	if err != nil {
		return 0, 0, false
	}
	return maj, min, true
}
