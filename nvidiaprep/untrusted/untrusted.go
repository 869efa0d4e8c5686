// Package untrusted holds text that a container controls: the output of
// programs run inside it, the names of its processes, its links and files.
// Such text is data. A Text prints (String, and so fmt's %s and %v) with
// every control character, invalid byte and invisible format character
// escaped, and at most maxLen bytes long, so that it cannot add lines to a
// log, a record, an sd_notify datagram or a PROBLEM list, nor send escape
// sequences to an admin's terminal. Raw gives the bytes to parsers, whose
// results are checked values (a version, a package name), never printed raw.
package untrusted

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxLen is the most bytes a Text prints, its escapes included.
const maxLen = 1024

// Text is container-controlled text; the zero value is empty.
type Text struct{ raw string }

// New wraps s, which a container controls.
func New(s string) Text { return Text{raw: s} }

// Bytes wraps b, which a container controls.
func Bytes(b []byte) Text { return Text{raw: string(b)} }

// Raw is the text as the container gave it: for parsing only.
func (t Text) Raw() string { return t.raw }

// String is the text safe to print: escaped and capped at maxLen bytes.
func (t Text) String() string { return Escape(t.raw, maxLen) }

// Concat is a followed by b.
func Concat(a, b Text) Text { return Text{raw: a.raw + b.raw} }

// LastLines is the last n non-empty lines, trimmed and joined with " | ".
func (t Text) LastLines(n int) Text {
	var lines []string
	for _, l := range strings.Split(t.raw, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return Text{raw: strings.Join(lines, " | ")}
}

// FirstLine is the first non-empty line, trimmed.
func (t Text) FirstLine() Text {
	l, _, _ := strings.Cut(strings.TrimSpace(t.raw), "\n")
	return Text{raw: strings.TrimSpace(l)}
}

// Escape returns s with every byte that is not printable text written as an
// escape (\n, \t, \x1b, \u202e), cut to at most max bytes (max <= 0: no
// cap) with a note of how much was left out. Escaping escaped text changes
// nothing, so text that crosses two boundaries (a record written from a
// container's output, then read by doctor) is escaped once.
func Escape(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		var piece string
		switch {
		case r == utf8.RuneError && size <= 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n':
			piece = `\n`
		case r == '\r':
			piece = `\r`
		case r == '\t':
			piece = `\t`
		case r < 0x80 && (r < 0x20 || r == 0x7f):
			piece = fmt.Sprintf(`\x%02x`, r)
		case r == ' ' || unicode.IsPrint(r):
			piece = s[i : i+size]
		default: // C1 controls, bidi overrides, line separators, ...
			piece = fmt.Sprintf(`\u%04x`, r)
		}
		if max > 0 && b.Len()+len(piece) > max {
			fmt.Fprintf(&b, "... [%d more bytes]", len(s)-i)
			return b.String()
		}
		b.WriteString(piece)
		i += size
	}
	return b.String()
}
