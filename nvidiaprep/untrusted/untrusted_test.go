package untrusted

import (
	"fmt"
	"strings"
	"testing"
)

// Whatever a container prints, its Text prints as one line of printable
// characters: no forged line, no terminal escape, no hidden reordering.
func TestTextPrintsOneSafeLine(t *testing.T) {
	hostile := "apt\nSTATUS=done\nMAINPID=1\r\x1b[2J\x1b]0;owned\x07\u202egnp.exe\u2028PROBLEM x\x00\xff\x9b31m"
	for _, s := range []string{New(hostile).String(), fmt.Sprintf("held by %s", New(hostile)), fmt.Sprintf("%v", New(hostile)), New(hostile).LastLines(3).String()} {
		for _, r := range s {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202e' || r == '\u2028' {
				t.Fatalf("%q holds %U", s, r)
			}
		}
		if strings.Contains(s, "\x1b") || strings.Contains(s, "\n") {
			t.Fatalf("%q", s)
		}
	}
	if got, want := New("a\nb\x1b[0m\\").String(), `a\nb\x1b[0m\`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if once := New(hostile).String(); Escape(once, maxLen) != once {
		t.Errorf("escaping twice changed %q", once)
	}
	if got := New("Grüße, 日本").String(); got != "Grüße, 日本" {
		t.Errorf("printable text changed: %q", got)
	}
}

func TestTextIsCapped(t *testing.T) {
	s := New(strings.Repeat("\x1b", 1<<20)).String()
	if len(s) > maxLen+40 || !strings.HasSuffix(s, "more bytes]") {
		t.Fatalf("len %d: %q", len(s), s[len(s)-40:])
	}
}

func TestLastLines(t *testing.T) {
	if got := New("a\n\n b \nc\nd\n").LastLines(2).Raw(); got != "c | d" {
		t.Errorf("got %q", got)
	}
}
