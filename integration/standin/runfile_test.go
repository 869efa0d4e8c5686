package standin

import (
	"bytes"
	"crypto/md5"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"nvidiaprep/integration/runbin"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	verA = "580.159.04"
	verB = "580.142"
)

// runIn runs name in dir with this process's environment and env, through
// the test kit's runner (15 minutes at most: the real DKMS builds take long).
func runIn(t *testing.T, dir string, env []string, name string, args ...string) runbin.Result {
	t.Helper()
	return runbin.Cmd{Path: name, Args: args, Env: append(os.Environ(), env...), Dir: dir, Limit: 15 * time.Minute}.Must(t)
}

func mustContain(t *testing.T, what string, r runbin.Result, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(r.Output, s) {
			t.Errorf("%s: output lacks %q:\n%s", what, s, r.Output)
		}
	}
}

func mustCode(t *testing.T, what string, r runbin.Result, code int) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("%s: exit %d, want %d; output:\n%s", what, r.Code, code, r.Output)
	}
}

// builtRuns caches the two stand-in .run files the tests share.
var builtRuns struct {
	once sync.Once
	dir  string
	err  error
}

func testRun(t *testing.T, ver string) string {
	t.Helper()
	builtRuns.once.Do(func() {
		builtRuns.dir, builtRuns.err = os.MkdirTemp("", "nvidiaprep-standin-runs-")
		if builtRuns.err != nil {
			return
		}
		for _, v := range []string{verA, verB} {
			if builtRuns.err = BuildRun(filepath.Join(builtRuns.dir, RunFileName(v)), RunOptions{Version: v}); builtRuns.err != nil {
				return
			}
		}
	})
	if builtRuns.err != nil {
		t.Fatal(builtRuns.err)
	}
	return filepath.Join(builtRuns.dir, RunFileName(ver))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtRuns.dir != "" {
		os.RemoveAll(builtRuns.dir)
	}
	os.Exit(code)
}

// extract runs the .run with -x --target dir (dir must not exist).
func extract(t *testing.T, run, dir string) {
	t.Helper()
	r := runIn(t, filepath.Dir(dir), nil, "sh", run, "--extract-only", "--target", dir)
	mustCode(t, "extract", r, 0)
}

func TestBuildRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	for _, o := range []RunOptions{
		{Version: "580"},
		{Version: "580.1.2.3"},
		{Version: "v580.142"},
		{Version: verA, Libraries: []string{filepath.Join(dir, "libnvidia-ml.so.1")}},
	} {
		if err := BuildRun(filepath.Join(dir, "x.run"), o); err == nil {
			t.Errorf("BuildRun(%+v) succeeded", o)
		}
	}
}

// TestRunHeader checks the variable block against NVIDIA's layout and the
// checksums against cksum(1) and md5sum(1) run on `tail -n +4`.
func TestRunHeader(t *testing.T) {
	run := testRun(t, verA)
	data, err := os.ReadFile(run)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(run)
	if st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", st.Mode().Perm())
	}
	lines := strings.SplitN(string(data), "\n", 19)
	want := []string{
		`#! /bin/sh`, `CRCsum=\d+`, `MD5=[0-9a-f]{32}`, `skip=\d+`, `skip_decompress=\d+`, `size_decompress=0`,
		`label="NVIDIA Accelerated Graphics Driver for Linux-x86_64 ` + regexp.QuoteMeta(verA) + `"`,
		`version_string=` + regexp.QuoteMeta(verA), `pkg_version=1`, `script=./nvidia-installer`,
		`targetdir=NVIDIA-Linux-x86_64-` + regexp.QuoteMeta(verA), `scriptargs=""`, `keep=n`,
		`add_this_kernel=n`, `apply_patch=n`, `TMPROOT=\$\{TMPDIR:=/tmp\}`, `TARGET_OS="Linux"`, `TARGET_ARCH="x86_64"`,
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], w)
		}
	}
	h, err := ReadRunHeader(run)
	if err != nil {
		t.Fatal(err)
	}
	if h.VersionString != verA || h.TargetDir != RunTargetDir(verA) || h.Label != RunLabel(verA) || h.Script != "./nvidia-installer" || h.Skip != h.SkipDecompress {
		t.Errorf("header %+v", h)
	}
	off := runPayloadOffset(data, h.Skip)
	if off < 0 || data[off] != 0x1f || data[off+1] != 0x8b {
		t.Errorf("line skip=%d does not start a gzip stream", h.Skip)
	}
	body := data[runPayloadOffset(data, 4):]
	ck := NewCksum()
	ck.Write(body)
	sum := md5.Sum(body)
	if ck.Sum32() != h.CRCsum || hex.EncodeToString(sum[:]) != h.MD5 {
		t.Errorf("CRCsum=%d MD5=%s, computed %d %x", h.CRCsum, h.MD5, ck.Sum32(), sum)
	}
	r := runIn(t, "", nil, "sh", "-c", `tail -n +4 "$1" | cksum; tail -n +4 "$1" | md5sum`, "sh", run)
	mustContain(t, "cksum/md5sum", r, fmt.Sprintf("%d %d", h.CRCsum, len(body)), h.MD5)
}

// TestRunStub uses the .run as a user of NVIDIA's would.
func TestRunStub(t *testing.T) {
	run := testRun(t, verA)
	dir := t.TempDir()
	shells := []string{"sh"}
	if _, err := exec.LookPath("dash"); err == nil {
		shells = append(shells, "dash")
	}
	for _, sh := range shells {
		r := runIn(t, dir, nil, sh, run, "--version-string")
		mustCode(t, sh+" --version-string", r, 0)
		if r.Output != verA+"\n" {
			t.Errorf("%s --version-string printed %q", sh, r.Output)
		}
	}
	r := runIn(t, dir, nil, "sh", run, "--info")
	mustCode(t, "--info", r, 0)
	mustContain(t, "--info", r, "Identification    : "+RunLabel(verA), "Target directory  : "+RunTargetDir(verA),
		"Compression       : gzip", "Uncompressed size : ", "Application run after extraction : ./nvidia-installer")
	r = runIn(t, dir, nil, "sh", run, "--list")
	mustCode(t, "--list", r, 0)
	mustContain(t, "--list", r, "Target directory: "+RunTargetDir(verA), "./nvidia-installer", "./.manifest",
		"./libnvidia-ml.so."+verA, "./kernel/dkms.conf", "./kernel/Makefile", "./LICENSE")
	r = runIn(t, dir, nil, "sh", run, "--check")
	mustCode(t, "--check", r, 0)
	mustContain(t, "--check", r, "check sums and md5 sums are ok")
	for _, a := range []string{"--help", "-A", "--label", "--target-directory"} {
		mustCode(t, a, runIn(t, dir, nil, "sh", run, a), 0)
	}

	// -x extracts into ./<targetdir>; --target DIR elsewhere; both keep it.
	r = runIn(t, dir, nil, "sh", run, "-x")
	mustCode(t, "-x", r, 0)
	mustContain(t, "-x", r, "Verifying archive integrity... OK", "Uncompressing "+RunLabel(verA))
	tree := filepath.Join(dir, RunTargetDir(verA))
	checkTree(t, tree, verA)
	target := filepath.Join(dir, "target")
	r = runIn(t, dir, nil, "sh", run, "--extract-only", "--target", target)
	mustCode(t, "--extract-only --target", r, 0)
	checkTree(t, target, verA)
	r = runIn(t, dir, nil, "sh", run, "--extract-only", "--target", target)
	mustCode(t, "second extraction", r, 1)
	mustContain(t, "second extraction", r, "The directory '"+target+"' already exists.")

	// A flipped payload byte: exit 2 on --check, on extraction, and (MD5)
	// even with SETUP_NOCHECK=1.
	bad := filepath.Join(dir, "bad.run")
	data, _ := os.ReadFile(run)
	data[len(data)-100] ^= 0x40
	if err := os.WriteFile(bad, data, 0o755); err != nil {
		t.Fatal(err)
	}
	r = runIn(t, dir, nil, "sh", bad, "--check")
	mustCode(t, "tampered --check", r, 2)
	mustContain(t, "tampered --check", r, "Error in checksums")
	r = runIn(t, dir, nil, "sh", bad, "-x", "--target", filepath.Join(dir, "bad"))
	mustCode(t, "tampered -x", r, 2)
	mustContain(t, "tampered -x", r, "Error in check sums")
	if _, err := os.Stat(filepath.Join(dir, "bad", "nvidia-installer")); err == nil {
		t.Error("a tampered .run extracted its payload")
	}
	r = runIn(t, dir, []string{"SETUP_NOCHECK=1"}, "sh", bad, "-x", "--target", filepath.Join(dir, "bad2"))
	mustCode(t, "tampered -x SETUP_NOCHECK=1", r, 2)
	mustContain(t, "tampered -x SETUP_NOCHECK=1", r, "Error in md5 sums")
	r = runIn(t, dir, nil, "sh", bad, "--silent")
	mustCode(t, "tampered install", r, 2)

	// makeself 2.x options reach nvidia-installer, which rejects them; the
	// temporary extraction is removed.
	tmp := filepath.Join(dir, "tmp")
	os.Mkdir(tmp, 0o755)
	for _, opt := range []string{"--noexec", "--quiet", "--accept", "--nox11"} {
		r = runIn(t, dir, []string{"TMPDIR=" + tmp}, "sh", run, opt)
		mustCode(t, opt, r, 1)
		mustContain(t, opt, r, `nvidia-installer: unrecognized option: "`+opt+`"`,
			"ERROR: Invalid commandline, please run `./nvidia-installer --help` for usage information.")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary extraction left %v in $TMPDIR", left)
	}
	r = runIn(t, dir, nil, "sh", run, "--tmpdir", tmp, "--print-recommended-kernel-module-type")
	mustCode(t, "--print-recommended-kernel-module-type", r, 0)
	mustContain(t, "--print-recommended-kernel-module-type", r, "\nopen\n")
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("--tmpdir extraction left %v", left)
	}

	// --target DIR and --keep keep the tree and still run the installer.
	kept := filepath.Join(dir, "kept")
	r = runIn(t, dir, nil, "sh", run, "--target", kept, "--print-recommended-kernel-module-type")
	mustCode(t, "--target without -x", r, 0)
	mustContain(t, "--target without -x", r, "\nopen\n")
	checkTree(t, kept, verA)
	keepDir := filepath.Join(dir, "keep")
	os.Mkdir(keepDir, 0o755)
	r = runIn(t, keepDir, nil, "sh", run, "--keep", "-v")
	mustCode(t, "--keep", r, 0)
	mustContain(t, "--keep", r, "nvidia-installer:  version "+verA)
	checkTree(t, filepath.Join(keepDir, RunTargetDir(verA)), verA)
}

// TestBuildRunRealFiles ships given files instead of generated ones.
func TestBuildRunRealFiles(t *testing.T) {
	dir := t.TempDir()
	realLib := filepath.Join(dir, "libnvidia-ml.so."+verB)
	smi := filepath.Join(dir, "nvidia-smi")
	dbg := filepath.Join(dir, "nvidia-debugdump")
	os.WriteFile(realLib, []byte("pretend this is a real libnvidia-ml\n"), 0o755)
	os.WriteFile(smi, []byte("#!/bin/sh\necho real nvidia-smi\n"), 0o755)
	os.WriteFile(dbg, []byte("#!/bin/sh\n"), 0o755)
	run := filepath.Join(dir, RunFileName(verB))
	if err := BuildRun(run, RunOptions{Version: verB, Libraries: []string{realLib}, Binaries: []string{smi, dbg}}); err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(dir, "tree")
	extract(t, run, tree)
	for _, f := range []string{"libnvidia-ml.so." + verB, "nvidia-smi", "nvidia-debugdump"} {
		got, _ := os.ReadFile(filepath.Join(tree, f))
		want, _ := os.ReadFile(filepath.Join(dir, f))
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not the given file", f)
		}
	}
	m, _ := os.ReadFile(filepath.Join(tree, ".manifest"))
	for _, l := range []string{"libnvidia-ml.so." + verB + " 0755 UTILITY_LIB NATIVE MODULE:nvml\n",
		"libnvidia-ml.so.1 0000 UTILITY_LIB_SYMLINK NATIVE libnvidia-ml.so." + verB + " MODULE:nvml\n",
		"libcuda.so." + verB + " 0755 CUDA_LIB NATIVE / MODULE:gpgpu\n",
		"\nnvidia-smi 0755 UTILITY_BINARY MODULE:utils\nnvidia-debugdump 0755 UTILITY_BINARY MODULE:utils\n"} {
		if !strings.Contains(string(m), l) {
			t.Errorf(".manifest lacks %q:\n%s", l, m)
		}
	}
	if strings.Count(string(m), "nvidia-smi ") != 1 {
		t.Errorf(".manifest lists nvidia-smi more than once:\n%s", m)
	}
}

// checkTree checks an extracted tree.
func checkTree(t *testing.T, tree, ver string) {
	t.Helper()
	for _, f := range []string{"nvidia-installer", "nvidia-smi", ".manifest", "LICENSE", "kernel/dkms.conf", "kernel/Makefile", "kernel-open/dkms.conf"} {
		if _, err := os.Stat(filepath.Join(tree, f)); err != nil {
			t.Error(err)
		}
	}
	m, err := os.ReadFile(filepath.Join(tree, ".manifest"))
	if err != nil {
		t.Fatal(err)
	}
	ml := strings.Split(string(m), "\n")
	if ml[0] != RunDescription || ml[1] != ver {
		t.Errorf(".manifest starts %q %q", ml[0], ml[1])
	}
	_, ccErr := exec.LookPath("gcc")
	for _, base := range StandinLibraries {
		p := filepath.Join(tree, base+".so."+ver)
		if !strings.Contains(string(m), base+".so."+ver+" 0755 ") {
			t.Errorf(".manifest does not list %s", p)
		}
		if ccErr != nil {
			continue
		}
		f, err := elf.Open(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		so, _ := f.DynString(elf.DT_SONAME)
		syms, _ := f.DynamicSymbols()
		f.Close()
		if len(so) != 1 || so[0] != base+".so.1" {
			t.Errorf("%s: SONAME %v", p, so)
		}
		found := false
		for _, s := range syms {
			found = found || s.Name == "nvidiaprep_standin_version"
		}
		if !found {
			t.Errorf("%s does not export nvidiaprep_standin_version", p)
		}
	}
}

// TestInstallerHost runs the extracted installer on the host in ways that
// change nothing: as a non-root user, with bad command lines, --help.
func TestInstallerHost(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	tree := filepath.Join(dir, "tree")
	extract(t, testRun(t, verA), tree)
	inst := filepath.Join(tree, "nvidia-installer")

	r := runIn(t, tree, nil, inst, "--help")
	mustCode(t, "--help", r, 0)
	mustContain(t, "--help", r, "--no-kernel-modules")
	r = runIn(t, tree, nil, inst, "-v")
	mustCode(t, "-v", r, 0)
	mustContain(t, "-v", r, "version "+verA)
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--bogus"}, `unrecognized option: "--bogus"`},
		{[]string{"--noexec=1"}, `unrecognized option: "--noexec"`},
		{[]string{"stray"}, `invalid option: "stray"`},
		{[]string{"--silent=yes"}, `option "--silent" does not take an argument, but was given an argument of "yes".`},
		{[]string{"--log-file-name"}, `option "--log-file-name" requires an argument.`},
		{[]string{"-M", "closed"}, `'closed' is not a valid kernel module type.`},
		{[]string{"-sx"}, `unrecognized option: "-sx"`},
	} {
		r = runIn(t, tree, nil, inst, c.args...)
		mustCode(t, fmt.Sprint(c.args), r, 1)
		mustContain(t, fmt.Sprint(c.args), r, c.msg, "ERROR: Invalid commandline, please run `"+inst+" --help` for usage information.")
	}

	// Not root: the log cannot be opened, then the root check fails.
	if os.Geteuid() == 0 {
		cmd := exec.Command(inst, "-sa", "--no-kernel-module", "--log-file-name=/var/log/standin-test-must-not-exist/x.log")
		cmd.Dir = tree
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("as nobody: %v\n%s", err, out)
		}
		for _, s := range []string{"nvidia-installer: Error opening log file '/var/log/standin-test-must-not-exist/x.log' for writing", "disabling logging.", "ERROR: nvidia-installer must be run as root"} {
			if !strings.Contains(string(out), s) {
				t.Errorf("as nobody: output lacks %q:\n%s", s, out)
			}
		}
	}

	// nvidia-smi without a driver.
	if _, err := os.Stat("/dev/nvidiactl"); err != nil {
		r = runIn(t, tree, nil, filepath.Join(tree, "nvidia-smi"))
		mustCode(t, "nvidia-smi", r, 9)
		mustContain(t, "nvidia-smi", r, "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.")
	}
}

// TestInstallerCRC checks the installer's sh CRC (derived from cksum)
// against crc.c's algorithm on files of many sizes.
func TestInstallerCRC(t *testing.T) {
	src := installerTemplate
	a := strings.Index(src, "crc_ready=0")
	b := strings.Index(src, "# ------------------------------------------------------ installed driver")
	if a < 0 || b < a {
		t.Fatal("cannot find the CRC functions in installer.sh")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	var script strings.Builder
	script.WriteString(src[a:b])
	var want []string
	for i, n := range []int{0, 1, 2, 3, 255, 256, 257, 4096, 65535, 65536, 65537, 1 << 20, 3<<20 + 17} {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		p := filepath.Join(dir, strconv.Itoa(i))
		os.WriteFile(p, data, 0o644)
		fmt.Fprintf(&script, "nv_crc %s; echo $crc_r\n", p)
		want = append(want, strconv.FormatUint(uint64(NvidiaCRC(data)), 10))
	}
	// The same through crc_batch (one cksum for all files, in order).
	script.WriteString("set --; i=0; while [ $i -lt " + strconv.Itoa(len(want)) + " ]; do set -- \"$@\" " + dir + "/$i; i=$((i+1)); done\n")
	script.WriteString("crc_batch \"$@\"; i=1; while [ $i -le $# ]; do eval echo \\$crc_$i; i=$((i+1)); done\n")
	r := runIn(t, dir, nil, "sh", "-c", script.String())
	mustCode(t, "sh crc", r, 0)
	if got, w := strings.Join(strings.Fields(r.Output), " "), strings.Join(append(want, want...), " "); got != w {
		t.Errorf("sh CRCs\n%s\nwant\n%s", got, w)
	}
}

// chroot is an overlay of a debootstrap minbase tree (never modified), in
// which each step runs in a fresh mount namespace: `unshare -m` + mount +
// chroot, with read-only bind mounts of extracted trees.
type chroot struct {
	lower, upperDir, work, mnt string
	binds                      []string // "src dst ro|rw"
	noKmod                     bool     // leave /root/kmod off the PATH
}

// kmodStub stands in for kmod's modprobe, rmmod, lsmod and depmod in a
// chroot (a debootstrap minbase has no kmod): it records its command line in
// /root/modcalls and does nothing else, so that a test sees which module
// commands the installer ran without any reaching the host's kernel.
// Each line also names the console log level then in /proc/sys/kernel/printk.
const kmodStub = "#!/bin/sh\nl=\nread -r l _ < /proc/sys/kernel/printk 2>/dev/null\necho \"${0##*/} $* printk=$l\" >> /root/modcalls\n"

func minbaseRoot() string {
	if p := os.Getenv("NVIDIAPREP_TEST_ROOTFS"); p != "" {
		return p
	}
	for _, p := range []string{"/var/cache/nvidiaprep-test/rootfs-bookworm", "/var/cache/nvidiaprep-test/rootfs.tmp"} {
		if _, err := os.Stat(filepath.Join(p, "bin/sh")); err == nil {
			return p
		}
	}
	return ""
}

func newChroot(t *testing.T) *chroot {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("installing needs root (unshare -m, overlay mount, chroot); run the tests as root")
	}
	lower := minbaseRoot()
	if lower == "" {
		t.Skip("no debootstrap minbase tree at /var/cache/nvidiaprep-test/rootfs-bookworm (or rootfs.tmp, or $NVIDIAPREP_TEST_ROOTFS): " +
			"create one with `debootstrap --variant=minbase bookworm /var/cache/nvidiaprep-test/rootfs-bookworm`")
	}
	for _, c := range []string{"unshare", "chroot", "mount"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is needed: %v", c, err)
		}
	}
	d := t.TempDir()
	c := &chroot{lower: lower, upperDir: filepath.Join(d, "upper"), work: filepath.Join(d, "work"), mnt: filepath.Join(d, "mnt")}
	for _, p := range []string{c.upperDir, c.work, c.mnt, c.upper("/root/kmod")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"modprobe", "rmmod", "lsmod", "depmod", "insmod"} {
		if err := os.WriteFile(c.upper("/root/kmod/"+u), []byte(kmodStub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// modcalls returns and clears the module commands the stubs recorded.
func (c *chroot) modcalls(t *testing.T) string {
	t.Helper()
	b, _ := os.ReadFile(c.upper("/root/modcalls"))
	os.Remove(c.upper("/root/modcalls"))
	return string(b)
}

// put copies a host file into the chroot (into the overlay's upper layer).
func (c *chroot) put(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := c.upper(dst)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

const chrootSetup = `set -e
mount -t overlay overlay -o "lowerdir=$CH_LOWER,upperdir=$CH_UPPER,workdir=$CH_WORK" "$CH_MNT"
printf '%s\n' "$CH_BINDS" | while read -r src dst mode; do
    [ -n "$src" ] || continue
    mkdir -p "$CH_MNT$dst"
    mount --bind "$src" "$CH_MNT$dst"
    if [ "$mode" = ro ]; then mount -o remount,bind,ro "$CH_MNT$dst"; fi
done
set +e
exec chroot "$CH_MNT" /bin/sh -c "$1"
`

// sh runs a script with /bin/sh inside the chroot.
func (c *chroot) sh(t *testing.T, script string) runbin.Result {
	t.Helper()
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if !c.noKmod {
		path = "/root/kmod:" + path
	}
	env := []string{"CH_LOWER=" + c.lower, "CH_UPPER=" + c.upperDir, "CH_WORK=" + c.work, "CH_MNT=" + c.mnt,
		"CH_BINDS=" + strings.Join(c.binds, "\n"), "PATH=" + path, "TMPDIR="}
	return runIn(t, "/", env, "unshare", "-m", "--propagation", "private", "sh", "-c", chrootSetup, "chroot-step", script)
}

// upper returns the path of a chroot path in the overlay's upper layer,
// where everything a step created or changed is (the lower tree is never
// changed).
func (c *chroot) upper(p string) string { return filepath.Join(c.upperDir, p) }

// leftovers lists what the steps so far left in the chroot apart from the
// expected: logs, ld.so.cache, the test's own files under /root and /mnt,
// and directories that exist in the lower tree (copied up when something
// was created in them).
func (c *chroot) leftovers(t *testing.T) []string {
	t.Helper()
	allowed := map[string]bool{"/etc/ld.so.cache": true, "/var/cache/ldconfig/aux-cache": true,
		"/var/log/nvidia-installer.log": true, "/var/log/nvidia-uninstall.log": true}
	var left []string
	filepath.Walk(c.upperDir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == c.upperDir {
			return err
		}
		rel := strings.TrimPrefix(p, c.upperDir)
		if strings.HasPrefix(rel, "/root") || strings.HasPrefix(rel, "/mnt") {
			return nil
		}
		if fi.IsDir() {
			if st, err := os.Stat(filepath.Join(c.lower, rel)); err != nil || !st.IsDir() {
				left = append(left, rel+"/")
				return filepath.SkipDir
			}
			return nil
		}
		if fi.Mode()&os.ModeCharDevice != 0 {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Rdev == 0 {
				left = append(left, rel+" (deleted from the lower tree)")
				return nil
			}
		}
		if !allowed[rel] {
			left = append(left, rel)
		}
		return nil
	})
	return left
}

// wantLog is /var/lib/nvidia/log after an install of tree's package with
// --no-kernel-module: files in .manifest order with crc.c's CRCs, then
// the symlinks.
func wantLog(t *testing.T, tree, ver string) string {
	t.Helper()
	lib := "/usr/lib/x86_64-linux-gnu"
	var files, links strings.Builder
	m, err := os.ReadFile(filepath.Join(tree, ".manifest"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(m), "\n")[8:] {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		switch f[2] {
		case "UTILITY_LIB", "CUDA_LIB", "ENCODEAPI_LIB", "NVCUVID_LIB", "UTILITY_BINARY", "INSTALLER_BINARY", "FIRMWARE":
			dst := lib + "/" + f[0]
			if strings.HasSuffix(f[2], "BINARY") {
				dst = "/usr/bin/" + f[0]
			}
			if f[2] == "FIRMWARE" {
				dst = "/lib/firmware/nvidia/" + ver + "/" + strings.TrimPrefix(f[0], "firmware/")
			}
			data, err := os.ReadFile(filepath.Join(tree, f[0]))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&files, "1: %s\n%d\n", dst, NvidiaCRC(data))
		case "OPENGL_LIB", "GLX_CLIENT_LIB", "EGL_CLIENT_LIB", "GLVND_EGL_ICD_JSON", "VULKAN_ICD_JSON":
			// 32-bit: lib/i386-linux-gnu, lib32, lib: a minbase chroot has
			// only /usr/lib.
			dst := map[string]string{"NATIVE": lib + "/" + f[0], "COMPAT32": "/usr/lib/" + filepath.Base(f[0]), "MODULE:opengl": "/usr/share/glvnd/egl_vendor.d/" + f[0], "icd.d": "/etc/vulkan/icd.d/" + f[0]}[f[3]]
			data, err := os.ReadFile(filepath.Join(tree, f[0]))
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&files, "1: %s\n%d\n", dst, NvidiaCRC(data))
		case "GLX_CLIENT_SYMLINK", "EGL_CLIENT_SYMLINK":
			dir := lib
			if f[3] == "COMPAT32" {
				dir = "/usr/lib"
			}
			fmt.Fprintf(&links, "0: %s/%s\n%s\n", dir, filepath.Base(f[0]), f[4])
		case "UTILITY_LIB_SYMLINK", "ENCODEAPI_LIB_SYMLINK", "NVCUVID_LIB_SYMLINK":
			fmt.Fprintf(&links, "0: %s/%s\n%s\n", lib, f[0], f[4])
		case "CUDA_SYMLINK":
			fmt.Fprintf(&links, "0: %s/%s\n%s\n", lib, f[0], f[5])
		case "UTILITY_BIN_SYMLINK":
			fmt.Fprintf(&links, "0: /usr/bin/%s\n%s\n", f[0], f[3])
		}
	}
	return "1.0-" + strings.ReplaceAll(ver, ".", "") + " (" + ver + ")\n" + RunDescription + "\n" + files.String() + links.String()
}

// checkInstalled checks, from the upper layer, what an install of tree's
// package left.
func (c *chroot) checkInstalled(t *testing.T, tree, ver string) {
	t.Helper()
	lib := "/usr/lib/x86_64-linux-gnu"
	for _, base := range StandinLibraries {
		f := base + ".so." + ver
		got, err := os.ReadFile(c.upper(lib + "/" + f))
		want, _ := os.ReadFile(filepath.Join(tree, f))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s/%s: %v (or not the packaged file)", lib, f, err)
		}
		if l, err := os.Readlink(c.upper(lib + "/" + base + ".so.1")); err != nil || l != f {
			t.Errorf("%s/%s.so.1 -> %q, %v", lib, base, l, err)
		}
	}
	for link, target := range map[string]string{lib + "/libcuda.so": "libcuda.so.1", "/usr/bin/nvidia-uninstall": "nvidia-installer"} {
		if l, err := os.Readlink(c.upper(link)); err != nil || l != target {
			t.Errorf("%s -> %q, %v; want %s", link, l, err, target)
		}
	}
	for _, b := range []string{"nvidia-smi", "nvidia-installer"} {
		st, err := os.Stat(c.upper("/usr/bin/" + b))
		if err != nil || st.Mode().Perm() != 0o755 {
			t.Errorf("/usr/bin/%s: %v %v", b, st, err)
		}
	}
	for p, mode := range map[string]os.FileMode{"/var/lib/nvidia": 0o700, "/var/lib/nvidia/log": 0o600} {
		if st, err := os.Stat(c.upper(p)); err != nil || st.Mode().Perm() != mode {
			t.Errorf("%s: %v, want mode %v", p, err, mode)
		}
	}
	got, _ := os.ReadFile(c.upper("/var/lib/nvidia/log"))
	if want := wantLog(t, tree, ver); string(got) != want {
		t.Errorf("/var/lib/nvidia/log:\n%s\nwant:\n%s", got, want)
	}
	if _, err := exec.LookPath("gcc"); err == nil {
		cache, _ := os.ReadFile(c.upper("/etc/ld.so.cache"))
		for _, so := range []string{"libnvidia-ml.so.1", "libcuda.so.1", "libnvcuvid.so.1"} {
			if !bytes.Contains(cache, []byte(so+"\x00")) {
				t.Errorf("ldconfig did not cache %s", so)
			}
		}
	}
}

// named lists the non-directories in the upper layer (outside /root and
// /mnt) whose name contains s.
func (c *chroot) named(s string) []string {
	var found []string
	filepath.Walk(c.upperDir, func(p string, fi os.FileInfo, err error) error {
		rel := strings.TrimPrefix(p, c.upperDir)
		if err == nil && !fi.IsDir() && strings.Contains(fi.Name(), s) && !strings.HasPrefix(rel, "/root") && !strings.HasPrefix(rel, "/mnt") {
			found = append(found, rel)
		}
		return nil
	})
	return found
}

func TestInstallInChroot(t *testing.T) {
	c := newChroot(t)
	runA, runB := testRun(t, verA), testRun(t, verB)
	c.put(t, runA, "/root/"+RunFileName(verA))
	host := t.TempDir()
	treeA, treeB := filepath.Join(host, "a"), filepath.Join(host, "b")
	extract(t, runA, treeA)
	extract(t, runB, treeB)
	c.binds = []string{treeA + " /mnt/a ro", treeB + " /mnt/b ro"}
	const flags = "--silent --no-kernel-module --no-check-for-alternate-installs --no-install-libglvnd"
	lib := "/usr/lib/x86_64-linux-gnu"
	noLeftovers := func(t *testing.T) {
		t.Helper()
		if left := c.leftovers(t); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	}

	t.Run("install A from the .run", func(t *testing.T) {
		r := c.sh(t, `cd /root && sh `+RunFileName(verA)+` `+flags+`; echo "rc=$?"; ls /tmp; nvidia-installer -i`)
		mustContain(t, "install A", r, "rc=0\n", "WARNING: You specified the '--no-kernel-modules' command line option",
			"The currently installed driver is: '"+RunDescription+"' (version: "+verA+").")
		if strings.Contains(r.Output, "selfgz") || strings.Contains(r.Output, "makeself") {
			t.Errorf("temporary files left behind:\n%s", r.Output)
		}
		if st, err := os.Stat(c.upper("/var/log/nvidia-installer.log")); err != nil || st.Size() == 0 {
			t.Errorf("no install log: %v", err)
		}
		c.checkInstalled(t, treeA, verA)
	})

	t.Run("nvidia-smi", func(t *testing.T) {
		// Without a driver; then with an openable /dev/nvidiactl and the
		// procfs files of a loaded driver of the same and of another version.
		fake := `: > /dev/nvidiactl; mkdir -p /proc/driver/nvidia/gpus/0000:01:00.0
printf 'Model: \t\t NVIDIA H100 80GB HBM3\nGPU UUID: \t GPU-11111111-2222-3333-4444-555555555555\nBus Location: \t 0000:01:00.0\nDevice Minor: \t 0\n' > /proc/driver/nvidia/gpus/0000:01:00.0/information
echo "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  $1  Release Build  (stand-in)" > /proc/driver/nvidia/version
`
		r := c.sh(t, `nvidia-smi; echo "rc=$?"
set -- `+verA+`
`+fake+`nvidia-smi; nvidia-smi --query-gpu=driver_version --format=csv,noheader; nvidia-smi --query-gpu=name,uuid,pci.bus_id --format=csv; nvidia-smi --version; nvidia-smi -L
set -- `+verB+`
`+fake+`nvidia-smi; echo "rc=$?"
rm -rf /dev/nvidiactl /proc/driver`)
		mustContain(t, "nvidia-smi", r,
			"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n\nrc=9\n",
			"NVIDIA-SMI "+verA, "Driver Version: "+verA, "CUDA Version: 13.0",
			"\n"+verA+"\n", "name, uuid, pci.bus_id\nNVIDIA H100 80GB HBM3, GPU-11111111-2222-3333-4444-555555555555, 00000000:01:00.0\n",
			"DRIVER version      : "+verA, "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-11111111-2222-3333-4444-555555555555)",
			"Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.159\nrc=18\n")
	})

	t.Run("upgrade to B leaves nothing of A", func(t *testing.T) {
		r := c.sh(t, `/mnt/b/nvidia-installer `+flags)
		mustCode(t, "install B", r, 0)
		c.checkInstalled(t, treeB, verB)
		if left := c.named(verA); len(left) > 0 {
			t.Errorf("files of %s left after the upgrade: %v", verA, left)
		}
		ulog, _ := os.ReadFile(c.upper("/var/log/nvidia-uninstall.log"))
		if !strings.Contains(string(ulog), "Uninstallation of existing driver: "+RunDescription+" ("+verA+") is complete.") {
			t.Errorf("the upgrade did not run nvidia-uninstall; its log:\n%s", ulog)
		}
	})

	t.Run("alternate install present", func(t *testing.T) {
		r := c.sh(t, `mkdir -p /usr/lib/nvidia && touch /usr/lib/nvidia/alternate-install-present && /mnt/a/nvidia-installer --silent --no-kernel-module; echo "rc=$?"; rm -r /usr/lib/nvidia`)
		mustContain(t, "alternate install", r, "ERROR: The installation was canceled due to the availability or presence of an alternate driver installation. Please see /var/log/nvidia-installer.log for more details.", "rc=1\n")
		c.checkInstalled(t, treeB, verB)
	})

	t.Run("uninstall leaves nothing", func(t *testing.T) {
		r := c.sh(t, `nvidia-uninstall -s; echo "rc=$?"; /mnt/a/nvidia-installer --uninstall; echo "rc=$?"; /mnt/a/nvidia-installer -i; echo "rc=$?"`)
		mustContain(t, "uninstall", r, "rc=0\n\nThere is no NVIDIA driver currently installed.\n\nrc=0\n\nThere is no NVIDIA driver currently installed.\n\nrc=1\n")
		noLeftovers(t)
	})

	t.Run("read-only package tree", func(t *testing.T) {
		r := c.sh(t, `touch /mnt/a/probe 2>/dev/null && echo WRITABLE; cd / && /mnt/a/nvidia-installer `+flags+` 2>/dev/null; echo "rc=$?"`)
		if r.Output != "rc=0\n" {
			t.Fatalf("install from a read-only bind mount:\n%s", r.Output)
		}
		c.checkInstalled(t, treeA, verA)
	})

	t.Run("killed mid-install", func(t *testing.T) {
		// B starts over A, uninstalls A, starts its log, sleeps: kill it there.
		r := c.sh(t, `NVIDIAPREP_STANDIN_INSTALL_DELAY=5 /mnt/b/nvidia-installer `+flags+` >/dev/null 2>&1 & pid=$!
i=0; until head -n 1 /var/lib/nvidia/log 2>/dev/null | grep -q '(`+verB+`)'; do sleep 0.05; i=$((i+1)); [ $i -lt 200 ] || break; done
kill -9 $pid; wait $pid; echo "rc=$?"; /mnt/b/nvidia-installer -i`)
		mustContain(t, "killed", r, "rc=137\n", "(version: "+verB+").")
		if got, _ := os.ReadFile(c.upper("/var/lib/nvidia/log")); string(got) != "1.0-580142 (580.142)\n"+RunDescription+"\n" {
			t.Errorf("log after the kill:\n%s", got)
		}
		if left := append(c.named(verA), c.named(verB)...); len(left) > 0 {
			t.Errorf("driver files after the kill: %v", left)
		}
		r = c.sh(t, `/mnt/b/nvidia-installer `+flags+` 2>/dev/null && nvidia-uninstall -s`)
		mustCode(t, "install and uninstall after the kill", r, 0)
		noLeftovers(t)
	})

	t.Run("conflicting files are backed up and restored", func(t *testing.T) {
		r := c.sh(t, `cd `+lib+` && echo distro > libnvidia-ml.so.535.00 && ln -s libnvidia-ml.so.535.00 libnvidia-ml.so.1 &&
/mnt/a/nvidia-installer `+flags+` 2>/dev/null && ls `+lib+`/libnvidia-ml.so.535.00 2>&1`)
		mustContain(t, "install over distro files", r, "No such file or directory")
		log, _ := os.ReadFile(c.upper("/var/lib/nvidia/log"))
		for _, s := range []string{"100: " + lib + "/libnvidia-ml.so.535.00\n" + strconv.FormatUint(uint64(NvidiaCRC([]byte("distro\n"))), 10) + " 100644 0 0\n",
			"2: " + lib + "/libnvidia-ml.so.1\nlibnvidia-ml.so.535.00\n120777 0 0\n"} {
			if !strings.Contains(string(log), s) {
				t.Errorf("backup log lacks %q:\n%s", s, log)
			}
		}
		r = c.sh(t, `nvidia-uninstall -s 2>/dev/null && cat `+lib+`/libnvidia-ml.so.535.00 && readlink `+lib+`/libnvidia-ml.so.1 && rm `+lib+`/libnvidia-ml.so.535.00 `+lib+`/libnvidia-ml.so.1`)
		if r.Code != 0 || r.Output != "distro\nlibnvidia-ml.so.535.00\n" {
			t.Errorf("restored files: %d\n%s", r.Code, r.Output)
		}
		noLeftovers(t)
	})

	t.Run("kernel module", func(t *testing.T) {
		r := c.sh(t, `/mnt/a/nvidia-installer --silent --no-check-for-alternate-installs; echo "rc=$?"
/mnt/a/nvidia-installer --silent --no-check-for-alternate-installs --kernel-source-path=/nonexistent; echo "rc=$?"
test -e /var/lib/nvidia || echo untouched
/mnt/a/nvidia-installer --silent --no-check-for-alternate-installs --dkms 2>&1; echo "rc=$?"`)
		mustContain(t, "kernel module", r, "ERROR: Unable to find the kernel source tree for the currently running kernel.", "ERROR: Installation has failed.", "rc=1\n",
			"ERROR: The kernel source path '/nonexistent' does not exist.", "untouched\n", "rc=0\n")
		for _, f := range []string{"dkms.conf", "Makefile", "nvidia/nv.c"} {
			if _, err := os.Stat(c.upper("/usr/src/nvidia-" + verA + "/" + f)); err != nil {
				t.Error(err)
			}
		}
		log, _ := os.ReadFile(c.upper("/var/lib/nvidia/log"))
		if n := strings.Count(string(log), "1: /usr/src/nvidia-"+verA+"/"); n != 3 {
			t.Errorf("%d kernel source files logged:\n%s", n, log)
		}
		mustCode(t, "uninstall", c.sh(t, `nvidia-uninstall -s`), 0)
		noLeftovers(t)
	})
}

// TestBuildRunPayloadSize checks the padding and reports the costs of a
// mid-sized .run; BenchmarkRun300MB measures a real-sized one.
func TestBuildRunPayloadSize(t *testing.T) {
	dir := t.TempDir()
	run := filepath.Join(dir, RunFileName(verA))
	const want = 48 << 20
	t0 := time.Now()
	if err := BuildRun(run, RunOptions{Version: verA, PayloadBytes: want}); err != nil {
		t.Fatal(err)
	}
	build := time.Since(t0)
	st, _ := os.Stat(run)
	if st.Size() < want*98/100 || st.Size() > want*102/100 {
		t.Errorf("size %d, want about %d", st.Size(), want)
	}
	t0 = time.Now()
	extract(t, run, filepath.Join(dir, "x"))
	t.Logf("%d MB .run: BuildRun %v, sh .run -x %v", st.Size()>>20, build.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
}

// BenchmarkRun300MB: go test -run '^$' -bench Run300MB -benchtime 1x
func BenchmarkRun300MB(b *testing.B) {
	dir := b.TempDir()
	run := filepath.Join(dir, RunFileName(verA))
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := BuildRun(run, RunOptions{Version: verA, PayloadBytes: 300 << 20}); err != nil {
			b.Fatal(err)
		}
		build := time.Since(t0)
		x := filepath.Join(dir, "x"+strconv.Itoa(i))
		t0 = time.Now()
		if r := (runbin.Cmd{Path: "sh", Args: []string{run, "--extract-only", "--target", x}}).Must(b); r.Code != 0 {
			b.Fatalf("extract: exit %d\n%s", r.Code, r.Output)
		}
		ext := time.Since(t0)
		st, _ := os.Stat(run)
		b.ReportMetric(build.Seconds(), "build-s")
		b.ReportMetric(ext.Seconds(), "extract-s")
		b.Logf("%d MB .run: BuildRun %v, sh .run --extract-only %v", st.Size()>>20, build.Round(time.Millisecond), ext.Round(time.Millisecond))
		os.RemoveAll(x)
	}
}
