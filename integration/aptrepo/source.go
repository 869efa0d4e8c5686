package aptrepo

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Source is a private apt source: one Debian suite with its components
// (bookworm contrib non-free non-free-firmware, trixie main, sid main, ...)
// from the mirror the host's apt already uses. Its indexes live in the test
// cache, never in the host's own apt configuration (sources.list, lists):
// the machine's apt is left exactly as it was.
type Source struct {
	Suite      string   // "bookworm", "bookworm-security", "trixie", "sid"
	Components []string // "main", "contrib", "non-free", "non-free-firmware"
}

func (s Source) String() string { return s.Suite + " " + strings.Join(s.Components, " ") }

// dir is the source's private apt directory below cacheDir.
func (s Source) dir(cacheDir string) string {
	sum := sha256.Sum256([]byte(s.String()))
	return filepath.Join(cacheDir, "apt-"+s.Suite+"-"+hex.EncodeToString(sum[:4]))
}

// Options are the apt-get options that point apt at the source's own
// sources.list and index directory (and nothing of the host's), for callers
// that run apt-get themselves (apt-get -s install, apt-cache show).
// Prepare must have run.
func (s Source) Options(cacheDir string) []string {
	d := s.dir(cacheDir)
	return []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(d, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(d, "lists"),
		"-o", "Dir::Cache::pkgcache=" + filepath.Join(d, "pkgcache.bin"),
		"-o", "Dir::Cache::srcpkgcache=" + filepath.Join(d, "srcpkgcache.bin"),
		"-o", "APT::Get::List-Cleanup=false",
	}
}

// ListsDir returns the source's index directory and its sources.list, for a
// test container whose apt reads them as its own (bind-mounted read-only
// at /var/lib/apt/lists; the sources.list names the mirror, which apt only
// reads for the file names). Prepare must have run.
func (s Source) ListsDir(cacheDir string) (lists, sourcesList string) {
	d := s.dir(cacheDir)
	return filepath.Join(d, "lists"), filepath.Join(d, "sources.list")
}

// Prepare writes the source's sources.list (the host's mirror, Debian's
// archive keyring) and downloads its indexes once; update forces a new
// download (the mirror moved on and a file is gone).
func (s Source) Prepare(cacheDir string, update bool) error {
	d := s.dir(cacheDir)
	done := filepath.Join(d, ".updated")
	if _, err := os.Stat(done); err == nil && !update {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(d, "lists", "partial"), 0o755); err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(d, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("aptrepo: lock: %w", err)
	}
	if _, err := os.Stat(done); err == nil && !update {
		return nil // another process prepared it while we waited
	}
	mirror, err := HostMirror()
	if err != nil {
		return err
	}
	if strings.HasSuffix(s.Suite, "-security") {
		mirror = strings.TrimSuffix(mirror, "/debian") + "/debian-security"
	}
	line := fmt.Sprintf("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s\n", mirror, s)
	if err := os.WriteFile(filepath.Join(d, "sources.list"), []byte(line), 0o644); err != nil {
		return fmt.Errorf("aptrepo: %w", err)
	}
	if _, err := aptGet(append(s.Options(cacheDir), "update", "-q")...); err != nil {
		return fmt.Errorf("aptrepo: indexes of %s: %w", s, err)
	}
	return os.WriteFile(done, nil, 0o644)
}

// FetchFrom is Fetch from a private Source instead of the host's own
// sources: the .debs that `apt-get install --no-install-recommends pkgs`
// needs on the root file system rootfs (resolved against its dpkg status),
// downloaded once and cached. Packages the host's sources also hold come
// from the Source's suite all the same.
func FetchFrom(cacheDir, rootfs string, src Source, pkgs ...string) ([]string, error) {
	if err := src.Prepare(cacheDir, false); err != nil {
		return nil, err
	}
	status := filepath.Join(rootfs, "var/lib/dpkg/status")
	st, err := os.ReadFile(status)
	if err != nil {
		return nil, fmt.Errorf("aptrepo: %w", err)
	}
	sorted := slices.Clone(pkgs)
	slices.Sort(sorted)
	sum := sha256.Sum256(append([]byte(src.String()+"\n"+strings.Join(sorted, " ")+"\n"), st...))
	dir := filepath.Join(cacheDir, "debs-"+hex.EncodeToString(sum[:8]))
	fetch := func() ([]string, error) {
		return fetchInto(cacheDir, dir, append(src.Options(cacheDir), "-o", "Dir::State::status="+status), pkgs)
	}
	debs, err := fetch()
	if err != nil {
		if uerr := src.Prepare(cacheDir, true); uerr != nil {
			return nil, fmt.Errorf("%w (and a new download of its indexes: %v)", err, uerr)
		}
		return fetch()
	}
	return debs, nil
}

// HostMirror is the Debian mirror the host's apt uses for its bookworm
// suite (the first URIs of /etc/apt/sources.list.d/debian.sources, else the
// first deb line of /etc/apt/sources.list), as integration/setup.sh finds
// it for debootstrap; http://deb.debian.org/debian when neither names one.
func HostMirror() (string, error) {
	if m := mirrorIn("/etc/apt/sources.list.d/debian.sources", "uris:"); m != "" {
		return m, nil
	}
	if m := mirrorIn("/etc/apt/sources.list", "deb"); m != "" {
		return m, nil
	}
	return "http://deb.debian.org/debian", nil
}

// mirrorIn returns the first http(s) URI on a line of file that starts with
// key (deb822's "URIs:", or a one-line source's "deb [options] URI").
func mirrorIn(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || strings.ToLower(fields[0]) != key {
			continue
		}
		for _, f := range fields[1:] {
			if (strings.HasPrefix(f, "http://") || strings.HasPrefix(f, "https://")) && strings.Contains(f, "/debian") && !strings.Contains(f, "security") {
				return strings.TrimSuffix(f, "/")
			}
		}
	}
	return ""
}
