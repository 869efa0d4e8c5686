package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/ctinit"
	"nvidiaprep/nvidiaprep/logging"
)

// The task log names the container once: errors from below begin with
// "CT <vmid>:" themselves (post-start printed "CT 101: CT 101:").
func TestPostStartNamesTheContainerOnce(t *testing.T) {
	var b bytes.Buffer
	log := logging.New(&b, false)
	for _, err := range []error{
		fmt.Errorf("CT 101: connecting to systemd: %w", errors.New("no such file")),
		fmt.Errorf("CT 101: %w", ctinit.ErrStopped),
		errors.New("no worker program: nvidiaprep is not in /usr/bin"),
	} {
		b.Reset()
		log.Error().Err(err).Msg(ctMessage(101, err))
		if n := strings.Count(b.String(), "CT 101"); n != 1 {
			t.Errorf("%q names the container %d times", b.String(), n)
		}
	}
	// Another container's name in the error is not taken for this one's.
	if got := ctMessage(1010, errors.New("CT 101: x")); got != "CT 1010: CT 101: x" {
		t.Errorf("%q", got)
	}
}
