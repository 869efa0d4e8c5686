package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/status"
)

// documented reads docs/json.md's examples: "```json <name>" blocks.
func documented(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../docs/json.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]any{}
	for _, m := range regexp.MustCompile("(?s)```json (\\w+)\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		var v any
		if err := json.Unmarshal([]byte(m[2]), &v); err != nil {
			t.Fatalf("docs/json.md, block %s: %v", m[1], err)
		}
		out[m[1]] = v
	}
	return out
}

// sameShape compares a document with its documented example: the same keys
// in every object, the same type for every value (null in either is
// allowed where the other is no list), lists as lists, never null.
func sameShape(doc, got any, path string) []string {
	switch d := doc.(type) {
	case map[string]any:
		if got == nil {
			return nil // an object may be null (unknown)
		}
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: an object in the docs, %T here", path, got)}
		}
		var errs []string
		for k := range d {
			if _, ok := g[k]; !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: documented, missing", path, k))
			}
		}
		for k := range g {
			if _, ok := d[k]; !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: present, not documented", path, k))
			}
		}
		for k, v := range d {
			if gv, ok := g[k]; ok {
				errs = append(errs, sameShape(v, gv, path+"."+k)...)
			}
		}
		sort.Strings(errs)
		return errs
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: a list in the docs, %v here", path, got)}
		}
		var errs []string
		if len(d) > 0 {
			for i, e := range g {
				errs = append(errs, sameShape(d[0], e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
		return errs
	case nil:
		return nil
	default:
		if got == nil {
			return nil
		}
		if fmt.Sprintf("%T", d) != fmt.Sprintf("%T", got) {
			return []string{fmt.Sprintf("%s: %T in the docs, %T here", path, d, got)}
		}
	}
	return nil
}

// jsonNode is a stand-in node with something in every part of the
// documents: a loaded driver with a GPU, a host driver record, a running
// container given GPU 0 whose libraries are the loaded driver's.
func jsonNode(t *testing.T) host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("device nodes need root")
	}
	h, _, dir := testHost(t, true)
	sh, err := standin.NewHost(filepath.Join(dir, "host"))
	if err != nil {
		t.Fatal(err)
	}
	const v = "580.159.04"
	d := standin.Driver{Version: v, UVMMajor: 509, GPUs: []standin.GPU{{PCIBusID: "0000:01:00.0", UUID: "GPU-1d2a0c41-7c39-4a3b-9d35-000000000000", Minor: 0, Model: "NVIDIA H200"}}}
	if err := sh.LoadDriver(d); err != nil {
		t.Fatal(err)
	}
	if err := sh.MakeNodes(d); err != nil {
		t.Fatal(err)
	}
	p := config.Paths{LXC: filepath.Join(dir, "lxc"), Dev: sh.Dev, Proc: sh.Proc, Sys: sh.Sys, Cache: filepath.Join(dir, "cache"), State: filepath.Join(dir, "state"), PVE: filepath.Join(dir, "pve"), Root: filepath.Join(dir, "root")}
	conf := fmt.Sprintf("[paths]\nlxc = %q\ndev = %q\nproc = %q\nsys = %q\ncache = %q\nstate = %q\npve = %q\nroot = %q\n\n[driver]\nversion = %q\n\n[containers.101]\ngpus = [\"0\"]\nrequired = true\n",
		p.LXC, p.Dev, p.Proc, p.Sys, p.Cache, p.State, p.PVE, p.Root, v)
	if err := os.WriteFile(filepath.Join(dir, "nvidiaprep.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cluster.toml"), nil, 0o644)
	write := func(path, text string) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(p.PVE, "lxc/101.conf"), "arch: amd64\nhookscript: local:snippets/nvidiaprep-hook\n")
	write(filepath.Join(p.PVE, "lxc/9510.conf"), "arch: amd64\n")
	write(p.LXCConfig(101), "lxc.arch = amd64\n"+lxcconf.Begin+"\n# driver "+v+"; GPUs 0=0000:01:00.0\n"+lxcconf.End+"\n")
	write(filepath.Join(p.State, "host-driver.json"), `{"configured":"`+v+`","installed":"`+v+`","loaded":"`+v+`","outcome":"current","time":"2026-12-05T02:00:00Z","duration_ns":4000000}`)
	now := time.Now().UTC()
	if err := record.Save(p.State, record.Provision{VMID: 101, Version: v, Outcome: record.Installed, Started: now, Finished: now, Duration: 3 * time.Second}); err != nil {
		t.Fatal(err)
	}
	h.probeCT = func(int) status.Probe { return status.Probe{State: status.Running, Installed: v} }
	return h
}

// Each command's JSON document has the keys and types docs/json.md shows,
// on success and on failure.
func TestJSONSchema(t *testing.T) {
	docs := documented(t)
	h := jsonNode(t)
	app := newApp(h)
	for _, run := range []struct {
		doc  string
		args []string
		code int
	}{
		{"status", []string{"status", "--json"}, 0},
		{"status", []string{"status", "101", "--json"}, 0},
		{"doctor", []string{"doctor", "--json"}, 1}, // no .run cached: a problem
		{"gpus", []string{"gpus", "--json"}, 0},
		{"enable", []string{"enable", "9510", "--gpus", "0", "--json"}, 0},
		{"disable", []string{"disable", "9510", "--json"}, 0},
		{"check", []string{"check", "--json"}, 0},
	} {
		if app.Lookup(run.args[0]) == nil {
			t.Logf("no command %s yet: its section is not checked", run.args[0])
			continue
		}
		code, out, errOut := runApp(h, run.args...)
		if run.doc != "check" && code != run.code {
			t.Errorf("%q: exit %d, want %d: %s%s", run.args, code, run.code, out, errOut)
		}
		var got any
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Errorf("%q: not JSON (%v):\n%s", run.args, err, out)
			continue
		}
		for _, e := range sameShape(docs[run.doc], got, run.doc) {
			t.Errorf("%q: %s", run.args, e)
		}
	}
	// The documented error document: every command's own keys null.
	h.euid = func() int { return 1000 }
	for _, c := range app.Commands {
		if c.JSONKeys == nil {
			continue
		}
		args := []string{c.Name, "--json"}
		if c.MinArgs > 0 {
			args = append(args, "9510")
		}
		code, out, _ := runApp(h, args...)
		var got map[string]any
		if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 {
			t.Errorf("%q as a user: exit %d, %v:\n%s", args, code, err, out)
			continue
		}
		want := map[string]any{"schema_version": nil, "command": nil, "error": map[string]any{"message": "", "exit_status": 0.0}}
		for _, k := range c.JSONKeys {
			want[k] = nil
			if got[k] != nil {
				t.Errorf("%q: %s is %v, want null", args, k, got[k])
			}
		}
		for _, e := range sameShape(want, got, c.Name) {
			t.Errorf("%q: %s", args, e)
		}
		if got["command"] != c.Name {
			t.Errorf("%q: command %v", args, got["command"])
		}
	}
	for _, e := range sameShape(docs["error"], ErrorDocumentOf(app, "status"), "error") {
		t.Errorf("the documented error document: %s", e)
	}
	// A usage error is a JSON document too.
	h.euid = nil
	code, out, _ := runApp(h, "status", "--json", "--bogus")
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 2 || !strings.Contains(fmt.Sprint(got["error"]), "unknown flag --bogus") {
		t.Errorf("usage error: exit %d %v: %s", code, err, out)
	}
	// A configuration that does not load (it does not parse: an error in
	// one container's table would be that container's alone): status fails
	// with a document, doctor reports it as its problem.
	os.WriteFile(mustEnv(h, config.EnvNode), []byte("[containers.101]\ngpus = [\"0\"\n"), 0o644)
	code, out, _ = runApp(h, "doctor", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 || !slices.ContainsFunc(got["problems"].([]any), func(p any) bool { return p.(map[string]any)["check"] == "config" }) {
		t.Errorf("doctor on a broken configuration: exit %d %v: %s", code, err, out)
	}
	code, out, _ = runApp(h, "status", "--json")
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 1 || got["error"] == nil || got["node"] != nil {
		t.Errorf("status on a broken configuration: exit %d %v: %s", code, err, out)
	}
}

func mustEnv(h host, key string) string {
	v, _ := h.getenv(key)
	return v
}

// ErrorDocumentOf is the error document the command layer prints for name.
func ErrorDocumentOf(app *cli.App, name string) any {
	var v any
	json.Unmarshal(cli.ErrorDocument(app.Lookup(name), "x", 1), &v)
	return v
}
