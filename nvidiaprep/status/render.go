package status

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/term"
	"nvidiaprep/nvidiaprep/untrusted"
)

// Write prints the report for people: the node's block, then a table of the
// containers fitted to st.Width (long cells cut with "…", their whole text
// in the notes below the table), then the notes; now dates the times.
func Write(w io.Writer, r Report, now time.Time, st term.Style) error {
	p := &printer{w: w, st: st, now: now}
	p.node(r.Node)
	p.blank()
	if len(r.Containers) == 0 {
		p.wrap("No container uses the hookscript (nvidiaprep enable <vmid>).", "", "")
	} else {
		p.table(r)
		p.notes(r)
	}
	for _, problem := range r.Problems {
		p.wrap("could not read: "+problem, "", "  ")
	}
	return p.err
}

// WriteOne prints one container in full, below the node's block.
func WriteOne(w io.Writer, r Report, vmid int, now time.Time, st term.Style) error {
	p := &printer{w: w, st: st, now: now}
	p.node(r.Node)
	p.blank()
	i := slices.IndexFunc(r.Containers, func(c Container) bool { return c.VMID == vmid })
	if i < 0 {
		p.wrap(fmt.Sprintf("%s does not use nvidiaprep's hookscript on this node and has no [containers.%d] table (nvidiaprep enable %d).", ctmsg.Name(vmid), vmid, vmid), "", "")
	} else {
		p.container(r.Containers[i], r.Node.Loaded)
	}
	for _, problem := range r.Problems {
		p.wrap("could not read: "+problem, "", "  ")
	}
	return p.err
}

type printer struct {
	w   io.Writer
	st  term.Style
	now time.Time
	err error
}

func (p *printer) line(s string) {
	if p.err == nil {
		_, p.err = io.WriteString(p.w, s+"\n")
	}
}

func (p *printer) blank() { p.line("") }

// wrap prints text wrapped to the width; colour codes are not in text.
func (p *printer) wrap(text, first, rest string) {
	for _, l := range term.Wrap(text, p.st.Width, first, rest) {
		p.line(l)
	}
}

// keyWidth is the width of the key column of the key-value blocks.
const keyWidth = 20

// kv prints "  key  value", the value wrapped below itself; paint colours
// the whole value when it fits on one line.
func (p *printer) kv(key, value string, paint func(string) string) {
	first := "  " + key + strings.Repeat(" ", max(1, keyWidth-len(key)))
	rest := strings.Repeat(" ", len(first))
	lines := term.Wrap(value, p.st.Width, first, rest)
	if len(lines) == 1 && paint != nil {
		lines[0] = first + paint(value)
	}
	for _, l := range lines {
		p.line(l)
	}
}

func (p *printer) node(n Node) {
	p.line(p.st.Bold("NODE"))
	p.kv("driver configured", orDash(n.Configured, "none ([driver] version unset)"), nil)
	p.kv("driver installed", orDash(n.Installed, "unknown"), nil)
	loadedPaint := p.st.Green
	if n.Loaded == "" {
		loadedPaint = p.st.Red
	}
	p.kv("driver loaded", orDash(n.Loaded, "none (no NVIDIA kernel module is loaded)"), loadedPaint)
	switch {
	case n.HostDriver != nil && n.HostDriver.Outcome == hostdriverstate.OutcomeNotLoaded:
		p.kv("reboot pending", "no: the installed driver did not load on this boot, and another reboot does not load it (host driver unit, below)", p.st.Red)
	case n.RebootPending && n.HostDriver != nil && n.HostDriver.Outcome == hostdriverstate.OutcomeRebootRequired && n.HostDriver.Error != "":
		p.kv("reboot pending", "yes: driver "+n.HostDriver.Configured+" is installed and loaded at the next boot (why: see host driver unit)", p.st.Yellow)
	case n.RebootPending:
		p.kv("reboot pending", "yes: the installed driver loads at the next boot", p.st.Yellow)
	default:
		p.kv("reboot pending", "no", nil)
	}
	if h := n.HostDriver; h != nil {
		line := h.Outcome
		if !h.Time.IsZero() {
			line += ", " + ago(p.now, h.Time)
		}
		if h.Error != "" {
			line += ": " + h.Error
		}
		var paint func(string) string
		if h.Outcome == hostdriverstate.OutcomeFailed {
			paint = p.st.Red
		}
		p.kv("host driver unit", line, paint)
	}
	gpus := make([]string, len(n.GPUs))
	for i, g := range n.GPUs {
		gpus[i] = fmt.Sprintf("%d=%s", g.Index, g.PCIBusID)
	}
	p.kv("GPUs", orDash(strings.Join(gpus, " "), "none found")+" (nvidiaprep gpus)", nil)
	var nodes []string
	missing := false
	for _, d := range n.DeviceNodes {
		switch {
		case !d.Present:
			nodes = append(nodes, d.Name+" MISSING")
			missing = true
		case d.Want != "":
			nodes = append(nodes, fmt.Sprintf("%s %s (driver has %s)", d.Name, d.Device, d.Want))
			missing = true
		default:
			nodes = append(nodes, d.Name+" "+d.Device)
		}
	}
	if n.Loaded == "" && !slices.ContainsFunc(n.DeviceNodes, func(d DeviceNode) bool { return d.Present }) {
		nodes, missing = []string{"none (no driver)"}, false
	}
	var paint func(string) string
	if missing {
		paint = p.st.Red
	}
	p.kv("device nodes", strings.Join(nodes, ", "), paint)
	for i, k := range n.Kernels {
		key := ""
		if i == 0 {
			key = "kernels"
		}
		name := k.Release
		if k.Running {
			name += " (running)"
		}
		if k.Ready {
			p.kv(key, fmt.Sprintf("%s: driver %s built (dkms: %s)", name, n.Installed, k.DKMS), nil)
			continue
		}
		p.kv(key, fmt.Sprintf("%s: NOT READY: %s", name, k.Why), p.st.Red)
		if k.Fix != "" {
			p.kv("", "fix: "+k.Fix, nil)
		}
	}
}

// Cells of the containers' table.
type column struct {
	title string
	min   int // the narrowest it is cut to
}

var columns = []column{{"CT", 2}, {"STATE", 7}, {"GPUS", 4}, {"GIVEN", 5}, {"USER SPACE", 10}, {"LAST PROVISIONING", 12}}

func (p *printer) table(r Report) {
	rows := make([][]string, len(r.Containers))
	for i, c := range r.Containers {
		rows[i] = []string{strconv.Itoa(c.VMID), state(c), gpus(c), givenIndexes(c.Given), userSpace(c), p.lastProvisioning(c)}
	}
	widths := make([]int, len(columns))
	for i, col := range columns {
		widths[i] = len(col.title)
		for _, row := range rows {
			widths[i] = max(widths[i], term.Len(row[i]))
		}
	}
	const gap = 2
	if p.st.Width > 0 {
		total := func() int {
			t := gap * (len(widths) - 1)
			for _, w := range widths {
				t += w
			}
			return t
		}
		// The widest column that can give gives one column at a time.
		for total() > p.st.Width {
			best := -1
			for i, w := range widths {
				if w > columns[i].min && (best < 0 || w > widths[best]) {
					best = i
				}
			}
			if best < 0 {
				break
			}
			widths[best]--
		}
	}
	cell := func(i int, s string) string {
		s = term.Cut(s, widths[i])
		return s + strings.Repeat(" ", widths[i]-term.Len(s))
	}
	var head []string
	for i, col := range columns {
		head = append(head, cell(i, col.title))
	}
	p.line(p.st.Bold(strings.TrimRight(strings.Join(head, "  "), " ")))
	for ri, row := range rows {
		c := r.Containers[ri]
		cells := make([]string, len(row))
		for i := range row {
			cells[i] = cell(i, row[i])
		}
		switch {
		case c.State == Running:
			cells[1] = p.st.Green(cells[1])
		case c.State == Stopped:
			cells[1] = p.st.Dim(cells[1])
		}
		if c.Skew {
			cells[4] = p.st.Yellow(cells[4])
		}
		if c.Outcome == record.Failed {
			cells[5] = p.st.Red(cells[5])
		}
		p.line(strings.TrimRight(strings.Join(cells, "  "), " "))
	}
}

func state(c Container) string {
	return orDash(c.State, "?")
}

func gpus(c Container) string {
	g := c.GPUs
	if c.Required {
		g += " (required)"
	}
	return g
}

// givenIndexes writes "0=0000:01:00.0 1=..." as "0,1"; the addresses are
// in the node's GPU list and in status <vmid>.
func givenIndexes(given string) string {
	if given == "" {
		return "-"
	}
	var ids []string
	for _, f := range strings.Fields(given) {
		id, _, _ := strings.Cut(f, "=")
		ids = append(ids, id)
	}
	return strings.Join(ids, ",")
}

func userSpace(c Container) string {
	switch {
	case c.Installed != "" && c.Skew:
		return c.Installed + " (skew)"
	case c.Installed != "":
		return c.Installed
	case !c.Install:
		return "its own"
	case c.State == Running:
		return "none"
	}
	return "-"
}

func (p *printer) lastProvisioning(c Container) string {
	if c.Outcome == "" {
		return "never"
	}
	s := c.Outcome
	if c.Version != "" {
		s += " " + c.Version
	}
	if c.LiveStep != "" && c.Outcome == record.Running {
		return s + ": " + c.LiveStep
	}
	if !c.When.IsZero() {
		s += ", " + relative(p.now, c.When)
	}
	if c.Duration > 0 {
		s += ", " + c.Duration.Round(100*time.Millisecond).String()
	}
	if c.Error != "" {
		s += ": " + c.Error
	}
	return s
}

// notes says below the table what needs words: hookscripts, pending
// installs, skews, failures in full.
func (p *printer) notes(r Report) {
	var notes []string
	for _, c := range r.Containers {
		notes = append(notes, containerNotes(c, r.Node.Loaded)...)
	}
	notes = append(notes, "A container with nvidiaprep's hookscript starts only on a node with the nvidiaprep package: install it on every node it can move to.")
	p.blank()
	for _, n := range notes {
		p.wrap(n, "", "  ")
	}
}

// containerNotes are the sentences about one container that the table
// cannot hold.
func containerNotes(c Container, loaded string) []string {
	var out []string
	ct := ctmsg.Sprintf(c.VMID, "")
	switch {
	case !c.HookKnown:
	case c.Hookscript == "":
		out = append(out, ct+fmt.Sprintf("no hookscript: nvidiaprep does not run for it (nvidiaprep enable %d).", c.VMID))
	case !strings.Contains(c.Hookscript, "nvidiaprep"):
		out = append(out, ct+fmt.Sprintf("its hookscript is %s, not nvidiaprep's: nvidiaprep does not run for it (nvidiaprep enable %d chains it).", untrusted.New(c.Hookscript), c.VMID))
	}
	if c.Chain != "" {
		out = append(out, ct+fmt.Sprintf("nvidiaprep's hook runs its own hookscript %s first, in every phase.", untrusted.New(c.Chain)))
	}
	if c.Outcome == record.Running {
		now := "installing the libraries now"
		if c.LiveStep != "" {
			now += ": " + c.LiveStep
		}
		return append(out, ct+now+fmt.Sprintf(" (nvidiaprep logs %d -f)", c.VMID))
	}
	if c.Outcome == record.Failed {
		out = append(out, ct+fmt.Sprintf("the last provisioning (%s) failed: %s", orDash(c.Version, "?"), c.Error))
	}
	switch {
	case c.HookKnown && !strings.Contains(c.Hookscript, "nvidiaprep"):
	case c.Pending && c.Skew:
		out = append(out, ct+fmt.Sprintf("it has the libraries of %s, the host runs %s: CUDA there fails with \"Driver/library version mismatch\" until they are installed at its next start (pct reboot %d).", c.Installed, loaded, c.VMID))
	case c.Pending:
		out = append(out, ct+fmt.Sprintf("libraries will be installed at the next start (pct reboot %d, if it runs).", c.VMID))
	}
	return out
}

// container prints one container in full.
func (p *printer) container(c Container, loaded string) {
	p.line(p.st.Bold(ctmsg.Name(c.VMID)))
	statePaint := p.st.Green
	if c.State != Running {
		statePaint = nil
	}
	p.kv("state", orDash(c.State, "unknown"), statePaint)
	hook := "unknown (not a Proxmox VE node)"
	if c.HookKnown {
		hook = orDash(untrusted.New(c.Hookscript).String(), "none")
	}
	p.kv("hookscript", hook, nil)
	if c.Chain != "" {
		// A file's text: its control characters must not reach the terminal.
		p.kv("own hookscript", untrusted.New(c.Chain).String()+" (run first)", nil)
	}
	p.kv("GPUs configured", gpus(c), nil)
	p.kv("given at last start", orDash(c.Given, "-"), nil)
	libs := "installed by nvidiaprep when they are not the loaded driver's"
	if !c.Install {
		libs = "not installed by nvidiaprep (install = false)"
	}
	p.kv("libraries", libs, nil)
	us := orDash(c.Installed, "none or unknown")
	var usPaint func(string) string
	if c.Skew {
		us += " (the host runs " + loaded + ": version skew)"
		usPaint = p.st.Yellow
	}
	if c.Unfinished {
		us += " (an install did not finish)"
	}
	p.kv("user space", us, usPaint)
	last := "never"
	if c.Outcome != "" {
		last = c.Outcome + " " + orDash(c.Version, "?")
		if !c.When.IsZero() {
			last += ", " + ago(p.now, c.When)
		}
		if c.Duration > 0 {
			last += ", took " + c.Duration.Round(100*time.Millisecond).String()
		}
	}
	var lastPaint func(string) string
	if c.Outcome == record.Failed {
		lastPaint = p.st.Red
	}
	p.kv("last provisioning", last, lastPaint)
	if c.Error != "" {
		p.kv("error", c.Error, nil)
	}
	if c.LiveStep != "" {
		p.kv("now", c.LiveStep, nil)
	}
	p.kv("log", fmt.Sprintf("nvidiaprep logs %d", c.VMID), nil)
	var notes []string
	for _, n := range containerNotes(c, loaded) {
		n = strings.TrimPrefix(n, ctmsg.Sprintf(c.VMID, ""))
		if !strings.HasPrefix(n, "the last provisioning") { // its error is above
			notes = append(notes, n)
		}
	}
	if len(notes) > 0 {
		p.blank()
		for _, n := range notes {
			p.wrap(n, "", "  ")
		}
	}
}

func orDash(s, dash string) string {
	if s == "" {
		return dash
	}
	return s
}

// relative writes a time as "5m ago".
func relative(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// ago writes a time as "2025-11-26 09:30 (5m ago)".
func ago(now, t time.Time) string {
	return t.Local().Format("2006-01-02 15:04") + " (" + relative(now, t) + ")"
}
