package main

import (
	"fmt"

	"nvidiaprep/nvidiaprep/cfgcheck"
	"nvidiaprep/nvidiaprep/cli"
	"nvidiaprep/nvidiaprep/config"
)

// checkDoc is check's JSON document (docs/json.md).
type checkDoc struct {
	cli.Envelope
	OK       bool           `json:"ok"`
	Files    []string       `json:"files"`
	Findings []checkFinding `json:"findings"`
}

// checkFinding is a cfgcheck.Finding with what is unknown as null.
type checkFinding struct {
	Severity cfgcheck.Severity `json:"severity"`
	File     *string           `json:"file"`
	Line     *int              `json:"line"`
	Key      *string           `json:"key"`
	VMID     *int              `json:"vmid"`
	Message  string            `json:"message"`
}

func findingDoc(f cfgcheck.Finding) checkFinding {
	d := checkFinding{Severity: f.Severity, Message: f.Msg}
	if f.File != "" {
		d.File = &f.File
	}
	if f.Line > 0 {
		d.Line = &f.Line
	}
	if f.Key != "" {
		d.Key = &f.Key
	}
	if f.VMID > 0 {
		d.VMID = &f.VMID
	}
	return d
}

// checkJSONKeys are the top-level keys of check's document, for its error
// document (cli).
var checkJSONKeys = []string{"files", "findings", "ok"}

// checkRun is `nvidiaprep check [--cluster] [FILE]`: it loads the
// configuration as the hook would, with FILE (when given) in place of the
// node's file, or of the cluster's with --cluster, and checks it against
// this node. It prints each finding as "FILE:LINE: KEY: severity: message"
// (or the report as JSON) and returns 0 when no finding is an error, else 1.
func (h host) checkRun(c *cli.Call) int {
	files := config.Sources(h.getenv)
	if len(c.Args) == 1 {
		i := 1
		if c.Bool("cluster") {
			i = 0
		}
		files[i] = config.File{Path: c.Args[0]}
	} else if c.Bool("cluster") {
		return c.Fail(cli.ExitUsage, "--cluster names what FILE stands in for: give FILE")
	}
	r := cfgcheck.Check(cfgcheck.Options{Files: files, GPUs: cfgcheck.NodeGPUs})
	if c.JSON {
		doc := checkDoc{Envelope: c.Envelope(), OK: r.OK(), Files: append([]string{}, r.Files...), Findings: []checkFinding{}}
		for _, f := range r.Findings {
			doc.Findings = append(doc.Findings, findingDoc(f))
		}
		if err := cli.WriteJSON(c.Stdout, doc); err != nil {
			fmt.Fprintf(c.Stderr, "nvidiaprep check: %v\n", err)
		}
	} else {
		for _, f := range r.Findings {
			fmt.Fprintln(c.Stdout, f)
		}
		if r.OK() {
			fmt.Fprintf(c.Stdout, "%s: loads as the hook would load it.\n", describeFiles(r.Files))
		}
	}
	if !r.OK() {
		return cli.ExitFail
	}
	return cli.ExitOK
}

// describeFiles names the files read, or says there were none.
func describeFiles(files []string) string {
	switch len(files) {
	case 0:
		return "no configuration file (the defaults apply)"
	case 1:
		return files[0]
	}
	return files[0] + " then " + files[1]
}
