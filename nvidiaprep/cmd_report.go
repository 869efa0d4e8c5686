package main

import (
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
)

// changeReport is what enable and disable tell: sentences on stdout, or with
// --json one document of what they changed (docs/json.md), errors included.
type changeReport struct {
	c   *cli.Call
	doc changeDoc
}

// changeDoc is enable's and disable's JSON document.
type changeDoc struct {
	cli.Envelope
	VMID int `json:"vmid"`
	// Container is the container's configuration after the command: null
	// for disable, or when enable failed before loading it.
	Container    *containerSettings `json:"container"`
	FilesChanged []fileChange       `json:"files_changed"`
	Commands     []commandRun       `json:"commands"`
	Messages     []string           `json:"messages"`
}

// The top-level keys of the documents, for their error documents (cli).
var (
	enableJSONKeys  = []string{"vmid", "container", "files_changed", "commands", "messages"}
	disableJSONKeys = enableJSONKeys
)

// containerSettings is a [containers.N] table as it applies.
type containerSettings struct {
	GPUs     []string `json:"gpus"` // ["all"], [] for none, or the selectors
	Required bool     `json:"required"`
	Install  bool     `json:"install"`
	Strict   bool     `json:"strict"`
	Chain    *string  `json:"chain"` // the container's own hookscript, run first
}

func settingsOf(c config.Container) *containerSettings {
	s := &containerSettings{GPUs: c.GPUs.List(), Required: c.Required, Install: c.Install, Strict: c.Strict}
	if c.Chain != "" {
		s.Chain = &c.Chain
	}
	return s
}

// fileChange is one file the command changed.
type fileChange struct {
	Path   string `json:"path"`
	Table  string `json:"table"`  // "containers.101"
	Action string `json:"action"` // "written" or "removed"
}

// commandRun is one command the command ran, or printed for the admin to
// run where it could not (no pct: not a Proxmox VE node).
type commandRun struct {
	Argv []string `json:"argv"`
	Ran  bool     `json:"ran"`
}

func newChangeReport(c *cli.Call, vmid int) *changeReport {
	return &changeReport{c: c, doc: changeDoc{Envelope: c.Envelope(), VMID: vmid, FilesChanged: []fileChange{}, Commands: []commandRun{}, Messages: []string{}}}
}

// say prints a sentence (text) or keeps it in messages (JSON).
func (r *changeReport) say(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if r.c.JSON {
		r.doc.Messages = append(r.doc.Messages, strings.TrimRight(msg, "\n"))
		return
	}
	fmt.Fprint(r.c.Stdout, msg)
	if !strings.HasSuffix(msg, "\n") {
		fmt.Fprintln(r.c.Stdout)
	}
}

func (r *changeReport) file(path, table, action string) {
	r.doc.FilesChanged = append(r.doc.FilesChanged, fileChange{Path: path, Table: table, Action: action})
}

func (r *changeReport) command(argv []string, ran bool) {
	r.doc.Commands = append(r.doc.Commands, commandRun{Argv: argv, Ran: ran})
}

// failCT reports err, an error about the command's container, naming it
// once (ctmsg), with what was changed before it.
func (r *changeReport) failCT(code int, err error) int {
	return r.fail(code, "%s", ctmsg.Text(r.doc.VMID, err))
}

// sayCT says a sentence about the command's container, naming it first.
func (r *changeReport) sayCT(format string, args ...any) {
	r.say("%s", ctmsg.Sprintf(r.doc.VMID, format, args...))
}

// fail reports an error with what was changed before it.
func (r *changeReport) fail(code int, format string, args ...any) int {
	if !r.c.JSON {
		return r.c.Fail(code, format, args...)
	}
	r.doc.Error = &cli.Error{Message: fmt.Sprintf(format, args...), ExitStatus: code}
	_ = cli.WriteJSON(r.c.Stdout, r.doc)
	return code
}

// done ends a successful run.
func (r *changeReport) done() int {
	if r.c.JSON {
		if err := cli.WriteJSON(r.c.Stdout, r.doc); err != nil {
			return r.c.Fail(cli.ExitFail, "%v", err)
		}
	}
	return cli.ExitOK
}
