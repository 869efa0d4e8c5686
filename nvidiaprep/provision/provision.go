// Package provision is the provisioning worker: it installs, inside a
// container, the NVIDIA user-space libraries of exactly the host's loaded
// driver version, from the node's cached driver tree, and records the outcome.
//
// Everything inside the container happens through attach (ctexec); the few
// reads from the host go through ctfs (openat2 RESOLVE_IN_ROOT). The
// installer runs with --no-kernel-module from the tree that pre-start shows
// in the container as a read-only overlay: no copy per container. In that
// mode nvidia-installer only reads its package directory (install-from-cwd.c
// skips the kernel interface and DKMS; parse_manifest, files.c install_file
// and crc.c only read), writes its temporary files to $TMPDIR (files.c
// get_tmpdir), and wants an absolute log path (installerFlags gives one).
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
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/installstate"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvflags"
	"nvidiaprep/nvidiaprep/nvpkgs"
	"nvidiaprep/nvidiaprep/nvversion"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Paths inside the container.
const (
	ctDir     = installstate.Dir                            // nvidiaprep's directory inside
	marker    = installstate.Marker                         // present while an install is under way
	ctRecord  = ctDir + "/installed"                        // what nvidiaprep installed, for admins inside
	altMarker = "/usr/lib/nvidia/alternate-install-present" // left by distribution packages
)

// libDirs are where nvidia-installer puts libraries, by distribution.
var libDirs = []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"}

// installerFlags make nvidia-installer install user space only, silently,
// without touching what a container cannot have (kernel modules, X, the
// host's nouveau, systemd units for suspend) and without backups. The
// container's own libglvnd is never replaced: with --install-libglvnd every
// libGL.so*, libEGL.so*, ... under /usr/lib* is a conflicting file, deleted
// with --no-backup whoever owns it (command-list.c find_conflicting_files),
// and --no-install-libglvnd is what NVIDIA's own driver container passes.
// No module is unloaded and depmod does not run (backup.c do_uninstall), and
// temporary files go to a directory of nvidiaprep's (install adds
// --tmpdir). All of them exist from 465.19.01 on (MinContainerVersion).
var installerFlags = []string{
	"--silent", "--no-kernel-module", "--no-nvidia-modprobe", "--no-x-check",
	"--no-nouveau-check", "--no-systemd", "--no-rpms", "--no-backup",
	"--no-check-for-alternate-installs", "--no-install-libglvnd",
	"--skip-module-unload", "--skip-depmod",
	"--log-file-name=/var/log/nvidia-installer.log",
}

// checkVersion refuses driver versions whose installer cannot install into
// a container.
func checkVersion(version string) error {
	if !nvversion.AtLeast(version, nvflags.MinContainerVersion) {
		return fmt.Errorf("driver %s is older than %s: its nvidia-installer has no --no-systemd, so nvidiaprep cannot install its libraries into a container; nothing was changed. Run a driver of %s or later on the host, or set install = false for the container and install the libraries yourself", version, nvflags.MinContainerVersion, nvflags.MinContainerVersion)
	}
	return nil
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
	lock, err := filelock.TryLockOwned(lockPath(p.State, w.VMID))
	if errors.Is(err, filelock.ErrBusy) {
		return ErrBusy
	}
	if err != nil {
		return err
	}
	defer lock.Unlock()
	if ct := w.Config.Container(w.VMID); !ct.Install || ct.GPUs.None() {
		w.Log.Info().Msg(ctmsg.Name(w.VMID) + " gets no install (install = false, or gpus = []): nothing to install")
		return w.Apps(ctx, "")
	}
	version, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil {
		return fmt.Errorf("%w: nothing to install", err)
	}
	if w.current(version) {
		w.Log.Info().Msgf("%s already has the NVIDIA user-space libraries %s; nothing to install", ctmsg.Name(w.VMID), version)
		if _, err := settleLocked(p.State, w.VMID, version); err != nil {
			return err
		}
		return w.Apps(ctx, version)
	}
	rec := record.Provision{VMID: w.VMID, Version: version, Outcome: record.Running, Started: time.Now().UTC()}
	if err := record.Save(p.State, rec); err != nil {
		return err
	}
	notes, registered, err := w.provision(ctx, version)
	// The CDI spec follows the install, before the record says it is done.
	var appsErr error
	if err == nil {
		if appsErr = w.apps(ctx, version, registered); appsErr != nil {
			notes = append(notes, "the CDI spec was not written: "+appsErr.Error())
		}
	}
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
	if err == nil {
		err = appsErr
	}
	return err
}

func (w Worker) status(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.Log.Info().Msg(ctmsg.Sprintf(w.VMID, "%s", msg))
	if w.Status != nil {
		w.Status(msg)
	}
}

// provision installs version's libraries into the container and verifies
// them; registered says the apt registration was made on the way.
func (w Worker) provision(ctx context.Context, version string) (notes []string, registered bool, err error) {
	cfg := w.Config
	ctx, cancel := context.WithTimeout(ctx, cfg.Provision.InstallTimeout)
	defer cancel()

	w.status("waiting for one of %d install slots", cfg.Provision.MaxConcurrent)
	slot, err := filelock.WaitAnyOwned(ctx, cfg.Paths.State+"/locks/install-slot", cfg.Provision.MaxConcurrent)
	if err != nil {
		return nil, false, err
	}
	defer slot.Unlock()

	if err := checkVersion(version); err != nil {
		return nil, false, err
	}
	w.status("preparing driver %s in the node's cache", version)
	pinned := ""
	if cfg.Driver.Version == version {
		pinned = cfg.Driver.SHA256
	}
	cache := driverrun.Cache{Dir: cfg.Paths.Cache, OnReplace: func(version, why string) {
		w.Log.Warn().Msg(ctmsg.Sprintf(w.VMID, "the node's tree of driver %s is not used: %s; extracting it again from its .run", version, why))
	}}
	if _, err := cache.Extract(ctx, version, pinned); err != nil {
		return nil, false, err
	}

	ct, err := ctexec.Open(cfg.Paths.LXC, w.VMID)
	if err != nil {
		return nil, false, err
	}
	defer ct.Close()
	s := session{w: w, ct: ct, version: version}
	if err := s.checkShell(ctx); err != nil {
		return nil, false, err
	}
	if err := s.preflight(ctx); err != nil {
		return nil, false, err
	}
	if err := s.checkMount(ctx); err != nil {
		return nil, false, err
	}
	if err := s.waitSystemd(ctx); err != nil {
		return nil, false, err
	}
	if err := s.waitDpkg(ctx); err != nil {
		return nil, false, err
	}
	if registered, err = s.clean(ctx); err != nil {
		return nil, false, err
	}
	if err := s.checkConflicts(ctx); err != nil {
		return nil, false, err
	}
	if err := s.install(ctx); err != nil {
		return nil, false, err
	}
	notes, err = s.verify(ctx)
	return notes, registered, err
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
		return fmt.Errorf("no working /bin/sh (exit %d): nvidiaprep needs a POSIX shell and coreutils inside the container; nothing was changed", r.Exit)
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
		s.w.Log.Info().Msg(ctmsg.Sprintf(s.vmid(), "init is not systemd; not waiting for it"))
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
			return fmt.Errorf("it stopped while booting: %w", err)
		}
		select {
		case <-wait.Done():
			return fmt.Errorf("systemd did not finish booting within %v (state %q); look at `pct exec %d -- systemctl list-jobs`, then restart the container", s.w.Config.Provision.SystemdTimeout, state, s.vmid())
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
			return fmt.Errorf("%s is still held by %s after %v; nothing was changed. Let it finish (or stop it), then restart the container", held, who, s.w.Config.Provision.DpkgLockTimeout)
		}
		if time.Since(lastSaid) >= 5*time.Second {
			s.w.status("waiting for %s, held by %s", held, who)
			lastSaid = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", held, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// lockHolder names a held lock and its holder, whose name the container chose.
func (s session) lockHolder(ctx context.Context) (path string, who untrusted.Text, err error) {
	root, err := s.ct.Root(ctx)
	if err != nil {
		return "", who, err
	}
	defer root.Close()
	held := root.LockHolders(dpkgLocks...) // one child process for all of them
	for i, l := range dpkgLocks {
		locked, holder, err := held[i].Locked, held[i].Pid, held[i].Err
		var nr *ctfs.NotRegularError
		var sp *ctfs.SpecialFSError
		if errors.As(err, &sp) {
			return "", who, fmt.Errorf("%w: apt and dpkg lock it, so nvidiaprep cannot tell whether they run; nothing was changed. Unmount what the container mounted there (or remove its link to it), then restart the container", err)
		}
		if errors.As(err, &nr) {
			return "", who, fmt.Errorf("%w: apt and dpkg lock it, so nvidiaprep cannot tell whether they run; nothing was changed. Remove it (pct exec %d -- rm %s), then restart the container", err, s.vmid(), l)
		}
		if err != nil {
			return "", who, fmt.Errorf("probing %s: %w", l, err)
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

// driverPackages lists the distribution's NVIDIA driver packages the
// container has. When dpkg-query fails, whether it has any is unknown: an
// error, which says what was left undone (undone).
func (s session) driverPackages(ctx context.Context, undone string) ([]string, error) {
	r, err := s.ct.Run(ctx, listPackagesScript.argv(nvpkgs.QueryFormat), nil)
	if err != nil {
		return nil, err
	}
	if r.Exit != 0 {
		return nil, fmt.Errorf("listing its packages failed (dpkg-query exit %d): %s; whether the distribution's NVIDIA packages are installed is unknown, so %s: fix its dpkg database (pct exec %d -- dpkg --audit), then restart it", r.Exit, r.Output().LastLines(3), undone, s.vmid())
	}
	return nvpkgs.DriverPackages(r.Stdout.Raw()), nil
}

// clean removes what would conflict with the install: the distribution's
// NVIDIA driver packages, their alternate-install marker, and a .run
// install of another version or one left half-done.
func (s session) clean(ctx context.Context) (registered bool, err error) {
	s.w.status("removing conflicting NVIDIA installs")
	if _, err := s.driverPackages(ctx, "nothing was changed"); err != nil {
		return false, err
	}
	// The registration first: apt then removes the distribution's driver
	// packages it conflicts with and keeps what depends on them. A failure
	// does not stop the install (the worker tries again after it, and says
	// so then).
	if err := s.register(ctx); err != nil {
		s.w.Log.Warn().Err(err).Msg(ctmsg.Text(s.vmid(), err) + "; installing the driver all the same")
	} else {
		registered = true
	}
	pkgs, err := s.driverPackages(ctx, "the driver was not installed")
	if err != nil {
		return registered, err
	}
	if len(pkgs) > 0 {
		s.w.status("purging the distribution's NVIDIA packages: %s", strings.Join(pkgs, " "))
		secs := fmt.Sprint(int(s.w.Config.Provision.DpkgLockTimeout.Seconds()))
		r, err := s.ct.Run(ctx, purgeScript.argv(append([]string{secs}, pkgs...)...), nil)
		if err != nil {
			return registered, err
		}
		if r.Exit != 0 {
			return registered, fmt.Errorf("purging %s failed (exit %d): %s; fix the container's packages (pct exec %d -- apt-get -f install), then restart it", strings.Join(pkgs, " "), r.Exit, r.Output().LastLines(5), s.vmid())
		}
	}
	r, err := s.ct.Run(ctx, markScript.argv(s.version), nil)
	if err != nil {
		return registered, err
	}
	if r.Exit != 0 {
		return registered, fmt.Errorf("marking the install as under way in %s failed (exit %d): %s; nvidiaprep keeps its records there: make it a writable directory inside the container, then restart it", path.Dir(marker), r.Exit, r.Output().LastLines(5))
	}
	return registered, s.uninstall(ctx)
}

// uninstall removes an earlier .run install (scripts/uninstall.sh), then
// checks that it is gone: nvidia-installer's uninstall exits 0 even when it
// removed nothing.
func (s session) uninstall(ctx context.Context) error {
	r, err := s.withUtils(ctx, false, uninstallScript.argv(s.installer())...)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("uninstalling the earlier NVIDIA driver failed (exit %d): %s; see /var/log/nvidia-uninstall.log inside the container", r.Exit, r.Output().LastLines(5))
	}
	root, err := s.ct.Root(ctx)
	if err != nil {
		return err
	}
	defer root.Close()
	log, err := root.ReadFile(record.NVIDIALog, 4096)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("after the uninstaller ran, whether the earlier NVIDIA driver is gone is unknown: %w; nothing more was changed: make %s a regular file or remove it (pct exec %d -- rm -rf %s), then restart the container", err, record.NVIDIALog, s.vmid(), record.NVIDIALog)
	}
	if err == nil {
		return fmt.Errorf("the earlier NVIDIA driver %s is still installed after its uninstaller ran (it exits 0 either way); /var/log/nvidia-uninstall.log inside the container has its ERROR (it removes nothing when /var/lib/nvidia is not mode 0700 or its log not 0600: pct exec %d -- chmod 700 /var/lib/nvidia). Fix that, then restart the container", orNone(record.InstalledVersion(log)), s.vmid())
	}
	return nil
}

// withUtils runs argv inside the container with placeholders for kmod's
// utilities, which nvidia-installer requires, first on the PATH, and with
// tmpdir, a --tmpdir of nvidiaprep's (scripts/with-utils.sh).
func (s session) withUtils(ctx context.Context, tmpdir bool, argv ...string) (ctexec.Result, error) {
	mode := "plain"
	if tmpdir {
		mode = "tmpdir"
	}
	r, err := s.ct.Run(ctx, utilsScript.argv(append([]string{mode}, argv...)...), nil)
	if err == nil && r.Exit == 120 {
		return r, fmt.Errorf("making a temporary directory in %s failed: %s; nvidiaprep keeps its files there: make it a writable directory inside the container, then restart it", ctDir, r.Stderr.LastLines(3))
	}
	return r, err
}

// systemUtils are what nvidia-installer's find_system_utils requires, with
// the Debian packages that have them.
var systemUtils = []struct{ name, pkg string }{{"ldconfig", "libc-bin"}, {"grep", "grep"}, {"dmesg", "util-linux"}, {"tail", "coreutils"}}

// preflight refuses, changing nothing, a container NVIDIA's installer
// cannot run in: no glibc (musl, as Alpine: the installer and the libraries
// are glibc programs), or no ldconfig, grep, dmesg or tail
// (scripts/preflight.sh).
func (s session) preflight(ctx context.Context) error {
	argv := preflightScript.argv()
	utils := systemUtilsFor(s.version)
	for _, u := range utils {
		argv = append(argv, u.name)
	}
	r, err := s.ct.Run(ctx, argv, nil)
	if err != nil {
		return err
	}
	switch r.Exit {
	case 0:
		return nil
	case 3:
		return errors.New("no glibc (/lib64/ld-linux-x86-64.so.2): NVIDIA's installer and libraries are glibc programs and cannot run on a musl system such as Alpine; nothing was changed. Use a glibc distribution for GPU containers, or set install = false")
	case 4:
		var missing, pkgs []string
		out := strings.Fields(r.Stdout.Raw())
		for _, u := range utils {
			for _, m := range out {
				if m == u.name { // only names nvidiaprep asked about reach the message
					missing, pkgs = append(missing, u.name), append(pkgs, u.pkg)
				}
			}
		}
		return fmt.Errorf("it lacks %s, which NVIDIA's installer requires; nothing was changed. Install them in the container (on Debian and Ubuntu: apt-get install %s), then restart it", strings.Join(missing, ", "), strings.Join(pkgs, " "))
	default:
		return fmt.Errorf("checking for glibc and the installer's utilities failed (exit %d): %s", r.Exit, r.Output().LastLines(3))
	}
}

// installer is the version's nvidia-installer in the read-only tree.
func (s session) installer() string {
	return path.Join("/", driverrun.MountPoint, s.version, "nvidia-installer")
}

// checkMount makes sure pre-start mounted the node's driver trees.
func (s session) checkMount(ctx context.Context) error {
	r, err := s.ct.Run(ctx, []string{"/bin/sh", "-c", `test -x "$1"`, "sh", s.installer()}, nil)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("the node's driver cache is not mounted at /%s (the container started before nvidiaprep managed it, or with install = false; or LXC could not mount its read-only overlay: see the container's lxc-start log, and `grep overlay /proc/filesystems` on the node): restart the container so that pre-start mounts it", driverrun.MountPoint)
	}
	return nil
}

// install runs the version's nvidia-installer from the read-only tree.
func (s session) install(ctx context.Context) error {
	installer := s.installer()
	s.w.status("installing NVIDIA user-space libraries %s", s.version)
	r, err := s.withUtils(ctx, true, append([]string{installer}, installerFlags...)...)
	if errors.Is(err, ctexec.ErrStopped) {
		return fmt.Errorf("it stopped during the install of %s; its next start installs again: %w", s.version, err)
	}
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("nvidia-installer %s failed (exit %d): %s; %sits log is /var/log/nvidia-installer.log inside the container", s.version, r.Exit, untrusted.Concat(r.Stderr, r.Stdout).LastLines(5), s.fullHint(ctx, installSize(driverrun.Cache{Dir: s.w.Config.Paths.Cache}.Tree(s.version))))
	}
	return nil
}

// checkManifest compares what is in the container with the tree's
// manifest: nvidia-installer exits 0 after files it could not install.
// Missing firmware is only noted (the host's kernel loads firmware, not the
// container's).
func (s session) checkManifest(ctx context.Context, libDir string) ([]string, error) {
	want, err := manifestEntries(driverrun.Cache{Dir: s.w.Config.Paths.Cache}.Tree(s.version), libDir)
	if err != nil {
		return nil, err
	}
	r, err := s.ct.Run(ctx, checkScript.argv(), strings.NewReader(checkInput(want)))
	if err != nil {
		return nil, err
	}
	if r.Exit != 0 {
		return nil, fmt.Errorf("checking the installed files failed (exit %d): %s", r.Exit, r.Stderr.LastLines(3))
	}
	files, firmware := missingOf(want, r.Stdout.Raw())
	if len(files) > 0 {
		shown := files
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(files)-5))
		}
		hint := s.fullHint(ctx, installSize(driverrun.Cache{Dir: s.w.Config.Paths.Cache}.Tree(s.version)))
		if hint == "" {
			hint = "fix what it names, then restart the container; "
		}
		return nil, fmt.Errorf("the install of %s is incomplete although nvidia-installer exited 0: %d of the %d files of its manifest are missing or differ (%s); %sits log, /var/log/nvidia-installer.log inside the container, has a \"Cannot install ...\" line for each", s.version, len(files), len(want), strings.Join(shown, ", "), hint)
	}
	var notes []string
	if len(firmware) > 0 {
		notes = append(notes, fmt.Sprintf("%d firmware file(s) not installed (%s): unused in a container", len(firmware), firmware[0]))
	}
	return notes, nil
}

// verify checks the install record and the libnvidia-ml.so.1 link, runs
// nvidia-smi, and records the install inside the container.
func (s session) verify(ctx context.Context) ([]string, error) {
	s.w.status("verifying")
	root, err := s.ct.Root(ctx)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	log, err := root.ReadFile(record.NVIDIALog, 4096)
	if err != nil {
		return nil, fmt.Errorf("after the install: %w", err)
	}
	if have := record.InstalledVersion(log); have != s.version {
		return nil, fmt.Errorf("after the install %s records version %q, want %s", record.NVIDIALog, have, s.version)
	}
	want := "libnvidia-ml.so." + s.version
	var target untrusted.Text
	var libDir string
	for _, d := range libDirs {
		if t, err := root.Readlink(d + "/libnvidia-ml.so.1"); err == nil {
			target, libDir = t, d
			break
		}
	}
	if path.Base(target.Raw()) != want {
		return nil, fmt.Errorf("libnvidia-ml.so.1 points to %q, want %s", target, want)
	}
	notes, err := s.checkManifest(ctx, libDir)
	if err != nil {
		return nil, err
	}
	r, err := s.ct.Run(ctx, []string{"nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"}, nil)
	switch {
	case err != nil:
		return nil, err
	case r.Exit == 0:
		versions := strings.Fields(r.Stdout.Raw())
		if len(versions) == 0 {
			return nil, fmt.Errorf("nvidia-smi succeeded but printed no driver version (%s), so the install is not verified; run `pct exec %d -- nvidia-smi` to see why", r.Output().FirstLine(), s.vmid())
		}
		for _, v := range versions {
			if v != s.version {
				return nil, fmt.Errorf("nvidia-smi reports driver %s, want %s", untrusted.New(v), s.version)
			}
		}
		notes = append(notes, "nvidia-smi: "+strings.Join(versions, ", ")) // each one is s.version
	default:
		notes = append(notes, fmt.Sprintf("nvidia-smi cannot reach a GPU (no GPU given, or no driver behind the nodes): %s", r.Output().FirstLine()))
	}
	rec := fmt.Sprintf("version=%s\ninstalled=%s\nsource=nvidiaprep (host's cached NVIDIA .run, --no-kernel-module)\n", s.version, time.Now().UTC().Format(time.RFC3339))
	r, err = s.ct.Run(ctx, recordScript.argv(), strings.NewReader(rec))
	if err != nil {
		return nil, err
	}
	if r.Exit != 0 {
		return nil, fmt.Errorf("recording the install: %s", r.Stderr.LastLines(3))
	}
	s.w.status("installed NVIDIA user-space libraries %s", s.version)
	return notes, nil
}
