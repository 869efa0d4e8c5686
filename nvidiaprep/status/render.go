package status

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Write prints the report as a readable table; now dates the "when" column.
func Write(w io.Writer, r Report, now time.Time) error {
	n := r.Node
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "NODE\t\n")
	fmt.Fprintf(tw, "  driver configured\t%s\n", orDash(n.Configured, "none ([driver] version unset)"))
	fmt.Fprintf(tw, "  driver installed\t%s\n", orDash(n.Installed, "unknown"))
	fmt.Fprintf(tw, "  driver loaded\t%s\n", orDash(n.Loaded, "none (no NVIDIA kernel module is loaded)"))
	reboot := "no"
	if n.RebootPending {
		reboot = "yes: the installed driver loads at the next boot"
		if h := n.HostDriver; h != nil && h.Outcome == "reboot-required" && h.Error != "" {
			reboot = "yes: driver " + h.Configured + " is installed and loaded at the next boot (why: see host driver unit)"
		}
	}
	fmt.Fprintf(tw, "  reboot pending\t%s\n", reboot)
	if h := n.HostDriver; h != nil {
		line := h.Outcome
		if !h.Time.IsZero() {
			line += ", " + ago(now, h.Time)
		}
		if h.Error != "" {
			line += ": " + h.Error
		}
		fmt.Fprintf(tw, "  host driver unit\t%s\n", line)
	}
	gpus := make([]string, len(n.GPUs))
	for i, g := range n.GPUs {
		gpus[i] = fmt.Sprintf("%d=%s", g.Index, g.PCIBusID)
	}
	fmt.Fprintf(tw, "  GPUs\t%s\n", orDash(strings.Join(gpus, " "), "none found"))
	var nodes []string
	for _, d := range n.DeviceNodes {
		switch {
		case !d.Present:
			nodes = append(nodes, d.Name+" MISSING")
		case d.Want != "":
			nodes = append(nodes, fmt.Sprintf("%s %s (driver has %s)", d.Name, d.Device, d.Want))
		default:
			nodes = append(nodes, d.Name+" "+d.Device)
		}
	}
	if n.Loaded == "" && !slices.ContainsFunc(n.DeviceNodes, func(d DeviceNode) bool { return d.Present }) {
		nodes = []string{"none (no driver)"}
	}
	fmt.Fprintf(tw, "  device nodes\t%s\n", strings.Join(nodes, ", "))
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	if len(r.Containers) == 0 {
		fmt.Fprintln(w, "No container uses the hookscript (nvidiaprep enable <vmid>).")
	} else {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CT\tHOOKSCRIPT\tGPUS\tGIVEN AT LAST START\tUSER SPACE\tLAST PROVISIONING\tWHEN\tTOOK")
		for _, c := range r.Containers {
			hook := "unknown"
			if c.HookKnown {
				hook = orDash(c.Hookscript, "NOT SET")
			}

			gpus := c.GPUs
			if c.Required {
				gpus += " (required)"
			}
			outcome := orDash(c.Outcome, "never")
			if c.Error != "" {
				outcome += ": " + shorten(c.Error, 60)
			}
			when, took := "-", "-"
			if !c.When.IsZero() {
				when = ago(now, c.When)
			}
			if c.Duration > 0 {
				took = c.Duration.Round(100 * time.Millisecond).String()
			}
			version := orDash(c.Version, "-")
			if !c.Install {
				version = "(not installed by nvidiaprep)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.VMID, hook, gpus, orDash(c.Given, "-"), version, outcome, when, took)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, c := range r.Containers {
			if c.Chain != "" {
				fmt.Fprintf(w, "CT %d: nvidiaprep's hook runs its own hookscript %s first, in every phase.\n", c.VMID, c.Chain)
			}
		}
		fmt.Fprintln(w, "\nA container with nvidiaprep's hookscript starts only on a node with the nvidiaprep package: install it on every node it can move to.")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "could not read: %s\n", p)
	}
	return nil
}

func orDash(s, dash string) string {
	if s == "" {
		return dash
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// ago writes a time as "2025-11-26 09:30 (5m ago)".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	var rel string
	switch {
	case d < 0:
		rel = "in the future"
	case d < time.Minute:
		rel = fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		rel = fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		rel = fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		rel = fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
	return t.Local().Format("2006-01-02 15:04") + " (" + rel + ")"
}
