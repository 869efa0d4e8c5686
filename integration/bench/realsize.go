package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/driverrun"
)

// The provisioning rows install a real-sized driver: the stand-in .run
// with RealSized installs every library of a real 580 driver at its real
// size (690 MB, incompressible; standin.RealLibraries580), so that what is
// timed is what a real install costs: the .run read and extracted, the
// files written into the container. Beside each, the same install by hand
// in the same run: the admin copies the .run into the container, starts
// it and runs the .run there, as NVIDIA documents it.

const realVersion = "580.142"

// kmodStandIns: NVIDIA's installer refuses to run without kmod's
// utilities, which a minbase container lacks; by hand, as by nvidiaprep,
// stand-ins that do nothing go first on the PATH.
const kmodStandIns = `mkdir -p /root/kmod && for u in modprobe rmmod lsmod depmod; do printf '#!/bin/sh\nexit 1\n' > /root/kmod/$u && chmod 755 /root/kmod/$u; done; PATH=/root/kmod:$PATH; `

// byHandScript installs the copied .run as the admin would.
const byHandScript = kmodStandIns + "sh /root/NVIDIA.run --silent --no-kernel-module --no-check-for-alternate-installs --no-install-libglvnd --skip-module-unload"

// realNode is a stand-in node whose cache holds a real-sized .run.
func (e env) realNode(name string) (*scenario.Node, error) {
	d, err := scenario.TwoGPUs(realVersion)
	if err != nil {
		return nil, err
	}
	bed, err := lxctest.NewBed(filepath.Join(e.dir, name))
	if err != nil {
		return nil, err
	}
	n, err := scenario.NewNode(bed, e.hook, d)
	if err != nil {
		bed.Close()
		return nil, err
	}
	if err := n.CacheRun(realVersion, standin.RunOptions{RealSized: true}); err != nil {
		bed.Close()
		return nil, err
	}
	return n, nil
}

// bootOnce boots a new container once without the hook and stops it, so
// that what it writes at every boot (its journal, above all) is there
// before bytes are counted.
func bootOnce(ct *lxctest.CT) error {
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		return err
	}
	if err := ct.WaitSystemd(time.Minute); err != nil {
		return err
	}
	_, err := ct.Stop("", nil)
	return err
}

// byHand copies the .run into the stopped container, starts it and runs
// the .run inside; it returns the bytes its writable layer grew by (the
// .run and the installed files; the .run's extraction to /tmp is written
// and removed again by the .run itself).
func byHand(ct *lxctest.CT, run []byte) (int64, error) {
	before, err := dirBytes(ct.WritableLayer())
	if err != nil {
		return 0, err
	}
	if err := ct.WriteFile("root/NVIDIA.run", run, 0o755); err != nil {
		return 0, err
	}
	if _, err := ct.ProxmoxStart("", nil); err != nil {
		return 0, err
	}
	if err := ct.WaitSystemd(time.Minute); err != nil {
		return 0, err
	}
	if out, code, err := scenario.Sh(ct, byHandScript); err != nil || code != 0 {
		return 0, fmt.Errorf("CT %d: installing by hand: exit %d %v: %s", ct.VMID, code, err, out)
	}
	after, err := dirBytes(ct.WritableLayer())
	return after - before, err
}

// extractTime times the node's one extraction of the .run (what the first
// worker does before its install) on a copy of the cache.
func (e env) extractTime(n *scenario.Node) (time.Duration, error) {
	dir := filepath.Join(e.dir, "extract")
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o755); err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	name := standin.RunFileName(realVersion)
	if err := os.Link(filepath.Join(n.Host.Root, "cache/runs", name), filepath.Join(dir, "runs", name)); err != nil {
		return 0, err
	}
	t0 := time.Now()
	_, err := driverrun.Cache{Dir: dir}.Extract(context.Background(), realVersion, "")
	return time.Since(t0), err
}

// realProvisioning: one container, start → verified install, and the bytes
// written, against the same by hand.
func (e env) realProvisioning() ([]row, error) {
	n, err := e.realNode("real")
	if err != nil {
		return nil, err
	}
	defer n.Bed.Close()
	extract, err := e.extractTime(n)
	if err != nil {
		return nil, err
	}
	ct, err := n.Bed.NewContainer(9902, lxctest.Options{})
	if err != nil {
		return nil, err
	}
	if err := bootOnce(ct); err != nil {
		return nil, err
	}
	before, err := dirBytes(ct.WritableLayer())
	if err != nil {
		return nil, err
	}
	since := time.Now()
	s, err := ct.ProxmoxStart(n.Hook, n.Env())
	if err != nil {
		return nil, err
	}
	if err := ct.WaitSystemd(time.Minute); err != nil {
		return nil, err
	}
	booted := time.Since(since)
	p, err := n.WaitProvisioned(9902, since, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	ours := p.Finished.Sub(since)
	after, err := dirBytes(ct.WritableLayer())
	if err != nil {
		return nil, err
	}
	installed, _, _ := scenario.Sh(ct, `sed -n 's/^1: //p' /var/lib/nvidia/log | xargs du -cb | tail -n1 | cut -f1`)
	if _, err := ct.Stop("", nil); err != nil {
		return nil, err
	}

	// Every later container: the node's tree is there.
	next, err := n.Bed.NewContainer(9904, lxctest.Options{})
	if err != nil {
		return nil, err
	}
	if err := bootOnce(next); err != nil {
		return nil, err
	}
	since2 := time.Now()
	if _, err := next.ProxmoxStart(n.Hook, n.Env()); err != nil {
		return nil, err
	}
	p2, err := n.WaitProvisioned(9904, since2, 10*time.Minute)
	if err != nil {
		return nil, err
	}
	later := p2.Finished.Sub(since2)
	if _, err := next.Stop("", nil); err != nil {
		return nil, err
	}

	// By hand, in a twin container booted once the same way.
	twin, err := n.Bed.NewContainer(9903, lxctest.Options{})
	if err != nil {
		return nil, err
	}
	if err := bootOnce(twin); err != nil {
		return nil, err
	}
	run, err := os.ReadFile(filepath.Join(n.Host.Root, "cache/runs", standin.RunFileName(realVersion)))
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	handBytes, err := byHand(twin, run)
	if err != nil {
		return nil, err
	}
	hand := time.Since(t0)
	defer twin.Stop("", nil)
	return []row{
		{fmt.Sprintf("provisioning, real-sized 580 driver (%d MiB installed, %d MiB .run): container start → verified install", kibToMiB(installed), len(run)>>20),
			fmt.Sprintf("%s (%.2f× by hand): hooks and lxc-start %s, booted at %s; the node's one extraction %s; install and verify the rest", ms(ours), float64(ours)/float64(hand), ms(s.PreStart.Duration+s.PostStart.Duration+s.LXCStart), ms(booted), ms(extract)),
			fmt.Sprintf("by hand (copy the .run in, start, run it): %s", ms(hand)), "≤ 1.1× by hand"},
		{"provisioning, real-sized, every later container (the node's tree already extracted): container start → verified install",
			fmt.Sprintf("%s (%.2f× by hand)", ms(later), float64(later)/float64(hand)),
			fmt.Sprintf("by hand: as above, %s (each container extracts its own copy)", ms(hand)), "≤ 1.1× by hand"},
		{"bytes written into the container's disk by provisioning (real-sized)", fmt.Sprintf("%d MiB (installed files: %d MiB)", (after-before)>>20, kibToMiB(installed)), fmt.Sprintf("by hand: %d MiB left (the .run and the installed files), plus the .run's extraction to /tmp (%d MiB, removed by the .run)", handBytes>>20, kibToMiB(installed)), "nothing beyond the installed files"},
	}, nil
}

// realStorm: count containers started back to back as pve-guests does at
// boot, first start → all verified (max_concurrent 2), against the same by
// hand two at a time.
func (e env) realStorm(count int) ([]row, error) {
	n, err := e.realNode("realstorm")
	if err != nil {
		return nil, err
	}
	defer n.Bed.Close()
	var ours, twins []*lxctest.CT
	for i := 0; i < count; i++ {
		for _, l := range []*[]*lxctest.CT{&ours, &twins} {
			vmid := 9920 + len(ours) + len(twins)
			ct, err := n.Bed.NewContainer(vmid, lxctest.Options{})
			if err != nil {
				return nil, err
			}
			*l = append(*l, ct)
		}
	}
	since := time.Now()
	for _, ct := range ours {
		if _, err := ct.ProxmoxStart(n.Hook, n.Env()); err != nil {
			return nil, err
		}
	}
	var last time.Time
	for _, ct := range ours {
		p, err := n.WaitProvisioned(ct.VMID, since, 20*time.Minute)
		if err != nil {
			return nil, err
		}
		last = maxTime(last, p.Finished)
	}
	oursAll := last.Sub(since)
	for _, ct := range ours {
		if _, err := ct.Stop("", nil); err != nil {
			return nil, err
		}
	}

	run, err := os.ReadFile(filepath.Join(n.Host.Root, "cache/runs", standin.RunFileName(realVersion)))
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	errs := make(chan error, count)
	slots := make(chan struct{}, 2) // max_concurrent
	var wg sync.WaitGroup
	for _, ct := range twins {
		wg.Add(1)
		go func(ct *lxctest.CT) {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			if _, err := byHand(ct, run); err != nil {
				errs <- err
			}
		}(ct)
	}
	wg.Wait()
	hand := time.Since(t0)
	close(errs)
	for err := range errs {
		return nil, err
	}
	for _, ct := range twins {
		ct.Stop("", nil)
	}
	return []row{
		{fmt.Sprintf("boot storm, real-sized: first start → all %d verified (max_concurrent 2)", count), fmt.Sprintf("%s (%.2f× by hand)", ms(oursAll), float64(oursAll)/float64(hand)), fmt.Sprintf("by hand, two at a time (copy in, start, run the .run): %s", ms(hand)), "≤ 1.1× by hand"},
	}, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func kibToMiB(bytes string) int64 {
	var n int64
	fmt.Sscan(bytes, &n)
	return n >> 20
}
