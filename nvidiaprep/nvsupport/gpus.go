// Package nvsupport says what an NVIDIA driver version supports on this
// node, before anything is installed: the GPUs (the supported-gpus.json of
// the driver's own .run, and the PCI devices in sysfs, which need no
// driver), the kernel module type those GPUs can use, and the kernels it
// is known to build for (kernelmin.go, the one place for that data).
package nvsupport

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
)

// supportedGPUsFile is where a .run's extracted tree lists the GPUs its
// branch knows (NVIDIA ships it in every .run since the 450 branch).
const supportedGPUsFile = "supported-gpus/supported-gpus.json"

// Chip is one row of supported-gpus.json.
type Chip struct {
	DevID       string   `json:"devid"`                 // "0x1B80"
	SubVendorID string   `json:"subvendorid,omitempty"` // only where the name differs by board
	SubDevID    string   `json:"subdevid,omitempty"`
	Name        string   `json:"name"`
	Features    []string `json:"features,omitempty"` // "kernelopen": the open module drives it
	// LegacyBranch names the branch that still supports a chip this one
	// no longer does ("580.xx"); "" for a chip this branch supports.
	LegacyBranch string `json:"legacybranch,omitempty"`
}

// List is a tree's supported-gpus.json.
type List struct {
	Chips []Chip `json:"chips"`
}

// ErrNoList is a tree without supported-gpus.json (a .run older than 450,
// or not NVIDIA's): support cannot be checked from it.
var ErrNoList = errors.New("the driver package has no " + supportedGPUsFile)

// ReadList reads the supported-gpus.json of an extracted .run tree.
func ReadList(tree string) (List, error) {
	path := filepath.Join(tree, supportedGPUsFile)
	b, err := fsutil.ReadRegular(path, 16<<20)
	if errors.Is(err, os.ErrNotExist) {
		return List{}, ErrNoList
	}
	if err != nil {
		return List{}, fmt.Errorf("reading the driver's list of supported GPUs: %w", err)
	}
	var l List
	if err := json.Unmarshal(b, &l); err != nil {
		return List{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return l, nil
}

// Lookup finds the row of a GPU: the one with its subsystem ids when there
// is one, else the one with its device id alone.
func (l List) Lookup(g PCIGPU) (Chip, bool) {
	var found Chip
	ok := false
	for _, c := range l.Chips {
		id, err := parseID(c.DevID)
		if err != nil || id != g.Device {
			continue
		}
		if c.SubDevID == "" && c.SubVendorID == "" {
			if !ok {
				found, ok = c, true
			}
			continue
		}
		sv, err1 := parseID(c.SubVendorID)
		sd, err2 := parseID(c.SubDevID)
		if err1 == nil && err2 == nil && sv == g.SubVendor && sd == g.SubDevice {
			return c, true
		}
	}
	return found, ok
}

func parseID(s string) (uint16, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "0x"), 16, 16)
	return uint16(v), err
}

// HasFeature tells whether the chip's row lists the feature.
func (c Chip) HasFeature(f string) bool {
	for _, x := range c.Features {
		if x == f {
			return true
		}
	}
	return false
}

// Branch is the legacy branch's number: "580.xx" gives "580".
func (c Chip) Branch() string { return strings.TrimSuffix(c.LegacyBranch, ".xx") }

// PCIGPU is an NVIDIA display controller on the PCI bus, read from sysfs:
// what the node has whether or not a driver is loaded.
type PCIGPU struct {
	Address   string // "0000:01:00.0"
	Device    uint16
	SubVendor uint16
	SubDevice uint16
}

func (g PCIGPU) String() string {
	return fmt.Sprintf("%s (10de:%04x)", g.Address, g.Device)
}

const nvidiaVendor = 0x10de

// PCIGPUs lists the NVIDIA display controllers (PCI class 0x03xxxx) below
// <sys>/bus/pci/devices, in address order.
func PCIGPUs(sys string) ([]PCIGPU, error) {
	dir := filepath.Join(sys, "bus", "pci", "devices")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing the PCI devices: %w", err)
	}
	var out []PCIGPU
	for _, e := range entries {
		d := filepath.Join(dir, e.Name())
		vendor, err := readHex(filepath.Join(d, "vendor"))
		if err != nil || vendor != nvidiaVendor {
			continue
		}
		class, err := readHex(filepath.Join(d, "class"))
		if err != nil || class>>16 != 0x03 {
			continue
		}
		g := PCIGPU{Address: e.Name()}
		dev, err := readHex(filepath.Join(d, "device"))
		if err != nil {
			return nil, fmt.Errorf("reading the device id of %s: %w", e.Name(), err)
		}
		g.Device = uint16(dev)
		if v, err := readHex(filepath.Join(d, "subsystem_vendor")); err == nil {
			g.SubVendor = uint16(v)
		}
		if v, err := readHex(filepath.Join(d, "subsystem_device")); err == nil {
			g.SubDevice = uint16(v)
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}

func readHex(path string) (uint64, error) {
	b, err := fsutil.ReadRegular(path, 64)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 32)
}
