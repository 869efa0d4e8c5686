package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/doctor"
	"nvidiaprep/nvidiaprep/status"
	"nvidiaprep/nvidiaprep/term"
)

// doctorDoc is doctor's JSON document (docs/json.md).
type doctorDoc struct {
	cli.Envelope
	OK         bool             `json:"ok"`
	Problems   []doctor.Problem `json:"problems"`
	Notes      []string         `json:"notes"`
	Dependents []int            `json:"hookscript_dependents"`
}

var doctorJSONKeys = []string{"ok", "problems", "notes", "hookscript_dependents"}

// doctorRun prints each problem with its fix; the exit status is 0 when all
// is well and 1 when something needs fixing.
func (h host) doctorRun(c *cli.Call) int {
	var r doctor.Report
	cfg, err := config.Load(h.getenv)
	if err != nil {
		// A configuration that does not load is the first problem, and
		// the only one checked: nothing else can be trusted without it.
		r.Problems = []doctor.Problem{{Check: "config", What: err.Error(),
			Fix: "correct the file and line named (`nvidiaprep check` checks a file before it is saved); until then containers that use the hookscript refuse to start"}}
	} else {
		probe := h.probe(cfg.Paths.LXC)
		running := func(vmid int) (bool, bool) {
			switch probe(vmid).State {
			case status.Running:
				return true, true
			case status.Stopped:
				return false, true
			}
			return false, false
		}
		r = doctor.Run(context.Background(), doctor.Options{Config: cfg, Runner: h.runner, Running: running})
		if err := refreshGPUCache(cfg.Paths); err != nil {
			r.Notes = append(r.Notes, err.Error())
		}
	}
	if c.JSON {
		doc := doctorDoc{Envelope: c.Envelope(), OK: r.OK(), Problems: r.Problems, Notes: r.Notes, Dependents: r.Dependents}
		if doc.Problems == nil {
			doc.Problems = []doctor.Problem{}
		}
		if doc.Notes == nil {
			doc.Notes = []string{}
		}
		if doc.Dependents == nil {
			doc.Dependents = []int{}
		}
		if err := cli.WriteJSON(c.Stdout, doc); err != nil {
			return c.Fail(cli.ExitFail, "%v", err)
		}
	} else {
		writeDoctor(c, r, h.style(c))
	}
	if !r.OK() {
		return cli.ExitFail
	}
	return cli.ExitOK
}

// writeDoctor prints the report wrapped to the width: each problem, its
// fix below it.
func writeDoctor(c *cli.Call, r doctor.Report, st term.Style) {
	out := func(lines []string) {
		for _, l := range lines {
			fmt.Fprintln(c.Stdout, l)
		}
	}
	for _, p := range r.Problems {
		head := "PROBLEM " + p.Check + ": "
		lines := term.Wrap(head+p.What, st.Width, "", "  ")
		lines[0] = st.Red("PROBLEM") + strings.TrimPrefix(lines[0], "PROBLEM")
		out(lines)
		out(term.Wrap(p.Fix, st.Width, "  fix: ", "       "))
	}
	for _, n := range r.Notes {
		out(term.Wrap(n, st.Width, "note: ", "      "))
	}
	if len(r.Dependents) > 0 {
		text := fmt.Sprintf("CTs %s use nvidiaprep's hookscript: Proxmox refuses to start them on a node without the nvidiaprep package, so install it on every node they can move to (migration, restore).", joinInts(r.Dependents))
		if len(r.Dependents) == 1 {
			text = fmt.Sprintf("%s uses nvidiaprep's hookscript: Proxmox refuses to start it on a node without the nvidiaprep package, so install it on every node it can move to (migration, restore).", ctmsg.Name(r.Dependents[0]))
		}
		out(term.Wrap(text, st.Width, "", ""))
	}
	if r.OK() {
		fmt.Fprintln(c.Stdout, st.Green("All is well."))
	} else {
		fmt.Fprintln(c.Stdout, st.Red(fmt.Sprintf("%d problem(s) found.", len(r.Problems))))
	}
}

// joinInts writes vmids as "101, 102".
func joinInts(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ", ")
}
