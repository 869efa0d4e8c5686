package devplan

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

// allowRule is a parsed "lxc.cgroup2.devices.allow" value: "c 195:* rwm".
type allowRule struct {
	kind         string // "c", "b" or "a"
	major, minor int    // -1 for "*"
	access       string
}

func parseAllow(value string) (allowRule, bool) {
	f := strings.Fields(value)
	if len(f) == 1 && f[0] == "a" {
		return allowRule{kind: "a", major: -1, minor: -1, access: "rwm"}, true
	}
	if len(f) < 2 {
		return allowRule{}, false
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return allowRule{}, false
	}
	r := allowRule{kind: f[0], major: starOrInt(maj), minor: starOrInt(min), access: "rwm"}
	if len(f) > 2 {
		r.access = f[2]
	}
	if r.major < -1 || r.minor < -1 {
		return allowRule{}, false
	}
	return r, true
}

func starOrInt(s string) int {
	if s == "*" {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -2
	}
	return n
}

// covers reports whether a hand-written rule already gives r. Proxmox's
// blanket "a" for unprivileged containers does not count: it is not a
// statement about NVIDIA nodes, and our explicit rules stay harmless there.
func (a allowRule) covers(r Rule) bool {
	return a.kind == "c" && a.major == int(r.Major) && (a.minor == -1 || a.minor == int(r.Minor)) &&
		strings.Contains(a.access, "r") && strings.Contains(a.access, "w")
}

// mountTarget returns the target field of an lxc.mount.entry value.
func mountTarget(value string) (source, target string, ok bool) {
	f := strings.Fields(value)
	if len(f) < 2 {
		return "", "", false
	}
	return f[0], strings.TrimPrefix(f[1], "/"), true
}

// WithoutHandWritten drops from p what lines the user wrote by hand already
// give: the same mount target, or an allow rule that covers ours.
func (p Plan) WithoutHandWritten(entries []lxcconf.Entry) Plan {
	var rules []allowRule
	targets := map[string]bool{}
	for _, e := range entries {
		switch e.Key {
		case "lxc.cgroup2.devices.allow":
			if r, ok := parseAllow(e.Value); ok {
				rules = append(rules, r)
			}
		case "lxc.mount.entry":
			if _, t, ok := mountTarget(e.Value); ok {
				targets[t] = true
			}
		}
	}
	var out Plan
	for _, r := range p.Rules {
		covered := false
		for _, a := range rules {
			covered = covered || a.covers(r)
		}
		if !covered {
			out.Rules = append(out.Rules, r)
		}
	}
	for _, m := range p.Mounts {
		if !targets[m.Target] {
			out.Mounts = append(out.Mounts, m)
		}
	}
	return out
}

// StaleWarnings names hand-written NVIDIA lines that cannot work on this node
// as it is now, each with its fix: cgroup v1 device keys (ignored on cgroup
// v2), allow rules for majors no driver has registered (typically an old
// nvidia-uvm major) and bind mounts of /dev/nvidia* nodes that do not exist.
// devRoot maps "/dev/..." sources onto the host tree being examined.
func StaleWarnings(entries []lxcconf.Entry, majors nvdev.Majors, devRoot, pveConf string) []string {
	nvidiaLines := false
	for _, e := range entries {
		if src, _, ok := mountTarget(e.Value); ok && e.Key == "lxc.mount.entry" && strings.HasPrefix(src, "/dev/nvidia") {
			nvidiaLines = true
		}
		if r, ok := parseAllow(e.Value); ok && strings.HasPrefix(e.Key, "lxc.cgroup") && r.major == 195 {
			nvidiaLines = true
		}
	}
	var warns []string
	for _, e := range entries {
		switch e.Key {
		case "lxc.cgroup.devices.allow":
			warns = append(warns, fmt.Sprintf("hand-written line %q uses the cgroup v1 key, which does nothing on this cgroup v2 node: delete it from %s (nvidiaprep writes the lxc.cgroup2 rules at every start)", e.Raw, pveConf))
		case "lxc.cgroup2.devices.allow":
			r, ok := parseAllow(e.Value)
			if !ok || !nvidiaLines || r.kind != "c" || r.major < 0 || majors.Registered(uint32(r.major)) {
				continue
			}
			warns = append(warns, fmt.Sprintf("hand-written line %q allows major %d, which no driver on this node has registered (%s): delete it from %s; nvidiaprep writes the right rules at every start",
				strings.TrimSpace(e.Raw), r.major, liveNVIDIAMajors(majors), pveConf))
		case "lxc.mount.entry":
			src, _, ok := mountTarget(e.Value)
			if !ok || !strings.HasPrefix(src, "/dev/nvidia") {
				continue
			}
			if _, err := os.Stat(filepath.Join(devRoot, strings.TrimPrefix(src, "/dev/"))); err != nil {
				warns = append(warns, fmt.Sprintf("hand-written line %q mounts %s, which does not exist on this node: delete it from %s; nvidiaprep mounts the nodes that exist at every start",
					strings.TrimSpace(e.Raw), src, pveConf))
			}
		}
	}
	return warns
}

func liveNVIDIAMajors(m nvdev.Majors) string {
	var parts []string
	for _, name := range []string{"nvidia", "nvidia-uvm", "nvidia-caps"} {
		if v, ok := m[name]; ok {
			parts = append(parts, fmt.Sprintf("%s is %d", name, v))
		}
	}
	if len(parts) == 0 {
		return "no NVIDIA driver is loaded"
	}
	return strings.Join(parts, ", ") + " now"
}
