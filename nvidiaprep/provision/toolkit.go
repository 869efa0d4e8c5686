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

// setNoCgroupsScript sets no-cgroups = true in the toolkit's config inside
// the container: with nvidia-ctk when it is there (as NVIDIA documents),
// else by editing the [nvidia-container-cli] table's line (commented out
// in NVIDIA's default file) or adding one.
const setNoCgroupsScript = `set -e
f=` + installstate.ToolkitConfig + `
if command -v nvidia-ctk >/dev/null 2>&1; then
	nvidia-ctk config --in-place --config="$f" --set nvidia-container-cli.no-cgroups=true >/dev/null && exit 0
fi
t="$f.nvidiaprep-tmp"
if grep -q '^[[:space:]]*#\?[[:space:]]*no-cgroups[[:space:]]*=' "$f"; then
	sed 's/^[[:space:]]*#\?[[:space:]]*no-cgroups[[:space:]]*=.*/no-cgroups = true/' "$f" > "$t"
elif grep -q '^\[nvidia-container-cli\]' "$f"; then
	sed 's/^\[nvidia-container-cli\].*/&\nno-cgroups = true/' "$f" > "$t"
else
	{ cat "$f"; printf '\n[nvidia-container-cli]\nno-cgroups = true\n'; } > "$t"
fi
chmod 644 "$t"
mv -f "$t" "$f"`

// charLinksScript makes /dev/char/<major>:<minor> links to each node given
// ("$@"), as `nvidia-ctk system create-dev-char-symlinks` does: runc's
// systemd cgroup driver names devices that way. /dev is new at every start.
const charLinksScript = `mkdir -p /dev/char || exit 1
for n in "$@"; do
	[ -c "$n" ] || continue
	set -- $(stat -c '%t %T' "$n")
	ln -sfn "..${n#/dev}" "/dev/char/$((0x$1)):$((0x$2))" || exit 1
done`

// toolkit keeps NVIDIA's container toolkit working where it is installed
// anyway: no-cgroups = true in an unprivileged container (libnvidia-container
// cannot set up device cgroups there), and the /dev/char links. What it
// cannot fix goes to the host's findings file, which doctor shows.
func (w Worker) toolkit(ctx context.Context, ct *ctexec.Container, root *ctfs.Root, nodes []string) error {
	conf, err := root.ReadFile(installstate.ToolkitConfig, 1<<20)
	if errors.Is(err, unix.ENOENT) {
		return w.findings(nil)
	}
	var problems []string
	if err != nil {
		problems = append(problems, fmt.Sprintf("NVIDIA's container toolkit config %s cannot be read (%v): nvidiaprep cannot tell whether it works here", installstate.ToolkitConfig, err))
	} else if w.unprivileged() && !noCgroups.Match(conf) {
		r, err := ct.Run(ctx, []string{"/bin/sh", "-c", setNoCgroupsScript}, nil)
		if err != nil {
			return err
		}
		if r.Exit != 0 {
			problems = append(problems, fmt.Sprintf("it is unprivileged and NVIDIA's container toolkit there lacks no-cgroups = true (setting it failed: %s): docker/podman --gpus and nvidia-container-cli fail with a cgroup error", r.Output().LastLines(2)))
		} else {
			w.Log.Info().Msg(ctmsg.Sprintf(w.VMID, "set no-cgroups = true in %s: the container is unprivileged", installstate.ToolkitConfig))
		}
	}
	r, err := ct.Run(ctx, append([]string{"/bin/sh", "-c", charLinksScript, "char"}, nodes...), nil)
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
