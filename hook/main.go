// Command nvidiaprep-hook is the Proxmox VE hookscript of GPU containers.
// Proxmox calls it as `nvidiaprep-hook <vmid> <phase>` on every start and
// stop (register it with `pct set <vmid> --hookscript local:snippets/nvidiaprep-hook`).
// It parses its arguments, wires the real host, runs the phase and maps the
// outcome to an exit status: 0 done, 1 failed (pre-start: the start is
// aborted), 2 wrong usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/buildinfo"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/fdguard"
	"nvidiaprep/nvidiaprep/gpucache"
	"nvidiaprep/nvidiaprep/hookself"
	"nvidiaprep/nvidiaprep/isolate"
	"nvidiaprep/nvidiaprep/logging"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/prestart"
)

const usage = `usage: nvidiaprep-hook <vmid> <phase>

Proxmox VE hookscript: gives the container the NVIDIA devices of this node.
phase is one of pre-start, post-start, pre-stop, post-stop.
Register it: nvidiaprep enable <vmid> (or pct set <vmid> --hookscript local:snippets/nvidiaprep-hook)
Configuration: /etc/nvidiaprep/nvidiaprep.toml (or $NVIDIAPREP_CONFIG),
after the cluster-wide /etc/pve/nvidiaprep.toml.
A container's own hookscript ([containers.N] chain) runs first, in every
phase; --no-chain before <vmid> runs nvidiaprep's part alone (the container
units' drop-in does, on the paths where Proxmox runs no hookscript).
`

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
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) == 1 && args[0] == "--version" {
		fmt.Fprintln(stdout, buildinfo.String("nvidiaprep-hook"))
		return 0
	}
	chain := true
	if len(args) > 0 && args[0] == "--no-chain" {
		chain, args = false, args[1:]
	}
	if len(args) != 2 {
		fmt.Fprintf(stderr, "nvidiaprep-hook: want 2 arguments, got %d\n%s", len(args), usage)
		return 2
	}
	vmid, err := config.ParseVMID(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep-hook: %v\n%s", err, usage)
		return 2
	}
	phase := args[1]
	switch phase {
	case "pre-start", "post-start", "pre-stop", "post-stop":
	default:
		fmt.Fprintf(stderr, "nvidiaprep-hook: %s\n%s", ctmsg.Sprintf(vmid, "unknown phase %q", phase), usage)
		return 2
	}
	starting := phase == "pre-start" || phase == "post-start"
	log := logging.New(stderr, os.Getenv("NVIDIAPREP_DEBUG") != "").With().Int("vmid", vmid).Str("phase", phase).Logger()
	if pid := hookself.AncestorHook("/proc", vmid); pid != 0 {
		log.Error().Msg(ctmsg.Sprintf(vmid, "nvidiaprep's hook for this container (pid %d) runs this one below it: the container's own chained hookscript ([containers.%d] chain) runs nvidiaprep's hook again, which would recurse without end: nothing is done. Make chain a script that does not run nvidiaprep's hook, or delete it", pid, vmid))
		return 1
	}
	if hookself.Recursing(os.LookupEnv, vmid) {
		log.Error().Msg(ctmsg.Sprintf(vmid, "nvidiaprep's hook was started, directly or not, by the container's own chained hookscript ([containers.%d] chain), which would run it again without end: nothing is done. Make chain a script that does not run nvidiaprep's hook, or delete it", vmid))
		return 1
	}
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		if !starting {
			// A stop never waits on nvidiaprep's configuration.
			log.Error().Err(err).Msg(ctmsg.Sprintf(vmid, "configuration: %v; its own hookscript (if any) is not run for %s: correct the file", err, phase))
			return 0
		}
		log.Error().Err(err).Msg(ctmsg.Sprintf(vmid, "configuration: %v; correct the file, then start the container again", err))
		return 1
	}
	if err := cfg.ContainerError(vmid); err != nil {
		// An error in this container's table is its own: the others start.
		if !starting {
			log.Error().Err(err).Msg(ctmsg.Sprintf(vmid, "its table in the configuration: %v; its own hookscript (if any) is not run for %s: correct the line", err, phase))
			return 0
		}
		log.Error().Err(err).Msg(ctmsg.Sprintf(vmid, "its table in the configuration: %v; only this container's start is refused: correct the line (`nvidiaprep check` checks a file before you save it), then start it again", err))
		return 1
	}
	var chainErr error
	if volid := cfg.Container(vmid).Chain; chain && volid != "" {
		chainErr = runChained(context.Background(), cfg.Paths.PVE, volid, vmid, phase, stdout, stderr)
		if chainErr != nil && phase == "pre-start" {
			log.Error().Err(chainErr).Msg(ctmsg.Sprintf(vmid, "its own hookscript failed in pre-start (%v), so the start is aborted, as it would be without nvidiaprep; fix it, or remove chain from [containers.%d]", chainErr, vmid))
			return 1
		}
		if chainErr != nil {
			log.Error().Err(chainErr).Msg(ctmsg.Sprintf(vmid, "its own hookscript failed in %s: %v", phase, chainErr))
		}
	}
	rc := 0
	switch phase {
	case "pre-start":
		rc = preStart(cfg, vmid, log)
	case "post-start":
		rc = postStart(cfg, vmid, log)
	}
	// pre-stop, post-stop: nothing of nvidiaprep's to undo (the LXC config
	// is regenerated at every start).
	if chainErr != nil {
		rc = 1
	}
	return rc
}

func preStart(cfg config.Config, vmid int, log zerolog.Logger) int {
	ct := cfg.Container(vmid)
	if !cfg.HasTable(vmid) {
		nameDefault(cfg, vmid, log)
	}
	req := prestart.Request{VMID: vmid, GPUs: ct.GPUs, Required: ct.Required, Install: ct.Install, Strict: ct.Strict, NodeGID: ct.NodeGID, NodeMode: ct.NodeMode}
	res, err := prestart.Run(realHost(cfg.Paths, vmid), req, log)
	if err != nil {
		log.Error().Err(err).Msg(ctmsg.Text(vmid, err))
		return 1
	}
	if len(res.GPUs) > 0 {
		names := make([]string, len(res.Nodes))
		for i, n := range res.Nodes {
			names[i] = n.Name
		}
		log.Info().Msg(ctmsg.Sprintf(vmid, "driver %s, GPUs %s: %s", res.Version, gpuList(res.GPUs), strings.Join(names, " ")))
	}
	return 0
}

// nameDefault says, in the task log, that a container without a table gets
// every GPU, and names the tables that apply to no container (a mistyped
// vmid is the likely reason it has none).
func nameDefault(cfg config.Config, vmid int, log zerolog.Logger) {
	files := "no configuration file"
	if len(cfg.Files) > 0 {
		files = strings.Join(cfg.Files, " or ")
	}
	log.Info().Msg(ctmsg.Sprintf(vmid, "no [containers.%d] table in %s, so it gets every GPU of the node (the default); `nvidiaprep enable %d --gpus LIST` records a choice", vmid, files, vmid))
	for _, p := range cfg.Problems {
		if p.VMID == 0 {
			log.Warn().Msg(ctmsg.Sprintf(vmid, "%v: this table applies to no container", p))
		}
	}
}

// realHost wires the host's paths and nvidia-modprobe. The GPUs come from
// procfs: the hook runs without cgo, so neither NVML nor liblxc can keep a
// container from starting; what only NVML knows is in the GPU cache the
// admin program keeps (package gpucache).
func realHost(p config.Paths, vmid int) prestart.Host {
	h := prestart.Host{LXCConfig: p.LXCConfig(vmid), Dev: p.Dev, Proc: p.Proc, Sys: p.Sys,
		GPUs: nvdev.ProcGPUs{Proc: p.Proc}, DriverCache: driverrun.Cache{Dir: p.Cache}, PVE: p.PVE,
		GPUCache: gpucache.File{State: p.State, Proc: p.Proc, Sys: p.Sys}}
	if p.Proc == "/proc" && p.Dev == "/dev" {
		if path := nvdev.FindModprobe(); path != "" {
			h.Modprobe = nvdev.ExecModprobe{Path: path, Timeout: modprobeTimeout}
		}
	}
	return h
}

// modprobeTimeout bounds one nvidia-modprobe run: a start must never hang
// on it.
const modprobeTimeout = 30 * time.Second

func gpuList(gpus []nvdev.GPU) string {
	parts := make([]string, len(gpus))
	for i, g := range gpus {
		parts[i] = fmt.Sprintf("%d (%s)", g.Index, g.PCIBusID)
	}
	return strings.Join(parts, ", ")
}
