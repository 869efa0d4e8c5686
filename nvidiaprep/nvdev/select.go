package nvdev

import (
	"fmt"
	"strconv"
	"strings"

	"nvidiaprep/nvidiaprep/gpusel"
)

// UnmatchedError lists selectors that matched no GPU on this host.
type UnmatchedError struct {
	Selectors []string
	Available []GPU
}

func (e *UnmatchedError) Error() string {
	var have []string
	for _, g := range e.Available {
		have = append(have, fmt.Sprintf("%d (%s, %s)", g.Index, g.UUID, g.PCIBusID))
	}
	if len(have) == 0 {
		have = []string{"none"}
	}
	return fmt.Sprintf("GPU selector %s matches no GPU on this node; GPUs here: %s",
		strings.Join(quote(e.Selectors), ", "), strings.Join(have, "; "))
}

// Select returns the GPUs that sel names, in host order, each once: all of
// them for sel.All; else each selector is an NVML index ("0"), a GPU UUID
// ("GPU-...") or a PCI bus id, and MIG devices' selectors (gpusel.IsMIG)
// are SelectMIGs' and skipped here. Selectors that match nothing are
// reported in an *UnmatchedError alongside the GPUs that did match.
func Select(gpus []GPU, sel gpusel.Selection) ([]GPU, error) {
	if sel.All {
		return gpus, nil
	}
	picked := make([]bool, len(gpus))
	var unmatched []string
	for _, s := range sel.Selectors {
		if gpusel.IsMIG(s) {
			continue
		}
		if s == "all" { // only alone in a file (gpusel.Parse); enable's --gpus 0,all is refused when loaded
			for i := range picked {
				picked[i] = true
			}
			continue
		}
		found := false
		for i, g := range gpus {
			if matches(g, s) {
				picked[i], found = true, true
			}
		}
		if !found {
			unmatched = append(unmatched, s)
		}
	}
	var out []GPU
	for i, g := range gpus {
		if picked[i] {
			out = append(out, g)
		}
	}
	if len(unmatched) > 0 {
		return out, &UnmatchedError{Selectors: unmatched, Available: gpus}
	}
	return out, nil
}

func matches(g GPU, sel string) bool {
	if n, err := strconv.Atoi(sel); err == nil {
		return n == g.Index
	}
	if strings.HasPrefix(sel, "GPU-") {
		return strings.EqualFold(sel, g.UUID)
	}
	if strings.Contains(sel, ":") {
		return NormalizePCIBusID(sel) == g.PCIBusID
	}
	return false
}

func quote(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// SelectMIGs returns the MIG devices that sel names ("MIG-<uuid>",
// "<gpu>:<gi>:<ci>"), each once, and the MIG selectors that match none (an
// instance destroyed since, or a UUID the GPU cache does not know).
func SelectMIGs(migs []MIG, sel gpusel.Selection) (picked []MIG, unmatched []string) {
	seen := map[string]bool{}
	for _, s := range sel.Selectors {
		if !gpusel.IsMIG(s) {
			continue
		}
		found := false
		for _, m := range migs {
			if MIGMatches(m, s) {
				found = true
				if !seen[m.Name()] {
					seen[m.Name()] = true
					picked = append(picked, m)
				}
			}
		}
		if !found {
			unmatched = append(unmatched, s)
		}
	}
	return picked, unmatched
}
