// Package nodeconf edits the node's configuration file the way an admin
// would: as text. It rewrites one container's [containers.N] table and leaves
// every other line, comments and other tables included, byte for byte, then
// checks that the result loads before it replaces the file atomically.
package nodeconf

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/filelock"
	"nvidiaprep/nvidiaprep/fsutil"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/tomlscan"
)

// Settings are what enable sets in a container's table; a nil field leaves
// that key as it is.
type Settings struct {
	GPUs     *gpusel.Selection
	Required *bool
	Install  *bool
	Chain    *string // the container's own hookscript, run first; "" removes none
}

// SetContainer returns text with a [containers.vmid] table holding s. An
// existing table is edited in place: each key that s sets is rewritten (a
// comment at its end kept), everything else stays. A new table is appended
// with gpus, required and install, base (the configuration in effect)
// supplying those s leaves nil, so that the node file says what the
// container gets; the keys it does not write (strict, chain) are inherited
// from the cluster's table, key by key.
func SetContainer(text []byte, vmid int, s Settings, base config.Container) ([]byte, error) {
	mark, text := tomlscan.SplitBOM(text)
	out, err := setContainer(text, vmid, s, base)
	if err != nil {
		return nil, err
	}
	return append(mark, out...), nil
}

func setContainer(text []byte, vmid int, s Settings, base config.Container) ([]byte, error) {
	lines, at, err := find(text, vmid)
	if err != nil {
		return nil, err
	}
	want := []struct{ key, value string }{}
	if s.GPUs != nil {
		want = append(want, struct{ key, value string }{"gpus", gpusValue(*s.GPUs)})
	}
	if s.Required != nil {
		want = append(want, struct{ key, value string }{"required", strconv.FormatBool(*s.Required)})
	}
	if s.Install != nil {
		want = append(want, struct{ key, value string }{"install", strconv.FormatBool(*s.Install)})
	}
	if s.Chain != nil && *s.Chain != "" {
		want = append(want, struct{ key, value string }{"chain", strconv.Quote(*s.Chain)})
	}
	raw := rawLines(text)
	if at < 0 {
		c := base
		if s.GPUs != nil {
			c.GPUs = *s.GPUs
		}
		if s.Required != nil {
			c.Required = *s.Required
		}
		if s.Install != nil {
			c.Install = *s.Install
		}
		if s.Chain != nil && *s.Chain != "" {
			c.Chain = *s.Chain
		}
		if len(raw) > 0 && strings.TrimSpace(raw[len(raw)-1]) != "" {
			raw = append(raw, "")
		}
		raw = append(raw, fmt.Sprintf("[containers.%d]", vmid),
			"gpus = "+gpusValue(c.GPUs),
			"required = "+strconv.FormatBool(c.Required),
			"install = "+strconv.FormatBool(c.Install))
		if c.Chain != "" {
			raw = append(raw, "chain = "+strconv.Quote(c.Chain))
		}
		return join(raw), nil
	}
	end := tableEnd(lines, at)
	for _, w := range want {
		i := keyLine(lines, at+1, end, w.key)
		if i < 0 {
			insert := lastContent(lines, at, end) + 1
			raw = append(raw[:insert], append([]string{w.key + " = " + w.value}, raw[insert:]...)...)
			lines = append(lines[:insert], append([]line{{key: w.key, span: 1, comment: -1}}, lines[insert:]...)...)
			end++
			continue
		}
		l := lines[i]
		last := i + l.span - 1
		indent := l.text[:len(l.text)-len(strings.TrimLeft(l.text, " \t"))]
		repl := indent + w.key + " = " + w.value
		if l.comment >= 0 {
			repl += "  " + lines[last].text[l.comment:]
		}
		raw = append(raw[:i], append([]string{repl}, raw[last+1:]...)...)
		lines = append(lines[:i], append([]line{{text: repl, key: w.key, span: 1, comment: -1}}, lines[last+1:]...)...)
		end -= l.span - 1
	}
	return join(raw), nil
}

// RemoveContainer returns text without the [containers.vmid] table: its
// header, its keys and the comments among them (a comment block after its
// last key, and one above its header, stay). found is false when the file
// has no such table.
func RemoveContainer(text []byte, vmid int) (out []byte, found bool, err error) {
	mark, rest := tomlscan.SplitBOM(text)
	out, found, err = removeContainer(rest, vmid)
	if err != nil || !found {
		return text, found, err
	}
	return append(mark, out...), true, nil
}

func removeContainer(text []byte, vmid int) (out []byte, found bool, err error) {
	lines, at, err := find(text, vmid)
	if err != nil || at < 0 {
		return text, false, err
	}
	last := lastContent(lines, at, tableEnd(lines, at))
	raw := rawLines(text)
	cut := last + 1
	// Keep one blank line between what was before and what follows.
	if cut < len(raw) && strings.TrimSpace(raw[cut]) == "" && (at == 0 || strings.TrimSpace(raw[at-1]) == "") {
		cut++
	}
	raw = append(raw[:at], raw[cut:]...)
	for len(raw) > 0 && strings.TrimSpace(raw[len(raw)-1]) == "" {
		raw = raw[:len(raw)-1]
	}
	return join(raw), true, nil
}

// find checks that text parses and returns its lines and the index of the
// [containers.vmid] header, -1 when there is none. A container defined in
// another form (dotted keys, an inline table) cannot be edited safely.
func find(text []byte, vmid int) ([]line, int, error) {
	var v map[string]any
	md, err := toml.Decode(string(text), &v)
	if err != nil {
		return nil, 0, fmt.Errorf("the file does not parse: %w", err)
	}
	id := strconv.Itoa(vmid)
	defined := false
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "containers" && k[1] == id {
			defined = true
		}
	}
	lines := scan(string(text))
	for i, l := range lines {
		if l.isHeader && !l.isArray && len(l.header) == 2 && l.header[0] == "containers" && l.header[1] == id {
			return lines, i, nil
		}
	}
	if defined {
		return nil, 0, fmt.Errorf("its table is written there in a form other than a [containers.%d] table (dotted keys or an inline table), which this command does not edit: write it as a [containers.%d] table, or edit it by hand", vmid, vmid)
	}
	return lines, -1, nil
}

// tableEnd is the index of the header after the table at, or len(lines).
func tableEnd(lines []line, at int) int {
	for i := at + 1; i < len(lines); i++ {
		if lines[i].isHeader {
			return i
		}
	}
	return len(lines)
}

// lastContent is the last line of the last key of the table at (at itself
// when it has none).
func lastContent(lines []line, at, end int) int {
	last := at
	for i := at + 1; i < end; i++ {
		if lines[i].key != "" {
			last = i + lines[i].span - 1
		}
	}
	return last
}

func keyLine(lines []line, from, to int, key string) int {
	for i := from; i < to; i++ {
		if lines[i].key == key {
			return i
		}
	}
	return -1
}

func rawLines(text []byte) []string {
	s := string(text)
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func join(raw []string) []byte {
	if len(raw) == 0 {
		return nil
	}
	return []byte(strings.Join(raw, "\n") + "\n")
}

// gpusValue writes a selection as the gpus array.
func gpusValue(s gpusel.Selection) string {
	list := s.List()
	q := make([]string, len(list))
	for i, sel := range list {
		q[i] = strconv.Quote(sel)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// Edit changes the node file at path: under a lock beside it, it reads the
// file (a missing one is empty), applies change, checks that the result
// loads after the cluster file, as every reader will load it, and only then
// replaces the file atomically and durably. A result that does not load is
// an error naming the line, and the file stays as it was.
//
// A node file that is a symbolic link (to a file kept in a repository, say)
// stays one: the file it points to is edited.
func Edit(ctx context.Context, path string, cluster config.File, change func([]byte) ([]byte, error)) error {
	path, err := resolve(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("editing %s: %w", path, err)
	}
	lock, err := filelock.Wait(ctx, filepath.Join(dir, "."+filepath.Base(path)+".lock"))
	if err != nil {
		return fmt.Errorf("editing %s: %w", path, err)
	}
	defer lock.Unlock()
	old, err := fsutil.ReadRegular(path, config.MaxFileSize)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("editing %s: %w", path, err)
	}
	text, err := change(old)
	if err != nil {
		return fmt.Errorf("%s: %w; nothing was changed", path, err)
	}
	if err := check(path, cluster, old, text); err != nil {
		return err
	}
	if string(text) == string(old) && old != nil {
		return nil
	}
	if err := fsutil.WriteFileDurable(path, text, 0o644); err != nil {
		return fmt.Errorf("editing %s: %w", path, err)
	}
	return nil
}

// resolve follows path's symbolic links to the file they name; a missing
// file is path itself, a link to nothing an error.
func resolve(path string) (string, error) {
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&os.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		to, _ := os.Readlink(path)
		return "", fmt.Errorf("editing %s: it is a symbolic link to %s, which cannot be followed (%w): create that file, or replace the link by a file; nothing was changed", path, to, err)
	}
	return target, nil
}

// check loads the cluster file and text as the node file; errors name path.
// A result that does not load, or that has an error in a container's table
// that the file before the edit (old) did not have, is refused.
func check(path string, cluster config.File, old, text []byte) error {
	tmp, err := os.MkdirTemp("", "nvidiaprep-edit-")
	if err != nil {
		return fmt.Errorf("checking the edit of %s: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	load := func(text []byte) (config.Config, error) {
		cand := filepath.Join(tmp, filepath.Base(path))
		if err := os.WriteFile(cand, text, 0o600); err != nil {
			return config.Config{}, fmt.Errorf("checking the edit of %s: %w", path, err)
		}
		cfg, err := config.LoadFiles(cluster, config.File{Path: cand})
		var ce *config.Error
		if errors.As(err, &ce) && ce.File == cand {
			c := *ce
			c.File = path
			return cfg, fmt.Errorf("the edit would make %w; nothing was changed", &c)
		}
		if err != nil {
			return cfg, fmt.Errorf("%w; %s was not changed", err, path)
		}
		for _, p := range cfg.Problems {
			if p.File == cand {
				p.File = path
			}
		}
		return cfg, nil
	}
	before, _ := load(old)
	after, err := load(text)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, p := range before.Problems {
		known[p.Key+"\x00"+p.Msg] = true
	}
	for _, p := range after.Problems {
		if !known[p.Key+"\x00"+p.Msg] {
			return fmt.Errorf("the edit would make %w; nothing was changed", p)
		}
	}
	return nil
}
