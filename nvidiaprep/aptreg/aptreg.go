// Package aptreg tells a container's apt that the NVIDIA driver nvidiaprep
// installed from the .run is there, so that what depends on it
// (nvidia-cuda-toolkit, libnvidia-ml-dev, ...) installs against it and no
// distribution driver package comes back. It writes both things apt offers:
// a local package, nvidiaprep-nvidia-driver, that Provides the distribution's
// library packages, sonames and programs at exactly the installed version
// and Conflicts with them (Debian's Provides/Conflicts idiom); and a pin
// (Pin-Priority -1) on every distribution driver package (nvpkgs decides
// which), so that no Recommends brings one back. The package ships no file
// and has no dependency: it cannot fight the .run's files, and `apt-get
// check` stays clean.
package aptreg

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"nvidiaprep/nvidiaprep/nvpkgs"
)

// Package is the registration's package name.
const Package = "nvidiaprep-nvidia-driver"

// PinPath is the pin's file inside the container.
const PinPath = "/etc/apt/preferences.d/nvidiaprep"

// Entry is one installed file or link of the driver, as inside the
// container: a library (libcuda.so.580.159.04), its link (libcuda.so.1 ->
// libcuda.so.580.159.04) or a program (/usr/bin/nvidia-smi).
type Entry struct {
	Path   string
	Target string // a link's target; "" for a file
}

// splitLibrary splits a library's file name at its last ".so.":
// "libcuda.so.580.159.04" gives "libcuda" and "580.159.04". ok is false
// unless the name is lib[a-z0-9+.-]+. By hand, not by regexp: the hook links
// this package, and no regexp, whose package initialisation every start
// would pay.
func splitLibrary(base string) (name, suffix string, ok bool) {
	i := strings.LastIndex(base, ".so.")
	if i < 0 {
		return "", "", false
	}
	name, suffix = base[:i], base[i+len(".so."):]
	return name, suffix, len(name) > len("lib") && strings.HasPrefix(name, "lib") && nvpkgs.OfCharset(name, "+.-")
}

// soname splits a library link named by its soname, libX.so.N
// (^(lib[a-z0-9+.-]+?)\.so\.([0-9]+)$), into X and N.
func soname(base string) (name, n string, ok bool) {
	name, n, ok = splitLibrary(base)
	return name, n, ok && isDigits(n)
}

// versioned gives X of a library file named by the driver version,
// libX.so.<version> (^(lib[a-z0-9+.-]+?)\.so\.[0-9]+\.[0-9]+(\.[0-9]+)?$).
func versioned(base string) (name string, ok bool) {
	name, version, ok := splitLibrary(base)
	parts := strings.Split(version, ".")
	if !ok || len(parts) < 2 || len(parts) > 3 {
		return "", false
	}
	for _, p := range parts {
		if !isDigits(p) {
			return "", false
		}
	}
	return name, true
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// Names returns the package names the registration provides for what was
// installed: for each library its Debian package name (libX.so.N gives
// libXN, or libX-N when X ends in a digit, as Debian Policy 8.1 names
// shared library packages; a library without a soname link its bare
// name), the soname itself (libcuda.so.1, the virtual name Debian's
// libcuda1 provides), and each program's name (nvidia-smi).
func Names(entries []Entry) (packages, virtual []string) {
	pk, vi := map[string]bool{}, map[string]bool{}
	linked := map[string]bool{}
	for _, e := range entries {
		base := path.Base(e.Path)
		if e.Target != "" {
			if name, n, ok := soname(base); ok {
				if last := name[len(name)-1]; last >= '0' && last <= '9' {
					name += "-"
				}
				pk[name+n] = true
				vi[base] = true
				linked[path.Base(e.Target)] = true
			}
			continue
		}
		if strings.HasPrefix(e.Path, "/usr/bin/") && valid(base) {
			pk[base] = true
		}
	}
	for _, e := range entries {
		base := path.Base(e.Path)
		if e.Target == "" && !linked[base] {
			if name, ok := versioned(base); ok && valid(name) {
				pk[name] = true
			}
		}
	}
	return sorted(pk), sorted(vi)
}

func valid(name string) bool { return nvpkgs.ValidName(name) }

func sorted(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		if valid(k) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Control returns the registration package's control file for the
// installed version.
func Control(version string, packages, virtual []string) string {
	var prov []string
	for _, n := range append(append([]string(nil), packages...), virtual...) {
		prov = append(prov, fmt.Sprintf("%s (= %s)", n, version))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: nvidiaprep <root@localhost>\n", Package, version)
	b.WriteString("Section: non-free/libs\nPriority: optional\n")
	if len(prov) > 0 {
		fmt.Fprintf(&b, "Provides: %s\n", strings.Join(prov, ", "))
	}
	if len(packages) > 0 {
		fmt.Fprintf(&b, "Conflicts: %s\n", strings.Join(packages, ", "))
	}
	fmt.Fprintf(&b, "Description: NVIDIA driver %s, installed by nvidiaprep from the host's .run\n", version)
	b.WriteString(" nvidiaprep installed the NVIDIA user-space driver of the Proxmox host's\n")
	b.WriteString(" loaded kernel module into this container. This package ships no file:\n")
	b.WriteString(" it tells apt that the driver's libraries and programs are installed,\n")
	b.WriteString(" so that packages that need them (nvidia-cuda-toolkit, ...) install\n")
	b.WriteString(" and no distribution driver package replaces them. nvidiaprep updates\n")
	b.WriteString(" it with the driver and removes it when the container gets no GPU.\n")
	return b.String()
}

// Pin returns the preferences file that refuses the distribution's driver
// packages: known are the package names apt's lists and dpkg's status
// hold, of which nvpkgs picks the driver's; the registration's own names
// are added.
func Pin(version string, known []string, packages []string) string {
	names := map[string]bool{}
	for _, n := range nvpkgs.DriverNames(known) {
		names[n] = true
	}
	for _, n := range packages {
		names[n] = true
	}
	delete(names, Package)
	list := sorted(names)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by nvidiaprep: the NVIDIA driver %s is installed from the host's .run\n", version)
	fmt.Fprintf(&b, "# (package %s tells apt so); the distribution's driver packages would replace it.\n", Package)
	b.WriteString("# Rewritten at every install; removed when the container gets no GPU.\n")
	if len(list) == 0 {
		return b.String()
	}
	fmt.Fprintf(&b, "Explanation: nvidiaprep: the NVIDIA driver %s comes from the host\n", version)
	fmt.Fprintf(&b, "Package: %s\nPin: version *\nPin-Priority: -1\n", strings.Join(list, " "))
	return b.String()
}
