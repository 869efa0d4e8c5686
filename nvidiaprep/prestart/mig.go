package prestart

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/nvdev"
)

// selectMIGs resolves the request's MIG selectors against the instances
// that exist now (procfs: no NVML at pre-start) with the MIG cache's UUIDs.
// A selector that names no existing instance is an error for a container
// that requires its GPU (naming it) and a warning otherwise: it starts
// without it.
func selectMIGs(h Host, req Request, all []nvdev.GPU, log zerolog.Logger) ([]nvdev.MIG, error) {
	if !req.GPUs.HasMIG() {
		return nil, nil
	}
	proc, err := nvdev.ProcMIGs(h.Proc, all)
	if err != nil {
		return nil, err
	}
	cached := cachedMIGs(h, req, log)
	migs, unmatched := nvdev.SelectMIGs(nvdev.WithUUIDs(proc, cached), nvdev.NormalizeMIGSelectors(all, req.GPUs))
	if len(unmatched) > 0 {
		have := "none"
		if len(proc) > 0 {
			have = migList(nvdev.WithUUIDs(proc, cached))
		}
		err := fmt.Errorf("MIG instance %s does not exist on this node now (MIG devices here: %s)", strings.Join(unmatched, ", "), have)
		if req.Required {
			return nil, err
		}
		log.Warn().Msgf("%s starts without %s: %v", ctmsg.Name(req.VMID), strings.Join(unmatched, ", "), err)
	}
	return migs, nil
}

// withParents adds the MIG devices' parent GPUs (their nodes are needed)
// to gpus, in host order, each once.
func withParents(gpus, all []nvdev.GPU, migs []nvdev.MIG) []nvdev.GPU {
	want := map[int]bool{}
	for _, g := range gpus {
		want[g.Minor] = true
	}
	for _, m := range migs {
		want[m.Minor] = true
	}
	var out []nvdev.GPU
	for _, g := range all {
		if want[g.Minor] {
			out = append(out, g)
		}
	}
	return out
}

// migList writes MIG devices for messages: "0:1:0=MIG-...", or "0:1:0"
// without a known UUID.
func migList(migs []nvdev.MIG) string {
	l := make([]string, len(migs))
	for i, m := range migs {
		l[i] = m.Name()
		if m.UUID != "" {
			l[i] += "=" + m.UUID
		}
	}
	return strings.Join(l, " ")
}

// migHeader writes MIG devices for the block's header, with the parent's
// device minor: "0:1:0@0=MIG-..." (ReadGiven reads it back).
func migHeader(migs []nvdev.MIG) string {
	l := make([]string, len(migs))
	for i, m := range migs {
		l[i] = m.Name() + "@" + strconv.Itoa(m.Minor)
		if m.UUID != "" {
			l[i] += "=" + m.UUID
		}
	}
	return strings.Join(l, " ")
}

// cachedMIGs reads the MIG UUIDs of the GPU cache. Without a usable cache
// (none yet, another boot or driver, a corrupt file) the start goes on with
// procfs alone; only MIG-<uuid> selectors need it, and the log says why
// they match nothing.
func cachedMIGs(h Host, req Request, log zerolog.Logger) []nvdev.MIG {
	if h.GPUCache.State == "" {
		return nil
	}
	c, err := h.GPUCache.Load()
	if err != nil {
		for _, s := range req.GPUs.Selectors {
			if strings.HasPrefix(s, "MIG-") && !strings.HasPrefix(s, "MIG-GPU-") {
				log.Warn().Msg(ctmsg.Sprintf(req.VMID, "%v; MIG-<uuid> selectors match nothing this start (`nvidiaprep status` refreshes the cache)", err))
				break
			}
		}
		return nil
	}
	return c.MIGs
}
