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
	"nvidiaprep/nvidiaprep/nvpkgs"
	"nvidiaprep/nvidiaprep/record"
)

// bookwormNonFree is Debian 12 with the archive areas that hold NVIDIA's
// driver and the CUDA toolkit.
var bookwormNonFree = aptrepo.Source{Suite: "bookworm", Components: []string{"main", "contrib", "non-free"}}

// apt inside a provisioned container knows the driver, against Debian's
// real package indexes (bookworm main contrib non-free, bind-mounted as
// the container's own lists):
//   - `apt-get -s install nvidia-cuda-toolkit` resolves with no driver
//     package (libcuda1, libnvidia-ml1, libnvcuvid1, nvidia-installer-cleanup
//     ... would come with it otherwise), and `apt-get install libcuda1`
//     installs nothing;
//   - Debian's real libcudart11.0 (Recommends libcuda1 (>= 520)) and
//     libnvidia-ml-dev (Depends libnvidia-ml1 (>= 520)) install for real,
//     with the libraries still the host's, and `apt-get check` is clean;
//   - after a host driver upgrade they are still installed, and the
//     registration names the new version.
func TestAptKnowsTheDriver(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"0\"]\n", vmid))
	rootfs := filepath.Join(n.Bed.Cache, "rootfs-bookworm")
	debs, err := aptrepo.FetchFrom(n.Bed.Cache, rootfs, bookwormNonFree, "libcudart11.0", "libnvidia-ml-dev")
	if err != nil {
		t.Fatal(err)
	}
	debDir := filepath.Join(n.Bed.Dir, "debs")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range debs {
		if b := filepath.Base(d); strings.HasPrefix(b, "libcudart11.0_") || strings.HasPrefix(b, "libnvidia-ml-dev_") {
			if err := os.Link(d, filepath.Join(debDir, b)); err != nil {
				t.Fatal(err)
			}
		}
	}
	lists, sources := bookwormNonFree.ListsDir(n.Bed.Cache)
	ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: true, ExtraConfig: []string{
		"lxc.mount.entry = " + lists + " var/lib/apt/lists none bind,ro,create=dir 0 0",
		"lxc.mount.entry = " + debDir + " srv/debs none bind,ro,create=dir 0 0",
	}})
	src, err := os.ReadFile(sources)
	if err != nil {
		t.Fatal(err)
	}
	if err := ct.WriteFile("etc/apt/sources.list", src, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, p, _ := startProvisioned(t, n, ct); p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	// Registering wrote no apt cache (tens of MiB) into the container: the
	// worker reads the lists without building it.
	for _, f := range []string{"pkgcache.bin", "srcpkgcache.bin"} {
		if _, err := os.Stat(filepath.Join(ct.WritableLayer(), "var/cache/apt", f)); !os.IsNotExist(err) {
			t.Errorf("provisioning left /var/cache/apt/%s in the container (%v)", f, err)
		}
	}
	out, code := sh(t, ct, "apt-get -s install nvidia-cuda-toolkit 2>&1")
	if code != 0 {
		t.Fatalf("apt-get -s install nvidia-cuda-toolkit: exit %d\n%s", code, out)
	}
	var inst []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Inst" {
			inst = append(inst, f[1])
		}
	}
	if len(inst) < 20 || !contains(inst, "nvidia-cuda-dev") {
		t.Fatalf("the toolkit does not resolve: %d packages\n%s", len(inst), out)
	}
	if drv := nvpkgs.DriverNames(inst); len(drv) > 0 {
		pin, _ := sh(t, ct, "cat /etc/apt/preferences.d/nvidiaprep")
		t.Errorf("installing nvidia-cuda-toolkit brings driver packages: %v\nthe pin:\n%s\nworker log:\n%s", drv, pin, n.WorkerLog(vmid))
	}
	// Asked for by name, libcuda1 is what is installed (apt answers with
	// the registration), never Debian's.
	if out, _ := sh(t, ct, "apt-get -s install libcuda1 libnvidia-ml1 nvidia-smi 2>&1"); strings.Contains(out, "Inst ") {
		t.Errorf("apt would install the distribution's driver:\n%s", out)
	}
	// Driver packages only the lists know (the registration does not
	// provide them) have no candidate: the pin names what the container's
	// lists hold, read from its compressed lists.
	for _, pkg := range []string{"nvidia-driver", "nvidia-kernel-dkms"} {
		if out, _ := sh(t, ct, "apt-cache policy "+pkg+" 2>&1"); !strings.Contains(out, "Candidate: (none)") {
			t.Errorf("apt has a candidate for %s:\n%s", pkg, out)
		}
	}

	if out, code := sh(t, ct, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /srv/debs/*.deb 2>&1 && apt-get check 2>&1"); code != 0 {
		t.Fatalf("installing libcudart11.0 and libnvidia-ml-dev: exit %d\n%s", code, out)
	}
	installed := func(version string) {
		t.Helper()
		out, _ := sh(t, ct, "dpkg-query -W -f '${Package} ${Status}\\n' libcudart11.0 libnvidia-ml-dev nvidiaprep-nvidia-driver libcuda1 libnvidia-ml1 2>&1")
		for _, want := range []string{"libcudart11.0 install ok installed", "libnvidia-ml-dev install ok installed", "nvidiaprep-nvidia-driver install ok installed"} {
			if !strings.Contains(out, want) {
				t.Errorf("driver %s: no %q in\n%s", version, want, out)
			}
		}
		if strings.Contains(out, "libcuda1 install") || strings.Contains(out, "libnvidia-ml1 install") {
			t.Errorf("driver %s: a distribution driver package is installed:\n%s", version, out)
		}
		wantInstalled(t, ct, version)
		if out, _ := sh(t, ct, "dpkg-query -W -f '${Version}' nvidiaprep-nvidia-driver"); out != version {
			t.Errorf("the registration says %q, want %s", out, version)
		}
		if out, code := sh(t, ct, "apt-get check 2>&1"); code != 0 {
			t.Errorf("apt-get check: %s", out)
		}
	}
	installed(driverA)

	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	switchTo(t, n, driverB)
	if _, p, _ := startProvisioned(t, n, ct); p.Outcome != record.Installed || p.Version != driverB {
		t.Fatalf("after the upgrade: record %+v\n%s", p, n.WorkerLog(vmid))
	}
	installed(driverB)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
