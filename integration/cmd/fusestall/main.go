// Command fusestall is a FUSE server that never answers: it mounts a FUSE
// file system at a directory through /dev/fuse, answers the kernel's INIT,
// then reads every later request (a lookup, a getattr, a statfs) and never
// replies. A request the server has read is waited for uninterruptibly
// (fs/fuse/dev.c request_wait_answer: once it is no longer pending, not
// even SIGKILL ends the wait), so whoever touches the mount, the host
// included, hangs until the connection is aborted or the server dies. It is
// what a hostile privileged container with Proxmox's `features: fuse=1`
// can do; tests run it inside one. It builds static (CGO_ENABLED=0).
//
//	fusestall <directory>
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// FUSE's wire format (include/uapi/linux/fuse.h).
const (
	opInit       = 26
	inHeaderLen  = 40 // fuse_in_header
	outHeaderLen = 16 // fuse_out_header
	initOutLen   = 64 // fuse_init_out, protocol 7.36
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: fusestall <directory>")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "fusestall:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/fuse: %w", err)
	}
	opts := "fd=" + strconv.Itoa(fd) + ",rootmode=40000,user_id=0,group_id=0,allow_other"
	if err := unix.Mount("fusestall", dir, "fuse.fusestall", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("mounting at %s: %w", dir, err)
	}
	fmt.Println("mounted", dir)
	buf := make([]byte, 1<<20+4096)
	for {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			return fmt.Errorf("reading /dev/fuse: %w", err)
		}
		if n < inHeaderLen {
			continue
		}
		if binary.LittleEndian.Uint32(buf[4:8]) != opInit {
			continue // read, and never answered
		}
		unique := binary.LittleEndian.Uint64(buf[8:16])
		major := binary.LittleEndian.Uint32(buf[inHeaderLen:])
		if err := answerInit(fd, unique, major); err != nil {
			return err
		}
	}
}

// answerInit accepts the kernel's protocol 7.x at minor 36.
func answerInit(fd int, unique uint64, major uint32) error {
	out := make([]byte, outHeaderLen+initOutLen)
	binary.LittleEndian.PutUint32(out[0:], uint32(len(out)))
	binary.LittleEndian.PutUint64(out[8:], unique)
	b := out[outHeaderLen:]
	binary.LittleEndian.PutUint32(b[0:], 7)      // major
	binary.LittleEndian.PutUint32(b[4:], 36)     // minor
	binary.LittleEndian.PutUint32(b[8:], 0)      // max_readahead
	binary.LittleEndian.PutUint32(b[12:], 0)     // flags
	binary.LittleEndian.PutUint16(b[16:], 12)    // max_background
	binary.LittleEndian.PutUint16(b[18:], 9)     // congestion_threshold
	binary.LittleEndian.PutUint32(b[20:], 1<<17) // max_write
	binary.LittleEndian.PutUint32(b[24:], 1)     // time_gran
	if major != 7 {
		return fmt.Errorf("the kernel speaks FUSE %d, not 7", major)
	}
	if _, err := unix.Write(fd, out); err != nil {
		return fmt.Errorf("answering INIT: %w", err)
	}
	return nil
}
