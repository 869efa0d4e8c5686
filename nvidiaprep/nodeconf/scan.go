package nodeconf

import (
	"strings"
)

// line is one line of a TOML document as the editor sees it.
type line struct {
	text   string // without its line ending
	header []string
	// isHeader: a [table] or [[array]] header outside any value.
	isHeader, isArray bool
	// key is the first part of a key = value line that starts here ("" for
	// other lines); span is how many lines that value takes.
	key  string
	span int
	// comment is where the comment that ends the value's last line starts
	// in that line (-1 when none); set on the first line of a span.
	comment int
}

// scan splits text into lines and finds table headers and the extent of
// each key's value (arrays and multi-line strings span lines), so that edits
// never cut a value in two. It follows TOML's strings (basic, literal and
// their multi-line forms), arrays and comments; it assumes a document that
// parses (the caller checks with the TOML decoder first).
func scan(text string) []line {
	raw := strings.Split(text, "\n")
	if len(raw) > 0 && raw[len(raw)-1] == "" {
		raw = raw[:len(raw)-1] // the final newline ends the last line
	}
	lines := make([]line, len(raw))
	for i := range raw {
		lines[i] = line{text: strings.TrimSuffix(raw[i], "\r"), comment: -1}
	}
	for i := 0; i < len(lines); i++ {
		t := strings.TrimSpace(lines[i].text)
		if t == "" || t[0] == '#' {
			continue
		}
		if t[0] == '[' {
			lines[i].isHeader = true
			lines[i].isArray = strings.HasPrefix(t, "[[")
			lines[i].header = headerKey(t)
			continue
		}
		key, rest, ok := splitKey(lines[i].text)
		if !ok {
			continue
		}
		lines[i].key = key
		end, comment := valueEnd(lines, i, rest)
		lines[i].span = end - i + 1
		lines[i].comment = comment
		i = end
	}
	return lines
}

// headerKey parses "[a.b]" or "[[a.b]]" (with blanks and quoted parts).
func headerKey(t string) []string {
	t = strings.TrimLeft(t, "[")
	if i := indexUnquoted(t, ']'); i >= 0 {
		t = t[:i]
	}
	return splitDotted(t)
}

// indexUnquoted returns the index of the first c in s outside TOML quoted
// strings, or -1.
func indexUnquoted(s string, c byte) int {
	var q byte
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case q != 0:
			if ch == '\\' && q == '"' {
				i++
			} else if ch == q {
				q = 0
			}
		case ch == '"' || ch == '\'':
			q = ch
		case ch == c:
			return i
		}
	}
	return -1
}

// splitDotted splits a dotted key into its parts, unquoting quoted ones.
func splitDotted(s string) []string {
	var parts []string
	var cur strings.Builder
	var q byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case q != 0:
			if c == '\\' && q == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else if c == q {
				q = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			q = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		case c == ' ' || c == '\t':
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// splitKey splits "key = value" into the key's first part and what follows
// the '='.
func splitKey(s string) (key, rest string, ok bool) {
	i := indexUnquoted(s, '=')
	if i < 0 {
		return "", "", false
	}
	return splitDotted(s[:i])[0], s[i+1:], true
}

// valueEnd finds the line where the value that starts with rest on line i
// ends, and where that line's comment starts (-1: none).
func valueEnd(lines []line, i int, rest string) (int, int) {
	depth := 0
	var ml string // the open multi-line string's delimiter
	s := rest
	offset := len(lines[i].text) - len(rest)
	for {
		j := 0
		for j < len(s) {
			switch {
			case ml != "":
				if ml == `"""` && s[j] == '\\' {
					j += 2
					continue
				}
				if strings.HasPrefix(s[j:], ml) {
					j += 3
					for j < len(s) && s[j] == ml[0] { // up to two more quotes
						j++
					}
					ml = ""
					continue
				}
				j++
			case strings.HasPrefix(s[j:], `"""`) || strings.HasPrefix(s[j:], `'''`):
				ml = s[j : j+3]
				j += 3
			case s[j] == '"' || s[j] == '\'':
				q := s[j]
				j++
				for j < len(s) && s[j] != q {
					if q == '"' && s[j] == '\\' {
						j++
					}
					j++
				}
				j++
			case s[j] == '#':
				if depth == 0 {
					return i, offset + j
				}
				j = len(s) // a comment inside an array
			case s[j] == '[' || s[j] == '{':
				depth++
				j++
			case s[j] == ']' || s[j] == '}':
				depth--
				j++
			default:
				j++
			}
		}
		if (depth <= 0 && ml == "") || i+1 >= len(lines) {
			return i, -1
		}
		i++
		s, offset = lines[i].text, 0
	}
}
