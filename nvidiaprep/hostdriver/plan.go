package hostdriver

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/nvpkgs"
	"nvidiaprep/nvidiaprep/record"
)

// Plan is what an install will change on the node, read before its first
// change: Options.Confirm shows it to an admin at a terminal.
type Plan struct {
	Version   string
	Loaded    string   // the module loaded now; "" none
	Purge     []string // the distribution's NVIDIA packages
	Uninstall string   // the version of an earlier .run install removed; "" none
	DKMS      []string // versions of the nvidia DKMS module removed
	Install   []string // packages installed: headers, build tools
	Blacklist string   // the nouveau blacklist written
	Installer string   // the installer's command line
	Reboot    string   // what happens after: the new driver loaded, no reboot
}

// ErrDeclined: the admin said no to the plan; nothing was changed.
var ErrDeclined = errors.New("the install was not confirmed; nothing on the node was changed")

// Lines is the plan in words, one change a line.
func (p Plan) Lines() []string {
	var out []string
	if len(p.Purge) > 0 {
		out = append(out, "purge the distribution's NVIDIA packages: "+strings.Join(p.Purge, " "))
	}
	if p.Uninstall != "" {
		out = append(out, "uninstall the earlier .run install of driver "+p.Uninstall)
	}
	for _, v := range p.DKMS {
		out = append(out, "remove the DKMS module nvidia/"+v)
	}
	if len(p.Install) > 0 {
		out = append(out, "install "+strings.Join(p.Install, " ")+" (already downloaded)")
	}
	out = append(out, "write /"+p.Blacklist+" and rebuild the initramfs (update-initramfs -u)")
	out = append(out, "run "+p.Installer+" (builds the module with DKMS)")
	if p.Loaded != "" {
		out = append(out, "UNLOAD driver "+p.Loaded+" (no process uses it now; a container started meanwhile gets no GPU until the new one is loaded): the installer unloads it first; if the new one fails, driver "+p.Loaded+" is installed and loaded again")
	}
	out = append(out, p.Reboot)
	return out
}

// readPlan reads what the install steps will do, changing nothing; it runs
// in prepare, after step 1 (the .run verified, the packages downloaded).
// partial is the ledger's: an unfinished install is uninstalled too.
func readPlan(ctx context.Context, j job, partial bool) (Plan, error) {
	d := j.d
	args, err := installerArgs(j, j.run, d.Version)
	if err != nil {
		return Plan{}, err
	}
	p := Plan{Version: d.Version, Loaded: j.loaded, Install: j.pkgs, Blacklist: hostdriverstate.BlacklistFile,
		Installer: filepath.Base(j.run) + " " + strings.Join(args[1:], " ")}
	if q, err := findProgram(j.p.Root, "dpkg-query"); err != nil {
		return p, err
	} else if q != "" {
		res, err := j.sh(ctx, hostcmd.Command{Name: "dpkg-query", Args: []string{"-W", "-f=" + nvpkgs.QueryFormat}})
		if err != nil {
			return p, err
		}
		p.Purge = nvpkgs.DriverPackages(res.Stdout)
	}
	installed, err := record.ReadInstalledVersion(j.p.Root)
	if err != nil {
		return p, err
	}
	if installed != "" || partial {
		p.Uninstall = orNone(installed)
	}
	if k, err := findProgram(j.p.Root, "dkms"); err != nil {
		return p, err
	} else if k != "" {
		res, err := j.sh(ctx, hostcmd.Command{Name: "dkms", Args: []string{"status", "-m", "nvidia"}})
		if err != nil {
			return p, err
		}
		p.DKMS = dkmsVersions(res.Stdout, "nvidia")
	}
	p.Reboot = fmt.Sprintf("load driver %s and make its device nodes: no reboot", d.Version)
	return p, nil
}
