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
		{"host-driver", "[--yes]", "keep the node's NVIDIA driver at [driver] version: fast when it is\nloaded; otherwise fetch, verify, install and load it (no reboot unless\na process holds the GPU or nouveau will not let go; docs/driver-upgrades.md).\nAt a terminal it shows its plan and asks first (--yes: do not ask)\n(nvidiaprep-host-driver.service runs this at every boot)", hostDriverCmd},
		{"enable", "<vmid> [--gpus LIST] [--required] [--install=false]", "record the container's GPUs in [containers.<vmid>] of the node's\nconfiguration (comments and other tables kept) and set its hookscript\n(pct set <vmid> --hookscript local:snippets/nvidiaprep-hook; without pct,\nprint it). LIST: comma-separated GPU indexes, UUIDs or PCI bus ids, all\nor none; --required: refuse to start without them; --install=false: leave\nits user-space libraries alone", enableCmd},
		{"disable", "<vmid>", "remove [containers.<vmid>] from the node's configuration and the\ncontainer's hookscript (pct set <vmid> --delete hookscript)", disableCmd},
		{"status", "[--json]", "the node's driver (configured, installed, loaded, reboot pending,\ndevice nodes) and each container that uses the hookscript (GPUs,\nuser-space version, last provisioning: outcome, when, how long)", statusCmd},
		{"doctor", "[--json]", "check what breaks GPU containers and print each problem with its fix;\nexit status 0 when all is well, 1 when something needs fixing", doctorCmd},
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
