package kernelguard

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/secureboot"
)

// Files of the guard, below [paths] state and root.
const (
	stateFile = "kernels.json"
	// notReadyMarker says, like Debian's /run/reboot-required, what a
	// reboot now would do: a kernel the node may boot has no driver. It
	// lives in /run, which a reboot empties; the state file keeps the rest.
	notReadyMarker = "/run/nvidiaprep/kernel-not-ready"
	pinFile        = "/etc/kernel/proxmox-boot-pin"
)

// State is what the guard found last (<state>/kernels.json).
type State struct {
	Version string           `json:"driver_version"`
	Checked time.Time        `json:"checked"`
	Kernels []kernels.Kernel `json:"kernels"`
	// Pinned is the kernel the guard pinned (pin_working_kernel), which it
	// unpins once every kernel is ready.
	Pinned string `json:"pinned,omitempty"`
}

// loadState reads the guard's state; ok is false when there is none.
func loadState(stateDir string) (s State, ok bool, err error) {
	b, err := fsutil.ReadRegular(filepath.Join(stateDir, stateFile), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	if err != nil {
		return s, false, fmt.Errorf("reading the kernel guard's state: %w", err)
	}
	return s, true, nil
}

func saveState(stateDir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(filepath.Join(stateDir, stateFile), append(b, '\n'), 0o644)
}

// GuardInput is one run of the kernel guard.
type GuardInput struct {
	Config config.Config
	// Release is the kernel dpkg installed (the hook's argument); "" checks
	// every kernel and says nothing when all are ready (apt's Post-Invoke).
	Release string
	Running string // uname -r
	Runner  hostcmd.Runner
	Out     io.Writer // the admin's terminal: apt's output
	// Journal logs an error to the journal; nil logs nowhere else.
	Journal func(msg string)
}

// GuardReport is what the guard found.
type GuardReport struct {
	Version  string
	Kernels  []kernels.Kernel
	NotReady []kernels.Kernel // of those it was asked about
	Working  string           // the kernel to keep booting
	Pinned   string           // pinned by this run
}

// KernelInstalled checks that the installed driver's module is built (and
// with Secure Boot, signed with an enrolled key) for the kernel dpkg just
// installed, as DKMS's own hook left it: it builds nothing itself. A
// kernel without its module is said loudly on Out and in the journal,
// recorded for status and doctor, marked in notReadyMarker, and with
// pin_working_kernel the working kernel is pinned. Its error is what kept
// it from checking; a kernel that is not ready is no error (the hook must
// not fail the kernel package: dpkg would leave it half-configured).
func KernelInstalled(ctx context.Context, in GuardInput) (GuardReport, error) {
	var rep GuardReport
	p := in.Config.Paths
	version, err := record.ReadInstalledVersion(p.Root)
	if err != nil || version == "" {
		if err == nil && in.Release != "" {
			fmt.Fprintf(in.Out, "nvidiaprep: no NVIDIA driver is installed from a .run; nothing to check for kernel %s\n", in.Release)
		}
		return rep, err
	}
	rep.Version = version
	c := kernels.Checker{Root: p.Root, Running: in.Running, Runner: in.Runner}
	ks, err := c.Check(ctx, version)
	if err != nil {
		return rep, err
	}
	if err := checkSignatures(ctx, in, version, ks); err != nil {
		fmt.Fprintf(in.Out, "nvidiaprep: %v\n", err)
	}
	rep.Kernels = ks
	rep.Working = kernels.Working(ks)
	asked := slices.DeleteFunc(slices.Clone(ks), func(k kernels.Kernel) bool { return !k.Bootable })
	if in.Release != "" {
		i := slices.IndexFunc(ks, func(k kernels.Kernel) bool { return k.Release == in.Release })
		if i < 0 {
			ks = append(ks, c.Judge(version, in.Release, ""))
			i = len(ks) - 1
		}
		asked = ks[i : i+1]
	}
	for _, k := range asked {
		if k.Ready {
			if in.Release != "" {
				fmt.Fprintf(in.Out, "nvidiaprep: kernel %s has NVIDIA driver %s's module (dkms status: %s)\n", k.Release, version, k.DKMS)
			}
			continue
		}
		rep.NotReady = append(rep.NotReady, k)
	}
	prev, _, err := loadState(p.State)
	if err != nil {
		fmt.Fprintf(in.Out, "nvidiaprep: %v\n", err)
	}
	st := State{Version: version, Checked: time.Now().UTC(), Kernels: ks, Pinned: prev.Pinned}
	allReady := !slices.ContainsFunc(ks, func(k kernels.Kernel) bool { return k.Bootable && !k.Ready })
	for _, k := range rep.NotReady {
		if in.Release == "" && reported(prev, k) {
			// apt's Post-Invoke right after the kernel's own hook said it.
			fmt.Fprintf(in.Out, "nvidiaprep: kernel %s still has no NVIDIA driver %s module (above; `nvidiaprep doctor`)\n", k.Release, version)
			continue
		}
		msg := banner(version, k, rep.Working)
		fmt.Fprint(in.Out, msg)
		if in.Journal != nil {
			in.Journal(strings.TrimSpace(strings.ReplaceAll(msg, "nvidiaprep: ", "")))
		}
	}
	if err := mark(p.Root, version, rep.NotReady, rep.Working, allReady); err != nil {
		fmt.Fprintf(in.Out, "nvidiaprep: %v\n", err)
	}
	if in.Config.Driver.PinWorkingKernel {
		st.Pinned, rep.Pinned = pin(ctx, in, ks, rep.Working, prev.Pinned, allReady)
	}
	if err := saveState(p.State, st); err != nil {
		return rep, err
	}
	return rep, nil
}

// reported tells whether the last check, less than a minute ago, said the
// same of k.
func reported(prev State, k kernels.Kernel) bool {
	if time.Since(prev.Checked) > time.Minute {
		return false
	}
	for _, p := range prev.Kernels {
		if p.Release == k.Release && !p.Ready && p.Why == k.Why {
			return true
		}
	}
	return false
}

// banner is the loud message about a kernel without its module.
func banner(version string, k kernels.Kernel, working string) string {
	var b strings.Builder
	line := "nvidiaprep: " + strings.Repeat("*", 68) + "\n"
	b.WriteString(line)
	fmt.Fprintf(&b, "nvidiaprep: kernel %s has NO NVIDIA driver %s module: %s.\n", k.Release, version, k.Why)
	b.WriteString("nvidiaprep: Booting it leaves the node without its GPUs (containers start without them).\n")
	fmt.Fprintf(&b, "nvidiaprep: Fix: %s.\n", k.Fix)
	if working != "" && working != k.Release {
		fmt.Fprintf(&b, "nvidiaprep: Until then keep booting kernel %s, which has it: %s\n", working, kernels.PinCommand(working))
	}
	b.WriteString(line)
	return b.String()
}

// mark writes or clears notReadyMarker below root.
func mark(root, version string, notReady []kernels.Kernel, working string, allReady bool) error {
	path := filepath.Join(root, notReadyMarker)
	if allReady {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	if len(notReady) == 0 {
		return nil // other kernels' problems are marked by their own runs
	}
	var b strings.Builder
	for _, k := range notReady {
		fmt.Fprintf(&b, "kernel %s has no NVIDIA driver %s module: %s. Fix: %s.\n", k.Release, version, k.Why, k.Fix)
	}
	if working != "" {
		fmt.Fprintf(&b, "Keep booting %s until then: %s\n", working, kernels.PinCommand(working))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, []byte(b.String()), 0o644)
}

// pin keeps the working kernel booting while a newer one is not ready
// (pin_working_kernel), with proxmox-boot-tool's own commands, and takes
// its own pin back once every kernel is ready. It returns the pin to
// record and the kernel it pinned now.
func pin(ctx context.Context, in GuardInput, ks []kernels.Kernel, working, pinned string, allReady bool) (record, now string) {
	if allReady {
		if pinned == "" {
			return "", ""
		}
		cur, _ := fsutil.ReadRegular(filepath.Join(in.Config.Paths.Root, pinFile), 1<<10)
		if strings.TrimSpace(string(cur)) != pinned {
			fmt.Fprintf(in.Out, "nvidiaprep: every kernel has the NVIDIA module; the boot pin is no longer %s (changed by hand), so it is left as it is\n", pinned)
			return "", ""
		}
		if err := tool(ctx, in, "kernel", "unpin"); err != nil {
			fmt.Fprintf(in.Out, "nvidiaprep: unpinning kernel %s failed: %v\n", pinned, err)
			return pinned, ""
		}
		fmt.Fprintf(in.Out, "nvidiaprep: every kernel has the NVIDIA module: unpinned kernel %s (pin_working_kernel)\n", pinned)
		return "", ""
	}
	newer := false
	for _, k := range ks {
		if k.Release == working {
			break
		}
		if k.Bootable && !k.Ready {
			newer = true // ks is newest first
		}
	}
	if working == "" || !newer || pinned == working {
		return pinned, ""
	}
	if err := tool(ctx, in, "kernel", "pin", working); err != nil {
		fmt.Fprintf(in.Out, "nvidiaprep: pinning kernel %s failed (pin_working_kernel): %v; pin it by hand: %s\n", working, err, kernels.PinCommand(working))
		return pinned, ""
	}
	if _, err := os.Stat(filepath.Join(in.Config.Paths.Root, "etc/kernel/proxmox-boot-uuids")); err == nil {
		if err := tool(ctx, in, "refresh"); err != nil {
			fmt.Fprintf(in.Out, "nvidiaprep: proxmox-boot-tool refresh failed: %v; run it by hand\n", err)
		}
	}
	fmt.Fprintf(in.Out, "nvidiaprep: pinned kernel %s, which has the NVIDIA module, until the newer kernel has it (pin_working_kernel; undo: proxmox-boot-tool kernel unpin)\n", working)
	return working, working
}

// tool runs proxmox-boot-tool and shows what it says.
func tool(ctx context.Context, in GuardInput, args ...string) error {
	res, err := in.Runner.Run(ctx, hostcmd.Command{Name: "proxmox-boot-tool", Args: args})
	if err == nil && res.Output != "" {
		fmt.Fprint(in.Out, res.Output)
	}
	return err
}

// checkSignatures, with Secure Boot on, makes sure DKMS signs what it
// builds from now on with the one key (made when missing), and marks each
// kernel whose built module is unsigned or signed by a key the firmware
// does not trust.
func checkSignatures(ctx context.Context, in GuardInput, version string, ks []kernels.Kernel) error {
	p := in.Config.Paths
	on, err := secureboot.Enabled(p.Sys)
	if err != nil || !on {
		return err
	}
	if _, created, err := secureboot.EnsureKey(p.Root); err != nil {
		return err
	} else if created {
		fmt.Fprintf(in.Out, "nvidiaprep: Secure Boot is on: made the module signing key %s (DKMS and NVIDIA's installer sign with it)\n", secureboot.CertPath)
	}
	if changed, err := secureboot.EnsureDKMSSigning(p.Root); err != nil {
		return err
	} else if changed {
		fmt.Fprintf(in.Out, "nvidiaprep: Secure Boot is on: DKMS signs the modules it builds from now on (%s)\n", secureboot.DKMSConf)
	}
	enrolled, err := secureboot.Enrolled(p.Sys)
	if err != nil {
		return err
	}
	for i := range ks {
		k := &ks[i]
		if !k.Ready {
			continue
		}
		why := signatureProblem(ctx, in.Runner, p.Root, k.Release, enrolled)
		switch {
		case why == "":
		case strings.Contains(why, "not signed"):
			k.Ready, k.Why = false, why
			k.Fix = fmt.Sprintf("`dkms remove %s/%s -k %s && dkms install %s/%s -k %s` (DKMS signs it now), then %s", kernels.Module, version, k.Release, kernels.Module, version, k.Release, secureboot.EnrollFix)
		default:
			k.Ready, k.Why, k.Fix = false, why, secureboot.EnrollFix
		}
	}
	return nil
}

// SignatureProblem says why Secure Boot would refuse release's installed
// nvidia module (unsigned, or signed by a key shim's MOK list does not
// hold); "" when it would not, when Secure Boot is off, or when there is
// no module.
func SignatureProblem(ctx context.Context, run hostcmd.Runner, root, sys, release string) (string, error) {
	on, err := secureboot.Enabled(sys)
	if err != nil || !on {
		return "", err
	}
	enrolled, err := secureboot.Enrolled(sys)
	if err != nil {
		return "", err
	}
	return signatureProblem(ctx, run, root, release, enrolled), nil
}

// signatureProblem says why Secure Boot would refuse release's nvidia
// module; "" when its signer is enrolled.
func signatureProblem(ctx context.Context, run hostcmd.Runner, root, release string, enrolled []*x509.Certificate) string {
	mod := moduleFile(root, release)
	if mod == "" {
		return ""
	}
	sig, err := secureboot.ModuleSigKey(ctx, run, mod)
	switch {
	case err != nil:
		return fmt.Sprintf("its module's signature cannot be read (%v)", err)
	case sig == "":
		return "its module is not signed, and Secure Boot refuses unsigned modules (DKMS signs only with " + secureboot.DKMSConf + ", which nvidiaprep writes when it installs with Secure Boot on)"
	}
	for _, c := range enrolled {
		if secureboot.SigKey(c) == sig {
			return ""
		}
	}
	return "its module is signed by key " + sig + ", which is not enrolled: Secure Boot refuses it"
}

// moduleFile is the installed nvidia module of a kernel below root: DKMS's updates/dkms on Debian, else the .run's
// kernel/drivers/video; "" when there is none.
func moduleFile(root, release string) string {
	for _, dir := range []string{"updates/dkms", "kernel/drivers/video", "extra"} {
		m, _ := filepath.Glob(filepath.Join(root, "lib/modules", release, dir, "nvidia.ko*"))
		if len(m) > 0 {
			return m[0]
		}
	}
	return ""
}
