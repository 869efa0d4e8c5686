package config

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"

	"nvidiaprep/nvidiaprep/tomlscan"
)

// LoadPaths reads only the [paths] of the files that Sources names, held to
// the same limits as Load: the units' drop-in, which runs before every
// container start of the node, needs only where Proxmox's and LXC's files
// are to tell a container that is not nvidiaprep's, and so never decodes
// the rest, however large. The files' other tables are not checked: Load,
// which the hook runs for nvidiaprep's containers, reports what is wrong
// there. A file that cannot be read, is over a limit or whose [paths] does
// not load is skipped, and the first such is the error returned with the
// paths the other files give.
func LoadPaths(getenv func(string) (string, bool)) (Paths, error) {
	lim := DefaultLimits()
	var firstErr error
	p := Default().Paths
	for _, f := range Sources(getenv) {
		next, err := lim.readPaths(f, p)
		if err != nil && !errors.Is(err, errSkip) {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		p = next
	}
	return p, firstErr
}

// readPaths reads f's [paths] over p.
func (lim Limits) readPaths(f File, p Paths) (Paths, error) {
	text, err := lim.read(f)
	if err != nil {
		return p, err
	}
	_, text = tomlscan.SplitBOM(text)
	if line := tomlscan.TooDeep(text, lim.Depth); line > 0 {
		return p, &Error{File: f.Path, Line: line, Err: ErrLimit, Msg: fmt.Sprintf("arrays and inline tables nest more than %d deep here, the limit on a configuration file", lim.Depth)}
	}
	data := struct {
		Paths Paths `toml:"paths"`
	}{p}
	if _, err := toml.Decode(pathsText(text), &data); err != nil {
		return p, &Error{File: f.Path, Key: "paths", Msg: "does not decode: " + err.Error(), Err: err}
	}
	for _, s := range []*string{&data.Paths.LXC, &data.Paths.Dev, &data.Paths.Proc, &data.Paths.Sys, &data.Paths.Cache, &data.Paths.State, &data.Paths.PVE, &data.Paths.Root} {
		if !filepath.IsAbs(*s) {
			return p, &Error{File: f.Path, Key: "paths", Msg: fmt.Sprintf("%q is not an absolute path", *s)}
		}
		*s = filepath.Clean(*s)
	}
	return data.Paths, nil
}

// pathsText is the lines of text's statements that set keys of [paths]:
// the [paths] header and its keys, and "paths.x = ..." or "paths = {...}"
// before any header. Other statements' lines are left out.
func pathsText(text []byte) string {
	lines := strings.Split(string(text), "\n")
	var b strings.Builder
	var table toml.Key
	for _, st := range tomlscan.Scan(text).Statements {
		key := st.Key
		if st.Header {
			table = st.Key
		} else {
			key = append(append(toml.Key{}, table...), st.Key...)
		}
		if len(key) == 0 || key[0] != "paths" || st.Line < 1 || st.EndLine > len(lines) || st.EndLine < st.Line {
			continue
		}
		for _, l := range lines[st.Line-1 : st.EndLine] {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
