package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/hostdriver"
	"nvidiaprep/nvidiaprep/hostdriverstate"
)

// runApp runs `nvidiaprep args...` on h.
func runApp(h host, args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := newApp(h).Run(args, &o, &e)
	return code, o.String(), e.String()
}

// Every subcommand answers --help (and -h, and `help <command>`) with exit
// 0 on stdout: its synopsis, its flags with two dashes, and examples; a
// user who is not root gets it too.
func TestEveryCommandAnswersHelp(t *testing.T) {
	h, _, _ := testHost(t, true)
	h.euid = func() int { return 1000 }
	for _, c := range newApp(h).Commands {
		for _, args := range [][]string{{c.Name, "--help"}, {c.Name, "-h"}, {"help", c.Name}, {c.Name, "101", "--help"}} {
			code, out, errOut := runApp(h, args...)
			if code != 0 || errOut != "" {
				t.Errorf("%q: exit %d, stderr %q", args, code, errOut)
			}
			if !strings.HasPrefix(out, "usage: nvidiaprep "+c.Name) || !strings.Contains(out, "examples:\n  ") || !strings.Contains(out, "  -h, --help") {
				t.Errorf("%q:\n%s", args, out)
			}
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "-") && !strings.HasPrefix(strings.TrimSpace(l), "--") && !strings.HasPrefix(strings.TrimSpace(l), "-h, --help") {
					t.Errorf("%q: a flag with one dash: %q", args, l)
				}
			}
		}
	}
}

// help lists the common commands first, the worker's and the boot unit's
// after; an unknown command or flag says what was meant.
func TestHelpAndDidYouMean(t *testing.T) {
	h, _, _ := testHost(t, true)
	code, out, _ := runApp(h, "help")
	common, more := strings.Index(out, "commands:"), strings.Index(out, "more commands:")
	if code != 0 || common < 0 || more < common {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, name := range []string{"enable", "disable", "status", "doctor", "gpus", "logs"} {
		if i := strings.Index(out, "\n  "+name+" "); i < common || i > more {
			t.Errorf("%s is not among the common commands:\n%s", name, out)
		}
	}
	for _, name := range []string{"provision", "host-driver"} {
		if i := strings.Index(out, "\n  "+name+" "); i < more {
			t.Errorf("%s is listed before the common commands:\n%s", name, out)
		}
	}
	for args, want := range map[string]string{
		"stauts":                 `unknown command "stauts"; did you mean "status"?`,
		"enabel 101":             `did you mean "enable"?`,
		"enable 101 --gpu 0":     "unknown flag --gpu; did you mean --gpus?",
		"enable 101 --requird":   "did you mean --required?",
		"status --jsn":           "did you mean --json?",
		"doctor --wdie":          "did you mean --wide?",
		"enable --gpus":          "--gpus needs a value",
		"enable":                 "missing <vmid>",
		"enable 101 102":         `too many arguments: "101 102"`,
		"doctor 101":             `takes no arguments, got "101"`,
		"enable 101 --install=x": `invalid value "x" for --install`,
	} {
		code, out, errOut := runApp(h, strings.Fields(args)...)
		if code != 2 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, code, out, errOut, want)
		}
	}
	if code, _, errOut := runApp(h, "frobnicate"); code != 2 || strings.Contains(errOut, "did you mean") {
		t.Errorf("a word close to nothing: exit %d %q", code, errOut)
	}
}

// Flags go before or after the vmid, as --flag=value or --flag value; a
// boolean flag takes true/false as its own word too.
func TestFlagsAnywhere(t *testing.T) {
	for _, args := range [][]string{
		{"9510", "--gpus", "0", "--install", "false", "--required"},
		{"--gpus=0", "9510", "--install=false", "--required=true"},
		{"--required", "--install", "false", "--gpus", "0", "9510"},
		{"-gpus", "0", "-install=false", "-required", "9510"},
	} {
		h, _, dir := testHost(t, true)
		os.WriteFile(filepath.Join(dir, "pve/lxc/9510.conf"), []byte("arch: amd64\n"), 0o644)
		code, out, errOut := runApp(h, append([]string{"enable"}, args...)...)
		if code != 0 {
			t.Errorf("%q: exit %d %s%s", args, code, out, errOut)
			continue
		}
		cfg, err := config.Load(h.getenv)
		if c := cfg.Container(9510); err != nil || c.Install || !c.Required || len(c.GPUs.Selectors) != 1 || c.GPUs.Selectors[0] != "0" {
			t.Errorf("%q: %v %+v", args, err, c)
		}
	}
}

// --version says the version and the commit.
func TestVersion(t *testing.T) {
	h, _, _ := testHost(t, true)
	for _, arg := range []string{"--version", "version"} {
		code, out, _ := runApp(h, arg)
		if code != 0 || !strings.HasPrefix(out, "nvidiaprep ") || !strings.Contains(out, "(commit ") {
			t.Errorf("%s: exit %d %q", arg, code, out)
		}
	}
}

// A user who is not root is told so before anything else: nothing is
// read, written or run.
func TestNotRootSaysSoFirst(t *testing.T) {
	h, rec, dir := testHost(t, true)
	h.euid = func() int { return 1000 }
	conf := filepath.Join(dir, "nvidiaprep.toml")
	for _, c := range newApp(h).Commands {
		args := []string{c.Name}
		if c.MinArgs > 0 {
			args = append(args, "9510")
		}
		code, out, errOut := runApp(h, append(args, "--bogus")...)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "nvidiaprep "+c.Name+": run as root") {
			t.Errorf("%q: exit %d %q %q", args, code, out, errOut)
		}
	}
	if _, err := os.Stat(conf); err == nil || len(rec.ran) != 0 {
		t.Errorf("a command ran for a user who is not root: %q", rec.ran)
	}
	// With --json the refusal is a JSON document too.
	code, out, _ := runApp(h, "status", "--json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 1 || err != nil || !strings.Contains(doc["error"].(map[string]any)["message"].(string), "run as root") {
		t.Errorf("exit %d %v: %s", code, err, out)
	}
}

// enable says when the libraries come, not that they are there: nothing is
// installed until the container starts.
func TestEnableDoesNotClaimAnInstall(t *testing.T) {
	h, _, dir := testHost(t, true)
	os.WriteFile(filepath.Join(dir, "pve/lxc/9550.conf"), []byte("arch: amd64\n"), 0o644)
	code, out, errOut := runApp(h, "enable", "9550", "--gpus", "0")
	if code != 0 || !strings.Contains(out, "CT 9550: GPUs 0, libraries installed at its next start;") || strings.Contains(out, "libraries installed;") {
		t.Errorf("exit %d:\n%s%s", code, out, errOut)
	}
}

// host-driver at a terminal asks after showing its plan; only y or yes
// goes on.
func TestHostDriverAsks(t *testing.T) {
	plan := hostdriver.Plan{Version: "580.159.04", Purge: []string{"nvidia-driver"}, Blacklist: hostdriverstate.BlacklistFile, Installer: "NVIDIA-Linux-x86_64-580.159.04.run --silent --dkms", Reboot: "then ask for a reboot"}
	for answer, want := range map[string]bool{"y\n": true, "YES\n": true, "\n": false, "n\n": false, "": false, "yes please\n": false} {
		var out bytes.Buffer
		if got := confirmPlan(strings.NewReader(answer), &out)(plan); got != want {
			t.Errorf("%q: %v", answer, got)
		}
		if !strings.Contains(out.String(), "Installing NVIDIA driver 580.159.04 will:\n  - purge the distribution's NVIDIA packages: nvidia-driver\n") || !strings.HasSuffix(out.String(), "Go on? [y/N] ") {
			t.Errorf("%q", out.String())
		}
	}
}
