package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// idmapMount makes an idmapped bind mount of -src at -dst (the kernel's
// mount_setattr(MOUNT_ATTR_IDMAP), as `mount -o X-mount.idmap=` of
// util-linux 2.39 does): a file owned by uid u below src shows as owned by
// u + shift below dst, for u < range. It is the bed's closest substitute for
// the on-disk owner shift of a Proxmox unprivileged container (the root file
// system is the GPU machine's own, too large to copy and chown): seen from
// the container's user namespace (lxc.idmap = u 0 shift range) the files
// belong to root again. The mount is not recursive: submounts of src are
// not carried over, as with an overlay lower directory.
func idmapMount(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("idmap-mount", flag.ContinueOnError)
	src := fs.String("src", "", "directory to bind")
	dst := fs.String("dst", "", "mount point")
	shift := fs.Int("shift", 100000, "host id that id 0 becomes")
	size := fs.Int("range", 65536, "how many ids are mapped")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *src == "" || *dst == "" || *shift <= 0 || *size <= 0 {
		return errors.New("-src, -dst, a positive -shift and -range are needed")
	}
	// A user namespace with the map: a child holds it while its fd is
	// taken, then goes.
	child := exec.Command("sleep", "60")
	child.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: *shift, Size: *size}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: *shift, Size: *size}},
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("a user namespace for the id map: %w", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	userns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", child.Process.Pid))
	if err != nil {
		return fmt.Errorf("the id map's user namespace: %w", err)
	}
	defer userns.Close()

	tree, err := unix.OpenTree(unix.AT_FDCWD, *src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", *src, err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("mount_setattr(MOUNT_ATTR_IDMAP) on %s: %w (the file system may not support idmapped mounts)", *src, err)
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, *dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", *dst, err)
	}
	fmt.Fprintf(stdout, "idmapped bind mount of %s at %s: ids 0-%d shown as %d-%d\n", *src, *dst, *size-1, *shift, *shift+*size-1)
	return nil
}
