//go:build integration

package integration_test

import (
	"encoding/json"
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
	"nvidiaprep/nvidiaprep/status"
)

// clusterNode is one simulated node of a two-node cluster: its own stand-in
// host tree (driver, device nodes, cache, state) and node file, and the
// cluster file both nodes share, as /etc/pve/nvidiaprep.toml is shared.
type clusterNode struct {
	*scenario.Node
	cluster string
}

func (c clusterNode) env() []string {
	return []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIAPREP_CONFIG=" + c.Config, "NVIDIAPREP_CLUSTER_CONFIG=" + c.cluster}
}

// newClusterNode makes a node whose host tree is root, running version with
// its .run cached. The container's root file system lives in the one bed
// both nodes use, as shared storage would hold it.
func newClusterNode(t *testing.T, bed *lxctest.Bed, root, version, cluster string) clusterNode {
	t.Helper()
	d, err := scenario.TwoGPUs(version)
	if err != nil {
		t.Fatal(err)
	}
	h, err := standin.NewHost(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := h.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	n := &scenario.Node{Bed: bed, Host: h, Driver: d, Hook: hook, Config: filepath.Join(root, "nvidiaprep.toml")}
	if err := n.WriteConfig(""); err != nil {
		t.Fatal(err)
	}
	if err := n.CacheRun(version, standin.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	return clusterNode{Node: n, cluster: cluster}
}

// startOn starts the container on node n, as Proxmox there would, and waits
// for its provisioning.
func startOn(t *testing.T, n clusterNode, ct *lxctest.CT) (lxctest.Start, record.Provision) {
	t.Helper()
	since := time.Now()
	s, err := ct.ProxmoxStart(n.Hook, n.env())
	if err != nil {
		t.Fatal(err)
	}
	if !s.PostStart.OK() {
		t.Fatalf("post-start: %s", s.PostStart.Output)
	}
	p, err := n.WaitProvisioned(ct.VMID, since, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if p.Outcome != record.Installed {
		t.Fatalf("record %+v\n%s", p, n.WorkerLog(ct.VMID))
	}
	return s, p
}

// statusOn runs `nvidiaprep status --json` with node n's configuration.
func statusOn(t *testing.T, n clusterNode) status.JSON {
	t.Helper()
	res := runbin.Cmd{Path: admin(), Args: []string{"status", "--json"}, Env: n.env(), Split: true}.Must(t)
	if res.Code != 0 {
		t.Fatalf("nvidiaprep status: exit %d\n%s", res.Code, res.Output)
	}
	var r status.JSON
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("%v\n%s", err, res.Output)
	}
	return r
}

// Two nodes of a cluster with different drivers share the cluster file
// (which gives the container GPU 0, required) and each has its node file. The
// container starts on node A, moves to node B, then back: each start on the
// other node reprovisions it with that node's loaded driver, and each
// node's status shows its own driver and its own record of the container.
func TestClusterMigrationReprovisions(t *testing.T) {
	vmid := lxctest.VMID(t)
	id := strconv.Itoa(vmid)
	bed := lxctest.NewTestBed(t)
	cluster := filepath.Join(bed.Dir, "pve", "nvidiaprep.toml")
	if err := os.MkdirAll(filepath.Dir(cluster), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cluster, []byte("# cluster-wide, as /etc/pve/nvidiaprep.toml\n[containers."+id+"]\ngpus = [\"0\"]\nrequired = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := newClusterNode(t, bed, filepath.Join(bed.Dir, "node-a"), driverA, cluster)
	b := newClusterNode(t, bed, filepath.Join(bed.Dir, "node-b"), driverB, cluster)
	ct := newCT(t, a.Node, vmid, lxctest.Options{})
	t.Cleanup(func() { ct.Stop("", nil) })

	for i, step := range []struct {
		node    clusterNode
		version string
		before  string // the libraries the container has when it arrives
	}{{a, driverA, ""}, {b, driverB, driverA}, {a, driverA, driverB}} {
		s, p := startOn(t, step.node, ct)
		if p.Version != step.version {
			t.Errorf("start %d: provisioned %s, want %s", i+1, p.Version, step.version)
		}
		if step.before != "" && !strings.Contains(s.PostStart.Output, "it has "+step.before+", the host runs "+step.version) {
			t.Errorf("start %d: post-start does not say why it reprovisions:\n%s", i+1, s.PostStart.Output)
		}
		// The cluster file's choice holds on every node: GPU 0 only.
		if !strings.Contains(s.PreStart.Output, "GPUs 0 (0000:01:00.0)") {
			t.Errorf("start %d: pre-start gave:\n%s", i+1, s.PreStart.Output)
		}
		wantInstalled(t, ct, step.version)
		wantOpen(t, ct, "/dev/nvidia0", "No such device or address")
		wantOpen(t, ct, "/dev/nvidia1", "No such file")
		if _, err := ct.Stop(step.node.Hook, step.node.env()); err != nil {
			t.Fatal(err)
		}
	}

	for _, n := range []struct {
		node    clusterNode
		version string
	}{{a, driverA}, {b, driverB}} {
		r := statusOn(t, n.node)
		if r.Node.Driver.Loaded == nil || *r.Node.Driver.Loaded != n.version {
			t.Errorf("status on the %s node: loaded %v", n.version, r.Node.Driver.Loaded)
		}
		if len(r.Containers) != 1 || r.Containers[0].VMID != vmid || r.Containers[0].LastProvisioning == nil ||
			*r.Containers[0].LastProvisioning.Version != n.version || r.Containers[0].LastProvisioning.Outcome != record.Installed ||
			len(r.Containers[0].GPUs) != 1 || r.Containers[0].GPUs[0] != "0" || !r.Containers[0].Required {
			t.Errorf("status on the %s node: containers %+v", n.version, r.Containers)
		}
	}
}
