// Package buildinfo holds the version and the commit a binary was built
// from. Both are set at build time (the .deb's debian/rules passes
// -ldflags '-X nvidiaprep/nvidiaprep/buildinfo.Version=... -X ...Commit=...',
// the version from debian/changelog, the commit that packaging/build-deb.sh
// read from git before copying the tree); a plain `go build` leaves the
// placeholders, and the commit then comes from Go's own VCS stamp when
// there is one.
package buildinfo

import "runtime/debug"

// Set with -ldflags -X.
var (
	Version = "devel"
	Commit  = ""
)

// String is "<name> <version> (commit <commit>)".
func String(name string) string {
	commit := Commit
	if commit == "" {
		commit = vcsCommit()
	}
	if commit == "" {
		commit = "unknown"
	}
	return name + " " + Version + " (commit " + commit + ")"
}

// vcsCommit is the commit Go stamped into the binary, short, with "+dirty"
// for a modified tree; "" when it stamped none (-buildvcs=false).
func vcsCommit() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev string
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" && dirty {
		rev += "+dirty"
	}
	return rev
}
