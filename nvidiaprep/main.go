// Command nvidiaprep is the admin program of nvidiaprep: it runs the
// provisioning worker that the hookscript's post-start starts, and the
// commands an admin uses (the table in commands.go; package cli gives them
// their conventions).
package main

import (
	"fmt"
	"io"
	"os"

	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/fdguard"
	"nvidiaprep/nvidiaprep/isolate"
)

func main() {
	// Nothing this process inherited crosses into what it starts (a
	// container's commands above all); on failure, that cannot be promised.
	if err := fdguard.CloseOnExec(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: marking inherited descriptors close-on-exec: %v\n", os.Args[0], err)
		os.Exit(1)
	}
	// A child that reads a container's files (ctfs, through isolate) runs
	// here and exits.
	isolate.Serve(ctfs.Ops())
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return newApp(realHost()).Run(args, stdout, stderr)
}
