//go:build integration

package integration_test

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/secureboot"
)

// moduleSource is the kernel module source registered with DKMS as
// nvidia/<version>, the way NVIDIA's installer registers a .run's sources
// (/usr/src/nvidia-<version>, PACKAGE_NAME="nvidia"), so that nvidiaprep's
// own checks run on it. broken is a file of it that a failing build breaks.
type moduleSource struct {
	version string
	dir     string // the tree, on the host
	broken  string // relative to dir
}

// tinySource is a one-file kernel module with NVIDIA's DKMS configuration:
// real DKMS builds it against real Debian kernel headers in seconds.
func tinySource(t *testing.T, _ *lxctest.Bed) moduleSource {
	const v = "580.105.08"
	dir := filepath.Join(t.TempDir(), "nvidia-"+v)
	files := map[string]string{
		"Kbuild": "obj-m := nvidia.o\n",
		"nvidia.c": "// nvidiaprep test: a stand-in for NVIDIA's kernel module source, built by real DKMS.\n" +
			"#include <linux/module.h>\n#include <linux/init.h>\nMODULE_LICENSE(\"GPL\");\n" +
			"static int __init standin_init(void) { return 0; }\nstatic void __exit standin_exit(void) {}\n" +
			"module_init(standin_init);\nmodule_exit(standin_exit);\n",
		"dkms.conf": nvidiaDKMSConf(v, `make -C ${kernel_source_dir} M=${dkms_tree}/${PACKAGE_NAME}/${PACKAGE_VERSION}/build modules`, "nvidia"),
	}
	for name, text := range files {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return moduleSource{version: v, dir: dir, broken: "nvidia.c"}
}

// nvidiaDKMSConf is dkms.conf in the form NVIDIA's installer writes it
// for a .run's sources: module nvidia, the modules to /kernel/drivers/video.
func nvidiaDKMSConf(version, make string, modules ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "PACKAGE_NAME=\"nvidia\"\nPACKAGE_VERSION=\"%s\"\nAUTOINSTALL=\"yes\"\nMAKE[0]=\"%s\"\n", version, make)
	for i, m := range modules {
		fmt.Fprintf(&b, "BUILT_MODULE_NAME[%d]=\"%s\"\nDEST_MODULE_LOCATION[%d]=\"/kernel/drivers/video\"\n", i, m, i)
	}
	return b.String()
}

// debianKernels are the ABIs of Debian's current amd64 kernel on the
// host's sources ("6.1.0-57-amd64") and of the newest one before it that
// the sources still have ("6.1.0-50-amd64", from the point release).
func debianKernels(t *testing.T) (newest, older string) {
	r := runbin.Cmd{Path: "apt-cache", Args: []string{"depends", "linux-image-amd64"}, Split: true}.Must(t)
	if r.Code != 0 {
		t.Fatalf("apt-cache depends linux-image-amd64: exit %d\n%s", r.Code, r.Output)
	}
	out := r.Stdout
	m := regexp.MustCompile(`linux-image-(6\.1\.0-([0-9]+)-amd64)`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no kernel in:\n%s", out)
	}
	newest = m[1]
	abi, _ := strconv.Atoi(m[2])
	r = runbin.Cmd{Path: "apt-cache", Args: []string{"search", "--names-only", `^linux-image-6\.1\.0-[0-9]+-amd64$`}, Split: true}.Must(t)
	if r.Code != 0 {
		t.Fatalf("apt-cache search: exit %d\n%s", r.Code, r.Output)
	}
	out = r.Stdout
	best := 0
	for _, l := range regexp.MustCompile(`linux-image-6\.1\.0-([0-9]+)-amd64 `).FindAllStringSubmatch(string(out), -1) {
		if n, _ := strconv.Atoi(l[1]); n < abi && n > best {
			best = n
		}
	}
	if best == 0 {
		t.Fatalf("no kernel older than %s in the host's sources", newest)
	}
	return newest, fmt.Sprintf("6.1.0-%d-amd64", best)
}

// kernelNode is a Debian 12 container with real dkms, a real Debian kernel
// (installed, not running: the container runs the machine's kernel) and
// its real headers in a local repository, nvidiaprep's binary with the
// kernel hooks and apt configuration its package ships, a driver installed
// as a .run leaves it (its record and DKMS sources), and a stand-in sysfs
// for the EFI variables.
type kernelNode struct {
	ctShell // t and ct, the container
	host    *standin.Host
	kernel  string // the kernel the update brings
	older   string // with o.working, the kernel that works
	src     moduleSource
}

// kernelOptions choose what a kernel test covers.
type kernelOptions struct {
	// working installs an older kernel with its headers first, so that
	// there is a kernel to keep booting (pin_working_kernel, with the
	// stand-in proxmox-boot-tool).
	working    bool
	secureBoot bool
}

func newKernelNode(t *testing.T, source func(*testing.T, *lxctest.Bed) moduleSource, o kernelOptions) *kernelNode {
	t.Helper()
	bed := lxctest.NewTestBed(t)
	n := &kernelNode{ctShell: ctShell{t: t}}
	n.kernel, n.older = debianKernels(t)
	pkgs := []string{"dkms", "kmod", "liblxc1", "tiny-initramfs", "linux-image-" + n.kernel, "linux-headers-" + n.kernel}
	if o.working {
		pkgs = append(pkgs, "linux-image-"+n.older, "linux-headers-"+n.older)
	} else {
		n.older = ""
	}
	n.src = source(t, bed)
	var err error
	if n.host, err = standin.NewHost(filepath.Join(bed.Dir, "standin")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	// tiny-initramfs is Debian's smallest linux-initramfs-tool: the kernel
	// package needs one, and initramfs-tools takes minutes here.
	debs, err := aptrepo.Fetch(bed.Cache, filepath.Join(bed.Cache, "rootfs-bookworm"), pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(bed.Dir, "repo")
	if err := aptrepo.Build(repo, debs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("the local repository (%d packages) in %v", len(debs), time.Since(t0).Round(time.Millisecond))
	root, err := scenario.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hookFile := read(filepath.Join(root, "packaging/kernel-hook"))
	var boot func()
	n.ct, boot = hostCT(t, bed, repo, []string{
		filepath.Dir(n.src.dir) + " srv/src none bind,ro,create=dir 0 0",
		n.host.Root + " srv/standin none bind,create=dir 0 0",
	}, map[string]ctFile{
		"usr/bin/nvidiaprep":                           {read(filepath.Join(filepath.Dir(hook), "nvidiaprep")), 0o755},
		"etc/kernel/postinst.d/nvidiaprep":             {hookFile, 0o755},
		"etc/kernel/header_postinst.d/nvidiaprep":      {hookFile, 0o755},
		"etc/apt/apt.conf.d/75nvidiaprep-kernel-check": {read(filepath.Join(root, "packaging/apt-kernel-check.conf")), 0o644},
		"etc/nvidiaprep/nvidiaprep.toml":               {[]byte(fmt.Sprintf("[paths]\nsys = \"/srv/standin/sys\"\n\n[driver]\nversion = %q\npin_working_kernel = %v\n", n.src.version, o.working)), 0o644},
		"usr/sbin/proxmox-boot-tool":                   {standin.ProxmoxBootTool(), 0o755},
		"etc/kernel/proxmox-boot-uuids":                {[]byte(standin.ESPList), 0o644},
		// What a .run install with --dkms leaves: its record.
		"var/lib/nvidia/log": {[]byte("1.0-1 (" + n.src.version + ")\n" + standin.RunDescription + "\n"), 0o600},
	})
	boot()
	n.must(`set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io dkms kmod liblxc1
cp -a /srv/src/nvidia-` + n.src.version + ` /usr/src/
dkms add -m nvidia -v ` + n.src.version)
	return n
}

// apt runs apt-get as an admin does and returns what it printed.
func (n *kernelNode) apt(args string) (string, int) {
	n.t.Helper()
	return n.sh("DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io " + args + " 2>&1")
}

// The kernel guard with real DKMS and real Debian kernel packages: a
// kernel without headers, its headers arriving, a build that fails, and
// Secure Boot's signature, each as the admin sees it in apt's output,
// status, doctor and the journal.
func TestKernelUpdate(t *testing.T) {
	kernelUpdate(t, tinySource, kernelOptions{working: true, secureBoot: true})
}

func kernelUpdate(t *testing.T, source func(*testing.T, *lxctest.Bed) moduleSource, o kernelOptions) {
	t0 := time.Now()
	n := newKernelNode(t, source, o)
	k, v, older := n.kernel, n.src.version, n.older
	t.Logf("node ready in %v (kernel %s, driver %s)", time.Since(t0).Round(time.Millisecond), k, v)

	if o.working {
		t.Run("the kernel that works", func(t *testing.T) {
			out, code := n.apt("install linux-image-" + older + " linux-headers-" + older)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, tail(out, 30))
			}
			wantAll(t, "apt's output", out, "nvidiaprep: kernel "+older+" has NVIDIA driver "+v+"'s module (dkms status: installed)")
		})
	}

	t.Run("a kernel without its headers", func(t *testing.T) {
		out, code := n.apt("install linux-image-" + k)
		t.Logf("apt-get install linux-image-%s:\n%s", k, tail(out, 25))
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		// DKMS's own hook skips the kernel; nvidiaprep's, after it, says so.
		wantAll(t, "apt's output", out,
			"autoinstall for kernel "+k+" was skipped since the kernel headers for this kernel do not seem to be installed",
			"nvidiaprep: kernel "+k+" has NO NVIDIA driver "+v+" module: its headers are not installed",
			"Fix: `apt install linux-headers-"+k+"` (DKMS then builds the module)")
		if strings.Index(out, "/etc/kernel/postinst.d/dkms") > strings.Index(out, "nvidiaprep: kernel "+k) {
			t.Errorf("nvidiaprep's hook ran before DKMS's")
		}
		if o.working {
			// pin_working_kernel, through proxmox-boot-tool's interface.
			wantAll(t, "apt's output", out, "Until then keep booting kernel "+older+", which has it: proxmox-boot-tool kernel pin "+older+" && proxmox-boot-tool refresh",
				"Set kernel '"+older+"' in /etc/kernel/proxmox-boot-pin", "nvidiaprep: pinned kernel "+older)
			if pin := strings.TrimSpace(n.must("cat /etc/kernel/proxmox-boot-pin")); pin != older {
				t.Errorf("pinned %q, want %s", pin, older)
			}
		}
		wantAll(t, "the marker", n.must("cat /run/nvidiaprep/kernel-not-ready"), "kernel "+k+" has no NVIDIA driver "+v+" module")
		wantAll(t, "the journal", n.must("journalctl -t nvidiaprep-kernel --no-pager -o cat"), "kernel "+k+" has NO NVIDIA driver "+v+" module")
		// --wide: one line per value, so that a message is found whole
		// whatever the width (output to no terminal fits 80 columns).
		status := n.must("nvidiaprep status --wide")
		t.Logf("nvidiaprep status:\n%s", status)
		wantAll(t, "status", status, k+": NOT READY: its headers are not installed", "fix: `apt install linux-headers-"+k+"`")
		doctor, code := n.sh("nvidiaprep doctor --wide")
		if code != 1 {
			t.Errorf("doctor exit %d", code)
		}
		wantAll(t, "doctor", doctor, "PROBLEM kernel-not-ready: kernel "+k+" has no NVIDIA driver "+v+" module: its headers are not installed", "booting it leaves the node without GPUs")
		// The container runs the machine's kernel, which is not installed
		// in it: none of the node's kernels, nothing to build for.
		if running := strings.TrimSpace(n.must("uname -r")); strings.Contains(status, running) || strings.Contains(doctor, running) {
			t.Errorf("status or doctor names the machine's kernel %s, which is not installed in the node:\n%s\n%s", running, status, doctor)
		}
	})

	t.Run("its headers arrive", func(t *testing.T) {
		t1 := time.Now()
		out, code := n.apt("install linux-headers-" + k)
		took := time.Since(t1)
		t.Logf("apt-get install linux-headers-%s (DKMS builds the module) took %v:\n%s", k, took.Round(time.Second), tail(out, 15))
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
		wantAll(t, "apt's output", out, "nvidiaprep: kernel "+k+" has NVIDIA driver "+v+"'s module (dkms status: installed)")
		wantAll(t, "dkms status", n.must("dkms status"), "nvidia/"+v+", "+k+", x86_64: installed")
		wantAll(t, "status", n.must("nvidiaprep status --wide"), k+": driver "+v+" built (dkms: installed)")
		if doctor, _ := n.sh("nvidiaprep doctor --wide"); strings.Contains(doctor, "kernel-not-ready: kernel "+k) {
			t.Errorf("doctor:\n%s", doctor)
		}
		if out, code := n.sh("ls /run/nvidiaprep/kernel-not-ready 2>&1"); code == 0 {
			t.Errorf("the marker is left: %s", out)
		}
		if o.working {
			wantAll(t, "apt's output", out, "unpinned kernel "+older)
			if out, code := n.sh("ls /etc/kernel/proxmox-boot-pin 2>&1"); code == 0 {
				t.Errorf("still pinned: %s", out)
			}
		}
	})

	t.Run("a build that fails", func(t *testing.T) {
		n.must("echo '#error nvidiaprep test: this build fails' >> /usr/src/nvidia-" + v + "/" + n.src.broken + " && dkms unbuild -m nvidia -v " + v + " -k " + k)
		out, code := n.apt("install --reinstall linux-image-" + k)
		t.Logf("apt-get install --reinstall linux-image-%s:\n%s", k, tail(out, 30))
		if code == 0 {
			t.Errorf("apt succeeded although the build failed")
		}
		// DKMS's failing hook stops the kernel's hooks; apt's Post-Invoke
		// still says it, with the log.
		log := "/var/lib/dkms/nvidia/" + v + "/build/make.log"
		wantAll(t, "apt's output", out, "Bad return status for module build on kernel: "+k,
			"nvidiaprep: kernel "+k+" has NO NVIDIA driver "+v+" module: DKMS failed to build driver "+v+"'s module for it; its log is "+log)
		wantAll(t, "the build log", n.must("cat "+log), "nvidiaprep test: this build fails")
		status := n.must("nvidiaprep status --wide")
		wantAll(t, "status", status, k+": NOT READY: DKMS failed to build driver "+v+"'s module for it; its log is "+log)
		doctor, _ := n.sh("nvidiaprep doctor --wide")
		t.Logf("nvidiaprep doctor:\n%s", doctor)
		wantAll(t, "doctor", doctor, "PROBLEM kernel-not-ready: kernel "+k+" has no NVIDIA driver "+v+" module: DKMS failed to build", "read "+log)
		// The fix: the sources back, dpkg finishes the kernel's configuration.
		n.must("sed -i '/nvidiaprep test: this build fails/d' /usr/src/nvidia-" + v + "/" + n.src.broken)
		out, code = n.sh("dpkg --configure -a 2>&1")
		if code != 0 {
			t.Fatalf("dpkg --configure -a: exit %d\n%s", code, out)
		}
		wantAll(t, "dpkg --configure -a", out, "nvidiaprep: kernel "+k+" has NVIDIA driver "+v+"'s module (dkms status: installed)")
	})
	if !o.secureBoot {
		return
	}

	t.Run("Secure Boot", func(t *testing.T) {
		if err := n.host.SetSecureBoot(true); err != nil {
			t.Fatal(err)
		}
		out := n.must("nvidiaprep kernel-installed " + k + " 2>&1")
		t.Logf("with Secure Boot on:\n%s", out)
		wantAll(t, "the guard", out, "made the module signing key /var/lib/dkms/mok.pub", "DKMS signs the modules it builds from now on",
			"its module is not signed", "dkms remove nvidia/"+v+" -k "+k+" && dkms install nvidia/"+v+" -k "+k)
		// As it says: DKMS rebuilds and signs with the one key (real sign-file).
		n.must("dkms remove nvidia/" + v + " -k " + k + " && dkms install nvidia/" + v + " -k " + k)
		sig := strings.TrimSpace(n.must("modinfo -F sig_key $(find /lib/modules/" + k + " -name 'nvidia.ko*' | head -n1)"))
		if sig == "" {
			t.Fatal("DKMS did not sign the module")
		}
		out = n.must("nvidiaprep kernel-installed " + k + " 2>&1")
		wantAll(t, "the guard", out, "signed by key "+sig+", which is not enrolled", secureboot.ImportCommand)
		// Enrolled in the MOK manager at the next boot: shim's MokListRT.
		der := n.must("base64 -w0 /var/lib/dkms/mok.pub")
		if err := n.host.EnrollMOK(decodeBase64(t, der)); err != nil {
			t.Fatal(err)
		}
		wantAll(t, "the guard", n.must("nvidiaprep kernel-installed "+k+" 2>&1"), "kernel "+k+" has NVIDIA driver "+v+"'s module")
	})
	t.Logf("whole test: %v", time.Since(t0).Round(time.Millisecond))
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func decodeBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
