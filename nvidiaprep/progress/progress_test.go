package progress

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestNotATerminalDrawsNothing(t *testing.T) {
	var b bytes.Buffer
	l := NewWriter(&b, false)
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
	l := NewWriter(&b, true)
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
