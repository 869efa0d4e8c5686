package standin

// Tests that the stand-in installer behaves as NVIDIA's nvidia-installer
// does on the points where a provisioning script can go wrong (README.md in
// this directory lists them with the source functions they follow).

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flagsLikeNvidiaprep are the installer flags nvidiaprep's worker passes.
const flagsLikeNvidiaprep = "--silent --no-kernel-module --no-nvidia-modprobe --no-x-check --no-nouveau-check --no-systemd --no-rpms --no-backup --no-check-for-alternate-installs --no-install-libglvnd --skip-module-unload --skip-depmod"

// chrootWithTree returns a chroot with version ver's extracted tree
// mounted read-only at /mnt/a.
func chrootWithTree(t *testing.T, ver string) (*chroot, string) {
	t.Helper()
	c := newChroot(t)
	tree := filepath.Join(t.TempDir(), "a")
	extract(t, testRun(t, ver), tree)
	c.binds = []string{tree + " /mnt/a ro"}
	return c, tree
}

// find_module_utils and find_system_utils (misc.c): no kmod, no install,
// uninstall or --driver-info, even with --no-kernel-module.
func TestStandinNeedsModuleAndSystemUtilities(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	c.noKmod = true
	r := c.sh(t, `/mnt/a/nvidia-installer --silent --no-kernel-module; echo "rc=$?"
/mnt/a/nvidia-installer --uninstall --silent; echo "rc=$?"
/mnt/a/nvidia-installer -i; echo "rc=$?"
test -e /var/lib/nvidia || echo untouched`)
	mod := "ERROR: Unable to find the module utility `modprobe`; please make sure you have the package 'module-init-tools' or 'kmod' installed.  If you do have 'module-init-tools' or 'kmod' installed, then please check that `modprobe` is in your PATH."
	if n := strings.Count(r.Output, mod); n != 3 || strings.Count(r.Output, "rc=1\n") != 3 || !strings.Contains(r.Output, "untouched") {
		t.Errorf("without kmod: %d refusals:\n%s", n, r.Output)
	}
	// With the module utilities but without tail (coreutils).
	c.noKmod = false
	r = c.sh(t, `rm /usr/bin/tail; /mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; test -e /var/lib/nvidia || echo untouched`)
	mustContain(t, "without tail", r, "ERROR: Unable to find the system utility `tail`; please make sure you have the package 'coreutils' installed.  If you do have coreutils installed, then please check that `tail` is in your PATH.", "rc=1\n", "untouched")
	// Found on $PATH first, then in EXTRA_PATH: with the stubs on the PATH
	// the install works, and it runs no module command.
	r = c.sh(t, `ln -s /bin/true /usr/bin/tail; /mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"`)
	mustContain(t, "with the stubs", r, "rc=0\n")
	if m := c.modcalls(t); m != "" {
		t.Errorf("an install with --no-kernel-module ran module commands:\n%s", m)
	}
}

// The distribution's libglvnd files, as Debian's libgl1, libglx0,
// libglvnd0 and libegl1 install them, and an application's bundled copy.
const distroGL = `set -e
cd /usr/lib/x86_64-linux-gnu
for f in libGL.so.1.7.0:libGL.so.1 libGLX.so.0.0.0:libGLX.so.0 libGLdispatch.so.0.0.0:libGLdispatch.so.0 libEGL.so.1.1.0:libEGL.so.1; do
	echo "debian ${f%%:*}" > ${f%%:*}; ln -s ${f%%:*} ${f#*:}
done
mkdir -p /usr/lib/someapp && echo bundled > /usr/lib/someapp/libEGL.so
`

const listGL = `cd /usr/lib/x86_64-linux-gnu && for f in libGL.so.1.7.0 libGLX.so.0.0.0 libGLdispatch.so.0.0.0 libEGL.so.1.1.0 /usr/lib/someapp/libEGL.so; do printf '%s: ' $f; cat $f 2>&1 | tr '\n' ' '; echo; done`

// command-list.c find_conflicting_files, manifest.c (GLVND_LIB is
// conflicting): --install-libglvnd with --no-backup deletes every
// libGL.so*, libEGL.so*, ... under /usr/lib*, whoever owns it;
// --no-install-libglvnd leaves them.
func TestStandinInstallLibglvndDeletesTheDistributionsGL(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	mustCode(t, "distribution GL", c.sh(t, distroGL), 0)
	before := c.sh(t, listGL).Output
	mustCode(t, "install --no-install-libglvnd", c.sh(t, `/mnt/a/nvidia-installer `+flagsLikeNvidiaprep), 0)
	if after := c.sh(t, listGL).Output; after != before {
		t.Errorf("--no-install-libglvnd changed the distribution's GL:\n%s\nwas\n%s", after, before)
	}
	mustCode(t, "uninstall", c.sh(t, `nvidia-uninstall -s --skip-module-unload --skip-depmod`), 0)

	flags := strings.Replace(flagsLikeNvidiaprep, "--no-install-libglvnd", "--install-libglvnd", 1)
	r := c.sh(t, `/mnt/a/nvidia-installer `+flags+`; echo "rc=$?"; grep Deleting: /var/log/nvidia-installer.log`)
	mustContain(t, "install --install-libglvnd", r, "rc=0\n", "Deleting: /usr/lib/someapp/libEGL.so", "Deleting: /usr/lib/x86_64-linux-gnu/libGLX.so.0.0.0")
	after := c.sh(t, listGL).Output
	for _, gone := range []string{"libGLX.so.0.0.0: cat: libGLX.so.0.0.0: No such file or directory", "libGLdispatch.so.0.0.0: cat: libGLdispatch.so.0.0.0: No such file or directory",
		"/usr/lib/someapp/libEGL.so: cat: /usr/lib/someapp/libEGL.so: No such file or directory", "libGL.so.1.7.0: stand-in libglvnd library"} {
		if !strings.Contains(after, gone) {
			t.Errorf("after --install-libglvnd --no-backup, want %q:\n%s", gone, after)
		}
	}
}

// command-list.c execute_command_list, misc.c continue_after_error: a file
// that cannot be installed is skipped, and the install exits 0.
func TestStandinPartialInstallExitsZero(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	c.binds = append(c.binds, t.TempDir()+" /usr/lib/firmware ro")
	lib := "/usr/lib/x86_64-linux-gnu"
	r := c.sh(t, `NVIDIAPREP_STANDIN_FAIL_FILE=libnvidia-encode.so.`+verA+` /mnt/a/nvidia-installer `+strings.Replace(flagsLikeNvidiaprep, "--silent", "--no-questions --ui=none", 1)+`; echo "rc=$?"
ls `+lib+`/libnvidia-encode.so.`+verA+` /lib/firmware/nvidia/`+verA+`/gsp_ga10x.bin 2>&1; ls `+lib+`/libnvidia-ml.so.`+verA)
	mustContain(t, "partial install", r, "rc=0\n", "Cannot install /lib/firmware/nvidia/"+verA+"/gsp_ga10x.bin",
		"Cannot install "+lib+"/libnvidia-encode.so."+verA+"'.  Would you like to continue installation anyway? (Answer: Continue installation)",
		"libnvidia-encode.so."+verA+"': No such file or directory", "gsp_ga10x.bin': No such file or directory", lib+"/libnvidia-ml.so."+verA+"\n",
		"Installation of the "+RunDescription+" (version: "+verA+") is now complete.")
}

// option_table.h by tag: a branch rejects options it does not know (exit 1).
func TestStandinFlagsByBranch(t *testing.T) {
	dir := t.TempDir()
	trees := map[string]string{}
	for _, v := range []string{"460.91.03", "535.216.01", "550.40.07", verA} {
		run := filepath.Join(dir, RunFileName(v))
		if err := BuildRun(run, RunOptions{Version: v}); err != nil {
			t.Fatal(err)
		}
		trees[v] = filepath.Join(dir, v)
		extract(t, run, trees[v])
	}
	known := map[string][]string{ // flag: the branches above that know it
		"--no-systemd":       {"535.216.01", "550.40.07", verA},
		"--skip-module-load": {"550.40.07", verA},
		"--allow-installation-with-running-driver": {"550.40.07", verA},
		"--kernel-module-type=open":                {verA},
		"-M":                                       {verA},
		"--rebuild-initramfs":                      {"550.40.07", verA},
		"--no-kernel-modules":                      {"535.216.01", "550.40.07", verA},
		"--no-install-libglvnd":                    {"460.91.03", "535.216.01", "550.40.07", verA},
	}
	for flag, vs := range known {
		for v, tree := range trees {
			args := []string{flag}
			if flag == "-M" {
				args = append(args, "open")
			}
			r := runIn(t, tree, nil, "sh", append(append([]string{filepath.Join(tree, "nvidia-installer")}, args...), "--version")...)
			want := 1
			for _, k := range vs {
				if k == v {
					want = 0
				}
			}
			if r.Code != want {
				t.Errorf("%s %s: exit %d, want %d:\n%s", v, flag, r.Code, want, r.Output)
			}
			if want == 1 && !strings.Contains(r.Output, `unrecognized option: "`+strings.SplitN(flag, "=", 2)[0]+`"`) {
				t.Errorf("%s %s: %s", v, flag, r.Output)
			}
		}
	}
}

// backup.c do_uninstall, kernel.c rmmod_kernel_module, set_loglevel.
func TestStandinUninstall(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	lib := "/usr/lib/x86_64-linux-gnu"
	printk := c.upper("/proc/sys/kernel/printk")
	os.MkdirAll(filepath.Dir(printk), 0o755)
	if err := os.WriteFile(printk, []byte("4\t4\t1\t7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install := func() {
		t.Helper()
		mustCode(t, "install", c.sh(t, `/mnt/a/nvidia-installer `+flagsLikeNvidiaprep), 0)
		c.modcalls(t)
	}

	t.Run("unloads sixteen modules, runs depmod, writes printk, exits 0", func(t *testing.T) {
		install()
		r := c.sh(t, `nvidia-uninstall -s 2>/dev/null; echo "rc=$?"; test -e `+lib+`/libnvidia-ml.so.1 || echo removed`)
		mustContain(t, "uninstall", r, "rc=0\n", "removed")
		want := ""
		for _, m := range strings.Fields("nv_peer_mem nvidia-peermem nvidia-vgpu-vfio nvidia-uvm nvidia-drm nvidia-modeset nvidia nvidia0 nvidia1 nvidia2 nvidia3 nvidia4 nvidia5 nvidia6 nvidia7 nvidia-frontend") {
			want += "rmmod " + m + " printk=1\n"
		}
		want += "depmod -a printk=4\n"
		if got := c.modcalls(t); got != want {
			t.Errorf("module commands:\n%s\nwant:\n%s", got, want)
		}
		if b, _ := os.ReadFile(printk); string(b) != "4\t4\t1\t7\n" {
			t.Errorf("printk after the uninstall: %q", b)
		}
	})

	t.Run("--skip-module-unload --skip-depmod touch no module", func(t *testing.T) {
		install()
		r := c.sh(t, `nvidia-uninstall -s --skip-module-unload --skip-depmod 2>/dev/null; echo "rc=$?"; test -e /var/lib/nvidia || echo removed`)
		mustContain(t, "uninstall", r, "rc=0\n", "removed")
		if got := c.modcalls(t); got != "" {
			t.Errorf("module commands: %s", got)
		}
	})

	t.Run("an upgrade runs the old uninstaller without those flags", func(t *testing.T) {
		install()
		mustCode(t, "upgrade", c.sh(t, `/mnt/a/nvidia-installer `+flagsLikeNvidiaprep), 0)
		if got := c.modcalls(t); !strings.Contains(got, "rmmod nvidia printk=1\n") || !strings.Contains(got, "depmod -a") {
			t.Errorf("module commands of the upgrade: %q", got)
		}
	})

	t.Run("a read-only printk (a container's /proc/sys) is left alone", func(t *testing.T) {
		install()
		ro := t.TempDir()
		os.WriteFile(filepath.Join(ro, "printk"), []byte("7\t4\t1\t7\n"), 0o644)
		saved := c.binds
		c.binds = append(c.binds, ro+" /proc/sys/kernel ro")
		defer func() { c.binds = saved }()
		r := c.sh(t, `nvidia-uninstall -s 2>/dev/null; echo "rc=$?"; test -e /var/lib/nvidia || echo removed`)
		mustContain(t, "uninstall", r, "rc=0\n", "removed")
		if got := c.modcalls(t); !strings.Contains(got, "rmmod nvidia printk=7\n") || !strings.Contains(got, "depmod -a printk=7\n") {
			t.Errorf("module commands: %q", got)
		}
	})

	t.Run("/var/lib/nvidia not 0700: ERROR, nothing removed, exit 0", func(t *testing.T) {
		install()
		r := c.sh(t, `chmod 755 /var/lib/nvidia; nvidia-uninstall -s --skip-module-unload --skip-depmod; echo "rc=$?"; ls `+lib+`/libnvidia-ml.so.1 /var/lib/nvidia/log`)
		mustContain(t, "uninstall", r, "ERROR: The directory permissions of /var/lib/nvidia have been changed sincethe directory was created!",
			"ERROR: Uninstallation failed.", "rc=0\n", lib+"/libnvidia-ml.so.1\n/var/lib/nvidia/log\n")
		mustCode(t, "cleanup", c.sh(t, `chmod 700 /var/lib/nvidia && nvidia-uninstall -s --skip-module-unload --skip-depmod 2>/dev/null && ! test -e /var/lib/nvidia`), 0)
	})
}

// files.c get_tmpdir, set_destinations (FIRMWARE), find_libdir_and_fall_back.
func TestStandinTmpdirFirmwareLibdir(t *testing.T) {
	c, _ := chrootWithTree(t, verA)
	r := c.sh(t, `rm -rf /tmp; cd / && /mnt/a/nvidia-installer `+flagsLikeNvidiaprep+`; echo "rc=$?"; test -e /var/lib/nvidia/log || echo "nothing installed"`)
	mustContain(t, "no /tmp: the read-only package directory", r, "ERROR: Unable to create temporary file (Read-only file system)", "rc=1\n")
	r = c.sh(t, `/mnt/a/nvidia-installer `+flagsLikeNvidiaprep+` --tmpdir=/root; echo "rc=$?"; ls /lib/firmware/nvidia/`+verA)
	mustContain(t, "--tmpdir; firmware with --no-kernel-module", r, "rc=0\n", "gsp_ga10x.bin\ngsp_tu10x.bin\n")
	mustCode(t, "uninstall", c.sh(t, `nvidia-uninstall -s --skip-module-unload --skip-depmod 2>/dev/null; ! test -e /lib/firmware/nvidia`), 0)

	// The ldconfig cache names /usr/lib64/ but not /usr/lib/x86_64-linux-gnu/
	// (a merged-/usr Debian caches /lib/x86_64-linux-gnu): lib64 it is.
	r = c.sh(t, `mkdir -p /usr/lib64 && cp /lib/x86_64-linux-gnu/libz.so.1 /usr/lib64/ && echo /usr/lib64 > /etc/ld.so.conf.d/zz-lib64.conf && ldconfig &&
/mnt/a/nvidia-installer `+flagsLikeNvidiaprep+` --tmpdir=/root; echo "rc=$?"; readlink /usr/lib64/libnvidia-ml.so.1`)
	mustContain(t, "library directory from the ldconfig cache", r, "rc=0\n", "libnvidia-ml.so."+verA+"\n")
}

// The makeself stub: an unquoted $0, the decompressor in $TMPDIR as it is
// before the options, and on a tar failure a message to /dev/tty and a kill
// that leaves the partial tree.
func TestStandinRunStubLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces, tmpfs)")
	}
	run := testRun(t, verA)
	spaced := filepath.Join(t.TempDir(), "with space")
	os.MkdirAll(spaced, 0o755)
	b, _ := os.ReadFile(run)
	os.WriteFile(filepath.Join(spaced, "x.run"), b, 0o755)
	r := runIn(t, spaced, nil, "sh", filepath.Join(spaced, "x.run"), "-x", "--target", filepath.Join(t.TempDir(), "t"))
	if r.Code == 0 {
		t.Errorf("a .run at a path with a space extracted:\n%s", r.Output)
	}

	dir := t.TempDir()
	script := `set -e; mkdir -p noexec good small; mount -t tmpfs -o noexec tmpfs noexec; mount -t tmpfs -o size=64k tmpfs small
set +e
TMPDIR=$PWD/noexec sh "$RUN" -x --tmpdir $PWD/good --target $PWD/t1; echo "rc=$?"
TMPDIR=$PWD/good setsid sh "$RUN" -x --target $PWD/small/t2 </dev/null; echo "rc=$?"; ls small/t2 | head -n 1`
	r = runIn(t, dir, []string{"RUN=" + run}, "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	mustContain(t, "stub", r, "ERROR: Temporary directory "+dir+"/noexec is not executable", "rc=1\n",
		"cannot create /dev/tty", "rc=143\n", "10_nvidia.json\n")
}
