// Package kernelguard keeps the node's NVIDIA module on every kernel it can
// boot: Gate answers, before an install or upgrade changes anything, "will
// this driver's module build and be accepted on every installed kernel?";
// KernelInstalled checks a kernel that dpkg just installed (the kernel
// packages' postinst.d hook) and says loudly, before any reboot, when its
// module is not there; WhyNotLoaded names the cause after a boot that came
// up without the installed driver. It composes kernels (kernels and DKMS),
// secureboot (the key and the firmware) and nvsupport (GPUs, module types,
// kernel minimums).
package kernelguard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/nvflags"
	"nvidiaprep/nvidiaprep/nvsupport"
	"nvidiaprep/nvidiaprep/secureboot"
)

// GateInput is what Gate checks: a driver version's extracted .run tree
// against the node.
type GateInput struct {
	Version      string
	Tree         string // the extracted .run: supported-gpus.json, nvidia-installer
	KernelModule string // the configuration's kernel_module: open, proprietary or auto
	Root, Sys    string // [paths] root and sys
	Running      string // uname -r
	Runner       hostcmd.Runner
	// Installable tells which of the packages apt can install; nil counts
	// only headers that are installed.
	Installable func(ctx context.Context, pkgs []string) (map[string]bool, error)
	// CreateKey lets the gate make the signing key when Secure Boot is on
	// and there is none (the install path; a read-only check leaves it).
	CreateKey bool
}

// Plan is what Gate found the install needs.
type Plan struct {
	ModuleType string   // --kernel-module-type's value; "" when the branch has one type
	Kernels    []string // every kernel the module is built for, newest first
	// Headers are the packages that bring the missing headers of Kernels.
	Headers []string
	// Signing is the key for --module-signing-* and DKMS, when Secure
	// Boot is on.
	Signing    *secureboot.Key
	KeyCreated bool
	// Enrolled tells whether the firmware trusts Signing's key already;
	// when not, the module loads only after secureboot.EnrollFix.
	Enrolled bool
	Notes    []string // what could not be checked, and what to do before the reboot
}

// RefusedError lists every reason the module would not build or not be
// accepted; nothing was changed.
type RefusedError struct {
	Version string
	Reasons []string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("driver %s would leave the node without a working driver: %s", e.Version, strings.Join(e.Reasons, "; "))
}

// Gate is the one check before anything is removed: the GPUs the branch
// supports, the module type they can use ("auto" asks the installer where
// it can), a known minimum driver for each installed kernel, each
// kernel's headers (installed, or installable), and with Secure Boot on a
// signing key. A *RefusedError lists every reason at once.
func Gate(ctx context.Context, in GateInput) (Plan, error) {
	var p Plan
	var reasons []string

	gpus, err := nvsupport.PCIGPUs(in.Sys)
	if err != nil {
		return p, err
	}
	list, listErr := nvsupport.ReadList(in.Tree)
	if listErr != nil && !errors.Is(listErr, nvsupport.ErrNoList) {
		return p, listErr
	}
	v := nvsupport.Check(in.Version, list, listErr, gpus, in.KernelModule)
	reasons = append(reasons, v.Problems...)
	p.Notes = append(p.Notes, v.Notes...)
	p.ModuleType = v.ModuleType
	if v.AskInstaller && len(v.Problems) == 0 {
		t, err := recommendedType(ctx, in.Runner, in.Tree)
		switch {
		case err != nil:
			p.Notes = append(p.Notes, fmt.Sprintf("the installer's recommended module type is unknown (%v); using %q", err, p.ModuleType))
		default:
			rows := make([]nvsupport.Chip, len(gpus))
			listed := make([]bool, len(gpus))
			for i, g := range gpus {
				rows[i], listed[i] = list.Lookup(g)
			}
			reasons = append(reasons, nvsupport.CheckType(in.Version, t, gpus, rows, listed)...)
			p.ModuleType = t
		}
	}
	if !nvflags.Knows(in.Version, nvflags.KernelModuleType) && p.ModuleType == nvsupport.Proprietary {
		p.ModuleType = "" // the branch's default build
	}

	releases, err := kernels.Installed(in.Root, in.Running)
	if err != nil {
		return p, err
	}
	p.Kernels = releases
	var wanted []string
	missing := map[string][]string{}
	for _, r := range releases {
		if why := nvsupport.CheckKernel(in.Version, r); why != "" {
			reasons = append(reasons, why)
		}
		if !kernels.HasHeaders(in.Root, r) {
			missing[r] = kernels.HeadersPackages(r)
			wanted = append(wanted, missing[r]...)
		}
	}
	if len(missing) > 0 {
		avail := map[string]bool{}
		if in.Installable != nil {
			if avail, err = in.Installable(ctx, wanted); err != nil {
				return p, err
			}
		}
		for _, r := range releases {
			cands, ok := missing[r]
			if !ok {
				continue
			}
			found := ""
			for _, c := range cands {
				if avail[c] {
					found = c
					break
				}
			}
			if found == "" {
				reasons = append(reasons, fmt.Sprintf("kernel %s has no headers and apt knows none of %s, so DKMS cannot build the module for it: add the repository that has them (on Proxmox VE the pve-no-subscription or enterprise repository), or remove that kernel if you no longer boot it", r, strings.Join(cands, ", ")))
				continue
			}
			p.Headers = append(p.Headers, found)
		}
	}

	on, err := secureboot.Enabled(in.Sys)
	if err != nil {
		return p, err
	}
	if on {
		key, created, err := keyFor(in)
		switch {
		case err != nil:
			reasons = append(reasons, fmt.Sprintf("Secure Boot is on, but the module signing key is not ready: %v", err))
		default:
			p.Signing, p.KeyCreated = &key, created
			enrolled, err := secureboot.Enrolled(in.Sys)
			if err != nil {
				p.Notes = append(p.Notes, err.Error())
			}
			p.Enrolled = key.Cert != nil && secureboot.IsEnrolled(key.Cert, enrolled)
			if !p.Enrolled {
				p.Notes = append(p.Notes, "Secure Boot is on and the module signing key "+secureboot.CertPath+" is not enrolled: before the reboot run "+secureboot.EnrollFix)
			}
		}
	}
	if len(reasons) > 0 {
		return p, &RefusedError{Version: in.Version, Reasons: reasons}
	}
	return p, nil
}

func keyFor(in GateInput) (secureboot.Key, bool, error) {
	if in.CreateKey {
		return secureboot.EnsureKey(in.Root)
	}
	k, err := secureboot.ReadKey(in.Root)
	return k, false, err
}

// recommendedType asks the tree's installer which module type the node's
// GPUs call for (--print-recommended-kernel-module-type, 570.86.16 and
// later: "open" or "proprietary", then exit).
func recommendedType(ctx context.Context, run hostcmd.Runner, tree string) (string, error) {
	res, err := run.Run(ctx, hostcmd.Command{Name: "/bin/sh", Args: []string{"-c", `cd "$1" && exec ./nvidia-installer --print-recommended-kernel-module-type`, "sh", tree}})
	if err != nil {
		return "", err
	}
	for _, w := range strings.Fields(res.Stdout) {
		if w == nvsupport.Open || w == nvsupport.Proprietary {
			return w, nil
		}
	}
	return "", fmt.Errorf("it printed %q", strings.TrimSpace(res.Stdout))
}
