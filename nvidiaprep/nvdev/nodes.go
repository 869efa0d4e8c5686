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

	"nvidiaprep/nvidiaprep/fsutil"
)

const (
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

// Finder finds, and creates when missing, the device nodes a container needs
// (the list is ExpectedNodes'). Numbers come from stat() of the nodes and
// from /proc/devices at the moment of the call, never from constants, except
// the driver's fixed minors.
type Finder struct {
	Dev, Proc, Sys string
	// Modprobe loads missing modules (uvm, modeset); nil skips that step.
	// Only wire it for the real host: it acts on the real /dev.
	Modprobe Modprober
	// Nodes stats and makes the nodes; nil: the real host's (RealNodes).
	Nodes NodeFS
	// Warn hears about nodes that stay absent and why.
	Warn func(msg string)
}

// ReadMajors reads <proc>/devices: the one reader of it. A command reads it
// once and passes the result along.
func ReadMajors(proc string) (Majors, error) {
	file, err := fsutil.OpenRegular(filepath.Join(proc, procDevicesRel))
	if err != nil {
		return nil, fmt.Errorf("reading device majors: %w", err)
	}
	defer file.Close()
	return ParseDevices(file)
}

// Majors reads <proc>/devices.
func (f Finder) Majors() (Majors, error) { return ReadMajors(f.Proc) }

// ModesetLoaded tells whether the nvidia_modeset module is loaded
// (<sys>/module/nvidia_modeset exists): then containers get nvidia-modeset.
func ModesetLoaded(sys string) bool {
	_, err := os.Stat(filepath.Join(sys, "module/nvidia_modeset"))
	return err == nil
}

// ControlNodes returns nvidiactl, nvidia-uvm, nvidia-uvm-tools and, when the
// nvidia_modeset module is loaded, nvidia-modeset. Missing modules are loaded
// through Modprobe first (then /proc/devices is read again, and the fresh
// majors returned); missing nodes of loaded modules are created.
func (f Finder) ControlNodes(majors Majors) ([]Node, Majors, error) {
	if !ExpectedNodes(f.Dev, Want{Majors: majors})[0].Registered {
		return nil, majors, errors.New("/proc/devices lists no nvidia or nvidiactl major: the driver is not loaded")
	}
	if _, ok := majors["nvidia-uvm"]; !ok && f.Modprobe != nil {
		if err := f.Modprobe.Modprobe("-u", "-c=0"); err != nil {
			f.warn(fmt.Sprintf("loading nvidia-uvm with nvidia-modprobe failed: %v", err))
		} else if fresh, err := f.Majors(); err == nil {
			majors = fresh
		}
	}
	var nodes []Node
	uvmWarned := false
	for _, e := range ExpectedNodes(f.Dev, Want{Majors: majors, Modeset: f.modesetLoaded()}) {
		switch {
		case e.Kind == KindUVM && !e.Registered:
			if !uvmWarned {
				f.warn("nvidia-uvm is not loaded, so CUDA will not work in containers: load it with `nvidia-modprobe -u -c=0` (or `modprobe nvidia-uvm`)")
				uvmWarned = true
			}
			continue
		case !e.Registered:
			return nil, majors, errors.New("/proc/devices lists no nvidia or nvidiactl major: the driver is not loaded")
		}
		n, err := f.ensure(e)
		if err != nil {
			return nil, majors, err
		}
		nodes = append(nodes, n)
	}
	return nodes, majors, nil
}

func (f Finder) modesetLoaded() bool {
	if ModesetLoaded(f.Sys) {
		return true
	}
	if f.Modprobe == nil {
		return false
	}
	if err := f.Modprobe.Modprobe("-m"); err != nil {
		return false // a driver without modeset: nothing to give
	}
	return ModesetLoaded(f.Sys)
}

// GPUNodes returns /dev/nvidia<minor> for each GPU, created when missing.
func (f Finder) GPUNodes(majors Majors, gpus []GPU) ([]Node, error) {
	return f.ensureKind(ExpectedNodes(f.Dev, Want{Majors: majors, GPUs: gpus}), KindGPU,
		"/proc/devices lists no nvidia major: the driver is not loaded")
}

// CapNodes returns the nvidia-caps nodes that MIG needs for the given GPUs:
// for each GPU in MIG mode, the access nodes of its GPU and compute instances
// (<proc>/driver/nvidia/capabilities/gpu<minor>/mig/gi*/[ci*/]access) and the
// MIG monitor capability. GPUs without MIG need none.
func (f Finder) CapNodes(majors Majors, gpus []GPU) ([]Node, error) {
	caps, err := f.Caps(gpus)
	if err != nil || len(caps) == 0 {
		return nil, err
	}
	return f.ensureKind(ExpectedNodes(f.Dev, Want{Majors: majors, GPUs: gpus, Caps: caps}), KindCap,
		"GPUs are in MIG mode but /proc/devices lists no nvidia-caps major")
}

// Caps reads the MIG capabilities that the given GPUs need (see CapNodes);
// none for GPUs without MIG.
func (f Finder) Caps(gpus []GPU) ([]Cap, error) {
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
	caps := make([]Cap, 0, len(files))
	for _, file := range files {
		minor, mode, err := readCapAccess(file)
		if err != nil {
			return nil, err
		}
		caps = append(caps, Cap{Minor: minor, Mode: mode})
	}
	return caps, nil
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

// ensureKind ensures the expected nodes of kind, or fails with notLoaded
// when the driver registered no major for them.
func (f Finder) ensureKind(expected []Expected, kind Kind, notLoaded string) ([]Node, error) {
	var nodes []Node
	for _, e := range expected {
		if e.Kind != kind {
			continue
		}
		if !e.Registered {
			return nil, errors.New(notLoaded)
		}
		n, err := f.ensure(e)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// ensure makes sure e exists with its numbers; a missing node, or one left
// with stale numbers by an earlier driver, is (re)created atomically, as
// nvidia-modprobe does.
func (f Finder) ensure(e Expected) (Node, error) {
	nfs := OrReal(f.Nodes)
	st, err := nfs.Stat(e.Path)
	if err == nil && st.Is(e.Node) {
		return e.Node, nil
	}
	if err != nil && !isNotExist(err) {
		return Node{}, fmt.Errorf("checking %s: %w", e.Path, err)
	}
	if err := nfs.Mknod(e.Path, e.Major, e.Minor, e.Mode); err != nil {
		return Node{}, err
	}
	return e.Node, nil
}

func (f Finder) warn(msg string) {
	if f.Warn != nil {
		f.Warn(msg)
	}
}
