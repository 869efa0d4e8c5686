package term

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// pty opens a pseudo-terminal of the given width and returns its terminal
// end.
func pty(t *testing.T, cols uint16) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tty.Close() })
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: 24}); err != nil {
		t.Fatal(err)
	}
	return tty
}

func env(kv ...string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1], true
			}
		}
		return "", false
	}
}

// Colour on a terminal only, never with NO_COLOR (any value but empty) or
// TERM=dumb; the width is $COLUMNS, else the terminal's, else 80.
func TestStyle(t *testing.T) {
	tty := pty(t, 132)
	for _, c := range []struct {
		name  string
		w     any
		env   func(string) (string, bool)
		width int
		color bool
	}{
		{"a terminal", tty, env("TERM", "xterm"), 132, true},
		{"NO_COLOR", tty, env("NO_COLOR", "1"), 132, false},
		{"NO_COLOR empty", tty, env("NO_COLOR", ""), 132, true},
		{"TERM=dumb", tty, env("TERM", "dumb"), 132, false},
		{"COLUMNS", tty, env("COLUMNS", "80"), 80, true},
		{"a pipe", &bytes.Buffer{}, env(), 80, false},
		{"a pipe with COLUMNS", &bytes.Buffer{}, env("COLUMNS", "100"), 100, false},
		{"COLUMNS not a number", &bytes.Buffer{}, env("COLUMNS", "wide"), 80, false},
	} {
		var s Style
		switch w := c.w.(type) {
		case *os.File:
			s = For(w, c.env)
		case *bytes.Buffer:
			s = For(w, c.env)
		}
		if s.Width != c.width || s.Color != c.color {
			t.Errorf("%s: %+v, want width %d colour %v", c.name, s, c.width, c.color)
		}
		if red := s.Red("x"); (red != "x") != c.color {
			t.Errorf("%s: Red(x) = %q", c.name, red)
		}
	}
}

func TestCutAndWrap(t *testing.T) {
	if got := Cut("0000:01:00.0 0000:02:00.0", 10); got != "0000:01:0…" || Len(got) != 10 {
		t.Errorf("%q", got)
	}
	if got := Cut("short", 10); got != "short" {
		t.Errorf("%q", got)
	}
	lines := Wrap("CT 101: the last provisioning (580.159.04) failed: no space left on device in /usr/lib/x86_64-linux-gnu", 40, "", "  ")
	for _, l := range lines {
		if Len(l) > 40 {
			t.Errorf("%q is %d wide", l, Len(l))
		}
	}
	if strings.Join(lines, " ") != "CT 101: the last provisioning (580.159.04) failed: no space left on device in   /usr/lib/x86_64-linux-gnu" &&
		strings.Join(strings.Fields(strings.Join(lines, " ")), " ") != "CT 101: the last provisioning (580.159.04) failed: no space left on device in /usr/lib/x86_64-linux-gnu" {
		t.Errorf("words lost: %q", lines)
	}
	// A word longer than the line is broken, not lost.
	long := strings.Repeat("x", 100)
	if got := strings.Join(Wrap(long, 30, "", ""), ""); got != long {
		t.Errorf("%q", got)
	}
	if got := Len(Style{Color: true}.Red("abc")); got != 3 {
		t.Errorf("colour codes counted: %d", got)
	}
}
