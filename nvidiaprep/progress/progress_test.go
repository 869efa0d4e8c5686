package progress

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestNotATerminalDrawsNothing(t *testing.T) {
	var b bytes.Buffer
	l := newWriter(&b, false)
	l.Step("downloading")
	w := l.Writer(&b)
	w.Write([]byte("12:00:00 INF downloading NVIDIA-Linux-x86_64-580.159.04.run\n"))
	l.Stop()
	if b.String() != "12:00:00 INF downloading NVIDIA-Linux-x86_64-580.159.04.run\n" {
		t.Errorf("%q", b.String())
	}
	var nilLine *Line
	nilLine.Step("x")
	nilLine.Stop()
	if nilLine.Writer(&b) != &b {
		t.Error("a nil line wraps writers")
	}
}

func TestTerminalLineStaysBelowLogLines(t *testing.T) {
	var b bytes.Buffer
	l := newWriter(&b, true)
	now := time.Date(2025, 11, 26, 9, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return now }
	l.Step("extracting 580.159.04")
	now = now.Add(3 * time.Second)
	l.Writer(&b).Write([]byte("log line\n"))
	l.Stop()
	want := "\r\x1b[K| extracting 580.159.04 (0s)" + // drawn
		"\r\x1b[K" + "log line\n" + // erased, the log line
		"\r\x1b[K| extracting 580.159.04 (3s)" + // drawn again below it
		"\r\x1b[K" // erased at the end
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a file is a terminal")
	}
	if l := New(f); l.on {
		t.Error("a status line on a file")
	}
}

// The status line is cut to the terminal's width (one column short), so
// that it never wraps: a wrapped line is not erased by the next \r.
func TestLineIsCutToTheTerminal(t *testing.T) {
	var b bytes.Buffer
	l := newWriter(&b, true)
	l.now = func() time.Time { return time.Date(2025, 11, 26, 9, 0, 0, 0, time.UTC) }
	width := 40
	l.width = func() int { return width }
	l.Step("extracting NVIDIA-Linux-x86_64-580.159.04.run into /var/cache/nvidiaprep/drivers/580.159.04")
	drawn := strings.TrimPrefix(b.String(), "\r\x1b[K")
	if n := utf8.RuneCountInString(drawn); n != width-1 || !strings.HasSuffix(drawn, "… (0s)") {
		t.Errorf("drawn %q: %d columns, want %d ending in the time", drawn, n, width-1)
	}
	b.Reset()
	width = 200 // resized: the whole step
	l.Step("extracting")
	if got := b.String(); got != "\r\x1b[K| extracting (0s)" {
		t.Errorf("%q", got)
	}
}
