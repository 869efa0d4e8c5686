// Package prestart is the hook's pre-start phase: from the host as it is now
// (driver, GPUs, device nodes and their live numbers) it plans what a
// container gets and writes that plan as nvidiaprep's block into the LXC
// config Proxmox generated for this start, atomically.
package prestart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/devplan"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/gpucache"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/pve"
)

// Host is what pre-start reads and touches on the host.
type Host struct {
	// LXCConfig is the generated config, /var/lib/lxc/<vmid>/config.
	LXCConfig string
	Dev       string
	Proc      string
	Sys       string
	GPUs      nvdev.GPULister
	Modprobe  nvdev.Modprober // nil where nvidia-modprobe must not run
	Nodes     nvdev.NodeFS    // stats and makes device nodes; nil: the real host's
	// DriverCache is the node's driver cache, whose extracted trees
	// containers that get an install see read-only; Dir "": none.
	DriverCache driverrun.Cache
	// PVE is Proxmox's configuration (/etc/pve): the container's
	// lxc/<vmid>.conf is where hand-written lines come from, with its devN:
	// entries.
	PVE string
	// GPUCache holds the MIG devices' UUIDs (NVML's, written by the worker
	// and the admin commands); pre-start reads the instances themselves
	// from procfs. State "": none.
	GPUCache gpucache.File
}

// Request is one container's choice.
type Request struct {
	VMID int
	// GPUs is the container's selection (config.Container's).
	GPUs     gpusel.Selection
	Required bool
	// Install mounts the node's driver cache for post-start's installer.
	Install bool
	// Strict refuses the start when hand-written lines reach GPUs the
	// selection does not give; otherwise they are named in the task log.
	Strict bool
	// NodeGID (a group inside the container) and NodeMode (0: the host's)
	// are what its copies of the nodes get.
	NodeGID  *uint32
	NodeMode uint32
}

// Why a container cannot have its GPU: a RequiredError's Reason, and what
// errors.Is finds in it.
var (
	// ErrNoDriver: no NVIDIA kernel module is loaded.
	ErrNoDriver = errors.New("no NVIDIA driver is loaded on this node")
	// ErrDriver: the loaded driver's version, majors or device nodes
	// cannot be read or made.
	ErrDriver = errors.New("the NVIDIA driver cannot be used")
	// ErrNoGPU: the GPUs cannot be listed, or the selection names GPUs
	// this node does not have.
	ErrNoGPU = errors.New("the selected GPUs cannot be given")
	// ErrMIG: the MIG capabilities of a GPU in MIG mode cannot be given.
	ErrMIG = errors.New("the MIG capabilities cannot be given")
	// ErrDriverCache: the driver cache cannot be shown to the container.
	ErrDriverCache = errors.New("the driver cache cannot be shown")
)

// RequiredError means the container requires its GPU and cannot have it;
// the start must fail. errors.Is finds its Reason (ErrNoDriver, ...) and
// what its Err wraps (e.g. nvdev.ErrNoDriver, *nvdev.UnmatchedError).
type RequiredError struct {
	VMID   int
	Reason error  // one of ErrNoDriver, ErrDriver, ErrNoGPU, ErrMIG, ErrDriverCache
	Err    error  // the cause; nil when Reason says it all
	Why    string // the sentence for the admin: Reason or Err in words
	Fix    string
}

func (e *RequiredError) Error() string {
	return fmt.Sprintf("%s requires its GPU (required = true in [containers.%d]) but %s. %s To start it without a GPU, set required = false.",
		ctmsg.Name(e.VMID), e.VMID, e.Why, e.Fix)
}

// NamedVMID says that the error's text names its container (ctmsg.Named).
func (e *RequiredError) NamedVMID() int { return e.VMID }

// Unwrap gives errors.Is and errors.As the reason and the cause.
func (e *RequiredError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Reason, e.Err}
}

// BypassError means hand-written lines of a container with strict = true
// reach GPUs its selection does not give it; the start must fail.
type BypassError struct {
	VMID     int
	Findings []devplan.Finding
}

// NamedVMID says that the error's text names its container (ctmsg.Named).
func (e *BypassError) NamedVMID() int { return e.VMID }

func (e *BypassError) Error() string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		lines[i] = f.String()
	}
	return fmt.Sprintf("%s has strict = true in [containers.%d], and its config reaches GPUs it is not given: %s. Fix those lines, or set strict = false to start it with a warning.",
		ctmsg.Name(e.VMID), e.VMID, strings.Join(lines, "; "))
}

// PremiseError means lines of the container's config break what
// nvidiaprep's defences rely on (devplan.Premises); the start must fail.
type PremiseError struct {
	VMID     int
	Findings []devplan.Finding
}

// NamedVMID says that the error's text names its container (ctmsg.Named).
func (e *PremiseError) NamedVMID() int { return e.VMID }

func (e *PremiseError) Error() string {
	lines := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		lines[i] = f.String()
	}
	return ctmsg.Sprintf(e.VMID, "its config breaks what nvidiaprep relies on to keep the container from the host and its nodes: %s. The start is refused and nothing was written.",
		strings.Join(lines, "; "))
}

// Result says what the container was given.
type Result struct {
	Version string
	GPUs    []nvdev.GPU
	MIGs    []nvdev.MIG
	Nodes   []nvdev.Node
	Copies  []nvdev.Node // the container's own copies of Nodes, which it is given
	Lines   []string     // the block's lines; empty when it gets nothing
	mounted []string     // the block's mount targets
	// bypassing are the hand-written lines that reach GPUs other than
	// GPUs (bypasses), judged once by plan with the block.
	bypassing []devplan.Finding
}

// staleTemp is the age after which a temporary file beside the LXC config
// is an interrupted writer's: a write takes milliseconds.
const staleTemp = 5 * time.Minute

// Run plans and writes the block. For a container that does not require its
// GPU, trouble with the driver or GPUs is logged and the container starts
// without GPU; for one that does, it is a *RequiredError. Errors about the
// config file itself are returned either way: nothing is written then.
func Run(h Host, req Request, log zerolog.Logger) (Result, error) {
	config, err := fsutil.ReadRegular(h.LXCConfig, lxcconf.MaxSize)
	if errors.Is(err, os.ErrNotExist) {
		return Result{}, fmt.Errorf("no generated LXC config at %s: pre-start runs as the container's Proxmox hookscript (pct start %d), after Proxmox writes that file; check the vmid", h.LXCConfig, req.VMID)
	}
	if err != nil {
		return Result{}, fmt.Errorf("reading %s: %w", h.LXCConfig, err)
	}
	entries, err := lxcconf.Entries(config)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", h.LXCConfig, err)
	}
	// The Proxmox config is read once: the hand-written lines and devN:
	// entries the findings below judge.
	hand, devices := h.handWritten(req.VMID, entries)
	res, err := plan(h, req, entries, hand, devices, log)
	var reqErr *RequiredError
	if errors.As(err, &reqErr) {
		return Result{}, err
	}
	if err != nil {
		log.Warn().Err(err).Msgf("%s starts without GPU: %v", ctmsg.Name(req.VMID), err)
		res = Result{}
	}
	// The hand-written binds of the host's own nodes at paths the block
	// mounts are left out of this start's config: LXC would mount theirs
	// and skip the block's. The premises are judged on what remains, so a
	// line is either left out or judged, by one classification.
	leftOut := devplan.HostNodeBinds(entries, res.mounted, h.Dev)
	if len(res.Lines) > 0 {
		targets := []string{driverrun.MountPoint}
		for _, n := range res.Nodes {
			targets = append(targets, "dev/"+n.Name)
		}
		if findings := devplan.Premises(devplan.Except(entries, leftOut), targets, h.pveConf(req.VMID)); len(findings) > 0 {
			return Result{}, &PremiseError{VMID: req.VMID, Findings: findings}
		}
	}
	// Copies of nodes the container is no longer given (all of them, when
	// its GPUs were taken away) go: they are neither mounted nor allowed.
	if err := nvdev.PruneCopies(nvdev.CopiesDir(h.Dev, req.VMID), res.Copies); err != nil {
		log.Warn().Msg(ctmsg.Text(req.VMID, err))
	}
	// plan judged the bypasses for the GPUs its block gives; a container
	// given no block (none configured, or the plan failed) is judged here,
	// as given no GPU.
	findings := res.bypassing
	if len(res.Lines) == 0 {
		findings = bypasses(h, req, entries, devices, nil)
	}
	if len(findings) > 0 {
		if req.Strict {
			return Result{}, &BypassError{VMID: req.VMID, Findings: findings}
		}
		for _, f := range findings {
			log.Warn().Msg(ctmsg.Sprintf(req.VMID, "%s (strict = true in [containers.%d] refuses the start instead)", f, req.VMID))
		}
	}
	updated, err := lxcconf.Apply(lxcconf.Disable(config, leftOut), res.Lines)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", h.LXCConfig, err)
	}
	if !bytes.Equal(updated, config) {
		if err := fsutil.WriteFileAtomic(h.LXCConfig, updated, 0o644); err != nil {
			return Result{}, err
		}
	}
	// A pre-start killed while writing the config left its temporary file.
	// Pre-starts of one container take no common lock, so only files too
	// old to be a live writer's go.
	if gone, err := fsutil.RemoveStaleTemps(h.LXCConfig, staleTemp); err != nil {
		log.Warn().Msg(ctmsg.Text(req.VMID, err))
	} else if len(gone) > 0 {
		log.Info().Msg(ctmsg.Sprintf(req.VMID, "removed %d temporary file(s) that an interrupted start left beside %s", len(gone), h.LXCConfig))
	}
	return res, nil
}

// plan decides the block from the generated config's entries and the
// container's hand-written lines and devN: entries (handWritten).
func plan(h Host, req Request, entries, hand []lxcconf.Entry, devices []devplan.Passthrough, log zerolog.Logger) (Result, error) {
	if req.GPUs.None() {
		log.Info().Msg(ctmsg.Sprintf(req.VMID, "no GPUs configured (gpus = []), adding nothing"))
		return Result{}, nil
	}
	// fail says why the container gets no GPU: the reason, its cause (nil
	// when the reason says it all) and, when not "", the sentence.
	fail := func(reason, cause error, why, fix string) error {
		if why == "" {
			why = cause.Error()
		}
		if req.Required {
			return &RequiredError{VMID: req.VMID, Reason: reason, Err: cause, Why: why, Fix: fix}
		}
		return fmt.Errorf("%s. %s", why, fix)
	}
	const checkDriver = "Check the driver with `nvidiaprep doctor`."
	version, err := nvdev.LoadedVersion(h.Sys, h.Proc)
	if errors.Is(err, nvdev.ErrNoDriver) {
		return Result{}, fail(ErrNoDriver, err, ErrNoDriver.Error(),
			"Load it with `modprobe nvidia`, or install it with `systemctl start nvidiaprep-host-driver`; `nvidiaprep doctor` shows what is wrong.")
	}
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	finder := nvdev.Finder{Dev: h.Dev, Proc: h.Proc, Sys: h.Sys, Modprobe: h.Modprobe, Nodes: h.Nodes,
		Warn: func(msg string) { log.Warn().Msg(ctmsg.Sprintf(req.VMID, "%s", msg)) }}
	majors, err := finder.Majors()
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	all, err := h.GPUs.GPUs()
	if err != nil {
		return Result{}, fail(ErrNoGPU, err, "listing the GPUs failed: "+err.Error(), checkDriver)
	}
	gpus, err := nvdev.Select(all, req.GPUs)
	var unmatched *nvdev.UnmatchedError
	if errors.As(err, &unmatched) {
		if req.Required {
			return Result{}, fail(ErrNoGPU, err, "", fmt.Sprintf("Fix gpus in [containers.%d].", req.VMID))
		}
		log.Warn().Msg(ctmsg.Sprintf(req.VMID, "%v; fix gpus in [containers.%d]", err, req.VMID))
	}
	migs, err := selectMIGs(h, req, all, log)
	if err != nil {
		return Result{}, fail(ErrMIG, err, "", "List the MIG devices with `nvidia-smi -L`, and fix gpus in [containers.N] (a MIG-<uuid> made since the last `nvidiaprep status` is learnt by running it).")
	}
	if len(gpus) == 0 && len(migs) == 0 {
		return Result{}, fail(ErrNoGPU, nil, "no GPU on this node matches its selection", "List the GPUs with `nvidia-smi -L` and fix gpus in [containers.N].")
	}
	control, majors, err := finder.ControlNodes(majors)
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	gpuNodes, err := finder.GPUNodes(majors, withParents(gpus, all, migs))
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	capNodes, err := finder.CapNodes(majors, gpus)
	if err != nil {
		return Result{}, fail(ErrMIG, err, "", "Check MIG with `nvidia-smi mig -lgi`.")
	}
	migNodes, err := finder.MIGCapNodes(majors, migs)
	if err != nil {
		return Result{}, fail(ErrMIG, err, "", "Check MIG with `nvidia-smi mig -lgi`.")
	}
	capNodes = append(capNodes, migNodes...)
	drmNodes, err := finder.DRMNodes(gpus)
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	nodes := append(append(control, gpuNodes...), capNodes...)
	for _, f := range devplan.Stale(entries, majors, h.Dev, h.pveConf(req.VMID)) {
		log.Warn().Msg(ctmsg.Sprintf(req.VMID, "%s", f))
	}
	// The container gets its own copies of the nodes, not the host's: what
	// its root does to them (chmod, chown) stays in its copies.
	owner, err := nodeOwner(req, entries)
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", fmt.Sprintf("Fix gid in [containers.%d].", req.VMID))
	}
	copies, err := nvdev.CopyNodes(nvdev.OrReal(h.Nodes), nvdev.CopiesDir(h.Dev, req.VMID), nodes, owner)
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	drmCopies, err := nvdev.CopyNodes(nvdev.OrReal(h.Nodes), nvdev.CopiesDir(h.Dev, req.VMID), drmNodes, drmOwner(owner))
	if err != nil {
		return Result{}, fail(ErrDriver, err, "", checkDriver)
	}
	nodes, copies = append(nodes, drmNodes...), append(copies, drmCopies...)
	// The container's own rules and mounts are written whatever
	// hand-written lines say; a hand-written bind at a path the block
	// mounts is left out of this start's config (lxcconf.Disable), so the
	// copies are what the container sees. Those lines are named for removal.
	p := devplan.ForNodes(copies)
	gives := func(node string) bool {
		return slices.ContainsFunc(p.Mounts, func(m devplan.Mount) bool { return m.Target == "dev/"+node })
	}
	// A line that both reaches another GPU and is superseded is named
	// once, as a bypass (Run warns of those).
	bypassing := bypasses(h, req, entries, devices, gpus)
	superseded := devplan.Superseded(hand, devices, majors, h.Dev, req.VMID, h.pveConf(req.VMID), gives)
	for _, f := range devplan.Without(superseded, bypassing) {
		log.Warn().Msg(ctmsg.Sprintf(req.VMID, "%s", f))
	}
	if req.Install && h.DriverCache.Dir != "" {
		m, err := driverMount(h.DriverCache)
		if err != nil {
			return Result{}, fail(ErrDriverCache, err, "", "Check the [paths] cache directory.")
		}
		p.Mounts = append(p.Mounts, m)
	}
	lines := append([]string{header(version, gpus, migs)}, p.Lines()...)
	var mounted []string
	for _, m := range p.Mounts {
		mounted = append(mounted, m.Target)
	}
	return Result{Version: version, GPUs: gpus, MIGs: migs, Nodes: nodes, Copies: copies, Lines: lines, mounted: mounted, bypassing: bypassing}, nil
}

// driverMount shows the cache's extracted trees inside the container as a
// read-only overlay of the drivers directory and an empty one: an overlay
// without an upper layer has a read-only superblock, which no remount inside
// a privileged container makes writable (a read-only bind it would), so no
// container can change a tree that another container's install then runs.
// Both directories are made now if missing, so that a version extracted
// after the start still appears inside (overlayfs looks names up in its
// layers afresh, unless the name was looked up while missing).
func driverMount(c driverrun.Cache) (devplan.Mount, error) {
	for _, dir := range []string{c.DriversDir(), c.EmptyLayer()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return devplan.Mount{}, fmt.Errorf("creating the driver cache: %w", err)
		}
	}
	m, err := devplan.ReadOnlyOverlay(driverrun.MountPoint, c.DriversDir(), c.EmptyLayer())
	if err != nil {
		return devplan.Mount{}, fmt.Errorf("the driver cache cannot be shown to containers: %w", err)
	}
	return m, nil
}

// pveConf is the container's Proxmox config, where hand-written lines come
// from.
func (h Host) pveConf(vmid int) string {
	dir := h.PVE
	if dir == "" {
		dir = pve.DefaultDir
	}
	return pve.CTPath(dir, vmid)
}

// handWritten are the container's hand-written lines as its Proxmox config
// has them (lines a devN: entry makes in the generated config are not
// hand-written), or, where that config cannot be read, the generated
// config's entries.
func (h Host) handWritten(vmid int, generated []lxcconf.Entry) ([]lxcconf.Entry, []devplan.Passthrough) {
	if h.PVE == "" {
		return generated, nil
	}
	ct, err := pve.ReadCT(h.PVE, vmid)
	if err != nil {
		return generated, nil
	}
	return ct.LXC, devplan.Passthroughs(ct.Devices)
}

// bypasses names the hand-written lines and devN: entries (devices) that
// reach GPUs other than gpus, those the container is given.
func bypasses(h Host, req Request, entries []lxcconf.Entry, devices []devplan.Passthrough, gpus []nvdev.GPU) []devplan.Finding {
	sel := devplan.Grant{VMID: req.VMID, All: req.GPUs.All, Privileged: true, PVEConf: h.pveConf(req.VMID)}
	for _, g := range gpus {
		sel.Given = append(sel.Given, uint32(g.Minor))
	}
	for _, e := range entries {
		if e.Key == "lxc.idmap" {
			sel.Privileged = false
		}
	}
	return devplan.Bypasses(entries, devices, sel)
}

// header is the block's first line: what it gives, for a reader of the config.
func header(version string, gpus []nvdev.GPU, migs []nvdev.MIG) string {
	ids := make([]string, len(gpus))
	for i, g := range gpus {
		ids[i] = fmt.Sprintf("%d=%s", g.Index, g.PCIBusID)
	}
	h := fmt.Sprintf("# driver %s; GPUs %s", version, strings.Join(ids, " "))
	if len(migs) > 0 {
		h += "; MIG " + migHeader(migs)
	}
	return h
}
