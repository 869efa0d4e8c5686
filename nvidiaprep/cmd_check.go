package main

import (
	"fmt"
	"io"

	"nvidiaprep/nvidiaprep/cfgcheck"
	"nvidiaprep/nvidiaprep/config"
)

// checkCmd is `nvidiaprep check [--cluster] [--json] [FILE]`.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	var file string
	cluster, asJSON := false, false
	for _, a := range args {
		switch {
		case a == "--cluster":
			cluster = true
		case a == "--json":
			asJSON = true
		case file == "" && a != "" && a[0] != '-':
			file = a
		default:
			fmt.Fprintf(stderr, "nvidiaprep check: unexpected argument %q\nusage: nvidiaprep check [--cluster] [--json] [FILE]\n", a)
			return 2
		}
	}
	return realHost().check(file, cluster, asJSON, stdout, stderr)
}

// check loads the configuration as the hook would, with file (when not "")
// in place of the node's file, or of the cluster's when asCluster, and
// checks it against this node. It prints each finding as
// "FILE:LINE: KEY: severity: message" (or the report as JSON) and returns
// the exit status: 0 when no finding is an error, 1 otherwise.
func (h host) check(file string, asCluster, asJSON bool, stdout, stderr io.Writer) int {
	files := config.Sources(h.getenv)
	if file != "" {
		i := 1
		if asCluster {
			i = 0
		}
		files[i] = config.File{Path: file}
	}
	r := cfgcheck.Check(cfgcheck.Options{Files: files, GPUs: cfgcheck.NodeGPUs})
	if asJSON {
		if err := writeJSON(stdout, r); err != nil {
			fmt.Fprintf(stderr, "nvidiaprep check: %v\n", err)
		}
	} else {
		for _, f := range r.Findings {
			fmt.Fprintln(stdout, f)
		}
		if r.OK() {
			fmt.Fprintf(stdout, "%s: loads as the hook would load it.\n", describeFiles(r.Files))
		}
	}
	if !r.OK() {
		return 1
	}
	return 0
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
