// Command holdlock holds an fcntl write lock on a file for a while, as apt
// and dpkg hold /var/lib/dpkg/lock-frontend, so tests can make a container
// look busy with apt. It builds static (CGO_ENABLED=0) to run in containers.
// Once it holds the lock it says so: a "holding" line on stdout, and READY=1
// to systemd when it runs as a Type=notify unit, so that a container's boot
// (and a test) is done only when the lock is held.
//
//	holdlock <file> <seconds>
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: holdlock <file> <seconds>")
		os.Exit(2)
	}
	secs, err := strconv.Atoi(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdlock:", err)
		os.Exit(2)
	}
	f, err := os.OpenFile(os.Args[1], os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdlock:", err)
		os.Exit(1)
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
		fmt.Fprintln(os.Stderr, "holdlock:", err)
		os.Exit(1)
	}
	fmt.Printf("holding %s for %ds\n", os.Args[1], secs)
	daemon.SdNotify(false, daemon.SdNotifyReady)
	time.Sleep(time.Duration(secs) * time.Second)
}
