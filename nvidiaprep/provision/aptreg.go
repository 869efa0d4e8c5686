package provision

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strings"

	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/nvpkgs"
)

// regControl is the control file of the registration installed last, kept
// so that an unchanged registration is left alone.
const regControl = ctDir + "/aptreg.control"

// aptNoCache keeps apt from saving its package cache (pkgcache.bin and
// srcpkgcache.bin, tens of MiB) in the container: nvidiaprep's apt calls
// build it in memory, so that a container whose disk is nearly full is not
// filled by them, and the space an admin frees stays free.
const aptNoCache = `-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=`

// pkgnamesScript lists the package names apt's lists know that match the
// extended regular expression $1 (the driver packages' prefixes), in one
// apt-cache call; nothing without apt.
const pkgnamesScript = `command -v apt-cache >/dev/null || exit 0
names=$(apt-cache ` + aptNoCache + ` pkgnames) || exit $?
printf '%s\n' "$names" | grep -E "$1"
exit 0`

// writePinScript replaces the pin with stdin.
const writePinScript = `set -e
mkdir -p /etc/apt/preferences.d
rm -rf ` + aptreg.PinPath + `.nvidiaprep-tmp
cat > ` + aptreg.PinPath + `.nvidiaprep-tmp
chmod 644 ` + aptreg.PinPath + `.nvidiaprep-tmp
mv -f ` + aptreg.PinPath + `.nvidiaprep-tmp ` + aptreg.PinPath

// registerScript builds the registration package from the control file on
// stdin with dpkg-deb and installs it with apt ($1: its lock timeout), which
// removes the distribution's driver packages it conflicts with in the same
// step while what depends on them stays; without apt, dpkg installs it.
const registerScript = `set -e
d=` + ctDir + `/aptreg
rm -rf "$d"; mkdir -p "$d/pkg/DEBIAN"
cat > "$d/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -b "$d/pkg" "$d/` + aptreg.Package + `.deb" >/dev/null
if command -v apt-get >/dev/null; then
	DEBIAN_FRONTEND=noninteractive apt-get ` + aptNoCache + ` install -y -q --no-install-recommends --allow-downgrades -o DPkg::Lock::Timeout="$1" "$d/` + aptreg.Package + `.deb"
else
	dpkg -i "$d/` + aptreg.Package + `.deb"
fi
rm -rf ` + regControl + `
cp "$d/pkg/DEBIAN/control" ` + regControl + `
rm -rf "$d"`

// unregisterScript removes the registration; dpkg refuses while a package
// depends on it (exit 2 then: the toolkit stays, and so does the pin).
const unregisterScript = `if dpkg-query -W -f '${Status}' ` + aptreg.Package + ` 2>/dev/null | grep -q 'installed$'; then
	out=$(dpkg --purge ` + aptreg.Package + ` 2>&1) || { echo "$out"; exit 2; }
fi
rm -f ` + aptreg.PinPath + ` ` + regControl

// register tells the container's apt that version's driver is installed
// (aptreg): the pin first, then the package. It runs before the
// distribution's driver packages are purged, so that what depends on them
// (nvidia-cuda-toolkit) stays installed. An unchanged registration is left
// alone. A container without dpkg-deb is left as it is.
func (s session) register(ctx context.Context) error {
	r, err := s.sh(ctx, "command -v dpkg-deb >/dev/null && command -v dpkg-query >/dev/null")
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		s.w.Log.Info().Msg(ctmsg.Name(s.vmid()) + " has no dpkg: the install is not registered with a package manager")
		return nil
	}
	entries, err := manifestEntries(driverrun.Cache{Dir: s.w.Config.Paths.Cache}.Tree(s.version), libDirs[0])
	if err != nil {
		return err
	}
	var installed []aptreg.Entry
	for _, e := range nativeFiles(entries) {
		installed = append(installed, aptreg.Entry{Path: e.dest, Target: e.target})
	}
	packages, virtual := aptreg.Names(installed)
	control := aptreg.Control(s.version, packages, virtual)
	r, err = s.ct.Run(ctx, []string{"/bin/sh", "-c", pkgnamesScript, "pkgnames", prefixPattern(nvpkgs.Prefixes())}, nil)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("listing apt's package names failed (exit %d): %s; fix its apt (pct exec %d -- apt-get check), then restart it", r.Exit, r.Output().LastLines(3), s.vmid())
	}
	pin := aptreg.Pin(s.version, strings.Fields(r.Stdout.Raw()), packages)
	if same, err := s.registered(ctx, control, pin); err != nil || same {
		return err
	}
	s.w.status("registering driver %s with the container's apt (%s)", s.version, aptreg.Package)
	r, err = s.ct.Run(ctx, []string{"/bin/sh", "-c", writePinScript}, strings.NewReader(pin))
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("writing %s failed (exit %d): %s", aptreg.PinPath, r.Exit, r.Output().LastLines(3))
	}
	secs := fmt.Sprint(int(s.w.Config.Provision.DpkgLockTimeout.Seconds()))
	r, err = s.ct.Run(ctx, []string{"/bin/sh", "-c", registerScript, "register", secs}, strings.NewReader(control))
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("installing %s (which tells apt that the driver %s is installed) failed (exit %d): %s; fix the container's packages (pct exec %d -- apt-get -f install), then restart it", aptreg.Package, s.version, r.Exit, r.Output().LastLines(5), s.vmid())
	}
	return nil
}

// registered tells whether the container has this very registration: the
// same control file and pin, and the package installed at the version.
func (s session) registered(ctx context.Context, control, pin string) (bool, error) {
	root, err := s.ct.Root(ctx)
	if err != nil {
		return false, err
	}
	defer root.Close()
	for _, f := range []struct{ path, want string }{{regControl, control}, {aptreg.PinPath, pin}} {
		have, err := root.ReadFile(f.path, 1<<20)
		if err != nil || !bytes.Equal(have, []byte(f.want)) {
			return false, nil
		}
	}
	r, err := s.ct.Run(ctx, []string{"dpkg-query", "-W", "-f", "${Status} ${Version}", aptreg.Package}, nil)
	if err != nil {
		return false, err
	}
	return r.Exit == 0 && r.Stdout.Raw() == "install ok installed "+s.version, nil
}

// prefixPattern is an extended regular expression matching names that
// start with one of prefixes.
func prefixPattern(prefixes []string) string {
	quoted := make([]string, len(prefixes))
	for i, p := range prefixes {
		quoted[i] = regexp.QuoteMeta(p)
	}
	return "^(" + strings.Join(quoted, "|") + ")"
}
