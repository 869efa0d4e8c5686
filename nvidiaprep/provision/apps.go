package provision

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/cdispec"
	"nvidiaprep/nvidiaprep/ctexec"
	"nvidiaprep/nvidiaprep/ctfs"
	"nvidiaprep/nvidiaprep/ctmsg"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/installstate"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/prestart"
)

// removeSpecScript removes nvidiaprep's spec (the host checked it is ours).
const removeSpecScript = `rm -f ` + installstate.SpecPath

// Apps keeps what the container's own container engines and apt need in
// step with what it was given and has installed: its apt registration
// (aptreg), NVIDIA's container toolkit where installed, and its CDI spec,
// each on its own (one failing does not keep the others back; the errors
// are joined). It writes the spec when it is missing or its key differs,
// leaves an unchanged one alone, and removes nvidiaprep's when the
// container gets no GPU or no install.
func (w Worker) Apps(ctx context.Context, version string) error {
	return w.apps(ctx, version, false)
}

// apps is Apps; registered says this run's install has just registered
// version, so the registration is not checked again.
func (w Worker) apps(ctx context.Context, version string, registered bool) error {
	want, block, err := installstate.SpecWanted(w.Config, w.VMID, version)
	if err != nil {
		return err
	}
	ct, err := ctexec.Open(w.Config.Paths.LXC, w.VMID)
	if err != nil {
		return err
	}
	defer ct.Close()
	var regErr error
	if !registered {
		regErr = w.registration(ctx, ct, version)
	}
	root, err := ct.Root(ctx)
	if err != nil {
		return errors.Join(regErr, err)
	}
	defer root.Close()
	var toolkitErr error
	if want != "" {
		if err := w.toolkit(ctx, ct, root, prestart.ReadGiven(block).Nodes); err != nil {
			toolkitErr = fmt.Errorf("NVIDIA's container toolkit: %w", err)
		}
	}
	return errors.Join(regErr, toolkitErr, w.spec(ctx, ct, root, version, block, want))
}

// spec makes the container's CDI spec what want (SpecWanted) asks for.
func (w Worker) spec(ctx context.Context, ct *ctexec.Container, root *ctfs.Root, version string, block []string, want string) error {
	have, err := installstate.ReadSpecState(root)
	if err != nil {
		return err
	}
	if want == "" {
		if !have.Ours {
			return nil
		}
		r, err := ct.Run(ctx, []string{"/bin/sh", "-c", removeSpecScript}, nil)
		if err != nil {
			return err
		}
		if r.Exit != 0 {
			return fmt.Errorf("removing %s failed (exit %d): %s", installstate.SpecPath, r.Exit, r.Output().LastLines(3))
		}
		w.Log.Info().Msg(ctmsg.Sprintf(w.VMID, "removed its CDI spec %s: it is given no GPU (or install = false)", installstate.SpecPath))
		return nil
	}
	in, err := w.specInput(root, version, block, want)
	if err != nil {
		return fmt.Errorf("the CDI spec: %w", err)
	}
	spec, err := cdispec.Render(in)
	if err != nil {
		return err
	}
	if have.Ours && bytes.Equal(have.Content, spec) {
		return nil
	}
	mode := "replace"
	if have.Present && !have.Ours {
		mode = "backup"
		w.Log.Warn().Msg(ctmsg.Sprintf(w.VMID, "%s was not written by nvidiaprep (nvidia-ctk cdi generate?); it is kept as %s, which CDI does not read, and replaced by nvidiaprep's, which follows the driver and the GPUs", installstate.SpecPath, installstate.SpecBackupPath))
	}
	r, err := ct.Run(ctx, writeSpecScript.argv(mode), bytes.NewReader(spec))
	if err != nil {
		return err
	}
	if r.Exit != 0 {
		return fmt.Errorf("writing %s failed (exit %d): %s; make %s a writable directory inside the container, then run `nvidiaprep provision %d`", installstate.SpecPath, r.Exit, r.Output().LastLines(3), installstate.SpecDir, w.VMID)
	}
	w.status("wrote the CDI spec %s (%d GPU(s), %d MIG device(s); by index inside, UUID, and all)", installstate.SpecPath, len(in.GPUs), len(in.MIGs))
	return nil
}

// specInput gathers the spec's input: the GPUs and nodes pre-start's block
// gave (UUIDs from procfs's GPU list, matched by PCI bus id), and the
// files of the tree's manifest as installed in the container's library
// directory.
func (w Worker) specInput(root *ctfs.Root, version string, block []string, key string) (cdispec.Input, error) {
	given := prestart.ReadGiven(block)
	host, err := nvdev.ProcGPUs{Proc: w.Config.Paths.Proc}.GPUs()
	if err != nil {
		return cdispec.Input{}, fmt.Errorf("listing the host's GPUs: %w", err)
	}
	drm, err := nvdev.DRMByPCI(w.Config.Paths.Sys)
	if err != nil {
		return cdispec.Input{}, err
	}
	givenNode := map[string]bool{}
	for _, n := range given.Nodes {
		givenNode[n] = true
	}
	in := cdispec.Input{Key: key, GID: w.Config.Container(w.VMID).NodeGID}
	gpuNodes := map[string]bool{}
	for _, g := range given.GPUs {
		found := false
		for _, h := range host {
			if h.PCIBusID == g.PCIBusID {
				node := fmt.Sprintf("/dev/nvidia%d", h.Minor)
				gpu := cdispec.GPU{UUID: h.UUID, PCIBusID: h.PCIBusID, Node: node}
				for _, d := range drm[h.PCIBusID] {
					if p := "/dev/" + d.Name; givenNode[p] {
						gpu.Extra = append(gpu.Extra, p)
						gpuNodes[p] = true
					}
				}
				in.GPUs = append(in.GPUs, gpu)
				gpuNodes[node], found = true, true
			}
		}
		if !found {
			return cdispec.Input{}, fmt.Errorf("GPU %s, given at this start, is not on the host now; restart the container", g.PCIBusID)
		}
	}
	migs, err := w.migDevices(host, given, givenNode, in.GPUs)
	if err != nil {
		return cdispec.Input{}, err
	}
	for _, m := range migs {
		for _, n := range m.Nodes {
			gpuNodes[n] = true
		}
	}
	in.MIGs = migs
	for _, n := range given.Nodes {
		if !gpuNodes[n] {
			in.Nodes = append(in.Nodes, n)
		}
	}
	libDir := ""
	for _, d := range libDirs {
		if _, err := root.Readlink(d + "/libnvidia-ml.so.1"); err == nil {
			libDir = d
			break
		}
	}
	if libDir == "" {
		return cdispec.Input{}, fmt.Errorf("libnvidia-ml.so.1 is in none of %s: the driver's libraries are not installed", strings.Join(libDirs, ", "))
	}
	entries, err := manifestEntries(driverrun.Cache{Dir: w.Config.Paths.Cache}.Tree(version), libDir)
	if err != nil {
		return cdispec.Input{}, err
	}
	for _, e := range nativeFiles(entries) {
		in.Files = append(in.Files, e.dest)
	}
	return in, nil
}

// registration keeps the container's apt registration (aptreg) in step: it
// is removed when the configuration gives the container no GPU or no
// install, and made (if it is not already) when it has version installed.
// A container whose start gave it no GPU for another reason (no driver
// loaded) keeps it: its libraries are still installed.
func (w Worker) registration(ctx context.Context, ct *ctexec.Container, version string) error {
	if c := w.Config.Container(w.VMID); !c.Install || c.GPUs.None() {
		root, err := ct.Root(ctx)
		if err != nil {
			return err
		}
		reg, err := installstate.Registered(root)
		root.Close()
		if err != nil || !reg {
			return err
		}
		r, err := ct.Run(ctx, unregisterScript.argv(), nil)
		switch {
		case err != nil:
			return err
		case r.Exit == 2:
			w.Log.Warn().Msgf("%s gets no GPU or no install, but %s stays: packages depend on it (%s); remove them, or give the container its GPU again", ctmsg.Name(w.VMID), aptreg.Package, r.Output().LastLines(3))
			return nil
		case r.Exit != 0:
			return fmt.Errorf("removing %s failed (exit %d): %s", aptreg.Package, r.Exit, r.Output().LastLines(3))
		}
		w.Log.Info().Msg(ctmsg.Sprintf(w.VMID, "removed %s and its pin: it gets no GPU or no install", aptreg.Package))
		return nil
	}
	if version == "" {
		return nil
	}
	return session{w: w, ct: ct, version: version}.register(ctx)
}

// migDevices are the spec's MIG devices: each given instance with its
// parent's node and its two capabilities' nodes (procfs's minors), named
// "<gpu>:<gi>:<ci>" with <gpu> the parent's index inside the container (its
// rank by PCI bus id among the GPUs the container sees) and by UUID.
func (w Worker) migDevices(host []nvdev.GPU, given prestart.Given, givenNode map[string]bool, whole []cdispec.GPU) ([]cdispec.MIG, error) {
	if len(given.MIGs) == 0 {
		return nil, nil
	}
	proc, err := nvdev.ProcMIGs(w.Config.Paths.Proc, host)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, g := range whole {
		seen[g.PCIBusID] = true
	}
	pcis := []string{}
	for p := range seen {
		pcis = append(pcis, p)
	}
	for _, m := range given.MIGs {
		for _, h := range host {
			if h.Minor == m.Minor && !seen[h.PCIBusID] {
				seen[h.PCIBusID] = true
				pcis = append(pcis, h.PCIBusID)
			}
		}
	}
	sort.Strings(pcis)
	var out []cdispec.MIG
	for _, g := range given.MIGs {
		var found *nvdev.MIG
		for i, m := range proc {
			if m.Minor == g.Minor && m.Name() == g.Name {
				found = &proc[i]
			}
		}
		if found == nil {
			return nil, fmt.Errorf("MIG device %s, given at this start, is gone; restart the container", g.Name)
		}
		inside := sort.SearchStrings(pcis, found.PCIBusID)
		d := cdispec.MIG{Name: fmt.Sprintf("%d:%d:%d", inside, found.GI, found.CI), UUID: g.UUID}
		for _, n := range []string{fmt.Sprintf("/dev/nvidia%d", g.Minor),
			fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", found.GICap.Minor), fmt.Sprintf("/dev/nvidia-caps/nvidia-cap%d", found.CICap.Minor)} {
			if givenNode[n] {
				d.Nodes = append(d.Nodes, n)
			}
		}
		out = append(out, d)
	}
	return out, nil
}
