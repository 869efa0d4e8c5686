//go:build integration

package integration_test

import (
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/record"
)

// recordingKmod is an admin's kmod as far as the test can tell: modprobe,
// rmmod, lsmod and depmod that record their command line in /root/modcalls.
const recordingKmod = `for u in modprobe rmmod lsmod depmod; do
	printf '#!/bin/sh\necho "${0##*/} $*" >> /root/modcalls\n' > /usr/local/sbin/$u && chmod 755 /usr/local/sbin/$u
done`

// A minbase container (no kmod) with Debian's libgl1 and libegl1, real
// packages: it is provisioned, upgraded and refused as NVIDIA's installer
// behaves (see integration/standin/README.md):
//   - the install and the upgrade's uninstall run without kmod and leave
//     nothing of the placeholders nvidiaprep gives the installer;
//   - the distribution's libGL/libEGL stay (dpkg --verify is clean);
//   - the uninstall touches no module (--skip-module-unload --skip-depmod);
//   - an uninstall that removes nothing (/var/lib/nvidia not 0700) and an
//     install that exits 0 with files missing are failures, named.
func TestRealInstallerBehaviourInAMinbaseContainer(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, "")
	debs, err := aptrepo.Fetch(n.Bed.Cache, filepath.Join(n.Bed.Cache, "rootfs-bookworm"), "libgl1", "libegl1")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(n.Bed.Dir, "repo")
	if err := aptrepo.Build(repo, debs...); err != nil {
		t.Fatal(err)
	}
	ct := repoCT(t, n, vmid, repo, lxctest.Options{})
	prepare(t, ct, "command -v modprobe && exit 1; apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends libgl1 libegl1 >/dev/null && dpkg --verify")

	clean := func(when string) {
		t.Helper()
		if out, _ := sh(t, ct, "dpkg --verify; echo rc=$?"); out != "rc=0" {
			t.Errorf("%s: dpkg --verify:\n%s", when, out)
		}
		if out, _ := sh(t, ct, "ls -A /var/lib/nvidiaprep; command -v modprobe rmmod lsmod depmod; cat /root/modcalls 2>/dev/null"); out != "aptreg.control\ninstalled" {
			t.Errorf("%s: left in the container (placeholders, module calls):\n%s", when, out)
		}
	}
	_, p, _ := startProvisioned(t, n, ct)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	wantInstalled(t, ct, driverA)
	clean("after the install")
	if out, _ := sh(t, ct, "ls /lib/firmware/nvidia/"+driverA); !strings.Contains(out, "gsp_ga10x.bin") {
		t.Errorf("firmware: %s", out)
	}

	// An admin's kmod now; the host moves to B: A is uninstalled first,
	// explicitly, touching no module.
	if _, code := sh(t, ct, recordingKmod); code != 0 {
		t.Fatal("kmod stand-ins")
	}
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	switchTo(t, n, driverB)
	_, p, _ = startProvisioned(t, n, ct)
	if p.Outcome != record.Installed || p.Version != driverB {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	wantInstalled(t, ct, driverB)
	if out, _ := sh(t, ct, "cat /var/log/nvidia-uninstall.log"); !strings.Contains(out, "--skip-module-unload") || !strings.Contains(out, "Uninstallation of existing driver: "+standin.RunDescription+" ("+driverA+") is complete.") {
		t.Errorf("the uninstall of A:\n%s", out)
	}
	if out, _ := sh(t, ct, "rm /usr/local/sbin/modprobe /usr/local/sbin/rmmod /usr/local/sbin/lsmod /usr/local/sbin/depmod; cat /root/modcalls 2>/dev/null"); out != "" {
		t.Errorf("module commands ran in the container:\n%s", out)
	}
	clean("after the upgrade")

	// /var/lib/nvidia not 0700: the uninstaller removes nothing, exits 0.
	sh(t, ct, "chmod 755 /var/lib/nvidia")
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	switchTo(t, n, driverA)
	_, p, _ = startProvisioned(t, n, ct)
	if p.Outcome != record.Failed || !strings.Contains(p.Error, "the earlier NVIDIA driver "+driverB+" is still installed after its uninstaller ran") || !strings.Contains(p.Error, "chmod 700 /var/lib/nvidia") {
		t.Errorf("uninstall that removed nothing: %+v", p)
	}

	// A file that cannot be installed: the installer exits 0, the worker fails.
	sh(t, ct, "chmod 700 /var/lib/nvidia; echo NVIDIAPREP_STANDIN_FAIL_FILE=libnvidia-encode.so."+driverA+" > "+standin.StandinControls)
	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	_, p, _ = startProvisioned(t, n, ct)
	if p.Outcome != record.Failed || !strings.Contains(p.Error, "incomplete although nvidia-installer exited 0: ") || !strings.Contains(p.Error, libDir+"/libnvidia-encode.so."+driverA) {
		t.Errorf("partial install: %+v", p)
	}
	if out, _ := sh(t, ct, "dpkg --verify; echo rc=$?"); out != "rc=0" {
		t.Errorf("dpkg --verify at the end:\n%s", out)
	}
}

// switchTo loads version on the node, with its .run in the cache.
func switchTo(t *testing.T, n *scenario.Node, version string) {
	t.Helper()
	if err := n.SwitchDriver(version); err != nil {
		t.Fatal(err)
	}
	if err := n.CacheRun(version, standin.RunOptions{}); err != nil {
		t.Fatal(err)
	}
}
