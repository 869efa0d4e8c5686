package nodeconf

import (
	"strings"

	"nvidiaprep/nvidiaprep/tomlscan"
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

// scan splits text into lines and marks, from tomlscan's statements, the
// table headers and the extent of each key's value (arrays and multi-line
// strings span lines), so that edits never cut a value in two. It assumes
// a document that parses (the caller checks with the TOML decoder first).
func scan(text string) []line {
	raw := strings.Split(text, "\n")
	if len(raw) > 0 && raw[len(raw)-1] == "" {
		raw = raw[:len(raw)-1] // the final newline ends the last line
	}
	lines := make([]line, len(raw))
	for i := range raw {
		lines[i] = line{text: strings.TrimSuffix(raw[i], "\r"), comment: -1}
	}
	for _, st := range tomlscan.Scan([]byte(text)).Statements {
		i := st.Line - 1
		if i < 0 || i >= len(lines) || len(st.Key) == 0 {
			continue
		}
		l := &lines[i]
		if st.Header {
			l.isHeader, l.isArray, l.header = true, st.Array, st.Key
			continue
		}
		l.key, l.span, l.comment = st.Key[0], st.EndLine-st.Line+1, st.Comment
	}
	return lines
}
