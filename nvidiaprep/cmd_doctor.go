package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/doctor"
)

func doctorCmd(args []string, stdout, stderr io.Writer) int {
	return realHost().doctor(args, stdout, stderr)
}

// doctor prints each problem with its fix; the exit status is 0 when all is
// well and 1 when something needs fixing.
func (h host) doctor(args []string, stdout, stderr io.Writer) int {
	asJSON, ok := parseReportFlags("doctor", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(h.getenv)
	if err != nil {
		fmt.Fprintf(stdout, "PROBLEM config: %v\n  fix: correct the configuration (the file and line named); until then every container that uses the hookscript refuses to start\n", err)
		return 1
	}
	r := doctor.Run(context.Background(), doctor.Options{Config: cfg, Runner: h.runner})
	if asJSON {
		if err := writeJSON(stdout, r); err != nil {
			fmt.Fprintf(stderr, "nvidiaprep doctor: %v\n", err)
		}
	} else {
		for _, p := range r.Problems {
			fmt.Fprintf(stdout, "PROBLEM %s: %s\n  fix: %s\n", p.Check, p.What, p.Fix)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(stdout, "note: %s\n", n)
		}
		if len(r.Dependents) > 0 {
			fmt.Fprintf(stdout, "CT %s use nvidiaprep's hookscript: Proxmox refuses to start them on a node without the nvidiaprep package, so install it on every node they can move to (migration, restore).\n", joinInts(r.Dependents))
		}
		if r.OK() {
			fmt.Fprintln(stdout, "All is well.")
		} else {
			fmt.Fprintf(stdout, "%d problem(s) found.\n", len(r.Problems))
		}
	}
	if !r.OK() {
		return 1
	}
	return 0
}

// joinInts writes vmids as "101, 102".
func joinInts(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ", ")
}
