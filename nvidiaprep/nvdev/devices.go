package nvdev

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Majors maps character-device driver names from /proc/devices to their
// major numbers, e.g. "nvidia-uvm" → 238.
type Majors map[string]uint32

// ParseDevices reads the "Character devices:" section of /proc/devices.
func ParseDevices(r io.Reader) (Majors, error) {
	majors := Majors{}
	sc := bufio.NewScanner(r)
	inChar := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "Character devices:":
			inChar = true
			continue
		case strings.HasSuffix(line, "devices:"):
			inChar = false
			continue
		case !inChar || line == "":
			continue
		}
		num, name, ok := strings.Cut(line, " ")
		if !ok {
			return nil, fmt.Errorf("parsing /proc/devices: malformed line %q", line)
		}
		major, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("parsing /proc/devices: malformed line %q: %w", line, err)
		}
		if _, seen := majors[strings.TrimSpace(name)]; !seen {
			majors[strings.TrimSpace(name)] = uint32(major)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing /proc/devices: %w", err)
	}
	return majors, nil
}

// Registered reports whether any driver has registered major.
func (m Majors) Registered(major uint32) bool {
	for _, v := range m {
		if v == major {
			return true
		}
	}
	return false
}
