// Package hostdriver is the host driver unit (`nvidiaprep host-driver`,
// nvidiaprep-host-driver.service): at every boot, before the guests start, it
// keeps the node's NVIDIA driver at the configured version ([driver]). It
// takes one of three paths: fast (the configured version is loaded: device
// nodes, the cache's tree, a record; milliseconds), pending (installed, but
// another module is loaded: say a reboot is required and change nothing), or
// install, in the six steps of steps.go run by one loop.
//
// Invariants: up to the end of the fetch step nothing on the node changes;
// after it the state file says an install is under way, so every failure (a
// *StepError naming the step and its log) leaves the node as it was or in a
// state the next run repairs. A loaded driver that a process holds is never
// replaced: the run ends "reboot required" (upgrade.go). Every host path is
// below the configuration's [paths]; commands run through hostcmd.Runner.
// What each step does: docs/driver-upgrades.md.
//
// Each step returns what it did; the loop hands each result to the ledger
// (ledger.go), the one writer of the state file and the one place that
// decides whether an install is partial.
package hostdriver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/record"
)

// Options wire one run to a host.
type Options struct {
	Config config.Config
	Runner hostcmd.Runner // nil is hostcmd.Clean()
	Log    zerolog.Logger
	// Status reports progress (sd_notify STATUS=); nil drops it.
	Status func(string)
	// Confirm, when set, is shown the plan before the first change to the
	// node and says whether to go on (an admin at a terminal); nil goes on
	// (the unit at boot never asks).
	Confirm func(Plan) bool
	// Modprobe loads missing modules on the fast path (nvidia-modprobe);
	// wire it only on the real host, as the hookscript does.
	Modprobe nvdev.Modprober
	// KernelRelease is `uname -r`; "" reads it from the kernel.
	KernelRelease string
	// HTTP fetches the .run; nil uses a client with connect and header
	// timeouts.
	HTTP *http.Client
	// DownloadAttempts (default 4) and DownloadBackoff (default 1 s, doubled
	// after each failed attempt) shape the download's retries.
	DownloadAttempts int
	DownloadBackoff  time.Duration
}

// Paths taken by a run.
const (
	PathUnconfigured = "unconfigured" // no [driver] version: nothing to do
	PathFast         = "fast"         // the configured driver is loaded
	PathPending      = "pending"      // installed, waiting for a reboot
	PathInstalled    = "installed"    // installed by this run
	PathNotLoaded    = "not-loaded"   // installed, and a later boot came up without it
)

// Report says what a successful run found and did.
type Report struct {
	Path                          string
	Configured, Loaded, Installed string
	Nodes                         []string // the device nodes ensured (fast path)
	Tree                          string   // the extracted tree for containers
	Rebooting                     bool     // reboot = "auto" asked for a reboot
	Holders                       []Holder // processes that kept the loaded driver (reboot required)
	Duration                      time.Duration
	Summary                       string // one line for people
}

// Files the unit reads and writes below [paths] root, and the logs of the
// programs it runs (real paths: the programs write them).
const (
	altMarker         = "usr/lib/nvidia/alternate-install-present" // left by distribution packages
	InstallerLog      = "/var/log/nvidia-installer.log"
	UninstallerLog    = "/var/log/nvidia-uninstall.log"
	aptLog            = "/var/log/apt/term.log"
	blacklistContents = "# Written by nvidiaprep host-driver: nouveau must not take the GPUs that the\n# NVIDIA driver drives. It is written again by each install while [driver]\n# is configured.\nblacklist nouveau\noptions nouveau modeset=0\n"
)

// Run brings the node to the configured driver, or reports why it need not
// or cannot. See the package documentation.
func Run(ctx context.Context, o Options) (Report, error) {
	return newHost(o).run(ctx)
}

// host is one run's view of the node: the options with their defaults and
// the tools every path uses (progress, commands, the cache). Nothing
// changes it during the run: the install's facts travel in a job, what a
// step did in its result, and what the state file says is the ledger's.
type host struct {
	o     Options
	d     config.Driver
	p     config.Paths
	cache driverrun.Cache
	start time.Time
}

func newHost(o Options) *host {
	start := time.Now()
	if o.Config.Paths.Root == "" {
		o.Config.Paths.Root = "/"
	}
	if o.Runner == nil {
		o.Runner = hostcmd.Clean()
	}
	if o.HTTP == nil {
		o.HTTP = defaultClient()
	}
	if o.DownloadAttempts <= 0 {
		o.DownloadAttempts = defaultAttempts
	}
	if o.DownloadBackoff <= 0 {
		o.DownloadBackoff = defaultBackoff
	}
	return &host{o: o, d: o.Config.Driver, p: o.Config.Paths, cache: driverrun.Cache{Dir: o.Config.Paths.Cache}, start: start}
}

// status announces progress: the log and the unit's STATUS line.
func (h *host) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	h.o.Log.Info().Msg(msg)
	if h.o.Status != nil {
		h.o.Status(msg)
	}
}

func (h *host) logf(format string, args ...any) { h.o.Log.Info().Msgf(format, args...) }
func (h *host) warnf(format string, args ...any) {
	h.o.Log.Warn().Msgf(format, args...)
}

func (h *host) run(ctx context.Context) (Report, error) {
	p, d := h.p, h.d
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil && !errors.Is(err, nvdev.ErrNoDriver) {
		return Report{}, err
	}
	rep := Report{Configured: d.Version, Loaded: loaded}
	if d.Version == "" {
		rep.Path = PathUnconfigured
		rep.Summary = fmt.Sprintf("no [driver] version is configured, so the host driver is not managed (loaded: %s)", orNone(loaded))
		h.status("%s", rep.Summary)
		rep.Duration = time.Since(h.start)
		return rep, nil
	}
	lock, err := filelock.TryLock(filepath.Join(p.State, "locks", "host-driver.lock"))
	if errors.Is(err, filelock.ErrBusy) {
		h.status("another host-driver run is under way; waiting for it")
		lock, err = filelock.Wait(ctx, filepath.Join(p.State, "locks", "host-driver.lock"))
	}
	if err != nil {
		return rep, err
	}
	defer lock.Unlock()

	prev, _, stateErr := hostdriverstate.Load(p.State)
	if stateErr != nil {
		h.warnf("%v; ignoring it", stateErr)
	}
	installed, err := record.ReadInstalledVersion(p.Root)
	if err != nil {
		return rep, fmt.Errorf("%w: which driver is installed is unknown, so nothing was changed; fix it or move it away (then the configured driver is installed again), then run this again", err)
	}
	rep.Installed = installed
	led := newLedger(p.State, h.start, h.warnf, hostdriverstate.State{Configured: d.Version, Loaded: loaded, Installed: installed}, prev, stateErr)

	switch {
	case loaded == d.Version:
		return h.fastPath(ctx, led, rep)
	case installed == d.Version && !led.partial() && prev.Configured == d.Version && installFinished(prev) && laterBoot(p.Proc, prev):
		return h.notLoaded(ctx, led, rep, prev)
	case installed == d.Version && !led.partial():
		return h.pending(led, rep, prev)
	default:
		if installed == d.Version && stateErr != nil {
			h.logf("the host driver state cannot be read, so whether the install of driver %s recorded in %s finished is unknown; installing again", d.Version, record.NVIDIALog)
		} else if installed == d.Version {
			h.logf("the record of driver %s in %s is from an install that did not finish (%s at step %s); installing again", d.Version, record.NVIDIALog, prev.Outcome, prev.Step)
		}
		return h.install(ctx, led, rep)
	}
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// fastPath: the configured driver is loaded.
func (h *host) fastPath(ctx context.Context, led *ledger, rep Report) (Report, error) {
	d := h.d
	fail := func(what string, err error) (Report, error) {
		return rep, led.fail(&StepError{Name: what, Err: err}, rep.Installed)
	}
	nodes, err := controlNodes(h)
	if err != nil {
		return fail("device nodes", err)
	}
	rep.Nodes = nodes
	tree, err := h.cache.Extract(ctx, d.Version, d.SHA256)
	var missing *driverrun.NotCachedError
	if errors.As(err, &missing) {
		// Installed some other way, or the cache was cleared: fetch it once.
		h.status("driver %s is loaded, but its .run is not in the cache: fetching it for the containers", d.Version)
		if _, err = h.fetcher().fetch(ctx); err == nil {
			tree, err = h.cache.Extract(ctx, d.Version, d.SHA256)
		}
	}
	if err != nil {
		return fail("driver tree for containers", err)
	}
	rep.Tree = tree
	if err := clearRebootRequired(h.p.Root); err != nil {
		h.warnf("%v", err)
	}
	rep.Path = PathFast
	rep.Duration = time.Since(h.start)
	rep.Summary = fmt.Sprintf("NVIDIA driver %s is loaded; device nodes %s ready; containers' driver tree %s ready (%v)",
		d.Version, strings.Join(rep.Nodes, " "), tree, rep.Duration.Round(time.Microsecond))
	// The boot id: a later boot without the driver fails.
	if err := led.end(ending{outcome: hostdriverstate.OutcomeCurrent, loaded: d.Version, bootID: bootID(h.p.Proc)}); err != nil {
		h.warnf("%v", err)
	}
	h.status("%s", rep.Summary)
	return rep, nil
}

// controlNodes makes the device nodes containers need for the loaded
// driver and names them.
func controlNodes(h *host) ([]string, error) {
	p := h.p
	f := nvdev.Finder{Dev: p.Dev, Proc: p.Proc, Sys: p.Sys, Modprobe: h.o.Modprobe, Warn: func(msg string) { h.warnf("%s", msg) }}
	majors, err := f.Majors()
	if err != nil {
		return nil, err
	}
	nodes, _, err := f.ControlNodes(majors)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(nodes))
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return names, nil
}

// pending: installed, not loaded.
func (h *host) pending(led *ledger, rep Report, prev hostdriverstate.State) (Report, error) {
	d := h.d
	rep.Path = PathPending
	why := fmt.Sprintf("NVIDIA driver %s is installed but not loaded (loaded: %s): reboot required", d.Version, orNone(rep.Loaded))
	e := ending{outcome: hostdriverstate.OutcomeRebootRequired}
	if prev.Configured == d.Version {
		e.bootID = prev.BootID // the install's boot: a later one that comes up without it fails
	}
	if err := markRebootRequired(h.p.Root); err != nil {
		return rep, err
	}
	if prev.Configured == d.Version && !prev.Time.IsZero() && prev.Outcome == hostdriverstate.OutcomeRebootRequired {
		e.since = prev.Time // when it was installed
	}
	rep.Duration = time.Since(h.start)
	if err := led.end(e); err != nil {
		return rep, err
	}
	rep.Summary = why
	h.status("%s", why)
	return rep, nil
}

// installFinished tells whether the previous run's record is that of a
// finished install waiting for its boot, of a boot that came without it,
// of a boot that had it loaded, or of a run cut off while loading it (step
// 6 begins once the install is proven): on a later boot, the driver should
// be loaded.
func installFinished(prev hostdriverstate.State) bool {
	switch prev.Outcome {
	case hostdriverstate.OutcomeRebootRequired, hostdriverstate.OutcomeRebooting, hostdriverstate.OutcomeNotLoaded, hostdriverstate.OutcomeCurrent:
		return true
	case hostdriverstate.OutcomeInstalling:
		return prev.Step == StepLoad.Name()
	}
	return false
}

// bootedAfter tells whether the node booted after t (btime in <proc>/stat).
func bootedAfter(proc string, t time.Time) bool {
	b, err := fsutil.ReadRegular(filepath.Join(proc, "stat"), 1<<20)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return err == nil && time.Unix(secs, 0).After(t)
		}
	}
	return false
}

func (h *host) fetcher() fetcher {
	d := h.d
	return fetcher{cache: h.cache, version: d.Version, source: d.Run, sha256: d.SHA256,
		client: h.o.HTTP, attempts: h.o.DownloadAttempts, backoff: h.o.DownloadBackoff,
		log: func(format string, args ...any) { h.logf(format, args...) }}
}

func (h *host) kernelRelease() (string, error) {
	if h.o.KernelRelease != "" {
		return h.o.KernelRelease, nil
	}
	if k := kernels.Running(); k != "" {
		return k, nil
	}
	return "", errors.New("uname: the kernel names no release")
}
