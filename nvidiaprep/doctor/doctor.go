// Package doctor checks what breaks GPU containers in practice on a node and
// says, for each problem, how to fix it. Every check reads through injectable
// roots (the configured paths, Proxmox's directory, a host root for storage
// paths) and a runner for the kernel log, so that tests run it against
// stand-in trees.
package doctor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/devplan"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvversion"
	"nvidiaprep/nvidiaprep/pve"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/secureboot"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Problem is one thing that is wrong, and its fix.
type Problem struct {
	Check string `json:"check"` // which check found it, e.g. "nouveau"
	What  string `json:"what"`
	Fix   string `json:"fix"`
}

// Options say where to look. Zero paths mean the real host's.
type Options struct {
	Config config.Config
	// Runner runs journalctl and dmesg for the kernel log.
	Runner hostcmd.Runner
	// Nodes stats the device nodes; nil: the real host's.
	Nodes nvdev.NodeFS
	// Running tells whether a container runs (known false: it cannot
	// tell); nil: never known.
	Running func(vmid int) (running, known bool)
	// KernelRelease is uname -r; "" reads it from the kernel.
	KernelRelease string
}

// Report is what Run found: problems, and notes about checks that could
// not run (they do not count as problems).
type Report struct {
	Problems []Problem `json:"problems"`
	Notes    []string  `json:"notes,omitempty"`
	// Dependents are the containers whose hookscript is nvidiaprep's: on a
	// node without the package (a migration, a restore) Proxmox refuses to
	// start them.
	Dependents []int `json:"hookscript_dependents,omitempty"`
}

// OK tells whether all is well.
func (r Report) OK() bool { return len(r.Problems) == 0 }

type run struct {
	o      Options
	rep    Report
	loaded string
	majors nvdev.Majors
	cts    []pve.CT
}

func (r *run) problem(check, what, fix string) {
	r.rep.Problems = append(r.rep.Problems, Problem{Check: check, What: what, Fix: fix})
}

func (r *run) note(format string, args ...any) {
	r.rep.Notes = append(r.rep.Notes, fmt.Sprintf(format, args...))
}

// Run runs every check.
func Run(ctx context.Context, o Options) Report {
	if o.Runner == nil {
		o.Runner = hostcmd.Exec{}
	}
	r := &run{o: o}
	p := o.Config.Paths
	if v, err := nvdev.LoadedVersion(p.Sys, p.Proc); err == nil {
		r.loaded = v
	} else if !errors.Is(err, nvdev.ErrNoDriver) {
		r.note("reading the loaded driver: %v", err)
	}
	r.majors = nvdev.Majors{}
	if m, err := nvdev.ReadMajors(p.Proc); err == nil {
		r.majors = m
	} else if !errors.Is(err, os.ErrNotExist) {
		r.note("%v", err)
	}
	cts, err := pve.ReadCTs(o.Config.Paths.PVE)
	if err != nil {
		r.note("%v", err)
	}
	r.cts = cts
	for _, check := range []func(){
		r.driverLoaded, r.hostDriver, r.nodes, r.nouveau, r.skew, r.runCached,
		r.containerConfigs, r.gpuSelection, r.hookscripts, r.lostBlocks, r.handWritten, r.apps, func() { r.kernelLog(ctx) }, r.fuseTimeout,
		func() { r.kernels(ctx) },
	} {
		check()
	}
	return r.rep
}

// driverLoaded: without a loaded module no container gets a GPU.
func (r *run) driverLoaded() {
	if r.loaded != "" {
		return
	}
	d := r.o.Config.Driver
	fix := "set [driver] version in /etc/nvidiaprep/nvidiaprep.toml and run `systemctl start nvidiaprep-host-driver.service`, which installs it (or load an installed driver: `modprobe nvidia`)"
	if d.Version != "" {
		fix = fmt.Sprintf("run `systemctl start nvidiaprep-host-driver.service`, which installs and loads driver %s ([driver] version) or says what stops it and whether a reboot is needed (`journalctl -u nvidiaprep-host-driver.service`)", d.Version)
	}
	r.problem("driver-not-loaded", "no NVIDIA kernel module is loaded: containers start without GPU, those with required = true not at all", fix)
}

// hostDriver: the host driver unit's last run failed, or waits for a reboot.
func (r *run) hostDriver() {
	h, ok, err := hostdriverstate.Load(r.o.Config.Paths.State)
	if err != nil {
		r.note("%v", err)
		return
	}
	if !ok {
		return
	}
	switch h.Outcome {
	case hostdriverstate.OutcomeFailed:
		fix := "see `journalctl -u nvidiaprep-host-driver.service`"
		if h.Log != "" {
			fix += " and " + h.Log
		}
		r.problem("host-driver-failed", fmt.Sprintf("the host driver unit failed to install driver %s: %s", h.Configured, h.Error),
			fix+"; fix the cause, then `systemctl restart nvidiaprep-host-driver.service`")
	case hostdriverstate.OutcomeNotLoaded:
		if h.Installed != "" && h.Installed == r.loaded {
			return // loaded since (`modprobe nvidia`): the record is of the boot's start
		}
		r.notLoaded(h)
	case hostdriverstate.OutcomeRebootRequired:
		if h.Error != "" {
			// The install waits for a reboot (a held GPU, nouveau): the
			// unit said why.
			r.problem("reboot-pending", fmt.Sprintf("driver %s waits for a reboot: %s", h.Configured, h.Error),
				"reboot the node when its guests allow it (`reboot`): the unit installs the driver at boot; or stop the processes named and `systemctl restart nvidiaprep-host-driver.service`")
			return
		}
		if h.Installed != "" && h.Installed != r.loaded {
			r.problem("reboot-pending", fmt.Sprintf("driver %s is installed but %s is loaded: containers get the old one until the node reboots", h.Installed, orNone(r.loaded)),
				"reboot the node when its guests allow it (`reboot`)")
		}
	}
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// nodeFix is how the driver's own tool makes each control node.
var nodeFix = map[string]string{
	"nvidiactl":        "`nvidia-modprobe -c=0` (or start any container: pre-start creates it)",
	"nvidia-uvm":       "`nvidia-modprobe -u -c=0`",
	"nvidia-uvm-tools": "`nvidia-modprobe -u -c=0`",
	"nvidia-modeset":   "`nvidia-modprobe -m`",
}

// nodes: the control, uvm and modeset nodes (nvdev.ExpectedNodes' list
// without GPUs) exist with the driver's numbers.
func (r *run) nodes() {
	if r.loaded == "" {
		return
	}
	p := r.o.Config.Paths
	nfs := nvdev.OrReal(r.o.Nodes)
	uvmMissing := false
	for _, e := range nvdev.ExpectedNodes(p.Dev, nvdev.Want{Majors: r.majors, Modeset: nvdev.ModesetLoaded(p.Sys)}) {
		name, fix := e.Name, nodeFix[e.Name]
		switch {
		case e.Kind == nvdev.KindUVM && !e.Registered:
			if !uvmMissing {
				r.problem("device-nodes", "the nvidia-uvm module is not loaded: CUDA fails in every container",
					"`modprobe nvidia-uvm && nvidia-modprobe -u -c=0`; to load it at every boot: `echo nvidia-uvm > /etc/modules-load.d/nvidia-uvm.conf`")
			}
			uvmMissing = true
			continue
		case !e.Registered:
			continue // no control major registered: nothing to compare with
		}
		st, err := nfs.Stat(e.Path)
		switch {
		case err != nil:
			r.problem("device-nodes", fmt.Sprintf("/dev/%s is missing: containers get no %s", name, name), fix)
		case !st.Is(e.Node):
			r.problem("device-nodes", fmt.Sprintf("/dev/%s is %d:%d, but the driver has %d:%d (a node left by an older driver)", name, st.Major, st.Minor, e.Major, e.Minor),
				"remove it and let the driver's tool make it again: `rm /dev/"+name+"` then "+fix)
		}
	}
}

// nouveau: the in-kernel driver holds the GPU and the NVIDIA module cannot.
func (r *run) nouveau() {
	f, err := fsutil.OpenRegular(filepath.Join(r.o.Config.Paths.Proc, "modules"))
	if err != nil {
		r.note("reading the loaded modules: %v", err)
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, _ := strings.Cut(sc.Text(), " "); name == "nouveau" {
			r.problem("nouveau", "the nouveau driver is loaded: it holds the GPUs, and the NVIDIA driver cannot load while it does",
				"blacklist it and reboot: "+kernelguard.NouveauBlacklistFix+", then `reboot` (the file the host driver unit writes when it installs the driver)")
			return
		}
	}
}

// skew: containers whose libraries are not the loaded driver's, or whose
// last provisioning failed.
func (r *run) skew() {
	state := r.o.Config.Paths.State
	files, _ := filepath.Glob(filepath.Join(state, "containers", "*.json"))
	for _, f := range files {
		vmid, err := config.ParseVMID(strings.TrimSuffix(filepath.Base(f), ".json"))
		if err != nil {
			continue
		}
		if r.elsewhere(vmid) {
			continue // migrated away: its record here is history
		}
		rec, ok, err := record.Load(state, vmid)
		if err != nil {
			r.note("%s", ctmsg.Text(vmid, err))
			continue
		}
		if !ok {
			continue
		}
		switch {
		case rec.Outcome == record.Failed:
			r.problem("provisioning-failed", ctmsg.Sprintf(vmid, "installing the user-space libraries %s failed: %s", rec.Version, rec.Error),
				fmt.Sprintf("`nvidiaprep logs %d` shows the worker's log of that run; fix the cause it names, then `nvidiaprep provision %d` while it runs (or restart it: `pct reboot %d`)", vmid, vmid, vmid))
		case rec.Outcome == record.Installed && r.loaded != "" && rec.Version != r.loaded:
			r.problem("version-skew", fmt.Sprintf("%s has the user-space libraries of driver %s, but the host runs %s: CUDA there fails with \"Driver/library version mismatch\"", ctmsg.Name(vmid), rec.Version, r.loaded),
				fmt.Sprintf("restart it (`pct reboot %d`): its post-start installs %s; or run `nvidiaprep provision %d` while it runs", vmid, r.loaded, vmid))
		}
	}
}

// elsewhere tells whether this is a Proxmox node that does not have the
// container (it lives on another node of the cluster, or is gone).
func (r *run) elsewhere(vmid int) bool {
	if _, err := os.Stat(filepath.Join(r.o.Config.Paths.PVE, "lxc")); err != nil {
		return false
	}
	return !slices.ContainsFunc(r.cts, func(c pve.CT) bool { return c.VMID == vmid })
}

// runCached: the loaded driver's .run, which provisioning installs from.
func (r *run) runCached() {
	if r.loaded == "" {
		return
	}
	cache := driverrun.Cache{Dir: r.o.Config.Paths.Cache}
	if cache.Extracted(r.loaded) {
		why, err := cache.Changed(r.loaded)
		if err != nil {
			r.note("%v", err)
		}
		if why != "" {
			fix := "nothing to do when the .run is in " + cache.RunsDir() + ": the next provisioning extracts the tree again from it"
			if _, err := cache.FindRun(r.loaded); err != nil {
				fix = fmt.Sprintf("put NVIDIA's %s in %s: the next provisioning extracts the tree again from it", driverrun.RunFileName(r.loaded), cache.RunsDir())
			}
			r.problem("tree-changed", fmt.Sprintf("the extracted tree %s of driver %s is not used: %s", cache.Tree(r.loaded), r.loaded, why), fix)
			return
		}
		d := r.o.Config.Driver
		if d.Version != r.loaded || d.SHA256 == "" {
			return // extracted already: provisioning needs no .run
		}
		if src, err := cache.TreeSource(r.loaded); err != nil || !strings.EqualFold(src, d.SHA256) {
			from := "a .run it does not name"
			if src != "" {
				from = "the .run with sha256 " + src
			}
			r.problem("tree-not-pinned", fmt.Sprintf("the extracted tree %s of driver %s comes from %s, not from the .run that [driver] sha256 pins (%s): provisioning does not use it", cache.Tree(r.loaded), r.loaded, from, d.SHA256),
				fmt.Sprintf("put the pinned .run in %s (or fix [driver] sha256); the next provisioning extracts it again", cache.RunsDir()))
		}
		return
	}
	if _, err := cache.FindRun(r.loaded); err != nil {
		var nc *driverrun.NotCachedError
		if errors.As(err, &nc) {
			r.problem("run-not-cached", fmt.Sprintf("no .run of the loaded driver %s in %s: containers cannot get its user-space libraries", r.loaded, nc.Dir),
				fmt.Sprintf("put NVIDIA's %s there (the host driver unit keeps the [driver] version's .run there)", driverrun.RunFileName(r.loaded)))
			return
		}
		r.note("%v", err)
	}
}

// hookscripts: each container's hookscript resolves to an executable file
// in a snippets directory, and configured containers have one; a chained
// hookscript (the admin's own, run first) is there too.
func (r *run) hookscripts() {
	storages, err := pve.ReadStorage(r.o.Config.Paths.PVE)
	if err != nil {
		r.note("%v", err)
		return
	}
	for _, ct := range r.cts {
		cfg, configured := r.o.Config.Containers[ct.VMID]
		if ct.Hookscript == "" || !ct.UsesHook() && !strings.Contains(ct.Hookscript, "nvidiaprep") {
			if configured {
				r.problem("hookscript", fmt.Sprintf("%s has a [containers.%d] table but no hookscript: nvidiaprep never runs for it", ctmsg.Name(ct.VMID), ct.VMID),
					fmt.Sprintf("`nvidiaprep enable %d`", ct.VMID))
			}
			continue
		}
		r.rep.Dependents = append(r.rep.Dependents, ct.VMID)
		fix := fmt.Sprintf("`pct set %d --hookscript %s`", ct.VMID, pve.HookVolume)
		reinstall := "reinstall nvidiaprep (`apt install --reinstall nvidiaprep`; its postinst links " + filepath.Join("/var/lib/vz/snippets", pve.HookName) + "), then " + fix
		switch path, err := pve.FindHookscript(storages, r.o.Config.Paths.Root, ct.Hookscript); {
		case errors.Is(err, pve.ErrNoScript):
			r.problem("hookscript", fmt.Sprintf("%s's hookscript %s is %s, which does not exist: Proxmox refuses to start it", ctmsg.Name(ct.VMID), ct.Hookscript, path), reinstall)
		case errors.Is(err, pve.ErrNotExecutable):
			r.problem("hookscript", fmt.Sprintf("%s's hookscript %s (%s) is not an executable file: Proxmox refuses to start it", ctmsg.Name(ct.VMID), ct.Hookscript, path), reinstall)
		case err != nil:
			r.problem("hookscript", fmt.Sprintf("%s's hookscript: %v: Proxmox refuses to start it", ctmsg.Name(ct.VMID), err), fix)
		}
		if !configured || cfg.Chain == "" {
			continue
		}
		if path, err := pve.FindHookscript(storages, r.o.Config.Paths.Root, cfg.Chain); err != nil {
			where := ""
			if path != "" {
				where = " (" + path + ")"
			}
			r.problem("chained-hookscript", fmt.Sprintf("%s's own hookscript %s%s, which nvidiaprep's hook runs first: %v: its pre-start fails, so the container does not start", ctmsg.Name(ct.VMID), cfg.Chain, where, err),
				fmt.Sprintf("put the script back, or delete the chain line of [containers.%d] to start it without", ct.VMID))
		}
	}
}

// unitDropIns are the package's drop-ins that apply pre-start on a restart
// of Proxmox's container units (a reboot from inside a container).
var unitDropIns = []string{
	"usr/lib/systemd/system/pve-container@.service.d/nvidiaprep.conf",
	"usr/lib/systemd/system/pve-container-debug@.service.d/nvidiaprep.conf",
}

// lostBlocks: a container with nvidiaprep's hookscript whose generated
// config has no block started on a path that skipped pre-start, and so
// without its GPUs; the drop-ins that close that path are installed.
func (r *run) lostBlocks() {
	uses := false
	for _, ct := range r.cts {
		if !ct.UsesHook() {
			continue
		}
		uses = true
		if r.loaded == "" || r.o.Config.Container(ct.VMID).GPUs.None() {
			continue
		}
		if r.o.Running != nil {
			if running, known := r.o.Running(ct.VMID); known && !running {
				continue // stopped (a refused start, say): its next start writes the block
			}
		}
		path := r.o.Config.Paths.LXCConfig(ct.VMID)
		text, err := fsutil.ReadRegular(path, lxcconf.MaxSize)
		if err != nil || lxcconf.HasBlock(text) {
			continue // never started here, or unreadable (another check says so)
		}
		// A start that pre-start refused leaves no block either, nor does
		// one whose GPUs the node lacks: its cause is said instead
		// (containerConfigs, gpuSelection).
		if r.refused(ct.VMID) || r.unmatched(ct.VMID) {
			continue
		}
		r.problem("lost-block", fmt.Sprintf("%s's generated config %s has no nvidiaprep block: it last started on a path that skipped nvidiaprep's pre-start (a reboot from inside the container without the unit drop-in?), so if it runs, it runs without its GPUs", ctmsg.Name(ct.VMID), path),
			fmt.Sprintf("`pct reboot %d`; if it happens again after a reboot from inside, check the drop-ins below", ct.VMID))
	}
	if !uses {
		return
	}
	for _, d := range unitDropIns {
		if _, err := os.Stat(filepath.Join(r.o.Config.Paths.Root, d)); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.note("checking %s: %v", d, err)
		} else if err != nil {
			r.problem("unit-drop-in", fmt.Sprintf("/%s is missing: a container that reboots from inside starts again without its GPUs", d),
				"reinstall nvidiaprep (`apt install --reinstall nvidiaprep`), then `systemctl daemon-reload`")
		}
	}
}

// handWritten: NVIDIA lines an admin wrote into a container's config that
// cannot work on this node now, or that reach GPUs the container's
// selection does not give it.
func (r *run) handWritten() {
	gpus, _ := nvdev.ProcGPUs{Proc: r.o.Config.Paths.Proc}.GPUs()
	for _, ct := range r.cts {
		for _, f := range devplan.Stale(ct.LXC, r.majors, r.o.Config.Paths.Dev, ct.Path) {
			r.problem("hand-written-lines", ctmsg.Sprintf(ct.VMID, "hand-written line %q %s", f.Line, f.What), f.Fix)
		}
		for _, d := range ct.Devices {
			if !strings.HasPrefix(d.Path, "/dev/nvidia") {
				continue
			}
			if _, err := os.Stat(filepath.Join(r.o.Config.Paths.Dev, strings.TrimPrefix(d.Path, "/dev/"))); err != nil {
				r.problem("hand-written-lines", ctmsg.Sprintf(ct.VMID, "%s: %s does not exist on this node: Proxmox refuses to start the container", d.Key, d.Path),
					fmt.Sprintf("`pct set %d --delete %s` (nvidiaprep gives the nodes that exist at every start)", ct.VMID, d.Key))
			}
		}
		if !ct.UsesHook() {
			continue
		}
		cfg := r.o.Config.Container(ct.VMID)
		if !cfg.GPUs.None() {
			for _, f := range devplan.Premises(ct.LXC, nil, ct.Path) {
				r.problem("breaks-premise", ctmsg.Sprintf(ct.VMID, "line %q %s: nvidiaprep refuses to start it", f.Line, f.What), f.Fix)
			}
		}
		sel := devplan.Grant{VMID: ct.VMID, All: cfg.GPUs.All, Privileged: !ct.Unprivileged, PVEConf: ct.Path}
		if !cfg.GPUs.All {
			given, _ := nvdev.Select(gpus, cfg.GPUs)
			for _, g := range given {
				sel.Given = append(sel.Given, uint32(g.Minor))
			}
		}
		devices := devplan.Passthroughs(ct.Devices)
		bypasses := devplan.Bypasses(ct.LXC, devices, sel)
		for _, f := range devplan.Without(devplan.Superseded(ct.LXC, devices, r.majors, r.o.Config.Paths.Dev, ct.VMID, ct.Path, sel.Gives), bypasses) {
			r.problem("hand-written-lines", ctmsg.Sprintf(ct.VMID, "hand-written line %q %s", f.Line, f.What), f.Fix)
		}
		for _, f := range bypasses {
			what := ctmsg.Sprintf(ct.VMID, "hand-written line %q %s", f.Line, f.What)
			if cfg.Strict {
				what += "; with strict = true it does not start"
			}
			r.problem("gpu-bypass", what, f.Fix)
		}
	}
}

// fuseTimeout: on kernels that have fs.fuse.default_request_timeout (6.14
// and later), 0 lets a container's FUSE server that never answers hold
// whatever reads from it until its connection is aborted. nvidiaprep's own
// reads give up at their deadline either way: a note, not a problem.
func (r *run) fuseTimeout() {
	b, err := fsutil.ReadRegular(filepath.Join(r.o.Config.Paths.Proc, "sys/fs/fuse/default_request_timeout"), 64)
	if err != nil || strings.TrimSpace(string(b)) != "0" {
		return
	}
	r.note("fs.fuse.default_request_timeout is 0: a FUSE server in a container (features: fuse=1) that never answers holds whatever reads from it until its connection is aborted (nvidiaprep's own reads give up and abort it); `sysctl fs.fuse.default_request_timeout=60` makes the kernel end such requests after a minute")
}

// apiMismatch is what the kernel module logs when a user-space library of
// another version talks to it: "NVRM: API mismatch: the client has the
// version X, but". Any process that opens the control node writes it,
// with the version its libraries claim: a container's own (a failed
// version check inside a container with other libraries) as much as the
// host's, and the line names no process.
const apiMismatch = "NVRM: API mismatch"

// Bounds of the kernel log read: this boot's last kernelLogLines lines
// (journalctl; dmesg's ring buffer is bounded by the kernel), at most
// kernelLogBytes kept, within kernelLogTimeout.
const (
	kernelLogLines   = 5000
	kernelLogBytes   = 4 << 20
	kernelLogTimeout = 20 * time.Second
)

// kernelLog: a user-space library of another version asked the module.
// The line is container-influenced: only when the host's own libraries
// are the client's version is it the host's to fix (a driver installed
// without reloading the module); otherwise it names the containers whose
// libraries are that version, and never sends the admin to the host.
func (r *run) kernelLog(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, kernelLogTimeout)
	defer cancel()
	var text string
	var errs []string
	for _, argv := range [][]string{{"journalctl", "-k", "-b", "-n", strconv.Itoa(kernelLogLines), "--no-pager", "-q", "-o", "cat"}, {"dmesg"}} {
		res, err := r.o.Runner.Run(ctx, hostcmd.Command{Name: argv[0], Args: argv[1:], Keep: kernelLogBytes})
		if err == nil {
			text = res.Stdout
			errs = nil
			break
		}
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		r.note("could not read the kernel log: %s", strings.Join(errs, "; "))
		return
	}
	var last string
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, apiMismatch); i >= 0 {
			last = l[i:]
		}
	}
	if line := secureboot.Refusal(text); line != "" {
		// An unsigned module is built again, signed; a signed one's key
		// is enrolled (kernel/module/signing.c names which).
		version, _ := record.ReadInstalledVersion(r.o.Config.Paths.Root)
		r.problem("module-signature", fmt.Sprintf("the kernel refused the NVIDIA module for its signature: %q (Secure Boot)", untrusted.New(line)),
			signFix(orNone(version), r.running(), strings.Contains(line, "unsigned module")))
	}
	if last == "" {
		return
	}
	line := untrusted.New(last) // its version is whatever the client claimed
	client := clientVersion(last)
	host := r.hostUserSpace()
	if client != "" && client == host && client != r.loaded {
		r.problem("api-mismatch", fmt.Sprintf("the kernel log says %q: the host's own NVIDIA libraries are %s, but the loaded module is %s (a driver was installed without reloading the module)", line, host, orNone(r.loaded)),
			"reboot the node; or stop everything that uses the GPUs and reload the module: `rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && modprobe nvidia`")
		return
	}
	whose := "not the host's own (" + host + ")"
	if host == "" {
		whose = "the host's or a container's (the host's own libraries have no nvidia-installer record)"
	}
	said := fmt.Sprintf("the kernel log says %q: a process with NVIDIA libraries of another version than the loaded module %s asked it, %s: any container given a GPU can write this line, with a version of its choosing", line, orNone(r.loaded), whose)
	cts := r.containersWith(client)
	if len(cts) == 0 {
		// Nothing nvidiaprep can see holds that version (the line may be
		// older than a fix, or a container's own libraries): say what to
		// look at, not a cause.
		r.note("%s; the line names no process, and no container's record has that version: look for libraries of another version in the containers given a GPU (`pct exec <vmid> -- nvidia-smi` fails there with \"Driver/library version mismatch\"), such as one with install = false or its own driver packages", said)
		return
	}
	r.problem("api-mismatch-client", said+"; by nvidiaprep's records, "+strings.Join(cts, ", ")+" has the user-space libraries "+client,
		"nothing on the host for the container's line: give that container the loaded driver's libraries (`nvidiaprep provision <vmid>` while it runs, or `pct reboot <vmid>`; with install = false, install the libraries of "+orNone(r.loaded)+" in it yourself)")
}

// clientVersion is the version in an API mismatch line, "" when it holds
// none that looks like one.
func clientVersion(line string) string {
	_, rest, ok := strings.Cut(line, "the client has the version ")
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, ",")
	if v = strings.TrimSpace(v); nvversion.Valid(v) {
		return v
	}
	return ""
}

// hostUserSpace is the version of the host's own user-space libraries:
// what the host driver unit installed, else nvidia-installer's record.
func (r *run) hostUserSpace() string {
	if h, ok, err := hostdriverstate.Load(r.o.Config.Paths.State); err == nil && ok && h.Installed != "" {
		return h.Installed
	}
	v, _ := record.ReadInstalledVersion(r.o.Config.Paths.Root)
	return v
}

// containersWith names the containers whose record says they have version.
func (r *run) containersWith(version string) []string {
	if version == "" {
		return nil
	}
	state := r.o.Config.Paths.State
	files, _ := filepath.Glob(filepath.Join(state, "containers", "*.json"))
	var out []string
	for _, f := range files {
		vmid, err := config.ParseVMID(strings.TrimSuffix(filepath.Base(f), ".json"))
		if err != nil || r.elsewhere(vmid) {
			continue
		}
		if rec, ok, err := record.Load(state, vmid); err == nil && ok && rec.Outcome == record.Installed && rec.Version == version {
			out = append(out, ctmsg.Name(vmid))
		}
	}
	return out
}
