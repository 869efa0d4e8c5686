//go:build integration

package integration_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/record"
)

const (
	driverA = "580.142"
	driverB = "580.159.04"
	libDir  = "/usr/lib/x86_64-linux-gnu"
)

// provisionNode is a node running driver A with A's .run in its cache.
func provisionNode(t *testing.T, tables string) *scenario.Node {
	t.Helper()
	n := newNode(t, tables)
	if err := n.SwitchDriver(driverA); err != nil {
		t.Fatal(err)
	}
	if err := n.CacheRun(driverA, standin.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	return n
}

// startProvisioned starts ct and waits for its provisioning to finish.
func startProvisioned(t *testing.T, n *scenario.Node, ct *lxctest.CT) (lxctest.Start, record.Provision, time.Time) {
	t.Helper()
	since := time.Now()
	s := start(t, n, ct)
	returned := time.Now()
	if !s.PostStart.OK() {
		t.Fatalf("post-start: %s", s.PostStart.Output)
	}
	p, err := n.WaitProvisioned(ct.VMID, since, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return s, p, returned
}

// wantInstalled checks that the container has exactly version's libraries.
func wantInstalled(t *testing.T, ct *lxctest.CT, version string) {
	t.Helper()
	if out, _ := sh(t, ct, "readlink "+libDir+"/libnvidia-ml.so.1"); out != "libnvidia-ml.so."+version {
		t.Errorf("libnvidia-ml.so.1 -> %q, want libnvidia-ml.so.%s", out, version)
	}
	if out, _ := sh(t, ct, "head -n1 /var/lib/nvidia/log"); !strings.Contains(out, "("+version+")") {
		t.Errorf("/var/lib/nvidia/log line 1: %q, want version %s", out, version)
	}
	if out, _ := sh(t, ct, "cat /var/lib/nvidiaprep/installed"); !strings.Contains(out, "version="+version) {
		t.Errorf("in-container record: %q", out)
	}
	if out, code := sh(t, ct, "test -e /var/lib/nvidiaprep/provisioning"); code == 0 {
		t.Errorf("the in-progress marker is left: %s", out)
	}
}

// A new container on a host with driver A ends with exactly A's libraries
// and record; post-start returned before the install began; a restart with
// matching versions starts no worker.
func TestNewContainerGetsTheHostDriver(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	n := provisionNode(t, "[containers."+id+"]\ngpus = [\"0\"]\n")
	ct := newCT(t, n, vmid, lxctest.Options{})
	s, p, returned := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed || p.Version != driverA {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	if !strings.Contains(s.PostStart.Output, "in the background") {
		t.Errorf("post-start does not say it provisions in the background:\n%s", s.PostStart.Output)
	}
	// The library was written after post-start had returned.
	out, _ := sh(t, ct, "stat -c %.9Y "+libDir+"/libnvidia-ml.so."+driverA)
	if written := parseUnix(t, out); !written.After(returned) {
		t.Errorf("library written at %v, before post-start returned at %v: post-start waited for the install", written, returned)
	}
	wantInstalled(t, ct, driverA)
	// No copy of the .run or of the tree in the container: the installer ran
	// from the read-only mount.
	if out, _ := sh(t, ct, "find / -xdev \\( -name '*.run' -o -name nvidia-installer -o -name .manifest \\) -not -path '/dev/.nvidiaprep/drivers/*' -not -path /usr/bin/nvidia-installer"); out != "" {
		t.Errorf("a copy of the driver package in the container: %s", out)
	}
	if out, code := sh(t, ct, "touch /dev/.nvidiaprep/drivers/x"); code == 0 {
		t.Errorf("the driver cache is writable from the container: %s", out)
	}

	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	s = start(t, n, ct)
	if strings.Contains(s.PostStart.Output, "background") {
		t.Errorf("a restart with matching versions started a worker:\n%s", s.PostStart.Output)
	}
	if again, _, _ := record.Load(n.StateDir(), vmid); again.Started != p.Started {
		t.Errorf("the record changed on a current restart: %+v", again)
	}
}

// The host moves to driver B: the next start leaves only B's files. The
// container is unprivileged: the install runs as its mapped root.
func TestHostDriverUpgradeReplacesTheLibraries(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: true})
	startProvisioned(t, n, ct)
	wantInstalled(t, ct, driverA)
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	if err := n.SwitchDriver(driverB); err != nil {
		t.Fatal(err)
	}
	if err := n.CacheRun(driverB, standin.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	s, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed || p.Version != driverB {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	if !strings.Contains(s.PostStart.Output, "it has "+driverA+", the host runs "+driverB) {
		t.Errorf("post-start does not say why:\n%s", s.PostStart.Output)
	}
	wantInstalled(t, ct, driverB)
	if out, _ := sh(t, ct, "find / -xdev -name '*"+driverA+"*' -not -path '/dev/.nvidiaprep/drivers/*'"); out != "" {
		t.Errorf("files of driver A remain:\n%s", out)
	}
}

// prepare runs a script in the container started without the hook, then
// stops it: the container's state before the scenario.
func prepare(t *testing.T, ct *lxctest.CT, script string) {
	t.Helper()
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	if err := ct.WaitSystemd(time.Minute); err != nil {
		t.Fatal(err)
	}
	if out, code := sh(t, ct, script); code != 0 {
		t.Fatalf("%s: %s", script, out)
	}
	if _, err := ct.Stop("", nil); err != nil {
		t.Fatal(err)
	}
}

// parseUnix reads stat's "%.9Y" (seconds.nanoseconds).
func parseUnix(t *testing.T, s string) time.Time {
	t.Helper()
	sec, frac, _ := strings.Cut(strings.TrimSpace(s), ".")
	secs, err1 := strconv.ParseInt(sec, 10, 64)
	nanos, err2 := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("bad time %q", s)
	}
	return time.Unix(secs, nanos)
}

// A container whose dpkg lock is held (as by apt at boot) for 20 s waits,
// says who holds it, then installs.
func TestWaitsForTheDpkgLock(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	unit := "[Unit]\nDescription=stand-in for apt-daily holding the dpkg lock\n[Service]\nType=notify\nExecStart=/usr/local/bin/holdlock /var/lib/dpkg/lock-frontend 20\n[Install]\nWantedBy=multi-user.target\n"
	writeCTFiles(t, ct, map[string]ctFile{
		"usr/local/bin/holdlock":              holdlockFile(t),
		"etc/systemd/system/holdlock.service": {[]byte(unit), 0o644},
	})
	prepare(t, ct, "systemctl enable holdlock.service")
	_, p, returned := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	log := n.WorkerLog(vmid)
	if !strings.Contains(log, "waiting for /var/lib/dpkg/lock-frontend, held by /usr/local/bin/holdlock") {
		t.Errorf("the worker log does not say who holds the lock:\n%s", log)
	}
	if p.Finished.Sub(returned) < 15*time.Second {
		t.Errorf("installed %v after the start, while the lock was held for 20 s", p.Finished.Sub(returned))
	}
	wantInstalled(t, ct, driverA)
}

// A container with the distribution's NVIDIA packages (Debian's and
// Ubuntu's names, with the alternate-install marker) is cleaned, then
// installed.
func TestDistributionPackagesArePurged(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	dir := t.TempDir()
	debs := map[string]map[string]string{
		"nvidia-driver-libs": {
			"usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1": "Debian's libnvidia-ml\n",
			"usr/lib/nvidia/alternate-install-present":   "",
		},
		"libnvidia-compute-550": {"usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15": "Ubuntu's libcuda\n"},
		"nvidia-utils-550":      {"usr/bin/nvidia-smi": "#!/bin/sh\necho Ubuntu nvidia-smi\n"},
	}
	var names []string
	for name, files := range debs {
		deb, err := scenario.BuildDeb(dir, name, "1.0", files)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(deb)
		if err := ct.WriteFile("root/"+name+".deb", b, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, "/root/"+name+".deb")
	}
	// Installed by hand first, as an admin following a distribution guide would.
	prepare(t, ct, "dpkg -i "+strings.Join(names, " "))
	_, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	// nvidiaprep's own registration (nvidiaprep-nvidia-driver, no files) is
	// the one NVIDIA package left.
	if out, _ := sh(t, ct, "dpkg-query -W -f '${db:Status-Abbrev} ${Package}\\n' | grep -i nvidia | grep -v ' nvidiaprep-nvidia-driver$'"); strings.Contains(out, "ii ") || strings.Contains(out, "rc ") {
		t.Errorf("distribution NVIDIA packages remain:\n%s", out)
	}
	if out, code := sh(t, ct, "ls /usr/lib/nvidia/alternate-install-present"); code == 0 {
		t.Errorf("the alternate-install marker remains: %s", out)
	}
	if out, _ := sh(t, ct, "nvidia-smi --version; ls "+libDir+"/libcuda.so.550.54.15"); strings.Contains(out, "Ubuntu") || !strings.Contains(out, "No such file") {
		t.Errorf("distribution files remain: %s", out)
	}
	wantInstalled(t, ct, driverA)
}

// A container whose dpkg-query fails once nvidiaprep's registration is in
// (its dpkg database broken between the two listings): whether the
// distribution's driver packages are still there is unknown, so the
// install stops with an error that says so and what to do, and no .run
// install goes in beside packages that may be there.
func TestPackageListingThatFailsAfterTheRegistrationStopsTheInstall(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{})
	prepare(t, ct, `dpkg-divert --quiet --local --rename --add /usr/bin/dpkg-query &&
cat >/usr/bin/dpkg-query <<'EOS'
#!/bin/sh
if [ -e /var/lib/dpkg/info/nvidiaprep-nvidia-driver.list ]; then
	echo "dpkg-query: error: parsing file '/var/lib/dpkg/status' near line 1" >&2
	exit 2
fi
exec /usr/bin/dpkg-query.distrib "$@"
EOS
chmod 755 /usr/bin/dpkg-query`)
	_, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Failed || !strings.Contains(p.Error, "listing its packages failed (dpkg-query exit 2)") ||
		!strings.Contains(p.Error, "the driver was not installed: fix its dpkg database (pct exec "+strconv.Itoa(vmid)+" -- dpkg --audit)") {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	if out, code := sh(t, ct, "ls /var/lib/nvidia/log"); code == 0 {
		t.Errorf("the .run was installed all the same: %s", out)
	}
}

// A container whose init is not systemd is provisioned without waiting for it.
func TestContainerWithoutSystemd(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	ct := newCT(t, n, vmid, lxctest.Options{Init: lxctest.ShLoop})
	_, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	if log := n.WorkerLog(vmid); !strings.Contains(log, "init is not systemd") {
		t.Errorf("the worker log does not say it did not wait for systemd:\n%s", log)
	}
	wantInstalled(t, ct, driverA)
}

// A container whose /var and /var/lib are mounts of its own, as Proxmox
// mount points make them (mp0: ...,mp=/var): the host reads its records and
// locks across them, and it gets a correct install.
func TestContainerWithItsOwnVarMountsIsProvisioned(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	lower, err := n.Bed.LowerDir("", false)
	if err != nil {
		t.Fatal(err)
	}
	volume := filepath.Join(t.TempDir(), "var")
	if out, code := runbin.Exit(t, "cp", nil, "-a", filepath.Join(lower, "var"), volume); code != 0 {
		t.Fatalf("copying /var: exit %d\n%s", code, out)
	}
	ct := newCT(t, n, vmid, lxctest.Options{ExtraConfig: []string{
		"lxc.mount.entry = " + volume + " var none bind,create=dir 0 0",
		"lxc.mount.entry = " + volume + "/lib var/lib none bind,create=dir 0 0",
	}})
	_, p, _ := startProvisioned(t, n, ct)
	if out, _ := sh(t, ct, "awk '$5 == \"/var\" || $5 == \"/var/lib\" {print $5}' /proc/self/mountinfo"); out != "/var\n/var/lib" {
		t.Fatalf("the container's mounts at /var and /var/lib: %q", out)
	}
	if p.Outcome != record.Installed || p.Version != driverA {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(ct.VMID))
	}
	wantInstalled(t, ct, driverA)
	// The next start reads the record across the mounts: current, no worker.
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	if s := start(t, n, ct); strings.Contains(s.PostStart.Output, "background") {
		t.Errorf("a restart with matching versions started a worker:\n%s", s.PostStart.Output)
	}
}
