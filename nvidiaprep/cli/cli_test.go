package cli

import (
	"bytes"
	"flag"
	"slices"
	"strings"
	"testing"
)

func flags() *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.String("gpus", "", "")
	fs.Bool("required", false, "")
	fs.Bool("install", true, "")
	return fs
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		pos  []string
		want string // gpus required install
	}{
		{[]string{"101", "--gpus", "0"}, []string{"101"}, "0 false true"},
		{[]string{"--gpus=0,1", "101"}, []string{"101"}, "0,1 false true"},
		{[]string{"--install", "false", "101", "--required"}, []string{"101"}, " true false"},
		{[]string{"-required=false", "101", "--", "--gpus"}, []string{"101", "--gpus"}, " false true"},
		{[]string{"--gpus", "-1", "101"}, []string{"101"}, "-1 false true"}, // a value may start with a dash
		{[]string{"-", "101"}, []string{"-", "101"}, " false true"},
	} {
		fs := flags()
		pos, err := parse(fs, c.args)
		got := fs.Lookup("gpus").Value.String() + " " + fs.Lookup("required").Value.String() + " " + fs.Lookup("install").Value.String()
		if err != nil || !slices.Equal(pos, c.pos) || got != c.want {
			t.Errorf("%q: %q %q %v", c.args, pos, got, err)
		}
	}
	for args, want := range map[string]string{
		"--gpu 0":        "unknown flag --gpu; did you mean --gpus?",
		"--gpus":         "--gpus needs a value",
		"--required=yes": `invalid value "yes" for --required`,
		"--xyzzy":        "unknown flag --xyzzy",
	} {
		if _, err := parse(flags(), strings.Fields(args)); err == nil || err.Error() != want && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"enable", "disable", "status", "doctor", "gpus", "logs", "provision", "host-driver"}
	for in, want := range map[string]string{"stauts": "status", "enabel": "enable", "docter": "doctor", "gpu": "gpus",
		"log": "logs", "host-drive": "host-driver", "hostdriver": "host-driver", "stat": "status", "xyz": "", "remove": ""} {
		if got := suggest(in, names); got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

// A command's error with --json is one JSON document on stdout.
func TestJSONError(t *testing.T) {
	app := &App{Name: "x", Geteuid: func() int { return 0 }, Commands: []*Command{{Name: "c", MaxArgs: 0, JSONKeys: []string{"k"}, Run: func(c *Call) int { return c.Fail(1, "broken\nusage: ...") }}}}
	var o, e bytes.Buffer
	if code := app.Run([]string{"c", "--json"}, &o, &e); code != 1 || e.Len() != 0 || o.String() != "{\n  \"schema_version\": 1,\n  \"command\": \"c\",\n  \"error\": {\n    \"message\": \"broken\",\n    \"exit_status\": 1\n  },\n  \"k\": null\n}\n" {
		t.Errorf("exit %d %q %q", code, o.String(), e.String())
	}
}
