package nvdev

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/fsutil"
)

// Fixed numbers of the NVIDIA driver (see shared/reference/nvidia.md).
const (
	nvidiaMajor    = 195
	ctlMinor       = 255
	modesetMinor   = 254
	uvmMinor       = 0
	uvmToolsMinor  = 1
	nodeMode       = 0o666
	procDevicesRel = "devices"
)

// Node is a character device node on the host.
type Node struct {
	Name  string // below the dev root: "nvidia0", "nvidia-caps/nvidia-cap1"
	Path  string // host path: <dev>/<Name>
	Major uint32
	Minor uint32
}

// Modprober runs nvidia-modprobe with args (e.g. "-u", "-c=0"): it loads a
// driver module and creates its device nodes, as the driver's own tools do.
type Modprober interface {
	Modprobe(args ...string) error
}

// Finder finds, and creates when missing, the device nodes a container needs.
// Numbers come from stat() of the nodes and from /proc/devices at the moment
// of the call, never from constants, except the driver's fixed minors.
type Finder struct {
	Dev, Proc, Sys string
	// Modprobe loads missing modules (uvm, modeset); nil skips that step.
	// Only wire it for the real host: it acts on the real /dev.
	Modprobe Modprober
	// Warn hears about nodes that stay absent and why.
	Warn func(msg string)
}

// Majors reads <proc>/devices.
func (f Finder) Majors() (Majors, error) {
	file, err := fsutil.OpenRegular(filepath.Join(f.Proc, procDevicesRel))
	if err != nil {
		return nil, fmt.Errorf("reading device majors: %w", err)
	}
	defer file.Close()
	return ParseDevices(file)
}

// ControlNodes returns nvidiactl, nvidia-uvm, nvidia-uvm-tools and, when the
// nvidia_modeset module is loaded, nvidia-modeset. Missing modules are loaded
// through Modprobe first; missing nodes of loaded modules are created.
func (f Finder) ControlNodes(majors Majors) ([]Node, Majors, error) {
	ctl, ok := majors["nvidiactl"]
	if !ok {
		ctl = majors["nvidia"]
	}
	if ctl == 0 {
		return nil, majors, errors.New("/proc/devices lists no nvidia or nvidiactl major: the driver is not loaded")
	}
	want := []Node{{Name: "nvidiactl", Major: ctl, Minor: ctlMinor}}

	uvm, ok := majors["nvidia-uvm"]
	if !ok && f.Modprobe != nil {
		if err := f.Modprobe.Modprobe("-u", "-c=0"); err != nil {
			f.warn(fmt.Sprintf("loading nvidia-uvm with nvidia-modprobe failed: %v", err))
		} else if fresh, err := f.Majors(); err == nil {
			majors = fresh
			uvm, ok = majors["nvidia-uvm"]
		}
	}
	if ok {
		want = append(want, Node{Name: "nvidia-uvm", Major: uvm, Minor: uvmMinor},
			Node{Name: "nvidia-uvm-tools", Major: uvm, Minor: uvmToolsMinor})
	} else {
		f.warn("nvidia-uvm is not loaded, so CUDA will not work in containers: load it with `nvidia-modprobe -u -c=0` (or `modprobe nvidia-uvm`)")
	}

	if f.modesetLoaded() {
		want = append(want, Node{Name: "nvidia-modeset", Major: ctl, Minor: modesetMinor})
	}
	nodes := make([]Node, 0, len(want))
	for _, n := range want {
		n, err := f.ensure(n, nodeMode)
		if err != nil {
			return nil, majors, err
		}
		nodes = append(nodes, n)
	}
	return nodes, majors, nil
}

func (f Finder) modesetLoaded() bool {
	path := filepath.Join(f.Sys, "module/nvidia_modeset")
	if _, err := os.Stat(path); err == nil {
		return true
	}
	if f.Modprobe == nil {
		return false
	}
	if err := f.Modprobe.Modprobe("-m"); err != nil {
		return false // a driver without modeset: nothing to give
	}
	_, err := os.Stat(path)
	return err == nil
}

// GPUNodes returns /dev/nvidia<minor> for each GPU, created when missing.
func (f Finder) GPUNodes(majors Majors, gpus []GPU) ([]Node, error) {
	major, ok := majors["nvidia"]
	if !ok {
		return nil, errors.New("/proc/devices lists no nvidia major: the driver is not loaded")
	}
	nodes := make([]Node, 0, len(gpus))
	for _, g := range gpus {
		n, err := f.ensure(Node{Name: "nvidia" + strconv.Itoa(g.Minor), Major: major, Minor: uint32(g.Minor)}, nodeMode)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// CapNodes returns the nvidia-caps nodes that MIG needs for the given GPUs:
// for each GPU in MIG mode, the access nodes of its GPU and compute instances
// (<proc>/driver/nvidia/capabilities/gpu<minor>/mig/gi*/[ci*/]access) and the
// MIG monitor capability. GPUs without MIG need none.
func (f Finder) CapNodes(majors Majors, gpus []GPU) ([]Node, error) {
	capsRoot := filepath.Join(f.Proc, "driver/nvidia/capabilities")
	var files []string
	for _, g := range gpus {
		mig := filepath.Join(capsRoot, "gpu"+strconv.Itoa(g.Minor), "mig")
		gi, _ := filepath.Glob(filepath.Join(mig, "gi*", "access"))
		ci, _ := filepath.Glob(filepath.Join(mig, "gi*", "ci*", "access"))
		files = append(files, gi...)
		files = append(files, ci...)
	}
	if len(files) == 0 {
		return nil, nil
	}
	files = append(files, filepath.Join(capsRoot, "mig/monitor"))
	major, ok := majors["nvidia-caps"]
	if !ok {
		return nil, errors.New("GPUs are in MIG mode but /proc/devices lists no nvidia-caps major")
	}
	var nodes []Node
	for _, file := range files {
		minor, mode, err := readCapAccess(file)
		if err != nil {
			return nil, err
		}
		n, err := f.ensure(Node{Name: "nvidia-caps/nvidia-cap" + strconv.Itoa(int(minor)), Major: major, Minor: minor}, mode)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func readCapAccess(path string) (minor, mode uint32, err error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return 0, 0, fmt.Errorf("reading MIG capability: %w", err)
	}
	defer f.Close()
	minor, mode, err = ParseCapAccess(f)
	if err != nil {
		return 0, 0, fmt.Errorf("reading MIG capability %s: %w", path, err)
	}
	return minor, mode, nil
}

// ParseCapAccess reads a capability "access" file: "DeviceFileMinor: N" and
// "DeviceFileMode: M" (decimal, e.g. 256 = 0400).
func ParseCapAccess(r io.Reader) (minor, mode uint32, err error) {
	mode = 0o444
	found := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), ":")
		n, convErr := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		switch strings.TrimSpace(key) {
		case "DeviceFileMinor":
			if convErr != nil {
				return 0, 0, fmt.Errorf("bad DeviceFileMinor %q", value)
			}
			minor, found = uint32(n), true
		case "DeviceFileMode":
			if convErr == nil {
				mode = uint32(n) & 0o777
			}
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !found {
		return 0, 0, errors.New("no DeviceFileMinor line")
	}
	return minor, mode, nil
}

// ensure makes sure n exists with its numbers; a missing node, or one left
// with stale numbers by an earlier driver, is (re)created atomically, as
// nvidia-modprobe does.
func (f Finder) ensure(n Node, mode uint32) (Node, error) {
	n.Path = filepath.Join(f.Dev, n.Name)
	var st unix.Stat_t
	err := unix.Stat(n.Path, &st)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR &&
		unix.Major(st.Rdev) == n.Major && unix.Minor(st.Rdev) == n.Minor {
		return n, nil
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return Node{}, fmt.Errorf("checking %s: %w", n.Path, err)
	}
	if err := makeNode(n.Path, n.Major, n.Minor, mode); err != nil {
		return Node{}, err
	}
	return n, nil
}

func makeNode(path string, major, minor, mode uint32) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	tmp := fmt.Sprintf("%s.nvidiaprep-%d", path, os.Getpid())
	_ = os.Remove(tmp)
	if err := unix.Mknod(tmp, unix.S_IFCHR|mode, int(unix.Mkdev(major, minor))); err != nil {
		return fmt.Errorf("creating %s (%d:%d): %w", path, major, minor, err)
	}
	if err := os.Chmod(tmp, os.FileMode(mode)); err != nil { // mknod honours the umask
		os.Remove(tmp)
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}

func (f Finder) warn(msg string) {
	if f.Warn != nil {
		f.Warn(msg)
	}
}
