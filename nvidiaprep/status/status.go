// Package status gathers what `nvidiaprep status` shows: the node's driver
// (configured, installed, loaded, a pending reboot, the device nodes) and
// every container that uses the hookscript, with its last provisioning. It
// only reads: the configuration, sysfs/procfs/dev below the configured
// paths, the host records, the host driver unit's state file, the generated
// LXC configs, on a Proxmox node the containers' configs, and for the
// installed kernels /boot and what `dkms status` says (kernels.go).
package status

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/pve"
	"nvidiaprep/nvidiaprep/record"
)

// Options say what to look at: Config's [paths] say where.
type Options struct {
	Config config.Config
	// Nodes stats the device nodes; nil: the real host's.
	Nodes nvdev.NodeFS
	// Probe looks into a container (running or not, the user-space version
	// installed in it); nil: nothing is probed (state unknown).
	Probe func(vmid int) Probe
	// LiveStep says what the container's provisioning worker is doing
	// now; nil or "": nothing known.
	LiveStep func(vmid int) string
	// Only lists this container alone; 0: all.
	Only int
	// Kernels reads the installed kernels and what DKMS has for each
	// (kernels.go); its zero value asks the real host.
	Kernels KernelsOptions
}

// Probe is what a look into a container found.
type Probe struct {
	State string // Running, Stopped, or "" when it could not be told
	// Installed is the user-space driver version nvidia-installer recorded
	// inside the running container; "" when none or unreadable.
	Installed string
	// Unfinished: an install began and did not finish (its marker is there).
	Unfinished bool
	Err        error
}

// Container states.
const (
	Running = "running"
	Stopped = "stopped"
)

// The host's files status reads, below [paths] root.
const (
	rebootRequired = "/run/reboot-required.pkgs" // Debian's list of packages that want a reboot
)

// Report is the whole status.
type Report struct {
	Node       Node        `json:"node"`
	Containers []Container `json:"containers"`
	// Problems are things that could not be read; the rest is still shown.
	Problems []string `json:"problems,omitempty"`
}

// Node is the host's driver.
type Node struct {
	Configured    string       `json:"configured_version,omitempty"`
	Installed     string       `json:"installed_version,omitempty"`
	Loaded        string       `json:"loaded_version,omitempty"`
	RebootPending bool         `json:"reboot_pending"`
	HostDriver    *HostDriver  `json:"host_driver,omitempty"`
	GPUs          []nvdev.GPU  `json:"gpus,omitempty"`
	DeviceNodes   []DeviceNode `json:"device_nodes"`
	// Kernels are the installed kernels and whether the installed driver's
	// module is built for each.
	Kernels []kernels.Kernel `json:"kernels,omitempty"`
	// RebootWhy says why a reboot is pending, a sentence for each reason;
	// empty when none is (rebootWhy).
	RebootWhy []string `json:"reboot_why,omitempty"`
}

// HostDriver is the host driver unit's last run, from its state file.
type HostDriver = hostdriverstate.State

// ReadHostDriver reads the host driver unit's state file; nil when there is none.
func ReadHostDriver(stateDir string) (*HostDriver, error) {
	s, ok, err := hostdriverstate.Load(stateDir)
	if err != nil || !ok {
		return nil, err
	}
	return &s, nil
}

// DeviceNode is one node a container needs.
type DeviceNode struct {
	Name    string `json:"name"`
	Present bool   `json:"present"`
	Device  string `json:"device,omitempty"` // "195:255" as it is
	Want    string `json:"want,omitempty"`   // what the driver registered, when it differs
	// GPU is the PCI address of the GPU whose node it is (nvidia<minor>,
	// its DRM nodes); "" for the nodes every container with a GPU gets.
	GPU string `json:"gpu,omitempty"`
}

// Container is one container that uses the hookscript.
type Container struct {
	VMID int `json:"vmid"`
	// Hookscript is its hookscript volume from Proxmox's config; "" when it
	// has none or this is no Proxmox node (HookKnown false).
	Hookscript string `json:"hookscript,omitempty"`
	HookKnown  bool   `json:"hookscript_known"`
	// Chain is its own hookscript, which nvidiaprep's hook runs first.
	Chain string `json:"chained_hookscript,omitempty"`
	// GPUs is the configured selection: "all", "none" or the selectors.
	GPUs     string `json:"gpus"`
	Required bool   `json:"required"`
	Install  bool   `json:"install"`
	// Given is what its last pre-start gave ("0=0000:01:00.0 ..."), from the
	// generated LXC config; "" when unknown.
	Given string `json:"given,omitempty"`
	// Version is the user-space driver its last provisioning installed, or
	// tried to install (Outcome says which).
	Version  string        `json:"userspace_version,omitempty"`
	Outcome  string        `json:"outcome,omitempty"`
	When     time.Time     `json:"when,omitzero"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Error    string        `json:"error,omitempty"`
	// State is Running or Stopped; "" when unknown.
	State string `json:"state,omitempty"`
	// Installed is the user-space version the container has: read inside
	// it while it runs, else its last successful provisioning's; "" when
	// unknown or none.
	Installed string `json:"installed,omitempty"`
	// Unfinished: an install inside it began and did not finish.
	Unfinished bool `json:"unfinished,omitempty"`
	// Skew: Installed is not the loaded driver's version.
	Skew bool `json:"skew,omitempty"`
	// Pending: it gets libraries and does not have the loaded driver's
	// yet: they are installed at its next start (or by a worker now).
	Pending bool `json:"pending,omitempty"`
	// LiveStep is what its provisioning worker is doing now.
	LiveStep string `json:"live_step,omitempty"`
}

// Gather reads everything. It does not fail on what cannot be read: that
// becomes a line of Report.Problems.
func Gather(o Options) Report {
	p := o.Config.Paths
	var r Report
	problem := func(err error) { r.Problems = append(r.Problems, err.Error()) }

	r.Node.Configured = o.Config.Driver.Version
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err == nil {
		r.Node.Loaded = loaded
	} else if !errors.Is(err, nvdev.ErrNoDriver) {
		problem(err)
	}
	hd, err := ReadHostDriver(p.State)
	if err != nil {
		problem(err)
	}
	r.Node.HostDriver = hd
	if hd != nil && hd.Installed != "" {
		r.Node.Installed = hd.Installed
	} else {
		r.Node.Installed, _ = record.ReadInstalledVersion(o.Config.Paths.Root)
	}
	listed := false
	if b, err := fsutil.ReadRegular(o.Config.Paths.Host(rebootRequired), 1<<16); err == nil && slices.Contains(strings.Fields(string(b)), "nvidiaprep") {
		listed = true
	}
	r.Node.RebootWhy = rebootWhy(hd, r.Node.Installed, r.Node.Loaded, listed)
	r.Node.RebootPending = len(r.Node.RebootWhy) > 0
	if r.Node.Loaded != "" {
		gpus, err := nvdev.ProcGPUs{Proc: p.Proc}.GPUs()
		if err != nil {
			problem(err)
		}
		r.Node.GPUs = gpus
	}
	majors, err := nvdev.ReadMajors(p.Proc)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		problem(err)
	}
	r.Node.Kernels = gatherKernels(o, r.Node.Installed, problem)
	r.Node.DeviceNodes = deviceNodes(p, nvdev.OrReal(o.Nodes), nvdev.Want{Majors: majors, Modeset: nvdev.ModesetLoaded(p.Sys), GPUs: r.Node.GPUs})
	if drm, err := drmNodes(p, nvdev.OrReal(o.Nodes), r.Node.GPUs); err != nil {
		problem(err)
	} else {
		r.Node.DeviceNodes = append(r.Node.DeviceNodes, drm...)
	}
	r.Containers = containers(o, problem)
	return r
}

// deviceNodes checks the nodes a container needs (nvdev.ExpectedNodes'
// list, without MIG capabilities) against the driver's numbers. It creates
// nothing.
func deviceNodes(p config.Paths, nfs nvdev.NodeFS, w nvdev.Want) []DeviceNode {
	expected := nvdev.ExpectedNodes(p.Dev, w)
	out := make([]DeviceNode, 0, len(expected))
	for _, e := range expected {
		n := DeviceNode{Name: e.Name}
		if i := slices.IndexFunc(w.GPUs, func(g nvdev.GPU) bool { return uint32(g.Minor) == e.Minor }); e.Kind == nvdev.KindGPU && i >= 0 {
			n.GPU = w.GPUs[i].PCIBusID
		}
		if st, err := nfs.Stat(e.Path); err == nil && st.Char {
			n.Present = true
			n.Device = nvdev.Node{Major: st.Major, Minor: st.Minor}.Device()
		}
		if e.Registered && e.Device() != n.Device {
			n.Want = e.Device()
		}
		out = append(out, n)
	}
	return out
}

// containers lists every container that uses the hook: configured in a
// table, recorded on the host, or with nvidiaprep's hookscript in Proxmox's
// config.
func containers(o Options, problem func(error)) []Container {
	p := o.Config.Paths
	ids := map[int]bool{}
	for id := range o.Config.Containers {
		ids[id] = true
	}
	recs, _ := filepath.Glob(filepath.Join(p.State, "containers", "*.json"))
	for _, f := range recs {
		if id, err := config.ParseVMID(strings.TrimSuffix(filepath.Base(f), ".json")); err == nil {
			ids[id] = true
		}
	}
	cts, err := pve.ReadCTs(o.Config.Paths.PVE)
	if err != nil {
		problem(err)
	}
	pveByID := map[int]pve.CT{}
	_, statErr := os.Stat(filepath.Join(o.Config.Paths.PVE, "lxc"))
	hookKnown := statErr == nil
	for _, ct := range cts {
		pveByID[ct.VMID] = ct
		if ct.UsesHook() {
			ids[ct.VMID] = true
		}
	}
	var out []Container
	for _, ct := range cts {
		pveByID[ct.VMID] = ct
	}
	loaded, _ := nvdev.LoadedVersion(p.Sys, p.Proc)
	for id := range ids {
		if o.Only != 0 && id != o.Only {
			continue
		}
		_, local := pveByID[id]
		_, configured := o.Config.Containers[id]
		if hookKnown && !local && !configured {
			continue // only a record: the container moved to another node, or is gone
		}
		cfg := o.Config.Container(id)
		c := Container{VMID: id, GPUs: cfg.GPUs.String(), Required: cfg.Required, Install: cfg.Install, HookKnown: hookKnown, Chain: cfg.Chain}
		if ct, ok := pveByID[id]; ok {
			c.Hookscript = ct.Hookscript
		}
		c.Given = given(p.LXCConfig(id))
		rec, ok, err := record.Load(p.State, id)
		if err != nil {
			problem(ctmsg.Wrap(id, err))
		}
		if ok {
			c.Version, c.Outcome, c.Error = rec.Version, rec.Outcome, rec.Error
			c.When, c.Duration = rec.Finished, rec.Duration
			if c.When.IsZero() {
				c.When = rec.Started
			}
		}
		// A container of another node (a cluster table) is not probed here.
		c.look(o, rec, loaded, local || !hookKnown)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Container) int { return a.VMID - b.VMID })
	return out
}

// given reads the "# driver V; GPUs ..." line that pre-start writes at the
// top of its block in the generated config.
func given(lxcConfig string) string {
	b, err := fsutil.ReadRegular(lxcConfig, lxcconf.MaxSize)
	if err != nil {
		return ""
	}
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == lxcconf.Begin:
			in = true
		case in && strings.HasPrefix(l, "# driver "):
			_, gpus, _ := strings.Cut(l, "; GPUs ")
			if gpus = strings.TrimSpace(gpus); gpus == "" {
				return "none"
			}
			return gpus
		case l == lxcconf.End:
			return ""
		}
	}
	return ""
}

// look fills what the container itself and its worker say: running or
// not, the version installed in it, a skew, a worker's step.
func (c *Container) look(o Options, rec record.Provision, loaded string, here bool) {
	if o.Probe != nil && here {
		p := o.Probe(c.VMID)
		c.State = p.State
		if p.State == Running {
			c.Installed, c.Unfinished = p.Installed, p.Unfinished
		}
	}
	if c.State != Running && rec.Outcome == record.Installed {
		c.Installed = rec.Version
	}
	if c.Outcome == record.Running && o.LiveStep != nil {
		c.LiveStep = o.LiveStep(c.VMID)
	}
	c.Skew = c.Installed != "" && loaded != "" && c.Installed != loaded
	c.Pending = c.Install && c.GPUs != "none" && loaded != "" && (c.Installed != loaded || c.Unfinished)
}
