package hostdriver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/hostdriverstate"
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
	// changes tells whether the step changes the node. The state says an
	// install is under way from the first one that does, and a failure
	// from then on says the next run installs again.
	changes bool
	// partial tells that the step's work is unproven until it succeeds:
	// the state marks the install partial from its start, and the mark
	// goes when it succeeds (or when the step says it was undone).
	partial bool
	// prepare (optional) readies the step before the first step that
	// changes the node: a failure there changes nothing.
	prepare func(r *runner, ctx context.Context) error
	// begin readies the state for the step and says what it does; the
	// state is saved after it.
	begin func(r *runner) string
	do    func(r *runner, ctx context.Context) error
}

// installSteps are the install path's steps, keyed by Step: adding a step
// is a name in the list of Steps and its row here. A step's error is a
// plain error, or one from failed when it has a log or left the node
// unchanged although the step changes it. (A function, not a variable:
// the steps' own messages name steps.)
func installSteps() [lastStep + 1]installStep {
	return [...]installStep{
		StepFetch: {name: "fetch", title: "get the driver package",
			begin: (*runner).beginFetch, do: (*runner).fetchStep},
		StepRemove: {name: "remove", title: "remove other NVIDIA drivers", changes: true,
			begin: func(*runner) string { return "removing other NVIDIA drivers" }, do: (*runner).remove},
		StepHeaders: {name: "headers", title: "install kernel headers and build tools", changes: true,
			prepare: (*runner).prepareHeaders, begin: (*runner).beginHeaders, do: (*runner).installPackages},
		StepNouveau: {name: "nouveau", title: "blacklist nouveau", changes: true,
			begin: func(*runner) string { return "blacklisting nouveau in /" + hostdriverstate.BlacklistFile }, do: (*runner).blacklistNouveau},
		StepInstall: {name: "install", title: "run the NVIDIA installer", changes: true, partial: true,
			begin: (*runner).beginInstaller, do: (*runner).runInstaller},
		StepLoad: {name: "load", title: "load the new driver", changes: true,
			begin: (*runner).beginLoad, do: (*runner).loadStep},
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

// install runs the steps in order and keeps their books: it announces
// each ("step N/M (name): ..."), records it in the state file, runs every
// prepare before the first step that changes the node, records a failure,
// and records and announces the outcome the steps leave.
func (r *runner) install(ctx context.Context) (Report, error) {
	prepared := false
	for s := StepFetch; s <= lastStep; s++ {
		row := s.row()
		if row.changes && !prepared {
			prepared = true
			for p := StepFetch; p <= lastStep; p++ {
				if prep := p.row().prepare; prep != nil {
					if err := prep(r, ctx); err != nil {
						return r.rep, r.fail(p, false, err)
					}
				}
			}
			// What can be checked before anything is removed (upgrade.go;
			// the kernel gate ran in the prepares).
			var wait *RebootRequiredError
			if err := r.checkUpgrade(ctx); errors.As(err, &wait) {
				return r.rebootRequired(wait)
			} else if err != nil {
				return r.rep, r.fail(s, false, err)
			}
			if r.o.Confirm != nil {
				plan, err := r.readPlan(ctx)
				if err != nil {
					return r.rep, r.fail(s, false, err)
				}
				if !r.o.Confirm(plan) {
					r.finish()
					return r.rep, ErrDeclined
				}
			}
		}
		r.cur = s
		if row.partial {
			r.st.Partial = true
		}
		r.stepf("%s", row.begin(r))
		r.st.Step = row.name
		if row.changes {
			r.st.Outcome, r.st.Time = hostdriverstate.OutcomeInstalling, time.Now().UTC()
			if err := hostdriverstate.Save(r.paths().State, r.st, true); err != nil {
				r.warnf("%v", err)
			}
		}
		if err := row.do(r, ctx); err != nil {
			return r.rep, r.fail(s, row.changes, err)
		}
		if row.partial {
			r.st.Partial = false
		}
	}
	// The steps left the outcome in the report.
	r.rep.Path = PathInstalled
	r.st.Installed, r.st.Outcome, r.st.Error, r.st.Log = r.rep.Installed, hostdriverstate.OutcomeCurrent, "", ""
	r.finish()
	r.st.Time, r.st.Duration = time.Now().UTC(), r.rep.Duration
	if err := hostdriverstate.Save(r.paths().State, r.st, true); err != nil {
		return r.rep, r.fail(lastStep, true, err)
	}
	r.status("%s", r.rep.Summary)
	return r.rep, nil
}

// stepf announces progress within the current step.
func (r *runner) stepf(format string, args ...any) {
	r.status("%s: %s", r.cur.label(), fmt.Sprintf(format, args...))
}

// fail records step s's failure and returns its error; changed is the
// default for an error that does not say (see failed).
func (r *runner) fail(s Step, changed bool, err error) error {
	e := &StepError{Step: s, Changed: changed, Err: err}
	if se, ok := err.(*StepError); ok && se.Step == 0 && se.Name == "" {
		e.Log, e.Changed, e.Err = se.Log, se.Changed, se.Err
	}
	r.st.Installed, _ = r.installedVersion() // for the record only; "" when unreadable
	r.st.Step, r.st.Outcome, r.st.Error, r.st.Log = s.Name(), hostdriverstate.OutcomeFailed, e.Error(), e.Log
	r.st.Time, r.st.Duration = time.Now().UTC(), time.Since(r.start)
	if serr := hostdriverstate.Save(r.paths().State, r.st, true); serr != nil {
		r.warnf("%v", serr)
	}
	return e
}
