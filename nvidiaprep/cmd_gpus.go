package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/nvmlgpu"
	"nvidiaprep/nvidiaprep/status"
	"nvidiaprep/nvidiaprep/term"
)

// gpusDoc is gpus's JSON document (docs/json.md).
type gpusDoc struct {
	cli.Envelope
	DriverLoaded *string   `json:"driver_loaded"`
	Source       string    `json:"source"` // "nvml" or "procfs"
	GPUs         []gpuJSON `json:"gpus"`
}

var gpusJSONKeys = []string{"driver_loaded", "source", "gpus"}

// gpuJSON is one GPU; null where the driver does not say.
type gpuJSON struct {
	Index       int     `json:"index"`
	UUID        string  `json:"uuid"`
	PCIAddress  string  `json:"pci_address"`
	Minor       int     `json:"minor"`
	Model       *string `json:"model"`
	MemoryBytes *uint64 `json:"memory_bytes"`
	MIGMode     *string `json:"mig_mode"`         // "enabled", "disabled"
	MIGPending  *string `json:"mig_mode_pending"` // after the next GPU reset, when it differs
	Containers  []int   `json:"containers"`       // configured to get it and using the hookscript
}

// gpusRun is `nvidiaprep gpus`.
func (h host) gpusRun(c *cli.Call) int {
	cfg, err := config.Load(h.getenv)
	if err != nil {
		return c.Fail(cli.ExitFail, "configuration: %v", err)
	}
	p := cfg.Paths
	if err := refreshGPUCache(p); err != nil {
		fmt.Fprintf(c.Stderr, "nvidiaprep gpus: %v\n", err)
	}
	doc := gpusDoc{Envelope: c.Envelope(), GPUs: []gpuJSON{}}
	loaded, err := nvdev.LoadedVersion(p.Sys, p.Proc)
	if err != nil {
		return c.Fail(cli.ExitFail, "%v\nWith no NVIDIA kernel module loaded there are no GPUs to list: `nvidiaprep doctor` says what to do.", err)
	}
	doc.DriverLoaded = &loaded
	details, source, err := h.gpuDetails(p)
	if err != nil {
		return c.Fail(cli.ExitFail, "%v", err)
	}
	doc.Source = source
	plain := make([]nvdev.GPU, len(details))
	for i, d := range details {
		plain[i] = d.GPU
	}
	users := gpuUsers(cfg, plain)
	for _, d := range details {
		g := gpuJSON{Index: d.Index, UUID: d.UUID, PCIAddress: d.PCIBusID, Minor: d.Minor, Containers: users[d.Index]}
		if d.Model != "" {
			g.Model = &d.Model
		}
		if d.MemoryBytes > 0 {
			g.MemoryBytes = &d.MemoryBytes
		}
		if d.MIG != "" {
			g.MIGMode = &d.MIG
		}
		if d.MIGPending != "" {
			g.MIGPending = &d.MIGPending
		}
		if g.Containers == nil {
			g.Containers = []int{}
		}
		doc.GPUs = append(doc.GPUs, g)
	}
	if c.JSON {
		if err := cli.WriteJSON(c.Stdout, doc); err != nil {
			return c.Fail(cli.ExitFail, "%v", err)
		}
		return cli.ExitOK
	}
	writeGPUs(c, doc, h.style(c))
	return cli.ExitOK
}

// gpuDetails lists the GPUs: through NVML on the real host (model,
// memory, MIG), else, or when NVML fails, from procfs (model only).
func (h host) gpuDetails(p config.Paths) ([]nvmlgpu.Details, string, error) {
	if p.Proc == "/proc" && p.Dev == "/dev" {
		if d, err := nvmlgpu.New().Details(); err == nil {
			return d, "nvml", nil
		}
	}
	gpus, err := nvdev.ProcGPUs{Proc: p.Proc}.GPUs()
	if err != nil {
		return nil, "", err
	}
	models := nvdev.ProcModels(p.Proc)
	out := make([]nvmlgpu.Details, len(gpus))
	for i, g := range gpus {
		out[i] = nvmlgpu.Details{GPU: g, Model: models[g.PCIBusID]}
	}
	return out, "procfs", nil
}

// gpuUsers maps each GPU index to the containers that use the hookscript
// and whose configuration gives them that GPU on this node.
func gpuUsers(cfg config.Config, gpus []nvdev.GPU) map[int][]int {
	users := map[int][]int{}
	r := status.Gather(status.Options{Config: cfg})
	for _, ct := range r.Containers {
		if ct.HookKnown && !strings.Contains(ct.Hookscript, "nvidiaprep") {
			continue // nvidiaprep does not run for it
		}
		sel := cfg.Container(ct.VMID).GPUs
		given, _ := nvdev.Select(gpus, sel)
		for _, g := range given {
			users[g.Index] = append(users[g.Index], ct.VMID)
		}
	}
	for _, ids := range users {
		slices.Sort(ids)
	}
	return users
}

func writeGPUs(c *cli.Call, doc gpusDoc, st term.Style) {
	if len(doc.GPUs) == 0 {
		fmt.Fprintf(c.Stdout, "Driver %s is loaded, but it lists no GPU.\n", *doc.DriverLoaded)
		return
	}
	tw := tabwriter.NewWriter(c.Stdout, 0, 0, 2, ' ', 0)
	if st.Width == 0 {
		fmt.Fprintln(tw, st.Bold("INDEX\tPCI ADDRESS\tUUID\tMODEL\tCONTAINERS"))
	}
	for i, g := range doc.GPUs {
		if i > 0 && st.Width > 0 {
			fmt.Fprintln(c.Stdout)
		}
		var what []string
		if g.Model != nil {
			what = append(what, *g.Model)
		}
		if g.MemoryBytes != nil {
			what = append(what, fmt.Sprintf("%.0f GiB", float64(*g.MemoryBytes)/(1<<30)))
		}
		if g.MIGMode != nil {
			mig := "MIG " + *g.MIGMode
			if g.MIGPending != nil {
				mig += " (" + *g.MIGPending + " after a GPU reset)"
			}
			what = append(what, mig)
		}
		users := "none"
		if len(g.Containers) > 0 {
			ids := make([]string, len(g.Containers))
			for i, id := range g.Containers {
				ids[i] = strconv.Itoa(id)
			}
			users = "CT " + strings.Join(ids, ", ")
		}
		if st.Width == 0 { // --wide: one line a GPU
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", g.Index, g.PCIAddress, g.UUID, strings.Join(what, ", "), users)
			continue
		}
		head := st.Bold(fmt.Sprintf("GPU %d", g.Index)) + "  " + g.PCIAddress
		fmt.Fprintln(c.Stdout, head)
		fmt.Fprintf(c.Stdout, "  uuid        %s\n", g.UUID)
		if len(what) > 0 {
			for _, l := range term.Wrap(strings.Join(what, ", "), st.Width, "  model       ", "              ") {
				fmt.Fprintln(c.Stdout, l)
			}
		}
		for _, l := range term.Wrap(users, st.Width, "  containers  ", "              ") {
			fmt.Fprintln(c.Stdout, l)
		}
	}
	tw.Flush()
	fmt.Fprintf(c.Stdout, "\nenable takes any of index, uuid or PCI address: nvidiaprep enable <vmid> --gpus %d\n", doc.GPUs[0].Index)
}
