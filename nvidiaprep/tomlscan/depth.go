package tomlscan

// TooDeep returns the first line on which text nests arrays and inline
// tables (and a table header's brackets: one for [table], two for
// [[table]]) more than limit deep, or 0 when it never does. It reads each
// byte once, keeping track of TOML's four kinds of string and of comments,
// so it costs the same on any text: config runs it before handing a file
// to the TOML decoder, whose time grows with the square of the nesting.
func TooDeep(text []byte, limit int) int {
	_, text = SplitBOM(text)
	const (
		plain = iota
		comment
		basic     // "..."
		literal   // '...'
		mlBasic   // """..."""
		mlLiteral // '''...'''
	)
	state, depth, line := plain, 0, 1
	// closes reports whether text[i:] starts three quotes q, and skips
	// them and up to two more (a multi-line string may end in quotes).
	closes := func(i *int, q byte) bool {
		if *i+2 >= len(text) || text[*i+1] != q || text[*i+2] != q {
			return false
		}
		n := 3
		for n < 5 && *i+n < len(text) && text[*i+n] == q {
			n++
		}
		*i += n - 1
		return true
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			line++
		}
		switch state {
		case plain:
			switch c {
			case '#':
				state = comment
			case '"', '\'':
				multi := i+2 < len(text) && text[i+1] == c && text[i+2] == c
				switch {
				case multi && c == '"':
					state, i = mlBasic, i+2
				case multi:
					state, i = mlLiteral, i+2
				case c == '"':
					state = basic
				default:
					state = literal
				}
			case '[', '{':
				if depth++; depth > limit {
					return line
				}
			case ']', '}':
				if depth > 0 {
					depth--
				}
			}
		case comment:
			if c == '\n' {
				state = plain
			}
		case basic, literal:
			switch {
			case c == '\n':
				state = plain // unterminated: the decoder says so
			case c == '\\' && state == basic && i+1 < len(text) && text[i+1] != '\n':
				i++
			case c == '"' && state == basic, c == '\'' && state == literal:
				state = plain
			}
		case mlBasic:
			switch {
			case c == '\\' && i+1 < len(text):
				if i++; text[i] == '\n' {
					line++
				}
			case c == '"' && closes(&i, '"'):
				state = plain
			}
		case mlLiteral:
			if c == '\'' && closes(&i, '\'') {
				state = plain
			}
		}
	}
	return 0
}
