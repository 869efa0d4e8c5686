// Command nvidiaprep is the admin program of nvidiaprep: it runs the
// provisioning worker that the hookscript's post-start starts, and the
// commands an admin uses (the table in commands.go; package cli gives them
// their conventions).
package main

import (
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	return newApp(realHost()).Run(args, stdout, stderr)
}
