package prestart

import (
	"os"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/nvdev"
)

// gid and mode reach the container's copies of its nodes, through the id
// map of an unprivileged container; the host's nodes keep theirs.
func TestNodeGIDAndModeGoToTheCopiesOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown of the copies needs root")
	}
	f := setup(t, true)
	unpriv := generated + "lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n"
	if err := os.WriteFile(f.host.LXCConfig, []byte(unpriv), 0o640); err != nil {
		t.Fatal(err)
	}
	gid := uint32(44)
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1"), NodeGID: &gid, NodeMode: 0o660}, f.logger()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nvidia1", "nvidiactl"} {
		cp, err := f.host.Nodes.Stat(nvdev.CopiesDir(f.sh.Dev, 101) + "/" + name)
		if err != nil || cp.GID != 100044 || cp.Perm != 0o660 {
			t.Errorf("the copy of %s: gid %d mode %o (%v); want 100044 (44 inside) and 0660", name, cp.GID, cp.Perm, err)
		}
		host, err := f.host.Nodes.Stat(f.sh.Dev + "/" + name)
		if err != nil || host.GID != 0 || host.Perm != 0o666 {
			t.Errorf("the host's %s changed: gid %d mode %o", name, host.GID, host.Perm)
		}
	}

	// A group the id map does not cover is refused for a container that
	// requires its GPU, naming the key.
	outside := uint32(70000)
	_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1"), Required: true, NodeGID: &outside}, f.logger())
	if err == nil || !strings.Contains(err.Error(), "gid 70000") {
		t.Errorf("an unmapped gid: %v", err)
	}
}
