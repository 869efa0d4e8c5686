// Command nvidiaprep is the admin program of nvidiaprep. Today it runs the
// provisioning worker that the hookscript's post-start starts:
//
//	nvidiaprep provision <vmid>
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/coreos/go-systemd/v22/daemon"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/logging"
	"nvidiaprep/nvidiaprep/provision"
)

const usage = `usage: nvidiaprep <command> [arguments]

commands:
  provision <vmid>   install the NVIDIA user-space libraries of the loaded driver
                     into the running container <vmid> (post-start runs this in
                     the background; run it by hand to retry)
  help               this text

Configuration: /etc/nvidiaprep/nvidiaprep.toml (or $NVIDIAPREP_CONFIG), after
the cluster-wide /etc/pve/nvidiaprep.toml (or $NVIDIAPREP_CLUSTER_CONFIG).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	case "provision":
		return provisionCmd(args[1:], stderr)
	default:
		fmt.Fprintf(stderr, "nvidiaprep: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

func provisionCmd(args []string, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "nvidiaprep provision: want one vmid\n%s", usage)
		return 2
	}
	vmid, err := config.ParseVMID(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "nvidiaprep provision: %v\n", err)
		return 2
	}
	log := logging.New(stderr, os.Getenv("NVIDIAPREP_DEBUG") != "").With().Int("vmid", vmid).Str("phase", "provision").Logger()
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		log.Error().Msgf("CT %d: configuration: %v", vmid, err)
		return 1
	}
	w := provision.Worker{Config: cfg, VMID: vmid, Log: log, Status: func(s string) {
		daemon.SdNotify(false, "STATUS="+s)
	}}
	err = w.Run(context.Background())
	switch {
	case errors.Is(err, provision.ErrBusy):
		log.Info().Msgf("CT %d: another worker is provisioning it; leaving it to that one", vmid)
		return 0
	case err != nil:
		daemon.SdNotify(false, "STATUS=failed: "+err.Error())
		log.Error().Msg(err.Error())
		return 1
	}
	return 0
}
