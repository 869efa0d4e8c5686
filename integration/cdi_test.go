//go:build integration

package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/nvidiaprep/record"
)

// nestingLines are what Proxmox's features: nesting=1 adds to a
// container's LXC config: AppArmor's nesting profile (without AppArmor in
// the kernel, as here, LXC ignores it) and the uncovered proc and sys
// mounts below /dev/.lxc that let the container mount procfs and sysfs for
// its own containers.
var nestingLines = []string{
	"lxc.apparmor.allow_nesting = 1",
	"lxc.mount.entry = proc dev/.lxc/proc proc create=dir,optional 0 0",
	"lxc.mount.entry = sys dev/.lxc/sys sysfs create=dir,optional 0 0",
}

// loadProbe is a program for the nested container: it loads
// libnvidia-ml.so.1 and libcuda.so.1 by name, as CUDA programs do, and
// prints the stand-in's version string from each.
const loadProbe = `#include <dlfcn.h>
#include <stdio.h>
int main(void) {
	const char *libs[] = {"libnvidia-ml.so.1", "libcuda.so.1"};
	for (int i = 0; i < 2; i++) {
		void *h = dlopen(libs[i], RTLD_NOW);
		if (!h) { printf("%s: %s\n", libs[i], dlerror()); return 1; }
		const char *v = dlsym(h, "nvidiaprep_standin_version");
		printf("%s %s\n", libs[i], v ? v : "?");
	}
	return 0;
}
`

// podmanRepo is a local apt repository with Debian 12's podman and runc,
// and the probe built on this machine (Debian 12's glibc, as the
// containers').
func podmanRepo(t *testing.T, n *scenario.Node) (repo, probe string) {
	t.Helper()
	debs, err := aptrepo.Fetch(n.Bed.Cache, filepath.Join(n.Bed.Cache, "rootfs-bookworm"), "podman", "runc")
	if err != nil {
		t.Fatal(err)
	}
	repo = filepath.Join(n.Bed.Dir, "repo")
	if err := aptrepo.Build(repo, debs...); err != nil {
		t.Fatal(err)
	}
	probe = filepath.Join(repo, "nvidiaprep-load-probe")
	buildLoadProbe(t, probe)
	return repo, probe
}

// buildLoadProbe compiles loadProbe on this machine (Debian 12's glibc,
// which the containers' glibc runs) into out.
func buildLoadProbe(t *testing.T, out string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "probe.c")
	if err := os.WriteFile(src, []byte(loadProbe), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg, code := runbin.Exit(t, "gcc", nil, "-O2", "-o", out, src, "-ldl"); code != 0 {
		t.Fatalf("gcc: exit %d\n%s", code, msg)
	}
}

// imageScript makes, inside the container, an image from a local tarball:
// its own shell, utilities and C library, without any NVIDIA file and
// without an ld cache (so that only the loader's default directories can
// find the spec's libraries), plus the probe.
const imageScript = `set -e
rm -rf /root/img && mkdir -p /root/img/usr/lib/x86_64-linux-gnu /root/img/usr/bin /root/img/dev /root/img/proc /root/img/sys /root/img/etc /root/img/tmp
cd /root/img
ln -s usr/bin bin; ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s usr/bin sbin
cp -a /usr/lib64 usr/
for f in sh dash cat sed head grep ls mknod sort tr wc stat id; do cp -a /usr/bin/$f usr/bin/; done
cd /usr/lib/x86_64-linux-gnu
for f in ld-linux-x86-64.so* libc.so* libm.so* libcap.so* libdl.so* libpcre2-8.so* libselinux.so* libacl.so* libattr.so*; do [ -e "$f" ] && cp -a "$f" /root/img/usr/lib/x86_64-linux-gnu/; done
cp /srv/repo/nvidiaprep-load-probe /root/img/usr/bin/
echo 'root:x:0:0:root:/root:/bin/sh' > /root/img/etc/passwd
echo 'root:x:0:' > /root/img/etc/group
tar -C /root/img -cf /root/img.tar .
$IMPORT /root/img.tar localhost/gpu-probe:latest >/dev/null
! find /root/img -name '*nvidia-ml*' -o -name 'libcuda*' -o -name nvidia-smi -o -name ld.so.cache | grep .`

// podmanConfig configures podman in a test container: the vfs storage
// driver (no fuse-overlayfs needed), cgroupfs, events to a file, and runc:
// Debian 12's crun raises RLIMIT_MEMLOCK before it loads the device cgroup's
// BPF program, which a root without CAP_SYS_RESOURCE may not (this test
// machine has none to give); runc's BPF library does not where the kernel
// accounts BPF memory to the cgroup (5.11 and later).
const podmanConfig = `rm -rf /var/lib/containers/storage /run/containers/storage
printf '[storage]\ndriver = "vfs"\nrunroot = "/run/containers/storage"\ngraphroot = "/var/lib/containers/storage"\n' > /etc/containers/storage.conf
printf '[containers]\npids_limit = 0\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' > /etc/containers/containers.conf`

// podmanOpts are podman's options beyond its configuration.
const podmanOpts = ""

// runOpts keep the nested container's resource limits at the container's
// own hard limits: podman would raise RLIMIT_NOFILE, RLIMIT_NPROC and
// RLIMIT_MEMLOCK, which a root without CAP_SYS_RESOURCE (LXC drops it) may
// not.
const runOpts = `$(awk '/^Max open files/ {print "--ulimit nofile=" $5 ":" $5} /^Max processes/ {print "--ulimit nproc=" $4 ":" $4} /^Max locked memory/ {print "--ulimit memlock=" $5 ":" $5}' /proc/self/limits | sed 's/unlimited/-1/g')`

// Debian 12's podman inside a real container (nesting on), privileged and
// unprivileged, runs an image made from a local tarball with
// --device nvidia.com/gpu=0 from nvidiaprep's CDI spec: the container's
// GPU (the host's GPU 1, "GPU 0" inside) opens as far as the driver,
// the host's GPU 0 is absent, a node made with mknod in a nested
// --privileged container is refused, and the stand-in nvidia-smi and
// libraries of the host's driver are there and load by name. After a host
// driver upgrade, the nested container sees the new libraries through the
// rewritten spec.
func TestPodmanInsideUsesTheCDISpec(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unpriv bool
	}{{"privileged", false}, {"unprivileged", true}} {
		t.Run(tc.name, func(t *testing.T) {
			vmid := lxctest.VMID(t)
			n := provisionNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"1\"]\n", vmid))
			repo, _ := podmanRepo(t, n)
			ct := repoCT(t, n, vmid, repo, lxctest.Options{Unprivileged: tc.unpriv, ExtraConfig: nestingLines})
			prepare(t, ct, "apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends podman runc >/dev/null && "+podmanConfig)

			_, p, _ := startProvisioned(t, n, ct)
			if p.Outcome != record.Installed {
				t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
			}
			spec, _ := sh(t, ct, "cat /etc/cdi/nvidia.yaml")
			if !strings.Contains(spec, "path: /dev/nvidia1") || strings.Contains(spec, "/dev/nvidia0") {
				t.Errorf("the spec does not name exactly the container's GPU node (host GPU 1):\n%s", spec)
			}
			if out, code := sh(t, ct, "IMPORT='podman "+podmanOpts+" import'; "+imageScript); code != 0 {
				t.Fatalf("making the image: %s", out)
			}
			run := func(args, script string) (string, int) {
				return sh(t, ct, "podman "+podmanOpts+" run --rm --network none "+runOpts+" "+args+" localhost/gpu-probe:latest /bin/sh -c '"+script+"' 2>&1")
			}
			out, code := run("--device nvidia.com/gpu=0", `
cat /dev/nvidia1 2>&1 | head -n1; ls /dev/nvidia0 2>&1; ls /dev/nvidiactl /dev/nvidia-uvm
nvidiaprep-load-probe; nvidia-smi --version | head -n1`)
			t.Logf("nested container (exit %d):\n%s", code, out)
			for _, want := range []string{
				"No such device or address",                // /dev/nvidia1: through every cgroup to a missing driver
				"/dev/nvidia0': No such file or directory", // another GPU's node is absent
				"/dev/nvidiactl", "/dev/nvidia-uvm",
				"libnvidia-ml.so.1 " + driverA, "libcuda.so.1 " + driverA, // loaded by name, without an ld cache
				"couldn't communicate with the NVIDIA driver", // the stand-in nvidia-smi ran, and reached the node
			} {
				if !strings.Contains(out, want) {
					t.Errorf("nested container: no %q in:\n%s", want, out)
				}
			}
			if strings.Contains(out, "No such file or directory") && !strings.Contains(out, "nvidia0") {
				t.Errorf("a file of the spec is missing in the nested container:\n%s", out)
			}
			// By UUID and "all" too.
			if out, code := run("--device nvidia.com/gpu=GPU-1d2a0c41-7c39-4a3b-9d35-000000000001", "ls /dev/nvidia1"); code != 0 {
				t.Errorf("by UUID: exit %d: %s", code, out)
			}
			// Only LXC's rules stand: podman --privileged keeps CAP_MKNOD.
			out, _ = run("--privileged --device nvidia.com/gpu=all", "mknod /tmp/gpu0 c 195 0 && cat /tmp/gpu0")
			if !strings.Contains(out, "Operation not permitted") {
				t.Errorf("a node of the host's GPU 0 made in a nested --privileged container: want it refused, got:\n%s", out)
			}

			// The host moves to driver B: the spec names B's files, and
			// the nested container loads B's libraries.
			if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
				t.Fatal(err)
			}
			switchTo(t, n, driverB)
			if _, p, _ := startProvisioned(t, n, ct); p.Outcome != record.Installed || p.Version != driverB {
				t.Fatalf("after the upgrade: record %+v\n%s", p, n.WorkerLog(vmid))
			}
			out, code = run("--device nvidia.com/gpu=0", "nvidiaprep-load-probe")
			if code != 0 || !strings.Contains(out, "libcuda.so.1 "+driverB) || strings.Contains(out, driverA) {
				t.Errorf("after the upgrade the nested container loads (exit %d):\n%s", code, out)
			}
		})
	}
}

// waitSh runs script in the container until it exits 0, for at most timeout.
func waitSh(t *testing.T, ct *lxctest.CT, script string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		out, code := sh(t, ct, script)
		if code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("CT %d: %s still fails after %v: %s", ct.VMID, script, timeout, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// The spec follows what each start gives: a restart with nothing changed
// starts no worker and leaves the file as it is; more GPUs rewrite it; a
// spec a user made with nvidia-ctk is kept aside (a name CDI does not read)
// and replaced; gpus = [] removes nvidiaprep's spec.
func TestCDISpecFollowsWhatTheContainerIsGiven(t *testing.T) {
	vmid := lxctest.VMID(t)
	table := func(gpus string) string { return fmt.Sprintf("[containers.%d]\ngpus = %s\n", vmid, gpus) }
	n := provisionNode(t, table(`["1"]`))
	ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: true})
	startProvisioned(t, n, ct)
	stamp := func() string { out, _ := sh(t, ct, "stat -c '%i %Z' /etc/cdi/nvidia.yaml"); return out }
	before := stamp()
	restart := func() lxctest.Start {
		t.Helper()
		if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
			t.Fatal(err)
		}
		return start(t, n, ct)
	}

	s := restart()
	if strings.Contains(s.PostStart.Output, "background") {
		t.Errorf("a restart with nothing changed started a worker:\n%s", s.PostStart.Output)
	}
	if after := stamp(); after != before {
		t.Errorf("an unchanged spec was written again: %s, then %s", before, after)
	}

	if err := n.WriteConfig(table(`["0", "1"]`)); err != nil {
		t.Fatal(err)
	}
	s = restart()
	if !strings.Contains(s.PostStart.Output, "CDI spec") {
		t.Errorf("post-start does not say the spec is out of date:\n%s", s.PostStart.Output)
	}
	spec := waitSh(t, ct, "grep -q 'name: \"1\"' /etc/cdi/nvidia.yaml && cat /etc/cdi/nvidia.yaml", time.Minute)
	for _, want := range []string{"path: /dev/nvidia0", "path: /dev/nvidia1", "name: GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", "name: all"} {
		if !strings.Contains(spec, want) {
			t.Errorf("the spec for GPUs 0 and 1 lacks %q:\n%s", want, spec)
		}
	}

	userSpec := "cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: \"0\"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n"
	if out, code := sh(t, ct, "cat > /etc/cdi/nvidia.yaml <<'EOF'\n"+userSpec+"EOF"); code != 0 {
		t.Fatal(out)
	}
	restart()
	waitSh(t, ct, "head -n1 /etc/cdi/nvidia.yaml | grep -q '^# nvidiaprep'", time.Minute)
	if out, _ := sh(t, ct, "cat /etc/cdi/nvidia.yaml.before-nvidiaprep"); out != strings.TrimSpace(userSpec) {
		t.Errorf("the user's spec was not kept aside: %q", out)
	}

	if err := n.WriteConfig(table(`[]`)); err != nil {
		t.Fatal(err)
	}
	restart()
	waitSh(t, ct, "! test -e /etc/cdi/nvidia.yaml", time.Minute)
	if _, code := sh(t, ct, "test -f /etc/cdi/nvidia.yaml.before-nvidiaprep"); code != 0 {
		t.Error("the user's spec kept aside was removed with nvidiaprep's")
	}
	// Nothing of nvidiaprep's left: the next start has nothing to do.
	s = restart()
	if strings.Contains(s.PostStart.Output, "background") {
		t.Errorf("a container without GPU and without a spec started a worker:\n%s", s.PostStart.Output)
	}
}

// Debian 13's docker.io (26.1, CDI behind "features": {"cdi": true}; its
// client is the docker-cli package there) inside
// a real Debian 13 container (nesting on, unprivileged, as Proxmox makes new
// containers) runs an image from a local tarball with --device
// nvidia.com/gpu=0 from nvidiaprep's spec: the container's GPU opens as far
// as the driver, the other is absent, the libraries load by name.
func TestDockerOnDebian13UsesTheCDISpec(t *testing.T) {
	vmid := lxctest.VMID(t)
	n := provisionNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"1\"]\n", vmid))
	debs, err := aptrepo.FetchFrom(n.Bed.Cache, filepath.Join(n.Bed.Cache, "rootfs-trixie"), aptrepo.Source{Suite: "trixie", Components: []string{"main"}}, "docker.io", "docker-cli")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(n.Bed.Dir, "repo")
	if err := aptrepo.Build(repo, debs...); err != nil {
		t.Fatal(err)
	}
	buildLoadProbe(t, filepath.Join(repo, "nvidiaprep-load-probe"))
	ct := repoCT(t, n, vmid, repo, lxctest.Options{Root: "rootfs-trixie", Unprivileged: true, ExtraConfig: nestingLines})
	if err := ct.WriteFile("etc/docker/daemon.json", []byte(`{"features": {"cdi": true}, "storage-driver": "vfs", "iptables": false, "ip6tables": false, "bridge": "none"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prepare(t, ct, "rm -f /etc/apt/sources.list.d/*; apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io docker-cli >/dev/null")
	if _, p, _ := startProvisioned(t, n, ct); p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(vmid))
	}
	if out, code := sh(t, ct, "for i in $(seq 150); do docker info >/dev/null 2>&1 && exit 0; sleep 0.4; done; docker info 2>&1 | tail -n 20; exit 1"); code != 0 {
		t.Fatalf("dockerd does not answer in the container:\n%s", out)
	}
	if out, code := sh(t, ct, "IMPORT='docker import'; "+imageScript); code != 0 {
		t.Fatalf("making the image: %s", out)
	}
	out, code := sh(t, ct, `docker run --rm --network none --device nvidia.com/gpu=0 localhost/gpu-probe:latest /bin/sh -c 'cat /dev/nvidia1 2>&1 | head -n1; ls /dev/nvidia0 2>&1; nvidiaprep-load-probe; nvidia-smi' 2>&1`)
	t.Logf("docker run (exit %d):\n%s", code, out)
	for _, want := range []string{
		"No such device or address", "/dev/nvidia0': No such file or directory",
		"libnvidia-ml.so.1 " + driverA, "libcuda.so.1 " + driverA, "couldn't communicate with the NVIDIA driver",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("docker run: no %q", want)
		}
	}
}

// toolkitConfig is the part of NVIDIA container toolkit's default
// config.toml that matters here: no-cgroups commented out.
const toolkitConfig = `disable-require = false

[nvidia-container-cli]
environment = []
ldconfig = "@/sbin/ldconfig"
load-kmods = true
#no-cgroups = false

[nvidia-container-runtime]
log-level = "info"
`

// Where NVIDIA's container toolkit is installed anyway, it keeps working:
// in an unprivileged container its config gets no-cgroups = true, and at
// every start (the container's /dev is new) /dev/char/<major>:<minor>
// links name the given nodes, as `nvidia-ctk system
// create-dev-char-symlinks` makes them. A privileged container's config
// is left as it is.
func TestContainerToolkitKeepsWorking(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unpriv bool
	}{{"unprivileged", true}, {"privileged", false}} {
		t.Run(tc.name, func(t *testing.T) {
			vmid := lxctest.VMID(t)
			n := provisionNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"1\"]\n", vmid))
			ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: tc.unpriv})
			if err := ct.WriteFile("etc/nvidia-container-runtime/config.toml", []byte(toolkitConfig), 0o644); err != nil {
				t.Fatal(err)
			}
			startProvisioned(t, n, ct)
			check := func(when string) {
				t.Helper()
				out := waitSh(t, ct, "readlink /dev/char/195:1 && readlink /dev/char/195:255", time.Minute)
				if out != "../nvidia1\n../nvidiactl" {
					t.Errorf("%s: /dev/char links: %q", when, out)
				}
				if out, _ := sh(t, ct, "ls /dev/char | grep '^195:0$'"); out != "" {
					t.Errorf("%s: a /dev/char link for the host's GPU 0", when)
				}
				conf, _ := sh(t, ct, "cat /etc/nvidia-container-runtime/config.toml")
				has := strings.Contains(conf, "\nno-cgroups = true\n")
				if has != tc.unpriv {
					t.Errorf("%s: no-cgroups = true is there: %v, want %v:\n%s", when, has, tc.unpriv, conf)
				}
			}
			check("after the install")
			if _, err := ct.Stop(n.Hook, n.Env()); err != nil {
				t.Fatal(err)
			}
			s := start(t, n, ct)
			if !strings.Contains(s.PostStart.Output, "/dev/char") {
				t.Errorf("post-start does not start the worker for the toolkit's links:\n%s", s.PostStart.Output)
			}
			check("after a restart")
		})
	}
}

// A container given the host's GPU 0 gets that GPU's DRM nodes (card1 and
// renderD129: the kernel numbered the cards the other way round) and not
// GPU 1's; they open as far as the driver, as mode 0666 copies, and a
// privileged container's own mknod of GPU 1's render node is refused.
func TestRenderNodesOfItsGPU(t *testing.T) {
	for _, tc := range []struct {
		name   string
		unpriv bool
	}{{"unprivileged", true}, {"privileged", false}} {
		t.Run(tc.name, func(t *testing.T) {
			vmid := lxctest.VMID(t)
			n := newNode(t, fmt.Sprintf("[containers.%d]\ngpus = [\"0\"]\ninstall = false\n", vmid))
			if err := n.Host.AddDRM("0000:41:00.0", 0); err != nil {
				t.Fatal(err)
			}
			if err := n.Host.AddDRM("0000:01:00.0", 1); err != nil {
				t.Fatal(err)
			}
			ct := newCT(t, n, vmid, lxctest.Options{Unprivileged: tc.unpriv})
			if s := start(t, n, ct); !s.PreStart.OK() {
				t.Fatalf("pre-start: %s", s.PreStart.Output)
			}
			wantOpen(t, ct, "/dev/dri/renderD129", "No such device or address")
			wantOpen(t, ct, "/dev/dri/card1", "No such device or address")
			if out, _ := sh(t, ct, "ls /dev/dri; stat -c %a /dev/dri/renderD129"); out != "card1\nrenderD129\n666" {
				t.Errorf("/dev/dri: %q, want card1, renderD129, mode 666", out)
			}
			if !tc.unpriv {
				if out, _ := sh(t, ct, "mknod /tmp/r c 226 128 && cat /tmp/r 2>&1"); !strings.Contains(out, "Operation not permitted") {
					t.Errorf("GPU 1's render node made with mknod: %q, want it refused", out)
				}
			}
		})
	}
}
