// Package hookself tells whether a hookscript is nvidiaprep's own hook,
// by what the file is rather than by its name: a chained hookscript that
// is the hook under another name (a link, a hard link, a copy, another
// build) would run itself, and itself again, without end. It also carries
// the mark by which a hook knows that a chained hookscript started it,
// which stops a recursion that no look at a file can see (a wrapper script
// that runs the hook).
package hookself

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Installed is where the package installs the hook (the snippets
// directory's nvidiaprep-hook links to it).
const Installed = "/usr/lib/nvidiaprep/nvidiaprep-hook"

// module is nvidiaprep's Go module: every program built from it (the
// hook, the units' drop-in, the admin program) names it in its build info.
const module = "nvidiaprep"

// Is tells whether the file at path (links followed) is one of nvidiaprep's
// programs: the same file as one of known (the running hook, the installed
// one), or a Go program built from nvidiaprep's module, whatever its name
// or version. why says which, for messages. A file that cannot be read is
// not recognised (err says why); a script is never one.
func Is(path string, known ...string) (yes bool, why string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return false, "", err
	}
	for _, k := range known {
		if kst, err := os.Stat(k); err == nil && os.SameFile(st, kst) {
			return true, "it is " + k, nil
		}
	}
	if !st.Mode().IsRegular() {
		return false, "", nil
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return false, "", nil // not a Go program
	}
	if bi.Main.Path == module || strings.HasPrefix(bi.Path, module+"/") {
		return true, fmt.Sprintf("it is a build of nvidiaprep's %s", bi.Path), nil
	}
	return false, "", nil
}

// envChained marks the environment of a chained hookscript with the vmid
// whose hook runs it: a hook that finds its own vmid there was started,
// directly or not, by its own chained hookscript.
const envChained = "NVIDIAPREP_CHAINED_BY"

// Recursing tells whether this hook, for vmid, was started by vmid's own
// chained hookscript (getenv is os.LookupEnv).
func Recursing(getenv func(string) (string, bool), vmid int) bool {
	v, ok := getenv(envChained)
	if !ok {
		return false
	}
	for _, f := range strings.Split(v, ",") {
		if f == strconv.Itoa(vmid) {
			return true
		}
	}
	return false
}

// AddMark returns env with vmid added to its mark (kept from an outer
// chain: a chained script that starts another container's hook, whose
// chain starts this one's again, is a recursion too).
func AddMark(env []string, vmid int) []string {
	out := make([]string, 0, len(env)+1)
	mark := strconv.Itoa(vmid)
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, envChained+"="); ok {
			mark = v + "," + mark
			continue
		}
		out = append(out, e)
	}
	return append(out, envChained+"="+mark)
}

// maxAncestors bounds the walk up the process tree.
const maxAncestors = 64

// AncestorHook finds, among this process's ancestors (under procRoot, the
// kernel's /proc), one that runs the same program as this one for the same
// vmid: a chained hookscript that ran the hook again, even through a
// wrapper that cleared the environment (and so the mark). It returns that
// ancestor's pid, 0 for none. The ancestors are host processes: the hook
// runs on the host, started by Proxmox.
func AncestorHook(procRoot string, vmid int) int {
	self, err := os.Stat(procRoot + "/self/exe")
	if err != nil {
		return 0
	}
	want := strconv.Itoa(vmid)
	pid := os.Getppid()
	for i := 0; i < maxAncestors && pid > 1; i++ {
		dir := procRoot + "/" + strconv.Itoa(pid)
		if st, err := os.Stat(dir + "/exe"); err == nil && os.SameFile(st, self) {
			if b, err := os.ReadFile(dir + "/cmdline"); err == nil {
				for _, arg := range strings.Split(string(b), "\x00") {
					if arg == want {
						return pid
					}
				}
			}
		}
		pid = parentOf(dir)
	}
	return 0
}

// parentOf reads a process's parent pid from its stat file (the field after
// the command name, which may hold spaces and parentheses).
func parentOf(dir string) int {
	// One read(2) of its start: the command name is at most 64 bytes, and
	// the fields after it hold no ')'. Not os.ReadFile: its poller set-up
	// cost more than the read, once per ancestor at every start.
	fd, err := syscall.Open(dir+"/stat", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	var buf [512]byte
	n, err := syscall.Read(fd, buf[:])
	for err == syscall.EINTR {
		n, err = syscall.Read(fd, buf[:])
	}
	syscall.Close(fd)
	if err != nil || n <= 0 {
		return 0
	}
	s := string(buf[:n])
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
