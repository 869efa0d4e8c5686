package hostdriver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/record"
)

// Step is one of the install path's steps: its position in installSteps,
// counted from 1.
type Step int

// The install path's steps, in the order of installSteps.
const (
	StepFetch Step = iota + 1
	StepRemove
	StepHeaders
	StepNouveau
	StepInstall
	StepLoad

	lastStep = iota // the number of steps
)

// installStep is one row of the install path.
type installStep struct {
	name  string // short, as the state file records it and STATUS shows it
	title string // what the step does, for its error
	// partial tells that the step's work is unproven until it succeeds:
	// the ledger marks the install partial from its start, and the mark
	// goes when it succeeds (or when its result says it was settled).
	partial bool
	// begin says what the step does; do does it and returns what it did.
	// Step 1 has neither: it changes nothing, and its output is the job
	// (prepare).
	begin func(j job) string
	do    func(ctx context.Context, j job) (result, error)
}

// installSteps are the install path's steps, keyed by Step: adding a step
// that changes the node is a name in the list of Steps and its row here.
// A step's error is a plain error, or one from failed when it has a log or
// left the node unchanged. (A function, not a variable: the steps' own
// messages name steps.)
func installSteps() [lastStep + 1]installStep {
	return [...]installStep{
		StepFetch: {name: "fetch", title: "get the driver package"},
		StepRemove: {name: "remove", title: "remove other NVIDIA drivers",
			begin: func(job) string { return "removing other NVIDIA drivers" }, do: removeStep},
		StepHeaders: {name: "headers", title: "install kernel headers and build tools",
			begin: beginHeaders, do: installPackages},
		StepNouveau: {name: "nouveau", title: "blacklist nouveau",
			begin: func(job) string { return "blacklisting nouveau in /" + hostdriverstate.BlacklistFile },
			do:    func(ctx context.Context, j job) (result, error) { return result{}, blacklistNouveau(ctx, j) }},
		StepInstall: {name: "install", title: "run the NVIDIA installer", partial: true,
			begin: beginInstaller, do: runInstaller},
		StepLoad: {name: "load", title: "load the new driver",
			begin: beginLoad, do: loadStep},
	}
}

func (s Step) row() installStep { return installSteps()[s] }

// Name is the step's short name, as the state file records it.
func (s Step) Name() string { return s.row().name }

// Title says what the step does.
func (s Step) Title() string { return s.row().title }

// label is "step N/M (name)", how progress names the step.
func (s Step) label() string { return fmt.Sprintf("step %d/%d (%s)", s, lastStep, s.Name()) }

// StepError is a failed run: which step, where its log is, and why.
type StepError struct {
	Step Step   // the install step; 0 on the fast path
	Name string // the fast path's part when Step is 0
	Log  string // where the step's full log is, "" when the message says all
	// Changed tells whether the node had been changed before the failure
	// (then the next run goes on from where this one stopped).
	Changed bool
	Err     error
}

func (e *StepError) Error() string {
	var b strings.Builder
	if e.Step > 0 {
		fmt.Fprintf(&b, "step %d/%d (%s) failed: %v", e.Step, lastStep, e.Step.Title(), e.Err)
	} else {
		fmt.Fprintf(&b, "%s failed: %v", e.Name, e.Err)
	}
	if e.Log != "" {
		fmt.Fprintf(&b, "; its log is %s", e.Log)
	}
	switch {
	case e.Step == 0:
	case e.Changed:
		b.WriteString("; the next run of nvidiaprep host-driver (at the next boot, or by hand) installs again")
	default:
		b.WriteString("; nothing on the node was changed")
	}
	return b.String()
}

func (e *StepError) Unwrap() error { return e.Err }

// failed gives a step's error where its log is and whether the node was
// changed; the install loop adds the step.
func failed(log string, changed bool, err error) error {
	return &StepError{Log: log, Changed: changed, Err: err}
}

// stepError is step s's failure; changed is the default for an error that
// does not say (see failed).
func stepError(s Step, changed bool, err error) *StepError {
	e := &StepError{Step: s, Changed: changed, Err: err}
	if se, ok := err.(*StepError); ok && se.Step == 0 && se.Name == "" {
		e.Log, e.Changed, e.Err = se.Log, se.Changed, se.Err
	}
	return e
}

// job is what the install steps work from, settled before the first of
// them changes the node (prepare). Each step gets a copy, with step set
// to its own, and returns what it did as a result.
type job struct {
	*host
	step    Step   // the step running, for its progress lines
	loaded  string // the driver loaded before the install; "" none
	release string // the running kernel
	run     string // the verified .run (step 1)
	tree    string // its tree, extracted for the containers
	// plan is what kernelguard.Gate found at the end of step 1.
	plan kernelguard.Plan
	pkgs []string // what step 3 installs, downloaded before step 2
	// oldRun is the loaded driver's cached .run, to put it back when the
	// new one fails (upgrade.go).
	oldRun string
}

// stepf announces progress within the job's step.
func (j job) stepf(format string, args ...any) {
	j.status("%s: %s", j.step.label(), fmt.Sprintf(format, args...))
}

// prepare is everything before the first change to the node: step 1 (the
// .run fetched, verified and extracted; the kernel gate), step 3's
// packages downloaded, the upgrade checks, the plan an admin confirms.
// Its error is a *StepError (the node as it was), a *RebootRequiredError
// or ErrDeclined.
func (h *host) prepare(ctx context.Context, loaded string, partial bool) (job, error) {
	j := job{host: h, step: StepFetch, loaded: loaded}
	j.stepf("%s", beginFetch(h))
	var err error
	if j.run, j.tree, err = fetchStep(ctx, h); err != nil {
		return j, stepError(StepFetch, false, err)
	}
	if j.release, err = h.kernelRelease(); err != nil {
		return j, stepError(StepFetch, false, err)
	}
	if j.plan, err = gate(ctx, h, j.release, j.tree); err != nil {
		return j, stepError(StepFetch, false, err)
	}
	if j.pkgs, err = headerPackages(ctx, j); err != nil {
		return j, stepError(StepHeaders, false, failed(aptLog, false, err))
	}
	// What can be checked before anything is removed (upgrade.go).
	var wait *RebootRequiredError
	if j.oldRun, err = checkUpgrade(ctx, j); errors.As(err, &wait) {
		return j, wait
	} else if err != nil {
		return j, stepError(StepRemove, false, err)
	}
	if h.o.Confirm != nil {
		plan, err := readPlan(ctx, j, partial)
		if err != nil {
			return j, stepError(StepRemove, false, err)
		}
		if !h.o.Confirm(plan) {
			return j, ErrDeclined
		}
	}
	return j, nil
}

// install runs the steps in order: prepare, then each step that changes
// the node, announced ("step N/M (name): ...") and begun in the ledger,
// its result recorded there; a failure is recorded and ends the run; the
// outcome the steps leave is recorded and announced.
func (h *host) install(ctx context.Context, led *ledger, rep Report) (Report, error) {
	fail := func(e *StepError) (Report, error) {
		installed, _ := record.ReadInstalledVersion(h.p.Root) // for the record only; "" when unreadable
		return rep, led.fail(e, installed)
	}
	j, err := h.prepare(ctx, rep.Loaded, led.partial())
	var wait *RebootRequiredError
	var se *StepError
	switch {
	case errors.As(err, &wait):
		return h.rebootRequired(led, rep, wait)
	case errors.As(err, &se):
		return fail(se)
	case err != nil: // declined
		rep.Duration = time.Since(h.start)
		return rep, err
	}
	rep.Tree = j.tree
	warnings := ""
	for s := StepRemove; s <= lastStep; s++ {
		row := s.row()
		j.step = s
		j.stepf("%s", row.begin(j))
		led.begin(s)
		res, err := row.do(ctx, j)
		led.record(s, res, err)
		if res.nodes != nil {
			rep.Nodes = res.nodes
		}
		if err != nil {
			return fail(stepError(s, true, err))
		}
		if res.summary != "" {
			rep.Summary = res.summary
		}
		warnings += res.warning
	}
	rep.Path = PathInstalled
	rep.Installed, _ = record.ReadInstalledVersion(h.p.Root) // verified by runInstaller
	rep.Summary += warnings
	rep.Duration = time.Since(h.start)
	if err := led.end(ending{outcome: hostdriverstate.OutcomeCurrent, loaded: h.d.Version, installed: rep.Installed, durable: true}); err != nil {
		return fail(stepError(lastStep, true, err))
	}
	h.status("%s", rep.Summary)
	return rep, nil
}
