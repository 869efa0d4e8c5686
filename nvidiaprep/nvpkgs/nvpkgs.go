// Package nvpkgs knows the distribution packages that hold NVIDIA driver
// files (Debian's, Ubuntu's and NVIDIA's own apt repositories'), whose files
// fight a .run install: the host driver unit purges them on the node, the
// provisioning worker in a container.
package nvpkgs

import (
	"strings"
)

// packageName is a Debian package name (Debian Policy 5.6.1), with an
// optional ":arch". A container may print the list: anything else in it
// (a name with escapes, an option for apt) is no package and is skipped.
// (^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$, matched by hand: the hook links
// this package, and no regexp, whose package initialisation every start
// would pay).
func packageName(s string) bool {
	name, arch, hasArch := strings.Cut(s, ":")
	if len(name) < 2 || !OfCharset(name[:1], "") || !OfCharset(name[1:], "+.-") {
		return false
	}
	return !hasArch || (arch != "" && OfCharset(arch, "-"))
}

// OfCharset tells whether s has only lower-case ASCII letters, digits and
// bytes of extra.
func OfCharset(s, extra string) bool {
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// distroDriverPrefixes name the NVIDIA driver packages of Debian, Ubuntu and
// NVIDIA's own apt repositories, whose files fight a .run install.
var distroDriverPrefixes = []string{
	"nvidia-", "libnvidia-", "libcuda1", "libcudadebugger", "libnvcuvid", "libnvoptix",
	"libgl1-nvidia", "libegl-nvidia", "libgles-nvidia", "libglx-nvidia", "libxnvctrl",
	"xserver-xorg-video-nvidia", "firmware-nvidia-", "cuda-drivers",
	// Debian's GLX switching that only its NVIDIA driver pulls in (libcuda1
	// -> nvidia-alternative): alternatives and diversions of libGL & co.
	"glx-alternative-nvidia", "glx-diversions",
}

// notDriver are NVIDIA packages that are not the driver and stay: the
// container toolkit, nvidiaprep's own, and the CUDA toolkit's packages
// (nvidia-cuda-toolkit depends on nvidia-profiler, nvidia-cuda-dev and
// nvidia-opencl-dev; purging one would make apt remove the toolkit). So do
// development and documentation packages (-dev, -doc: headers and links,
// no driver files), such as libnvidia-ml-dev.
var notDriver = []string{"nvidia-container-", "libnvidia-container", "nvidia-docker", "nvidiaprep", "nvidia-cuda-toolkit", "nvidia-cuda-dev",
	"nvidia-cuda-gdb", "nvidia-cuda-samples", "nvidia-profiler", "nvidia-visual-profiler", "nvidia-nsight", "nvidia-openjdk"}

// QueryFormat is the `dpkg-query -W -f` format that lists packages as
// "<status> <package>" lines, as DriverPackages reads them.
const QueryFormat = "${db:Status-Abbrev} ${Package}\n"

// DriverPackages picks, from the lines of `dpkg-query -W -f QueryFormat`,
// the distribution's NVIDIA driver packages that are installed or left as
// config files.
func DriverPackages(dpkgQuery string) []string {
	var out []string
	for _, line := range strings.Split(dpkgQuery, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || (f[0][0] != 'i' && f[0] != "rc") || !packageName(f[1]) {
			continue
		}
		name := strings.SplitN(f[1], ":", 2)[0] // drop ":amd64"
		if isDriverPackage(name) {
			out = append(out, f[1])
		}
	}
	return out
}

// Prefixes are the name prefixes of the driver packages, by which the
// worker lists the names apt knows; DriverNames picks from what it lists.
func Prefixes() []string { return append([]string(nil), distroDriverPrefixes...) }

// ValidName tells whether name is a Debian package name (no ":arch").
func ValidName(name string) bool {
	return packageName(name) && !strings.Contains(name, ":")
}

// DriverNames picks the driver packages from package names (those apt's
// lists hold): what a container's apt must never install over a .run install.
func DriverNames(names []string) []string {
	var out []string
	for _, n := range names {
		if ValidName(n) && isDriverPackage(n) {
			out = append(out, n)
		}
	}
	return out
}

func isDriverPackage(name string) bool {
	if strings.HasSuffix(name, "-dev") || strings.HasSuffix(name, "-doc") {
		return false
	}
	for _, p := range notDriver {
		if strings.HasPrefix(name, p) {
			return false
		}
	}
	for _, p := range distroDriverPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
