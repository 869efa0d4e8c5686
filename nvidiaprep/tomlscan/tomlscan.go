// Package tomlscan finds where things are in a TOML document's text: the
// line that defines each key and table, and the lines each top-level
// statement ([table] header or key = value) takes. BurntSushi/toml knows
// these places but does not export them. config uses them to point an error
// at its line; nodeconf to edit a file as text without cutting a value in
// two or losing a comment.
//
// The scanner follows [table] and [[table]] headers, dotted and quoted keys,
// inline tables (also nested and inside arrays) and arrays, and skips
// strings of TOML's four kinds and comments. It is meant for documents that
// parse; on others it stops early but neither fails nor loops.
package tomlscan

import (
	"bytes"
	"strconv"

	"github.com/BurntSushi/toml"
)

// bom is UTF-8's byte order mark, which editors on other systems put first
// and TOML allows there.
const bom = "\ufeff"

// SplitBOM splits a leading byte order mark off text, so that it is not
// read as part of the first line and an edit can put it back.
func SplitBOM(text []byte) (mark, rest []byte) {
	if r, ok := bytes.CutPrefix(text, []byte(bom)); ok {
		return []byte(bom), r
	}
	return nil, text
}

// Statement is a [table] or [[table]] header, or a key = value, at the top
// level of a document (keys inside inline tables are not statements).
type Statement struct {
	// Header is true for a [table] header, Array too for [[table]].
	Header, Array bool
	// Key is the header's table, or the key as written before the '=' (not
	// prefixed with its table).
	Key toml.Key
	// Line is the 1-based line the statement starts on; EndLine the line
	// its value ends on (values such as arrays and multi-line strings span
	// lines).
	Line, EndLine int
	// Comment is the byte offset, in EndLine, of the comment that ends the
	// statement, -1 when none.
	Comment int
}

// Doc is what Scan found in a document.
type Doc struct {
	// Statements are the document's statements in order.
	Statements []Statement
	exact      map[string]int // keys and [table] headers
	implicit   map[string]int // tables that a header or a dotted key implies
}

// Line returns the line that defines key, or the first line that implies
// it (a table named by a longer header or dotted key), or 0 when none does.
// The key is spelled as toml.Key.String and toml.ParseError.LastKey spell
// it: "containers.101.gpus", `paths."a b"`.
func (d *Doc) Line(key string) int {
	if n, ok := d.exact[key]; ok {
		return n
	}
	return d.implicit[key]
}

// Scan scans a document. A leading byte order mark is skipped: it moves no
// line, and offsets in the first line count from after it.
func Scan(text []byte) *Doc {
	_, text = SplitBOM(text)
	sc := &scanner{s: string(text), line: 1,
		doc: &Doc{exact: map[string]int{}, implicit: map[string]int{}}}
	var table toml.Key
	for {
		sc.skipBlank()
		start := sc.i
		st := Statement{Line: sc.line, Comment: -1}
		if sc.eof() {
			break
		}
		if sc.peek() == '[' {
			sc.next()
			st.Header = true
			if sc.peek() == '[' {
				sc.next()
				st.Array = true
			}
			k, ok := sc.key()
			if !ok {
				break
			}
			table, st.Key = k, k
			sc.define(table, st.Line)
			for c := sc.peek(); c == ']'; c = sc.peek() {
				sc.next()
			}
		} else {
			k, ok := sc.key()
			if !ok {
				break
			}
			st.Key = k
			full := append(append(toml.Key{}, table...), k...)
			sc.define(full, st.Line)
			if sc.peek() != '=' {
				break
			}
			sc.next()
			sc.value(full)
		}
		sc.skipSpace()
		st.EndLine = sc.line
		if sc.peek() == '#' {
			st.Comment = sc.i - sc.lineStart
		}
		sc.doc.Statements = append(sc.doc.Statements, st)
		sc.skipLine()
		if sc.i == start {
			break
		}
	}
	return sc.doc
}

type scanner struct {
	s         string
	i         int // offset of the next byte
	line      int // line of the next byte
	lineStart int // offset of that line's first byte
	doc       *Doc
}

func (sc *scanner) eof() bool { return sc.i >= len(sc.s) }

// peek returns the next byte, or 0 at the end.
func (sc *scanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *scanner) next() {
	if sc.eof() {
		return
	}
	sc.i++
	if sc.s[sc.i-1] == '\n' {
		sc.line++
		sc.lineStart = sc.i
	}
}

func (sc *scanner) hasPrefix(p string) bool {
	return len(sc.s)-sc.i >= len(p) && sc.s[sc.i:sc.i+len(p)] == p
}

// define records k at line, and the tables it implies.
func (sc *scanner) define(k toml.Key, line int) {
	if _, ok := sc.doc.exact[k.String()]; !ok {
		sc.doc.exact[k.String()] = line
	}
	for n := 1; n < len(k); n++ {
		if _, ok := sc.doc.implicit[k[:n].String()]; !ok {
			sc.doc.implicit[k[:n].String()] = line
		}
	}
}

// skipSpace skips spaces and tabs.
func (sc *scanner) skipSpace() {
	for c := sc.peek(); c == ' ' || c == '\t'; c = sc.peek() {
		sc.next()
	}
}

// skipBlank skips white space, newlines and comments.
func (sc *scanner) skipBlank() {
	for !sc.eof() {
		switch sc.peek() {
		case ' ', '\t', '\r', '\n':
			sc.next()
		case '#':
			sc.skipLine()
		default:
			return
		}
	}
}

// skipLine skips to the start of the next line.
func (sc *scanner) skipLine() {
	for !sc.eof() && sc.peek() != '\n' {
		sc.next()
	}
	sc.next()
}

// key reads a possibly dotted key and the spaces after it.
func (sc *scanner) key() (toml.Key, bool) {
	var k toml.Key
	for {
		sc.skipSpace()
		var part string
		switch c := sc.peek(); c {
		case '"', '\'':
			part = unquote(sc.str())
		default:
			start := sc.i
			for c := sc.peek(); c != 0 && !isKeyDelim(c); c = sc.peek() {
				sc.next()
			}
			if sc.i == start {
				return nil, false
			}
			part = sc.s[start:sc.i]
		}
		k = append(k, part)
		sc.skipSpace()
		if sc.peek() != '.' {
			return k, true
		}
		sc.next()
	}
}

func isKeyDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '=', '.', '[', ']', '{', '}', ',', '#', '"', '\'':
		return true
	}
	return false
}

// value reads a value, the keys in it, and the spaces before it.
func (sc *scanner) value(k toml.Key) {
	sc.skipSpace()
	switch sc.peek() {
	case '"', '\'':
		sc.str()
	case '[':
		sc.next()
		for {
			sc.skipBlank()
			if sc.eof() || sc.peek() == ']' {
				sc.next()
				return
			}
			start := sc.i
			sc.value(k)
			sc.skipBlank()
			if sc.peek() == ',' {
				sc.next()
			}
			if sc.i == start {
				return
			}
		}
	case '{':
		sc.next()
		for {
			sc.skipBlank()
			if sc.eof() || sc.peek() == '}' {
				sc.next()
				return
			}
			line := sc.line
			sub, ok := sc.key()
			if !ok || sc.peek() != '=' {
				return
			}
			sc.next()
			full := append(append(toml.Key{}, k...), sub...)
			sc.define(full, line)
			sc.value(full)
			sc.skipBlank()
			if sc.peek() == ',' {
				sc.next()
			}
		}
	default: // a number, boolean or date-time
		for c := sc.peek(); c != 0 && c != ',' && c != ']' && c != '}' && c != '\n' && c != '#'; c = sc.peek() {
			sc.next()
		}
	}
}

// str reads a string of any of TOML's four kinds and returns it with its
// quotes.
func (sc *scanner) str() string {
	start := sc.i
	q := sc.s[sc.i : sc.i+1]
	if sc.hasPrefix(q + q + q) { // multi-line; it may end in up to two more quotes
		for range 3 {
			sc.next()
		}
		for !sc.eof() && !sc.hasPrefix(q+q+q) {
			if q == `"` && sc.peek() == '\\' {
				sc.next()
			}
			sc.next()
		}
		for n := 0; n < 5 && sc.hasPrefix(q); n++ {
			sc.next()
		}
		return sc.s[start:sc.i]
	}
	sc.next()
	for !sc.eof() && sc.peek() != q[0] && sc.peek() != '\n' {
		if q == `"` && sc.peek() == '\\' {
			sc.next()
		}
		sc.next()
	}
	if sc.peek() == q[0] {
		sc.next()
	}
	return sc.s[start:sc.i]
}

// unquote returns the value of a quoted key as str read it.
func unquote(raw string) string {
	if raw[0] == '"' {
		if u, err := strconv.Unquote(raw); err == nil {
			return u
		}
	}
	s := raw[1:]
	if len(s) > 0 && s[len(s)-1] == raw[0] {
		s = s[:len(s)-1]
	}
	return s
}
