package tomlscan

import (
	"strings"
	"testing"
)

func TestTooDeep(t *testing.T) {
	for _, tc := range []struct {
		text  string
		limit int
		want  int
	}{
		{"a = [[1]]\n", 2, 0},
		{"a = [[[1]]]\n", 2, 1},
		{"a = {b = {c = [1]}}\n", 3, 0},
		{"\n\nx = {a = {a = {a = 1}}}\n", 2, 3},
		{"[[containers]]\n", 2, 0},
		{"[[containers]]\n", 1, 1},
		// Brackets in strings and comments do not count.
		{"a = \"[[[{{{\"\nb = '[[[['\n# [[[[[\nc = \"\\\"[[[[\"\n", 1, 0},
		{"a = \"\"\"\n[[[[\n\\\"\"\"[[[[\n\"\"\"\n", 1, 0},
		{"a = '''\n[[[[''''\nb = [[[1]]]\n", 2, 3},
		{"a = \"\"\"x\"\"\"\"\"\nb = [[[1]]]\n", 2, 2},
		// A string that does not end at its line ends there.
		{"a = \"[[[[\nb = [[[1]]]\n", 2, 2},
		{"\ufeffa = [[[1]]]\n", 2, 1},
		{"]]]]]]\na = [[[1]]]\n", 2, 2},
	} {
		if got := TooDeep([]byte(tc.text), tc.limit); got != tc.want {
			t.Errorf("TooDeep(%q, %d) = %d, want %d", tc.text, tc.limit, got, tc.want)
		}
	}
	deep := "x = " + strings.Repeat("{a = ", 100000) + "1" + strings.Repeat("}", 100000)
	if got := TooDeep([]byte(deep), 8); got != 1 {
		t.Errorf("TooDeep of 100000 nested tables = %d, want 1", got)
	}
}
