package devplan

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/pve"
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

// mountTarget returns the target field of an lxc.mount.entry value.
func mountTarget(value string) (source, target string, ok bool) {
	f := strings.Fields(value)
	if len(f) < 2 {
		return "", "", false
	}
	return f[0], strings.TrimPrefix(f[1], "/"), true
}

// Finding is a hand-written line nvidiaprep has something to say about: the
// line as written, what is wrong with it and the fix. String renders it for
// the task log; doctor shows the parts.
type Finding struct {
	Line string // "lxc.cgroup2.devices.allow = c 195:* rwm", "dev0: /dev/nvidia1"
	What string
	Fix  string
	At   int // the line's number in the file it comes from; 0 when not known
}

func (f Finding) String() string {
	return fmt.Sprintf("hand-written line %q %s: %s", f.Line, f.What, f.Fix)
}

// Stale names hand-written NVIDIA lines that cannot work on this node as it
// is now, each with its fix: cgroup v1 device keys (ignored on cgroup v2 by
// LXC 6, refused by LXC 7.0),
// allow rules for majors no driver has registered (typically an old
// nvidia-uvm major) and bind mounts of /dev/nvidia* nodes that do not exist.
// devRoot maps "/dev/..." sources onto the host tree being examined;
// pveConf is the Proxmox config the lines come from.
func Stale(entries []lxcconf.Entry, majors nvdev.Majors, devRoot, pveConf string) []Finding {
	nvidiaLines := false
	for _, e := range entries {
		if src, _, ok := mountTarget(e.Value); ok && e.Key == "lxc.mount.entry" && strings.HasPrefix(src, "/dev/nvidia") {
			nvidiaLines = true
		}
		if r, ok := parseAllow(e.Value); ok && strings.HasPrefix(e.Key, "lxc.cgroup") && r.major == nvidiaMajor {
			nvidiaLines = true
		}
	}
	var out []Finding
	add := func(e lxcconf.Entry, what, fix string) {
		out = append(out, Finding{Line: strings.TrimSpace(e.Raw), What: what, Fix: fix})
	}
	for _, e := range entries {
		switch e.Key {
		case "lxc.cgroup.devices.allow":
			add(e, "uses the cgroup v1 key, which does nothing on this cgroup v2 node, and with which LXC 7.0 (Proxmox VE 9.2) does not start the container (\"Unsupported config key\")",
				fmt.Sprintf("delete it from %s (nvidiaprep writes the lxc.cgroup2 rules at every start)", pveConf))
		case "lxc.cgroup2.devices.allow":
			r, ok := parseAllow(e.Value)
			if !ok || !nvidiaLines || r.kind != "c" || r.major < 0 || majors.Registered(uint32(r.major)) {
				continue
			}
			add(e, fmt.Sprintf("allows major %d, which no driver on this node has registered (%s)", r.major, liveNVIDIAMajors(majors)),
				fmt.Sprintf("delete it from %s; nvidiaprep writes the right rules at every start", pveConf))
		case "lxc.mount.entry":
			src, _, ok := mountTarget(e.Value)
			if !ok || !strings.HasPrefix(src, "/dev/nvidia") {
				continue
			}
			if _, err := os.Stat(filepath.Join(devRoot, strings.TrimPrefix(src, "/dev/"))); err != nil {
				add(e, fmt.Sprintf("mounts %s, which does not exist on this node", src),
					fmt.Sprintf("delete it from %s; nvidiaprep mounts the nodes that exist at every start", pveConf))
			}
		}
	}
	return out
}

// nvidiaMajor is the NVIDIA driver's fixed character major: /dev/nvidia<N>
// (minor N), nvidia-modeset (254) and nvidiactl (255).
const nvidiaMajor = 195

// Grant is what a container is given, which decides which GPUs hand-written
// lines may reach (the selection itself is gpusel.Selection; this is its
// outcome on this node).
type Grant struct {
	VMID int
	// Given are the minors of the GPUs the container is given; All means
	// every GPU of the node, so no line can reach another.
	Given []uint32
	All   bool
	// Privileged containers can mknod any node their device cgroup allows;
	// in unprivileged ones Proxmox allows every device, and only the
	// mounted nodes decide.
	Privileged bool
	PVEConf    string // the Proxmox config the lines come from
}

func (s Grant) given(minor int) bool {
	return s.All || slices.Contains(s.Given, uint32(minor))
}

// Gives tells whether pre-start's block gives the container the node at
// a path under /dev, judged from the selection alone (doctor's view; pre-start
// itself knows what it mounts): the control and UVM nodes, the given GPUs'
// nodes and render nodes. MIG capability nodes and any other NVIDIA node
// (nvswitch, IMEX channels) are not, so hand-written lines for them are
// not named as superseded.
func (s Grant) Gives(node string) bool {
	switch {
	case slices.Contains([]string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}, node):
		return true
	case strings.HasPrefix(node, "dri/"):
		return true
	}
	n, ok := strings.CutPrefix(node, "nvidia")
	minor, err := strconv.Atoi(n)
	return ok && err == nil && s.given(minor)
}

// Bypasses names the hand-written lines that let the container reach GPUs
// its selection does not give it: device rules that allow every device,
// every character device, every NVIDIA node or another GPU's minor (in a
// privileged container, which can make the node itself); mounts of another
// GPU's node or of the host's whole /dev; and Proxmox devN: entries that pass
// another GPU through. entries are the generated config's lines, devices the
// Proxmox config's devN: entries.
//
// A container given every GPU reaches no other, but a rule for every NVIDIA
// node (195:*) in a privileged one is still named: no rule nvidiaprep adds
// can narrow it, and strict refuses it until it is removed.
func Bypasses(entries []lxcconf.Entry, devices []Passthrough, s Grant) []Finding {
	if s.All {
		return broadRules(entries, s)
	}
	fixLine := fmt.Sprintf("delete it from %s, or give the container that GPU (gpus in [containers.%d])", s.PVEConf, s.VMID)
	var out []Finding
	add := func(line, what, fix string) {
		out = append(out, Finding{Line: strings.TrimSpace(line), What: what, Fix: fix})
	}
	for _, e := range entries {
		switch e.Key {
		case "lxc.cgroup2.devices.allow", "lxc.cgroup.devices.allow":
			r, ok := parseAllow(e.Value)
			if !ok || !s.Privileged || r.kind == "b" || !strings.Contains(r.access, "r") && !strings.Contains(r.access, "w") {
				continue
			}
			switch {
			case r.kind == "a" || r.major == -1:
				add(e.Raw, "allows every device to this privileged container, so it can make and open any GPU's node", fixLine)
			case r.major == nvidiaMajor && r.minor == -1:
				add(e.Raw, "allows every NVIDIA node (195:*) to this privileged container, so it can make and open any GPU's node", fixLine)
			case r.major == nvidiaMajor && r.minor < 254 && !s.given(r.minor):
				add(e.Raw, fmt.Sprintf("allows /dev/nvidia%d (195:%d), a GPU the container is not given", r.minor, r.minor), fixLine)
			}
		case "lxc.mount.entry":
			src, _, ok := mountTarget(e.Value)
			if !ok {
				continue
			}
			src = filepath.Clean(src)
			if src == "/dev" {
				add(e.Raw, "mounts the host's whole /dev, every GPU's node included", fixLine)
			} else if m, ok := gpuMinor(src); ok && !s.given(m) {
				add(e.Raw, fmt.Sprintf("mounts %s, a GPU the container is not given", src), fixLine)
			}
		}
	}
	for _, d := range devices {
		if m, ok := gpuMinor(filepath.Clean(d.Path)); ok && !s.given(m) {
			add(d.Line, fmt.Sprintf("passes %s through, a GPU the container is not given", d.Path),
				fmt.Sprintf("`pct set %d --delete %s`, or give the container that GPU (gpus in [containers.%d])", s.VMID, d.Key, s.VMID))
		}
	}
	return out
}

// broadRules names the rules for every NVIDIA node in a privileged
// container given every GPU.
func broadRules(entries []lxcconf.Entry, s Grant) []Finding {
	if !s.Privileged {
		return nil
	}
	var out []Finding
	for _, e := range entries {
		r, ok := parseAllow(e.Value)
		if ok && strings.HasPrefix(e.Key, "lxc.cgroup") && r.kind == "c" && r.major == nvidiaMajor && r.minor == -1 {
			out = append(out, Finding{Line: strings.TrimSpace(e.Raw), At: e.Line,
				What: "allows every NVIDIA node (195:*) to this privileged container, beyond the nodes nvidiaprep gives it, and no rule nvidiaprep adds narrows it",
				Fix:  fmt.Sprintf("delete it from %s (`nvidiaprep enable %d --adopt` does)", s.PVEConf, s.VMID)})
		}
	}
	return out
}

// Passthrough is a Proxmox devN: entry: its key ("dev0"), its path, the
// line as written and its number.
type Passthrough struct {
	Key, Path, Line string
	At              int
}

// Passthroughs are a container's devN: entries (pve.CT's Devices) as the
// findings take them.
func Passthroughs(devices []pve.Device) []Passthrough {
	out := make([]Passthrough, len(devices))
	for i, d := range devices {
		out[i] = Passthrough{Key: d.Key, Path: d.Path, Line: d.Raw, At: d.Line}
	}
	return out
}

// gpuMinor reads the minor out of a GPU node's path, /dev/nvidia<N>.
func gpuMinor(path string) (int, bool) {
	digits, ok := strings.CutPrefix(path, "/dev/nvidia")
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	return n, err == nil && n < 254
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
