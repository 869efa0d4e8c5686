// Package term says how wide the admin's output may be and whether it may
// be coloured, and fits text to that: cut with "…" or wrapped.
//
// The width is $COLUMNS when set, else the terminal's, else 80; colour is
// used on a terminal only, never when $NO_COLOR is set and not empty
// (https://no-color.org) or TERM is "dumb".
package term

import (
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// defaultWidth is the width of output that goes to no terminal.
const defaultWidth = 80

// Style is how output is drawn.
type Style struct {
	Width int  // columns; 0: no limit (--wide)
	Color bool // ANSI colours
}

// For returns the style for output written to w; getenv reads the
// environment (os.LookupEnv).
func For(w io.Writer, getenv func(string) (string, bool)) Style {
	tty := -1
	if f, ok := w.(*os.File); ok && isTerminal(int(f.Fd())) {
		tty = int(f.Fd())
	}
	s := Style{Width: defaultWidth}
	if v, ok := getenv("COLUMNS"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			s.Width = n
		}
	} else if tty >= 0 {
		if ws, err := unix.IoctlGetWinsize(tty, unix.TIOCGWINSZ); err == nil && ws.Col > 0 {
			s.Width = int(ws.Col)
		}
	}
	noColor, _ := getenv("NO_COLOR")
	termName, _ := getenv("TERM")
	s.Color = tty >= 0 && noColor == "" && termName != "dumb"
	return s
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// TerminalWidth is the width of the terminal on fd, or 0 when it is none.
func TerminalWidth(fd int) int {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0
	}
	return int(ws.Col)
}

// ANSI colours.
const (
	red    = "\x1b[31m"
	green  = "\x1b[32m"
	yellow = "\x1b[33m"
	bold   = "\x1b[1m"
	dim    = "\x1b[2m"
	reset  = "\x1b[0m"
)

func (s Style) paint(code, text string) string {
	if !s.Color || text == "" {
		return text
	}
	return code + text + reset
}

// Red marks failures and problems.
func (s Style) Red(t string) string { return s.paint(red, t) }

// Green marks what is well.
func (s Style) Green(t string) string { return s.paint(green, t) }

// Yellow marks what needs a look.
func (s Style) Yellow(t string) string { return s.paint(yellow, t) }

// Bold marks headings.
func (s Style) Bold(t string) string { return s.paint(bold, t) }

// Dim marks what is idle.
func (s Style) Dim(t string) string { return s.paint(dim, t) }

// Len is the number of columns text takes: its runes, colour codes not
// counted.
func Len(t string) int {
	n := 0
	for i := 0; i < len(t); {
		if t[i] == 0x1b {
			if j := strings.IndexByte(t[i:], 'm'); j > 0 {
				i += j + 1
				continue
			}
		}
		_, size := utf8.DecodeRuneInString(t[i:])
		i += size
		n++
	}
	return n
}

// Cut shortens plain text to at most n columns, ending it with "…" when
// something was cut; n <= 0 leaves it whole.
func Cut(t string, n int) string {
	if n <= 0 || utf8.RuneCountInString(t) <= n {
		return t
	}
	r := []rune(t)
	if n == 1 {
		return "…"
	}
	return string(r[:n-1]) + "…"
}

// Wrap breaks plain text into lines of at most width columns at spaces
// (a word longer than a line is cut into pieces), the first line prefixed
// with first and the others with rest; width <= 0 keeps one line.
func Wrap(t string, width int, first, rest string) []string {
	if width <= 0 {
		return []string{first + t}
	}
	var lines []string
	prefix := first
	line := ""
	flush := func() {
		lines = append(lines, prefix+line)
		prefix, line = rest, ""
	}
	for _, word := range strings.Fields(t) {
		room := width - utf8.RuneCountInString(prefix)
		if room < 10 {
			room = 10
		}
		for utf8.RuneCountInString(word) > room {
			if line != "" {
				flush()
				room = max(10, width-utf8.RuneCountInString(prefix))
			}
			r := []rune(word)
			line = string(r[:room])
			word = string(r[room:])
			flush()
			room = max(10, width-utf8.RuneCountInString(prefix))
		}
		switch {
		case line == "":
			line = word
		case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= room:
			line += " " + word
		default:
			flush()
			line = word
		}
	}
	if line != "" || len(lines) == 0 {
		flush()
	}
	return lines
}
