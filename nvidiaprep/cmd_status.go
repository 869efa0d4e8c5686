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
	fs := flag.NewFlagSet("nvidiaprep status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: nvidiaprep status [--json]")
		return 2
	}
	cfg, err := config.Load(h.getenv)
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep status: configuration: %v\n", err)
		return 1
	}
	r := status.Gather(status.Options{Config: cfg})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
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
