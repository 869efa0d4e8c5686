package hostdriver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/record"
)

// killed is what a simulated kill of the unit panics with.
const killed = "killed"

// The ledger's transitions, each read back from the state file as the next
// run and status read it.
func TestLedgerRecordsEachTransition(t *testing.T) {
	dir := t.TempDir()
	onDisk := func() hostdriverstate.State {
		t.Helper()
		s, ok, err := hostdriverstate.Load(dir)
		if err != nil || !ok {
			t.Fatalf("state file: %v %v", ok, err)
		}
		return s
	}
	l := newLedger(dir, time.Now(), t.Logf, hostdriverstate.State{Configured: verWant, Installed: verOld}, hostdriverstate.State{}, nil)
	if l.partial() {
		t.Fatal("a first install is partial")
	}
	l.begin(StepRemove)
	if s := onDisk(); s.Outcome != hostdriverstate.OutcomeInstalling || s.Step != "remove" || s.Partial {
		t.Errorf("step 2 begun: %+v", s)
	}
	l.record(StepRemove, result{settled: true}, nil)
	l.begin(StepInstall)
	if s := onDisk(); s.Step != "install" || !s.Partial {
		t.Errorf("step 5 begun: %+v", s)
	}
	// The installer fails midway and is not rolled back.
	cause := errors.New("installer exited 1; rolling it back failed too")
	l.record(StepInstall, result{}, cause)
	if err := l.fail(stepError(StepInstall, true, failed(InstallerLog, true, cause)), verWant); err == nil {
		t.Fatal("fail returned no error")
	}
	s := onDisk()
	if s.Outcome != hostdriverstate.OutcomeFailed || s.Step != "install" || !s.Partial || s.Log != InstallerLog || s.Installed != verWant ||
		!strings.Contains(s.Error, "step 5/6 (run the NVIDIA installer) failed: installer exited 1; rolling it back failed too") {
		t.Errorf("failed midway: %+v", s)
	}

	// The next run reads it as an install that did not finish, and clears
	// the mark only when its own install is proven.
	l = newLedger(dir, time.Now(), t.Logf, hostdriverstate.State{Configured: verWant, Installed: verWant}, s, nil)
	if !l.partial() {
		t.Fatal("the next run takes the record of a failed install for an install")
	}
	l.begin(StepInstall)
	l.record(StepInstall, result{}, nil)
	if s := onDisk(); !s.Partial {
		t.Errorf("cleared on disk before the next transition: %+v", s)
	}
	l.begin(StepLoad)
	if s := onDisk(); s.Partial || s.Step != "load" {
		t.Errorf("step 6 begun after a proven install: %+v", s)
	}
	l.record(StepLoad, result{bootID: "boot-1"}, nil)
	if err := l.end(ending{outcome: hostdriverstate.OutcomeCurrent, loaded: verWant, installed: verWant, durable: true}); err != nil {
		t.Fatal(err)
	}
	if s := onDisk(); s.Outcome != hostdriverstate.OutcomeCurrent || s.Partial || s.Error != "" || s.Log != "" || s.BootID != "boot-1" || s.Loaded != verWant || s.Time.IsZero() {
		t.Errorf("done: %+v", s)
	}

	// A failed install that was rolled back (settled) is not partial.
	l.begin(StepInstall)
	l.record(StepInstall, result{settled: true}, cause)
	if l.partial() {
		t.Error("a rolled-back install is partial")
	}
	// Without a readable state, a record of the configured version that
	// is not loaded is taken for an unfinished install; a loaded one is not.
	bad := errors.New("reading the host driver state: invalid character")
	if !newLedger(dir, time.Now(), t.Logf, hostdriverstate.State{Configured: verWant, Installed: verWant}, hostdriverstate.State{}, bad).partial() {
		t.Error("unreadable state, driver not loaded: not partial")
	}
	if newLedger(dir, time.Now(), t.Logf, hostdriverstate.State{Configured: verWant, Installed: verWant, Loaded: verWant}, hostdriverstate.State{}, bad).partial() {
		t.Error("unreadable state, driver loaded: partial")
	}
}

// A step that fails midway and cannot be undone leaves the state partial
// with the step's cause; the next run does not take the record it left for
// an install (that would be "reboot required" forever), installs again,
// and clears the mark.
func TestFailedStepLeavesPartialStateUntilARunSucceeds(t *testing.T) {
	n := debianNode(t)
	n.runner.installerExit = 1
	n.runner.fail = map[string]int{"/bin/sh " + n.cfg.Paths.Cache + "/runs/" + driverrun.RunFileName(verWant) + " --uninstall": 1}
	_, err := n.run()
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepInstall {
		t.Fatalf("want a step 5 error, got %v", err)
	}
	st := n.state()
	if st.Outcome != hostdriverstate.OutcomeFailed || st.Step != "install" || !st.Partial || st.Log != InstallerLog || st.Installed != verWant {
		t.Errorf("state %+v", st)
	}
	for _, w := range []string{"exited 1", "Installation has failed", "rolling it back failed too", "installs again"} {
		if !strings.Contains(st.Error, w) {
			t.Errorf("the state's error lacks %q: %s", w, st.Error)
		}
	}
	if !strings.Contains(n.file(record.NVIDIALog), verWant) {
		t.Fatal("the failed install left no record: the test proves nothing")
	}

	n.runner.installerExit, n.runner.fail, n.runner.calls = 0, nil, nil
	rep, err := n.run()
	if err != nil || rep.Path != PathInstalled {
		t.Fatalf("next run: %+v %v\n%s", rep, err, n.log.String())
	}
	if !strings.Contains(n.log.String(), "is from an install that did not finish (failed at step install); installing again") {
		t.Errorf("log:\n%s", n.log.String())
	}
	if n.runner.called("/usr/bin/nvidia-uninstall") < 0 {
		t.Errorf("the unfinished install was not removed first: %v", n.runner.calls)
	}
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeCurrent || st.Partial || st.Error != "" || st.Installed != verWant {
		t.Errorf("state after the repair %+v", st)
	}
}

// A unit killed within a step or between two steps leaves a state file
// that the next run (after the reboot that follows) reads right: it
// installs again and ends with the driver installed and the mark gone.
func TestKilledRunIsReadByTheNextRun(t *testing.T) {
	for name, tc := range map[string]struct {
		command string // killed after the command that starts so (the .run's path is added to "/bin/sh ")
		status  string // killed when the status line that starts so is announced
		step    string // the step the state file names
		partial bool
	}{
		"in the installer, after it recorded the version": {command: "/bin/sh --silent --dkms", step: "install", partial: true},
		"between the installer and the load":              {status: "step 6/6 (load)", step: "install", partial: true},
		"between removing and the headers":                {status: "step 3/6 (headers)", step: "remove"},
		"before anything changed":                         {status: "step 2/6 (remove)"},
	} {
		t.Run(name, func(t *testing.T) {
			n := debianNode(t)
			n.boot("0f2c5a3e-0000-4000-8000-000000000021", time.Now().Add(-time.Hour))
			run := "/bin/sh " + n.cfg.Paths.Cache + "/runs/" + driverrun.RunFileName(verWant)
			if c, ok := strings.CutPrefix(tc.command, "/bin/sh "); ok {
				n.runner.crash = run + " " + c
			}
			status := func(s string) {
				if tc.status != "" && strings.HasPrefix(s, tc.status) {
					panic(killed)
				}
			}
			func() {
				defer func() {
					if r := recover(); r != killed {
						t.Fatalf("not killed: %v", r)
					}
				}()
				Run(context.Background(), Options{Config: n.cfg, Runner: n.runner, Log: zerolog.New(&n.log), Status: status,
					KernelRelease: release, DownloadAttempts: 1, DownloadBackoff: time.Millisecond})
			}()
			st, ok, err := hostdriverstate.Load(n.cfg.Paths.State)
			switch {
			case err != nil:
				t.Fatal(err)
			case tc.step == "" && ok:
				t.Errorf("a run killed before any change left a state: %+v", st)
			case tc.step != "" && (st.Outcome != hostdriverstate.OutcomeInstalling || st.Step != tc.step || st.Partial != tc.partial):
				t.Errorf("state left by the kill: %+v", st)
			}

			// The node reboots; the next run.
			n.boot("0f2c5a3e-0000-4000-8000-000000000022", time.Now())
			n.runner.crash, n.runner.calls = "", nil
			rep, err := n.run()
			if err != nil || rep.Path != PathInstalled {
				t.Fatalf("next run: %+v %v\n%s", rep, err, n.log.String())
			}
			if n.runner.called(run+" --silent --dkms") < 0 {
				t.Errorf("not installed again: %v", n.runner.calls)
			}
			if st := n.state(); st.Outcome != hostdriverstate.OutcomeCurrent || st.Partial || st.Loaded != verWant || st.BootID != "0f2c5a3e-0000-4000-8000-000000000022" {
				t.Errorf("state after the next run %+v", st)
			}
		})
	}
}

// A unit killed while it loads the driver it has just installed (step 6
// begins once the install is proven) leaves a finished install: when the
// node then boots without that driver, the next run fails with the cause,
// as after any finished install, instead of asking for another reboot.
func TestKilledWhileLoadingThenABootWithoutTheDriverFails(t *testing.T) {
	n := debianNode(t)
	n.boot("0f2c5a3e-0000-4000-8000-000000000031", time.Now().Add(-time.Hour))
	n.runner.crash = "modprobe nvidia-uvm"
	func() {
		defer func() {
			if r := recover(); r != killed {
				t.Fatalf("not killed: %v\n%s", r, n.log.String())
			}
		}()
		n.run()
	}()
	if st := n.state(); st.Outcome != hostdriverstate.OutcomeInstalling || st.Step != StepLoad.Name() || st.Partial {
		t.Fatalf("state left by the kill: %+v", st)
	}

	// The node reboots into a kernel DKMS built nothing for.
	n.boot("0f2c5a3e-0000-4000-8000-000000000032", time.Now())
	n.runner.crash, n.runner.calls = "", nil
	n.runner.dkms = "nvidia/" + verWant + ", 6.8.12-3-pve, x86_64: installed\n"
	rep, err := n.run()
	var nl *NotLoadedError
	if !errors.As(err, &nl) || rep.Path != PathNotLoaded {
		t.Fatalf("the boot after: %+v %v\n%s", rep, err, n.log.String())
	}
	if n.file("run/reboot-required") != "" {
		t.Error("asks for a reboot, which does not help")
	}
	if n.runner.called("/bin/sh "+n.cfg.Paths.Cache+"/runs/"+driverrun.RunFileName(verWant)+" --silent --dkms") >= 0 {
		t.Error("installed again, though the install had finished")
	}
}
