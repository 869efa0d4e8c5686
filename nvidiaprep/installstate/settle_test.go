package installstate

import (
	"testing"
	"time"

	"nvidiaprep/nvidiaprep/record"
)

func TestSettleRecordOfADeadWorker(t *testing.T) {
	dir := t.TempDir()
	running := record.Provision{VMID: 7, Version: "580.142", Outcome: record.Running, Started: time.Now().UTC()}
	if err := record.Save(dir, running); err != nil {
		t.Fatal(err)
	}
	// A live worker holds the lock: its record stays.
	release := holdLock(t, LockPath(dir, 7))
	if changed, err := SettleRecord(dir, 7, "580.142"); changed || err != nil {
		t.Fatalf("settled a live worker's record: %v %v", changed, err)
	}
	release()
	// Its worker died after the install completed.
	if changed, err := SettleRecord(dir, 7, "580.142"); !changed || err != nil {
		t.Fatalf("%v %v", changed, err)
	}
	p, _, _ := record.Load(dir, 7)
	if p.Outcome != record.Installed || p.Finished.IsZero() || len(p.Notes) != 1 {
		t.Fatalf("%+v", p)
	}
	if changed, _ := SettleRecord(dir, 7, "580.142"); changed {
		t.Fatal("settled a finished record again")
	}
	// It died installing another version than the one the container has.
	running.Version = "580.159.04"
	record.Save(dir, running)
	SettleRecord(dir, 7, "580.142")
	if p, _, _ := record.Load(dir, 7); p.Outcome != record.Failed || p.Error == "" {
		t.Fatalf("%+v", p)
	}
	if changed, err := SettleRecord(dir, 8, "580.142"); changed || err != nil {
		t.Fatalf("no record: %v %v", changed, err)
	}
}
