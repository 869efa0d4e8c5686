package config

import (
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
// the rest, however large. The file's other tables are not checked: Load,
// which the hook runs for nvidiaprep's containers, reports what is wrong
// there. A file over a limit, or whose [paths] does not load, is an error.
func LoadPaths(getenv func(string) (string, bool)) (Paths, error) {
	lim := DefaultLimits()
	data := struct {
		Paths Paths `toml:"paths"`
	}{Default().Paths}
	for _, f := range Sources(getenv) {
		text, err := lim.read(f)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return Paths{}, err
		}
		_, text = tomlscan.SplitBOM(text)
		if line := tomlscan.TooDeep(text, lim.Depth); line > 0 {
			return Paths{}, &Error{File: f.Path, Line: line, Err: ErrLimit, Msg: fmt.Sprintf("arrays and inline tables nest more than %d deep here", lim.Depth)}
		}
		if _, err := toml.Decode(pathsText(text), &data); err != nil {
			return Paths{}, &Error{File: f.Path, Key: "paths", Msg: "does not decode: " + err.Error(), Err: err}
		}
	}
	p := data.Paths
	for _, s := range []*string{&p.LXC, &p.Dev, &p.Proc, &p.Sys, &p.Cache, &p.State, &p.PVE, &p.Root} {
		if !filepath.IsAbs(*s) {
			return Paths{}, fmt.Errorf("[paths]: %q is not an absolute path", *s)
		}
		*s = filepath.Clean(*s)
	}
	return p, nil
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
