// Package logging sets up zerolog the way Proxmox shows it: readable lines on
// stderr (they land in the task log) and, when the journal is available,
// structured records with the same fields (vmid, phase) in the journal.
package logging

import (
	"io"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/journald"
)

// New returns a logger writing readable lines to stderr and, when the
// systemd journal socket exists, structured records to the journal.
func New(stderr io.Writer, debug bool) zerolog.Logger {
	console := zerolog.ConsoleWriter{Out: stderr, NoColor: true, TimeFormat: time.TimeOnly}
	var w io.Writer = console
	if journal.Enabled() {
		w = zerolog.MultiLevelWriter(console, journald.NewJournalDWriter())
	}
	level := zerolog.InfoLevel
	if debug {
		level = zerolog.DebugLevel
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger()
}
