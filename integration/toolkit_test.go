//go:build integration && toolkit

package integration_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/nvidiaprep/nvpkgs"
	"nvidiaprep/nvidiaprep/record"
)

// Debian 12's full CUDA toolkit (nvidia-cuda-toolkit: about 65 packages,
// 1.5 GiB to download, 5 GB installed) installs for real in a provisioned
// container from a local repository that also holds Debian's driver
// packages (libcuda1, libnvidia-ml1, nvidia-installer-cleanup, ...): apt
// takes none of them, nvcc runs, apt-get check is clean, and after a host
// driver upgrade the toolkit is still installed. `make toolkit` runs it (a
// tier of its own: the download and the install take minutes).
func TestFullCUDAToolkit(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"0\"]\n", vmid))
	debs, err := aptrepo.FetchFrom(n.Bed.Cache, filepath.Join(n.Bed.Cache, "rootfs-bookworm"), bookwormNonFree, "nvidia-cuda-toolkit")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(n.Bed.Dir, "repo")
	if err := aptrepo.Build(repo, debs...); err != nil {
		t.Fatal(err)
	}
	ct := repoCT(t, n, vmid, repo, lxctest.Options{})
	prepare(t, ct, "apt-get update -q >/dev/null")
	if _, p, _ := startProvisioned(t, n, ct); p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	out, code := sh(t, ct, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nvidia-cuda-toolkit 2>&1 | grep -E '^(Setting up|E:)'; apt-get check 2>&1 && nvcc --version")
	if code != 0 || !strings.Contains(out, "Cuda compilation tools") {
		t.Fatalf("the toolkit: exit %d\n%s", code, out)
	}
	var set []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && f[0] == "Setting" {
			set = append(set, strings.SplitN(f[2], ":", 2)[0])
		}
	}
	t.Logf("%d packages set up", len(set))
	if drv := nvpkgs.DriverNames(set); len(drv) > 0 {
		t.Errorf("driver packages installed with the toolkit: %v", drv)
	}
	wantInstalled(t, ct, driverA)

	if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
		t.Fatal(err)
	}
	switchTo(t, n, driverB)
	if _, p, _ := startProvisioned(t, n, ct); p.Outcome != record.Installed || p.Version != driverB {
		t.Fatalf("after the upgrade: record %+v\n%s", p, n.WorkerLog(vmid))
	}
	if out, code := sh(t, ct, "dpkg-query -W -f '${Status}' nvidia-cuda-toolkit nvidia-profiler nvidia-opencl-dev libnvidia-ml-dev && apt-get check 2>&1 && nvcc --version | tail -n1"); code != 0 || strings.Count(out, "install ok installed") != 4 {
		t.Errorf("after the upgrade the toolkit: exit %d\n%s", code, out)
	}
	wantInstalled(t, ct, driverB)
}
