// Package nvversion owns what an NVIDIA driver version is as text: its
// syntax (Valid, Problem) and its order (Compare, AtLeast). It reads no
// file: the loaded driver's version is nvdev's, an installer's header is
// driverrun's.
package nvversion

import (
	"fmt"
	"strconv"
	"strings"
)

// Valid reports whether v looks like an NVIDIA driver version: two or
// three dot-separated decimal parts ("580.142", "580.159.04").
func Valid(v string) bool { return Problem(v) == "" }

// Problem says why v is no NVIDIA driver version, "" when it is one.
func Problem(v string) string {
	const want = "an NVIDIA driver version has two or three numbers separated by dots, such as 580.142 or 580.159.04"
	parts := strings.Split(v, ".")
	if len(parts) > 3 {
		return fmt.Sprintf("it has %d parts, but %s", len(parts), want)
	}
	if len(parts) < 2 {
		return want
	}
	for _, p := range parts {
		if p == "" || len(p) > 4 || strings.Trim(p, "0123456789") != "" {
			return want
		}
	}
	return ""
}

// AtLeast tells whether driver version v (580.159.04, 535.216.01, 580.142)
// is min or later, comparing the dotted parts as numbers.
func AtLeast(v, min string) bool { return Compare(v, min) >= 0 }

// Compare orders two driver versions: -1, 0 or 1. A missing part counts
// as 0 (580.142 = 580.142.0).
func Compare(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) || i < len(pb); i++ {
		x, y := part(pa, i), part(pb, i)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
	}
	return 0
}

func part(p []string, i int) int {
	if i >= len(p) {
		return 0
	}
	n, _ := strconv.Atoi(p[i])
	return n
}
