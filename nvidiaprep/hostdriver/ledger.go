package hostdriver

import (
	"time"

	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernelguard"
)

// ledger is a run's record in the state file (hostdriverstate): the one
// place that decides whether an install is partial and the one writer of
// the state. The paths tell it their transitions (a step begun, a step's
// result, a failure, how the run ends); each transition that the next run
// or an admin must see is one atomic write.
type ledger struct {
	dir   string
	start time.Time
	warn  func(format string, args ...any)
	st    hostdriverstate.State
}

// newLedger starts the record of a run from what it found (configured,
// loaded and installed versions in st) and the previous run's record.
// Without that record (prevErr), whether an install of the configured
// version finished is unknown: it is taken for one that did not.
func newLedger(dir string, start time.Time, warn func(string, ...any), st, prev hostdriverstate.State, prevErr error) *ledger {
	st.Partial = prev.Partial || prevErr != nil && st.Installed == st.Configured && st.Loaded != st.Configured
	return &ledger{dir: dir, start: start, warn: warn, st: st}
}

// partial tells whether nvidia-installer's record may be that of an
// install that did not finish (and so proves nothing).
func (l *ledger) partial() bool { return l.st.Partial }

// begin records that step s, which changes the node, is under way (written
// to disk before it starts: a run cut off here is seen by the next one).
// A step whose work is unproven until it succeeds marks the install
// partial from its start.
func (l *ledger) begin(s Step) {
	if s.row().partial {
		l.st.Partial = true
	}
	l.st.Step, l.st.Outcome, l.st.Time = s.Name(), hostdriverstate.OutcomeInstalling, time.Now().UTC()
	if err := l.save(true); err != nil {
		l.warn("%v", err)
	}
}

// result is what a step did that outlives it; a step returns one with
// its error too (a failed install that was rolled back settled the
// record all the same).
type result struct {
	// settled: nothing half installed is left, so nvidia-installer's
	// record says again what is installed (an earlier install
	// uninstalled, a failed one rolled back, the old driver put back).
	settled bool
	// bootID is this boot's id when the configured driver was installed
	// in it: a later boot without it loaded is a failure, this one's a
	// pending reboot.
	bootID string
	// nodes are the device nodes made for the driver loaded after it.
	nodes []string
	// summary says what the run achieved (the last step's); warning is
	// added to the run's summary.
	summary, warning string
}

// record takes step s's result (err is its error): the install is partial
// no longer when the step settled it, or when a step whose work is
// unproven until it succeeds succeeded. It writes nothing; the next
// transition does.
func (l *ledger) record(s Step, res result, err error) {
	if res.settled || err == nil && s.row().partial {
		l.st.Partial = false
	}
	if res.bootID != "" {
		l.st.BootID = res.bootID
	}
}

// fail records a run that failed with e; installed is nvidia-installer's
// record now ("" when unreadable). It returns e.
func (l *ledger) fail(e *StepError, installed string) error {
	name := e.Name
	if e.Step > 0 {
		name = e.Step.Name()
	}
	l.st.Installed = installed
	l.st.Step, l.st.Outcome, l.st.Error, l.st.Log = name, hostdriverstate.OutcomeFailed, e.Error(), e.Log
	l.st.Time, l.st.Duration = time.Now().UTC(), time.Since(l.start)
	if err := l.save(true); err != nil {
		l.warn("%v", err)
	}
	return e
}

// ending is how a run ends, as the state records it. Empty strings keep
// what the ledger has.
type ending struct {
	outcome string
	why     string    // the error, for an outcome that is one
	since   time.Time // when the outcome began, when before this run; zero: now
	bootID  string
	loaded  string // the driver loaded now
	// installed is nvidia-installer's record after an install.
	installed string
	causes    []kernelguard.Cause
	// durable syncs the write to disk: an install's record must survive a
	// power cut (the fast path rewrites it on every boot anyway).
	durable bool
}

// end records the outcome a run ends with.
func (l *ledger) end(e ending) error {
	s := &l.st
	s.Outcome, s.Error, s.Log, s.Causes = e.outcome, e.why, "", e.causes
	s.Time = e.since
	if s.Time.IsZero() {
		s.Time = time.Now().UTC()
	}
	s.Duration = time.Since(l.start)
	if e.bootID != "" {
		s.BootID = e.bootID
	}
	if e.loaded != "" {
		s.Loaded = e.loaded
	}
	if e.installed != "" {
		s.Installed = e.installed
	}
	return l.save(e.durable)
}

func (l *ledger) save(durable bool) error { return hostdriverstate.Save(l.dir, l.st, durable) }
