package driverrun

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"nvidiaprep/integration/standin"
)

// built holds one stand-in .run per version for all tests (building one
// compiles its libraries).
var built sync.Map

func standinRun(t *testing.T, version string) []byte {
	t.Helper()
	if b, ok := built.Load(version); ok {
		return b.([]byte)
	}
	path := filepath.Join(t.TempDir(), "x.run")
	if err := standin.BuildRun(path, standin.RunOptions{Version: version}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	built.Store(version, b)
	return b
}

func cacheWith(t *testing.T, versions ...string) Cache {
	t.Helper()
	c := Cache{Dir: t.TempDir()}
	os.MkdirAll(c.RunsDir(), 0o755)
	for _, v := range versions {
		// Named unlike NVIDIA's file: the header, not the name, says the version.
		if err := os.WriteFile(filepath.Join(c.RunsDir(), "driver-"+strings.ReplaceAll(v, ".", "_")+".run"), standinRun(t, v), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(c.RunsDir(), "notes.run"), []byte("#!/bin/sh\necho not nvidia\n"), 0o755)
	return c
}

func TestReadHeaderOfStandIn(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	path, err := c.FindRun("580.159.04")
	if err != nil {
		t.Fatal(err)
	}
	h, err := readHeaderFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version != "580.159.04" || h.TargetDir != "NVIDIA-Linux-x86_64-580.159.04" || h.Skip < 10 ||
		h.Label != "NVIDIA Accelerated Graphics Driver for Linux-x86_64 580.159.04" {
		t.Fatalf("header %+v", h)
	}
}

func TestReadHeaderRejectsOtherFiles(t *testing.T) {
	for _, in := range []string{
		"",
		"#!/bin/bash\necho hi\n",
		"#! /bin/sh\nCRCsum=1\nMD5=2\nskip=10\nlabel=\"Something else 1.2\"\nversion_string=1.2\ntargetdir=x\n",
		"#! /bin/sh\nCRCsum=1\nMD5=2\nskip=10\nlabel=\"NVIDIA Accelerated Graphics Driver for Linux-x86_64 x\"\nversion_string=../../x\ntargetdir=x\n",
		"\x7fELF\x02\x01\x01",
	} {
		if _, err := ReadHeader(strings.NewReader(in)); !errors.Is(err, errNotNVIDIA) {
			t.Errorf("%q: want ErrNotNVIDIA, got %v", in, err)
		}
	}
}

func TestFindRunByHeaderVersion(t *testing.T) {
	c := cacheWith(t, "580.142", "580.159.04")
	p, err := c.FindRun("580.142")
	if err != nil || !strings.HasSuffix(p, "driver-580_142.run") {
		t.Fatalf("got %q, %v", p, err)
	}
	var nc *NotCachedError
	if _, err := c.FindRun("570.1"); !errors.As(err, &nc) || !strings.Contains(err.Error(), "NVIDIA-Linux-x86_64-570.1.run") {
		t.Fatalf("missing version: %v", err)
	}
}

// A file with NVIDIA's name that is not a driver package is named in the
// error, with why it was passed over, as are the other versions.
func TestFindRunNamesWhatItPassedOver(t *testing.T) {
	c := cacheWith(t, "580.142")
	bad := filepath.Join(c.RunsDir(), "NVIDIA-Linux-x86_64-570.1.run")
	if err := os.WriteFile(bad, []byte("<html>404 Not Found</html>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.FindRun("570.1")
	for _, want := range []string{"NVIDIA-Linux-x86_64-570.1.run: not an NVIDIA driver .run", "driver-580_142.run: version 580.142", "put NVIDIA's NVIDIA-Linux-x86_64-570.1.run there"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

func TestExtractOnceConcurrently(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = c.Extract(context.Background(), "580.159.04", "")
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(c.Tree("580.159.04"), "nvidia-installer")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(c.DriversDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".extract") {
			t.Errorf("temporary tree left: %s", e.Name())
		}
	}
}

func TestPinnedChecksum(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	run, _ := c.FindRun("580.159.04")
	sum, err := SHA256(run)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Extract(context.Background(), "580.159.04", strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "pins") {
		t.Fatalf("a wrong pin must refuse: %v", err)
	}
	if _, err := os.Stat(c.Tree("580.159.04")); !os.IsNotExist(err) {
		t.Fatal("a refused .run was extracted")
	}
	if _, err := c.Extract(context.Background(), "580.159.04", strings.ToUpper(sum)); err != nil {
		t.Fatal(err)
	}
}

func TestTamperedRunIsNotExtracted(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	run, _ := c.FindRun("580.159.04")
	b, _ := os.ReadFile(run)
	b[len(b)-100] ^= 0xff // flip a payload byte; no pin: the stub's own MD5/CRC catches it
	os.WriteFile(run, b, 0o755)
	_, err := c.Extract(context.Background(), "580.159.04", "")
	if err == nil {
		t.Fatal("a tampered .run was extracted")
	}
	if _, statErr := os.Stat(c.Tree("580.159.04")); !os.IsNotExist(statErr) {
		t.Fatal("a tampered tree is in place")
	}
}

// A file system too small for the tree: the extraction fails (makeself
// kills itself: "signal: terminated"), and the error says the disk is
// full, how much is free and needed, and what to do; no half tree is left.
func TestExtractOnAFullDiskSaysSo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small file system needs root")
	}
	c := cacheWith(t, "580.159.04")
	os.MkdirAll(c.TmpDir(), 0o700) // where it extracts
	if err := unix.Mount("tmpfs", c.TmpDir(), "tmpfs", 0, "size=96k"); err != nil {
		t.Skipf("mounting a tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(c.TmpDir(), unix.MNT_DETACH) })
	_, err := c.Extract(context.Background(), "580.159.04", "")
	if err == nil {
		t.Fatal("extracted onto a full disk")
	}
	for _, w := range []string{"the file system of " + c.TmpDir() + " has 0 MiB free, and the extracted driver needs about 1 MiB", "free space there", "[paths] cache"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v\nlacks %q", err, w)
		}
	}
	if entries, _ := os.ReadDir(c.TmpDir()); len(entries) > 0 {
		t.Errorf("left behind: %v", entries)
	}
}

// A sha256 pin set after the tree was extracted: the tree is used only once
// it provably comes from the pinned .run. A tree that does not say where it
// came from is extracted again from the cached .run when that matches the
// pin; with a .run that does not match, nothing is used.
func TestPinAddedAfterExtraction(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	tree, err := c.Extract(context.Background(), "580.159.04", "")
	if err != nil {
		t.Fatal(err)
	}
	// As extracted by another build (or an older nvidiaprep): no source.
	os.Remove(filepath.Join(tree, sourceFile))
	os.WriteFile(filepath.Join(tree, "from-another-build"), nil, 0o644)
	wrong := strings.Repeat("ab", 32)
	if _, err := c.Extract(context.Background(), "580.159.04", wrong); err == nil || !strings.Contains(err.Error(), "but the configuration pins "+wrong) {
		t.Fatalf("a pin the .run does not match: %v", err)
	}
	run, _ := c.FindRun("580.159.04")
	sum, _ := SHA256(run)
	if _, err := c.Extract(context.Background(), "580.159.04", sum); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tree, "from-another-build")); err == nil {
		t.Error("the tree of another build is still in use")
	}
	if got, err := c.TreeSource("580.159.04"); err != nil || got != sum {
		t.Errorf("tree source %q, %v; want %s", got, err, sum)
	}
	entries, _ := os.ReadDir(c.DriversDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".replaced") || strings.HasPrefix(e.Name(), ".extract") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// The stub's temporary files and the extraction in progress stay in the
// cache's private tmp/: drivers/, which every container sees, gets only
// finished trees.
func TestExtractionWorksOutsideTheDriversDir(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	if _, err := c.Extract(context.Background(), "580.159.04", ""); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(c.DriversDir())
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".580.159.04.lock 580.159.04" {
		t.Errorf("drivers/ holds %v", names)
	}
	if st, err := os.Stat(c.TmpDir()); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("tmp/: %v %v", st, err)
	}
}

// NVIDIA's stub reads itself through an unquoted $0.
func TestRunPathWithSpacesIsRefused(t *testing.T) {
	c := cacheWith(t, "580.159.04")
	spaced := Cache{Dir: filepath.Join(t.TempDir(), "my cache")}
	os.MkdirAll(spaced.RunsDir(), 0o755)
	run, _ := c.FindRun("580.159.04")
	b, _ := os.ReadFile(run)
	os.WriteFile(filepath.Join(spaced.RunsDir(), "x.run"), b, 0o755)
	_, err := spaced.Extract(context.Background(), "580.159.04", "")
	if err == nil || !strings.Contains(err.Error(), "must not contain whitespace") {
		t.Fatalf("a path with a space: %v", err)
	}
}

// A tree changed after its extraction, however the change was made, is
// named and extracted again from its .run before anything uses it; so is
// one that has no file list (extracted before nvidiaprep kept one).
func TestChangedTreeIsExtractedAgain(t *testing.T) {
	const v = "580.159.04"
	c := cacheWith(t, v)
	var replaced []string
	c.OnReplace = func(version, why string) { replaced = append(replaced, version+": "+why) }
	tree, err := c.Extract(context.Background(), v, "")
	if err != nil {
		t.Fatal(err)
	}
	installer := filepath.Join(tree, "nvidia-installer")
	real, err := os.ReadFile(installer)
	if err != nil {
		t.Fatal(err)
	}
	if why, err := c.Changed(v); err != nil || why != "" {
		t.Fatalf("a tree just extracted: %q, %v", why, err)
	}
	// The same size, the old times set back: only the ctime tells.
	samesize := func() {
		fi, _ := os.Stat(installer)
		planted := append([]byte("#!/bin/sh\n# planted\n"), real...)[:len(real)]
		if err := os.WriteFile(installer, planted, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(installer, fi.ModTime(), fi.ModTime())
	}
	for _, change := range []struct {
		name, want string
		do         func()
	}{
		{"overwritten in place", `"nvidia-installer" changed`, samesize},
		{"replaced by a new file", `"nvidia-installer" changed`, func() {
			os.Remove(installer)
			os.WriteFile(installer, real, 0o755)
		}},
		{"mode changed", `"nvidia-installer" changed`, func() { os.Chmod(installer, 0o4755) }},
		{"a file added", `"zz-planted" was added`, func() { os.WriteFile(filepath.Join(tree, "zz-planted"), nil, 0o755) }},
		{"a file removed", `" is missing`, func() { os.Remove(filepath.Join(tree, sourceFile)) }},
		{"no file list", "has no file list", func() { os.Remove(filepath.Join(c.ListsDir(), v)) }},
	} {
		change.do()
		why, err := c.Changed(v)
		if err != nil || !strings.Contains(why, change.want) {
			t.Errorf("%s: Changed says %q, %v; want %q", change.name, why, err, change.want)
		}
		if u := c.unusable(v, ""); !strings.Contains(u, "changed after its extraction") {
			t.Errorf("%s: Unusable says %q", change.name, u)
		}
		replaced = nil
		if _, err := c.Extract(context.Background(), v, ""); err != nil {
			t.Fatalf("%s: %v", change.name, err)
		}
		if len(replaced) != 1 || !strings.Contains(replaced[0], v+": it changed after its extraction") || !strings.Contains(replaced[0], change.want) {
			t.Errorf("%s: OnReplace heard %q", change.name, replaced)
		}
		got, _ := os.ReadFile(installer)
		if string(got) != string(real) {
			t.Errorf("%s: the installer was not extracted again", change.name)
		}
		if why, err := c.Changed(v); err != nil || why != "" {
			t.Errorf("%s: after the new extraction: %q, %v", change.name, why, err)
		}
		if _, err := os.Stat(filepath.Join(tree, "zz-planted")); err == nil {
			t.Errorf("%s: the planted file is still in the tree", change.name)
		}
	}
}
