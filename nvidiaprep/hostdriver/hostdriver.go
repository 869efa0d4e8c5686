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
package hostdriver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
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
	"nvidiaprep/nvidiaprep/kernelguard"
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
	r := &runner{o: o, start: time.Now()}
	r.defaults()
	return r.run(ctx)
}

// runner is one run.
type runner struct {
	o     Options
	start time.Time
	cache driverrun.Cache
	st    hostdriverstate.State
	rep   Report
	// Between the install steps: the current step, the verified .run
	// (step 1), and the packages step 3 installs (downloaded by its prepare).
	cur        Step
	runFile    string
	headerPkgs []string
	// plan is what kernelguard.Gate found at the end of step 1; kernels,
	// what DKMS has for each kernel after the installer.
	plan    kernelguard.Plan
	kernels []kernels.Kernel
	// oldRun is the loaded driver's cached .run, to put it back when the
	// new one fails (upgrade.go).
	oldRun string
}

func (r *runner) defaults() {
	if r.o.Config.Paths.Root == "" {
		r.o.Config.Paths.Root = "/"
	}
	if r.o.Runner == nil {
		r.o.Runner = hostcmd.Clean()
	}
	if r.o.HTTP == nil {
		r.o.HTTP = defaultClient()
	}
	if r.o.DownloadAttempts <= 0 {
		r.o.DownloadAttempts = defaultAttempts
	}
	if r.o.DownloadBackoff <= 0 {
		r.o.DownloadBackoff = defaultBackoff
	}
	r.cache = driverrun.Cache{Dir: r.o.Config.Paths.Cache}
}

func (r *runner) driver() config.Driver { return r.o.Config.Driver }
func (r *runner) paths() config.Paths   { return r.o.Config.Paths }
func (r *runner) host(rel string) string {
	return r.o.Config.Paths.Host(rel)
}

// status announces progress: the log and the unit's STATUS line.
func (r *runner) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.o.Log.Info().Msg(msg)
	if r.o.Status != nil {
		r.o.Status(msg)
	}
}

func (r *runner) logf(format string, args ...any) { r.o.Log.Info().Msgf(format, args...) }
func (r *runner) warnf(format string, args ...any) {
	r.o.Log.Warn().Msgf(format, args...)
}

func (r *runner) run(ctx context.Context) (Report, error) {
	p, d := r.paths(), r.driver()
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil && !errors.Is(err, nvdev.ErrNoDriver) {
		return r.rep, err
	}
	r.rep.Configured, r.rep.Loaded = d.Version, loaded
	if d.Version == "" {
		r.rep.Path = PathUnconfigured
		r.rep.Summary = fmt.Sprintf("no [driver] version is configured, so the host driver is not managed (loaded: %s)", orNone(loaded))
		r.status("%s", r.rep.Summary)
		r.finish()
		return r.rep, nil
	}
	lock, err := filelock.TryLock(filepath.Join(p.State, "locks", "host-driver.lock"))
	if errors.Is(err, filelock.ErrBusy) {
		r.status("another host-driver run is under way; waiting for it")
		lock, err = filelock.Wait(ctx, filepath.Join(p.State, "locks", "host-driver.lock"))
	}
	if err != nil {
		return r.rep, err
	}
	defer lock.Unlock()

	prev, _, stateErr := hostdriverstate.Load(p.State)
	if stateErr != nil {
		r.warnf("%v; ignoring it", stateErr)
	}
	installed, err := r.installedVersion()
	if err != nil {
		return r.rep, fmt.Errorf("%w: which driver is installed is unknown, so nothing was changed; fix it or move it away (then the configured driver is installed again), then run this again", err)
	}
	r.rep.Installed = installed
	// Without the state, whether an install of this version finished is
	// unknown: it is treated as one that did not, and installed again.
	partial := prev.Partial || stateErr != nil && installed == d.Version && loaded != d.Version
	r.st = hostdriverstate.State{Configured: d.Version, Loaded: loaded, Installed: installed, Partial: partial}

	switch {
	case loaded == d.Version:
		return r.fastPath(ctx)
	case installed == d.Version && !partial && prev.Configured == d.Version && installOutcome(prev.Outcome) && r.laterBoot(prev):
		return r.notLoaded(ctx, prev)
	case installed == d.Version && !partial:
		return r.pending(prev)
	default:
		if installed == d.Version && stateErr != nil {
			r.logf("the host driver state cannot be read, so whether the install of driver %s recorded in %s finished is unknown; installing again", d.Version, record.NVIDIALog)
		} else if installed == d.Version {
			r.logf("the record of driver %s in %s is from an install that did not finish (%s at step %s); installing again", d.Version, record.NVIDIALog, prev.Outcome, prev.Step)
		}
		return r.install(ctx)
	}
}

// installedVersion reads nvidia-installer's record; "" when there is none,
// an error when there is one that cannot be read.
func (r *runner) installedVersion() (string, error) {
	b, err := fsutil.ReadRegular(r.host(record.NVIDIALog), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading nvidia-installer's record: %w", err)
	}
	return record.InstalledVersion(b), nil
}

func orNone(v string) string {
	if v == "" {
		return "none"
	}
	return v
}

// finish stamps the duration.
func (r *runner) finish() { r.rep.Duration = time.Since(r.start) }

// fastPath: the configured driver is loaded.
func (r *runner) fastPath(ctx context.Context) (Report, error) {
	p, d := r.paths(), r.driver()
	f := nvdev.Finder{Dev: p.Dev, Proc: p.Proc, Sys: p.Sys, Modprobe: r.o.Modprobe, Warn: func(msg string) { r.warnf("%s", msg) }}
	majors, err := f.Majors()
	if err != nil {
		return r.rep, r.fastFail("device nodes", err)
	}
	nodes, _, err := f.ControlNodes(majors)
	if err != nil {
		return r.rep, r.fastFail("device nodes", err)
	}
	for _, n := range nodes {
		r.rep.Nodes = append(r.rep.Nodes, n.Name)
	}
	tree, err := r.cache.Extract(ctx, d.Version, d.SHA256)
	var missing *driverrun.NotCachedError
	if errors.As(err, &missing) {
		// Installed some other way, or the cache was cleared: fetch it once.
		r.status("driver %s is loaded, but its .run is not in the cache: fetching it for the containers", d.Version)
		if _, err = r.fetcher().fetch(ctx); err == nil {
			tree, err = r.cache.Extract(ctx, d.Version, d.SHA256)
		}
	}
	if err != nil {
		return r.rep, r.fastFail("driver tree for containers", err)
	}
	r.rep.Tree = tree
	if err := clearRebootRequired(r.o.Config.Paths.Root); err != nil {
		r.warnf("%v", err)
	}
	r.rep.Path = PathFast
	r.finish()
	r.rep.Summary = fmt.Sprintf("NVIDIA driver %s is loaded; device nodes %s ready; containers' driver tree %s ready (%v)",
		d.Version, strings.Join(r.rep.Nodes, " "), tree, r.rep.Duration.Round(time.Microsecond))
	r.st.Outcome, r.st.Time, r.st.Duration = hostdriverstate.OutcomeCurrent, time.Now().UTC(), r.rep.Duration
	r.st.BootID = r.bootID() // a later boot without the driver fails
	if err := hostdriverstate.Save(p.State, r.st, false); err != nil {
		r.warnf("%v", err)
	}
	r.status("%s", r.rep.Summary)
	return r.rep, nil
}

func (r *runner) fastFail(what string, err error) error {
	e := &StepError{Name: what, Err: err}
	r.st.Outcome, r.st.Step, r.st.Error, r.st.Time = hostdriverstate.OutcomeFailed, what, e.Error(), time.Now().UTC()
	if serr := hostdriverstate.Save(r.paths().State, r.st, true); serr != nil {
		r.warnf("%v", serr)
	}
	return e
}

// pending: installed, not loaded.
func (r *runner) pending(prev hostdriverstate.State) (Report, error) {
	d := r.driver()
	r.rep.Path = PathPending
	why := fmt.Sprintf("NVIDIA driver %s is installed but not loaded (loaded: %s): reboot required", d.Version, orNone(r.rep.Loaded))
	if prev.Configured == d.Version {
		r.st.BootID = prev.BootID // the install's boot: a later one that comes up without it fails
	}
	if err := markRebootRequired(r.o.Config.Paths.Root); err != nil {
		return r.rep, err
	}
	r.st.Outcome, r.st.Time = hostdriverstate.OutcomeRebootRequired, time.Now().UTC()
	if prev.Configured == d.Version && !prev.Time.IsZero() && prev.Outcome == hostdriverstate.OutcomeRebootRequired {
		r.st.Time = prev.Time // when it was installed
	}
	r.finish()
	r.st.Duration = r.rep.Duration
	if err := hostdriverstate.Save(r.paths().State, r.st, false); err != nil {
		return r.rep, err
	}
	r.rep.Summary = why
	r.status("%s", why)
	return r.rep, nil
}

// installOutcome tells whether an outcome is that of a finished install
// waiting for its boot, of a boot that came without it, or of a boot
// that had it loaded: on a later boot, the driver should be loaded.
func installOutcome(o string) bool {
	return o == hostdriverstate.OutcomeRebootRequired || o == hostdriverstate.OutcomeRebooting || o == hostdriverstate.OutcomeNotLoaded || o == hostdriverstate.OutcomeCurrent
}

// bootedAfter tells whether the node booted after t (btime in <proc>/stat).
func (r *runner) bootedAfter(t time.Time) bool {
	b, err := fsutil.ReadRegular(filepath.Join(r.paths().Proc, "stat"), 1<<20)
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

func (r *runner) fetcher() fetcher {
	d := r.driver()
	return fetcher{cache: r.cache, version: d.Version, source: d.Run, sha256: d.SHA256,
		client: r.o.HTTP, attempts: r.o.DownloadAttempts, backoff: r.o.DownloadBackoff,
		log: func(format string, args ...any) { r.logf(format, args...) }}
}

func (r *runner) kernelRelease() (string, error) {
	if r.o.KernelRelease != "" {
		return r.o.KernelRelease, nil
	}
	if k := kernels.Running(); k != "" {
		return k, nil
	}
	return "", errors.New("uname: the kernel names no release")
}
