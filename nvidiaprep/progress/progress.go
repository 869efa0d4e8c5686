// Package progress shows what a long operation (a download, an extraction,
// an install) is doing. On a terminal it keeps one status line at the
// bottom, rewritten in place: a spinner, the current step and how long it
// has taken. Anywhere else (a log file, the journal, Proxmox's task log) it
// draws nothing: the operation's own log lines are the plain record there.
//
// Log lines written through Writer land above the status line, which is
// erased before and drawn again after each of them, so the two never mix.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/term"
)

// Line is a status line; the zero value and nil draw nothing.
type Line struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	msg   string
	start time.Time
	frame int
	drawn bool
	now   func() time.Time
	// width is the terminal's width in columns, asked at each draw (the
	// window may be resized); nil or 0: no limit.
	width func() int
	stop  chan struct{}
	done  chan struct{}
}

// IsTerminal tells whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// New returns a status line on f, drawn only when f is a terminal; it
// redraws itself every tick (the spinner and the time) until Stop.
func New(f *os.File) *Line {
	l := newWriter(f, IsTerminal(f))
	l.width = func() int { return term.TerminalWidth(int(f.Fd())) }
	if l.on {
		l.stop, l.done = make(chan struct{}), make(chan struct{})
		go l.tick(200 * time.Millisecond)
	}
	return l
}

// newWriter returns a status line on w, drawn only when on; it redraws on
// Step and around log lines, not by itself.
func newWriter(w io.Writer, on bool) *Line {
	return &Line{w: w, on: on, now: time.Now}
}

var spinner = []string{"|", "/", "-", "\\"}

func (l *Line) tick(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			if l.msg != "" {
				l.frame++
				l.draw()
			}
			l.mu.Unlock()
		}
	}
}

// draw writes the status line over the current one; l.mu is held.
func (l *Line) draw() {
	d := l.now().Sub(l.start).Truncate(time.Second)
	suffix := fmt.Sprintf(" (%v)", d)
	msg := l.msg
	if l.width != nil {
		// One column short of the width: a line that fills the last
		// column wraps on some terminals, and the next \r would not
		// reach its start.
		if w := l.width(); w > 0 {
			msg = term.Cut(msg, max(1, w-1-2-len(suffix)))
		}
	}
	fmt.Fprintf(l.w, "\r\x1b[K%s %s%s", spinner[l.frame%len(spinner)], msg, suffix)
	l.drawn = true
}

// clear erases the status line; l.mu is held.
func (l *Line) clear() {
	if l.drawn {
		io.WriteString(l.w, "\r\x1b[K")
		l.drawn = false
	}
}

// Step shows msg as the current step; its clock starts now.
func (l *Line) Step(msg string) {
	if l == nil || !l.on {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msg, l.start = msg, l.now()
	l.draw()
}

// Hold erases the status line until the next Step (while a question is
// asked on the terminal).
func (l *Line) Hold() {
	if l == nil || !l.on {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	l.msg = ""
}

// Stop erases the status line for good.
func (l *Line) Stop() {
	if l == nil || !l.on {
		return
	}
	if l.stop != nil {
		close(l.stop)
		<-l.done
		l.stop = nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.clear()
	l.msg = ""
}

// Writer returns w wrapped so that each write (a log line) goes above the
// status line. Without a terminal it is w itself.
func (l *Line) Writer(w io.Writer) io.Writer {
	if l == nil || !l.on {
		return w
	}
	return lineWriter{l: l, w: w}
}

type lineWriter struct {
	l *Line
	w io.Writer
}

func (lw lineWriter) Write(p []byte) (int, error) {
	lw.l.mu.Lock()
	defer lw.l.mu.Unlock()
	lw.l.clear()
	n, err := lw.w.Write(p)
	if lw.l.msg != "" {
		lw.l.draw()
	}
	return n, err
}
