// Package config loads nvidiaprep's configuration: the cluster file
// (/etc/pve/nvidiaprep.toml, or $NVIDIAPREP_CLUSTER_CONFIG), then the node's
// (/etc/nvidiaprep/nvidiaprep.toml, or $NVIDIAPREP_CONFIG), merged key by
// key, [containers.N] tables included; Config.Origins says which file and
// line set each container key. No file at all: the defaults.
//
// Invariants: an error confined to one [containers.N] table is in
// Config.Problems and refuses that container's start alone (ContainerError);
// any other error (an *Error naming file, line and key) refuses every start.
// Every file is held to Limits (size, nesting, decoding time), so that none
// can hold up a start. The keys, with an example: docs/configuration.md.
package config

import (
	"errors"
	"fmt"
	"nvidiaprep/nvidiaprep/gpusel"
	"path/filepath"
	"strconv"
	"time"
)

// File names and environment variables that Load uses.
const (
	// NodeFile is the node's configuration file.
	NodeFile = "/etc/nvidiaprep/nvidiaprep.toml"
	// ClusterFile is the cluster-wide file, read before the node's.
	ClusterFile = "/etc/pve/nvidiaprep.toml"
	// EnvNode, when set, names the node's file instead of NodeFile.
	EnvNode = "NVIDIAPREP_CONFIG"
	// EnvCluster, when set, names the cluster file instead of ClusterFile.
	EnvCluster = "NVIDIAPREP_CLUSTER_CONFIG"
)

// Accepted values of Driver.KernelModule and Driver.Reboot.
const (
	KernelModuleOpen        = "open"
	KernelModuleProprietary = "proprietary"
	KernelModuleAuto        = "auto"

	RebootNever = "never"
	RebootAuto  = "auto"
)

// Config is the configuration in effect: defaults, overridden by the files.
type Config struct {
	Paths     Paths
	Provision Provision
	Driver    Driver
	// Containers holds the containers that have a [containers.N] table, by
	// vmid. Use Container to look one up with defaults.
	Containers map[int]Container
	// Files are the files that were read, in the order they were read.
	Files []string
	// Problems are the errors confined to one container's table (Error.VMID
	// names it), or to a [containers.X] table whose X is no vmid (VMID 0,
	// a table that applies to no container), in the order read. The files
	// still load; ContainerError refuses the container's start.
	Problems []*Error
	// Origins says, for each container that has a table and each key its
	// tables set ("gpus", "strict", ...), where: one Origin for each file
	// that sets it, in the order read; the last is in effect. A key no file
	// sets has its default.
	Origins map[int]map[string][]Origin
}

// Origin is where a file sets a container's key.
type Origin struct {
	File  string
	Line  int
	Value string // as TOML would write it: ["0"], true, "local:snippets/x.sh"
}

// HasTable tells whether some file has a [containers.vmid] table; a
// container without one gets the defaults, every GPU among them.
func (c Config) HasTable(vmid int) bool {
	_, ok := c.Containers[vmid]
	return ok
}

// ContainerError is the first error in the container's tables (nil when
// none): its start must be refused, and the error names the file, the line
// and the key. Container(vmid) then holds only the keys that did load.
func (c Config) ContainerError(vmid int) error {
	for _, p := range c.Problems {
		if p.VMID == vmid {
			return p
		}
	}
	return nil
}

// Paths are the host paths the program touches. Each is absolute and clean,
// so that tests and unusual hosts can relocate them.
type Paths struct {
	LXC   string `toml:"lxc"`   // LXC configs: <lxc>/<vmid>/config
	Dev   string `toml:"dev"`   // device nodes
	Proc  string `toml:"proc"`  // procfs
	Sys   string `toml:"sys"`   // sysfs
	Cache string `toml:"cache"` // downloads and other re-creatable files
	State string `toml:"state"` // state that must survive reboots
	PVE   string `toml:"pve"`   // Proxmox's cluster file system: <pve>/lxc/<vmid>.conf, <pve>/storage.cfg
	// Root is where the host's own files are: its programs (dkms,
	// nvidia-uninstall), /etc/modprobe.d, /usr/src, /var/lib/nvidia, /run,
	// the storages' directories (snippets). Commands still run in the real
	// root.
	Root string `toml:"root"`
}

// Host is the host path p (absolute, such as "/var/lib/nvidia/log") below Root.
func (p Paths) Host(path string) string { return filepath.Join(p.Root, path) }

// LXCConfig is the path of the LXC config that Proxmox writes for a container.
func (p Paths) LXCConfig(vmid int) string {
	return filepath.Join(p.LXC, strconv.Itoa(vmid), "config")
}

// Provision controls how post-start provisions a container's user-space
// driver libraries.
type Provision struct {
	SystemdTimeout  time.Duration // wait this long for the container's systemd
	DpkgLockTimeout time.Duration // wait this long for the dpkg lock
	InstallTimeout  time.Duration // give up on an install after this long
	MaxConcurrent   int           // node-wide limit on concurrent installs, >= 1
}

// Driver says which NVIDIA driver the node should have: the host driver unit
// (nvidiaprep/hostdriver) installs it.
type Driver struct {
	Version      string `toml:"version"`       // e.g. "550.54.14"; "" means none configured
	Run          string `toml:"run"`           // the .run installer: an absolute path or an http(s) URL
	SHA256       string `toml:"sha256"`        // the installer's SHA-256 in hex; "" means unchecked
	KernelModule string `toml:"kernel_module"` // KernelModuleOpen, KernelModuleProprietary or KernelModuleAuto
	Reboot       string `toml:"reboot"`        // RebootNever or RebootAuto
	// PinWorkingKernel: when an installed kernel has no module (its
	// headers or its build are missing), pin the kernel that has one with
	// proxmox-boot-tool until the new one is ready. Off by default: a pin
	// keeps the node on an older kernel without its security fixes, and
	// outlives the problem on nodes the admin does not watch.
	PinWorkingKernel bool `toml:"pin_working_kernel"`
}

// Container is the configuration of one container.
type Container struct {
	GPUs     gpusel.Selection // which GPUs it gets
	Required bool             // whether it must not start without them
	Install  bool             // whether post-start provisions the user-space libraries
	// Chain is the container's own hookscript (a volume id such as
	// "local:snippets/mount-nfs.sh") that nvidiaprep's hook runs first, in
	// every phase, with the same arguments: Proxmox allows one hookscript
	// per guest, so enable keeps the admin's this way. "" for none.
	Chain string
	// Strict refuses the start when hand-written lines in the container's
	// config reach GPUs its selection does not give it (else a warning).
	Strict bool
	// NodeGID and NodeMode, when set, are the group (inside the container)
	// and mode of the container's device nodes, as Proxmox's devN: gid= and
	// mode= give them: the container's copies change, never the host's.
	NodeGID  *uint32
	NodeMode uint32 // 0: the host's mode
}

// Default is the configuration in effect when no file exists.
func Default() Config {
	return Config{
		Paths: Paths{
			LXC:   "/var/lib/lxc",
			Dev:   "/dev",
			Proc:  "/proc",
			Sys:   "/sys",
			Cache: "/var/cache/nvidiaprep",
			State: "/var/lib/nvidiaprep",
			PVE:   "/etc/pve",
			Root:  "/",
		},
		Provision: Provision{
			SystemdTimeout:  2 * time.Minute,
			DpkgLockTimeout: 5 * time.Minute,
			InstallTimeout:  15 * time.Minute,
			MaxConcurrent:   2,
		},
		Driver:     Driver{KernelModule: KernelModuleAuto, Reboot: RebootNever},
		Containers: map[int]Container{},
	}
}

// defaultContainer is the configuration of a container without a table.
func defaultContainer() Container {
	return Container{GPUs: gpusel.Every(), Install: true}
}

// Container returns the configuration of a container: its table, or the
// defaults (all GPUs, not required, install) when it has none.
func (c Config) Container(vmid int) Container {
	if ct, ok := c.Containers[vmid]; ok {
		return ct
	}
	return defaultContainer()
}

// File names a configuration file to read.
type File struct {
	Path     string // "" means no file
	Optional bool   // a missing file is skipped rather than an error
}

// Sources returns the files Load reads, in order: the cluster file, then the
// node's. getenv is os.LookupEnv in production.
func Sources(getenv func(string) (string, bool)) []File {
	source := func(env, def string) File {
		if p, ok := getenv(env); ok {
			return File{Path: p}
		}
		return File{Path: def, Optional: true}
	}
	return []File{source(EnvCluster, ClusterFile), source(EnvNode, NodeFile)}
}

// Load reads the configuration from the files that Sources names. Pass
// os.LookupEnv as getenv.
func Load(getenv func(string) (string, bool)) (Config, error) {
	return LoadFiles(Sources(getenv)...)
}

// LoadFiles reads the given files in order onto the defaults, within
// DefaultLimits; each file's keys override those of the files before it (see
// the package documentation).
func LoadFiles(files ...File) (Config, error) {
	return DefaultLimits().LoadFiles(files...)
}

// LoadFiles reads the given files in order onto the defaults, each held to
// lim.
func (lim Limits) LoadFiles(files ...File) (Config, error) {
	l := newLoader(lim)
	var read []string
	for _, f := range files {
		text, err := lim.read(f)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return Config{}, err
		}
		if err := l.add(f.Path, text); err != nil {
			return Config{}, err
		}
		read = append(read, f.Path)
	}
	cfg := l.config()
	cfg.Files = read
	return cfg, nil
}

// Error is a problem in a configuration file.
type Error struct {
	// VMID is the container whose table holds the error, in
	// Config.Problems; 0 otherwise.
	VMID int
	File string // the file's path
	Line int    // 1-based; 0 when unknown
	Key  string // dotted key, as in "containers.101.gpus"; "" when none applies
	Msg  string // what is wrong, and what would be accepted
	Err  error  // the underlying error, if any
}

func (e *Error) Error() string {
	s := e.File
	if e.Line > 0 {
		s += ":" + strconv.Itoa(e.Line)
	}
	if e.Key != "" {
		s += ": " + e.Key
	}
	return s + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Proxmox's range of vmids.
const (
	MinVMID = 100
	MaxVMID = 999999999
)

// ParseVMID parses a Proxmox vmid: decimal digits only, no sign, spaces or
// leading zero, from MinVMID to MaxVMID.
func ParseVMID(s string) (int, error) {
	const want = "want a number from 100 to 999999999, digits only"
	if s == "" {
		return 0, fmt.Errorf("invalid vmid %q: empty; %s", s, want)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("invalid vmid %q: not a decimal number; %s", s, want)
		}
	}
	if s[0] == '0' {
		return 0, fmt.Errorf("invalid vmid %q: leading zero; %s", s, want)
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < MinVMID || n > MaxVMID {
		return 0, fmt.Errorf("invalid vmid %q: out of range; %s", s, want)
	}
	return n, nil
}
