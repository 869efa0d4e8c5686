// Package logging sets up zerolog the way Proxmox shows it: readable lines on
// stderr (they land in the task log) and, when the journal is available,
// structured records with the same fields (vmid, phase) in the journal.
package logging

import (
	"io"
	"os"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/journald"
)

// VMIDField is the field naming the container a log line is about.
const VMIDField = "vmid"

// New returns a logger writing readable lines to stderr and, when the
// systemd journal socket exists, structured records to the journal. Under a
// systemd unit, whose stderr already is the journal, only the structured
// records are written, so that no line appears twice.
func New(stderr io.Writer, debug bool) zerolog.Logger {
	// A message says all a reader needs, the error's text included; Err(err)
	// adds the error as a field of its own for the journal (ERROR=), which
	// the readable lines leave out. So do they the container's vmid field
	// (VMID=): the message names it, once (ctmsg).
	console := zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly, FieldsExclude: []string{zerolog.ErrorFieldName, VMIDField}}
	var w io.Writer = console
	if journal.Enabled() {
		if stderrIsJournal(stderr) {
			w = journald.NewJournalDWriter()
		} else {
			w = zerolog.MultiLevelWriter(console, journald.NewJournalDWriter())
		}
	}
	level := zerolog.InfoLevel
	if debug {
		level = zerolog.DebugLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}

// stderrIsJournal tells whether w is this process's stderr and systemd
// connected it to the journal ($JOURNAL_STREAM, systemd.exec(5)).
func stderrIsJournal(w io.Writer) bool {
	if w != os.Stderr {
		return false
	}
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}
