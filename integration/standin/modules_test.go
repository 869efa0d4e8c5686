package standin

// Tests of the stand-in installer's kernel module steps (README.md, rows 1,
// 3-5, 8, 10-12, 15-19 and U4) against the stand-in module programs, whose
// state is a stand-in host tree bound into the chroot at /standin.

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const (
	ver535 = "535.216.01" // before 545.23.06 and 550.40.07
	ver495 = "495.46"     // before 510.39.01
)

// moreRuns builds the older branches' .run files once.
var moreRuns struct {
	once sync.Once
	dir  string
	err  error
}

func olderRun(t *testing.T, ver string) string {
	t.Helper()
	moreRuns.once.Do(func() {
		moreRuns.dir, moreRuns.err = os.MkdirTemp("", "nvidiaprep-standin-older-")
		for _, v := range []string{ver535, ver495} {
			if moreRuns.err == nil {
				moreRuns.err = BuildRun(filepath.Join(moreRuns.dir, RunFileName(v)), RunOptions{Version: v})
			}
		}
	})
	if moreRuns.err != nil {
		t.Fatal(moreRuns.err)
	}
	t.Cleanup(func() {}) // the directory goes with the process's temp files
	return filepath.Join(moreRuns.dir, RunFileName(ver))
}

// moduleChroot is a chroot with the stand-in module programs on its PATH
// and a stand-in host tree at /standin (Host) in which driver verB is
// loaded (nvidia, nvidia_uvm, nvidia_modeset) with one GPU; the trees of
// the given versions are at /mnt/<version>.
type moduleChroot struct {
	*chroot
	host *Host
}

func newModuleChroot(t *testing.T, versions ...string) *moduleChroot {
	t.Helper()
	c := newChroot(t)
	h, err := NewHost(filepath.Join(t.TempDir(), "standin"))
	if err != nil {
		t.Fatal(err)
	}
	h.Nodes = &FakeNodes{} // regular files: the chroot's processes may hold them
	d := Driver{Version: verB, UVMMajor: 509, Modeset: true, GPUs: []GPU{{PCIBusID: "0000:01:00.0", UUID: "GPU-1", Minor: 0}}}
	if err := h.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := h.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	if err := WriteModuleTools(c.upper("/root/kmod")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.upper("/etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.upper("/etc/nvidiaprep-standin"), []byte("NVIDIAPREP_STANDIN_ROOT=/standin\nNVIDIAPREP_STANDIN_PROC=/hostproc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.binds = append(c.binds, h.Root+" /standin rw", "/proc /hostproc ro")
	for _, v := range versions {
		run := ""
		switch v {
		case verA, verB:
			run = testRun(t, v)
		default:
			run = olderRun(t, v)
		}
		tree := filepath.Join(t.TempDir(), v)
		extract(t, run, tree)
		c.binds = append(c.binds, tree+" /mnt/"+v+" ro")
	}
	return &moduleChroot{chroot: c, host: h}
}

func (m *moduleChroot) loaded(t *testing.T) string {
	t.Helper()
	var out []string
	for _, mod := range m.host.LoadedModules() {
		v, _ := os.ReadFile(filepath.Join(m.host.Sys, "module", mod, "version"))
		out = append(out, mod+"="+strings.TrimSpace(string(v)))
	}
	return strings.Join(out, " ")
}

func (m *moduleChroot) calls(t *testing.T) string {
	t.Helper()
	p := filepath.Join(m.host.Root, ModuleCalls)
	b, _ := os.ReadFile(p)
	os.Remove(p)
	return string(b)
}

// hostFlags are the flags of a host install with kernel modules
// (nvidiaprep's host driver unit, without --skip-module-load).
const hostFlags = "--silent --dkms --no-nouveau-check --no-check-for-alternate-installs"

// kernel.c check_for_unloaded_kernel_module: every loaded NVIDIA module is
// unloaded before an install, whatever the flags; with --skip-module-load
// the node is then left with no driver loaded at all.
func TestStandinUnloadsLoadedModulesFirst(t *testing.T) {
	m := newModuleChroot(t, verA)
	r := m.sh(t, `/mnt/`+verA+`/nvidia-installer `+hostFlags+` --skip-module-load --allow-installation-with-running-driver; echo "rc=$?"`)
	mustContain(t, "install --skip-module-load", r, "rc=0\n")
	calls := m.calls(t)
	for _, want := range []string{"lsmod \n", "rmmod nvidia-uvm\n", "rmmod nvidia-modeset\n", "rmmod nvidia\n"} {
		if !strings.Contains(calls, want) {
			t.Errorf("module calls lack %q:\n%s", want, calls)
		}
	}
	if l := m.loaded(t); l != "" {
		t.Errorf("after an install with --skip-module-load, loaded: %q (the real installer leaves none)", l)
	}
	if _, err := os.Stat(filepath.Join(m.host.Sys, "module/nvidia/version")); err == nil {
		t.Error("sys/module/nvidia/version is still there")
	}
	// Without --skip-module-load the installer loads nvidia-drm (and with
	// it nvidia and nvidia-modeset) at the end: the new driver.
	r = m.sh(t, `/mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; cat /standin/proc/modules`)
	mustContain(t, "install", r, "rc=0\n", "nvidia_drm 65536 0 - Live")
	if l := m.loaded(t); l != "nvidia="+verA+" nvidia_drm="+verA+" nvidia_modeset="+verA {
		t.Errorf("after the install, loaded: %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(m.host.Proc, "driver/nvidia/version")); !strings.Contains(string(b), verA) {
		t.Errorf("proc/driver/nvidia/version: %q", b)
	}
}

// kernel.c check_for_unloaded_kernel_module: a held module. 535: the install
// fails; 545.23.06+: it fails unless --allow-installation-with-running-driver,
// and in both cases the modules nothing held are unloaded already.
func TestStandinHeldModule(t *testing.T) {
	m := newModuleChroot(t, verA, ver535)
	// The holder's descriptor is there before the command runs (10 s at most).
	hold := `perl -e 'sysopen(F, "/standin/dev/nvidia0", 010000000) or die "O_PATH: $!"; sleep 60' & h=$!; i=0
until find /hostproc/$h/fd -maxdepth 1 -lname /standin/dev/nvidia0 2>/dev/null | grep -q .; do
    i=$((i + 1)); [ $i -le 200 ] || { echo "the holder does not hold /standin/dev/nvidia0 after 10 s"; break; }; sleep 0.05
done
`
	r := m.sh(t, hold+`/mnt/`+ver535+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; kill $h`)
	mustContain(t, "535 with a held module", r, "ERROR: An NVIDIA kernel module 'nvidia' appears to already be loaded in your kernel.", "rc=1\n")
	if l := m.loaded(t); l != "nvidia="+verB {
		t.Errorf("535: loaded after the failed install: %q (nvidia_uvm and nvidia_modeset are gone, nvidia stays)", l)
	}
	if _, err := os.Stat(m.upper("/var/lib/nvidia/log")); err == nil {
		t.Error("535: the failed install recorded a driver")
	}
	m.calls(t)

	r = m.sh(t, hold+`/mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; kill $h`)
	mustContain(t, "580 with a held module", r, "WARNING: An NVIDIA kernel module 'nvidia' appears to be already loaded", "rc=1\n")
	mustContain(t, "580 log", m.sh(t, `cat /var/log/nvidia-installer.log`), "(Answer: Abort installation)")
	r = m.sh(t, hold+`/mnt/`+verA+`/nvidia-installer `+hostFlags+` --allow-installation-with-running-driver; echo "rc=$?"; kill $h`)
	mustContain(t, "580 --allow-installation-with-running-driver", r, "rc=0\n")
	if l := m.loaded(t); l != "nvidia="+verB {
		t.Errorf("580 allowed: loaded %q; want the old nvidia alone (no test load, no load at the end)", l)
	}
	if c := m.calls(t); strings.Contains(c, "insmod") || strings.Contains(c, "modprobe nvidia-drm") {
		t.Errorf("a load was tried with the running driver:\n%s", c)
	}
	// The stand-in rmmod names why.
	r = m.sh(t, hold+`rmmod nvidia; echo "rc=$?"; kill $h; rmmod nvidia; echo "rc=$?"`)
	mustContain(t, "rmmod", r, "rmmod: ERROR: Module nvidia is in use\nrc=1\n", "rc=0\n")
}

// kernel.c test_kernel_modules (before 550.40.07, or without
// --skip-module-load): a module that does not build or load fails the
// install before the old driver is removed.
func TestStandinTestLoad(t *testing.T) {
	m := newModuleChroot(t, verB, ver535)
	mustCode(t, "earlier install", m.sh(t, `/mnt/`+verB+`/nvidia-installer `+hostFlags), 0)
	m.calls(t)
	for _, c := range []struct{ ctl, want string }{
		{"NVIDIAPREP_STANDIN_FAIL_BUILD=1", `ERROR: An error occurred while performing the step: "Building kernel modules".`},
		{"NVIDIAPREP_STANDIN_FAIL_LOAD=1", "ERROR: Unable to load the kernel module 'nvidia.ko'."},
	} {
		r := m.sh(t, c.ctl+` /mnt/`+ver535+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; head -n1 /var/lib/nvidia/log`)
		mustContain(t, c.ctl, r, c.want, "rc=1\n", "("+verB+")")
		if c.ctl == "NVIDIAPREP_STANDIN_FAIL_LOAD=1" {
			mustContain(t, c.ctl, m.sh(t, `cat /var/log/nvidia-installer.log`), "Kernel module load error: Key was rejected by service")
		}
		// The old modules were unloaded by the installer, which never put
		// them back.
		if l := m.loaded(t); l != "" {
			t.Errorf("%s: loaded %q", c.ctl, l)
		}
		mustCode(t, "load the old one", m.sh(t, `modprobe nvidia-drm && modprobe nvidia-uvm`), 0)
	}
}

// misc.c check_for_nouveau; kernel.c test_kernel_modules next to nouveau.
func TestStandinNouveau(t *testing.T) {
	m := newModuleChroot(t, verA, ver535)
	if err := m.host.UnloadDriver(); err != nil {
		t.Fatal(err)
	}
	if err := m.host.BindNouveau("0000:01:00.0", true); err != nil {
		t.Fatal(err)
	}
	r := m.sh(t, `/mnt/`+ver535+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; cat /var/log/nvidia-installer.log`)
	mustContain(t, "535 --no-nouveau-check next to nouveau", r, "ERROR: Unable to load the kernel module 'nvidia.ko'.", "Kernel module load error: No such device", "rc=1\n")
	r = m.sh(t, `/mnt/`+ver535+`/nvidia-installer `+strings.Replace(hostFlags, "--no-nouveau-check", "", 1)+`; echo "rc=$?"; cat /etc/modprobe.d/nvidia-installer-disable-nouveau.conf`)
	mustContain(t, "535 with the nouveau check", r, "ERROR: The Nouveau kernel driver is currently in use by your system.", "rc=1\n", "blacklist nouveau")
	r = m.sh(t, `/mnt/`+verA+`/nvidia-installer `+hostFlags+` --skip-module-load; echo "rc=$?"`)
	mustContain(t, "580 --skip-module-load", r, "rc=0\n")
	if l := m.loaded(t); l != "nouveau=" {
		t.Errorf("loaded: %q", l)
	}
	r = m.sh(t, `modprobe nvidia; echo "rc=$?"; modprobe -r nouveau; echo "rc=$?"; cat /standin/proc/modules`)
	mustContain(t, "modprobe", r, "modprobe: ERROR: could not insert 'nvidia': No such device\nrc=1\n", "modprobe: FATAL: Module nouveau is in use.\nrc=1\n", "nouveau 65536 1 - Live")
}

// misc.c dkms_register_module: ldtarball, install -k <running kernel>,
// status; nothing without dkms or tar; a failure is a warning, exit 0.
func TestStandinDKMS(t *testing.T) {
	m := newModuleChroot(t, verA)
	dkms := "#!/bin/sh\necho \"dkms $*\" >> /root/dkmscalls\ncase \"$1\" in\n--help) echo '--no-depmod' ;;\nldtarball) [ -z \"$DKMS_FAIL\" ] || { echo 'Error! bad tarball'; exit 1; }; tar -tzf \"$2\" > /root/dkmstar ;;\nstatus) echo \"nvidia/$5, $7, x86_64: installed\" ;;\nesac\n"
	if err := os.WriteFile(m.upper("/root/kmod/dkms"), []byte(dkms), 0o755); err != nil {
		t.Fatal(err)
	}
	r := m.sh(t, `/mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; cat /root/dkmscalls; grep -c module/nvidia /root/dkmstar; uname -r`)
	mustContain(t, "dkms", r, "rc=0\n", "dkms ldtarball /", "dkms install --no-depmod -m nvidia -v "+verA+" -k ", "dkms status -m nvidia -v "+verA+" -k ")
	if !strings.Contains(r.Output, "dkms_main_tree/") {
		mustContain(t, "tarball", m.sh(t, `cat /root/dkmstar`), "dkms_main_tree/", "dkms_source_tree/dkms.conf")
	}
	mustCode(t, "uninstall", m.sh(t, `nvidia-uninstall -s`), 0)
	r = m.sh(t, `rm /root/dkmscalls; DKMS_FAIL=1 /mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; cat /root/dkmscalls`)
	mustContain(t, "failing ldtarball", r, "ERROR: Failed to load DKMS tarball: Error! bad tarball", "WARNING: Failed to register the NVIDIA kernel modules with DKMS.", "rc=0\n")
	if strings.Contains(r.Output, "dkms install") {
		t.Errorf("dkms install after a failed ldtarball:\n%s", r.Output)
	}
	mustCode(t, "uninstall", m.sh(t, `nvidia-uninstall -s`), 0)
	r = m.sh(t, `rm -f /root/dkmscalls; mv /usr/bin/tar /usr/bin/tar.off; /mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; cat /root/dkmscalls 2>&1; mv /usr/bin/tar.off /usr/bin/tar`)
	mustContain(t, "without tar", r, "rc=0\n", "/root/dkmscalls: No such file or directory")
	if strings.Contains(r.Output, "WARNING") {
		t.Errorf("without tar DKMS is skipped silently:\n%s", r.Output)
	}
}

// misc.c run_distro_hook; backup.c do_uninstall's hooks.
func TestStandinDistroHooks(t *testing.T) {
	m := newModuleChroot(t, verA)
	hooks := `mkdir -p /usr/lib/nvidia; for h in pre-unload pre-install post-install pre-uninstall post-uninstall failed-install; do printf '#!/bin/sh\necho %s >> /root/hooks\n' $h > /usr/lib/nvidia/$h; chmod 755 /usr/lib/nvidia/$h; done; `
	r := m.sh(t, hooks+`/mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; nvidia-uninstall -s; cat /root/hooks`)
	mustContain(t, "hooks", r, "rc=0\n", "pre-unload\npre-install\npost-install\npre-uninstall\npost-uninstall\n")
	m.calls(t)
	r = m.sh(t, `rm /root/hooks; printf '#!/bin/sh\nexit 1\n' > /usr/lib/nvidia/pre-unload; /mnt/`+verA+`/nvidia-installer `+hostFlags+`; echo "rc=$?"; cat /root/hooks 2>&1`)
	mustContain(t, "failing pre-unload", r, "ERROR: Pre-unload hook script failed", "rc=1\n", "No such file")
	if c := m.calls(t); c != "" {
		t.Errorf("after a failing pre-unload hook, module calls:\n%s", c)
	}
}

// nvidia-installer.h SystemUtils before 510.39.01: ldd, cut, tr, sed.
func TestStandinOldBranchNeedsLddCutTrSed(t *testing.T) {
	m := newModuleChroot(t, ver495, verA)
	for _, u := range []string{"cut", "sed"} {
		r := m.sh(t, `p=$(command -v `+u+`); mv $p /root/off; /mnt/`+ver495+`/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; /mnt/`+verA+`/nvidia-installer `+flagsLikeNvidiaprep+` 2>/dev/null; echo "rc=$?"; mv /root/off $p`)
		mustContain(t, "495 without "+u, r, "ERROR: Unable to find the system utility `"+u+"`", "rc=1\nrc=0\n")
		mustCode(t, "uninstall", m.sh(t, `nvidia-uninstall -s --skip-module-unload`), 0)
	}
}

// option_table.h: --skip-module-unload since 346.16.
func TestStandinOldUninstallerRejectsSkipModuleUnload(t *testing.T) {
	m := newModuleChroot(t, verA)
	mustCode(t, "install", m.sh(t, `/mnt/`+verA+`/nvidia-installer `+flagsLikeNvidiaprep), 0)
	r := m.sh(t, `echo NVIDIAPREP_STANDIN_OLD_UNINSTALLER=1 >> /etc/nvidiaprep-standin; nvidia-uninstall -s --skip-module-unload; echo "rc=$?"; test -e /var/lib/nvidia/log && echo kept`)
	mustContain(t, "old uninstaller", r, `unrecognized option: "--skip-module-unload"`, "rc=1\n", "kept\n")
	mustContain(t, "old uninstaller without it", m.sh(t, `nvidia-uninstall -s; echo "rc=$?"; test -e /var/lib/nvidia || echo removed`), "rc=0\n", "removed\n")
}

// manifest.c file types, files.c set_destinations, compat_libdirs and
// add_libgl_abi_symlink: the OpenGL vendor libraries (native and 32-bit),
// the EGL and Vulkan ICD files, and /usr/lib/libGL.so.1 with
// --no-install-libglvnd too (when neither library directory is /usr/lib).
func TestStandinManifestFileTypes(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	lib := "/usr/lib/x86_64-linux-gnu"
	list := `for f in ` + lib + `/libGLX_nvidia.so.` + verA + ` ` + lib + `/libEGL_nvidia.so.` + verA + ` ` + lib + `/libnvidia-glcore.so.` + verA + ` /usr/share/glvnd/egl_vendor.d/10_nvidia.json /etc/vulkan/icd.d/nvidia_icd.json /usr/lib/libGLX_nvidia.so.` + verA + ` /usr/lib/i386-linux-gnu/libGLX_nvidia.so.` + verA + `; do test -f $f && echo "file $f"; done
for l in ` + lib + `/libGLX_nvidia.so.0 /usr/lib/libGLX_nvidia.so.0 /usr/lib/i386-linux-gnu/libGLX_nvidia.so.0 /usr/lib/libGL.so.1; do test -L $l && echo "link $l -> $(readlink $l)"; done`
	r := c.sh(t, `/mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; `+list)
	mustContain(t, "64-bit only", r, "rc=0\n", "file "+lib+"/libGLX_nvidia.so."+verA, "file "+lib+"/libEGL_nvidia.so."+verA, "file "+lib+"/libnvidia-glcore.so."+verA,
		"file /usr/share/glvnd/egl_vendor.d/10_nvidia.json", "file /etc/vulkan/icd.d/nvidia_icd.json", "file /usr/lib/libGLX_nvidia.so."+verA,
		"link "+lib+"/libGLX_nvidia.so.0 -> libGLX_nvidia.so."+verA, "link /usr/lib/libGLX_nvidia.so.0 -> libGLX_nvidia.so."+verA)
	if strings.Contains(r.Output, "/usr/lib/libGL.so.1") {
		t.Errorf("the libGL link with the 32-bit libraries in /usr/lib:\n%s", r.Output)
	}
	mustCode(t, "uninstall", c.sh(t, `nvidia-uninstall -s --skip-module-unload`), 0)

	// With the distribution's libglvnd (ldconfig removes a link that
	// leads nowhere, the real one's too).
	mustCode(t, "distribution GL", c.sh(t, distroGL), 0)
	r = c.sh(t, `mkdir -p /usr/lib/i386-linux-gnu; /mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; `+list)
	mustContain(t, "with i386", r, "rc=0\n", "file /usr/lib/i386-linux-gnu/libGLX_nvidia.so."+verA, "link /usr/lib/i386-linux-gnu/libGLX_nvidia.so.0 -> libGLX_nvidia.so."+verA,
		"link /usr/lib/libGL.so.1 -> "+lib+"/libGL.so.1")
	mustCode(t, "uninstall", c.sh(t, `nvidia-uninstall -s --skip-module-unload`), 0)
	if r := c.sh(t, `ls /usr/lib/libGL.so.1 /usr/lib/i386-linux-gnu/libGLX_nvidia.so.0 2>&1`); strings.Count(r.Output, "No such file") != 2 {
		t.Errorf("left after the uninstall:\n%s", r.Output)
	}

	r = c.sh(t, `/mnt/a/nvidia-installer `+flagsLikeNvidiaprep+` --no-opengl-files; echo "rc=$?"; `+list)
	mustContain(t, "--no-opengl-files", r, "rc=0\n", "file /etc/vulkan/icd.d/nvidia_icd.json")
	if strings.Contains(r.Output, "GLX") || strings.Contains(r.Output, "10_nvidia.json") {
		t.Errorf("OpenGL files with --no-opengl-files:\n%s", r.Output)
	}
}

// command-list.c find_conflicting_files: with --no-backup every
// lib<name>.so* of a packaged library under /usr/lib* is deleted, the
// distribution's copies (as Debian's libcuda1 and libnvidia-ml1 install
// them) included; without it they are backed up and come back on
// uninstall.
func TestStandinNoBackupDeletesDistributionLibraries(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	lib := "/usr/lib/x86_64-linux-gnu"
	distro := `cd ` + lib + ` && for f in libcuda.so.535.216.01 libnvidia-ml.so.535.216.01 libnvidia-cfg.so.535.216.01; do echo debian > $f; done && ln -sf libcuda.so.535.216.01 libcuda.so.1 && ln -sf libnvidia-ml.so.535.216.01 libnvidia-ml.so.1`
	show := `ls ` + lib + `/libcuda.so.535.216.01 ` + lib + `/libnvidia-ml.so.535.216.01 ` + lib + `/libnvidia-cfg.so.535.216.01 2>&1`
	r := c.sh(t, distro+` && /mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; `+show)
	mustContain(t, "--no-backup", r, "rc=0\n", "libcuda.so.535.216.01': No such file", "libnvidia-ml.so.535.216.01': No such file", lib+"/libnvidia-cfg.so.535.216.01\n")
	mustCode(t, "uninstall", c.sh(t, `nvidia-uninstall -s --skip-module-unload`), 0)

	flags := strings.Replace(flagsLikeNvidiaprep, " --no-backup", "", 1)
	r = c.sh(t, distro+` && /mnt/a/nvidia-installer `+flags+`; echo "rc=$?"; `+show+`; nvidia-uninstall -s --skip-module-unload; `+show)
	mustContain(t, "with backups", r, "rc=0\n", "libcuda.so.535.216.01': No such file")
	if strings.Count(r.Output, lib+"/libnvidia-ml.so.535.216.01\n") != 1 || strings.Count(r.Output, lib+"/libcuda.so.535.216.01\n") != 1 {
		t.Errorf("the backed-up copies did not come back:\n%s", r.Output)
	}
}

// A broken link named like a conflicting library is a conflicting file
// too (find_conflicting_files walks the library directories through
// links, broken ones included): with --no-backup it is deleted. The
// worker's conflict check lets such links no package owns through for
// that reason: deleting them loses nothing.
func TestStandinNoBackupDeletesABrokenLink(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	link := "/usr/lib/x86_64-linux-gnu/libcuda.so.7"
	r := c.sh(t, `ln -s /nonexistent/libcuda.so.7 `+link+` && /mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; [ -L `+link+` ] && echo "still there" || echo "deleted"`)
	mustContain(t, "a broken link", r, "rc=0\n", "deleted\n")
}
