package installstate

import (
	"errors"
	"fmt"
	"time"

	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/record"
)

// LockPath is the per-container lock every provisioning worker holds while
// it runs.
func LockPath(stateDir string, vmid int) string {
	return fmt.Sprintf("%s/locks/ct-%d.lock", stateDir, vmid)
}

// SettleRecord closes a host record left "running" by a worker that died
// (killed, or the node lost power) after the install had completed inside
// the container: call it when Current says the container has version. A
// record that a live worker holds, or that is not "running", stays as it is.
// It reports whether it changed the record.
func SettleRecord(stateDir string, vmid int, version string) (bool, error) {
	rec, ok, err := record.Load(stateDir, vmid)
	if err != nil || !ok || rec.Outcome != record.Running {
		return false, err
	}
	lock, err := filelock.TryLockOwned(LockPath(stateDir, vmid))
	if errors.Is(err, filelock.ErrBusy) {
		return false, nil // its worker lives
	}
	if err != nil {
		return false, err
	}
	defer lock.Unlock()
	return SettleLocked(stateDir, vmid, version)
}

// SettleLocked is SettleRecord for a caller that holds the container's lock
// (the worker).
func SettleLocked(stateDir string, vmid int, version string) (bool, error) {
	rec, ok, err := record.Load(stateDir, vmid)
	if err != nil || !ok || rec.Outcome != record.Running {
		return false, err
	}
	rec.Finished = time.Now().UTC()
	rec.Duration = 0
	if rec.Version == version {
		// The marker, which Current looks for, goes only after the install
		// has been verified: the install completed.
		rec.Outcome = record.Installed
		rec.Notes = append(rec.Notes, "the worker stopped before it recorded this outcome; a later look found the install complete")
	} else {
		rec.Outcome, rec.Error = record.Failed, fmt.Sprintf("the worker stopped before it finished installing %s (killed, or the node went down); the container now has %s", rec.Version, version)
	}
	return true, record.Save(stateDir, rec)
}
