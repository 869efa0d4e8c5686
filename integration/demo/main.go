// Command demo shows nvidiaprep on a real LXC container started the way
// Proxmox starts it (generated config, hookscript pre-start, lxc-start under
// pure cgroup v2, hookscript post-start), on a stand-in node with two GPUs
// (device nodes made with mknod, no driver behind them) and a stand-in
// driver .run in its cache, which the worker installs in the container. Run it as root after
// integration/setup.sh, or simply `make demo`.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	dir, err := os.MkdirTemp("", "nvidiaprep-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil { // containers' ids must reach the bed
		return err
	}
	root, err := scenario.ModuleRoot()
	if err != nil {
		return err
	}
	step("building nvidiaprep-hook")
	hook, err := scenario.BuildHook(root, dir)
	if err != nil {
		return err
	}
	bed, err := lxctest.NewBed(dir + "/bed")
	if err != nil {
		return err
	}
	defer bed.Close()
	d, err := scenario.TwoGPUs("580.159.04")
	if err != nil {
		return err
	}
	node, err := scenario.NewNode(bed, hook, d)
	if err != nil {
		return err
	}
	tables := "[containers.101]\ngpus = [\"0\"]\nrequired = true\n"
	if err := node.WriteConfig(tables); err != nil {
		return err
	}
	if err := node.CacheRun(d.Version, standin.RunOptions{}); err != nil {
		return err
	}
	step(fmt.Sprintf("stand-in node: driver %s, GPUs 0 and 1 (/dev/nvidia0 195:0, /dev/nvidia1 195:1), nvidia-uvm major %d", d.Version, d.UVMMajor))
	fmt.Printf("nvidiaprep.toml (relocated into %s):\n%s\n", node.Host.Root, indent(tables))

	ct, err := bed.NewContainer(101, lxctest.Options{})
	if err != nil {
		return err
	}
	step("pct start 101: generated config, hookscript pre-start, lxc-start (pure cgroup v2), hookscript post-start")
	since := time.Now()
	s, err := ct.ProxmoxStart(hook, node.Env())
	if err != nil {
		return err
	}
	defer ct.Stop(hook, node.Env())
	fmt.Printf("pre-start (%v, exit %d), as the task log shows it:\n%s\n", s.PreStart.Duration.Round(100000), s.PreStart.ExitCode, indent(s.PreStart.Output))
	cfg, err := os.ReadFile(ct.ConfigPath())
	if err != nil {
		return err
	}
	_, block, _ := strings.Cut(string(cfg), "# BEGIN nvidiaprep")
	fmt.Printf("the block in %s:\n%s\n", ct.ConfigPath(), indent("# BEGIN nvidiaprep"+block))
	fmt.Printf("post-start (%v, exit %d):\n%s\n", s.PostStart.Duration.Round(100000), s.PostStart.ExitCode, indent(s.PostStart.Output))
	step("the provisioning worker, in the background (its log)")
	p, err := node.WaitProvisioned(101, since, 3*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("%s\nrecord: %s %s in %v\n", indent(node.WorkerLog(101)), p.Outcome, p.Version, p.Duration.Round(time.Millisecond))
	if err := ct.WaitSystemd(60e9); err != nil {
		return err
	}
	step("inside CT 101 (systemd running)")
	for _, cmd := range []string{
		"ls -l /dev/nvidia*",
		"cat /dev/nvidia0      # allowed by the cgroup: ENXIO, no driver behind the stand-in",
		"cat /dev/nvidia-uvm   # allowed",
		"mknod /tmp/nvidia1 c 195 1; cat /tmp/nvidia1   # GPU 1 was not given: the cgroup refuses it",
		"readlink /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1; head -1 /var/lib/nvidia/log",
		"nvidia-smi   # the stand-in's: installed, but no driver behind the stand-in nodes",
	} {
		out, _, err := scenario.Sh(ct, cmd)
		if err != nil {
			return err
		}
		fmt.Printf("# %s\n%s\n", cmd, indent(out))
	}
	return nil
}

func step(s string) { fmt.Printf("\n==> %s\n", s) }

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
