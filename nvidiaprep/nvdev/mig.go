package nvdev

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/gpusel"
)

// MIG is one MIG device: a compute instance (CI) of a GPU instance (GI) of
// a GPU in MIG mode. Using it takes the parent GPU's node, nvidiactl, and
// two nvidia-caps nodes: its GI's and its CI's access capabilities.
type MIG struct {
	UUID     string `json:"uuid,omitempty"` // "MIG-...": NVML's (the cache's); "" when only procfs was read
	GPU      int    `json:"gpu"`            // the parent's NVML index, as nvidia-smi shows it
	Minor    int    `json:"minor"`          // the parent's device minor (procfs and /dev use it)
	PCIBusID string `json:"pci_bus_id,omitempty"`
	GI       int    `json:"gi"`
	CI       int    `json:"ci"`
	// The capabilities' nvidia-caps minors (from
	// /proc/driver/nvidia-caps/mig-minors) and modes (their access files'
	// DeviceFileMode).
	GICap, CICap Cap `json:"-"`
}

// Name is the instance as a selector: "<gpu>:<gi>:<ci>".
func (m MIG) Name() string { return fmt.Sprintf("%d:%d:%d", m.GPU, m.GI, m.CI) }

// oldMIG splits the MIG UUID form of drivers before 470, MIG-GPU-<parent's
// uuid>/<gi>/<ci> (^MIG-(GPU-[0-9a-fA-F-]+)/([0-9]+)/([0-9]+)$), by hand: the
// hook links no regexp, whose package initialisation every start would pay.
func oldMIG(s string) (parent, gi, ci string, ok bool) {
	rest, ok := strings.CutPrefix(s, "MIG-")
	f := strings.Split(rest, "/")
	if !ok || len(f) != 3 || !isDigits(f[1]) || !isDigits(f[2]) {
		return "", "", "", false
	}
	hex, ok := strings.CutPrefix(f[0], "GPU-")
	if !ok || hex == "" || strings.Trim(hex, "0123456789abcdefABCDEF-") != "" {
		return "", "", "", false
	}
	return f[0], f[1], f[2], true
}

// NormalizeMIGSelectors writes sel's old-form MIG selectors as
// <gpu>:<gi>:<ci>, finding the parent among gpus by its UUID; others stay
// as they are.
func NormalizeMIGSelectors(gpus []GPU, sel gpusel.Selection) gpusel.Selection {
	if sel.All {
		return sel
	}
	out := make([]string, len(sel.Selectors))
	for i, s := range sel.Selectors {
		out[i] = s
		if parent, gi, ci, ok := oldMIG(s); ok {
			for _, g := range gpus {
				if strings.EqualFold(g.UUID, parent) {
					out[i] = fmt.Sprintf("%d:%s:%s", g.Index, gi, ci)
				}
			}
		}
	}
	return gpusel.Selection{Selectors: out}
}

// MIGMatches tells whether selector names m.
func MIGMatches(m MIG, selector string) bool {
	if strings.HasPrefix(selector, "MIG-") {
		return m.UUID != "" && strings.EqualFold(selector, m.UUID)
	}
	return selector == m.Name()
}

// ProcMIGs lists the MIG devices of gpus that exist now, from procfs
// alone (no NVML: pre-start reads this): a GPU instance or compute
// instance exists while <proc>/driver/nvidia/capabilities/gpu<minor>/mig/
// gi<G>[/ci<C>]/access does. Each capability's minor is read from
// <proc>/driver/nvidia-caps/mig-minors (the driver's table of every
// possible one) and must agree with the access file's DeviceFileMinor; its
// mode is the access file's DeviceFileMode.
func ProcMIGs(proc string, gpus []GPU) ([]MIG, error) {
	capsRoot := filepath.Join(proc, "driver/nvidia/capabilities")
	var minors map[string]uint32
	var out []MIG
	for _, g := range gpus {
		mig := filepath.Join(capsRoot, "gpu"+strconv.Itoa(g.Minor), "mig")
		cis, _ := filepath.Glob(filepath.Join(mig, "gi*", "ci*", "access"))
		for _, ciFile := range cis {
			giDir := filepath.Dir(filepath.Dir(ciFile))
			gi, err1 := strconv.Atoi(strings.TrimPrefix(filepath.Base(giDir), "gi"))
			ci, err2 := strconv.Atoi(strings.TrimPrefix(filepath.Base(filepath.Dir(ciFile)), "ci"))
			if err1 != nil || err2 != nil {
				continue
			}
			if minors == nil {
				var err error
				if minors, err = readMIGMinors(proc); err != nil {
					return nil, err
				}
			}
			m := MIG{GPU: g.Index, Minor: g.Minor, PCIBusID: g.PCIBusID, GI: gi, CI: ci}
			var err error
			if m.GICap, err = migCap(minors, filepath.Join(giDir, "access"), fmt.Sprintf("gpu%d/gi%d/access", g.Minor, gi)); err != nil {
				return nil, err
			}
			if m.CICap, err = migCap(minors, ciFile, fmt.Sprintf("gpu%d/gi%d/ci%d/access", g.Minor, gi, ci)); err != nil {
				return nil, err
			}
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.GPU != b.GPU {
			return a.GPU < b.GPU
		}
		if a.GI != b.GI {
			return a.GI < b.GI
		}
		return a.CI < b.CI
	})
	return out, nil
}

// migCap reads one capability: its minor from the mig-minors table, its
// mode from its access file, which must name the same minor.
func migCap(minors map[string]uint32, access, key string) (Cap, error) {
	minor, ok := minors[key]
	if !ok {
		return Cap{}, fmt.Errorf("reading MIG capability %s: /proc/driver/nvidia-caps/mig-minors has no %s", access, key)
	}
	fileMinor, mode, err := readCapAccess(access)
	if err != nil {
		return Cap{}, err
	}
	if fileMinor != minor {
		return Cap{}, fmt.Errorf("reading MIG capability %s: DeviceFileMinor %d, but mig-minors says %s is %d", access, fileMinor, key, minor)
	}
	return Cap{Minor: minor, Mode: mode}, nil
}

// readMIGMinors reads <proc>/driver/nvidia-caps/mig-minors.
func readMIGMinors(proc string) (map[string]uint32, error) {
	f, err := fsutil.OpenRegular(filepath.Join(proc, "driver/nvidia-caps/mig-minors"))
	if err != nil {
		return nil, fmt.Errorf("reading MIG capability minors: %w", err)
	}
	defer f.Close()
	return ParseMIGMinors(f)
}

// ParseMIGMinors reads the driver's table of capability minors: lines of
// "<capability> <minor>" ("config 1", "gpu0/gi1/access 12",
// "gpu0/gi1/ci0/access 13").
func ParseMIGMinors(r io.Reader) (map[string]uint32, error) {
	out := map[string]uint32{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		n, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("mig-minors: bad minor in %q", sc.Text())
		}
		out[f[0]] = uint32(n)
	}
	return out, sc.Err()
}

// WithUUIDs joins procfs's instances with the cache's UUIDs, by parent
// minor, GI and CI: procfs decides what exists.
func WithUUIDs(proc, cached []MIG) []MIG {
	out := append([]MIG(nil), proc...)
	for i, m := range out {
		for _, c := range cached {
			if c.Minor == m.Minor && c.GI == m.GI && c.CI == m.CI {
				out[i].UUID = c.UUID
			}
		}
	}
	return out
}

// MIGCapNodes returns, created when missing, the nvidia-caps nodes the MIG
// devices need: each one's GI and CI access capabilities, nothing more (not
// the parent's other instances, not the config or monitor capabilities).
func (f Finder) MIGCapNodes(majors Majors, migs []MIG) ([]Node, error) {
	var caps []Cap
	seen := map[uint32]bool{}
	for _, m := range migs {
		for _, c := range []Cap{m.GICap, m.CICap} {
			if !seen[c.Minor] {
				seen[c.Minor] = true
				caps = append(caps, c)
			}
		}
	}
	if len(caps) == 0 {
		return nil, nil
	}
	return f.ensureKind(ExpectedNodes(f.Dev, Want{Majors: majors, Caps: caps}), KindCap,
		"MIG instances are selected but /proc/devices lists no nvidia-caps major")
}
