//go:build integration

package integration_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/ctnet"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/hostdriver"
	"nvidiaprep/nvidiaprep/hostdriverstate"
)

const (
	hdOld     = "580.142"    // an earlier .run install on the node
	hdWant    = "580.159.04" // [driver] version
	hdStale   = "535.54.03"  // a DKMS module left by the distribution's packages
	hdPort    = "8444"       // the test's web server, on the container's loopback
	hdRunURL  = "http://127.0.0.1:" + hdPort + "/NVIDIA-Linux-x86_64-" + hdWant + ".run"
	hdDeadURL = "http://127.0.0.1:9/NVIDIA-Linux-x86_64-" + hdWant + ".run"
)

// hostNode is a container that plays a Proxmox node for the host driver
// unit: systemd, real apt, dpkg and DKMS (Debian's dkms package from a local
// repository), the real nvidiaprep binary and unit file, a stand-in NVIDIA
// sys/proc/dev tree bind-mounted at /srv/standin that [paths] points at,
// and /etc/nvidiaprep bind-mounted from the host so the test can change
// the configuration while it runs.
type hostNode struct {
	ctShell        // t and ct, the container
	start   func() // boots ct (hostCT)
	host    *standin.Host
	etc     string // the host side of /etc/nvidiaprep
	www     string // what the test's web server serves
	release string // uname -r, the container's kernel too
	uvm     int    // the stand-in nvidia-uvm major
}

func newHostNode(t *testing.T) *hostNode {
	t.Helper()
	return newHostNodeWith(t, nil, hdOld, hdWant)
}

// newHostNodeWith is newHostNode with the packages extra in its
// repository too, and stand-in .runs of versions (the last one is
// configured only when it is hdWant).
func newHostNodeWith(t *testing.T, extra []string, versions ...string) *hostNode {
	t.Helper()
	bed := lxctest.NewTestBed(t)
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	n := &hostNode{ctShell: ctShell{t: t}, release: unix.ByteSliceToString(u.Release[:]),
		etc: filepath.Join(bed.Dir, "etc-nvidiaprep"), www: filepath.Join(bed.Dir, "www")}
	var err error
	if n.host, err = standin.NewHost(filepath.Join(bed.Dir, "standin")); err != nil {
		t.Fatal(err)
	}
	if n.uvm, err = standin.FreeMajor("/proc/devices"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{n.etc, n.www} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range versions {
		if err := standin.BuildRun(filepath.Join(n.www, standin.RunFileName(v)), standin.RunOptions{Version: v}); err != nil {
			t.Fatal(err)
		}
	}

	// The local repository: Debian's dkms and liblxc1 (which the nvidiaprep
	// binary links) with what they need, the running kernel's headers
	// (stand-in), the distribution's NVIDIA packages (stand-ins) and a
	// package named nvidiaprep, which must survive the purge.
	debs, err := aptrepo.Fetch(bed.Cache, filepath.Join(bed.Cache, "rootfs-bookworm"), "dkms", "liblxc1")
	if err != nil {
		t.Fatal(err)
	}
	pkgDir := t.TempDir()
	for name, files := range map[string]map[string]string{
		"linux-headers-" + n.release: {"usr/src/linux-headers-" + n.release + "/Makefile": "# stand-in kernel headers (nvidiaprep tests)\n"},
		"nvidia-driver-libs": {
			"usr/lib/nvidia/alternate-install-present":    "",
			"usr/share/doc/nvidia-driver-libs/README.txt": "stand-in for Debian's nvidia-driver-libs\n",
		},
		"nvidia-kernel-dkms": {"usr/share/doc/nvidia-kernel-dkms/README.txt": "stand-in for Debian's nvidia-kernel-dkms\n"},
		"nvidiaprep":         {"usr/share/doc/nvidiaprep/README.txt": "stand-in for this project's own package\n"},
	} {
		deb, err := scenario.BuildDeb(pkgDir, name, "1.0", files)
		if err != nil {
			t.Fatal(err)
		}
		debs = append(debs, deb)
	}
	repo := filepath.Join(bed.Dir, "repo")
	if err := aptrepo.Build(repo, append(debs, extra...)...); err != nil {
		t.Fatal(err)
	}

	bin, err := os.ReadFile(filepath.Join(filepath.Dir(hook), "nvidiaprep"))
	if err != nil {
		t.Fatal(err)
	}
	root, err := scenario.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join(root, "packaging/nvidiaprep-host-driver.service"))
	if err != nil {
		t.Fatal(err)
	}
	n.ct, n.start = hostCT(t, bed, repo, []string{
		n.www + " srv/www none bind,ro,create=dir 0 0",
		n.host.Root + " srv/standin none bind,create=dir 0 0",
		n.etc + " etc/nvidiaprep none bind,create=dir 0 0",
	}, map[string]ctFile{
		"usr/bin/nvidiaprep": {bin, 0o755},
		"lib/systemd/system/nvidiaprep-host-driver.service": {unit, 0o644},
	})
	if versions[len(versions)-1] == hdWant {
		n.config("nvidiaprep.toml", hdRunURL, "")
	}
	return n
}

// config writes a configuration into /etc/nvidiaprep: [paths] into the
// stand-in tree, [driver] from run and sha256 ("" pins the real one).
func (n *hostNode) config(name, run, sum string) {
	n.t.Helper()
	if sum == "" {
		b, err := os.ReadFile(filepath.Join(n.www, standin.RunFileName(hdWant)))
		if err != nil {
			n.t.Fatal(err)
		}
		sum = fmt.Sprintf("%x", sha256.Sum256(b))
	}
	cfg := fmt.Sprintf(`[paths]
dev = "/srv/standin/dev"
proc = "/srv/standin/proc"
sys = "/srv/standin/sys"

[driver]
version = %q
run = %q
sha256 = %q
kernel_module = "open"
`, hdWant, run, sum)
	if err := os.WriteFile(filepath.Join(n.etc, name), []byte(cfg), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// boot starts the container, waits for systemd and serves www on the
// container's 127.0.0.1:hdPort from the test process.
func (n *hostNode) boot() {
	n.t.Helper()
	n.start()
	l, err := ctnet.Listen(n.ct.InitPID(), "127.0.0.1:"+hdPort)
	if err != nil {
		n.t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(n.www))}
	go srv.Serve(l)
	n.t.Cleanup(func() { srv.Close() })
}

// hostDriver runs `nvidiaprep host-driver` by hand with the given
// configuration file.
func (n *hostNode) hostDriver(config string) (string, int) {
	n.t.Helper()
	return n.sh("NVIDIAPREP_CONFIG=/etc/nvidiaprep/" + config + " nvidiaprep host-driver 2>&1")
}

func (n *hostNode) state() hostdriverstate.State {
	n.t.Helper()
	var s hostdriverstate.State
	out := n.must("cat /var/lib/nvidiaprep/host-driver.json")
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		n.t.Fatalf("state file: %v\n%s", err, out)
	}
	return s
}

// wantUntouched checks that the node is as the preparation left it.
func (n *hostNode) wantUntouched(what string) {
	n.t.Helper()
	pkgs := n.must(`dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' nvidia-driver-libs nvidia-kernel-dkms nvidiaprep`)
	wantAll(n.t, what+": packages", pkgs, "ii  nvidia-driver-libs", "ii  nvidia-kernel-dkms", "ii  nvidiaprep")
	wantAll(n.t, what+": dkms status", n.must("dkms status"), "nvidia/"+hdStale, "nvidia/"+hdOld)
	wantAll(n.t, what+": the earlier install", n.must("head -n1 /var/lib/nvidia/log; ls /usr/lib/x86_64-linux-gnu/"), "("+hdOld+")", "libnvidia-ml.so."+hdOld)
	if out, code := n.sh("ls -A /var/cache/nvidiaprep/runs /etc/modprobe.d/nvidiaprep-blacklist-nouveau.conf /run/reboot-required 2>&1"); code == 0 || strings.Contains(out, ".run") {
		n.t.Errorf("%s: the cache, the blacklist or the reboot marker changed:\n%s", what, out)
	}
	if out, _ := n.sh("dpkg-query -W linux-headers-" + n.release); strings.Contains(out, "1.0") {
		n.t.Errorf("%s: headers installed", what)
	}
}

// The unit on a node that has the distribution's NVIDIA packages, a stale
// DKMS module and an earlier .run install: three failures that must change
// nothing or roll back, then the unit itself installs, asks for a reboot,
// and after the reboot takes the fast path.
func TestHostDriverUnit(t *testing.T) {
	t0 := time.Now()
	n := newHostNode(t)
	n.standinModules()
	n.boot()
	t.Logf("node ready in %v", time.Since(t0).Round(time.Millisecond))

	// The node before: what an admin following several guides leaves.
	t1 := time.Now()
	n.must(`set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io dkms liblxc1
mkdir -p /lib/modules/$(uname -r)
sh /srv/www/NVIDIA-Linux-x86_64-` + hdOld + `.run --silent --dkms --skip-module-load
apt-get install -y -q --no-install-recommends nvidia-driver-libs nvidia-kernel-dkms nvidiaprep
mkdir -p /usr/src/nvidia-` + hdStale + `
printf 'PACKAGE_NAME="nvidia"\nPACKAGE_VERSION="` + hdStale + `"\nBUILT_MODULE_NAME[0]="nvidia"\nDEST_MODULE_LOCATION[0]="/kernel/drivers/video"\nAUTOINSTALL="yes"\n' >/usr/src/nvidia-` + hdStale + `/dkms.conf
dkms add -m nvidia -v ` + hdStale + `
dkms status`)
	n.wantUntouched("prepared node")
	t.Logf("node prepared (dkms, an earlier driver, distribution packages) in %v", time.Since(t1).Round(time.Millisecond))

	t.Run("sha256 mismatch", func(t *testing.T) {
		bad := strings.Repeat("0", 64)
		n.config("bad-sha.toml", hdRunURL, bad)
		out, code := n.hostDriver("bad-sha.toml")
		t.Logf("nvidiaprep host-driver:\n%s", out)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, "output", out, "step 1/6 (get the driver package) failed", "[driver] sha256 pins "+bad, hdRunURL, "nothing on the node was changed")
		if s := n.state(); s.Outcome != hostdriverstate.OutcomeFailed || s.Step != "fetch" {
			t.Errorf("state %+v", s)
		}
		n.wantUntouched("after a sha256 mismatch")
	})

	t.Run("unreachable URL", func(t *testing.T) {
		n.config("dead-url.toml", hdDeadURL, "")
		out, code := n.hostDriver("dead-url.toml")
		t.Logf("nvidiaprep host-driver:\n%s", out)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		wantAll(t, "output", out, "step 1/6 (get the driver package) failed", "downloading "+hdDeadURL+" failed 4 times", "connection refused", "nothing on the node was changed")
		n.wantUntouched("after an unreachable URL")
	})

	t.Run("failing installer", func(t *testing.T) {
		// Something in the way of the kernel sources: the installer has put
		// the libraries in place when it fails.
		n.must("touch /usr/src/nvidia-" + hdWant)
		out, code := n.hostDriver("nvidiaprep.toml")
		t.Logf("nvidiaprep host-driver:\n%s", out)
		if code != 1 {
			t.Errorf("exit %d, want 1", code)
		}
		// NVIDIA's installer goes on after what it cannot install and exits
		// 0: the unit finds the sources missing.
		wantAll(t, "output", out, "step 5/6 (run the NVIDIA installer) failed", "the installer exited 0, but /usr/src/nvidia-"+hdWant+"/dkms.conf is not there",
			"its log is /var/log/nvidia-installer.log", "the partial install was rolled back")
		wantAll(t, "installer log", n.must("cat /var/log/nvidia-installer.log"), "ERROR: Unable to create directory '/usr/src/nvidia-"+hdWant+"'")
		if out, code := n.sh("ls /var/lib/nvidia /usr/bin/nvidia-smi /usr/lib/x86_64-linux-gnu/libnvidia-ml.so." + hdWant + " /run/reboot-required 2>&1"); code == 0 || strings.Count(out, "No such file") != 4 {
			t.Errorf("half an install is left:\n%s", out)
		}
		if s := n.state(); s.Outcome != hostdriverstate.OutcomeFailed || s.Step != "install" || s.Log != hostdriver.InstallerLog || s.Partial {
			t.Errorf("state %+v", s)
		}
		// Steps 2 to 4 were done, and stay done.
		pkgs, _ := n.sh(`dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' nvidia-driver-libs nvidia-kernel-dkms nvidiaprep linux-headers-` + n.release)
		if strings.Contains(pkgs, "ii  nvidia-") || strings.Contains(pkgs, "rc  nvidia-") || !strings.Contains(pkgs, "ii  nvidiaprep") || !strings.Contains(pkgs, "ii  linux-headers-"+n.release) {
			t.Errorf("packages:\n%s", pkgs)
		}
		if out := n.must("dkms status"); strings.Contains(out, "nvidia") {
			t.Errorf("DKMS nvidia modules left:\n%s", out)
		}
		if out, _ := n.sh("ls /usr/lib/nvidia/alternate-install-present /usr/lib/x86_64-linux-gnu/libnvidia-ml.so." + hdOld + " 2>&1"); strings.Count(out, "No such file") != 2 {
			t.Errorf("left from the earlier drivers:\n%s", out)
		}
		wantAll(t, "blacklist", n.must("cat /etc/modprobe.d/nvidiaprep-blacklist-nouveau.conf"), "blacklist nouveau", "options nouveau modeset=0")
		n.must("rm /usr/src/nvidia-" + hdWant)
	})
	if t.Failed() {
		t.FailNow()
	}

	// The unit itself repairs the node.
	t2 := time.Now()
	if out, code := n.sh("systemctl start nvidiaprep-host-driver"); code != 0 {
		log, _ := n.sh("journalctl -u nvidiaprep-host-driver --no-pager | tail -n 40")
		t.Fatalf("systemctl start: exit %d: %s\n%s", code, out, log)
	}
	t.Logf("the unit installed in %v", time.Since(t2).Round(time.Millisecond))
	status, _ := n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
	t.Logf("systemctl status:\n%s", status)
	// Installed and loaded at once: NVIDIA's installer loads the module
	// it built, the unit nvidia-uvm and the nodes; no reboot.
	wantAll(t, "systemctl status", status, "active (exited)", `Status: "NVIDIA driver `+hdWant+` installed and loaded (was: none); device nodes `, "nvidia-uvm-tools", "nvidia-modeset", `ready: no reboot needed"`)
	journal := n.must("journalctl -u nvidiaprep-host-driver --no-pager -o cat")
	t.Logf("journal:\n%s", journal)
	wantAll(t, "journal", journal, "step 1/6 (fetch)", "step 2/6 (remove)", "step 3/6 (headers)", "step 4/6 (nouveau)", "step 5/6 (install)", "step 6/6 (load)")
	wantAll(t, "the install", n.must("head -n1 /var/lib/nvidia/log; readlink /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1; dkms status; ls /usr/src/nvidia-"+hdWant+"; cat /srv/standin/sys/module/nvidia/version"),
		"("+hdWant+")", "libnvidia-ml.so."+hdWant, "nvidia/"+hdWant+", "+n.release+", x86_64: installed", "dkms.conf", hdWant+"\n")
	wantAll(t, "the cache", n.must("ls /var/cache/nvidiaprep/runs /var/cache/nvidiaprep/drivers/"+hdWant), standin.RunFileName(hdWant), "nvidia-installer")
	if s := n.state(); s.Outcome != hostdriverstate.OutcomeCurrent || s.Installed != hdWant || s.Loaded != hdWant {
		t.Errorf("state %+v", s)
	}
	if out, code := n.sh("ls /run/reboot-required 2>&1"); code == 0 {
		t.Errorf("reboot required: %s", out)
	}

	// The next run takes the fast path and changes nothing.
	before := n.must("stat -c %Y.%i /var/lib/nvidia/log; md5sum /var/log/apt/history.log")
	out, code := n.hostDriver("nvidiaprep.toml")
	if code != 0 || strings.Contains(out, "step ") {
		t.Errorf("next run: exit %d:\n%s", code, out)
	}
	if after := n.must("stat -c %Y.%i /var/lib/nvidia/log; md5sum /var/log/apt/history.log"); after != before {
		t.Errorf("the next run changed the install")
	}

	// A reboot: the module loads at boot (the stand-in tree keeps it; its
	// device nodes are made again), and the unit runs at boot.
	n.must("systemctl enable nvidiaprep-host-driver")
	if _, err := n.ct.Stop("", nil); err != nil {
		t.Fatal(err)
	}
	for _, node := range []string{"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"} {
		os.Remove(filepath.Join(n.host.Dev, node))
	}
	n.boot()
	status, _ = n.sh("systemctl status --no-pager --lines=0 nvidiaprep-host-driver")
	t.Logf("systemctl status after the reboot:\n%s", status)
	wantAll(t, "systemctl status after the reboot", status, "active (exited)", `Status: "NVIDIA driver `+hdWant+` is loaded; device nodes nvidiactl nvidia-uvm nvidia-uvm-tools nvidia-modeset ready`)
	for name, mm := range map[string][2]uint32{"nvidiactl": {195, 255}, "nvidia-uvm": {uint32(n.uvm), 0}, "nvidia-uvm-tools": {uint32(n.uvm), 1}} {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(n.host.Dev, name), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != mm[0] || unix.Minor(st.Rdev) != mm[1] {
			t.Errorf("%s: %v, want a character device %d:%d", name, err, mm[0], mm[1])
		}
	}
	if s := n.state(); s.Outcome != hostdriverstate.OutcomeCurrent || s.Loaded != hdWant {
		t.Errorf("state %+v", s)
	}
	if out, code := n.sh("ls /run/reboot-required 2>&1"); code == 0 {
		t.Errorf("reboot still required: %s", out)
	}
	// The fast path by hand, timed inside the node: process start,
	// configuration, the checks, the report.
	out = n.must(`s=$(date +%s%N); NVIDIAPREP_CONFIG=/etc/nvidiaprep/nvidiaprep.toml nvidiaprep host-driver 2>&1; e=$(date +%s%N); echo "took $(( (e - s) / 1000 ))us"`)
	wantAll(t, "fast path", out, "NVIDIA driver "+hdWant+" is loaded")
	took := out[strings.LastIndex(out, "took ")+5 : len(out)-2]
	if us, err := strconv.Atoi(took); err != nil || us > 1_000_000 {
		t.Errorf("the fast path took %sus:\n%s", took, out)
	}
	t.Logf("fast path: %s", out[strings.LastIndex(out, "took "):])
	t.Logf("whole test: %v", time.Since(t0).Round(time.Millisecond))
}
