//go:build integration

package integration_test

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/runbin"
	"nvidiaprep/integration/scenario"
)

const (
	debOld = "0.1.0"          // debian/changelog's version: the previous build
	debNew = "0.1.0+upgrade1" // the same tree built as a newer version
)

// debTree copies the files of the work tree that git knows or does not
// ignore into a git work tree at dir, so that both builds see the same
// sources while the tree changes.
func debTree(t *testing.T, dir string) {
	t.Helper()
	root, err := scenario.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := `git -C "$1" ls-files -z --cached --others --exclude-standard | (cd "$1" && tar --null --no-recursion -T - -cf -) | tar -xf - -C "$2" &&
		cd "$2" && git init -q && git add -A &&
		git -c user.name=test -c user.email=test@invalid commit -q -m snapshot`
	if out, code := runbin.Exit(t, "bash", nil, "-c", script, "bash", root, dir); code != 0 {
		t.Fatalf("snapshot of the tree: exit %d\n%s", code, out)
	}
}

// buildDeb runs `make deb` in the tree src into out with version ("" for
// the changelog's) and returns the .deb, the one package make deb wrote
// there. make deb also runs lintian and fails on any error or warning.
func buildDeb(t *testing.T, src, out, version string) string {
	t.Helper()
	t0 := time.Now()
	r := runbin.Cmd{Path: "make", Args: []string{"deb", "DEB_OUT=" + out, "DEB_VERSION=" + version}, Dir: src, Limit: 15 * time.Minute}.Must(t)
	if r.Code != 0 {
		t.Fatalf("make deb %s: exit %d\n%s", version, r.Code, r.Output)
	}
	debs, _ := filepath.Glob(filepath.Join(out, "nvidiaprep_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("make deb %s: want one package in %s, have %v", version, out, debs)
	}
	t.Logf("make deb: %s in %v", filepath.Base(debs[0]), time.Since(t0).Round(time.Second))
	return debs[0]
}

// debFile extracts one file of a .deb and returns its sha256.
func debFile(t *testing.T, deb, path string) string {
	t.Helper()
	dir := t.TempDir()
	if out, code := runbin.Exit(t, "dpkg-deb", nil, "-x", deb, dir); code != 0 {
		t.Fatalf("dpkg-deb -x %s: exit %d\n%s", deb, code, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// The package, built three times (two versions, the first twice in two
// build directories), installed
// with apt in a systemd-booted Debian 12 container without network from a
// local repository (liblxc1 and what it needs, as the host's apt downloads
// them), upgraded, removed and purged.
func TestDebInstallUpgradeRemovePurge(t *testing.T) {
	bed := lxctest.NewTestBed(t)
	src := filepath.Join(bed.Dir, "tree")
	debTree(t, src)
	old := buildDeb(t, src, filepath.Join(bed.Dir, "build-a"), "")
	again := buildDeb(t, src, filepath.Join(bed.Dir, "build-c-in-another-directory"), "")
	newer := buildDeb(t, src, filepath.Join(bed.Dir, "build-b"), debNew)
	// Reproducible: the binaries do not depend on where they were built
	// (they name their version, so the same version is built twice).
	for _, f := range []string{"usr/bin/nvidiaprep", "usr/lib/nvidiaprep/nvidiaprep-hook"} {
		if a, b := debFile(t, old, f), debFile(t, again, f); a != b {
			t.Errorf("%s differs between the two builds: %s %s", f, a, b)
		}
	}

	debs, err := aptrepo.Fetch(bed.Cache, filepath.Join(bed.Cache, "rootfs-bookworm"), "liblxc1")
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(bed.Dir, "repo")
	if err := aptrepo.Build(repo, append(debs, old, newer)...); err != nil {
		t.Fatal(err)
	}
	ct, err := bed.NewContainer(lxctest.VMID(t), lxctest.Options{ExtraConfig: []string{repoMount(repo)}})
	if err != nil {
		t.Fatal(err)
	}
	writeCTFiles(t, ct, map[string]ctFile{"etc/apt/sources.list": repoSources()})
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ct.Stop("", nil) })
	if err := ct.WaitSystemd(time.Minute); err != nil {
		t.Fatal(err)
	}
	must := func(script string) string {
		t.Helper()
		out, code := sh(t, ct, script)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", script, code, out)
		}
		return out
	}
	// The recommended packages (dkms, build-essential, kernel headers) are
	// for the host driver unit's installs, which this test does not make.
	apt := "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confold --no-install-recommends "
	must("apt-get update -q")

	// Install.
	must(apt + "install nvidiaprep=" + debOld)
	wantPackage(t, ct, debOld)
	// The hook through the link, run as Proxmox runs a hookscript: it loads
	// the packaged configuration and lets a container without a GPU start.
	// Inside the node, 9501 is a guest of its own: only a name in its /var/lib/lxc.
	must("mkdir -p /var/lib/lxc/9501 && echo 'lxc.arch = amd64' > /var/lib/lxc/9501/config")
	if out := must("env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /var/lib/vz/snippets/nvidiaprep-hook 9501 pre-start 2>&1"); !strings.Contains(out, "no NVIDIA") {
		t.Errorf("pre-start through the link:\n%s", out)
	}
	if out, code := sh(t, ct, "nvidiaprep doctor"); code != 1 || !strings.Contains(out, "PROBLEM driver-not-loaded") {
		t.Errorf("doctor on a node without driver: exit %d\n%s", code, out)
	}
	// The admin records a container's choice (no pct here: it says what to run).
	if out := must("nvidiaprep enable 9501 --gpus 0 --required"); !strings.Contains(out, "pct set 9501 --hookscript local:snippets/nvidiaprep-hook") {
		t.Errorf("enable:\n%s", out)
	}
	// What the node's programs leave at run time, for purge to remove.
	must("mkdir -p /var/lib/nvidiaprep/containers /var/cache/nvidiaprep/runs && echo '{}' > /var/lib/nvidiaprep/containers/9501.json && touch /var/cache/nvidiaprep/runs/NVIDIA-Linux-x86_64-580.142.run")

	// Upgrade: the admin's edit of the conffile stays, so do the unit's
	// enablement and the link.
	must(apt + "install nvidiaprep=" + debNew)
	wantPackage(t, ct, debNew)
	conf := must("cat /etc/nvidiaprep/nvidiaprep.toml")
	if !strings.Contains(conf, "[containers.9501]\ngpus = [\"0\"]\nrequired = true\n") || !strings.Contains(conf, "# nvidiaprep: this node's configuration.") {
		t.Errorf("the configuration after the upgrade:\n%s", conf)
	}
	if out := must("find /etc/nvidiaprep -name '*.dpkg-*'"); out != "" {
		t.Errorf("dpkg left conffile copies: %s", out)
	}

	// Remove: the programs and the link go, the configuration stays.
	must(apt + "remove nvidiaprep")
	if out := must("dpkg-query -W -f '${db:Status-Abbrev}' nvidiaprep"); strings.TrimSpace(out) != "rc" {
		t.Errorf("after remove: status %q", out)
	}
	if out, code := sh(t, ct, "ls -d /usr/bin/nvidiaprep /usr/lib/nvidiaprep /var/lib/vz/snippets/nvidiaprep-hook /lib/systemd/system/nvidiaprep-host-driver.service 2>&1"); code == 0 || strings.Count(out, "No such file") != 4 {
		t.Errorf("after remove:\n%s", out)
	}
	must("test -f /etc/nvidiaprep/nvidiaprep.toml")
	// The kernel hooks and apt's Post-Invoke stay as conffiles and do
	// nothing without the program: apt still works.
	if out := must(apt + "install --reinstall liblxc1 2>&1"); strings.Contains(out, "nvidiaprep") {
		t.Errorf("apt after remove:\n%s", out)
	}

	// Purge: nothing of ours is left.
	must(apt + "purge nvidiaprep")
	if out := must("dpkg-query -W -f '${db:Status-Abbrev}' nvidiaprep 2>&1; true"); strings.Contains(out, "rc") || strings.Contains(out, "ii") {
		t.Errorf("after purge: status %q", out)
	}
	if out := must("find / -xdev \\( -path /proc -o -path /sys -o -path /srv -o -path /var/lib/apt/lists \\) -prune -o -name '*nvidiaprep*' -print"); out != "" {
		t.Errorf("purge left:\n%s", out)
	}
	if out, _ := sh(t, ct, "systemctl is-enabled nvidiaprep-host-driver.service 2>&1"); !strings.Contains(out, "not-found") && !strings.Contains(out, "No such file") {
		t.Errorf("the unit after purge: %s", out)
	}
}

// wantPackage checks an installed package: version, every unit enabled,
// the hook's link, the conffile, the man page, both programs running.
func wantPackage(t *testing.T, ct *lxctest.CT, version string) {
	t.Helper()
	root, _ := scenario.ModuleRoot()
	units, _ := filepath.Glob(filepath.Join(root, "packaging", "*.service"))
	if len(units) == 0 {
		t.Fatal("no unit in packaging/")
	}
	checks := map[string]string{
		"dpkg-query -W -f '${Version} ${db:Status-Abbrev}' nvidiaprep":                                 version + " ii",
		"readlink /var/lib/vz/snippets/nvidiaprep-hook":                                                "/usr/lib/nvidiaprep/nvidiaprep-hook",
		"dpkg-query -W -f '${Conffiles}' nvidiaprep | awk '{print $1}'":                                "/etc/apt/apt.conf.d/75nvidiaprep-kernel-check\n/etc/kernel/header_postinst.d/nvidiaprep\n/etc/kernel/postinst.d/nvidiaprep\n/etc/nvidiaprep/nvidiaprep.toml",
		"ls /usr/share/man/man8/nvidiaprep.8.gz":                                                       "/usr/share/man/man8/nvidiaprep.8.gz",
		"/var/lib/vz/snippets/nvidiaprep-hook --help | head -n1":                                       "usage: nvidiaprep-hook <vmid> <phase>",
		"nvidiaprep help | head -n1":                                                                   "usage: nvidiaprep <command> [arguments] [flags]",
		"ls /usr/share/man/man5/nvidiaprep.toml.5.gz /usr/share/man/man8/nvidiaprep-hook.8.gz | wc -l": "2",
		// The packaged completion, as bash loads it: vmids from /etc/pve/lxc.
		"mkdir -p /tmp/pve/lxc && touch /tmp/pve/lxc/4711.conf && _NVIDIAPREP_PVE=/tmp/pve bash -c 'source /usr/share/bash-completion/completions/nvidiaprep; COMP_WORDS=(nvidiaprep enable 47); COMP_CWORD=2; _nvidiaprep; echo ${COMPREPLY[*]}'": "4711",
		// The hook finds the worker program where post-start looks for it.
		"test -x /usr/bin/nvidiaprep && test ! -e /usr/lib/nvidiaprep/nvidiaprep && echo ok": "ok",
	}
	for _, u := range units {
		checks["systemctl is-enabled "+filepath.Base(u)] = "enabled"
	}
	for script, want := range checks {
		if out, _ := sh(t, ct, script); out != want {
			t.Errorf("%s: %q, want %q", script, out, want)
		}
	}
	// --version names the package's version and the commit it was built
	// from (debian/rules passes both; the copy it builds from has no .git).
	out, _ := sh(t, ct, "nvidiaprep --version")
	if !regexp.MustCompile(`^nvidiaprep ` + regexp.QuoteMeta(version) + ` \(commit [0-9a-f]{12}(\+dirty)?\)$`).MatchString(out) {
		t.Errorf("nvidiaprep --version: %q, want the version %s and a commit", out, version)
	}
}
