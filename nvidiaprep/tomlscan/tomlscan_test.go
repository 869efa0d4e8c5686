package tomlscan

import (
	"reflect"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestLine(t *testing.T) {
	text := `# comment [x]
a = 1 # b = 2
s = """
c = 3
""" ; junk
"q.k" = 'it''s'
[t . 'u']  # header
v = [ 1, [2, 3], { w = { x = 1 } } ]
y.z = { "p" = "}", r = '{' }
[[arr]]
e = 1979-05-27 07:32:00
f = "\"" # g = 1
`
	doc := Scan([]byte(text))
	for _, tc := range []struct {
		key  []string
		line int
	}{
		{[]string{"a"}, 2}, {[]string{"b"}, 0}, {[]string{"s"}, 3}, {[]string{"c"}, 0},
		{[]string{"q.k"}, 6}, {[]string{"t"}, 7}, {[]string{"t", "u"}, 7},
		{[]string{"t", "u", "v"}, 8}, {[]string{"t", "u", "v", "w"}, 8}, {[]string{"t", "u", "v", "w", "x"}, 8},
		{[]string{"t", "u", "y"}, 9}, {[]string{"t", "u", "y", "z", "p"}, 9}, {[]string{"t", "u", "y", "z", "r"}, 9},
		{[]string{"arr"}, 10}, {[]string{"arr", "e"}, 11}, {[]string{"arr", "f"}, 12}, {[]string{"arr", "g"}, 0},
	} {
		if got := doc.Line(toml.Key(tc.key).String()); got != tc.line {
			t.Errorf("Line(%v) = %d, want %d", tc.key, got, tc.line)
		}
	}
}

// Statements tell an editor where each value ends and where the comment
// after it starts, whatever spans lines or looks like a header or a comment.
func TestStatements(t *testing.T) {
	text := "\ufeff# node\n[containers.101]  # plex\r\n" +
		"gpus = [\n  \"0\",  # A100\n  \"[x]\",\n] # mine\n" +
		"chain = '''\n# not a comment\n[not.a.header]''' # c\n" +
		"\"a.b\".c = { d = \"#\" }\n" +
		"[[ arr . 'x y' ]]\n"
	want := []Statement{
		{Header: true, Key: toml.Key{"containers", "101"}, Line: 2, EndLine: 2, Comment: 18},
		{Key: toml.Key{"gpus"}, Line: 3, EndLine: 6, Comment: 2},
		{Key: toml.Key{"chain"}, Line: 7, EndLine: 9, Comment: 18},
		{Key: toml.Key{"a.b", "c"}, Line: 10, EndLine: 10, Comment: -1},
		{Header: true, Array: true, Key: toml.Key{"arr", "x y"}, Line: 11, EndLine: 11, Comment: -1},
	}
	got := Scan([]byte(text)).Statements
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}
