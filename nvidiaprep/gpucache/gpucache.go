// Package gpucache owns the node's one cache of what only NVML knows,
// <state>/gpu-cache.json: the MIG devices' UUIDs (procfs has every whole
// GPU's index, UUID, PCI address and minor, and which MIG instances exist,
// but not their UUIDs), stamped with the boot, the loaded driver's version and the GPUs
// procfs lists. The hookscript has no NVML (no cgo), so this is how those
// facts reach pre-start. The package itself has no cgo: NVML comes in
// through the NVML interface.
//
// Who refreshes it, and when (Refresh, with NVML; it asks NVML only when
// procfs shows MIG instances and the stamp or the instances changed, so a
// node without MIG never pays NVML's start, and a refresh that changes
// nothing costs a few file reads):
//   - the host driver unit, at every boot once the driver is loaded (before
//     pve-guests starts the onboot containers), and after it installs or
//     upgrades the driver (a driver change);
//   - every provisioning worker, before it installs;
//   - the admin commands `status`, `doctor` and `gpus`: run one after a MIG
//     change (`nvidia-smi mig -cgi/-dgi`), so that a new instance's
//     MIG-<uuid> is known at its container's next start.
//
// What pre-start does with it (Load, which never asks NVML): procfs decides
// which GPUs and MIG instances exist; the cache only adds the MIG UUIDs. A miss (no file), a stale cache (another boot, driver or
// set of GPUs) or a corrupt one is logged and the start goes on with procfs
// alone: whole GPUs and <gpu>:<gi>:<ci> selectors work as ever, and only a
// MIG-<uuid> selector matches nothing at that start (a required container
// refuses to start, naming it). A start that procfs alone can serve never
// fails because of this cache. An instance destroyed and made again with the
// same GI and CI ids between two refreshes keeps its old UUID in the cache
// until the next refresh.
//
// Nodes upgraded from versions that kept two files: <state>/mig.json (MIG
// UUIDs, no stamp) is read while gpu-cache.json does not exist yet, so MIG
// UUID selectors keep working until the first refresh; <state>/gpus.json was
// never read at a start. Refresh removes both.
package gpucache

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/nvdev"
)

// FileName is the cache's name in the state directory.
const FileName = "gpu-cache.json"

// legacyMIGs and legacyGPUs are the files older versions kept instead.
const (
	legacyMIGs = "mig.json"
	legacyGPUs = "gpus.json"
)

// maxSize bounds the file: a node's GPUs and MIG devices take a few KiB.
const maxSize = 1 << 20

// Stamp is what decides whether a cache still describes this node: the
// boot (MIG instances do not survive one), the loaded driver's version and
// the GPUs the driver lists in <proc>/driver/nvidia/gpus.
type Stamp struct {
	Boot   string   `json:"boot"`
	Driver string   `json:"driver"`
	GPUs   []string `json:"gpus"`
}

func (s Stamp) equal(o Stamp) bool {
	return s.Boot == o.Boot && s.Driver == o.Driver && slices.Equal(s.GPUs, o.GPUs)
}

// Cache is the file's content.
type Cache struct {
	Stamp Stamp       `json:"stamp"`
	MIGs  []nvdev.MIG `json:"migs"`
	// Instances are the MIG instances procfs showed when NVML was asked
	// ("gpu<minor>/gi<G>/ci<C>"): another set means a MIG change, which
	// Refresh asks NVML about.
	Instances []string `json:"instances"`
}

// File is the cache of one node: its state directory and the procfs and
// sysfs roots the stamp is read from.
type File struct {
	State, Proc, Sys string
}

// Path is the cache's path.
func (f File) Path() string { return filepath.Join(f.State, FileName) }

// Why Load has nothing for this start; errors.Is finds them.
var (
	// ErrMiss: there is no cache yet.
	ErrMiss = errors.New("there is no GPU cache yet")
	// ErrStale: the cache describes another boot, driver or set of GPUs.
	ErrStale = errors.New("the GPU cache describes another boot, driver or set of GPUs")
)

// Load reads the cache for pre-start, without NVML. It returns ErrMiss,
// ErrStale (wrapped, saying what changed) or a corrupt file's error; the
// caller goes on with procfs alone then. Where only an older version's
// mig.json exists, its UUIDs are returned unstamped (procfs still decides
// which instances exist).
func (f File) Load() (Cache, error) {
	c, err := f.read()
	if errors.Is(err, os.ErrNotExist) {
		return f.legacy()
	}
	if err != nil {
		return Cache{}, err
	}
	now, err := f.stamp()
	if err != nil {
		return Cache{}, fmt.Errorf("%w: %v", ErrStale, err)
	}
	if !c.Stamp.equal(now) {
		return Cache{}, fmt.Errorf("%w (written for driver %s, boot %s; now driver %s, boot %s)", ErrStale,
			c.Stamp.Driver, c.Stamp.Boot, now.Driver, now.Boot)
	}
	return c, nil
}

func (f File) read() (Cache, error) {
	b, err := fsutil.ReadRegular(f.Path(), maxSize)
	if err != nil {
		return Cache{}, fmt.Errorf("reading the GPU cache: %w", err)
	}
	var c Cache
	if err := json.Unmarshal(b, &c); err != nil {
		return Cache{}, fmt.Errorf("the GPU cache %s is corrupt (the next `nvidiaprep status` rewrites it): %w", f.Path(), err)
	}
	return c, nil
}

// legacy reads an older version's mig.json: {"migs": [...]}.
func (f File) legacy() (Cache, error) {
	b, err := fsutil.ReadRegular(filepath.Join(f.State, legacyMIGs), maxSize)
	if errors.Is(err, os.ErrNotExist) {
		return Cache{}, ErrMiss
	}
	var c Cache
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return Cache{}, fmt.Errorf("the old MIG cache %s: %w", filepath.Join(f.State, legacyMIGs), err)
	}
	return Cache{MIGs: c.MIGs}, nil
}

// stamp reads what the cache must have been written for.
func (f File) stamp() (Stamp, error) {
	boot, err := nvdev.BootID(f.Proc)
	if err != nil {
		return Stamp{}, err
	}
	version, err := nvdev.LoadedVersion(f.Sys, f.Proc)
	if err != nil {
		return Stamp{}, err
	}
	entries, err := os.ReadDir(filepath.Join(f.Proc, "driver/nvidia/gpus"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Stamp{}, err
	}
	gpus := make([]string, len(entries))
	for i, e := range entries {
		gpus[i] = e.Name()
	}
	return Stamp{Boot: boot, Driver: version, GPUs: gpus}, nil
}

// instances lists the MIG instances procfs shows, as
// "gpu<minor>/gi<G>/ci<C>".
func (f File) instances() []string {
	root := filepath.Join(f.Proc, "driver/nvidia/capabilities")
	found, _ := filepath.Glob(filepath.Join(root, "gpu*", "mig", "gi*", "ci*"))
	out := make([]string, len(found))
	for i, p := range found {
		rel, _ := filepath.Rel(root, p)
		out[i] = strings.Replace(rel, "/mig/", "/", 1)
	}
	return out
}

// NVML is what Refresh asks: nvmlgpu.Lister in the admin program.
type NVML interface {
	MIGs() ([]nvdev.MIG, error)
}

// Refresh brings the cache up to date and returns it: NVML is asked only
// when the cache is missing, corrupt or stale, or procfs's MIG instances
// changed since it was written, and then within timeout (NVML can block on
// a wedged driver; the call given up on goes on until the process exits).
// Where procfs shows no MIG instance, NVML is not asked at all. It writes
// atomically, and removes the files older versions kept. asked says
// whether NVML was asked. Failing leaves the cache as it was.
func (f File) Refresh(nvml NVML, timeout time.Duration) (c Cache, asked bool, err error) {
	now, err := f.stamp()
	if err != nil {
		return Cache{}, false, fmt.Errorf("refreshing the GPU cache: %w", err)
	}
	instances := f.instances()
	if old, err := f.read(); err == nil && old.Stamp.equal(now) && slices.Equal(old.Instances, instances) {
		return old, false, nil
	}
	c = Cache{Stamp: now, Instances: instances}
	if len(instances) > 0 {
		asked = true
		if c.MIGs, err = ask(nvml, timeout); err != nil {
			return Cache{}, true, fmt.Errorf("refreshing the GPU cache: %w", err)
		}
	}
	b, err := json.Marshal(c)
	if err == nil {
		err = os.MkdirAll(f.State, 0o755)
	}
	if err == nil {
		err = fsutil.WriteFileAtomic(f.Path(), b, 0o644)
	}
	if err != nil {
		return Cache{}, asked, fmt.Errorf("writing the GPU cache: %w", err)
	}
	for _, name := range []string{legacyMIGs, legacyGPUs} {
		_ = os.Remove(filepath.Join(f.State, name)) // superseded; an error leaves a file no one reads
	}
	return c, asked, nil
}

// ask lists the MIG devices, giving up after timeout.
func ask(nvml NVML, timeout time.Duration) ([]nvdev.MIG, error) {
	type result struct {
		migs []nvdev.MIG
		err  error
	}
	done := make(chan result, 1)
	go func() {
		migs, err := nvml.MIGs()
		done <- result{migs, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-done:
		return r.migs, r.err
	case <-t.C:
		return nil, fmt.Errorf("NVML did not answer within %v (a hung driver?)", timeout)
	}
}
