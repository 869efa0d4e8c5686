// Package provision installs, inside a container, the NVIDIA user-space
// libraries of exactly the host's loaded driver version, from the node's
// cached driver tree, and records the outcome. It is the provisioning
// worker's body; post-start only asks Current and starts the worker.
//
// Everything inside the container happens through attach (ctexec), so the
// container's paths resolve inside it; the few reads from the host go
// through openat2(RESOLVE_IN_ROOT) (ctfs). The installer runs from the
// node's extracted tree, bind-mounted read-only by pre-start: no copy of the
// .run or of the tree is made per container.
//
// nvidia-installer runs from a read-only tree with --no-kernel-module: in its
// source (install-from-cwd.c, install_from_cwd) everything that writes into
// the package directory, building or linking the kernel interface
// (kernel.c) and DKMS registration (misc.c), is skipped when
// op->no_kernel_modules is set; the manifest and the installed files are only
// read (parse_manifest, files.c install_file, crc.c). Its temporary files go
// to $TMPDIR or /tmp (files.c get_tmpdir), and its log must be an absolute
// path, which installerFlags give.
package provision

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Paths inside the container.
const (
	nvidiaDir = "/var/lib/nvidia"                           // nvidia-installer's own directory
	nvidiaLog = nvidiaDir + "/log"                          // nvidia-installer's install record
	ctDir     = "/var/lib/nvidiaprep"                       // nvidiaprep's directory inside
	marker    = ctDir + "/provisioning"                     // present while an install is under way
	ctRecord  = ctDir + "/installed"                        // what nvidiaprep installed, for admins inside
	altMarker = "/usr/lib/nvidia/alternate-install-present" // left by distribution packages
)

// libDirs are where nvidia-installer puts libraries, by distribution.
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"}

// installerFlags make nvidia-installer install user space only, silently,
// without touching what a container cannot have (kernel modules, X, the
// host's nouveau, systemd units for suspend) and without backups.
var installerFlags = []string{
	"--silent", "--no-kernel-module", "--no-nvidia-modprobe", "--no-x-check",
	"--no-nouveau-check", "--no-systemd", "--no-rpms", "--no-backup",
	"--no-check-for-alternate-installs", "--install-libglvnd",
	"--log-file-name=/var/log/nvidia-installer.log",
}

// Current tells whether the container whose init is pid already has
// version's libraries, from nvidia-installer's record, read safely from the
// host, and the absence of a half-done install. why says what differs.
func Current(pid int, version string) (ok bool, why string, err error) {
	root, err := ctfs.Open(pid)
	if err != nil {
		return false, "", err
	}
	defer root.Close()
	// Only a missing file is an answer; what cannot be read leaves the
	// question open, and an open question is "not current": the worker
	// installs and verifies.
	_, err = root.ReadFile(marker, 64)
	switch {
	case err == nil:
		return false, "an earlier install did not finish", nil
	case !errors.Is(err, unix.ENOENT):
		return false, fmt.Sprintf("whether an earlier install finished is unknown (%v)", err), nil
	}
	log, err := root.ReadFile(nvidiaLog, 4096)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, "no NVIDIA driver is installed from a .run", nil
	case err != nil:
		return false, fmt.Sprintf("its install record cannot be read (%v)", err), nil
	}
	if have := record.InstalledVersion(log); have != version {
		return false, fmt.Sprintf("it has %s, the host runs %s", orNone(have), version), nil
	}
	return true, "", nil
}

func orNone(v string) string {
	if v == "" {
		return "an unreadable version"
	}
	return v
}

// Worker provisions one container.
type Worker struct {
	Config config.Config
	VMID   int
	Log    zerolog.Logger
	// Status reports progress (sd_notify STATUS=); nil drops it.
	Status func(string)
}

// ErrBusy means another worker is provisioning the container.
var ErrBusy = errors.New("another worker is provisioning this container")

// Run provisions the container once, under its lock, and records the
// outcome on the host. It returns ErrBusy at once when another worker holds
// the container.
func (w Worker) Run(ctx context.Context) error {
	p := w.Config.Paths
	lock, err := filelock.TryLock(lockPath(p.State, w.VMID))
	if errors.Is(err, filelock.ErrBusy) {
		return ErrBusy
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	version, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil {
		return fmt.Errorf("CT %d: %w: nothing to install", w.VMID, err)
	}
	if w.current(version) {
		w.Log.Info().Msgf("CT %d already has the NVIDIA user-space libraries %s; nothing to do", w.VMID, version)
		_, err := settleLocked(p.State, w.VMID, version)
		return err
	}
	rec := record.Provision{VMID: w.VMID, Version: version, Outcome: record.Running, Started: time.Now().UTC()}
	if err := record.Save(p.State, rec); err != nil {
		return err
	}
	notes, err := w.provision(ctx, version)
	rec.Finished = time.Now().UTC()
	rec.Duration = rec.Finished.Sub(rec.Started)
	rec.Notes = notes
	rec.Outcome = record.Installed
	if err != nil {
		rec.Outcome, rec.Error = record.Failed, err.Error()
	}
	if saveErr := record.Save(p.State, rec); saveErr != nil && err == nil {
		err = saveErr
	}
	return err
}

func (w Worker) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.Log.Info().Msgf("CT %d: %s", w.VMID, msg)
	if w.Status != nil {
		w.Status(msg)
	}
}

func (w Worker) provision(ctx context.Context, version string) ([]string, error) {
	cfg := w.Config
	ctx, cancel := context.WithTimeout(ctx, cfg.Provision.InstallTimeout)
	defer cancel()

	w.status("waiting for one of %d install slots", cfg.Provision.MaxConcurrent)
	slot, err := filelock.WaitAny(ctx, cfg.Paths.State+"/locks/install-slot", cfg.Provision.MaxConcurrent)
	if err != nil {
		return nil, fmt.Errorf("CT %d: %w", w.VMID, err)
	}
	defer slot.Unlock()

	w.status("preparing driver %s in the node's cache", version)
	pinned := ""
	if cfg.Driver.Version == version {
		pinned = cfg.Driver.SHA256
	}
	cache := driverrun.Cache{Dir: cfg.Paths.Cache}
	if _, err := cache.Extract(ctx, version, pinned); err != nil {
		return nil, fmt.Errorf("CT %d: %w", w.VMID, err)
	}

	ct, err := ctexec.Open(cfg.Paths.LXC, w.VMID)
	if err != nil {
		return nil, err
	}
	defer ct.Close()
	s := session{w: w, ct: ct, version: version}
	if err := s.checkShell(ctx); err != nil {
		return nil, err
	}
	if err := s.waitSystemd(ctx); err != nil {
		return nil, err
	}
	if err := s.waitDpkg(ctx); err != nil {
		return nil, err
	}
	if err := s.clean(ctx); err != nil {
		return nil, err
	}
	if err := s.install(ctx); err != nil {
		return nil, err
	}
	return s.verify(ctx)
}

// session is one provisioning of one container.
type session struct {
	w       Worker
	ct      *ctexec.Container
	version string
}

func (s session) vmid() int { return s.w.VMID }

// sh runs a shell script inside the container.
func (s session) sh(ctx context.Context, script string) (ctexec.Result, error) {
	return s.ct.Run(ctx, []string{"/bin/sh", "-c", script}, nil)
}

// checkShell makes sure the container has the POSIX shell every later step uses.
func (s session) checkShell(ctx context.Context) error {
	r, err := s.sh(ctx, "exit 0")
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("CT %d has no working /bin/sh (exit %d): nvidiaprep needs a POSIX shell and coreutils inside the container; nothing was changed", s.vmid(), r.Exit)
	}
	return nil
}

// waitSystemd waits until the container's systemd reports running or
// degraded; a container whose init is not systemd is not waited for.
func (s session) waitSystemd(ctx context.Context) error {
	r, err := s.sh(ctx, "test -d /run/systemd/system")
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		s.w.Log.Info().Msgf("CT %d: init is not systemd; not waiting for it", s.vmid())
		return nil
	}
	s.w.status("waiting for the container's systemd to finish booting")
	wait, cancel := context.WithTimeout(ctx, s.w.Config.Provision.SystemdTimeout)
	defer cancel()
	var state untrusted.Text
	for {
		r, err := s.ct.Run(wait, []string{"systemctl", "is-system-running", "--wait"}, nil)
		if err == nil {
			state = untrusted.New(strings.TrimSpace(r.Stdout.Raw()))
			if state.Raw() == "running" || state.Raw() == "degraded" {
				return nil
			}
		}
		if errors.Is(err, ctexec.ErrStopped) {
			return fmt.Errorf("CT %d stopped while booting: %w", s.vmid(), err)
		}
		select {
		case <-wait.Done():
			return fmt.Errorf("CT %d: systemd did not finish booting within %v (state %q); look at `pct exec %d -- systemctl list-jobs`, then restart the container", s.vmid(), s.w.Config.Provision.SystemdTimeout, state, s.vmid())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// dpkgLocks are the fcntl locks apt and dpkg hold.
var dpkgLocks = []string{"/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock", "/var/cache/apt/archives/lock", "/var/lib/apt/lists/lock"}

// waitDpkg waits until no process holds apt's or dpkg's locks in the
// container, saying every few seconds who holds them.
func (s session) waitDpkg(ctx context.Context) error {
	deadline := time.Now().Add(s.w.Config.Provision.DpkgLockTimeout)
	lastSaid := time.Time{}
	for {
		held, who, err := s.lockHolder(ctx)
		if err != nil {
			return err
		}
		if held == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CT %d: %s is still held by %s after %v; nothing was changed. Let it finish (or stop it), then restart the container", s.vmid(), held, who, s.w.Config.Provision.DpkgLockTimeout)
		}
		if time.Since(lastSaid) >= 5*time.Second {
			s.w.status("waiting for %s, held by %s", held, who)
			lastSaid = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CT %d: waiting for %s: %w", s.vmid(), held, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lockHolder names a held lock and its holder, whose name the container chose.
func (s session) lockHolder(ctx context.Context) (path string, who untrusted.Text, err error) {
	pid, err := s.ct.InitPID(ctx)
	if err != nil {
		return "", who, err
	}
	if pid <= 0 {
		return "", who, fmt.Errorf("CT %d: %w", s.vmid(), ctexec.ErrStopped)
	}
	root, err := ctfs.Open(pid)
	if err != nil {
		return "", who, fmt.Errorf("CT %d: %w", s.vmid(), err)
	}
	defer root.Close()
	for _, l := range dpkgLocks {
		locked, holder, err := root.LockHolder(l)
		var nr *ctfs.NotRegularError
		if errors.As(err, &nr) {
			return "", who, fmt.Errorf("CT %d: %w: apt and dpkg lock it, so nvidiaprep cannot tell whether they run; nothing was changed. Remove it (pct exec %d -- rm %s), then restart the container", s.vmid(), err, s.vmid(), l)
		}
		if err != nil {
			return "", who, fmt.Errorf("CT %d: probing %s: %w", s.vmid(), l, err)
		}
		if locked {
			who := untrusted.New("another process")
			if holder > 0 {
				who = ctfs.ProcessName(holder)
			}
			return l, who, nil
		}
	}
	return "", who, nil
}

// clean removes what would conflict with the install: the distribution's
// NVIDIA driver packages, their alternate-install marker, and a .run
// install of another version or one left half-done.
func (s session) clean(ctx context.Context) error {
	s.w.status("removing conflicting NVIDIA installs")
	r, err := s.sh(ctx, `command -v dpkg-query >/dev/null || exit 0; dpkg-query -W -f '${db:Status-Abbrev} ${Package}\n'`)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("CT %d: listing its packages failed (dpkg-query exit %d): %s; whether the distribution's NVIDIA packages are installed is unknown, so nothing was changed: fix its dpkg database (pct exec %d -- dpkg --audit), then restart it", s.vmid(), r.Exit, r.Output().LastLines(3), s.vmid())
	}
	if pkgs := DriverPackages(r.Stdout.Raw()); len(pkgs) > 0 {
		s.w.status("purging the distribution's NVIDIA packages: %s", strings.Join(pkgs, " "))
		secs := int(s.w.Config.Provision.DpkgLockTimeout.Seconds())
		script := fmt.Sprintf(`if command -v apt-get >/dev/null; then apt-get purge -y -q -o DPkg::Lock::Timeout=%d "$@"; else dpkg --purge "$@"; fi`, secs)
		r, err := s.ct.Run(ctx, append([]string{"/bin/sh", "-c", script, "purge"}, pkgs...), nil)
		if err != nil {
			return err
		}
		if r.Exit != 0 {
			return fmt.Errorf("CT %d: purging %s failed (exit %d): %s; fix the container's packages (pct exec %d -- apt-get -f install), then restart it", s.vmid(), strings.Join(pkgs, " "), r.Exit, r.Output().LastLines(5), s.vmid())
		}
	}
	r, err = s.ct.Run(ctx, []string{"/bin/sh", "-c", markScript, "mark", s.version}, nil)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("CT %d: marking the install as under way in %s failed (exit %d): %s; nvidiaprep keeps its records there: make it a writable directory inside the container, then restart it", s.vmid(), path.Dir(marker), r.Exit, r.Output().LastLines(5))
	}
	// An earlier version goes; a half-done install of the same version is
	// uninstalled too, so the install starts clean.
	script := `set -e
if [ -f ` + nvidiaLog + ` ] && [ -x /usr/bin/nvidia-uninstall ]; then
	/usr/bin/nvidia-uninstall --silent --log-file-name=/var/log/nvidia-uninstall.log
fi`
	r, err = s.ct.Run(ctx, []string{"/bin/sh", "-c", script, "clean"}, nil)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("CT %d: uninstalling the earlier NVIDIA driver failed (exit %d): %s; see /var/log/nvidia-uninstall.log inside the container", s.vmid(), r.Exit, r.Output().LastLines(5))
	}
	return nil
}

// markScript removes the distribution's alternate-install marker and marks
// an install as under way ($1 is the version). nvidiaprep's directory inside
// the container is made a directory again when it is not one (a link that
// leads nowhere, a file), and its files are replaced, never written through:
// what the container left there is not trusted. (All of it runs inside the
// container, so its links resolve there anyway.) A link that leads nowhere
// in place of nvidia-installer's directory goes too: the installer could
// not recreate it.
const markScript = `set -e
rm -rf ` + altMarker + `
if [ -L ` + nvidiaDir + ` ] && [ ! -d ` + nvidiaDir + ` ]; then rm -f ` + nvidiaDir + `; fi
d=` + ctDir + `
if [ ! -d "$d" ]; then rm -f "$d"; mkdir -p "$d"; fi
rm -rf ` + marker + `
printf '%s\n' "$1" > ` + marker

// recordScript stores stdin as the in-container record, replacing whatever
// is there, and clears the marker: the install is complete.
const recordScript = `set -e
rm -rf ` + ctRecord + `.tmp
cat > ` + ctRecord + `.tmp
if [ -L ` + ctRecord + ` ] || [ -d ` + ctRecord + ` ]; then rm -rf ` + ctRecord + `; fi
mv -f ` + ctRecord + `.tmp ` + ctRecord + `
rm -rf ` + marker

// install runs the version's nvidia-installer from the read-only tree.
func (s session) install(ctx context.Context) error {
	installer := path.Join("/", driverrun.MountPoint, s.version, "nvidia-installer")
	r, err := s.sh(ctx, "test -x "+installer)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("CT %d: the node's driver cache is not mounted at /%s (the container started before nvidiaprep managed it, or with install = false): restart the container so that pre-start mounts it", s.vmid(), driverrun.MountPoint)
	}
	s.w.status("installing NVIDIA user-space libraries %s", s.version)
	r, err = s.ct.Run(ctx, append([]string{installer}, installerFlags...), nil)
	if errors.Is(err, ctexec.ErrStopped) {
		return fmt.Errorf("CT %d stopped during the install of %s; its next start installs again: %w", s.vmid(), s.version, err)
	}
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("CT %d: nvidia-installer %s failed (exit %d): %s; %sits log is /var/log/nvidia-installer.log inside the container", s.vmid(), s.version, r.Exit, untrusted.Concat(r.Stderr, r.Stdout).LastLines(5), s.fullHint(ctx, installSize(driverrun.Cache{Dir: s.w.Config.Paths.Cache}.Tree(s.version))))
	}
	return nil
}

// verify checks the install record and the libnvidia-ml.so.1 link, runs
// nvidia-smi, and records the install inside the container.
func (s session) verify(ctx context.Context) ([]string, error) {
	s.w.status("verifying")
	pid, err := s.ct.InitPID(ctx)
	if err != nil {
		return nil, err
	}
	root, err := ctfs.Open(pid)
	if err != nil {
		return nil, fmt.Errorf("CT %d: %w", s.vmid(), err)
	}
	defer root.Close()
	log, err := root.ReadFile(nvidiaLog, 4096)
	if err != nil {
		return nil, fmt.Errorf("CT %d: after the install: %w", s.vmid(), err)
	}
	if have := record.InstalledVersion(log); have != s.version {
		return nil, fmt.Errorf("CT %d: after the install %s records version %q, want %s", s.vmid(), nvidiaLog, have, s.version)
	}
	want := "libnvidia-ml.so." + s.version
	var target untrusted.Text
	for _, d := range libDirs {
		if t, err := root.Readlink(d + "/libnvidia-ml.so.1"); err == nil {
			target = t
			break
		}
	}
	if path.Base(target.Raw()) != want {
		return nil, fmt.Errorf("CT %d: libnvidia-ml.so.1 points to %q, want %s", s.vmid(), target, want)
	}
	var notes []string
	r, err := s.ct.Run(ctx, []string{"nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"}, nil)
	switch {
	case err != nil:
		return nil, err
	case r.Exit == 0:
		versions := strings.Fields(r.Stdout.Raw())
		if len(versions) == 0 {
			return nil, fmt.Errorf("CT %d: nvidia-smi succeeded but printed no driver version (%s), so the install is not verified; run `pct exec %d -- nvidia-smi` to see why", s.vmid(), r.Output().FirstLine(), s.vmid())
		}
		for _, v := range versions {
			if v != s.version {
				return nil, fmt.Errorf("CT %d: nvidia-smi reports driver %s, want %s", s.vmid(), untrusted.New(v), s.version)
			}
		}
		notes = append(notes, "nvidia-smi: "+strings.Join(versions, ", ")) // each one is s.version
	default:
		notes = append(notes, fmt.Sprintf("nvidia-smi cannot reach a GPU (no GPU given, or no driver behind the nodes): %s", r.Output().FirstLine()))
	}
	rec := fmt.Sprintf("version=%s\ninstalled=%s\nsource=nvidiaprep (host's cached NVIDIA .run, --no-kernel-module)\n", s.version, time.Now().UTC().Format(time.RFC3339))
	r, err = s.ct.Run(ctx, []string{"/bin/sh", "-c", recordScript}, strings.NewReader(rec))
	if err != nil {
		return nil, err
	}
	if r.Exit != 0 {
		return nil, fmt.Errorf("CT %d: recording the install: %s", s.vmid(), r.Stderr.LastLines(3))
	}
	s.w.status("installed NVIDIA user-space libraries %s", s.version)
	return notes, nil
}
