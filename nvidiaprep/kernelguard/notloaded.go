package kernelguard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/hostcmd"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/nvsupport"
	"nvidiaprep/nvidiaprep/secureboot"
)

// Cause is one reason the installed driver is not loaded, and its fix.
type Cause struct {
	What string `json:"what"`
	Fix  string `json:"fix"`
	// RebootHelps: the fix ends in a reboot that loads the driver; when
	// false, rebooting again changes nothing.
	RebootHelps bool `json:"reboot_helps"`
}

func (c Cause) String() string { return c.What + "; fix: " + c.Fix }

// NotLoadedInput is what WhyNotLoaded looks at.
type NotLoadedInput struct {
	Version      string // the installed driver
	KernelModule string // the configuration's kernel_module
	Tree         string // its extracted .run; "" when unknown
	Root, Sys    string
	Proc         string
	Running      string // uname -r
	Runner       hostcmd.Runner
	KernelLog    string // this boot's kernel log (journalctl -k -b); "" when unknown
}

// WhyNotLoaded names the causes it can see of a boot that came up without
// the installed driver, each with the fix that works for it: a GPU or a
// module type the branch does not support, no module for the running
// kernel (headers, a failed build, a known minimum driver), the kernel's
// refusal of its signature, nouveau holding the GPUs. It never answers
// "reboot" where a reboot does not help; with no cause found it says how
// to find one.
func WhyNotLoaded(ctx context.Context, in NotLoadedInput) []Cause {
	var out []Cause
	gpus, _ := nvsupport.PCIGPUs(in.Sys)
	if in.Tree != "" && len(gpus) > 0 {
		list, err := nvsupport.ReadList(in.Tree)
		if err == nil || errors.Is(err, nvsupport.ErrNoList) {
			v := nvsupport.Check(in.Version, list, err, gpus, in.KernelModule)
			for _, p := range v.Problems {
				out = append(out, Cause{What: p, Fix: "change [driver] in /etc/nvidiaprep/nvidiaprep.toml as it says, then `systemctl restart nvidiaprep-host-driver.service`"})
			}
		}
	}

	c := kernels.Checker{Root: in.Root, Running: in.Running, Runner: in.Runner}
	if states, err := kernels.Status(ctx, in.Runner, in.Version); err != nil {
		out = append(out, Cause{What: fmt.Sprintf("whether DKMS built driver %s's module for kernel %s is unknown: %v", in.Version, in.Running, err),
			Fix: "install dkms (`apt install dkms`), then `dkms autoinstall -k " + in.Running + "` and `modprobe nvidia`"})
	} else if k := c.Judge(in.Version, in.Running, states[in.Running]); !k.Ready {
		// The unit's own run loads it (modprobe nvidia), makes its device
		// nodes and records the boot as one with the driver.
		fix := k.Fix + "; then `systemctl restart nvidiaprep-host-driver.service` loads it without a reboot (modprobe nvidia) and makes its device nodes"
		all, _ := c.Check(ctx, in.Version)
		if w := kernels.Working(all); w != "" && w != in.Running {
			fix += fmt.Sprintf("; or boot kernel %s, which has it: %s, then reboot", w, kernels.PinCommand(w))
		}
		out = append(out, Cause{What: fmt.Sprintf("the running kernel %s has no NVIDIA driver %s module: %s", in.Running, in.Version, k.Why), Fix: fix})
	}

	if line := secureboot.Refusal(in.KernelLog); line != "" {
		out = append(out, Cause{What: fmt.Sprintf("the kernel refused the NVIDIA module for its signature (%q)", line),
			Fix: "enroll the key DKMS and the installer sign with: " + secureboot.EnrollFix, RebootHelps: true})
	} else if on, _ := secureboot.Enabled(in.Sys); on {
		if mod := moduleFile(in.Root, in.Running); mod != "" {
			enrolled, _ := secureboot.Enrolled(in.Sys)
			if why := signatureProblem(ctx, in.Runner, in.Root, in.Running, enrolled); why != "" {
				out = append(out, Cause{What: "Secure Boot is on and kernel " + in.Running + "'s NVIDIA module: " + why, Fix: secureboot.EnrollFix, RebootHelps: true})
			}
		}
	}

	if nouveauLoaded(in.Proc) {
		out = append(out, Cause{What: "the nouveau driver is loaded and holds the GPUs",
			Fix: NouveauBlacklistFix + ", then reboot", RebootHelps: true})
	}
	if len(out) == 0 {
		out = append(out, Cause{What: fmt.Sprintf("no cause found: DKMS has driver %s's module for kernel %s, and nothing in the kernel log names why it did not load", in.Version, in.Running),
			Fix: "`modprobe nvidia` loads it now (or prints why not); `journalctl -k -b -g nvidia` shows what the kernel said"})
	}
	return out
}

// NouveauBlacklistFile is the modprobe.d file, below the node's root, in
// which each host driver install blacklists nouveau.
const NouveauBlacklistFile = "etc/modprobe.d/nvidiaprep-blacklist-nouveau.conf"

// NouveauBlacklistFix is the command that writes that file by hand.
const NouveauBlacklistFix = "`printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' > /" + NouveauBlacklistFile + " && update-initramfs -u`"

// nouveauLoaded reads <proc>/modules.
func nouveauLoaded(proc string) bool {
	f, err := fsutil.OpenRegular(filepath.Join(proc, "modules"))
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, _ := strings.Cut(sc.Text(), " "); name == "nouveau" {
			return true
		}
	}
	return false
}

// KernelLog reads this boot's kernel log (journalctl, else dmesg).
func KernelLog(ctx context.Context, run hostcmd.Runner) (string, error) {
	var errs []string
	for _, argv := range [][]string{{"journalctl", "-k", "-b", "--no-pager", "-q", "-o", "cat"}, {"dmesg"}} {
		res, err := run.Run(ctx, hostcmd.Command{Name: argv[0], Args: argv[1:]})
		if err == nil {
			return res.Stdout, nil
		}
		errs = append(errs, err.Error())
	}
	return "", fmt.Errorf("could not read the kernel log: %s", strings.Join(errs, "; "))
}
