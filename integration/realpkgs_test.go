//go:build integration

package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/record"
)

// nonFree is Debian 12's archive with the components NVIDIA's packages are in.
var nonFree = aptrepo.Source{Suite: "bookworm", Components: []string{"main", "contrib", "non-free", "non-free-firmware"}}

// realNvidiaRepo is a local apt repository of Debian 12's real NVIDIA
// packages pkgs (and what they need on a bookworm minbase), for a
// container at /srv/repo.
func realNvidiaRepo(t *testing.T, bed *lxctest.Bed, pkgs ...string) string {
	t.Helper()
	debs, err := aptrepo.FetchFrom(bed.Cache, filepath.Join(bed.Cache, "rootfs-bookworm"), nonFree, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(t.TempDir(), "repo")
	if err := aptrepo.Build(repo, debs...); err != nil {
		t.Fatal(err)
	}
	return repo
}

// A container set up as the Proxmox community scripts do it (Debian's
// libcuda1, libnvidia-ml1 and nvidia-smi from apt: with them
// nvidia-installer-cleanup and its alternate-install-present marker,
// nvidia-alternative's alternatives, glx-alternative-nvidia and
// glx-diversions' diversions) is converted to the host's exact version,
// and apt's state is consistent afterwards.
func TestCommunityScriptPackagesConverted(t *testing.T) {
	n := provisionNode(t, "")
	repo := realNvidiaRepo(t, n.Bed, "libcuda1", "libnvidia-ml1", "nvidia-smi")
	ct := repoCT(t, n, lxctest.VMID(t), repo, lxctest.Options{})
	prepare(t, ct, `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q libcuda1 libnvidia-ml1 nvidia-smi
test -e /usr/lib/nvidia/alternate-install-present
update-alternatives --query nvidia >/dev/null
dpkg-divert --list | grep -q glx-diversions
dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' | grep -E 'nvidia|cuda|glx' >/root/before`)

	_, p, _ := startProvisioned(t, n, ct)
	before, _ := sh(t, ct, "cat /root/before")
	t.Logf("before:\n%s", before)
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(ct.VMID))
	}
	wantInstalled(t, ct, driverA)
	// Only nvidiaprep's registration, which tells apt the driver is there.
	if out, _ := sh(t, ct, `dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | grep -E 'nvidia|libcuda|glx-alternative-nvidia|glx-diversions'`); strings.TrimSpace(out) != "ii  "+aptreg.Package {
		t.Errorf("distribution NVIDIA packages left, or no registration (want only %s):\n%s", aptreg.Package, out)
	}
	for _, c := range []struct{ what, script string }{
		{"apt-get check", "apt-get check -q 2>&1"},
		{"dpkg --audit", `out=$(dpkg --audit 2>&1); echo "$out"; test -z "$out"`},
		{"no marker", "! test -e /usr/lib/nvidia/alternate-install-present"},
		{"no nvidia alternative", "! update-alternatives --query nvidia 2>&1"},
		{"no glx diversions", "! dpkg-divert --list | grep -E 'glx|nvidia'"},
		{"nvidia-smi is the driver's", "nvidia-smi --version 2>&1 | grep -v 535"},
	} {
		if out, code := sh(t, ct, c.script); code != 0 {
			t.Errorf("%s: exit %d:\n%s", c.what, code, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(n.StateDir(), "containers", fmt.Sprintf("%d.json", ct.VMID))); err == nil {
		t.Logf("record: %s", b)
	}
}

// The node with Debian 12's own NVIDIA driver (nvidia-kernel-dkms, libcuda1,
// libnvidia-ml1, nvidia-smi from non-free, with their alternatives, the
// alternate-install-present marker and the GLX diversions): the unit
// purges it before the .run install, and apt's state is consistent after.
func TestHostDriverPurgesDebiansDriver(t *testing.T) {
	pkgs := []string{"nvidia-kernel-dkms", "libcuda1", "libnvidia-ml1", "nvidia-smi"}
	extra, err := aptrepo.FetchFrom(lxctest.DefaultCache, filepath.Join(lxctest.DefaultCache, "rootfs-bookworm"), nonFree, pkgs...)
	if err != nil {
		t.Fatal(err)
	}
	n := newHostNodeWith(t, extra, hdWant)
	n.standinModules()
	n.boot()
	n.must(`set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io dkms liblxc1 linux-headers-` + n.release + `
mkdir -p /lib/modules/` + n.release + `
apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-unsafe-io ` + strings.Join(pkgs, " ") + `
test -e /usr/lib/nvidia/alternate-install-present
update-alternatives --query nvidia >/dev/null
dpkg-divert --list | grep -q glx-diversions`)
	before, _ := n.sh(`dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Version}\n' | grep -E 'nvidia|cuda|glx'; dkms status`)
	t.Logf("before:\n%s", before)

	code, status, journal := n.unit()
	t.Logf("journal:\n%s", journal)
	if code != 0 {
		t.Fatalf("the unit failed:\n%s", status)
	}
	wantAll(t, "status", status, "NVIDIA driver "+hdWant+" installed and loaded")
	if out, _ := n.sh(`dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n' | grep -E 'nvidia|libcuda|glx-alternative-nvidia|glx-diversions'`); strings.TrimSpace(out) != "" {
		t.Errorf("distribution NVIDIA packages left:\n%s", out)
	}
	for _, c := range []struct{ what, script string }{
		{"apt-get check", "apt-get check -q 2>&1"},
		{"dpkg --audit", `out=$(dpkg --audit 2>&1); echo "$out"; test -z "$out"`},
		{"no marker", "! test -e /usr/lib/nvidia/alternate-install-present"},
		{"no nvidia alternative", "! update-alternatives --query nvidia 2>&1"},
		{"no glx diversions", "! dpkg-divert --list | grep -E 'glx|nvidia'"},
		{"DKMS has only the .run's module", "dkms status | grep -v 'nvidia/" + hdWant + ", " + n.release + ", x86_64: installed' | grep . && exit 1; dkms status | grep -q ."},
	} {
		if out, code := n.sh(c.script); code != 0 {
			t.Errorf("%s: exit %d:\n%s", c.what, code, out)
		}
	}
}
