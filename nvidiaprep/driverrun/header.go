// Package driverrun handles NVIDIA's driver package, the .run file, on the
// host: it reads the version from the stub's header, checks a pinned
// sha256, finds a version's .run in the cache and extracts each version once
// (the .run's own --extract-only --target) into a tree that containers read
// through a read-only overlay (pre-start mounts it).
package driverrun

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"nvidiaprep/nvidiaprep/nvversion"
	"strconv"
	"strings"
)

// Header holds the variables of a .run's stub that nvidiaprep uses.
type Header struct {
	Label     string // "NVIDIA Accelerated Graphics Driver for Linux-x86_64 <ver>"
	Version   string // version_string=
	TargetDir string // targetdir=
	Skip      int    // line where the payload starts
}

// errNotNVIDIA means the file is not an NVIDIA driver .run.
var errNotNVIDIA = errors.New("not an NVIDIA driver .run (its header lacks NVIDIA's makeself variables)")

// maxHeaderLines bounds how far ReadHeader looks: the variables come first.
const maxHeaderLines = 40

// ReadHeader reads the stub's variable lines: "#! /bin/sh", then CRCsum=,
// MD5=, skip=, ..., label=, version_string=, ..., targetdir= in NVIDIA's
// order. It reads at most a few kilobytes.
func ReadHeader(r io.Reader) (Header, error) {
	sc := bufio.NewScanner(io.LimitReader(r, 16<<10))
	vars := map[string]string{}
	for n := 0; n < maxHeaderLines && sc.Scan(); n++ {
		line := sc.Text()
		if n == 0 {
			if !strings.HasPrefix(line, "#!") || !strings.Contains(line, "/bin/sh") {
				return Header{}, errNotNVIDIA
			}
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(key, " \t#$") {
			break // end of the variable lines
		}
		vars[key] = strings.Trim(value, `"`)
	}
	if err := sc.Err(); err != nil {
		return Header{}, fmt.Errorf("reading .run header: %w", err)
	}
	for _, k := range []string{"CRCsum", "MD5", "skip", "label", "version_string", "targetdir"} {
		if _, ok := vars[k]; !ok {
			return Header{}, errNotNVIDIA
		}
	}
	h := Header{Label: vars["label"], Version: vars["version_string"], TargetDir: vars["targetdir"]}
	if !strings.HasPrefix(h.Label, "NVIDIA Accelerated Graphics Driver") {
		return Header{}, fmt.Errorf("%w: label %q", errNotNVIDIA, h.Label)
	}
	if why := nvversion.Problem(h.Version); why != "" {
		return Header{}, fmt.Errorf("%w: version_string %q: %s", errNotNVIDIA, h.Version, why)
	}
	skip, err := strconv.Atoi(vars["skip"])
	if err != nil || skip < 2 {
		return Header{}, fmt.Errorf("%w: skip %q", errNotNVIDIA, vars["skip"])
	}
	h.Skip = skip
	return h, nil
}
