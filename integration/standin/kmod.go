package standin

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kmodScript is the stand-in lsmod, rmmod, modprobe, insmod and depmod
// (one sh script that acts by the name it is called by; kmod.sh says what
// each does). They follow kmod's interface and keep the module state in a
// stand-in host tree, never in the kernel.
//
//go:embed kmod.sh
var kmodScript string

// KmodTools are the names the stand-in module programs answer to.
var KmodTools = []string{"lsmod", "rmmod", "modprobe", "insmod", "depmod"}

// ModuleCalls is the file (relative to a stand-in host tree) where the
// stand-in module programs log each call, one "<program> <args>" line.
const ModuleCalls = ".standin/modcalls"

// WriteModuleTools writes the stand-in module programs into dir (put it
// first on the PATH of whatever runs them). They find the host tree in
// $NVIDIAPREP_STANDIN_ROOT or in an NVIDIAPREP_STANDIN_ROOT= line of
// /etc/nvidiaprep-standin (StandinControls) of the system they run in.
func WriteModuleTools(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("stand-in kmod: %w", err)
	}
	for _, name := range KmodTools {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(kmodScript), 0o755); err != nil {
			return fmt.Errorf("stand-in kmod: %w", err)
		}
	}
	return nil
}

// ModuleToolsScript returns the stand-in module programs' script, for
// writing into a container (every name in KmodTools gets a copy).
func ModuleToolsScript() string { return kmodScript }

// KernelModule returns the content of a stand-in .ko as the stand-in
// installer "builds" it and the stand-in insmod reads it: module name
// ("nvidia-uvm"), version, type ("open" or "proprietary"), and whether the
// kernel refuses to load it.
func KernelModule(name, version, typ string, failLoad bool) string {
	s := fmt.Sprintf("nvidiaprep-standin-ko %s %s %s", name, version, typ)
	if failLoad {
		s += " fail-load"
	}
	return s + "\n"
}

// BindNouveau stages nouveau loaded and bound to the PCI device pci (as a
// node that booted without the blacklist has it); held says a console
// framebuffer holds it (refcnt 1: `modprobe -r nouveau` fails).
func (h *Host) BindNouveau(pci string, held bool) error {
	dev := filepath.Join(h.Sys, "bus/pci/devices", pci)
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return fmt.Errorf("stand-in host: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(h.Sys, "bus/pci/drivers/nouveau"), 0o755); err != nil {
		return fmt.Errorf("stand-in host: %w", err)
	}
	_ = os.Remove(filepath.Join(dev, "driver"))
	if err := os.Symlink("../../../bus/pci/drivers/nouveau", filepath.Join(dev, "driver")); err != nil {
		return fmt.Errorf("stand-in host: %w", err)
	}
	ref := "0\n"
	if held {
		ref = "1\n"
	}
	if err := writeFile(filepath.Join(h.Sys, "module/nouveau/refcnt"), ref); err != nil {
		return err
	}
	return h.writeProcModules()
}

// LoadedModules lists the modules loaded in the stand-in tree (those with
// a sys/module/<m>/refcnt file).
func (h *Host) LoadedModules() []string {
	m, _ := filepath.Glob(filepath.Join(h.Sys, "module/*/refcnt"))
	out := make([]string, 0, len(m))
	for _, p := range m {
		out = append(out, filepath.Base(filepath.Dir(p)))
	}
	return out
}

// moduleDeps are the stand-in's module dependencies (kmod.sh deps_of).
var moduleDeps = map[string]string{"nvidia_uvm": "nvidia", "nvidia_modeset": "nvidia", "nvidia_peermem": "nvidia", "nvidia_drm": "nvidia_modeset"}

// writeProcModules writes <proc>/modules from the loaded modules, as
// kmod.sh does (reference counts from dependants only).
func (h *Host) writeProcModules() error {
	var b strings.Builder
	loaded := h.LoadedModules()
	for _, m := range loaded {
		var users []string
		for _, u := range loaded {
			if moduleDeps[u] == m {
				users = append(users, u)
			}
		}
		ref := len(users)
		if r, err := os.ReadFile(filepath.Join(h.Sys, "module", m, "refcnt")); err == nil && !strings.HasPrefix(m, "nvidia") {
			var n int
			fmt.Sscanf(string(r), "%d", &n)
			ref += n
		}
		u := "-"
		if len(users) > 0 {
			u = strings.Join(users, ",") + ","
		}
		fmt.Fprintf(&b, "%s 65536 %d %s Live 0x0000000000000000\n", m, ref, u)
	}
	return writeFile(filepath.Join(h.Proc, "modules"), b.String())
}
