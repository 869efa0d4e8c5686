// Package lxcconf edits a generated LXC config (/var/lib/lxc/<vmid>/config)
// as text: it finds the key = value lines that are not ours and replaces the
// one marked block that nvidiaprep owns. Every line outside the block comes
// out byte for byte, but for the hand-written lines that Disable turns into
// comments; applying the same block twice equals applying it once.
package lxcconf

import (
	"bytes"
	"fmt"
	"strings"
)

// The markers around nvidiaprep's block.
const (
	Begin = "# BEGIN nvidiaprep: written by nvidiaprep-hook at every start; edits here are lost"
	End   = "# END nvidiaprep"
)

// MaxSize is the largest LXC config nvidiaprep reads: Proxmox writes a
// few KiB; anything near this is not a container's config.
const MaxSize = 4 << 20

// Entry is one "key = value" line outside nvidiaprep's block.
type Entry struct {
	Line  int // 1-based
	Key   string
	Value string
	Raw   string
}

// Entries returns the key = value lines outside nvidiaprep's block.
func Entries(config []byte) ([]Entry, error) {
	if _, _, err := findBlock(config); err != nil {
		return nil, err
	}
	var out []Entry
	inBlock := false
	for i, raw := range strings.Split(string(config), "\n") {
		line := strings.TrimSpace(raw)
		switch {
		case line == Begin:
			inBlock = true
			continue
		case line == End:
			inBlock = false
			continue
		case inBlock || line == "" || strings.HasPrefix(line, "#"):
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		out = append(out, Entry{Line: i + 1, Key: strings.TrimSpace(key), Value: strings.TrimSpace(value), Raw: raw})
	}
	return out, nil
}

// Apply returns config without any earlier nvidiaprep block and, when lines
// is not empty, with a new block of lines appended at the end. It refuses a
// config whose markers are broken (a BEGIN without its END, or the reverse),
// since it cannot tell which lines are whose.
func Apply(config []byte, lines []string) ([]byte, error) {
	start, end, err := findBlock(config)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(config) + 64*len(lines))
	if start < 0 {
		out.Write(config)
	} else {
		out.Write(config[:start])
		out.Write(config[end:])
	}
	if len(lines) == 0 {
		return out.Bytes(), nil
	}
	if out.Len() > 0 && !bytes.HasSuffix(out.Bytes(), []byte("\n")) {
		out.WriteByte('\n')
	}
	out.WriteString(Begin + "\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\r") {
			return nil, fmt.Errorf("block line %q contains a line break", l)
		}
		if strings.ContainsRune(l, 0) {
			return nil, fmt.Errorf("block line %q contains a NUL byte", l)
		}
		if t := strings.TrimSpace(l); t == Begin || t == End {
			return nil, fmt.Errorf("block line %q is a marker", l)
		}
		out.WriteString(l + "\n")
	}
	out.WriteString(End + "\n")
	return out.Bytes(), nil
}

// findBlock returns the byte range of the block, lines and trailing newline
// included, or -1, -1 when there is none. A config with a NUL byte is
// refused: liblxc stops reading a config there, so lines after it,
// nvidiaprep's among them, would be ignored without a word.
func findBlock(config []byte) (start, end int, err error) {
	if i := bytes.IndexByte(config, 0); i >= 0 {
		return -1, -1, fmt.Errorf("line %d: a NUL byte, where liblxc stops reading the config: the file is damaged; let Proxmox write it anew (pct start)", bytes.Count(config[:i], []byte("\n"))+1)
	}
	start, end = -1, -1
	pos := 0
	for lineNo := 1; pos < len(config); lineNo++ {
		next := bytes.IndexByte(config[pos:], '\n')
		lineEnd := len(config)
		if next >= 0 {
			lineEnd = pos + next + 1
		}
		line := strings.TrimSpace(string(config[pos:lineEnd]))
		switch line {
		case Begin:
			if start >= 0 {
				return -1, -1, fmt.Errorf("line %d: a second %q marker; remove nvidiaprep's lines by hand", lineNo, Begin)
			}
			start = pos
		case End:
			if start < 0 || end >= 0 {
				return -1, -1, fmt.Errorf("line %d: %q without its BEGIN marker; remove nvidiaprep's lines by hand", lineNo, End)
			}
			end = lineEnd
		}
		pos = lineEnd
	}
	if start >= 0 && end < 0 {
		return -1, -1, fmt.Errorf("nvidiaprep's BEGIN marker has no END marker; remove nvidiaprep's lines by hand")
	}
	return start, end, nil
}

// HasBlock tells whether config holds a whole nvidiaprep block.
func HasBlock(config []byte) bool {
	start, _, err := findBlock(config)
	return err == nil && start >= 0
}

// Disabled starts a hand-written line that Disable turned into a comment.
const Disabled = "# nvidiaprep: superseded by its block below: "

// Disable returns config with the lines numbered in lines (1-based, as
// Entry.Line) turned into comments: Disabled, then the line as it was.
// LXC mounts at a path only the first entry for it (a later one finds a
// mount point there and is skipped), so a hand-written bind of the host's
// node at a path that nvidiaprep's block mounts would hide the container's
// own copy. Proxmox writes the config anew at every start, so the admin's
// line is back for the next pre-start to judge.
func Disable(config []byte, lines []int) []byte {
	drop := map[int]bool{}
	for _, n := range lines {
		drop[n] = true
	}
	var out bytes.Buffer
	out.Grow(len(config) + len(lines)*len(Disabled))
	for n := 1; len(config) > 0; n++ {
		line := config
		if i := bytes.IndexByte(config, '\n'); i >= 0 {
			line = config[:i+1]
		}
		config = config[len(line):]
		if drop[n] {
			out.WriteString(Disabled)
		}
		out.Write(line)
	}
	return out.Bytes()
}
