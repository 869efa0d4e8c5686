// Command bench measures nvidiaprep on the container start path and in
// provisioning, side by side with what admins use today, and prints one
// Markdown table (make bench). Run it as root after integration/setup.sh.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"nvidiaprep/integration/lxctest"
	"nvidiaprep/integration/scenario"
	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/lxcconf"
)

type row struct{ what, value, baseline, target string }

func main() {
	runs := flag.Int("runs", 200, "hook calls per measurement")
	storm := flag.Int("storm", 10, "containers in the boot storm")
	out := flag.String("o", "", "also write the table to this file")
	dropIn := flag.Bool("dropin-only", false, "measure only what the container units' drop-in adds (no containers)")
	appsOnly := flag.Bool("apps-only", false, "measure only what the CDI spec and the apt registration add (one container)")
	preStart := flag.Bool("prestart-only", false, "measure only the start floor, the drop-in and pre-start (no containers)")
	compare := flag.String("compare-hook", "", "also time pre-start with this other build of nvidiaprep-hook, in turn with the others (before and after a change, in one run)")
	flag.Parse()
	compareHook = *compare
	if *dropIn {
		*out, *storm = "", -1
	}
	if *preStart {
		*out, *storm = "", -2
	}
	if *appsOnly {
		*out, *storm = "", -3
	}
	if err := run(*runs, *storm, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// compareHook is -compare-hook: another build of the hook whose pre-start is
// timed in the same turns.
var compareHook string

type env struct {
	dir, bin, hook string
	noop           string // a static Go program that does nothing (floor.go)
	bed            *lxctest.Bed
}

func run(runs, storm int, out string) error {
	dir, err := os.MkdirTemp("", "nvidiaprep-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	root, err := scenario.ModuleRoot()
	if err != nil {
		return err
	}
	e := env{dir: dir, bin: filepath.Join(dir, "bin")}
	if e.hook, err = scenario.BuildHook(root, e.bin); err != nil {
		return err
	}
	if e.noop, err = buildNoop(e.bin); err != nil {
		return err
	}
	var rows []row
	if storm == -3 {
		if e.bed, err = lxctest.NewBed(filepath.Join(dir, "bed")); err != nil {
			return err
		}
		defer e.bed.Close()
		r, err := e.apps(runs / 4)
		if err != nil {
			return err
		}
		fmt.Print(render(r))
		return nil
	}
	floor, err := e.startFloor(runs)
	if err != nil {
		return err
	}
	rows = append(rows, floor)
	r, err := e.unitDropIn(runs)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	if storm == -1 {
		fmt.Print(render(rows))
		return nil
	}
	for _, gpus := range []int{1, 8} {
		r, err := e.preStart(root, gpus, runs)
		if err != nil {
			return err
		}
		rows = append(rows, r)
	}
	if storm == -2 {
		fmt.Print(render(rows))
		return nil
	}
	if e.bed, err = lxctest.NewBed(filepath.Join(dir, "bed")); err != nil {
		return err
	}
	defer e.bed.Close()
	r, err = e.postStart(runs / 4)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	r, err = e.realProvisioning()
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	r, err = e.apps(runs / 4)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	r, err = e.bootStorm(storm)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	r, err = e.realStorm(storm)
	if err != nil {
		return err
	}
	rows = append(rows, r...)
	if r, err := e.hostDriverFastPath(runs); err == nil {
		rows = append(rows, r)
	} else {
		fmt.Fprintln(os.Stderr, "bench: host driver fast path not measured:", err)
	}
	table := render(rows)
	fmt.Print(table)
	if out != "" {
		return os.WriteFile(out, []byte(table), 0o644)
	}
	return nil
}

func render(rows []row) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s on %s (%d CPUs, %s/%s), `make bench`.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH)
	b.WriteString("| measurement | nvidiaprep | the usual way | target |\n| --- | --- | --- | --- |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.what, r.value, r.baseline, r.target)
	}
	return b.String()
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// stats are the median and 95th percentile of durations.
func stats(d []time.Duration) (median, p95 time.Duration) {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*95)/100]
}

func median(d []time.Duration) time.Duration { m, _ := stats(d); return m }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// cmdLimit bounds each timed command. The slowest, the worker putting a
// container's registration back with dpkg, takes seconds; a hook call,
// milliseconds.
const cmdLimit = 2 * time.Minute

// timeCmd runs a command (env nil: this process's environment) and returns
// its wall time; a failure, or a command still running after cmdLimit (its
// process group is killed), is an error naming the command, with what it
// printed.
func timeCmd(env []string, name string, args ...string) (time.Duration, error) {
	return timeCmdWithin(cmdLimit, env, name, args...)
}

// timeCmdWithin is timeCmd with the limit given.
func timeCmdWithin(limit time.Duration, env []string, name string, args ...string) (time.Duration, error) {
	run := hostcmd.Exec{Env: env, Timeout: limit}
	t0 := time.Now()
	r, err := run.Run(context.Background(), hostcmd.Command{Name: name, Args: args})
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%w\n%s", err, r.Output)
	}
	return d, nil
}

// generatedConfig is a realistic /var/lib/lxc/<vmid>/config of about 60
// lines, as Proxmox's update_lxc_config writes it for an unprivileged Debian
// container with two network interfaces, mount points and raw lxc lines.
func generatedConfig(vmid int) string {
	l := []string{
		"lxc.cgroup.relative = 0", fmt.Sprintf("lxc.cgroup.dir.monitor = lxc.monitor/%d", vmid),
		fmt.Sprintf("lxc.cgroup.dir.container = lxc/%d", vmid), "lxc.cgroup.dir.container.inner = ns",
		"lxc.arch = amd64", "lxc.include = /usr/share/lxc/config/debian.common.conf",
		"lxc.include = /usr/share/lxc/config/debian.userns.conf",
		fmt.Sprintf("lxc.seccomp.profile = /var/lib/lxc/%d/rules.seccomp", vmid),
		"lxc.apparmor.profile = generated", "lxc.apparmor.raw = deny mount -> /proc/,", "lxc.apparmor.raw = deny mount -> /sys/,",
		"lxc.mount.auto = sys:mixed", "lxc.monitor.unshare = 1",
		"lxc.idmap = u 0 100000 65536", "lxc.idmap = g 0 100000 65536",
		"lxc.tty.max = 2", "lxc.environment = TERM=linux", fmt.Sprintf("lxc.uts.name = ct%d", vmid),
		"lxc.cgroup2.memory.max = 8589934592", "lxc.cgroup2.memory.swap.max = 536870912",
		"lxc.cgroup2.cpu.weight = 100", "lxc.cgroup2.cpu.max = 800000 100000",
		"lxc.rootfs.path = /var/lib/lxc/" + fmt.Sprint(vmid) + "/rootfs",
	}
	for i := 0; i < 2; i++ {
		l = append(l, fmt.Sprintf("lxc.net.%d.type = veth", i), fmt.Sprintf("lxc.net.%d.veth.pair = veth%di%d", i, vmid, i),
			fmt.Sprintf("lxc.net.%d.hwaddr = BC:24:11:00:00:0%d", i, i), fmt.Sprintf("lxc.net.%d.name = eth%d", i, i),
			fmt.Sprintf("lxc.net.%d.mtu = 1500", i), fmt.Sprintf("lxc.net.%d.script.up = /usr/share/lxc/lxcnetaddbr", i))
	}
	l = append(l, "lxc.cgroup2.devices.allow = c 10:200 rwm",
		"lxc.mount.entry = /dev/net dev/net none bind,create=dir",
		"lxc.mount.entry = /srv/data srv/data none bind,create=dir",
		"lxc.mount.entry = /srv/models srv/models none bind,ro,create=dir",
		"lxc.prlimit.nofile = 1048576", "lxc.sysctl.net.ipv4.ip_forward = 1",
		"lxc.hook.pre-start = /usr/share/lxc/hooks/lxc-pve-prestart-hook",
		"lxc.hook.mount = /usr/share/lxc/hooks/lxc-pve-autodev-hook",
		"lxc.hook.post-stop = /usr/share/lxc/hooks/lxc-pve-poststop-hook")
	for len(l) < 60 {
		l = append(l, fmt.Sprintf("lxc.environment = NVIDIAPREP_BENCH_%d=1", len(l)))
	}
	return strings.Join(l, "\n") + "\n"
}

// preStart times `nvidiaprep-hook <vmid> pre-start` on a stand-in node with
// gpus GPUs against the hand-made shell hook on the same tree.
func (e env) preStart(root string, gpus, runs int) (row, error) {
	base := filepath.Join(e.dir, fmt.Sprintf("prestart-%d", gpus))
	h, err := standin.NewHost(filepath.Join(base, "host"))
	if err != nil {
		return row{}, err
	}
	uvm, err := standin.FreeMajor("/proc/devices")
	if err != nil {
		return row{}, err
	}
	d := standin.Driver{Version: "580.159.04", UVMMajor: uvm}
	for i := 0; i < gpus; i++ {
		d.GPUs = append(d.GPUs, standin.GPU{PCIBusID: fmt.Sprintf("0000:%02x:00.0", 0x18+i*0x10), UUID: fmt.Sprintf("GPU-00000000-0000-0000-0000-%012d", i), Minor: i})
	}
	if err := h.LoadDriver(d); err != nil {
		return row{}, err
	}
	if err := h.MakeNodes(d); err != nil {
		return row{}, err
	}
	lxc := filepath.Join(base, "lxc")
	cfgPath := filepath.Join(lxc, "101", "config")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o755); err != nil {
		return row{}, err
	}
	node := filepath.Join(base, "nvidiaprep.toml")
	toml := fmt.Sprintf("[paths]\nlxc = %q\ndev = %q\nproc = %q\nsys = %q\ncache = %q\nstate = %q\n", lxc, h.Dev, h.Proc, h.Sys, filepath.Join(base, "cache"), filepath.Join(base, "state"))
	if err := os.WriteFile(node, []byte(toml), 0o644); err != nil {
		return row{}, err
	}
	ours := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "NVIDIAPREP_CONFIG=" + node, "NVIDIAPREP_CLUSTER_CONFIG="}
	shell := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LXC=" + lxc, "DEV=" + h.Dev, "PROC=" + h.Proc}
	handmade := filepath.Join(root, "integration/bench/handmade-hook.sh")
	// The three run in turn, so that each sees the same moments of the
	// machine: the hook, the static no-op Go program, the shell hook.
	var a, floor, b, other []time.Duration
	type cmd struct {
		out  *[]time.Duration
		env  []string
		argv []string
	}
	cmds := []cmd{{&a, ours, []string{e.hook, "101", "pre-start"}}, {&floor, nil, []string{e.noop}}, {&b, shell, []string{"/bin/sh", handmade, "101", "pre-start"}}}
	if compareHook != "" {
		cmds = append(cmds, cmd{&other, ours, []string{compareHook, "101", "pre-start"}})
	}
	for i := 0; i < runs; i++ {
		for _, m := range cmds {
			if err := os.WriteFile(cfgPath, []byte(generatedConfig(101)), 0o644); err != nil {
				return row{}, err
			}
			d, err := timeCmd(m.env, m.argv[0], m.argv[1:]...)
			if err != nil {
				return row{}, err
			}
			*m.out = append(*m.out, d)
		}
	}
	am, ap := stats(a)
	bm, bp := stats(b)
	fm := median(floor)
	value := fmt.Sprintf("median %s (%s over a static Go program that does nothing: %s), p95 %s", ms(am), ms(am-fm), ms(fm), ms(ap))
	if compareHook != "" {
		om, op := stats(other)
		value += fmt.Sprintf("; %s: median %s (%s over the no-op), p95 %s", compareHook, ms(om), ms(om-fm), ms(op))
	}
	return row{
		what:     fmt.Sprintf("pre-start, %d GPU(s), 60-line config (%d runs)", gpus, runs),
		value:    value,
		baseline: fmt.Sprintf("shell hook: median %s, p95 %s (%.1f× slower)", ms(bm), ms(bp), float64(bm)/float64(am)),
		target:   "≤ 1 ms over the no-op Go program, ≥ 5× faster",
	}, nil
}

// startFloor measures what every hook call pays before doing anything on
// this machine: starting a process (/bin/true), starting any Go program
// (a static one that does nothing) and starting the hook itself (--help:
// the Go runtime and the hook's packages, no work).
func (e env) startFloor(runs int) (row, error) {
	var tr, noop, hk []time.Duration
	for i := 0; i < runs; i++ {
		for _, m := range []struct {
			out  *[]time.Duration
			argv []string
		}{{&tr, []string{"/bin/true"}}, {&noop, []string{e.noop}}, {&hk, []string{e.hook, "--help"}}} {
			d, err := timeCmd(nil, m.argv[0], m.argv[1:]...)
			if err != nil {
				return row{}, err
			}
			*m.out = append(*m.out, d)
		}
	}
	hm, hp := stats(hk)
	return row{
		what:     fmt.Sprintf("floor: starting the hook, no work (`--help`, %d runs)", runs),
		value:    fmt.Sprintf("median %s, p95 %s", ms(hm), ms(hp)),
		baseline: fmt.Sprintf("`/bin/true`: median %s; a static Go program that does nothing: median %s", ms(median(tr)), ms(median(noop))),
		target:   "—",
	}, nil
}

// unitDropIn measures what nvidiaprep's drop-in for pve-container@.service
// adds to the start of a container (its ExecStartPre=
// nvidiaprep-unit-prestart <vmid>, against /bin/true, which stands for
// what systemd pays for any ExecStartPre= line): for a container that is
// not nvidiaprep's, and for one whose pct start has just written the block.
func (e env) unitDropIn(runs int) ([]row, error) {
	root := filepath.Join(e.dir, "dropin")
	files := map[string]string{
		"pve/lxc/300.conf": "arch: amd64\ncores: 2\nhostname: web\nmemory: 2048\nnet0: name=eth0,bridge=vmbr0,ip=dhcp,type=veth\nostype: debian\nrootfs: local-lvm:vm-300-disk-0,size=8G\nunprivileged: 1\n",
		"pve/lxc/301.conf": "arch: amd64\nhookscript: local:snippets/nvidiaprep-hook\nostype: debian\n",
		"lxc/301/config":   generatedConfig(301) + lxcconf.Begin + "\n# driver 580.142; GPUs 0=0000:01:00.0\n" + lxcconf.End + "\n",
		"nvidiaprep.toml":  "[paths]\nlxc = \"" + filepath.Join(root, "lxc") + "\"\npve = \"" + filepath.Join(root, "pve") + "\"\n",
	}
	for name, text := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			return nil, err
		}
	}
	env := []string{"NVIDIAPREP_CONFIG=" + filepath.Join(root, "nvidiaprep.toml"), "NVIDIAPREP_CLUSTER_CONFIG="}
	gate := filepath.Join(e.bin, "nvidiaprep-unit-prestart")
	var tr, other, fresh []time.Duration
	for i := 0; i < runs; i++ {
		for _, m := range []struct {
			out  *[]time.Duration
			name string
			arg  string
		}{{&tr, "/bin/true", "300"}, {&other, gate, "300"}, {&fresh, gate, "301"}} {
			if m.arg == "301" && i%20 == 0 { // keep the block younger than a minute
				now := time.Now()
				os.Chtimes(filepath.Join(root, "lxc/301/config"), now, now)
			}
			d, err := timeCmd(env, m.name, m.arg)
			if err != nil {
				return nil, err
			}
			*m.out = append(*m.out, d)
		}
	}
	// A cluster file of 16 KiB of nested inline tables: the decoder's
	// worst case (seconds), which the drop-in must not decode.
	cluster := filepath.Join(root, "cluster.toml")
	nested := "x = " + strings.Repeat("{a = ", 2700) + "1" + strings.Repeat("}", 2700) + "\n"
	if err := os.WriteFile(cluster, []byte(nested), 0o644); err != nil {
		return nil, err
	}
	hostileEnv := []string{env[0], "NVIDIAPREP_CLUSTER_CONFIG=" + cluster}
	var hostile []time.Duration
	for i := 0; i < min(runs, 20); i++ {
		d, err := timeCmd(hostileEnv, gate, "300")
		if err != nil {
			return nil, err
		}
		hostile = append(hostile, d)
	}
	tm := median(tr)
	om, op := stats(other)
	fm, fp := stats(fresh)
	hm, hp := stats(hostile)
	added := func(d time.Duration) string { return ms(max(d-tm, 0)) }
	return []row{
		{fmt.Sprintf("unit drop-in, a container without nvidiaprep (%d runs)", runs), fmt.Sprintf("median %s (adds %s), p95 %s", ms(om), added(om), ms(op)), fmt.Sprintf("`/bin/true`: median %s", ms(tm)), "≤ 5 ms added"},
		{fmt.Sprintf("unit drop-in, nvidiaprep's container after `pct start` (%d runs)", runs), fmt.Sprintf("median %s (adds %s), p95 %s", ms(fm), added(fm), ms(fp)), "—", "milliseconds"},
		{fmt.Sprintf("unit drop-in, a container without nvidiaprep, 16 KiB of nested inline tables in the cluster file (%d runs)", len(hostile)), fmt.Sprintf("median %s (adds %s), p95 %s", ms(hm), added(hm), ms(hp)), "—", "≤ 5 ms added"},
	}, nil
}

// node makes a stand-in node with one GPU, driver 580.142 and its .run.
func (e env) node(name string) (*scenario.Node, error) {
	d, err := scenario.TwoGPUs("580.142")
	if err != nil {
		return nil, err
	}
	bed, err := lxctest.NewBed(filepath.Join(e.dir, name))
	if err != nil {
		return nil, err
	}
	n, err := scenario.NewNode(bed, e.hook, d)
	if err != nil {
		return nil, err
	}
	return n, n.CacheRun("580.142", standin.RunOptions{})
}

// provisioned is a node of its own with container vmid started the
// Proxmox way and provisioned; done stops the container and closes the bed.
func (e env) provisioned(name string, vmid int) (n *scenario.Node, ct *lxctest.CT, done func(), err error) {
	n, err = e.node(name)
	if err != nil {
		return nil, nil, nil, err
	}
	ct, err = n.Bed.NewContainer(vmid, lxctest.Options{})
	if err != nil {
		n.Bed.Close()
		return nil, nil, nil, err
	}
	done = func() { ct.Stop("", nil); n.Bed.Close() }
	since := time.Now()
	if _, err := ct.ProxmoxStart(n.Hook, n.Env()); err != nil {
		done()
		return nil, nil, nil, err
	}
	if _, err := n.WaitProvisioned(vmid, since, 3*time.Minute); err != nil {
		done()
		return nil, nil, nil, err
	}
	return n, ct, done, nil
}

func (e env) postStart(runs int) ([]row, error) {
	n, _, done, err := e.provisioned("poststart", 9901)
	if err != nil {
		return nil, err
	}
	defer done()
	postStart := func(pause time.Duration) ([]time.Duration, error) {
		var ds []time.Duration
		for i := 0; i < runs; i++ {
			d, err := timeCmd(n.Env(), n.Hook, "9901", "post-start")
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
			time.Sleep(pause)
		}
		return ds, nil
	}
	current, err := postStart(0)
	if err != nil {
		return nil, err
	}
	// A container that needs an install: the host moves to a version whose
	// .run is missing, so each worker ends at once and the next call again
	// finds the container out of date.
	if err := n.SwitchDriver("580.999"); err != nil {
		return nil, err
	}
	needs, err := postStart(50 * time.Millisecond) // let each worker go
	if err != nil {
		return nil, err
	}
	cm, cp := stats(current)
	nm, np := stats(needs)
	return []row{
		{fmt.Sprintf("post-start, container current (%d runs)", runs), fmt.Sprintf("median %s, p95 %s", ms(cm), ms(cp)), "—", "≤ 50 ms"},
		{fmt.Sprintf("post-start, install needed: returns after starting the worker (%d runs)", runs), fmt.Sprintf("median %s, p95 %s", ms(nm), ms(np)), "a script installing in post-start blocks the start for the whole install", "≤ 50 ms"},
	}, nil
}

func dirBytes(dir string) (int64, error) {
	var total int64
	err := filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// bootStorm starts containers back to back, as pve-guests does at boot.
func (e env) bootStorm(count int) ([]row, error) {
	n, err := e.node("storm")
	if err != nil {
		return nil, err
	}
	defer n.Bed.Close()
	var cts []*lxctest.CT
	for i := 0; i < count; i++ {
		ct, err := n.Bed.NewContainer(9910+i, lxctest.Options{})
		if err != nil {
			return nil, err
		}
		cts = append(cts, ct)
	}
	since := time.Now()
	var pre, post, floor []time.Duration
	for _, ct := range cts {
		s, err := ct.ProxmoxStart(n.Hook, n.Env())
		if err != nil {
			return nil, err
		}
		defer ct.Stop("", nil)
		pre, post = append(pre, s.PreStart.Duration), append(post, s.PostStart.Duration)
		// The same moment's floor: starting the hook to do nothing.
		d, err := timeCmd(nil, e.hook, "--help")
		if err != nil {
			return nil, err
		}
		floor = append(floor, d)
	}
	slowest := func(d []time.Duration) time.Duration { return slices.Max(d) }
	started := time.Since(since)
	// Its workers finish before the bed goes; their time is realStorm's.
	for _, ct := range cts {
		if _, err := n.WaitProvisioned(ct.VMID, since, 10*time.Minute); err != nil {
			return nil, err
		}
	}
	return []row{
		{fmt.Sprintf("boot storm, %d containers back to back: slowest hook calls", count), fmt.Sprintf("pre-start: median %s, slowest %s; post-start: median %s, slowest %s", ms(median(pre)), ms(slowest(pre)), ms(median(post)), ms(slowest(post))), fmt.Sprintf("all %d started in %s; starting the hook to do nothing (`--help`) at those moments: median %s", count, ms(started), ms(median(floor))), "≤ 50 ms"},
	}, nil
}

// hostDriverFastPath times `nvidiaprep host-driver` when the configured
// driver is the loaded one.
func (e env) hostDriverFastPath(runs int) (row, error) {
	n, err := e.node("hostdriver")
	if err != nil {
		return row{}, err
	}
	defer n.Bed.Close()
	if err := n.WriteConfig("[driver]\nversion = \"580.142\"\n"); err != nil {
		return row{}, err
	}
	prog := filepath.Join(e.bin, "nvidiaprep")
	var ds []time.Duration
	for i := 0; i < runs; i++ {
		d, err := timeCmd(n.Env(), prog, "host-driver")
		if err != nil {
			return row{}, err
		}
		ds = append(ds, d)
	}
	m, p := stats(ds)
	return row{fmt.Sprintf("host driver unit, nothing to do (%d runs)", runs), fmt.Sprintf("median %s, p95 %s", ms(m), ms(p)), "—", "≤ 100 ms"}, nil
}
