package config

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/nvversion"
	"nvidiaprep/nvidiaprep/tomlscan"
)

// fileData is what the files decode into. Every file is decoded into the same
// fileData, so a key in a later file overrides the same key of an earlier one.
// The containers' tables are kept undecoded (toml.Primitive) and decoded one
// by one, so that an error in one is that container's alone; their keys are
// merged one at a time too (see loader.merge).
type fileData struct {
	Paths      Paths                     `toml:"paths"`
	Provision  fileProvision             `toml:"provision"`
	Driver     Driver                    `toml:"driver"`
	Containers map[string]toml.Primitive `toml:"containers"`
}

type fileProvision struct {
	SystemdTimeout  duration `toml:"systemd_timeout"`
	DpkgLockTimeout duration `toml:"dpkg_lock_timeout"`
	InstallTimeout  duration `toml:"install_timeout"`
	MaxConcurrent   int      `toml:"max_concurrent"`
}

// duration is a positive time.Duration, written as a string such as "90s".
// BurntSushi/toml decodes it through UnmarshalText and reports its error as
// a toml.ParseError that names the key and its line.
type duration time.Duration

func (d *duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil || v <= 0 {
		return fmt.Errorf(`invalid duration %q: must be a positive duration such as "90s", "2m" or "1h30m"`, text)
	}
	*d = duration(v)
	return nil
}

type fileContainer struct {
	GPUs     *[]any  `toml:"gpus"` // elements are checked to be strings
	Required *bool   `toml:"required"`
	Install  *bool   `toml:"install"`
	Chain    *string `toml:"chain"`
	Strict   *bool   `toml:"strict"`
	GID      *int64  `toml:"gid"`
	Mode     *string `toml:"mode"`
}

// TOML types as toml.MetaData.Type names them.
const (
	tString  = "String"
	tInteger = "Integer"
	tBool    = "Bool"
	tArray   = "Array"
	tTable   = "Hash"
)

// keySpec describes a key that a file may hold.
type keySpec struct {
	name string    // the key; "" stands for any vmid
	typ  string    // its TOML type
	sub  []keySpec // a table's keys, in the order error messages list them
	desc string    // what the value must be, if more than its type says
}

func (s keySpec) want() string {
	if s.desc != "" {
		return s.desc
	}
	return typeName(s.typ)
}

// schema describes every key a file may hold.
func schema() []keySpec {
	leaves := func(typ string, names ...string) []keySpec {
		var s []keySpec
		for _, n := range names {
			s = append(s, keySpec{name: n, typ: typ})
		}
		return s
	}
	provision := append(leaves(tString, "systemd_timeout", "dpkg_lock_timeout", "install_timeout"),
		keySpec{name: "max_concurrent", typ: tInteger})
	container := append([]keySpec{{name: "gpus", typ: tArray, desc: "an array of GPU selectors (strings)"}},
		leaves(tBool, "required", "install")...)
	container = append(container, keySpec{name: "chain", typ: tString, desc: `a hookscript volume id such as "local:snippets/my-hook.sh"`},
		keySpec{name: "strict", typ: tBool},
		keySpec{name: "gid", typ: tInteger, desc: "a group id inside the container (0 to 65535)"},
		keySpec{name: "mode", typ: tString, desc: `an octal mode such as "0660"`})
	return []keySpec{
		{name: "paths", typ: tTable, sub: leaves(tString, "lxc", "dev", "proc", "sys", "cache", "state", "pve", "root")},
		{name: "provision", typ: tTable, sub: provision},
		{name: "driver", typ: tTable, sub: append(leaves(tString, "version", "run", "sha256", "kernel_module", "reboot"), keySpec{name: "pin_working_kernel", typ: tBool})},
		{name: "containers", typ: tTable, sub: []keySpec{{typ: tTable, sub: container}}},
	}
}

// problem is something wrong with a key of one file.
type problem struct {
	key toml.Key
	msg string
	err error
}

// loader accumulates files onto the defaults.
type loader struct {
	limits Limits
	data   fileData
	cfg    Config // paths, provision and driver, as loaded so far
	tables map[int]*table
	// problems are the errors confined to one container's table.
	problems []*Error
}

// table is one container's table, merged over the files read so far.
type table struct {
	fileContainer
	origins map[string][]Origin
}

func newLoader(lim Limits) *loader {
	d := Default()
	return &loader{
		limits: lim,
		cfg:    d,
		tables: map[int]*table{},
		data: fileData{
			Paths: d.Paths,
			Provision: fileProvision{
				SystemdTimeout:  duration(d.Provision.SystemdTimeout),
				DpkgLockTimeout: duration(d.Provision.DpkgLockTimeout),
				InstallTimeout:  duration(d.Provision.InstallTimeout),
				MaxConcurrent:   d.Provision.MaxConcurrent,
			},
			Driver: d.Driver,
		},
	}
}

// add decodes one file, named name, over what the loader holds. An error
// is the file's: on one, the loader must not be used again. Errors confined
// to one container's table are added to l.problems instead.
func (l *loader) add(name string, text []byte) error {
	_, text = tomlscan.SplitBOM(text) // the decoder skips it too; offsets then agree
	if line := tomlscan.TooDeep(text, l.limits.withDefaults().Depth); line > 0 {
		return &Error{File: name, Line: line, Err: ErrLimit,
			Msg: fmt.Sprintf("arrays and inline tables nest more than %d deep here, the limit on a configuration file (nvidiaprep's keys nest 3 deep at most): nothing in the file is read, so every start that reads it is refused; write the tables as [table] headers", l.limits.withDefaults().Depth)}
	}
	l.data.Containers = nil
	md, err := l.limits.decode(name, text, &l.data)
	if errors.Is(err, ErrLimit) {
		return err
	}
	if err != nil && len(md.Keys()) == 0 {
		// The file did not parse: a syntax error, a duplicate key, invalid UTF-8.
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line, key := parseErrorPlace(text, pe)
			return &Error{File: name, Line: line, Key: key, Msg: pe.Message, Err: err}
		}
		return &Error{File: name, Msg: err.Error(), Err: err}
	}
	var doc *tomlscan.Doc
	lineOfKey := func(key string) int {
		if doc == nil {
			doc = tomlscan.Scan(text)
		}
		return doc.Line(key)
	}
	lineOf := func(k toml.Key) int { return lineOfKey(k.String()) }
	fileErr := func(p *problem) error {
		return &Error{File: name, Line: lineOf(p.key), Key: p.key.String(), Msg: p.msg, Err: p.err}
	}
	// Each container's first problem in this file, by its table's key
	// (containers.N; N need not be a vmid).
	bad := map[string]bool{}
	ctProblem := func(p *problem) {
		id := p.key[1]
		if bad[id] {
			return
		}
		bad[id] = true
		vmid, _ := ParseVMID(id)
		if vmid != 0 && l.tables[vmid] == nil {
			l.tables[vmid] = &table{origins: map[string][]Origin{}}
		}
		l.problems = append(l.problems, &Error{VMID: vmid, File: name, Line: lineOf(p.key), Key: p.key.String(), Msg: p.msg, Err: p.err})
	}
	if p := checkKeys(md, ctProblem, func(id string) bool { return bad[id] }); p != nil {
		return fileErr(p)
	}
	if err != nil {
		// A value of the right type that its UnmarshalText refuses (a
		// duration); the decoder names its key. The line is the key's, as
		// for other values: the decoder's is where a multi-line string ends.
		var pe toml.ParseError
		if errors.As(err, &pe) && pe.LastKey != "" {
			pe = firstBadDuration(text, pe)
			line := cmp.Or(lineOfKey(pe.LastKey), pe.Position.Line)
			return &Error{File: name, Line: line, Key: pe.LastKey, Msg: pe.Message, Err: err}
		}
		// Not expected: checkKeys rejects every value that fileData cannot hold.
		return &Error{File: name, Msg: err.Error(), Err: err}
	}
	for _, id := range sortedIDs(l.data.Containers) {
		if bad[id] {
			continue
		}
		if p := l.addContainer(md, id, l.data.Containers[id], name, lineOf); p != nil {
			ctProblem(p)
		}
	}
	// A safety net: the schema should know every key that fileData decodes.
	// (Only a complete decode tells: one that failed left keys undecoded.)
	for _, u := range md.Undecoded() {
		if len(u) >= 2 && u[0] == "containers" && bad[u[1]] {
			continue // not decoded for its problem
		}
		p := &problem{key: u, msg: "unknown key"}
		if len(u) >= 2 && u[0] == "containers" {
			ctProblem(p)
			continue
		}
		return fileErr(p)
	}
	cfg, p := l.data.config()
	if p != nil {
		return fileErr(p)
	}
	l.cfg = cfg
	return nil
}

// sortedIDs are a file's [containers.N] names in numeric order (vmids have
// no leading zeros; the rest sort after them by length).
func sortedIDs(m map[string]toml.Primitive) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	})
	return ids
}

// addContainer decodes one file's [containers.id] table, checks its values
// and merges them over what the files before it set, key by key.
func (l *loader) addContainer(md toml.MetaData, id string, prim toml.Primitive, name string, lineOf func(toml.Key) int) *problem {
	vmid, err := ParseVMID(id) // checkKeys has checked it already
	if err != nil {
		return &problem{key: toml.Key{"containers", id}, msg: err.Error(), err: err}
	}
	var fc fileContainer
	if err := md.PrimitiveDecode(prim, &fc); err != nil {
		// Not expected: checkKeys has checked every key's type.
		return &problem{key: toml.Key{"containers", id}, msg: err.Error(), err: err}
	}
	bad := func(key, msg string) *problem { return &problem{key: toml.Key{"containers", id, key}, msg: msg} }
	if fc.GPUs != nil {
		if _, msg := selection(*fc.GPUs); msg != "" {
			return bad("gpus", msg)
		}
	}
	if fc.Chain != nil {
		if msg := checkChain(*fc.Chain); msg != "" {
			return bad("chain", msg)
		}
	}
	if fc.GID != nil && (*fc.GID < 0 || *fc.GID > 65535) {
		return bad("gid", fmt.Sprintf("gid %d is not a group id inside the container (0 to 65535)", *fc.GID))
	}
	if fc.Mode != nil {
		if _, msg := nodeMode(*fc.Mode); msg != "" {
			return bad("mode", msg)
		}
	}
	t := l.tables[vmid]
	if t == nil {
		t = &table{origins: map[string][]Origin{}}
		l.tables[vmid] = t
	}
	set := func(key string, value any) {
		t.origins[key] = append(t.origins[key], Origin{File: name, Line: lineOf(toml.Key{"containers", id, key}), Value: tomlValue(value)})
	}
	if fc.GPUs != nil {
		t.GPUs = fc.GPUs
		set("gpus", *fc.GPUs)
	}
	if fc.Required != nil {
		t.Required = fc.Required
		set("required", *fc.Required)
	}
	if fc.Install != nil {
		t.Install = fc.Install
		set("install", *fc.Install)
	}
	if fc.Chain != nil {
		t.Chain = fc.Chain
		set("chain", *fc.Chain)
	}
	if fc.Strict != nil {
		t.Strict = fc.Strict
		set("strict", *fc.Strict)
	}
	if fc.GID != nil {
		t.GID = fc.GID
		set("gid", *fc.GID)
	}
	if fc.Mode != nil {
		t.Mode = fc.Mode
		set("mode", *fc.Mode)
	}
	return nil
}

// config is the configuration the files read so far give.
func (l *loader) config() Config {
	cfg := l.cfg
	cfg.Containers = make(map[int]Container, len(l.tables))
	cfg.Problems = l.problems
	for vmid, t := range l.tables {
		c := defaultContainer()
		if t.GPUs != nil {
			c.GPUs, _ = selection(*t.GPUs) // checked in addContainer
		}
		if t.Required != nil {
			c.Required = *t.Required
		}
		if t.Install != nil {
			c.Install = *t.Install
		}
		if t.Chain != nil {
			c.Chain = *t.Chain
		}
		if t.Strict != nil {
			c.Strict = *t.Strict
		}
		if t.GID != nil {
			g := uint32(*t.GID) // checked in addContainer
			c.NodeGID = &g
		}
		if t.Mode != nil {
			c.NodeMode, _ = nodeMode(*t.Mode) // checked in addContainer
		}
		cfg.Containers[vmid] = c
		if cfg.Origins == nil {
			cfg.Origins = map[int]map[string][]Origin{}
		}
		cfg.Origins[vmid] = t.origins
	}
	return cfg
}

// tomlValue writes a decoded value as TOML would.
func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return strconv.Quote(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = tomlValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// firstBadDuration returns, of the file's invalid durations, the error for
// the first in the file: the decoder walks a table's keys in random order
// and stops at the first value that it cannot decode. Every string in
// [provision] is a duration; bad is what the decoder returned.
func firstBadDuration(text []byte, bad toml.ParseError) toml.ParseError {
	var f struct {
		Provision map[string]toml.Primitive `toml:"provision"`
	}
	md, err := toml.Decode(string(text), &f)
	if err != nil {
		return bad
	}
	for _, k := range md.Keys() {
		if len(k) != 2 || k[0] != "provision" || md.Type(k...) != tString {
			continue
		}
		var d duration
		var pe toml.ParseError
		if errors.As(md.PrimitiveDecode(f.Provision[k[1]], &d), &pe) {
			return pe
		}
	}
	return bad
}

// parseErrorPlace is the line of a syntax error and the key it concerns.
// The line is counted from the error's byte offset: the parser's own count
// has passed the newline when that newline is the error ("[containers.101"
// then a line break). Its last parsed key is kept only when it appears on
// that line: after a table header that breaks, it is the previous table's.
func parseErrorPlace(text []byte, pe toml.ParseError) (int, string) {
	line := pe.Position.Line
	if s := pe.Position.Start; s >= 0 && s <= len(text) {
		line = bytes.Count(text[:s], []byte("\n")) + 1
	}
	lines := bytes.Split(text, []byte("\n"))
	key := pe.LastKey
	if key != "" && line >= 1 && line <= len(lines) {
		parts := strings.Split(key, ".")
		if !bytes.Contains(lines[line-1], []byte(strings.Trim(parts[len(parts)-1], `"'`))) {
			key = ""
		}
	}
	return line, key
}

// checkKeys returns the first key, in the file's order, that the schema does
// not know or that has the wrong type, outside the containers' tables; it
// hands each problem inside one (containers.N.…, N a vmid or not) to inCT.
// It holds even when decoding stopped early.
func checkKeys(md toml.MetaData, inCT func(*problem), known func(ct string) bool) *problem {
	specs := schema()
	for _, k := range md.Keys() {
		if len(k) > 2 && k[0] == "containers" && known(k[1]) {
			continue // that table's first problem is known
		}
		p := checkKey(md, k, specs)
		switch {
		case p == nil:
		case len(p.key) >= 2 && p.key[0] == "containers":
			inCT(p)
		default:
			return p
		}
	}
	return nil
}

func checkKey(md toml.MetaData, k toml.Key, specs []keySpec) *problem {
	for i, name := range k {
		key := k[:i+1]
		var spec *keySpec
		for j := range specs {
			if specs[j].name == name {
				spec = &specs[j]
			} else if specs[j].name == "" {
				if _, err := ParseVMID(name); err != nil {
					return &problem{key: key, msg: err.Error(), err: err}
				}
				spec = &specs[j]
			}
		}
		if spec == nil {
			var known []string
			for _, s := range specs {
				known = append(known, s.name)
			}
			return &problem{key: key, msg: "unknown key (known keys: " + strings.Join(known, ", ") + ")"}
		}
		typ := md.Type(key...)
		if typ == "" {
			typ = tTable // the table that a dotted key implies
		}
		if typ != spec.typ {
			return &problem{key: key, msg: "must be " + spec.want() + ", not " + typeName(typ)}
		}
		if i < len(k)-1 && len(spec.sub) == 0 { // a table inside an array
			return &problem{key: key, msg: "must be " + spec.want()}
		}
		specs = spec.sub
	}
	return nil
}

// typeName spells a TOML type for error messages.
func typeName(typ string) string {
	switch typ {
	case tString:
		return "a string"
	case tInteger:
		return "an integer"
	case tBool:
		return "a boolean (true or false)"
	case tArray:
		return "an array"
	case tTable:
		return "a table"
	case "ArrayHash":
		return "an array of tables"
	case "Float":
		return "a float"
	case "Datetime":
		return "a date-time"
	}
	return strings.ToLower(typ)
}

// config checks the decoded values outside the containers' tables and turns
// them into a Config. It reports the first invalid value.
func (f *fileData) config() (Config, *problem) {
	var cfg Config
	bad := func(msg string, key ...string) *problem { return &problem{key: key, msg: msg} }

	paths := []struct {
		name string
		p    *string
		out  *string
	}{
		{"lxc", &f.Paths.LXC, &cfg.Paths.LXC},
		{"dev", &f.Paths.Dev, &cfg.Paths.Dev},
		{"proc", &f.Paths.Proc, &cfg.Paths.Proc},
		{"sys", &f.Paths.Sys, &cfg.Paths.Sys},
		{"cache", &f.Paths.Cache, &cfg.Paths.Cache},
		{"state", &f.Paths.State, &cfg.Paths.State},
		{"pve", &f.Paths.PVE, &cfg.Paths.PVE},
		{"root", &f.Paths.Root, &cfg.Paths.Root},
	}
	for _, p := range paths {
		if !filepath.IsAbs(*p.p) {
			return Config{}, bad(fmt.Sprintf("must be an absolute path, not %q", *p.p), "paths", p.name)
		}
		*p.out = filepath.Clean(*p.p)
	}
	// NVIDIA's .run reads itself through an unquoted $0, and containers see
	// the cache's trees through an overlay whose layers LXC and overlayfs
	// split at commas and colons.
	if strings.ContainsAny(cfg.Paths.Cache, " \t\n\r,:\\") {
		return Config{}, bad(fmt.Sprintf("%q must not contain whitespace, commas, colons or backslashes (the driver's .run and the containers' read-only view of the cache cannot use such a path)", cfg.Paths.Cache), "paths", "cache")
	}

	cfg.Provision.SystemdTimeout = time.Duration(f.Provision.SystemdTimeout)
	cfg.Provision.DpkgLockTimeout = time.Duration(f.Provision.DpkgLockTimeout)
	cfg.Provision.InstallTimeout = time.Duration(f.Provision.InstallTimeout)
	if f.Provision.MaxConcurrent < 1 {
		return Config{}, bad(fmt.Sprintf("must be at least 1, not %d", f.Provision.MaxConcurrent), "provision", "max_concurrent")
	}
	cfg.Provision.MaxConcurrent = f.Provision.MaxConcurrent

	if p := checkDriver(f.Driver); p != nil {
		return Config{}, p
	}
	cfg.Driver = f.Driver

	return cfg, nil
}

// nodeMode reads a device node's mode inside the container: octal, read
// and write bits only ("0660", "660", "0666").
func nodeMode(v string) (uint32, string) {
	m, err := strconv.ParseUint(v, 8, 32)
	if err != nil || v == "" || m&^0o666 != 0 || m == 0 {
		return 0, fmt.Sprintf("mode %q is not a device node mode: an octal mode of read and write bits such as \"0660\"", v)
	}
	return uint32(m), ""
}

// ChainSelf is the file name of nvidiaprep's own hookscript, which a chain
// must not name (it would run itself).
const ChainSelf = "nvidiaprep-hook"

// checkChain says what is wrong with a chained hookscript's volume id, ""
// when nothing ("" itself is none): "<storage>:snippets/<file>", as Proxmox's hookscript option
// takes it, and not nvidiaprep's own hook.
func checkChain(v string) string {
	if v == "" {
		return "" // none
	}
	id, vol, ok := strings.Cut(v, ":")
	name, inSnippets := strings.CutPrefix(vol, "snippets/")
	switch {
	case !ok || id == "" || strings.ContainsAny(id, "/ \t") || !inSnippets || name == "" || strings.ContainsAny(name, "/\x00\n"):
		return fmt.Sprintf(`invalid hookscript %q: want a volume id "<storage>:snippets/<file>", as in pct set --hookscript`, v)
	case name == ChainSelf:
		return fmt.Sprintf(`%q is nvidiaprep's own hookscript: chain the container's other hookscript, or remove the key`, v)
	}
	return ""
}

func checkDriver(d Driver) *problem {
	bad := func(key, msg string) *problem { return &problem{key: toml.Key{"driver", key}, msg: msg} }
	if d.Version != "" {
		if why := nvversion.Problem(d.Version); why != "" {
			return bad("version", fmt.Sprintf(`invalid version %q: %s`, d.Version, why))
		}
	}
	if d.Run != "" && !filepath.IsAbs(d.Run) {
		u, err := url.Parse(d.Run)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return bad("run", fmt.Sprintf("invalid installer %q: want an absolute path or an http(s) URL", d.Run))
		}
	}
	if d.SHA256 != "" && (len(d.SHA256) != 64 || !isHex(d.SHA256)) {
		return bad("sha256", fmt.Sprintf("invalid SHA-256 %q: want 64 hexadecimal digits", d.SHA256))
	}
	if !slices.Contains([]string{KernelModuleOpen, KernelModuleProprietary, KernelModuleAuto}, d.KernelModule) {
		return bad("kernel_module", fmt.Sprintf(`invalid kernel module %q: want "open", "proprietary" or "auto"`, d.KernelModule))
	}
	if d.Reboot != RebootNever && d.Reboot != RebootAuto {
		return bad("reboot", fmt.Sprintf(`invalid reboot policy %q: want "never" or "auto"`, d.Reboot))
	}
	return nil
}

// selection checks a gpus array. It returns a message saying what is wrong,
// or "".
func selection(gpus []any) (gpusel.Selection, string) {
	values := make([]string, len(gpus))
	for i, v := range gpus {
		s, ok := v.(string)
		if !ok {
			return gpusel.Selection{}, fmt.Sprintf("must be an array of GPU selectors (strings); %v is not a string", v)
		}
		values[i] = s
	}
	sel, err := gpusel.Parse(values)
	if err != nil {
		return gpusel.Selection{}, err.Error()
	}
	return sel, ""
}

// isHex tells a non-empty string of hexadecimal digits.
func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return s != "" && err == nil
}
