package provision

import (
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// localCommand runs sc on this machine as the container's /bin/sh would,
// with over's values in place of scriptVars'.
func localCommand(sc script, over map[string]string, args ...string) *exec.Cmd {
	return exec.Command("/bin/sh", append([]string{"-c", sc.text(over), sc.name}, args...)...)
}

// replaced is sc with old replaced by new; old must be in it.
func replaced(t *testing.T, sc script, old, new string) script {
	t.Helper()
	if !strings.Contains(sc.body, old) {
		t.Fatalf("%s has no %q", sc.name, old)
	}
	sc.body = strings.ReplaceAll(sc.body, old, new)
	return sc
}

// shellVarRef matches a reference to an upper-case shell variable.
var shellVarRef = regexp.MustCompile(`\$\{?([A-Z_][A-Z0-9_]*)\b`)

// Every file under scripts/ is one the worker runs; each starts with its
// #!/bin/sh line and a header naming it, parses, keeps its line numbers
// once scriptVars replace its first line, and reads no upper-case variable
// but scriptVars' and PATH (a misspelt one would be empty: `rm -rf
// "$NVIDIAPREP_DR"/run.*`).
func TestEmbeddedScripts(t *testing.T) {
	used := []script{listPackagesScript, purgeScript, markScript, uninstallScript, utilsScript, preflightScript,
		recordScript, checkScript, spaceScript, conflictScript, writeSpecScript, pkgnamesScript, writePinScript,
		registerScript, unregisterScript, setNoCgroupsScript, charLinksScript}
	files, err := scriptFiles.ReadDir("scripts")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(used) {
		t.Errorf("scripts/ has %d files, the worker runs %d scripts", len(files), len(used))
	}
	known := map[string]bool{"PATH": true}
	for _, v := range scriptVars {
		known[v.name] = true
	}
	read := map[string]bool{}
	for _, f := range files {
		i := slices.IndexFunc(used, func(s script) bool { return s.name == f.Name() })
		if i < 0 {
			t.Errorf("scripts/%s is run by nothing", f.Name())
			continue
		}
		sc := used[i]
		if !strings.HasPrefix(sc.body, "#!/bin/sh\n# "+sc.name+": ") {
			t.Errorf("%s does not start with #!/bin/sh and a header comment naming it", sc.name)
		}
		code := 0
		for _, l := range strings.Split(sc.body, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				code++
			}
		}
		if code == 0 {
			t.Errorf("%s has no commands", sc.name)
		}
		text := sc.text(nil)
		if got, want := strings.Count(text, "\n"), strings.Count(sc.body, "\n"); got != want {
			t.Errorf("%s: %d lines as run, %d in the file: the shell's line numbers would be wrong", sc.name, got, want)
		}
		if out, err := exec.Command("/bin/sh", "-n", "-c", text).CombinedOutput(); err != nil {
			t.Errorf("%s does not parse: %v %s", sc.name, err, out)
		}
		for _, m := range shellVarRef.FindAllStringSubmatch(sc.body, -1) {
			if !known[m[1]] {
				t.Errorf("%s reads $%s, which is not set for it (scriptVars)", sc.name, m[1])
			}
			read[m[1]] = true
		}
	}
	for _, v := range scriptVars {
		if !read[v.name] {
			t.Errorf("no script reads %s", v.name)
		}
	}
}

// The shell gets the facts Go owns as variables, and a script its
// arguments as positional parameters, $0 naming the file.
func TestScriptVarsAndArguments(t *testing.T) {
	sc := script{name: "probe.sh", body: "#!/bin/sh\n" + `printf '%s|%s|%s|%s' "$0" "$NVIDIAPREP_DIR" "$APT_NO_CACHE" "$*"`}
	argv := sc.argv("a b", "$(touch /nonexistent)")
	out, err := exec.Command(argv[0], argv[1:]...).Output()
	want := "probe.sh|" + ctDir + "|" + aptNoCache + "|a b $(touch /nonexistent)"
	if err != nil || string(out) != want {
		t.Errorf("%v: %q, want %q", err, out, want)
	}
}
