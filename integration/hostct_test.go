//go:build integration

package integration_test

import (
	"os"
	"testing"
	"time"

	"nvidiaprep/integration/aptrepo"
	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
)

// ctFile is a file written into a container before it starts.
type ctFile struct {
	data []byte
	mode os.FileMode
}

// writeCTFiles writes files (their paths relative to the container's root)
// into ct.
func writeCTFiles(t *testing.T, ct *lxctest.CT, files map[string]ctFile) {
	t.Helper()
	for path, f := range files {
		if err := ct.WriteFile(path, f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}
}

// repoMount is the LXC config line that binds the local apt repository
// repo read-only at /srv/repo in a container.
func repoMount(repo string) string {
	return "lxc.mount.entry = " + repo + " srv/repo none bind,ro,create=dir 0 0"
}

// repoSources is a container's apt sources.list: /srv/repo alone.
func repoSources() ctFile { return ctFile{[]byte(aptrepo.SourcesList("/srv/repo")), 0o644} }

// repoCT is newCT with the local apt repository repo at /srv/repo
// (repoMount, before o's own lines) as the container's only apt source.
func repoCT(t *testing.T, n *scenario.Node, vmid int, repo string, o lxctest.Options) *lxctest.CT {
	t.Helper()
	o.ExtraConfig = append([]string{repoMount(repo)}, o.ExtraConfig...)
	ct := newCT(t, n, vmid, o)
	writeCTFiles(t, ct, map[string]ctFile{"etc/apt/sources.list": repoSources()})
	return ct
}

// holdlockFile is the holdlock program (integration/cmd/holdlock), for
// writeCTFiles to put at usr/local/bin/holdlock in a container.
func holdlockFile(t *testing.T) ctFile {
	t.Helper()
	b, err := os.ReadFile(holdlock)
	if err != nil {
		t.Fatal(err)
	}
	return ctFile{b, 0o755}
}

// ctShell runs shell scripts in a test's container ct.
type ctShell struct {
	t  *testing.T
	ct *lxctest.CT
}

// sh runs script in the container: its output, trimmed, and exit status.
func (c *ctShell) sh(script string) (string, int) {
	c.t.Helper()
	return sh(c.t, c.ct, script)
}

// must is sh that fails the test unless script exits 0.
func (c *ctShell) must(script string) string {
	c.t.Helper()
	out, code := c.sh(script)
	if code != 0 {
		c.t.Fatalf("%s: exit %d:\n%s", script, code, out)
	}
	return out
}

// hostCT makes a systemd container that stands for a Proxmox host for the
// tests of nvidiaprep's host-side units (host driver, kernel guard): the
// local apt repository repo at /srv/repo as its only apt source, the given
// bind mounts ("<host dir> <path in the container>", created, writable
// unless the line says ro) and files. boot starts it and waits for systemd.
func hostCT(t *testing.T, bed *lxctest.Bed, repo string, mounts []string, files map[string]ctFile) (ct *lxctest.CT, boot func()) {
	t.Helper()
	extra := []string{repoMount(repo)}
	for _, m := range mounts {
		extra = append(extra, "lxc.mount.entry = "+m)
	}
	ct, err := bed.NewContainer(lxctest.VMID(t), lxctest.Options{ExtraConfig: extra})
	if err != nil {
		t.Fatal(err)
	}
	files["etc/apt/sources.list"] = repoSources()
	writeCTFiles(t, ct, files)
	return ct, func() {
		t.Helper()
		if _, err := ct.ProxmoxStart("", nil); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ct.Stop("", nil) })
		if err := ct.WaitSystemd(time.Minute); err != nil {
			t.Fatal(err)
		}
	}
}
