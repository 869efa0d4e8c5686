package provision

import (
	"embed"
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/aptreg"
	"nvidiaprep/nvidiaprep/installstate"
	"nvidiaprep/nvidiaprep/record"
)

// scriptFiles are the shell scripts the worker runs inside containers
// (`make shellcheck` lints them as POSIX sh: a container's /bin/sh may be
// dash or busybox).
//
//go:embed scripts/*.sh
var scriptFiles embed.FS

// The scripts, by the step that runs each.
var (
	listPackagesScript = loadScript("list-packages.sh")
	purgeScript        = loadScript("purge.sh")
	markScript         = loadScript("mark.sh")
	uninstallScript    = loadScript("uninstall.sh")
	utilsScript        = loadScript("with-utils.sh")
	preflightScript    = loadScript("preflight.sh")
	recordScript       = loadScript("record.sh")
	checkScript        = loadScript("check-installed.sh")
	spaceScript        = loadScript("space.sh")
	conflictScript     = loadScript("conflicts.sh")
	writeSpecScript    = loadScript("write-spec.sh")
	pkgnamesScript     = loadScript("pkgnames.sh")
	writePinScript     = loadScript("write-pin.sh")
	registerScript     = loadScript("register.sh")
	unregisterScript   = loadScript("unregister.sh")
	setNoCgroupsScript = loadScript("set-no-cgroups.sh")
	charLinksScript    = loadScript("char-links.sh")
)

// scriptVars are the facts Go owns that the scripts use, as the shell
// variables they read. Values are constants of this program, never the
// container's: what a container controls reaches a script only as its
// arguments or stdin.
var scriptVars = []struct{ name, value string }{
	{"NVIDIAPREP_DIR", ctDir},
	{"NVIDIAPREP_MARKER", marker},
	{"NVIDIAPREP_RECORD", ctRecord},
	{"NVIDIAPREP_APTREG_CONTROL", regControl},
	{"NVIDIA_DIR", record.NVIDIADir},
	{"NVIDIA_LOG", record.NVIDIALog},
	{"NVIDIA_ALT_MARKER", altMarker},
	{"APTREG_PACKAGE", aptreg.Package},
	{"APTREG_PIN", aptreg.PinPath},
	{"APT_NO_CACHE", aptNoCache},
	{"CDI_SPEC_DIR", installstate.SpecDir},
	{"CDI_SPEC", installstate.SpecPath},
	{"CDI_SPEC_BACKUP", installstate.SpecBackupPath},
	{"TOOLKIT_CONFIG", installstate.ToolkitConfig},
	{"COMPAT32_DIRS", compat32List},
	{"CONFLICT_DIRS", conflictDirs},
}

// script is one of scripts/*.sh, run inside the container by its /bin/sh
// through attach.
type script struct {
	name string // the file's name: the shell's $0, so its errors name the file
	body string
}

// loadScript reads an embedded script; one that is missing, empty or
// without its #!/bin/sh line is a build mistake, and stops the program (and
// every test) at once.
func loadScript(name string) script {
	b, err := scriptFiles.ReadFile("scripts/" + name)
	if err != nil || !strings.HasPrefix(string(b), "#!/bin/sh\n") {
		panic(fmt.Sprintf("provision: embedded script %s is missing or does not start with #!/bin/sh (%v)", name, err))
	}
	return script{name: name, body: string(b)}
}

// text is the script as the shell runs it: its first line (#!/bin/sh, a
// comment) replaced by the assignments of scriptVars, so that the shell's
// line numbers in errors are the file's. over replaces values (for tests).
func (sc script) text(over map[string]string) string {
	var b strings.Builder
	for i, v := range scriptVars {
		value, ok := over[v.name]
		if !ok {
			value = v.value
		}
		if strings.ContainsAny(value, "'\n") {
			panic(fmt.Sprintf("provision: %s=%q cannot be a single-quoted word on one line", v.name, value))
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s='%s'", v.name, value)
	}
	_, rest, _ := strings.Cut(sc.body, "\n")
	b.WriteByte('\n')
	b.WriteString(rest)
	return b.String()
}

// argv runs the script with args as its positional parameters ($1 ...).
func (sc script) argv(args ...string) []string {
	return append([]string{"/bin/sh", "-c", sc.text(nil), sc.name}, args...)
}
