package devplan

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// nvidiaMajors are the majors that NVIDIA's drivers have registered on
// this node (nvidia, nvidiactl: 195; nvidia-uvm, nvidia-caps, ...).
func nvidiaMajors(majors nvdev.Majors) map[int]bool {
	m := map[int]bool{nvidiaMajor: true}
	for name, v := range majors {
		if strings.HasPrefix(name, "nvidia") {
			m[int(v)] = true
		}
	}
	return m
}

// hasNVIDIALines tells whether the lines mount an NVIDIA node or allow
// major 195: then a rule for a major no driver registered is an NVIDIA
// rule from an earlier boot (typically nvidia-uvm's).
func hasNVIDIALines(entries []lxcconf.Entry) bool {
	for _, e := range entries {
		if src, _, ok := mountTarget(e.Value); ok && e.Key == "lxc.mount.entry" && strings.HasPrefix(src, "/dev/nvidia") {
			return true
		}
		if r, ok := parseAllow(e.Value); ok && strings.HasPrefix(e.Key, "lxc.cgroup") && r.major == nvidiaMajor {
			return true
		}
	}
	return false
}

// isNVIDIARule tells whether a device rule is about NVIDIA's nodes: a
// character rule for a major an NVIDIA driver registered, or, among other
// NVIDIA lines, for a major nothing registered. Rules for every device
// ("a", "c *:*") are not NVIDIA's: they stay.
func isNVIDIARule(e lxcconf.Entry, nvidia map[int]bool, majors nvdev.Majors, nvidiaLines bool) bool {
	if e.Key != "lxc.cgroup2.devices.allow" && e.Key != "lxc.cgroup.devices.allow" {
		return false
	}
	r, ok := parseAllow(e.Value)
	if !ok || r.kind != "c" || r.major < 0 {
		return false
	}
	return nvidia[r.major] || nvidiaLines && !majors.Registered(uint32(r.major))
}

// isNVIDIAMount tells whether a mount entry binds one of the host's NVIDIA
// nodes (or its nvidia-caps directory).
func isNVIDIAMount(e lxcconf.Entry) bool {
	src, _, ok := mountTarget(e.Value)
	return ok && e.Key == "lxc.mount.entry" && strings.HasPrefix(filepath.Clean(src), "/dev/nvidia")
}

// isNodeMount tells whether a mount entry binds an NVIDIA node of the
// host tree at devRoot (a relocated /dev, as in tests).
func isNodeMount(e lxcconf.Entry, devRoot string) bool {
	src, _, ok := mountTarget(e.Value)
	return ok && e.Key == "lxc.mount.entry" && devRoot != "/dev" && strings.HasPrefix(filepath.Clean(src), filepath.Join(devRoot, "nvidia"))
}

// Superseded names the hand-written NVIDIA lines that work but that
// nvidiaprep's block replaces: device rules for NVIDIA's majors, binds of
// the host's /dev/nvidia* nodes and devN: entries passing one through.
// nvidiaprep writes its own rules whatever these say, and mounts the
// container's own copies of the nodes in place of these binds (prestart
// leaves a bind at a path its block mounts out of the generated config),
// so the copies are what the container sees; each line is named so that
// it is removed:
// `nvidiaprep enable <vmid> --adopt` does. A rule for every NVIDIA node
// (195:*), which no rule nvidiaprep adds can narrow, is Bypasses' to name,
// and lines that cannot work on this node are Stale's.
// devRoot maps "/dev/..." onto the host tree being examined; Finding.At is
// each line's number in its file. gives tells whether the block gives the
// container a node at a path under /dev ("nvidia0", "nvidia-caps/nvidia-cap1"):
// a bind or devN: entry of a node it does not give stays in the generated
// config and still works if a rule allows it, so it is not superseded and
// not named here.
func Superseded(entries []lxcconf.Entry, devices []Passthrough, majors nvdev.Majors, devRoot string, vmid int, pveConf string, gives func(node string) bool) []Finding {
	nvidia := nvidiaMajors(majors)
	fix := fmt.Sprintf("`nvidiaprep enable %d --adopt` removes it from %s (or delete it there by hand)", vmid, pveConf)
	exists := func(path string) bool {
		path = filepath.Clean(path)
		if !strings.HasPrefix(path, filepath.Clean(devRoot)+"/") {
			path = filepath.Join(devRoot, strings.TrimPrefix(path, "/dev/"))
		}
		_, err := os.Stat(path)
		return err == nil
	}
	var out []Finding
	for _, e := range entries {
		switch {
		case e.Key == "lxc.cgroup2.devices.allow" && isNVIDIARule(e, nvidia, majors, false):
			if r, _ := parseAllow(e.Value); r.major == nvidiaMajor && r.minor == -1 {
				continue // Bypasses names it in a privileged container; elsewhere Proxmox allows every device anyway
			}
			out = append(out, Finding{Line: strings.TrimSpace(e.Raw), At: e.Line, Fix: fix,
				What: "is superseded: nvidiaprep writes the rules for the nodes the container is given at every start"})
		case isNVIDIAMount(e) || isNodeMount(e, devRoot):
			src, target, _ := mountTarget(e.Value)
			if !exists(src) {
				continue // Stale's
			}
			if node, ok := strings.CutPrefix(filepath.Clean(target), "dev/"); !ok || !gives(node) {
				continue // not replaced: the line stays and does what it did
			}
			out = append(out, Finding{Line: strings.TrimSpace(e.Raw), At: e.Line, Fix: fix,
				What: fmt.Sprintf("binds the host's %s: nvidiaprep mounts the container's own copy there instead, and leaves this line out of the generated config at every start", src)})
		}
	}
	for _, d := range devices {
		node, ok := strings.CutPrefix(filepath.Clean(d.Path), "/dev/")
		if !ok || !strings.HasPrefix(node, "nvidia") || !exists(d.Path) || !gives(node) {
			continue
		}
		out = append(out, Finding{Line: d.Line, At: d.At, Fix: fix,
			What: fmt.Sprintf("passes the host's %s through: nvidiaprep gives the container its own copy of it at every start", d.Path)})
	}
	return out
}

// Adoptable returns the numbers of the lines, in the container's Proxmox
// config, that `enable --adopt` removes: every hand-written NVIDIA line,
// working (Superseded) or not (the cgroup v1 key, binds of nodes that do
// not exist, and, among other NVIDIA lines, rules for a dynamic major
// that no driver registered: nvidia-uvm's of an earlier boot), in order.
// entries and devices are that config's (pve.CT's LXC and Devices);
// majors are /proc/devices' (none read: no rule for an unregistered major
// is removed).
func Adoptable(entries []lxcconf.Entry, devices []Passthrough, majors nvdev.Majors) []int {
	nvidia := nvidiaMajors(majors)
	stale := len(majors) > 0 && hasNVIDIALines(entries)
	var lines []int
	for _, e := range entries {
		r, ok := parseAllow(e.Value)
		dynamic := ok && (r.major >= 234 && r.major <= 254 || r.major >= 384 && r.major <= 511)
		if isNVIDIARule(e, nvidia, majors, stale && dynamic) || isNVIDIAMount(e) {
			lines = append(lines, e.Line)
		}
	}
	for _, d := range devices {
		if strings.HasPrefix(filepath.Clean(d.Path), "/dev/nvidia") {
			lines = append(lines, d.At)
		}
	}
	sort.Ints(lines)
	return lines
}

// Without returns the findings of fs whose line is not named in named:
// a line that reaches another GPU (Bypasses) is said once. Lines compare
// as key and value, so that "lxc.x: v" in a Proxmox config and "lxc.x = v"
// in the generated one are the same line.
func Without(fs, named []Finding) []Finding {
	key := func(line string) string {
		i := strings.IndexAny(line, ":=")
		if i < 0 {
			return strings.Join(strings.Fields(line), " ")
		}
		return strings.TrimSpace(line[:i]) + "\x00" + strings.Join(strings.Fields(line[i+1:]), " ")
	}
	seen := map[string]bool{}
	for _, f := range named {
		seen[key(f.Line)] = true
	}
	var out []Finding
	for _, f := range fs {
		if !seen[key(f.Line)] {
			out = append(out, f)
		}
	}
	return out
}
