package status

import (
	"strconv"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/kernels"
)

// JSON is the report as `status --json` prints it (docs/json.md): snake
// case, every key present, null when unknown, [] for none.
type JSON struct {
	Node       NodeJSON        `json:"node"`
	Containers []ContainerJSON `json:"containers"`
	Problems   []string        `json:"problems"`
}

// NodeJSON is the node's driver.
type NodeJSON struct {
	Driver           DriverJSON       `json:"driver"`
	RebootPending    bool             `json:"reboot_pending"`
	RebootPendingWhy []string         `json:"reboot_pending_why"` // [] when none is pending
	HostDriverUnit   *HostDriverJSON  `json:"host_driver_unit"`
	GPUs             []GPUJSON        `json:"gpus"`
	DeviceNodes      []DeviceNodeJSON `json:"device_nodes"`
	Kernels          []KernelJSON     `json:"kernels"`
	// WorkingKernel is the kernel to keep booting while another is not
	// ready (kernels.Working); null when none is ready.
	WorkingKernel *WorkingKernelJSON `json:"working_kernel"`
}

// KernelJSON is an installed kernel and the installed driver's module for
// it (kernels.Kernel).
type KernelJSON struct {
	Release  string  `json:"release"`
	Running  bool    `json:"running"`
	Bootable bool    `json:"bootable"`
	Headers  bool    `json:"headers"`
	DKMS     *string `json:"dkms"`      // "installed", "built"; null: DKMS has none
	BuildLog *string `json:"build_log"` // a failed build's make.log
	Ready    bool    `json:"ready"`
	Why      *string `json:"why"` // why not ready
	Fix      *string `json:"fix"` // what makes it ready
}

// WorkingKernelJSON is the kernel that has the driver, and how to keep
// booting it on Proxmox VE.
type WorkingKernelJSON struct {
	Release    string `json:"release"`
	PinCommand string `json:"pin_command"`
}

// CauseJSON is why a boot came up without the installed driver.
type CauseJSON struct {
	What        string `json:"what"`
	Fix         string `json:"fix"`
	RebootHelps bool   `json:"reboot_helps"`
}

// DriverJSON holds the driver versions; null when unknown or none.
type DriverJSON struct {
	Configured *string `json:"configured"`
	Installed  *string `json:"installed"`
	Loaded     *string `json:"loaded"`
}

// HostDriverJSON is the host driver unit's last run.
type HostDriverJSON struct {
	Outcome         string     `json:"outcome"`
	Configured      *string    `json:"configured"`
	Installed       *string    `json:"installed"`
	Loaded          *string    `json:"loaded"`
	Step            *string    `json:"step"`
	Time            *time.Time `json:"time"`
	DurationSeconds *float64   `json:"duration_seconds"`
	Error           *string    `json:"error"`
	Log             *string    `json:"log"`
	// Causes are why this boot came up without the installed driver
	// (outcome "not-loaded"); [] otherwise.
	Causes []CauseJSON `json:"causes"`
}

// GPUJSON is a GPU as pre-start sees it.
type GPUJSON struct {
	Index      int    `json:"index"`
	UUID       string `json:"uuid"`
	PCIAddress string `json:"pci_address"`
	Minor      int    `json:"minor"`
}

// DeviceNodeJSON is a device node containers need.
type DeviceNodeJSON struct {
	Name    string  `json:"name"`
	Present bool    `json:"present"`
	Device  *string `json:"device"`          // "195:255" as it is
	Driver  *string `json:"driver_device"`   // what the driver registered, when known
	Correct bool    `json:"correct"`         // present with the driver's numbers
	GPU     *string `json:"gpu_pci_address"` // the GPU whose node it is; null for the shared ones
}

// ContainerJSON is one container.
type ContainerJSON struct {
	VMID                   int           `json:"vmid"`
	State                  *string       `json:"state"` // "running", "stopped"
	Hookscript             *string       `json:"hookscript"`
	HookscriptIsNvidiaprep *bool         `json:"hookscript_is_nvidiaprep"` // null: not a Proxmox node
	Chain                  *string       `json:"chain"`
	GPUs                   []string      `json:"gpus"` // ["all"], [] for none, or selectors
	Required               bool          `json:"required"`
	Install                bool          `json:"install"`
	Given                  []GivenJSON   `json:"given"` // null: unknown (never started here)
	UserspaceVersion       *string       `json:"userspace_version"`
	UnfinishedInstall      bool          `json:"unfinished_install"`
	Skew                   bool          `json:"skew"`
	PendingInstall         bool          `json:"pending_install"`
	LastProvisioning       *ProvisionRun `json:"last_provisioning"`
	LiveStep               *string       `json:"live_step"`
	Notes                  []string      `json:"notes"`
}

// GivenJSON is a GPU a container's last pre-start gave it.
type GivenJSON struct {
	Index      int    `json:"index"`
	PCIAddress string `json:"pci_address"`
}

// ProvisionRun is a container's last provisioning.
type ProvisionRun struct {
	Version         *string    `json:"version"`
	Outcome         string     `json:"outcome"` // "running", "installed", "failed"
	Time            *time.Time `json:"time"`
	DurationSeconds *float64   `json:"duration_seconds"`
	Error           *string    `json:"error"`
}

func str(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func seconds(d time.Duration) *float64 {
	if d <= 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

func at(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// ToJSON turns the report into its JSON document's fields.
func (r Report) ToJSON() JSON {
	n := r.Node
	j := JSON{
		Node: NodeJSON{
			Driver:           DriverJSON{Configured: str(n.Configured), Installed: str(n.Installed), Loaded: str(n.Loaded)},
			RebootPending:    n.RebootPending,
			RebootPendingWhy: append([]string{}, n.RebootWhy...),
			GPUs:             []GPUJSON{},
			DeviceNodes:      []DeviceNodeJSON{},
			Kernels:          []KernelJSON{},
		},
		Containers: []ContainerJSON{},
		Problems:   append([]string{}, r.Problems...),
	}
	if h := n.HostDriver; h != nil {
		j.Node.HostDriverUnit = &HostDriverJSON{Outcome: h.Outcome, Configured: str(h.Configured), Installed: str(h.Installed), Loaded: str(h.Loaded),
			Step: str(h.Step), Time: at(h.Time), DurationSeconds: seconds(h.Duration), Error: str(h.Error), Log: str(h.Log), Causes: []CauseJSON{}}
		for _, c := range h.Causes {
			j.Node.HostDriverUnit.Causes = append(j.Node.HostDriverUnit.Causes, CauseJSON{What: c.What, Fix: c.Fix, RebootHelps: c.RebootHelps})
		}
	}
	for _, g := range n.GPUs {
		j.Node.GPUs = append(j.Node.GPUs, GPUJSON{Index: g.Index, UUID: g.UUID, PCIAddress: g.PCIBusID, Minor: g.Minor})
	}
	for _, d := range n.DeviceNodes {
		dn := DeviceNodeJSON{Name: d.Name, Present: d.Present, Device: str(d.Device), Driver: str(d.Want), Correct: d.Present && d.Want == "", GPU: str(d.GPU)}
		if dn.Driver == nil && d.Present {
			dn.Driver = str(d.Device)
		}
		j.Node.DeviceNodes = append(j.Node.DeviceNodes, dn)
	}
	for _, k := range n.Kernels {
		j.Node.Kernels = append(j.Node.Kernels, KernelJSON{Release: k.Release, Running: k.Running, Bootable: k.Bootable, Headers: k.Headers,
			DKMS: str(k.DKMS), BuildLog: str(k.BuildLog), Ready: k.Ready, Why: str(k.Why), Fix: str(k.Fix)})
	}
	if w := kernels.Working(n.Kernels); w != "" {
		j.Node.WorkingKernel = &WorkingKernelJSON{Release: w, PinCommand: kernels.PinCommand(w)}
	}
	for _, c := range r.Containers {
		cj := ContainerJSON{VMID: c.VMID, State: str(c.State), Chain: str(c.Chain), Required: c.Required, Install: c.Install,
			UserspaceVersion: str(c.Installed), UnfinishedInstall: c.Unfinished, Skew: c.Skew, PendingInstall: c.Pending, LiveStep: str(c.LiveStep),
			GPUs: selectors(c.GPUs), Notes: containerNotes(c, n.Loaded)}
		if cj.Notes == nil {
			cj.Notes = []string{}
		}
		if c.HookKnown {
			cj.Hookscript = str(c.Hookscript)
			is := c.Hookscript != "" && strings.Contains(c.Hookscript, "nvidiaprep")
			cj.HookscriptIsNvidiaprep = &is
		}
		if c.Given != "" {
			cj.Given = []GivenJSON{}
			if c.Given != "none" {
				for _, f := range strings.Fields(c.Given) {
					id, addr, _ := strings.Cut(f, "=")
					idx, err := strconv.Atoi(id)
					if err == nil {
						cj.Given = append(cj.Given, GivenJSON{Index: idx, PCIAddress: addr})
					}
				}
			}
		}
		if c.Outcome != "" {
			cj.LastProvisioning = &ProvisionRun{Version: str(c.Version), Outcome: c.Outcome, Time: at(c.When), DurationSeconds: seconds(c.Duration), Error: str(c.Error)}
		}
		j.Containers = append(j.Containers, cj)
	}
	return j
}

// selectors writes the configured selection as a list: ["all"], [] or the
// selectors.
func selectors(s string) []string {
	switch s {
	case "all":
		return []string{"all"}
	case "none", "":
		return []string{}
	}
	return strings.Split(s, ",")
}
