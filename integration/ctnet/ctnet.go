// Package ctnet lets a test serve a container that has no network: it
// opens a listening socket inside the container's network namespace, from
// the test process, so that programs in the container reach the test's
// server at an address of their own loopback (a test bed's containers get
// lxc.net.0.type = empty: a namespace with only lo).
package ctnet

import (
	"fmt"
	"net"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Listen opens a TCP listener on addr (such as "127.0.0.1:8080") in the
// network namespace of process pid (a container's init). The socket stays
// in that namespace for its whole life while the test process serves it
// from its own; it dies with the namespace, so listen again after a
// container restart. Needs root.
func Listen(pid int, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The namespace switch is per thread: lock this goroutine to its
		// thread, and let the thread die with it unless it returned home.
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: fmt.Errorf("ctnet: %w", err)}
			return
		}
		defer home.Close()
		target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			done <- result{err: fmt.Errorf("ctnet: network namespace of pid %d: %w", pid, err)}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("ctnet: entering the network namespace of pid %d: %w", pid, err)}
			return
		}
		l, err := net.Listen("tcp", addr)
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		if err != nil {
			err = fmt.Errorf("ctnet: listening on %s in the network namespace of pid %d: %w", addr, pid, err)
		}
		done <- result{l, err}
	}()
	r := <-done
	return r.l, r.err
}
