package doctor

import (
	"errors"
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/nvdev"
)

// containerConfigs: an error in a container's table refuses that
// container's start (and only its); a table that names no container
// applies to none.
func (r *run) containerConfigs() {
	for _, p := range r.o.Config.Problems {
		if p.VMID == 0 {
			r.problem("config", fmt.Sprintf("%v: this table applies to no container", p),
				"name the container's vmid in the table's header, or remove the table; `nvidiaprep check` checks the file")
			continue
		}
		r.problem("config", fmt.Sprintf("%s does not start: %v", ctmsg.Name(p.VMID), p),
			fmt.Sprintf("correct that line (`nvidiaprep check` checks the file before you save it), then `pct start %d`", p.VMID))
	}
}

// gpuSelection: a container of this node whose gpus name GPUs the node
// does not have starts without them, or, with required = true, not at all.
func (r *run) gpuSelection() {
	gpus, err := nvdev.ProcGPUs{Proc: r.o.Config.Paths.Proc}.GPUs()
	if err != nil || len(gpus) == 0 {
		return // no driver: driverLoaded says so
	}
	for _, ct := range r.cts {
		if !ct.UsesHook() || r.o.Config.ContainerError(ct.VMID) != nil {
			continue
		}
		c := r.o.Config.Container(ct.VMID)
		if c.GPUs.All || c.GPUs.None() {
			continue
		}
		_, err := nvdev.Select(gpus, c.GPUs)
		var unmatched *nvdev.UnmatchedError
		if !errors.As(err, &unmatched) {
			continue
		}
		what := ctmsg.Sprintf(ct.VMID, "%v, so it starts without those GPUs", err)
		if c.Required {
			what = fmt.Sprintf("%s does not start: %v, and it has required = true", ctmsg.Name(ct.VMID), err)
		}
		r.problem("gpu-selection", what,
			fmt.Sprintf("`nvidiaprep enable %d --gpus %s` with GPUs of this node (`nvidiaprep check` lists what is wrong), then `pct start %d`", ct.VMID, indexes(gpus), ct.VMID))
	}
}

// refused tells whether pre-start refuses the container's start for a
// reason another check names: an error in its table, or required GPUs
// this node does not have.
func (r *run) refused(vmid int) bool {
	if r.o.Config.ContainerError(vmid) != nil {
		return true
	}
	return r.o.Config.Container(vmid).Required && r.unmatched(vmid)
}

// unmatched tells whether the container's gpus name a GPU this node does
// not have (gpuSelection says so).
func (r *run) unmatched(vmid int) bool {
	c := r.o.Config.Container(vmid)
	if c.GPUs.All || c.GPUs.None() {
		return false
	}
	gpus, err := nvdev.ProcGPUs{Proc: r.o.Config.Paths.Proc}.GPUs()
	if err != nil {
		return false
	}
	_, err = nvdev.Select(gpus, c.GPUs)
	var unmatched *nvdev.UnmatchedError
	return errors.As(err, &unmatched)
}

// indexes writes the node's GPU indexes as enable's --gpus takes them.
func indexes(gpus []nvdev.GPU) string {
	s := make([]string, len(gpus))
	for i, g := range gpus {
		s[i] = fmt.Sprint(g.Index)
	}
	return strings.Join(s, ",")
}
