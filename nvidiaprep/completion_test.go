package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// complete runs the packaged bash completion for the words (the last one
// being completed) against a stand-in /etc/pve and /proc.
func complete(t *testing.T, pve, proc string, words ...string) []string {
	t.Helper()
	script := `source ../packaging/nvidiaprep.bash-completion
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
_nvidiaprep
printf '%s\n' "${COMPREPLY[@]}"`
	cmd := exec.Command("bash", append([]string{"-c", script, "bash"}, words...)...)
	cmd.Env = append(os.Environ(), "_NVIDIAPREP_PVE="+pve, "_NVIDIAPREP_PROC="+proc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", words, err, out)
	}
	return strings.Fields(string(out))
}

// The completion offers the commands, each command's flags, the node's
// vmids and its GPUs' selectors.
func TestBashCompletion(t *testing.T) {
	dir := t.TempDir()
	pve, proc := filepath.Join(dir, "pve"), filepath.Join(dir, "proc")
	os.MkdirAll(filepath.Join(pve, "lxc"), 0o755)
	for _, id := range []string{"101", "102", "250"} {
		os.WriteFile(filepath.Join(pve, "lxc", id+".conf"), []byte("arch: amd64\n"), 0o644)
	}
	for i, pci := range []string{"0000:01:00.0", "0000:41:00.0"} {
		d := filepath.Join(proc, "driver/nvidia/gpus", pci)
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "information"), []byte("Model: \t\t NVIDIA H200\nGPU UUID: \t GPU-1d2a0c41-7c39-4a3b-9d35-00000000000"+string(rune('0'+i))+"\nBus Location: \t "+pci+"\n"), 0o644)
	}
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"nvidiaprep", "st"}, []string{"status"}},
		{[]string{"nvidiaprep", "enable", "1"}, []string{"101", "102"}},
		{[]string{"nvidiaprep", "logs", ""}, []string{"101", "102", "250"}},
		{[]string{"nvidiaprep", "enable", "101", "--r"}, []string{"--required"}},
		{[]string{"nvidiaprep", "enable", "101", "--gpus", ""}, []string{"all", "none", "0", "0000:01:00.0", "GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", "1", "0000:41:00.0", "GPU-1d2a0c41-7c39-4a3b-9d35-000000000001"}},
		{[]string{"nvidiaprep", "enable", "101", "--gpus", "0,G"}, []string{"0,GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", "0,GPU-1d2a0c41-7c39-4a3b-9d35-000000000001"}},
		{[]string{"nvidiaprep", "status", "--"}, []string{"--json", "--wide", "--help"}},
	} {
		if got := complete(t, pve, proc, c.words...); !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want %q", c.words, got, c.want)
		}
	}
}

// The completion knows every command and every flag of the program.
func TestBashCompletionKnowsEveryFlag(t *testing.T) {
	b, err := os.ReadFile("../packaging/nvidiaprep.bash-completion")
	if err != nil {
		t.Fatal(err)
	}
	script := string(b)
	for _, c := range newApp(host{}).Commands {
		if !regexp.MustCompile(`local commands="[^"]*\b` + regexp.QuoteMeta(c.Name) + `\b`).MatchString(script) {
			t.Errorf("the completion lacks the command %s", c.Name)
		}
		line := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(c.Name) + `\) flags="([^"]*)"`).FindStringSubmatch(script)
		fs := flag.NewFlagSet("", flag.ContinueOnError)
		if c.Flags != nil {
			c.Flags(fs)
		}
		if c.JSONKeys != nil {
			fs.Bool("json", false, "")
		}
		fs.VisitAll(func(f *flag.Flag) {
			name := "--" + f.Name
			if len(f.Name) == 1 {
				name = "-" + f.Name
			}
			if line == nil || !slices.ContainsFunc(strings.Fields(line[1]), func(s string) bool { return s == name || strings.HasPrefix(s, name+"=") }) {
				t.Errorf("the completion of %s lacks %s", c.Name, name)
			}
		})
	}
}

// nvidiaprep.toml(5) documents every key of the packaged configuration
// (which holds every key, commented out), in its table's section.
func TestTomlManPageHasEveryKey(t *testing.T) {
	man, err := os.ReadFile("../packaging/nvidiaprep.toml.5")
	if err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile("../packaging/nvidiaprep.toml")
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(string(man), "\n.SH ")[1:] {
		head, body, _ := strings.Cut(s, "\n")
		sections[strings.ReplaceAll(head, `\-`, "-")] = body
	}
	table := ""
	for _, l := range strings.Split(string(conf), "\n") {
		l = strings.TrimPrefix(l, "#")
		if strings.HasPrefix(l, "[") {
			table = strings.TrimSuffix(strings.TrimPrefix(l, "["), "]")
			if strings.HasPrefix(table, "containers.") {
				table = "containers.<vmid>"
			}
			continue
		}
		key, _, ok := strings.Cut(l, "=")
		if key = strings.TrimSpace(key); !ok || key == "" || strings.ContainsAny(key, " \t") || table == "" {
			continue
		}
		body, found := sections["["+table+"]"]
		if !found || !strings.Contains(body, "\n.B "+key+"\n") && !strings.HasPrefix(body, ".B "+key+"\n") {
			t.Errorf("nvidiaprep.toml(5) lacks %s in [%s]", key, table)
		}
	}
}

// Each man page the package ships is well formed (man --warnings says
// nothing) and is listed for dh_installman.
func TestManPagesAreShipped(t *testing.T) {
	list, err := os.ReadFile("../debian/nvidiaprep.manpages")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"packaging/nvidiaprep.8", "packaging/nvidiaprep.toml.5", "packaging/nvidiaprep-hook.8"} {
		if !slices.Contains(strings.Fields(string(list)), page) {
			t.Errorf("debian/nvidiaprep.manpages lacks %s", page)
		}
		if _, err := exec.LookPath("man"); err != nil {
			continue
		}
		cmd := exec.Command("man", "--warnings", "-l", "../"+page)
		cmd.Env = append(os.Environ(), "MANWIDTH=80")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		out := stderr.String()
		if err != nil || out != "" {
			t.Errorf("%s: %v\n%s", page, err, lastLines(string(out)))
		}
	}
}

func lastLines(s string) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-5):], "\n")
}
