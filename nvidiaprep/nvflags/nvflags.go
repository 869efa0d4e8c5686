// Package nvflags says which nvidia-installer options a driver branch
// knows. NVIDIA's installer rejects an option it does not know ("unrecognized
// option", exit 1), and options were added over the branches: the table
// below was read from option_table.h at every tag of
// github.com/NVIDIA/nvidia-installer (the first tag whose table has it).
package nvflags

import (
	"strings"

	"nvidiaprep/nvidiaprep/nvversion"
)

// Options nvidiaprep passes that not every supported branch knows.
const (
	Systemd                    = "--systemd" // and --no-systemd
	SkipModuleLoad             = "--skip-module-load"
	KernelModuleType           = "--kernel-module-type"
	KernelModuleBuildDirectory = "--kernel-module-build-directory"
	AllowRunningDriver         = "--allow-installation-with-running-driver"
	RebuildInitramfs           = "--rebuild-initramfs"
	PrintRecommendedModuleType = "--print-recommended-kernel-module-type"
	NoKernelModules            = "--no-kernel-modules"
	SkipDepmod                 = "--skip-depmod"
	MinContainerVersion        = "465.19.01" // the first release with --no-systemd, which containers need
)

// since is the first version whose installer knows each option.
var since = map[string]string{
	Systemd:                    "465.19.01",
	SkipModuleLoad:             "550.40.07",
	KernelModuleType:           "555.42.02",
	KernelModuleBuildDirectory: "470.42.01",
	AllowRunningDriver:         "545.23.06",
	RebuildInitramfs:           "545.23.06",
	PrintRecommendedModuleType: "570.86.16",
	NoKernelModules:            "515.43.04",
	SkipDepmod:                 "418.30",
}

// Knows tells whether version's nvidia-installer accepts option ("--name",
// "--no-name" or "--name=value"). Options not in the table are old enough
// for every branch nvidiaprep installs.
func Knows(version, option string) bool {
	name, _, _ := strings.Cut(option, "=")
	if s, ok := since[name]; ok {
		return nvversion.AtLeast(version, s)
	}
	if strings.HasPrefix(name, "--no-") {
		if s, ok := since["--"+strings.TrimPrefix(name, "--no-")]; ok {
			return nvversion.AtLeast(version, s)
		}
	}
	return true
}
