// Package devplan turns the device nodes a container is given into a plan
// (mounts and cgroup2 device rules) and renders it as lxc.* lines. A plan
// is plain data: one place, Lines, decides how it looks in an LXC config.
package devplan

import (
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/nvdev"
)

// Mount is a bind mount of a host path into the container, or an overlay of
// Layers.
type Mount struct {
	Source   string // host path
	Target   string // relative to the container's root: "dev/nvidia0"
	Dir      bool   // a directory (create=dir) rather than a file node
	ReadOnly bool
	// Layers, when set, make the mount an overlay of these host directories
	// (top first) instead of a bind of Source. Without an upper layer its
	// superblock is read-only: no remount inside the container, privileged
	// or not, makes it writable, as one of a read-only bind would.
	Layers []string
}

// ReadOnlyOverlay is a mount at target showing layers (top first, at least
// two: overlayfs wants two lower layers when there is no upper one). A
// layer's path must not hold what overlayfs or LXC read as separators.
func ReadOnlyOverlay(target string, layers ...string) (Mount, error) {
	if len(layers) < 2 {
		return Mount{}, fmt.Errorf("a read-only overlay needs two layers, got %d", len(layers))
	}
	for _, l := range layers {
		if !strings.HasPrefix(l, "/") || strings.ContainsAny(l, ",:\\ \t\n\r\x00") {
			return Mount{}, fmt.Errorf("%q cannot be a layer of the overlay at /%s: it must be an absolute path without commas, colons, backslashes or whitespace", l, target)
		}
	}
	return Mount{Target: target, Dir: true, ReadOnly: true, Layers: layers}, nil
}

// Rule allows read and write access to one character device.
type Rule struct {
	Major, Minor uint32
}

// Plan is what a container gets: the rules, then the mounts.
type Plan struct {
	Rules  []Rule
	Mounts []Mount
}

// ForNodes plans a bind mount and an allow rule for each node.
func ForNodes(nodes []nvdev.Node) Plan {
	var p Plan
	for _, n := range nodes {
		p.Rules = append(p.Rules, Rule{Major: n.Major, Minor: n.Minor})
		p.Mounts = append(p.Mounts, Mount{Source: n.Path, Target: "dev/" + n.Name})
	}
	return p
}

// Lines renders the plan as LXC config lines.
func (p Plan) Lines() []string {
	lines := make([]string, 0, len(p.Rules)+len(p.Mounts))
	for _, r := range p.Rules {
		lines = append(lines, fmt.Sprintf("lxc.cgroup2.devices.allow = c %d:%d rw", r.Major, r.Minor))
	}
	for _, m := range p.Mounts {
		if len(m.Layers) > 0 {
			lines = append(lines, fmt.Sprintf("lxc.mount.entry = overlay %s overlay lowerdir=%s,ro,optional,create=dir", fstabEscape(m.Target), strings.Join(m.Layers, ":")))
			continue
		}
		opts := "bind,optional,create=file"
		if m.Dir {
			opts = "bind,optional,create=dir"
		}
		if m.ReadOnly {
			opts += ",ro"
		}
		lines = append(lines, fmt.Sprintf("lxc.mount.entry = %s %s none %s", fstabEscape(m.Source), fstabEscape(m.Target), opts))
	}
	return lines
}

// fstabEscape escapes what fstab fields cannot hold, as LXC's parser expects.
// By hand: a strings.Replacer built at each call cost pre-start more than
// the rest of its lines.
func fstabEscape(s string) string {
	if !strings.ContainsAny(s, " \t\n\\") {
		return s
	}
	var b strings.Builder
	for _, c := range []byte(s) {
		switch c {
		case ' ', '\t', '\n', '\\':
			fmt.Fprintf(&b, "\\%03o", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
