package status

import (
	"fmt"

	"nvidiaprep/nvidiaprep/hostdriverstate"
)

// rebootWhy says why the node waits for a reboot to load the driver, a
// sentence for each reason; none when it does not: the host driver unit's
// last run waits for one (its error says why, when it has one), the
// installed driver is not the loaded module's (unless a boot already came
// up without it), or Debian's /run/reboot-required.pkgs lists nvidiaprep
// (listed).
func rebootWhy(hd *HostDriver, installed, loaded string, listed bool) []string {
	var out []string
	if hd != nil && (hd.Outcome == hostdriverstate.OutcomeRebootRequired || hd.Outcome == hostdriverstate.OutcomeRebooting) {
		why := hd.Error
		if why == "" {
			why = fmt.Sprintf("the host driver unit installed driver %s; it loads at the next boot", orDash(hd.Configured, orDash(installed, "?")))
		}
		if hd.Outcome == hostdriverstate.OutcomeRebooting {
			why += "; the host driver unit reboots the node now (reboot = \"auto\")"
		}
		out = append(out, why)
	} else if installed != "" && loaded != "" && installed != loaded && (hd == nil || hd.Outcome != hostdriverstate.OutcomeNotLoaded) {
		// After a boot that did not load it (not-loaded), another reboot
		// does not either: the unit's causes say what does.
		out = append(out, fmt.Sprintf("driver %s is installed, but the loaded module is %s's; the installed one loads at the next boot", installed, loaded))
	}
	if listed {
		out = append(out, "/run/reboot-required.pkgs (Debian's list of packages that want a reboot) lists nvidiaprep")
	}
	return out
}
