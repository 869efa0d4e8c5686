package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/status"
)

func statusCmd(args []string, stdout, stderr io.Writer) int {
	return realHost().status(args, stdout, stderr)
}

func (h host) status(args []string, stdout, stderr io.Writer) int {
	asJSON, ok := parseReportFlags("status", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(h.getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep status: configuration: %v\n", err)
		return 1
	}
	if err := refreshMIGCache(cfg.Paths); err != nil {
		fmt.Fprintf(stderr, "nvidiaprep status: refreshing the MIG cache: %v\n", err)
	}
	r := status.Gather(status.Options{Config: cfg})
	if asJSON {
		if err := writeJSON(stdout, r); err != nil {
			fmt.Fprintf(stderr, "nvidiaprep status: %v\n", err)
			return 1
		}
		return 0
	}
	if err := status.Write(stdout, r, h.now()); err != nil {
		fmt.Fprintf(stderr, "nvidiaprep status: %v\n", err)
		return 1
	}
	return 0
}

// parseReportFlags parses the arguments of a command that prints a report:
// only --json; ok is false (the usage printed) for anything else.
func parseReportFlags(name string, args []string, stderr io.Writer) (asJSON, ok bool) {
	fs := flag.NewFlagSet("nvidiaprep "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	j := fs.Bool("json", false, "print JSON instead of text")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: nvidiaprep %s [--json]\n", name)
		return false, false
	}
	return *j, true
}

// writeJSON prints a report as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
