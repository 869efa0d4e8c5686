package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nestedInline is n inline tables nested in one another under key k: the
// shape the TOML decoder takes quadratic time on.
func nestedInline(k string, n int) string {
	return k + " = " + strings.Repeat("{a = ", n) + "1" + strings.Repeat("}", n) + "\n"
}

// manyTables is [containers.N] tables for vmids from 100 on, at least size
// bytes of them.
func manyTables(size int) string {
	var b strings.Builder
	for id := 100; b.Len() < size; id++ {
		fmt.Fprintf(&b, "[containers.%d]\ngpus = [\"0\"]\nrequired = false\n\n", id)
	}
	return b.String()
}

// TestLimits: a file over one of the limits is refused as a whole, with an
// error that names the file, the limit and, for nesting, the line. (Before
// the limits, the 16 KiB of nested tables took seconds and hundreds of MiB
// to decode, then failed on its unknown key; the 200 KiB file loaded.)
func TestLimits(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		lim        Limits
		line       int
		msg        string
	}{
		{"nested inline tables", "[paths]\nlxc = \"/x\"\n" + nestedInline("containers.101.gpus", 2700), Limits{}, 3, "nest more than 8 deep"},
		{"nested arrays", "[containers.101]\n\ngpus = " + strings.Repeat("[", 9) + "\"0\"" + strings.Repeat("]", 9) + "\n", Limits{}, 3, "nest more than 8 deep"},
		{"too large", manyTables(200 << 10), Limits{}, 0, "larger than 128 KiB"},
		{"too slow", manyTables(64 << 10), Limits{DecodeTime: time.Microsecond}, 0, "took longer than 1µs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, "node.toml", tc.text)
			_, err := tc.lim.LoadFiles(File{Path: p})
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrLimit) {
				t.Fatalf("error = %v, want an *Error over a limit", err)
			}
			if e.File != p || e.Line != tc.line || !strings.Contains(e.Msg, tc.msg) || !strings.Contains(e.Msg, "the limit on a configuration file") {
				t.Errorf("error = %q, want line %d and %q", err, tc.line, tc.msg)
			}
		})
	}

	// Within the limits: as deep as nvidiaprep's keys go, and a file of
	// about 2000 tables.
	deep := writeFile(t, dir, "deep.toml", "containers = { 101 = { gpus = [\"0\"] } }\n")
	if cfg, err := LoadFiles(File{Path: deep}); err != nil || len(cfg.Containers) != 1 {
		t.Errorf("a file 3 deep: %v", err)
	}
	ok := writeFile(t, dir, "ok.toml", manyTables(MaxFileSize-4096))
	cfg, err := LoadFiles(File{Path: ok})
	if err != nil || len(cfg.Containers) < 2000 {
		t.Errorf("a file within the limits: %v, %d containers", err, len(cfg.Containers))
	}
}

// TestLoadPathsReadsOnlyPaths: the drop-in's reader finds [paths] in any of
// its spellings and ignores what is wrong elsewhere; the limits hold.
func TestLoadPathsReadsOnlyPaths(t *testing.T) {
	dir := t.TempDir()
	for _, text := range []string{
		"[containers.101]\ngpu = [\"x\"]\n[paths]\npve = \"/n/pve\"\nlxc = '''/n/lxc'''\n[bogus]\nx = [1, 2\n",
		"paths.pve = \"/n/pve\"\npaths.lxc = \"/n/lxc\"\n[containers.101]\nchain = \"nope\"\n",
		"paths = { pve = \"/n/pve\",\n  lxc = \"/n/lxc/\" }\n[provision]\nmax_concurrent = 0\n",
	} {
		p := writeFile(t, dir, "node.toml", text)
		got, err := LoadPaths(env(map[string]string{EnvCluster: "", EnvNode: p}))
		if err != nil || got.PVE != "/n/pve" || got.LXC != "/n/lxc" || got.Dev != "/dev" {
			t.Errorf("LoadPaths = %+v, %v\n%s", got, err, text)
		}
	}
	// The node's [paths] override the cluster's, key by key.
	cl := writeFile(t, dir, "cluster.toml", "[paths]\npve = \"/c/pve\"\ndev = \"/c/dev\"\n")
	node := writeFile(t, dir, "node2.toml", "[paths]\npve = \"/n/pve\"\n")
	if got, err := LoadPaths(env(map[string]string{EnvCluster: cl, EnvNode: node})); err != nil || got.PVE != "/n/pve" || got.Dev != "/c/dev" {
		t.Errorf("LoadPaths = %+v, %v", got, err)
	}
	// A file over a limit is skipped, and said; the other's paths hold.
	for _, text := range []string{
		"[paths]\npve = \"/c/pve\"\n" + nestedInline("x", 3000),
		"[paths]\npve = \"/c/pve\"\n" + manyTables(MaxFileSize),
	} {
		bad := writeFile(t, dir, "cluster.toml", text)
		got, err := LoadPaths(env(map[string]string{EnvCluster: bad, EnvNode: node}))
		if !errors.Is(err, ErrLimit) || got.PVE != "/n/pve" || got.Dev != "/dev" {
			t.Errorf("LoadPaths with a cluster file over a limit: %+v, %v; want the node's paths and an error over a limit", got, err)
		}
	}
	p := writeFile(t, dir, "node.toml", "[paths]\npve = \"relative\"\n")
	if _, err := LoadPaths(env(map[string]string{EnvCluster: "", EnvNode: p})); err == nil {
		t.Errorf("LoadPaths of a relative path: no error")
	}
	if got, err := LoadPaths(env(map[string]string{EnvCluster: "", EnvNode: filepath.Join(dir, "missing")})); err == nil {
		t.Errorf("LoadPaths of a missing named file = %+v, want an error", got)
	}
}
