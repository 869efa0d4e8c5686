// Package aptrepo makes local apt repositories for test containers, which
// have no network: real Debian packages that a container's root file
// system lacks, downloaded once with the host's apt (from the mirror and
// suites the host uses, bookworm like the containers) and cached, plus
// packages a test builds itself, indexed with dpkg-scanpackages (dpkg-dev)
// as a flat repository that apt inside the container reads through a
// file: source.
package aptrepo

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Fetch returns the .debs that `apt-get install --no-install-recommends
// pkgs` needs on the root file system rootfs: apt resolves against rootfs's
// dpkg status (so what the container has is not fetched) and downloads from
// the host's sources. The files are cached in cacheDir/debs-<key>, one
// directory per package list and status file, made once under a lock and
// renamed into place, so tests that race see all of it or none. When the
// host's package lists are stale (a file is gone from the mirror) it runs
// apt-get update once and tries again.
func Fetch(cacheDir, rootfs string, pkgs ...string) ([]string, error) {
	status := filepath.Join(rootfs, "var/lib/dpkg/status")
	st, err := os.ReadFile(status)
	if err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	sorted := slices.Clone(pkgs)
	slices.Sort(sorted)
	sum := sha256.Sum256(append([]byte(strings.Join(sorted, " ")+"\n"), st...))
	dir := filepath.Join(cacheDir, "debs-"+hex.EncodeToString(sum[:8]))
	debs, err := fetchInto(cacheDir, dir, []string{"-o", "Dir::State::status=" + status}, pkgs)
	if err != nil {
		if _, uerr := aptGet("update", "-q"); uerr != nil {
			return nil, fmt.Errorf("%w (and apt-get update: %v)", err, uerr)
		}
		return fetchInto(cacheDir, dir, []string{"-o", "Dir::State::status=" + status}, pkgs)
	}
	return debs, nil
}

// fetchInto downloads what `apt-get install --no-install-recommends pkgs`
// needs, with apt's extra options opts, into dir (made once under the cache's
// lock and renamed into place, so tests that race see all of it or none).
func fetchInto(cacheDir, dir string, opts, pkgs []string) ([]string, error) {
	if debs, err := list(dir); err == nil {
		return debs, nil
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("aptrepo: lock: %w", err)
	}
	if debs, err := list(dir); err == nil {
		return debs, nil // another process fetched them while we waited
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(tmp, "partial"), 0o755); err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	args := append(append(slices.Clone(opts), "install", "--download-only", "-y", "-q", "--no-install-recommends",
		"-o", "Dir::Cache::archives="+tmp, "-o", "DPkg::Lock::Timeout=300"), pkgs...)
	out, err := aptGet(args...)
	if err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	debs, err := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if err != nil || len(debs) == 0 {
		return nil, fmt.Errorf("aptrepo: apt-get downloaded no package for %s:\n%s", strings.Join(pkgs, " "), out)
	}
	os.RemoveAll(filepath.Join(tmp, "partial"))
	os.Remove(filepath.Join(tmp, "lock"))
	sorted := slices.Clone(pkgs)
	slices.Sort(sorted)
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), []byte(strings.Join(sorted, " ")+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	return list(dir)
}

func aptGet(args ...string) (string, error) {
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// list returns the .debs of a complete cache directory.
func list(dir string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return nil, err
	}
	debs, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err == nil && len(debs) == 0 {
		err = errors.New("no .deb")
	}
	return debs, err
}

// Build makes dir a flat repository of debs (hard links where it can,
// copies elsewhere) with its Packages index. Its files are world-readable:
// apt reads them as its _apt user.
func Build(dir string, debs ...string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	for _, d := range debs {
		dst := filepath.Join(dir, filepath.Base(d))
		if err := os.Link(d, dst); err != nil {
			if err := copyFile(d, dst); err != nil {
				return err
			}
		}
	}
	cmd := exec.Command("dpkg-scanpackages", "--multiversion", ".")
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	index, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("aptrepo: dpkg-scanpackages in %s: %w: %s", dir, err, stderr.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "Packages"), index, 0o644); err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("aptrepo: %w", err)
	}
	return out.Close()
}

// SourcesList is a sources.list line for a repository that Build made, seen
// at path inside the container. It is unsigned: trusted=yes.
func SourcesList(path string) string {
	return "deb [trusted=yes] file:" + path + " ./\n"
}
