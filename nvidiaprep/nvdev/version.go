package nvdev

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/nvversion"
)

// ErrNoDriver means that no NVIDIA kernel module is loaded on this host.
var ErrNoDriver = errors.New("no NVIDIA kernel module is loaded")

// LoadedVersion returns the version of the loaded NVIDIA kernel module, read
// from <sys>/module/nvidia/version and the "NVRM version:" line of
// <proc>/driver/nvidia/version (either may be missing). It returns
// ErrNoDriver when neither exists, and an error that says what is wrong and
// what to do when one holds no driver version or the two disagree: then it
// cannot tell which driver runs.
func LoadedVersion(sysRoot, procRoot string) (string, error) {
	sysPath := filepath.Join(sysRoot, "module/nvidia/version")
	sysV := ""
	b, err := fsutil.ReadRegular(sysPath, 4096)
	switch {
	case err == nil:
		sysV = strings.TrimSpace(string(b))
		if why := nvversion.Problem(sysV); why != "" {
			return "", fmt.Errorf("the loaded NVIDIA kernel module reports version %q in %s: %s; nvidiaprep cannot tell which driver runs: check the module (`modinfo nvidia`, `dmesg | grep NVRM`), then reload it or reboot", sysV, sysPath, why)
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("reading loaded driver version: %w", err)
	}
	procPath := filepath.Join(procRoot, "driver/nvidia/version")
	f, err := fsutil.OpenRegular(procPath)
	if errors.Is(err, os.ErrNotExist) {
		if sysV != "" {
			return sysV, nil
		}
		return "", ErrNoDriver
	}
	if err != nil {
		return "", fmt.Errorf("reading loaded driver version: %w", err)
	}
	defer f.Close()
	procV, err := ParseProcVersion(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", procPath, err)
	}
	if sysV != "" && sysV != procV {
		return "", fmt.Errorf("the NVIDIA kernel module reports driver %s in %s but %s in %s: both come from the loaded module and must agree, so nvidiaprep cannot tell which driver runs; reload the module (`modprobe -r nvidia_uvm nvidia_drm nvidia_modeset nvidia && modprobe nvidia`) or reboot, then check `dmesg | grep NVRM`", sysV, sysPath, procV, procPath)
	}
	return procV, nil
}

// ParseProcVersion finds the driver version in the "NVRM version:" line of
// /proc/driver/nvidia/version, e.g.
// "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build ...".
func ParseProcVersion(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "NVRM version:") {
			continue
		}
		for _, field := range strings.Fields(line) {
			if nvversion.Valid(field) {
				return field, nil
			}
		}
		return "", fmt.Errorf("no version number in %q", line)
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no \"NVRM version:\" line")
}
