// Package lxctest runs real LXC containers the way Proxmox VE starts them, so
// that nvidiaprep's hookscript can be tested against real device cgroups,
// bind mounts and id maps on a machine without Proxmox or an NVIDIA GPU.
//
// It drives LXC through its command-line tools (lxc-start, lxc-attach, ...).
// A Bed is a temporary directory that stands for Proxmox's /var/lib/lxc; its
// containers boot Debian bookworm with systemd from a root file system cached
// by integration/setup.sh. Every container is started from a private mount
// namespace whose /sys/fs/cgroup is a lone cgroup2 mount, so LXC enforces
// lxc.cgroup2.devices.* rules with a BPF program as on a pure cgroup v2
// Proxmox VE 8 node, even where the machine's init mounted a hybrid layout.
//
// As on Proxmox (lxc.monitor.unshare = 1, root file system mounted by an LXC
// pre-start hook), a container's root file system is mounted only in the
// container's mount namespaces: <LXCPath>/<vmid>/rootfs stays an empty
// directory on the host. Use CT.RootFS (/proc/<pid>/root) or CT.Exec.
//
// Everything here needs root. Container ids (vmids) must be unique among the
// containers running on the machine at the same time, because LXC names the
// container's cgroup lxc/<vmid> in the one cgroup2 hierarchy, as Proxmox does.
// A process that ends without closing its beds (killed, or go test's
// -timeout) leaves none of their containers running: each bed's watchdog
// stops them; NewContainer removes the empty cgroups that a container killed
// with its monitor leaves.
package lxctest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// DefaultCache is the root file system cache that integration/setup.sh
// fills; the environment variable NVIDIAPREP_TEST_CACHE overrides it.
const DefaultCache = "/var/cache/nvidiaprep-test"

// rootfsName is the cached debootstrap tree below the cache directory.
const rootfsName = "rootfs-bookworm"

// Bed is one test bed: a directory whose lxc/ subdirectory acts as
// Proxmox's /var/lib/lxc.
type Bed struct {
	// Dir is the bed's directory. Tests may keep their own files in it, for
	// example stand-in device nodes to bind-mount into containers.
	Dir string
	// LXCPath is Dir/lxc, the lxc-* tools' -P path: the containers'
	// configs live in LXCPath/<vmid>/config as in /var/lib/lxc/<vmid>/config.
	LXCPath string
	// Cache is the root file system cache (see DefaultCache).
	Cache string

	overlay bool // root file systems are overlayfs mounts, else copies

	mu  sync.Mutex
	cts map[int]*CT

	watchdog int // its process id (see startWatchdog); 0: none
}

// NewBed makes a test bed in dir, creating dir if needed and making it
// searchable by everyone (unprivileged containers' root must reach their
// root file system and bind-mount sources below it). It checks that it runs
// as root, that LXC is installed and that integration/setup.sh has built the
// cached root file system.
func NewBed(dir string) (*Bed, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("lxctest: must run as root")
	}
	for _, tool := range []string{"lxc-start", "lxc-stop", "lxc-attach", "lxc-info", "lxc-wait"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("lxctest: %s not found (run integration/setup.sh): %w", tool, err)
		}
	}
	cache := os.Getenv("NVIDIAPREP_TEST_CACHE")
	if cache == "" {
		cache = DefaultCache
	}
	if _, err := os.Stat(filepath.Join(cache, rootfsName, "usr/lib/systemd/systemd")); err != nil {
		return nil, fmt.Errorf("lxctest: no cached root file system in %s (run integration/setup.sh): %w", cache, err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("lxctest: %w", err)
	}
	if strings.ContainsAny(dir, ",: \t\n\"'\\") {
		return nil, fmt.Errorf("lxctest: bed directory %q: no commas, colons, quotes or blanks allowed (they end up in LXC config lines and overlayfs options)", dir)
	}
	b := &Bed{Dir: dir, LXCPath: filepath.Join(dir, "lxc"), Cache: cache, cts: map[int]*CT{}}
	if err := b.makeDirs(); err != nil {
		return nil, err
	}
	if err := b.writePostStopHook(); err != nil {
		return nil, err
	}
	if err := b.startWatchdog(); err != nil {
		return nil, err
	}
	b.overlay = probeOverlay(b.lowerDir("", false), filepath.Join(dir, "disk", ".overlay-probe")) == nil
	return b, nil
}

func (b *Bed) makeDirs() error {
	for _, d := range []string{b.Dir, b.LXCPath, filepath.Join(b.Dir, "disk")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("lxctest: %w", err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			return fmt.Errorf("lxctest: %w", err)
		}
	}
	for d := filepath.Dir(b.Dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("lxctest: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("lxctest: %s is not searchable by others (mode %v); unprivileged containers could not reach the bed %s below it", d, fi.Mode().Perm(), b.Dir)
		}
		if d == "/" {
			return nil
		}
	}
}

// Overlay tells whether containers' root file systems are overlayfs mounts
// over the cache (true) or full copies (overlayfs unusable in Dir).
func (b *Bed) Overlay() bool { return b.overlay }

// diskDir is where container vmid's root file system data lives: its
// overlayfs upper and work directories, or its copy. It stands for the
// storage volume (subvol-<vmid>-disk-0) that Proxmox mounts at start.
func (b *Bed) diskDir(vmid int) string {
	return filepath.Join(b.Dir, "disk", fmt.Sprint(vmid))
}

// Close stops (kills) every container the bed made, unmounts whatever is
// mounted below Dir in the host's mount namespace and removes the
// containers' directories (LXCPath and Dir/disk). Files the caller put in
// Dir stay. A container that cannot be stopped keeps its directories.
func (b *Bed) Close() error {
	b.mu.Lock()
	cts := make([]*CT, 0, len(b.cts))
	for _, c := range b.cts {
		cts = append(cts, c)
	}
	b.mu.Unlock()
	var errs []error
	stuck := false
	for _, c := range cts {
		if err := c.kill(); err != nil {
			errs = append(errs, err)
			stuck = true
		}
	}
	if err := unmountBelow(b.Dir); err != nil {
		errs = append(errs, err)
		stuck = true
	}
	if !stuck {
		for _, d := range []string{b.LXCPath, filepath.Join(b.Dir, "disk")} {
			if err := os.RemoveAll(d); err != nil {
				errs = append(errs, fmt.Errorf("lxctest: %w", err))
			}
		}
		b.mu.Lock()
		b.cts = map[int]*CT{}
		b.mu.Unlock()
		b.stopWatchdog() // else it kills what is stuck when this process ends
	}
	return errors.Join(errs...)
}

// unmountBelow detaches every mount at or below dir in this mount namespace,
// deepest first.
func unmountBelow(dir string) error {
	mounts, err := mountsBelow(dir)
	if err != nil {
		return err
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("lxctest: unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// mountsBelow lists the mount points at or below dir in this mount namespace.
func mountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("lxctest: %w", err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("lxctest: reading mountinfo: %w", err)
	}
	return out, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for blank, ...) of
// /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%3o", &c); err == nil {
				sb.WriteByte(c)
				i += 3
				continue
			}
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}
