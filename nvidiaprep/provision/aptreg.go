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

// register tells the container's apt that version's driver is installed
// (aptreg): the pin first, then the package (scripts/write-pin.sh,
// scripts/register.sh). It runs before the distribution's driver packages
// are purged, so that what depends on them (nvidia-cuda-toolkit) stays
// installed. An unchanged registration is left alone. A container without
// dpkg-deb is left as it is.
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
	r, err = s.ct.Run(ctx, pkgnamesScript.argv(prefixPattern(nvpkgs.Prefixes())), nil)
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
	r, err = s.ct.Run(ctx, writePinScript.argv(), strings.NewReader(pin))
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("writing %s failed (exit %d): %s", aptreg.PinPath, r.Exit, r.Output().LastLines(3))
	}
	secs := fmt.Sprint(int(s.w.Config.Provision.DpkgLockTimeout.Seconds()))
	r, err = s.ct.Run(ctx, registerScript.argv(append([]string{secs}, packages...)...), strings.NewReader(control))
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
