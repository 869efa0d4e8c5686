package config

import (
	"strconv"

	"github.com/BurntSushi/toml"
)

// lineIndex maps keys of a TOML document, spelled as toml.Key.String spells
// them, to the line that defines them. BurntSushi/toml knows these lines but
// does not export them, so keyLines finds them again.
type lineIndex struct {
	exact    map[string]int // keys and [table] headers
	implicit map[string]int // tables that a header or a dotted key implies
}

// line returns the line that defines k, or the first line that implies it,
// or 0.
func (ix lineIndex) line(k toml.Key) int {
	if n, ok := ix.exact[k.String()]; ok {
		return n
	}
	return ix.implicit[k.String()]
}

// keyLines indexes the keys of a TOML document. It follows [table] and
// [[table]] headers, dotted and quoted keys, inline tables (also nested and
// inside arrays, as BurntSushi/toml names their keys) and skips strings,
// arrays and comments. It is meant for documents that parse; on others it
// stops early but neither fails nor loops.
func keyLines(text []byte) lineIndex {
	sc := &keyScanner{s: string(text), line: 1,
		ix: lineIndex{exact: map[string]int{}, implicit: map[string]int{}}}
	var table toml.Key
	for {
		sc.skipBlank()
		start := sc.i
		line := sc.line
		if sc.eof() {
			break
		}
		if sc.peek() == '[' {
			sc.next()
			if sc.peek() == '[' {
				sc.next()
			}
			k, ok := sc.key()
			if !ok {
				break
			}
			table = k
			sc.define(table, line)
		} else {
			k, ok := sc.key()
			if !ok {
				break
			}
			full := append(append(toml.Key{}, table...), k...)
			sc.define(full, line)
			if sc.peek() != '=' {
				break
			}
			sc.next()
			sc.value(full)
		}
		sc.skipLine()
		if sc.i == start {
			break
		}
	}
	return sc.ix
}

type keyScanner struct {
	s    string
	i    int // offset of the next byte
	line int // line of the next byte
	ix   lineIndex
}

func (sc *keyScanner) eof() bool { return sc.i >= len(sc.s) }

// peek returns the next byte, or 0 at the end.
func (sc *keyScanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *keyScanner) next() {
	if sc.eof() {
		return
	}
	if sc.s[sc.i] == '\n' {
		sc.line++
	}
	sc.i++
}

func (sc *keyScanner) hasPrefix(p string) bool {
	return len(sc.s)-sc.i >= len(p) && sc.s[sc.i:sc.i+len(p)] == p
}

// define records k at line, and the tables it implies.
func (sc *keyScanner) define(k toml.Key, line int) {
	if _, ok := sc.ix.exact[k.String()]; !ok {
		sc.ix.exact[k.String()] = line
	}
	for n := 1; n < len(k); n++ {
		if _, ok := sc.ix.implicit[k[:n].String()]; !ok {
			sc.ix.implicit[k[:n].String()] = line
		}
	}
}

// skipSpace skips spaces and tabs.
func (sc *keyScanner) skipSpace() {
	for c := sc.peek(); c == ' ' || c == '\t'; c = sc.peek() {
		sc.next()
	}
}

// skipBlank skips white space, newlines and comments.
func (sc *keyScanner) skipBlank() {
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
func (sc *keyScanner) skipLine() {
	for !sc.eof() && sc.peek() != '\n' {
		sc.next()
	}
	sc.next()
}

// key reads a possibly dotted key and the spaces after it.
func (sc *keyScanner) key() (toml.Key, bool) {
	var k toml.Key
	for {
		sc.skipSpace()
		var part string
		switch c := sc.peek(); c {
		case '"', '\'':
			raw := sc.str()
			part = unquote(raw)
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
func (sc *keyScanner) value(k toml.Key) {
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
func (sc *keyScanner) str() string {
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
