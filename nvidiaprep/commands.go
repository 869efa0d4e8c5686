package main

import (
	"flag"
	"os"

	"nvidiaprep/nvidiaprep/buildinfo"
	"nvidiaprep/nvidiaprep/cli"
)

// newApp is the admin program's command table, wired to h. Each command's
// body lives in its own cmd_*.go file; a new flag is one line in Flags and
// one c.Bool/c.String in the body (package cli).
func newApp(h host) *cli.App {
	return &cli.App{
		Name:    "nvidiaprep",
		Version: buildinfo.String("nvidiaprep"),
		Geteuid: h.geteuid(),
		Footer: "Configuration: /etc/nvidiaprep/nvidiaprep.toml (or $NVIDIAPREP_CONFIG), after\n" +
			"the cluster-wide /etc/pve/nvidiaprep.toml (or $NVIDIAPREP_CLUSTER_CONFIG).\n" +
			"Manuals: nvidiaprep(8), nvidiaprep.toml(5), nvidiaprep-hook(8).\n",
		Commands: []*cli.Command{
			{
				Name: "enable", Args: "<vmid>", MinArgs: 1, MaxArgs: 1, Common: true, Root: true,
				Summary: "give a container GPUs: record [containers.<vmid>] and set its hookscript",
				Help: "Records the container's GPUs in [containers.<vmid>] of the node's configuration\n" +
					"(comments and other tables kept) and makes nvidiaprep's hook the container's\n" +
					"hookscript (pct set <vmid> --hookscript local:snippets/nvidiaprep-hook; without\n" +
					"pct, it prints that line). A hookscript the container already has is kept and\n" +
					"run first (chain). The container gets its GPUs, and its libraries, at its next\n" +
					"start.",
				Examples: []string{
					"nvidiaprep enable 101  # every GPU of the node; the libraries at each start",
					"nvidiaprep enable 101 --gpus 0 --required  # GPU 0 only; refuse to start without it",
					"nvidiaprep enable 102 --gpus GPU-8f6b2c1e,0000:41:00.0  # by UUID and PCI address",
					"nvidiaprep enable 103 --gpus all --install=false  # the container brings its own libraries",
				},
				JSONKeys: enableJSONKeys,
				Flags: func(fs *flag.FlagSet) {
					fs.String("gpus", "", "`LIST`: comma-separated GPU indexes, UUIDs or PCI addresses,\n\"all\" or \"none\" (nvidiaprep gpus lists them)")
					fs.Bool("required", false, "refuse to start the container without its GPUs")
					fs.Bool("install", true, "with =false: leave the container's user-space libraries alone\n(by default the loaded driver's are installed at its starts)")
					fs.Bool("force", false, "record GPUs this node does not have (a table meant for another node)")
					fs.Bool("dry-run", false, "print the table and the block it would give; change nothing")
					fs.Bool("adopt", false, "remove the hand-written NVIDIA lines that nvidiaprep supersedes from\n/etc/pve/lxc/<vmid>.conf (the diff is shown first; under Proxmox's config lock)")
				},
				Run: h.enableRun,
			},
			{
				Name: "disable", Args: "<vmid>", MinArgs: 1, MaxArgs: 1, Common: true, Root: true,
				Summary: "take nvidiaprep off a container: its table and its hookscript",
				Help: "Removes [containers.<vmid>] from the node's configuration and the container's\n" +
					"hookscript (pct set <vmid> --delete hookscript), or puts back the hookscript it\n" +
					"had before enable. Libraries installed in the container stay.",
				Examples: []string{"nvidiaprep disable 101"},
				JSONKeys: disableJSONKeys,
				Run:      h.disableRun,
			},
			{
				Name: "check", Args: "[FILE]", MaxArgs: 1, Common: true, Root: true,
				Summary: "check a configuration file as the hook would load it, before saving it",
				Help: "Loads the configuration as the hook would, against this node: its limits,\n" +
					"syntax, each container's table, its GPUs and chained hookscript. With FILE,\n" +
					"that file stands in for the node's file (--cluster: for the cluster's), so a\n" +
					"file can be checked before it is saved into /etc/pve, where it is live at\n" +
					"once. Each finding is FILE:LINE: KEY: severity: message. Exit status 1 when\n" +
					"a start would be refused.",
				Examples: []string{
					"nvidiaprep check",
					"nvidiaprep check /root/nvidiaprep.toml.new  # before cp to /etc/nvidiaprep/nvidiaprep.toml",
					"nvidiaprep check --cluster /root/cluster.toml  # before saving /etc/pve/nvidiaprep.toml",
				},
				JSONKeys: checkJSONKeys,
				Flags: func(fs *flag.FlagSet) {
					fs.Bool("cluster", false, "FILE stands in for the cluster-wide file, not the node's")
				},
				Run: h.checkRun,
			},
			{
				Name: "status", Args: "[<vmid>]", MaxArgs: 1, Common: true, Root: true,
				Summary: "the node's driver and GPUs, and each GPU container: state, libraries, last install",
				Help: "Shows the node's driver (configured, installed, loaded, a pending reboot, the\n" +
					"device nodes) and each container that uses the hookscript: running or stopped,\n" +
					"its GPUs, the user-space libraries installed in it and its last provisioning.\n" +
					"With <vmid>, that container alone in full, with the worker's current step\n" +
					"while it installs. The table fits the terminal (or $COLUMNS, else 80\n" +
					"columns); --wide prints every value whole.",
				Examples: []string{
					"nvidiaprep status",
					"nvidiaprep status 101  # one container, with the install's live step",
					"nvidiaprep status --json | jq '.containers[] | select(.skew)'",
				},
				JSONKeys: statusJSONKeys,
				Flags:    func(fs *flag.FlagSet) { fs.Bool("wide", false, "print long values whole instead of fitting the width") },
				Run:      h.statusRun,
			},
			{
				Name: "doctor", MaxArgs: 0, Common: true, Root: true,
				Summary: "check what breaks GPU containers; each problem with its fix",
				Help: "Checks what breaks GPU containers on this node and prints each problem with the\n" +
					"command that fixes it. Exit status 0 when all is well, 1 when something needs\n" +
					"fixing. Text is wrapped to the terminal (or $COLUMNS, else 80 columns).",
				Examples: []string{
					"nvidiaprep doctor",
					"nvidiaprep doctor --json | jq -r '.problems[].fix'",
				},
				JSONKeys: doctorJSONKeys,
				Flags:    func(fs *flag.FlagSet) { fs.Bool("wide", false, "one line per problem and fix, whatever the width") },
				Run:      h.doctorRun,
			},
			{
				Name: "gpus", MaxArgs: 0, Common: true, Root: true,
				Summary: "the node's GPUs (index, UUID, PCI address, model, memory, MIG) and their containers",
				Help: "Lists the node's GPUs with the selectors enable takes (index, UUID, PCI\n" +
					"address), the model, memory and MIG mode where the driver says (NVML), and the\n" +
					"containers whose configuration gives them each GPU.",
				Examples: []string{
					"nvidiaprep gpus",
					"nvidiaprep gpus --json | jq -r '.gpus[].uuid'",
				},
				JSONKeys: gpusJSONKeys,
				Flags:    func(fs *flag.FlagSet) { fs.Bool("wide", false, "print long values whole instead of fitting the width") },
				Run:      h.gpusRun,
			},
			{
				Name: "logs", Args: "<vmid>", MinArgs: 1, MaxArgs: 1, Common: true, Root: true,
				Summary: "the provisioning worker's log of a container (-f follows it)",
				Help: "Prints the log of the container's provisioning worker: the journal of\n" +
					"nvidiaprep-provision-<vmid>.service on a node run by systemd, else\n" +
					"<state>/log/<vmid>.log. Proxmox's task log of the start holds the hook's own\n" +
					"lines.",
				Examples: []string{
					"nvidiaprep logs 101",
					"nvidiaprep logs 101 -f  # follow it until Ctrl-C",
				},
				Flags: func(fs *flag.FlagSet) {
					fs.Bool("f", false, "follow: print new lines as they come, until interrupted")
					fs.Bool("follow", false, "the same as -f")
				},
				Run: h.logsRun,
			},
			{
				Name: "provision", Args: "<vmid>", MinArgs: 1, MaxArgs: 1, Root: true,
				Summary: "install the loaded driver's user-space libraries into a running container now",
				Help: "Installs the NVIDIA user-space libraries of the loaded driver into the running\n" +
					"container <vmid>. The hookscript's post-start runs this in the background;\n" +
					"run it by hand to retry after fixing what a failed install named.",
				Examples: []string{"nvidiaprep provision 101"},
				Run:      provisionCmd,
			},
			{
				Name: "kernel-installed", Args: "<kernel-release> [<image>]", MaxArgs: 2, Root: true,
				Summary: "check the driver's module for a kernel (the kernel packages' hooks run it)",
				Help: "Checks that the installed NVIDIA driver's DKMS module is built (and, with Secure\n" +
					"Boot, signed by an enrolled key) for a kernel, and says loudly, before any\n" +
					"reboot, when it is not: apt's output, the journal, /run/nvidiaprep/kernel-not-ready.\n" +
					"/etc/kernel/postinst.d/nvidiaprep and header_postinst.d run it after DKMS's own\n" +
					"hook; apt's DPkg::Post-Invoke runs it with --all. It exits 0 even when a kernel\n" +
					"lacks the module (a failing hook would leave the kernel package half-configured).",
				Examples: []string{
					"nvidiaprep kernel-installed 6.8.12-4-pve",
					"nvidiaprep kernel-installed --all  # every installed kernel; quiet when all have the module",
				},
				Flags: func(fs *flag.FlagSet) { fs.Bool("all", false, "check every installed kernel") },
				Run:   kernelInstalledCmd,
			},
			{
				Name: "host-driver", MaxArgs: 0, Root: true,
				Summary: "keep the node's driver at [driver] version (what the boot unit runs)",
				Help: "Keeps the node's NVIDIA driver at [driver] version: fast when it is loaded;\n" +
					"otherwise fetch, verify, install and load it, with no reboot unless a process\n" +
					"holds the GPU (it is named) or nouveau will not let go; a new driver that fails\n" +
					"to build or load is replaced by the old one again. From a terminal it shows\n" +
					"what it will change and asks first (--yes: it does not).\n" +
					"nvidiaprep-host-driver.service runs this at every boot, before the guests\n" +
					"start, and never asks (docs/driver-upgrades.md).",
				Examples: []string{
					"nvidiaprep host-driver  # from a terminal: shows what it will purge, install, rebuild and unload, and asks",
					"systemctl start nvidiaprep-host-driver.service && journalctl -u nvidiaprep-host-driver.service",
				},
				Flags: func(fs *flag.FlagSet) {
					fs.Bool("yes", false, "install without asking (from a terminal it shows its plan and asks\nfirst; the boot unit never asks)")
				},
				Run: hostDriverCmd,
			},
		},
	}
}

// geteuid is the user check of the commands that need root; tests set
// host.euid.
func (h host) geteuid() func() int {
	if h.euid != nil {
		return h.euid
	}
	return os.Geteuid
}
