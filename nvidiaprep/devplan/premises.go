package devplan

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/lxcconf"
)

// ownDir is the directory below the container's /dev where nvidiaprep
// mounts what it gives (the driver trees' overlay), and, on the host's
// /dev, where it keeps each container's copies of its nodes.
const ownDir = "dev/.nvidiaprep"

// Premises names the lines of a container's config that break what
// nvidiaprep's defences rely on, each with its fix: that LXC makes the
// container's /dev afresh at every start (so a container cannot have
// planted a link where nvidiaprep mounts), that only nvidiaprep mounts
// at dev/.nvidiaprep and at the device paths it gives (targets, "dev/nvidia0"),
// and that no hook of the admin's touches them. nvidiaprep refuses to start
// a container it gives something while one of them is there:
//   - lxc.autodev other than 1: /dev is the container's own, kept across
//     starts, and a privileged root can make dev/.nvidiaprep a link to a
//     host directory where LXC then mounts the overlay;
//   - an lxc.mount.entry over dev itself, at or below dev/.nvidiaprep, from
//     the host's /dev/.nvidiaprep (another container's copies), or over a
//     device path nvidiaprep gives (which hides nvidiaprep's node);
//   - an lxc.hook.* line that names .nvidiaprep or a /dev/nvidia path.
//
// entries are the config as LXC will read it: pre-start leaves the binds
// of the host's own nodes (HostNodeBinds) out before it judges, so those
// are not named here, and any other mount at a path it gives is.
func Premises(entries []lxcconf.Entry, targets []string, pveConf string) []Finding {
	var out []Finding
	fix := fmt.Sprintf("delete it from %s, then start the container again", pveConf)
	add := func(e lxcconf.Entry, what string) {
		out = append(out, Finding{Line: strings.TrimSpace(e.Raw), What: what, Fix: fix})
	}
	for _, e := range entries {
		switch {
		case e.Key == "lxc.autodev":
			if strings.TrimSpace(e.Value) != "1" {
				add(e, "keeps the container's own /dev across starts instead of the fresh one LXC makes, where nvidiaprep mounts the container's device nodes and driver trees (a privileged root could plant a link there that LXC mounts through)")
			}
		case e.Key == "lxc.mount.entry":
			src, target, ok := mountTarget(e.Value)
			if !ok {
				continue
			}
			target = path.Clean(target)
			src = path.Clean(src)
			switch {
			case target == "dev":
				add(e, "mounts over the container's whole /dev, which nvidiaprep relies on LXC to make afresh")
			case target == ownDir || strings.HasPrefix(target, ownDir+"/"):
				add(e, "mounts at "+ownDir+", which is nvidiaprep's")
			case src == "/"+ownDir || strings.HasPrefix(src, "/"+ownDir+"/"):
				add(e, "mounts from the host's /"+ownDir+", where nvidiaprep keeps each container's own copies of its device nodes and the driver trees")
			case slices.Contains(targets, target):
				add(e, fmt.Sprintf("mounts %s over /%s, which nvidiaprep gives the container, hiding its node", src, target))
			}
		case strings.HasPrefix(e.Key, "lxc.hook."):
			if strings.Contains(e.Value, ".nvidiaprep") || strings.Contains(e.Value, "dev/nvidia") {
				add(e, "runs a hook that touches the device nodes or the directory nvidiaprep gives the container")
			}
		}
	}
	return out
}

// HostNodeBinds returns the numbers of the entries (Entry.Line) that bind
// the host's own node at the path of the same name where nvidiaprep mounts
// the container's copy (targets, "dev/nvidia0"): the tutorials'
// "lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,..." lines. LXC
// mounts only the first entry for a path, so pre-start leaves these out of
// the generated config (lxcconf.Disable) and judges the Premises on what
// remains; Superseded names them for removal. A mount of anything else at
// such a path (another node, a file, a tmpfs) is not one of them: it stays
// and breaks a premise. devRoot is the host's /dev ("/dev", or the tree in
// use in tests, where "/dev/<name>" maps onto it as well).
func HostNodeBinds(entries []lxcconf.Entry, targets []string, devRoot string) []int {
	var lines []int
	for _, e := range entries {
		if e.Key != "lxc.mount.entry" {
			continue
		}
		src, target, ok := mountTarget(e.Value)
		if !ok {
			continue
		}
		target, src = path.Clean(target), path.Clean(src)
		name, ok := strings.CutPrefix(target, "dev/")
		if !ok || !slices.Contains(targets, target) {
			continue
		}
		if src == "/dev/"+name || src == path.Join(devRoot, name) {
			lines = append(lines, e.Line)
		}
	}
	return lines
}

// Except returns the entries whose line is not among lines.
func Except(entries []lxcconf.Entry, lines []int) []lxcconf.Entry {
	var out []lxcconf.Entry
	for _, e := range entries {
		if !slices.Contains(lines, e.Line) {
			out = append(out, e)
		}
	}
	return out
}
