package logging

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The task log shows a failure once, in the message's words: the error
// field that Err adds for the journal is not printed again beside it.
func TestErrorFieldIsNotPrintedTwice(t *testing.T) {
	var b bytes.Buffer
	err := errors.New("no GPU matches \"7\"")
	log := New(&b, false)
	log.Error().Err(err).Msgf("CT 101: %v", err)
	line := b.String()
	if strings.Count(line, `no GPU matches`) != 1 || strings.Contains(line, "error=") {
		t.Fatalf("line %q: want the error's text once, in the message", line)
	}
	if !strings.Contains(line, "ERR CT 101: no GPU matches \"7\"") {
		t.Fatalf("line %q", line)
	}
}
