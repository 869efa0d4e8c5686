package installstate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/prestart"
)

// The CDI spec nvidiaprep keeps inside a container (nvidiaprep/cdispec
// renders it; post-start and the worker ask here whether it is current).
// /etc/cdi, not /var/run/cdi: it must outlive the container's restarts
// (a tmpfs there would be empty at every start), and CDI does not scan
// subdirectories; its name is NVIDIA's own, so that a user's nvidia-ctk
// spec of the same devices is moved aside (SpecBackupPath, a name CDI does
// not read) rather than left to define the same devices twice.
const (
	SpecDir        = "/etc/cdi"
	SpecPath       = SpecDir + "/nvidia.yaml"
	SpecBackupPath = SpecPath + ".before-nvidiaprep"
)

// specHeaderPrefix starts the first line of every spec nvidiaprep writes;
// the rest of that line is its key.
const specHeaderPrefix = "# nvidiaprep CDI spec, key "

// specFormat is bumped when what the spec says for the same inputs
// changes, so that every container's spec is rewritten.
const specFormat = "1"

// maxSpec bounds what the host reads of a spec inside the container.
const maxSpec = 4 << 20

// SpecKey names the inputs a spec depends on: the format, the driver
// version and pre-start's block (the nodes the container was given, with
// their numbers).
func SpecKey(version string, block []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "format %s\nversion %s\n", specFormat, version)
	for _, l := range block {
		fmt.Fprintln(h, l)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// SpecHeader is the first line of a spec with key.
func SpecHeader(key string) string { return specHeaderPrefix + key }

// SpecHeaderKey returns the key of a spec nvidiaprep wrote (its first
// line), and false for any other file.
func SpecHeaderKey(spec []byte) (string, bool) {
	line, _, _ := bytes.Cut(spec, []byte("\n"))
	k, ok := bytes.CutPrefix(line, []byte(specHeaderPrefix))
	if !ok {
		return "", false
	}
	return string(k), true
}

// SpecWanted returns the key of the CDI spec container vmid should have
// with driver version loaded (SpecKey of pre-start's block), or "" when it
// should have none: install = false, no GPU configured, or none given at
// this start. Post-start compares it with the spec's first line
// (SpecWantedIn); the worker writes the spec with it.
func SpecWanted(cfg config.Config, vmid int, version string) (key string, block []string, err error) {
	if !wantsSpec(cfg.Container(vmid), version) {
		return "", nil, nil
	}
	conf, err := fsutil.ReadRegular(cfg.Paths.LXCConfig(vmid), lxcconf.MaxSize)
	if err != nil {
		return "", nil, fmt.Errorf("reading what pre-start gave it: %w", err)
	}
	return SpecWantedIn(cfg, vmid, version, conf)
}

// wantsSpec tells whether a container with this table can want a spec.
func wantsSpec(ct config.Container, version string) bool {
	return ct.Install && !ct.GPUs.None() && version != ""
}

// SpecWantedIn is SpecWanted on the generated LXC config conf, read
// already (post-start has read it to find the container).
func SpecWantedIn(cfg config.Config, vmid int, version string, conf []byte) (key string, block []string, err error) {
	ct := cfg.Container(vmid)
	if !wantsSpec(ct, version) {
		return "", nil, nil
	}
	block, err = lxcconf.Block(conf)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", cfg.Paths.LXCConfig(vmid), err)
	}
	if g := prestart.ReadGiven(block); len(g.GPUs) == 0 && len(g.MIGs) == 0 {
		return "", nil, nil
	}
	// The nodes' group inside is the spec's too.
	owner := "# gid none"
	if ct.NodeGID != nil {
		owner = fmt.Sprintf("# gid %d", *ct.NodeGID)
	}
	return SpecKey(version, append(block[:len(block):len(block)], owner)), block, nil
}

// SpecState is what the container has at SpecPath.
type SpecState struct {
	Present bool   // something is there
	Ours    bool   // a spec nvidiaprep wrote
	Key     string // its key, when Ours
	Content []byte // what was read, when Ours
}

// ReadSpecState reads the container's spec from the host, safely (ctfs):
// a link, a directory or another file there is Present, not Ours. An
// error names SpecPath.
func ReadSpecState(root *ctfs.Root) (SpecState, error) {
	b, err := root.ReadFile(SpecPath, maxSpec)
	return specState(ctfs.Read{Data: b, Err: err})
}

// specState is ReadSpecState from what was read of SpecPath.
func specState(rd ctfs.Read) (SpecState, error) {
	b, err := rd.Data, rd.Err
	switch {
	case errors.Is(err, unix.ENOENT):
		return SpecState{}, nil
	case err != nil:
		var nr *ctfs.NotRegularError
		var sp *ctfs.SpecialFSError
		if errors.As(err, &nr) || errors.As(err, &sp) || errors.Is(err, unix.ELOOP) {
			return SpecState{Present: true}, nil
		}
		return SpecState{}, fmt.Errorf("reading %s: %w", SpecPath, err)
	}
	k, ours := SpecHeaderKey(b)
	st := SpecState{Present: true, Ours: ours, Key: k}
	if ours {
		st.Content = b
	}
	return st, nil
}

// UpToDate tells whether the spec is what want (SpecWanted) asks for: no
// spec of nvidiaprep's when want is "" (a user's own stays), else
// nvidiaprep's with that key.
func (s SpecState) UpToDate(want string) bool {
	if want == "" {
		return !s.Ours
	}
	return s.Ours && s.Key == want
}

// ToolkitConfig is NVIDIA container toolkit's configuration inside a
// container; its presence says the toolkit is installed there.
const ToolkitConfig = "/etc/nvidia-container-runtime/config.toml"

// Registered tells whether the container has nvidiaprep's apt pin (read
// from the host, safely): post-start starts the worker to remove it from a
// container that gets no GPU.
func Registered(root *ctfs.Root) (bool, error) {
	_, err := root.ReadFile(aptreg.PinPath, 1)
	return registered(err)
}

// registered is Registered from the error of reading the pin.
func registered(err error) (bool, error) {
	var nr *ctfs.NotRegularError
	switch {
	case err == nil, errors.As(err, &nr):
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, err
}
