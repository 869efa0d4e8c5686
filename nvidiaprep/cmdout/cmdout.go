// Package cmdout sums up a command's output for an error message.
package cmdout

import "strings"

// LastLines returns the last n non-empty lines of s, joined with " | ".
func LastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
