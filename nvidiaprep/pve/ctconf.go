// Package pve reads what nvidiaprep needs from Proxmox VE's own
// configuration, below a relocatable root (/etc/pve on a node): the
// containers' configs (<dir>/lxc/<vmid>.conf) and the storage definitions
// (<dir>/storage.cfg), and runs pct behind a one-method runner. Changes go
// through pct, as Proxmox wants, but for one that pct cannot make: removing
// raw lxc.* lines (RemoveLines), which it does under Proxmox's own config
// lock, as pct would.
package pve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/lxcconf"
)

// maxConfig is the largest Proxmox config file read (a container's config
// with its snapshots is a few KiB).
const maxConfig = 4 << 20

// DefaultDir is the cluster file system's mount point on a node.
const DefaultDir = "/etc/pve"

// HookName is the hookscript's file name in a snippets directory, and
// HookVolume the volume id Proxmox knows it by: the package links it into
// the snippets directory of the `local` storage.
const (
	HookName   = "nvidiaprep-hook"
	HookVolume = "local:snippets/" + HookName
)

// CT is what nvidiaprep reads from one container's config: its current
// settings, not those of its snapshots or pending changes (sections).
type CT struct {
	VMID int
	Path string // <dir>/lxc/<vmid>.conf
	// Hookscript is the "hookscript:" volume id, "" without one.
	Hookscript string
	// LXC are the raw lxc.* lines ("lxc.key: value"), as Proxmox copies
	// them into the generated config ("lxc.key = value").
	LXC []lxcconf.Entry
	// Devices are the devN: passthrough paths ("/dev/nvidia0").
	Devices []Device
	// Unprivileged is "unprivileged: 1".
	Unprivileged bool
}

// Device is a "devN: /dev/...[,options]" line.
type Device struct {
	Line int
	Key  string // "dev0"
	Path string
	Raw  string // the line as written
}

// UsesHook tells whether the container's hookscript is nvidiaprep's, on any
// storage.
func (c CT) UsesHook() bool {
	_, name, ok := strings.Cut(c.Hookscript, ":")
	return ok && filepath.Base(name) == HookName
}

// ParseCT reads a container config's current section.
func ParseCT(vmid int, path string, text []byte) CT {
	ct := CT{VMID: vmid, Path: path}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "[") {
			break // a snapshot or the pending changes
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case key == "hookscript":
			ct.Hookscript = value
		case key == "unprivileged":
			ct.Unprivileged = value == "1"
		case strings.HasPrefix(key, "lxc."):
			ct.LXC = append(ct.LXC, lxcconf.Entry{Line: n, Key: key, Value: value, Raw: raw})
		case strings.HasPrefix(key, "dev") && isDigits(key[3:]):
			p, _, _ := strings.Cut(value, ",")
			if k, v, ok := strings.Cut(p, "="); ok && k == "path" {
				p = v
			}
			ct.Devices = append(ct.Devices, Device{Line: n, Key: key, Path: p, Raw: line})
		}
	}
	return ct
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// ReadCTs reads every <dir>/lxc/<vmid>.conf, in vmid order. A missing
// directory (no Proxmox here) gives none and no error.
func ReadCTs(dir string) ([]CT, error) {
	lxcDir := filepath.Join(dir, "lxc")
	entries, err := os.ReadDir(lxcDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the containers' configs: %w", err)
	}
	var cts []CT
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".conf")
		if !ok {
			continue
		}
		vmid, err := config.ParseVMID(id)
		if err != nil {
			continue
		}
		path := filepath.Join(lxcDir, e.Name())
		text, err := fsutil.ReadRegular(path, maxConfig)
		if err != nil {
			return nil, ctmsg.Errorf(vmid, "reading its config: %w", err)
		}
		cts = append(cts, ParseCT(vmid, path, text))
	}
	slices.SortFunc(cts, func(a, b CT) int { return a.VMID - b.VMID })
	return cts, nil
}

// ReadCT reads container vmid's config below dir (a regular file only, of
// at most 4 MiB); a missing one is an error matching os.ErrNotExist.
func ReadCT(dir string, vmid int) (CT, error) {
	path := CTPath(dir, vmid)
	text, err := fsutil.ReadRegular(path, maxConfig)
	if err != nil {
		return CT{}, err
	}
	return ParseCT(vmid, path, text), nil
}

// CTPath is where container vmid's config lives below dir.
func CTPath(dir string, vmid int) string {
	return filepath.Join(dir, "lxc", strconv.Itoa(vmid)+".conf")
}
