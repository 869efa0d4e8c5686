// Package cfgcheck checks a configuration as the hook would load it, against
// this node: the files' limits and syntax (config's loader, the same one the
// hook and the drop-in use), each container's table, and, for the containers
// this node has, their GPU selectors against the node's GPUs and their
// chained hookscripts. `nvidiaprep check [FILE]` prints its report, so that
// an admin can check a file before saving it into /etc/pve, where it is
// live at once; enable checks its selectors with Selectors.
package cfgcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/pve"
)

// Severity says what a finding does to container starts.
type Severity string

const (
	// Error: starts are refused (every one that reads the file, or one
	// container's).
	Error Severity = "error"
	// Warning: starts go on, but not as the file seems to mean.
	Warning Severity = "warning"
	// Note: how a value was read, for the admin to confirm.
	Note Severity = "note"
)

// Finding is one thing the check has to say, at its place in a file when
// it has one.
type Finding struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"` // "" when no file applies
	Line     int      `json:"line"` // 0 when unknown
	Key      string   `json:"key"`  // "containers.101.gpus"; "" when none
	VMID     int      `json:"vmid"` // the container concerned; 0 when every one
	Msg      string   `json:"message"`
}

func (f Finding) String() string {
	var b strings.Builder
	if f.File != "" {
		b.WriteString(f.File)
		if f.Line > 0 {
			fmt.Fprintf(&b, ":%d", f.Line)
		}
		b.WriteString(": ")
	}
	if f.Key != "" {
		b.WriteString(f.Key + ": ")
	}
	return b.String() + string(f.Severity) + ": " + f.Msg
}

// Options say what to check.
type Options struct {
	// Files are the configuration files, in the order the hook reads them
	// (config.Sources), one of them replaced by the file to check.
	Files []config.File
	// GPUs lists the node's GPUs, from the paths the files give; nil, or a
	// list that is empty (no driver loaded), leaves selectors unchecked, and
	// says so. NodeGPUs lists them as status does.
	GPUs func(config.Paths) ([]nvdev.GPU, error)
}

// NodeGPUs lists the GPUs of the node whose procfs is at p.Proc.
func NodeGPUs(p config.Paths) ([]nvdev.GPU, error) {
	return nvdev.ProcGPUs{Proc: p.Proc}.GPUs()
}

// Report is what Check found.
type Report struct {
	Files    []string  `json:"files"` // the files read
	Findings []Finding `json:"findings"`
}

// OK tells whether no finding is an error.
func (r Report) OK() bool {
	return !slices.ContainsFunc(r.Findings, func(f Finding) bool { return f.Severity == Error })
}

// Check loads the files as the hook would, and checks each container's
// table against this node.
func Check(o Options) Report {
	r := Report{Files: []string{}, Findings: []Finding{}}
	add := func(f Finding) { r.Findings = append(r.Findings, f) }
	cfg, err := config.LoadFiles(o.Files...)
	var ce *config.Error
	switch {
	case errors.As(err, &ce):
		add(Finding{Severity: Error, File: ce.File, Line: ce.Line, Key: ce.Key,
			Msg: ce.Msg + " (every start of a container that uses nvidiaprep's hookscript is refused until it is corrected)"})
		return r
	case err != nil:
		add(Finding{Severity: Error, Msg: err.Error()})
		return r
	}
	r.Files = append(r.Files, cfg.Files...)
	for _, p := range cfg.Problems {
		f := Finding{Severity: Error, File: p.File, Line: p.Line, Key: p.Key, VMID: p.VMID}
		if p.VMID == 0 {
			f.Severity, f.Msg = Warning, p.Msg+" (this table applies to no container)"
		} else {
			f.Msg = fmt.Sprintf("%s (%s's start is refused until it is corrected; other containers start)", p.Msg, ctmsg.Name(p.VMID))
		}
		add(f)
	}
	cts, err := pve.ReadCTs(cfg.Paths.PVE)
	if err != nil {
		add(Finding{Severity: Warning, Msg: fmt.Sprintf("the containers of this node are not checked: %v", err)})
	}
	local := map[int]pve.CT{}
	for _, ct := range cts {
		local[ct.VMID] = ct
	}
	var gpus []nvdev.GPU
	if o.GPUs != nil {
		gpus, err = o.GPUs(cfg.Paths)
		if err != nil {
			add(Finding{Severity: Warning, Msg: fmt.Sprintf("the GPU selectors are not checked: %v", err)})
		}
	}
	if len(gpus) == 0 && err == nil {
		add(Finding{Severity: Note, Msg: "no GPU is listed on this node (is the NVIDIA driver loaded?): the GPU selectors are not checked"})
	}
	ids := make([]int, 0, len(cfg.Containers))
	for id := range cfg.Containers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if cfg.ContainerError(id) != nil {
			continue
		}
		checkContainer(cfg, id, local, gpus, add)
	}
	for _, ct := range cts {
		if ct.UsesHook() && !cfg.HasTable(ct.VMID) {
			add(Finding{Severity: Note, VMID: ct.VMID, Msg: fmt.Sprintf("%s uses nvidiaprep's hookscript without a [containers.%d] table: it gets every GPU of the node (the default)", ctmsg.Name(ct.VMID), ct.VMID)})
		}
	}
	return r
}

// checkContainer checks one container's table against this node.
func checkContainer(cfg config.Config, id int, local map[int]pve.CT, gpus []nvdev.GPU, add func(Finding)) {
	c := cfg.Container(id)
	at := func(key string) Finding {
		f := Finding{VMID: id, Key: fmt.Sprintf("containers.%d.%s", id, key)}
		if o := cfg.Origins[id][key]; len(o) > 0 {
			f.File, f.Line = o[len(o)-1].File, o[len(o)-1].Line
		}
		return f
	}
	if _, ok := local[id]; !ok {
		f := at("gpus")
		f.Key, f.Line, f.Severity = fmt.Sprintf("containers.%d", id), 0, Note
		f.Msg = fmt.Sprintf("%s is not on this node: its table is checked on the node that has it", ctmsg.Name(id))
		add(f)
		return
	}
	if c.GPUs.None() && c.Required {
		f := at("required")
		f.Severity, f.Msg = Warning, "required = true with gpus = []: there is no GPU to require, so the container starts without one"
		add(f)
	}
	if !c.GPUs.All && len(gpus) > 0 {
		if err := Selectors(gpus, c.GPUs); err != nil {
			f := at("gpus")
			f.Severity = Warning
			f.Msg = fmt.Sprintf("%v; %s starts without those GPUs", err, ctmsg.Name(id))
			if c.Required {
				f.Severity = Error
				f.Msg = fmt.Sprintf("%v; %s has required = true, so it does not start", err, ctmsg.Name(id))
			}
			add(f)
		}
	}
	if c.Chain != "" {
		storages, err := pve.ReadStorage(cfg.Paths.PVE)
		if err == nil {
			_, err = pve.FindHookscript(storages, cfg.Paths.Root, c.Chain)
		}
		if err != nil {
			f := at("chain")
			f.Severity, f.Msg = Error, fmt.Sprintf("%v: %s's pre-start fails, so it does not start", err, ctmsg.Name(id))
			add(f)
		}
	}
}

// Selectors checks a selection against the node's GPUs: each selector must
// name one of them, and no two the same GPU. The error lists the node's
// GPUs.
func Selectors(gpus []nvdev.GPU, sel gpusel.Selection) error {
	if _, err := nvdev.Select(gpus, sel); err != nil {
		return err // an *nvdev.UnmatchedError, which lists the node's GPUs
	}
	seen := map[int]string{}
	for _, s := range sel.Selectors {
		picked, _ := nvdev.Select(gpus, gpusel.Of(s))
		for _, g := range picked {
			if first, dup := seen[g.Index]; dup {
				return fmt.Errorf("GPU selectors %q and %q name the same GPU %d (%s): list it once", first, s, g.Index, g.PCIBusID)
			}
			seen[g.Index] = s
		}
	}
	return nil
}
