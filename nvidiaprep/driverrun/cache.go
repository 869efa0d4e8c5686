package driverrun

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/cmdout"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/fsutil"
)

// Cache is the node's driver cache below one directory (config paths.cache):
//
//	runs/*.run           the driver packages, found by their header's version
//	drivers/<version>/   each version's extracted tree, made once
//	empty/               the overlay's empty bottom layer (EmptyLayer)
//	tmp/                 the extraction in progress (TmpDir)
//
// Containers see drivers/ through a read-only overlay (see EmptyLayer); a
// version extracted after a container started still appears there.
type Cache struct {
	Dir string
	// OnReplace, when set, hears why a tree that is there is not used but
	// extracted again (it changed, or it is not the pinned .run's), before
	// Extract does so.
	OnReplace func(version, why string)
}

// MountPoint is where a container sees DriversDir, read-only: pre-start
// mounts it there and the installer runs from MountPoint/<version>.
// Not under /run, which systemd mounts over at boot.
//
// It is below /dev, the tmpfs LXC mounts afresh at every start (autodev, as
// on Proxmox), like LXC's own /dev/.lxc: the container's root cannot leave
// links on the way there. LXC 5 makes a mount entry's create=dir target with
// mkdir(2) on the host, before the container runs, following links in the
// container's file system: with LXC 5.0.2, a /var/lib/nvidiaprep linked to a
// host path made <that path>/drivers on the host. (integration/hostile_test.go
// sets such traps.)
const MountPoint = "dev/.nvidiaprep/drivers"

// RunsDir is where .run files are kept.
func (c Cache) RunsDir() string { return filepath.Join(c.Dir, "runs") }

// DriversDir holds the extracted trees, one directory per version.
func (c Cache) DriversDir() string { return filepath.Join(c.Dir, "drivers") }

// TmpDir is the cache's private working directory (the .run stub's
// $TMPDIR and the extraction in progress), beside DriversDir on the same
// file system, never visible to containers.
func (c Cache) TmpDir() string { return filepath.Join(c.Dir, "tmp") }

// EmptyLayer is an empty directory, host-private: the second, bottom layer
// of the read-only overlay through which containers see DriversDir.
func (c Cache) EmptyLayer() string { return filepath.Join(c.Dir, "empty") }

// Tree is the extracted tree of version.
func (c Cache) Tree(version string) string { return filepath.Join(c.DriversDir(), version) }

// RunFileName is the name NVIDIA gives a version's .run.
func RunFileName(version string) string { return "NVIDIA-Linux-x86_64-" + version + ".run" }

// NotCachedError means no .run of the version is in the cache.
type NotCachedError struct {
	Version string
	Dir     string
	// Others says what the cache's other .run files are: "<name>: <why it
	// is not the one>", so that a damaged or foreign file is named.
	Others []string
}

func (e *NotCachedError) Error() string {
	others := ""
	if len(e.Others) > 0 {
		others = " (" + strings.Join(e.Others, "; ") + ")"
	}
	return fmt.Sprintf("no NVIDIA driver .run for version %s in %s%s: put NVIDIA's %s there (the host driver unit does this for the configured version)", e.Version, e.Dir, others, RunFileName(e.Version))
}

// FindRun returns the .run in RunsDir whose header says version. Files that
// are not NVIDIA .runs are skipped, and named in the *NotCachedError when
// none fits.
func (c Cache) FindRun(version string) (string, error) {
	entries, err := os.ReadDir(c.RunsDir())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("looking for the %s .run: %w", version, err)
	}
	var others []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".run") {
			continue
		}
		if !e.Type().IsRegular() {
			others = append(others, e.Name()+": not a regular file")
			continue
		}
		path := filepath.Join(c.RunsDir(), e.Name())
		h, err := readHeaderFile(path)
		switch {
		case err != nil:
			others = append(others, e.Name()+": "+err.Error())
		case h.Version != version:
			others = append(others, e.Name()+": version "+h.Version)
		default:
			return path, nil
		}
	}
	return "", &NotCachedError{Version: version, Dir: c.RunsDir(), Others: others}
}

func readHeaderFile(path string) (Header, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	return ReadHeader(f)
}

// SHA256 returns the hex sha256 of a file.
func SHA256(path string) (string, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum of %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// verifySum checks a .run whose sha256 is sum against the pinned one ("" pins
// nothing).
func verifySum(path, sum, pinned string) error {
	if pinned != "" && !strings.EqualFold(sum, pinned) {
		return fmt.Errorf("%s has sha256 %s, but the configuration pins %s: the file is damaged or not the configured driver; replace it with NVIDIA's file or fix [driver] sha256", path, sum, pinned)
	}
	return nil
}

// sourceFile, in an extracted tree, holds the sha256 of the .run the tree
// came from: a tree is used for a pinned version only when it names the pin.
const sourceFile = ".nvidiaprep-run-sha256"

// TreeSource is the sha256 of the .run version's tree came from; "" when
// the tree does not say (extracted by an older nvidiaprep) or is missing.
func (c Cache) TreeSource(version string) (string, error) {
	b, err := fsutil.ReadRegular(filepath.Join(c.Tree(version), sourceFile), 256)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// unusable says why version's tree is not used as it is ("" when it is):
// it is missing or incomplete, changed since its extraction (Changed), or,
// when a sha256 is pinned, not provably extracted from the pinned .run.
func (c Cache) unusable(version, pinned string) string {
	if !c.Extracted(version) {
		return "it is not extracted"
	}
	if why, err := c.Changed(version); err != nil || why != "" {
		if err != nil {
			why = err.Error()
		}
		return "it changed after its extraction (" + why + ")"
	}
	if pinned == "" {
		return ""
	}
	if sum, err := c.TreeSource(version); err != nil || !strings.EqualFold(sum, pinned) {
		return "it does not come from the .run that [driver] sha256 pins"
	}
	return ""
}

// Extract makes sure version's tree exists, extracting the cached .run once
// (under a lock, into a temporary directory renamed into place, so that a
// reader never sees half a tree). pinned is the sha256 the configuration pins
// for this version, or "": a tree that does not come from the pinned .run
// (one extracted before the pin was set, from another build) is extracted
// again from the cached .run, once that matches the pin, and so is a tree
// that changed after its extraction (unusable says why).
func (c Cache) Extract(ctx context.Context, version, pinned string) (string, error) {
	tree := c.Tree(version)
	if c.unusable(version, pinned) == "" {
		return tree, nil
	}
	if err := os.MkdirAll(c.DriversDir(), 0o755); err != nil {
		return "", fmt.Errorf("driver cache: %w", err)
	}
	lock, err := filelock.Wait(ctx, filepath.Join(c.DriversDir(), "."+version+".lock"))
	if err != nil {
		return "", fmt.Errorf("driver cache: %w", err)
	}
	defer lock.Unlock()
	why := c.unusable(version, pinned)
	if why == "" { // another process extracted it while we waited
		return tree, nil
	}
	if c.OnReplace != nil && c.Extracted(version) {
		c.OnReplace(version, why)
	}
	run, err := c.FindRun(version)
	if err != nil {
		return "", err
	}
	sum, err := SHA256(run)
	if err != nil {
		return "", err
	}
	if err := verifySum(run, sum, pinned); err != nil {
		return "", err
	}
	if strings.ContainsAny(run, " \t\n") {
		return "", fmt.Errorf("extracting %s: NVIDIA's .run reads itself through an unquoted $0, so its path must not contain whitespace; set paths.cache to a directory without spaces", run)
	}
	// NVIDIA's stub puts its decompressor into $TMPDIR (which must allow
	// execution) and, when tar fails, writes to /dev/tty and kills itself,
	// leaving what it extracted. Both go to the cache's private tmp/, never
	// into drivers/, which every container sees; the stub runs in a session
	// of its own, without a terminal.
	work := c.TmpDir()
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", fmt.Errorf("driver cache: %w", err)
	}
	tmp := filepath.Join(work, "extract-"+version)
	if err := os.RemoveAll(tmp); err != nil { // left by a crash
		return "", fmt.Errorf("driver cache: %w", err)
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", run, "--extract-only", "--target", tmp)
	cmd.Dir = work
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR=" + work}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The extraction holds the version's lock too (as descriptor 3): when
	// this process is killed, the next Extract waits until the orphaned
	// extraction has stopped writing into tmp before it removes tmp.
	cmd.ExtraFiles = []*os.File{lock.File()}
	cmd.WaitDelay = 5 * time.Second // once ctx ends: a child left holding the output does not hold us
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", c.extractError(ctx, run, err, string(out))
	}
	if _, err := os.Stat(filepath.Join(tmp, "nvidia-installer")); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("extracting %s: no nvidia-installer in the tree: %w", run, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, sourceFile), []byte(sum+"\n"), 0o644); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("driver cache: %w", err)
	}
	if err := c.writeList(version, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	// A tree of another build (or a changed one) goes aside first: the rename below needs the
	// name free, and readers see the old tree or the new one, never neither
	// for longer than between two renames.
	old := filepath.Join(c.DriversDir(), ".replaced-"+version)
	if _, err := os.Lstat(tree); err == nil {
		os.RemoveAll(old)
		if err := os.Rename(tree, old); err != nil {
			os.RemoveAll(tmp)
			return "", fmt.Errorf("driver cache: replacing the tree of another build: %w", err)
		}
	}
	if err := os.Rename(tmp, tree); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("driver cache: %w", err)
	}
	os.RemoveAll(old)
	return tree, nil
}

// Extracted tells whether version's tree is there, complete; Changed
// tells whether it changed since.
func (c Cache) Extracted(version string) bool { return done(c.Tree(version)) }

func done(tree string) bool {
	_, err := os.Stat(filepath.Join(tree, "nvidia-installer"))
	return err == nil
}

// extractError says why an extraction failed and what to do. The .run's
// self-extractor (makeself) answers a failed unpack by killing itself
// (SIGTERM), whatever the cause, so "signal: terminated" alone says
// nothing: a file system too small for the tree is told apart by its free
// space, and anything else points at the file.
func (c Cache) extractError(ctx context.Context, run string, err error, out string) error {
	last := cmdout.LastLines(out, 5)
	if ctx.Err() != nil {
		return fmt.Errorf("extracting %s did not finish in time: %w: %s", run, ctx.Err(), last)
	}
	var need int64
	if st, serr := os.Stat(run); serr == nil {
		need = extractFactor * st.Size()
	}
	var fs unix.Statfs_t
	if unix.Statfs(c.TmpDir(), &fs) == nil { // where it extracts, on the drivers' file system
		free := int64(fs.Bavail) * int64(fs.Bsize)
		if strings.Contains(out, "No space left on device") || free < need {
			return fmt.Errorf("extracting %s failed: the file system of %s has %d MiB free, and the extracted driver needs about %d MiB: free space there (old trees in %s can go), or set [paths] cache to a larger disk, then run this again (%w: %s)",
				run, c.TmpDir(), free>>20, (need+1<<20-1)>>20, c.DriversDir(), err, last)
		}
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ProcessState != nil {
		if ws, ok := exit.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return fmt.Errorf("extracting %s failed: its self-extractor stopped itself, as it does when unpacking fails (a damaged or truncated file?): compare its sha256 with NVIDIA's, or download it again (%w: %s)", run, err, last)
		}
	}
	return fmt.Errorf("extracting %s: %w: %s", run, err, last)
}

// extractFactor is about how many times its .run's size a driver's
// extracted tree takes, with room to spare.
const extractFactor = 3
