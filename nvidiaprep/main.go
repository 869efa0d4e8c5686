// Command nvidiaprep is the admin program of nvidiaprep: it runs the
// provisioning worker that the hookscript's post-start starts, and the
// commands an admin uses (see usage).
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// command is one subcommand: its name, a line of help, and its body, which
// gets the arguments after the name and returns the exit status.
type command struct {
	name, args, help string
	run              func(args []string, stdout, stderr io.Writer) int
}

// commands lists the subcommands in the order help shows them. Each lives
// in its own cmd_*.go file.
func commands() []command {
	return []command{
		{"provision", "<vmid>", "install the NVIDIA user-space libraries of the loaded driver into\nthe running container <vmid> (post-start runs this in the background;\nrun it by hand to retry)", provisionCmd},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: nvidiaprep <command> [arguments]\n\ncommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %s %s\n", c.name, c.args)
		for _, l := range strings.Split(c.help, "\n") {
			fmt.Fprintf(&b, "      %s\n", l)
		}
	}
	b.WriteString("  help\n      this text\n\n")
	b.WriteString("Configuration: /etc/nvidiaprep/nvidiaprep.toml (or $NVIDIAPREP_CONFIG), after\nthe cluster-wide /etc/pve/nvidiaprep.toml (or $NVIDIAPREP_CLUSTER_CONFIG).\n")
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "nvidiaprep: unknown command %q\n%s", args[0], usage())
	return 2
}
