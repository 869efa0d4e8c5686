package provision

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/installstate"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/record"
)

// noCgroups matches an active `no-cgroups = true` line.
var noCgroups = regexp.MustCompile(`(?m)^[ \t]*no-cgroups[ \t]*=[ \t]*true[ \t]*(#.*)?$`)

// toolkit keeps NVIDIA's container toolkit working where it is installed
// anyway: no-cgroups = true in an unprivileged container (libnvidia-container
// cannot set up device cgroups there: scripts/set-no-cgroups.sh), and the
// /dev/char links (scripts/char-links.sh). What it cannot fix goes to the
// host's findings file, which doctor shows.
func (w Worker) toolkit(ctx context.Context, ct *ctexec.Container, root *ctfs.Root, nodes []string) error {
	conf, err := root.ReadFile(installstate.ToolkitConfig, 1<<20)
	if errors.Is(err, unix.ENOENT) {
		return w.findings(nil)
	}
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("NVIDIA's container toolkit config %s cannot be read (%v): nvidiaprep cannot tell whether it works here", installstate.ToolkitConfig, err))
	} else if w.unprivileged() && !noCgroups.Match(conf) {
		r, err := ct.Run(ctx, setNoCgroupsScript.argv(), nil)
		if err != nil {
			return err
		}
		if r.Exit != 0 {
			problems = append(problems, fmt.Sprintf("it is unprivileged and NVIDIA's container toolkit there lacks no-cgroups = true (setting it failed: %s): docker/podman --gpus and nvidia-container-cli fail with a cgroup error", r.Output().LastLines(2)))
		} else {
			w.Log.Info().Msg(ctmsg.Sprintf(w.VMID, "set no-cgroups = true in %s: the container is unprivileged", installstate.ToolkitConfig))
		}
	}
	r, err := ct.Run(ctx, charLinksScript.argv(nodes...), nil)
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		problems = append(problems, fmt.Sprintf("the /dev/char links NVIDIA's container toolkit needs could not be made: %s", r.Output().LastLines(2)))
	}
	return w.findings(problems)
}

// unprivileged tells from the container's LXC config (an id map).
func (w Worker) unprivileged() bool {
	conf, err := fsutil.ReadRegular(w.Config.Paths.LXCConfig(w.VMID), lxcconf.MaxSize)
	if err != nil {
		return false
	}
	entries, err := lxcconf.Entries(conf)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Key == "lxc.idmap" {
			return true
		}
	}
	return false
}

// findings replaces the host's findings file (record.SaveFindings).
func (w Worker) findings(problems []string) error {
	for _, msg := range problems {
		w.Log.Warn().Msg(ctmsg.Sprintf(w.VMID, "%s", msg))
	}
	return record.SaveFindings(w.Config.Paths.State, w.VMID, problems)
}
