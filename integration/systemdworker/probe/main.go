// Command probe exercises package launch inside a systemd-booted test
// container. It is built with CGO_ENABLED=0, so that the static binary runs
// in any container root file system.
//
//	probe launch <vmid> <argv...>   launch.Start the job (Env PROBE_ENV=1,
//	                                LogDir /var/log/probe), print its sentence
//	probe work <seconds>            act as a worker: STATUS=step one, sleep,
//	                                STATUS=step two, check PROBE_ENV, "work done"
//	probe fail                      STATUS=failed: boom, exit 1
package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"nvidiaprep/nvidiaprep/launch"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: probe launch <vmid> <argv...> | work <seconds> | fail")
		return 2
	}
	switch args[0] {
	case "launch":
		if len(args) < 3 {
			fmt.Fprintln(os.Stderr, "probe launch: want <vmid> <argv...>")
			return 2
		}
		vmid, err := strconv.Atoi(args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe launch: vmid: %v\n", err)
			return 2
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := launch.Start(ctx, launch.Job{VMID: vmid, Argv: args[2:], Env: []string{"PROBE_ENV=1"}, LogDir: "/var/log/probe"})
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe launch: %v\n", err)
			return 1
		}
		fmt.Println(s)
		return 0
	case "work":
		secs := 1.0
		if len(args) > 1 {
			f, err := strconv.ParseFloat(args[1], 64)
			if err != nil {
				fmt.Fprintf(os.Stderr, "probe work: seconds: %v\n", err)
				return 2
			}
			secs = f
		}
		notify("STATUS=step one")
		fmt.Printf("work started, pid %d, sleeping %gs\n", os.Getpid(), secs)
		time.Sleep(time.Duration(secs * float64(time.Second)))
		notify("STATUS=step two")
		if !slices.Contains(os.Environ(), "PROBE_ENV=1") {
			fmt.Println("work: PROBE_ENV=1 missing from the environment")
			return 3
		}
		fmt.Println("work done")
		return 0
	case "fail":
		notify("STATUS=failed: boom")
		fmt.Println("work failed: boom")
		return 1
	default:
		fmt.Fprintf(os.Stderr, "probe: unknown mode %q\n", args[0])
		return 2
	}
}

// notify sends a state to systemd and says on stderr when it could not.
func notify(state string) {
	if ok, err := daemon.SdNotify(false, state); !ok || err != nil {
		fmt.Fprintf(os.Stderr, "probe: sd_notify %q: sent %v, %v\n", state, ok, err)
	}
}
