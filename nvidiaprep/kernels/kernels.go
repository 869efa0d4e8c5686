// Package kernels knows the node's installed kernels and, for each, whether
// the NVIDIA driver's DKMS module is built for it: its headers, what
// `dkms status` says, a failed build's log, and a known minimum driver
// (nvsupport). It reads and asks DKMS; it builds nothing itself.
package kernels

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/nvsupport"
	"nvidiaprep/nvidiaprep/nvversion"

	"golang.org/x/sys/unix"
)

// Module is the DKMS module name NVIDIA's installer registers (--dkms:
// sources in /usr/src/nvidia-<version>).
const Module = "nvidia"

// Kernel is one installed kernel and the driver's module for it.
type Kernel struct {
	Release string `json:"release"`
	Running bool   `json:"running,omitempty"`
	// Bootable: its image is in /boot, so the node can boot it (a running
	// kernel whose package was removed while it runs is not).
	Bootable bool `json:"bootable"`
	// Headers: <root>/lib/modules/<release>/build/include exists, DKMS's own
	// test before it builds (dkms_autoinstaller _check_kernel_dir).
	Headers bool `json:"headers"`
	// DKMS is `dkms status`'s state of nvidia/<version> for this kernel:
	// "installed", "built", or "" when it has none.
	DKMS string `json:"dkms,omitempty"`
	// BuildLog is DKMS's make.log of a failed build for this kernel.
	BuildLog string `json:"build_log,omitempty"`
	Ready    bool   `json:"ready"`
	Why      string `json:"why,omitempty"` // why not ready
	Fix      string `json:"fix,omitempty"` // what makes it ready
}

// Installed lists the kernels installed below root (a /boot/vmlinuz-<release>
// each, as Debian's and Proxmox's kernel packages install them) and the
// running one where its modules are below root, newest first. A node always
// has <root>/lib/modules/<running>; without it the running kernel is
// another root's (that of the machine a container or a chroot runs on),
// which nothing installed below root builds modules for.
func Installed(root, running string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
			out = append(out, strings.TrimPrefix(filepath.Base(m), "vmlinuz-"))
		}
	}
	if running != "" && !slices.Contains(out, running) && hasModulesDir(root, running) {
		out = append(out, running)
	}
	slices.SortFunc(out, func(a, b string) int { return -compareRelease(a, b) })
	return out, nil
}

// hasModulesDir tells whether <root>/lib/modules/<release> is a directory.
func hasModulesDir(root, release string) bool {
	st, err := os.Stat(filepath.Join(root, "lib", "modules", release))
	return err == nil && st.IsDir()
}

// compareRelease orders kernel releases as version numbers
// ("6.8.12-10-pve" after "6.8.12-9-pve").
func compareRelease(a, b string) int {
	split := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '.' || r == '-' || r == '+' || r == '~' })
	}
	return nvversion.Compare(strings.Join(split(a), "."), strings.Join(split(b), "."))
}

// HeadersPackages are release's headers packages in order of preference:
// Proxmox VE 8 and later, older Proxmox VE, Debian.
func HeadersPackages(release string) []string {
	return []string{"proxmox-headers-" + release, "pve-headers-" + release, "linux-headers-" + release}
}

// HeadersFor names the headers package an admin installs for release:
// Proxmox's for a -pve kernel, Debian's otherwise.
func HeadersFor(release string) string {
	if strings.HasSuffix(release, "-pve") {
		return "proxmox-headers-" + release
	}
	return "linux-headers-" + release
}

// Metapackage is the package that keeps the headers of every new kernel
// coming with the kernel itself: proxmox-default-headers on Proxmox VE,
// Debian's linux-headers-<flavour> (amd64, cloud-amd64, rt-amd64) for a
// Debian kernel; "" when the release says neither.
func Metapackage(release string) string {
	if strings.HasSuffix(release, "-pve") {
		return "proxmox-default-headers"
	}
	// Debian: <version>-<abi>-<flavour>, such as 6.1.0-57-amd64.
	p := strings.SplitN(release, "-", 3)
	if len(p) == 3 && strings.HasSuffix(p[2], "amd64") {
		return "linux-headers-" + p[2]
	}
	return ""
}

// HasHeaders tells whether release's headers are there as DKMS needs them.
func HasHeaders(root, release string) bool {
	_, err := os.Stat(filepath.Join(root, "lib", "modules", release, "build", "include"))
	return err == nil
}

// Status asks DKMS for module version's state on every kernel
// (`dkms status -m nvidia -v <version>`), by kernel release.
func Status(ctx context.Context, run hostcmd.Runner, version string) (map[string]string, error) {
	res, err := run.Run(ctx, hostcmd.Command{Name: "dkms", Args: []string{"status", "-m", Module, "-v", version}})
	if err != nil {
		return nil, fmt.Errorf("asking DKMS for nvidia/%s: %w", version, err)
	}
	return parseStatus(res.Stdout, Module, version), nil
}

// parseStatus reads `dkms status` output: dkms 3's lines
// ("nvidia/535.261.03, 6.1.0-57-amd64, x86_64: installed") and dkms 2's
// ("nvidia, 535.261.03, 6.1.0-57-amd64, x86_64: installed"); a state with
// a note ("installed (WARNING! ...)") counts as its first word.
func parseStatus(out, module, version string) map[string]string {
	states := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		head, state, ok := strings.Cut(strings.TrimSpace(l), ": ")
		if !ok {
			continue
		}
		f := strings.Split(head, ",")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		var kernel string
		switch {
		case len(f) >= 2 && f[0] == module+"/"+version:
			kernel = f[1]
		case len(f) >= 3 && f[0] == module && f[1] == version:
			kernel = f[2]
		default:
			continue
		}
		if w := strings.Fields(state); len(w) > 0 {
			states[kernel] = strings.TrimSuffix(w[0], ",")
		}
	}
	return states
}

// buildLog returns DKMS's make.log of module version when it is from a
// build for release: dkms 3.1 and later keep one per kernel
// (/var/lib/dkms/<m>/<v>/<kernel>/<arch>/log/make.log), dkms 3.0 one per
// version (/var/lib/dkms/<m>/<v>/build/make.log), whose first line names
// the kernel ("DKMS make.log for nvidia-535.261.03 for kernel 6.1.0-57-amd64 (x86_64)").
func buildLog(root, version, release string) string {
	base := filepath.Join("/var/lib/dkms", Module, version)
	if m, _ := filepath.Glob(filepath.Join(root, base, release, "*", "log", "make.log")); len(m) > 0 {
		return strings.TrimPrefix(m[0], filepath.Clean(root))
	}
	log := filepath.Join(base, "build", "make.log")
	f, err := fsutil.OpenRegular(filepath.Join(root, log))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if sc.Scan() && strings.Contains(sc.Text(), " for kernel "+release+" ") {
		return log
	}
	return ""
}

// Checker reads each kernel's state.
type Checker struct {
	Root    string // the host's root ([paths] root)
	Running string // uname -r
	Runner  hostcmd.Runner
}

// Check returns every installed kernel with the state of driver version's
// module for it, newest first.
func (c Checker) Check(ctx context.Context, version string) ([]Kernel, error) {
	releases, err := Installed(c.Root, c.Running)
	if err != nil {
		return nil, err
	}
	states, err := Status(ctx, c.Runner, version)
	if err != nil {
		return nil, err
	}
	out := make([]Kernel, 0, len(releases))
	for _, r := range releases {
		out = append(out, c.judge(version, r, states[r]))
	}
	return out, nil
}

// Judge returns one kernel's state from what DKMS said of it.
func (c Checker) Judge(version, release, dkmsState string) Kernel {
	return c.judge(version, release, dkmsState)
}

func (c Checker) judge(version, release, state string) Kernel {
	k := Kernel{Release: release, Running: release == c.Running, Headers: HasHeaders(c.Root, release), DKMS: state}
	if st, err := os.Stat(filepath.Join(c.Root, "boot", "vmlinuz-"+release)); err == nil && st.Mode().IsRegular() {
		k.Bootable = true
	}
	if state != "installed" {
		k.BuildLog = buildLog(c.Root, version, release)
	}
	pkg := HeadersFor(release)
	tooOld := nvsupport.CheckKernel(version, release)
	switch {
	case state == "installed" && tooOld == "":
		k.Ready = true
	case tooOld != "":
		k.Why, k.Fix = tooOld, "set [driver] version to a driver that supports this kernel (`systemctl restart nvidiaprep-host-driver.service` installs it)"
	case !k.Headers:
		k.Why = "its headers are not installed, so DKMS cannot build driver " + version + "'s module for it"
		k.Fix = fmt.Sprintf("`apt install %s` (DKMS then builds the module), then `nvidiaprep kernel-installed %s`", pkg, release)
	case k.BuildLog != "":
		k.Why = fmt.Sprintf("DKMS failed to build driver %s's module for it; its log is %s", version, k.BuildLog)
		k.Fix = fmt.Sprintf("read %s: a kernel newer than the driver needs a newer [driver] version; after a fix, `dkms install %s/%s -k %s`", k.BuildLog, Module, version, release)
	case state == "built":
		k.Why = "DKMS built driver " + version + "'s module for it but did not install it"
		k.Fix = fmt.Sprintf("`dkms install %s/%s -k %s`", Module, version, release)
	default:
		k.Why = "DKMS has not built driver " + version + "'s module for it"
		k.Fix = fmt.Sprintf("`dkms autoinstall -k %s` (the log names what fails)", release)
	}
	return k
}

// Working returns the kernel to keep booting while others are not ready:
// the running one when its module is ready, else the newest ready one;
// "" when none is.
func Working(ks []Kernel) string {
	for _, k := range ks {
		if k.Running && k.Ready {
			return k.Release
		}
	}
	for _, k := range ks {
		if k.Ready {
			return k.Release
		}
	}
	return ""
}

// PinCommand is the command that keeps booting release on Proxmox VE
// (proxmox-boot-tool's own interface: `kernel pin <kernel-version>`,
// then `refresh` where it manages the ESPs).
func PinCommand(release string) string {
	return "proxmox-boot-tool kernel pin " + release + " && proxmox-boot-tool refresh"
}

// Running is the running kernel's release (uname -r); "" when the kernel
// does not say.
func Running() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
