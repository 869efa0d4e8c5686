package hostdriver

import (
	"errors"
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/nvdev"
)

// Plan says, without changing anything, what Run would do on this node:
// a few lines for a person at a terminal, and whether it would change the
// node (then `nvidiaprep host-driver` by hand asks before it goes on).
func Plan(o Options) (text string, changes bool, err error) {
	r := &runner{o: o}
	r.defaults()
	p, d := r.paths(), r.driver()
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil && !errors.Is(err, nvdev.ErrNoDriver) {
		return "", false, err
	}
	if d.Version == "" || loaded == d.Version {
		return "", false, nil
	}
	installed, err := r.installedVersion()
	if err != nil {
		return "", false, err
	}
	prev, _, _ := LoadState(p.State)
	if installed == d.Version && !prev.Partial && loaded == "" {
		return "", false, nil // pending: changes nothing
	}
	var b strings.Builder
	fmt.Fprintf(&b, "nvidiaprep host-driver will install NVIDIA driver %s (installed: %s, loaded: %s):\n", d.Version, orNone(installed), orNone(loaded))
	b.WriteString("  - fetch and verify its .run; remove the distribution's NVIDIA packages, the earlier .run install and DKMS modules;\n")
	b.WriteString("  - install the kernel headers and build tools, blacklist nouveau;\n")
	if loaded != "" {
		hs, herr := Holders(r.host("proc"), p.Dev)
		switch {
		case herr != nil:
			fmt.Fprintf(&b, "  - driver %s is loaded and whether it is in use cannot be told (%v): nothing will be changed\n", loaded, herr)
			return b.String(), false, nil
		case len(hs) > 0:
			fmt.Fprintf(&b, "  - driver %s is loaded and in use (%s): nothing will be changed; reboot required (the install runs at the next boot)\n", loaded, holderList(hs))
			return b.String(), false, nil
		}
		fmt.Fprintf(&b, "  - UNLOAD driver %s (no process uses it now; containers started meanwhile get no GPU until the new one is loaded),\n", loaded)
		fmt.Fprintf(&b, "    run NVIDIA's installer and load driver %s; if it fails, driver %s is installed and loaded again\n", d.Version, loaded)
	} else {
		fmt.Fprintf(&b, "  - run NVIDIA's installer and load driver %s\n", d.Version)
	}
	if NouveauBound(p.Sys) {
		b.WriteString("  - nouveau drives a GPU: it is released first (modprobe -r nouveau), or blacklisted and a reboot required\n")
	}
	return b.String(), true, nil
}
