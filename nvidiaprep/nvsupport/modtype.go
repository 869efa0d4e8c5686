package nvsupport

import (
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/nvflags"
	"nvidiaprep/nvidiaprep/nvversion"
)

// Kernel module types, as nvidia-installer's --kernel-module-type names them.
const (
	Open        = "open"
	Proprietary = "proprietary"
)

// Branches that change which module types exist and who chooses
// (NVIDIA's release notes; the installer's option_table.h and kernel.c
// valid_kernel_module_types): the open module ships from 515.43.04, both
// types ship with the proprietary one the default up to the 555 branch,
// and from 560 the installer picks the open one when every GPU supports
// it. --print-recommended-kernel-module-type exists from 570.86.16
// (nvflags).
const (
	firstOpen        = "515.43.04"
	firstOpenDefault = "560"
)

// GPU generations by PCI device id, where supported-gpus.json says
// nothing (a row without features, or no list):
//   - 0x1340 to 0x1DFF are Maxwell, Pascal and Volta, which have no GSP and
//     so no open module (nvidia-installer misc.c pci_devid_gsp_unlikely);
//     Turing (0x1E00) and later have one;
//   - Blackwell (0x2900 and later) and the self-hosted Hopper parts
//     (0x2340 to 0x237F, detect-self-hosted.h) need the open module: the
//     proprietary one does not drive them (NVIDIA's 570 release notes).
const (
	firstTuring    = 0x1E00
	firstBlackwell = 0x2900
)

// openCapable tells whether the open module can drive the GPU: its row's
// "kernelopen" feature where the list has features, else its generation.
func openCapable(g PCIGPU, row Chip, listed bool) bool {
	if listed && len(row.Features) > 0 {
		return row.HasFeature("kernelopen")
	}
	return g.Device >= firstTuring
}

// openRequired tells whether only the open module drives the GPU.
func openRequired(g PCIGPU) bool {
	return g.Device >= firstBlackwell || g.Device >= 0x2340 && g.Device <= 0x237F
}

// Verdict is what a driver version can do with the node's GPUs.
type Verdict struct {
	// ModuleType is the type to install: the configured one, or for
	// "auto" the one the GPUs and the branch call for; "" when the branch
	// has one type only (before 515.43.04).
	ModuleType string
	// AskInstaller: "auto" on a branch whose installer says which type it
	// recommends (--print-recommended-kernel-module-type): ask it, then
	// check its answer with CheckType.
	AskInstaller bool
	// Problems are reasons not to install, each naming the GPU and the fix.
	Problems []string
	// Notes are what could not be checked.
	Notes []string
}

// Check checks driver version against the node's GPUs: every GPU in its
// list of supported GPUs (list may be empty with ErrNoList as listErr),
// and a module type the GPUs can use. moduleType is the configuration's
// ("open", "proprietary" or "auto").
func Check(version string, list List, listErr error, gpus []PCIGPU, moduleType string) Verdict {
	var v Verdict
	rows := make([]Chip, len(gpus))
	listed := make([]bool, len(gpus))
	switch {
	case listErr != nil:
		v.Notes = append(v.Notes, fmt.Sprintf("which GPUs driver %s supports is not checked: %v", version, listErr))
	default:
		for i, g := range gpus {
			rows[i], listed[i] = list.Lookup(g)
			switch {
			case !listed[i]:
				v.Problems = append(v.Problems, fmt.Sprintf("GPU %s is not in driver %s's list of supported GPUs (%s): this branch does not drive it; a newer branch may (check NVIDIA's list for your card), then set [driver] version to it", g, version, supportedGPUsFile))
			case rows[i].LegacyBranch != "":
				v.Problems = append(v.Problems, fmt.Sprintf("GPU %s (%s) is not supported by driver %s: NVIDIA supports it in the %s legacy branch; set [driver] version to a %s release (and its run and sha256)", g, rows[i].Name, version, rows[i].LegacyBranch, rows[i].Branch()))
			}
		}
	}
	switch moduleType {
	case Open, Proprietary:
		v.ModuleType = moduleType
		v.Problems = append(v.Problems, CheckType(version, moduleType, gpus, rows, listed)...)
	default: // auto
		v.ModuleType, v.Problems = autoType(version, gpus, rows, listed, v.Problems)
		v.AskInstaller = nvflags.Knows(version, nvflags.PrintRecommendedModuleType) && len(gpus) > 0 && len(v.Problems) == 0
	}
	return v
}

// CheckType says why the GPUs cannot use module type t of driver version
// (rows and listed as Check finds them; nil for unknown).
func CheckType(version, t string, gpus []PCIGPU, rows []Chip, listed []bool) []string {
	var out []string
	if t == Open && !nvversion.AtLeast(version, firstOpen) {
		return []string{fmt.Sprintf("kernel_module = \"open\", but driver %s has no open kernel module (the first is %s): set kernel_module = \"proprietary\" or \"auto\", or a newer [driver] version", version, firstOpen)}
	}
	for i, g := range gpus {
		row, ok := Chip{}, false
		if i < len(rows) {
			row, ok = rows[i], listed[i]
		}
		name := g.String()
		if ok && row.Name != "" {
			name += " " + row.Name
		}
		switch {
		case t == Open && !openCapable(g, row, ok):
			out = append(out, fmt.Sprintf("kernel_module = \"open\", but GPU %s is older than Turing: the open kernel module does not drive it; set kernel_module = \"proprietary\" (or \"auto\")", name))
		case t == Proprietary && openRequired(g):
			out = append(out, fmt.Sprintf("kernel_module = \"proprietary\", but GPU %s needs the open kernel module (Blackwell and later, self-hosted Hopper); set kernel_module = \"open\" (or \"auto\")", name))
		}
	}
	return out
}

// autoType picks the type for "auto" the way the installer does (kernel.c
// valid_kernel_module_types): open when a GPU requires it, else open from
// 560 when every GPU supports it, else proprietary.
func autoType(version string, gpus []PCIGPU, rows []Chip, listed []bool, problems []string) (string, []string) {
	if !nvversion.AtLeast(version, firstOpen) {
		for _, g := range gpus {
			if openRequired(g) {
				problems = append(problems, fmt.Sprintf("GPU %s needs the open kernel module, which driver %s does not have: set [driver] version to a 570 or later release", g, version))
			}
		}
		return "", problems
	}
	if len(gpus) == 0 {
		return "", problems // no GPU seen: the installer's own default
	}
	required, allCapable := false, true
	var cannot []string
	for i, g := range gpus {
		if openRequired(g) {
			required = true
		}
		if !openCapable(g, rows[i], listed[i]) {
			allCapable = false
			cannot = append(cannot, g.String())
		}
	}
	switch {
	case required && !allCapable:
		return Open, append(problems, fmt.Sprintf("the node mixes GPUs that need the open kernel module with GPUs it does not drive (%s): one driver cannot serve both; move those GPUs to another node", strings.Join(cannot, ", ")))
	case required:
		return Open, problems
	case allCapable && nvversion.AtLeast(version, firstOpenDefault):
		return Open, problems
	default:
		return Proprietary, problems
	}
}
