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
)

// ErrNoDriver means that no NVIDIA kernel module is loaded on this host.
var ErrNoDriver = errors.New("no NVIDIA kernel module is loaded")

// LoadedVersion returns the version of the loaded NVIDIA kernel module, read
// from <sys>/module/nvidia/version (cheapest) or the "NVRM version:" line of
// <proc>/driver/nvidia/version. It returns ErrNoDriver when neither exists.
func LoadedVersion(sysRoot, procRoot string) (string, error) {
	b, err := fsutil.ReadRegular(filepath.Join(sysRoot, "module/nvidia/version"), 4096)
	if err == nil {
		if v := strings.TrimSpace(string(b)); ValidVersion(v) {
			return v, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("reading loaded driver version: %w", err)
	}
	f, err := fsutil.OpenRegular(filepath.Join(procRoot, "driver/nvidia/version"))
	if errors.Is(err, os.ErrNotExist) {
		return "", ErrNoDriver
	}
	if err != nil {
		return "", fmt.Errorf("reading loaded driver version: %w", err)
	}
	defer f.Close()
	v, err := ParseProcVersion(f)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.Name(), err)
	}
	return v, nil
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
			if ValidVersion(field) {
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

// ValidVersion reports whether v looks like an NVIDIA driver version: two or
// three dot-separated decimal parts ("580.142", "580.159.04").
func ValidVersion(v string) bool {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 4 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
