package prestart

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/lxcconf"
	"nvidiaprep/nvidiaprep/nvdev"
)

const generated = "lxc.arch = amd64\nlxc.rootfs.path = /var/lib/lxc/101/rootfs\nlxc.cgroup2.devices.allow = c 509:* rwm\nlxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n"

var driver = standin.Driver{Version: "580.159.04", UVMMajor: 507, GPUs: []standin.GPU{
	{PCIBusID: "0000:01:00.0", UUID: "GPU-aaaaaaaa-0000-0000-0000-000000000001", Minor: 0},
	{PCIBusID: "0000:41:00.0", UUID: "GPU-bbbbbbbb-0000-0000-0000-000000000002", Minor: 1},
}}

type fixture struct {
	host Host
	sh   *standin.Host
	log  *bytes.Buffer
}

func setup(t *testing.T, loaded bool) fixture {
	t.Helper()
	sh, err := standin.NewHost(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sh.Nodes = &standin.FakeNodes{}
	if loaded {
		if err := sh.LoadDriver(driver); err != nil {
			t.Fatal(err)
		}
		if err := sh.MakeNodes(driver); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(sh.Root, "lxc/101/config")
	os.MkdirAll(filepath.Dir(cfg), 0o755)
	if err := os.WriteFile(cfg, []byte(generated), 0o640); err != nil {
		t.Fatal(err)
	}
	return fixture{
		host: Host{LXCConfig: cfg, Dev: sh.Dev, Proc: sh.Proc, Sys: sh.Sys, GPUs: nvdev.ProcGPUs{Proc: sh.Proc}, Nodes: sh.Nodes},
		sh:   sh, log: &bytes.Buffer{},
	}
}

func (f fixture) logger() zerolog.Logger { return zerolog.New(f.log) }

// handWritten puts lines ("key = value") into the container's Proxmox
// config (as "key: value") and into the config Proxmox generated from it,
// after its own lines, as Proxmox copies lxc.* keys through.
func (f *fixture) handWritten(t *testing.T, lines ...string) {
	t.Helper()
	var pve strings.Builder
	pve.WriteString("arch: amd64\n")
	for _, l := range lines {
		k, v, _ := strings.Cut(l, " = ")
		pve.WriteString(k + ": " + v + "\n")
	}
	if err := os.WriteFile(f.host.LXCConfig, []byte(generated+strings.Join(lines, "\n")+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	f.host.PVE = t.TempDir()
	pveConf := filepath.Join(f.host.PVE, "lxc/101.conf")
	if err := os.MkdirAll(filepath.Dir(pveConf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pveConf, []byte(pve.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f fixture) config(t *testing.T) string {
	b, err := os.ReadFile(f.host.LXCConfig)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGPU1GetsItsNodesWithLiveNumbers(t *testing.T) {
	f := setup(t, true)
	res, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1")}, f.logger())
	if err != nil {
		t.Fatal(err)
	}
	got := f.config(t)
	if !strings.HasPrefix(got, generated) {
		t.Fatalf("generated lines changed:\n%s", got)
	}
	// The container's own copies of the nodes, with the live numbers.
	copies := nvdev.CopiesDir(f.sh.Dev, 101)
	for name, want := range map[string][2]uint32{"nvidia1": {195, 1}, "nvidia-uvm": {507, 0}, "nvidiactl": {195, 255}} {
		st, err := f.host.Nodes.Stat(copies + "/" + name)
		if err != nil || !st.Char || st.Major != want[0] || st.Minor != want[1] {
			t.Errorf("the container's copy of %s: %+v, %v; want %d:%d", name, st, err, want[0], want[1])
		}
	}
	for _, want := range []string{
		"c 195:255 rw", "c 507:0 rw", "c 507:1 rw", "c 195:1 rw",
		copies + "/nvidia1 dev/nvidia1 ", copies + "/nvidia-uvm dev/nvidia-uvm ", "# driver 580.159.04; GPUs 1=0000:41:00.0",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("block lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "c 195:0 rw") {
		t.Errorf("GPU 0 given to a container that asked for GPU 1:\n%s", got)
	}
	if res.Version != "580.159.04" || len(res.GPUs) != 1 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(f.log.String(), "509") || !strings.Contains(f.log.String(), "nvidia-uvm is 507") {
		t.Errorf("no warning about the stale hand-written uvm rule:\n%s", f.log)
	}
	if st, _ := os.Stat(f.host.LXCConfig); st.Mode().Perm() != 0o640 {
		t.Errorf("config mode changed to %v", st.Mode().Perm())
	}
}

func TestRestartsLeaveOneIdenticalBlock(t *testing.T) {
	f := setup(t, true)
	var first string
	for i := 0; i < 5; i++ {
		if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Every()}, f.logger()); err != nil {
			t.Fatal(err)
		}
		got := f.config(t)
		if i == 0 {
			first = got
		}
		if got != first || strings.Count(got, lxcconf.Begin) != 1 {
			t.Fatalf("run %d changed the block:\n%s", i, got)
		}
	}
	// The hand-written bind of the host's nvidia0 is left out of this
	// start's config, where it stays as a comment, and the container's
	// copy is mounted there: LXC would mount the first entry for the path
	// and skip the second. (Before, the copy was left out.)
	if !strings.Contains(first, "\n"+lxcconf.Disabled+"lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n") ||
		!strings.Contains(first, "/dev/.nvidiaprep/101/nvidia0 dev/nvidia0 none") {
		t.Fatalf("the copy of nvidia0 does not replace the hand-written bind:\n%s", first)
	}
}

func TestNoGPUsGetsNothing(t *testing.T) {
	f := setup(t, true)
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of()}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if got := f.config(t); got != generated {
		t.Fatalf("config changed for gpus = []:\n%s", got)
	}
}

func TestNoDriver(t *testing.T) {
	f := setup(t, false)
	_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Every(), Required: true}, f.logger())
	var reqErr *RequiredError
	if !errors.As(err, &reqErr) || !errors.Is(err, ErrNoDriver) || !errors.Is(err, nvdev.ErrNoDriver) || !strings.Contains(err.Error(), "no NVIDIA driver is loaded") ||
		!strings.Contains(err.Error(), "modprobe nvidia") || !strings.Contains(err.Error(), "CT 101") {
		t.Fatalf("required: got %v", err)
	}
	if got := f.config(t); got != generated {
		t.Fatalf("a refused start changed the config:\n%s", got)
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Every()}, f.logger()); err != nil {
		t.Fatalf("not required: %v", err)
	}
	if !strings.Contains(f.log.String(), "starts without GPU") {
		t.Fatalf("the log does not say the container starts without GPU:\n%s", f.log)
	}
}

func TestUnmatchedSelector(t *testing.T) {
	f := setup(t, true)
	_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("GPU-nope"), Required: true}, f.logger())
	var unmatched *nvdev.UnmatchedError
	if !errors.Is(err, ErrNoGPU) || !errors.As(err, &unmatched) || unmatched.Selectors[0] != "GPU-nope" || !strings.Contains(err.Error(), `"GPU-nope"`) {
		t.Fatalf("got %v", err)
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0", "7")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if got := f.config(t); !strings.Contains(got, "c 195:0 rw") || !strings.Contains(f.log.String(), `selector \"7\" matches no GPU`) {
		t.Fatalf("want GPU 0 given and a warning about \"7\":\n%s\n%s", got, f.log)
	}
}

// A missing config is an error; the hook's phase names the container in it
// (ctmsg), once, so Run's own text does not.
func TestMissingConfigIsAnError(t *testing.T) {
	f := setup(t, true)
	f.host.LXCConfig = filepath.Join(f.sh.Root, "lxc/102/config")
	_, err := Run(f.host, Request{VMID: 102, GPUs: gpusel.Every()}, f.logger())
	if err == nil || strings.Contains(err.Error(), "CT 102") || !strings.Contains(err.Error(), "no generated LXC config") || !strings.Contains(err.Error(), "pct start 102") {
		t.Fatalf("got %v", err)
	}
	if _, statErr := os.Stat(f.host.LXCConfig); !os.IsNotExist(statErr) {
		t.Fatal("a config was created")
	}
}

func BenchmarkPreStart(b *testing.B) {
	sh, _ := standin.NewHost(b.TempDir())
	sh.Nodes = &standin.FakeNodes{}
	sh.LoadDriver(driver)
	sh.MakeNodes(driver)
	cfg := filepath.Join(sh.Root, "config")
	h := Host{LXCConfig: cfg, Dev: sh.Dev, Proc: sh.Proc, Sys: sh.Sys, GPUs: nvdev.ProcGPUs{Proc: sh.Proc}, Nodes: sh.Nodes}
	for i := 0; i < b.N; i++ {
		os.WriteFile(cfg, []byte(generated), 0o644)
		if _, err := Run(h, Request{VMID: 101, GPUs: gpusel.Every()}, zerolog.Nop()); err != nil {
			b.Fatal(err)
		}
	}
}

// A pre-start killed while writing the config left its temporary file: the
// next start removes it when it is old, and nothing else: not a fresh one
// (a live writer's), not a link of that name nor what it points to, not a
// directory, not a file of another name.
func TestStaleTemporaryConfigsAreRemoved(t *testing.T) {
	f := setup(t, true)
	dir := filepath.Dir(f.host.LXCConfig)
	old := time.Now().Add(-time.Hour)
	outside := filepath.Join(t.TempDir(), "host-file")
	os.WriteFile(outside, []byte("keep"), 0o644)
	files := map[string]bool{ // name: want it removed
		".config.tmp-1234567": true, ".config.tmp-42": false /* fresh */, ".config.tmp-99": false, /* link */
		".config.tmp-7": false /* directory */, ".config.tmp-x1": false, ".other.tmp-1": false, "config.tmp-1": false,
	}
	for name := range files {
		p := filepath.Join(dir, name)
		switch name {
		case ".config.tmp-99":
			os.Symlink(outside, p)
		case ".config.tmp-7":
			os.Mkdir(p, 0o755)
		default:
			os.WriteFile(p, make([]byte, 1<<20), 0o644)
		}
		if name != ".config.tmp-42" {
			unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	for name, gone := range files {
		_, err := os.Lstat(filepath.Join(dir, name))
		if removed := errors.Is(err, os.ErrNotExist); removed != gone {
			t.Errorf("%s: removed %v, want %v", name, removed, gone)
		}
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep" {
		t.Errorf("the link's target: %q %v", b, err)
	}
	if !strings.Contains(f.log.String(), "removed 1 temporary file(s) that an interrupted start left") {
		t.Errorf("log: %s", f.log)
	}
}

// A hand-written line that reaches a GPU the container is not given is
// named in the task log with its fix; with strict = true the start is
// refused and the config is left as it was.
func TestHandWrittenLinesThatBypassTheSelection(t *testing.T) {
	f := setup(t, true)
	f.host.PVE = filepath.Join(f.sh.Root, "pve")
	pveConf := filepath.Join(f.host.PVE, "lxc/101.conf")
	os.MkdirAll(filepath.Dir(pveConf), 0o755)
	os.WriteFile(pveConf, []byte("arch: amd64\ndev0: /dev/nvidia0,mode=0666\nlxc.mount.entry: /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\n"), 0o644)
	// generated mounts nvidia0 by hand; the container asks for GPU 1.
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`hand-written line \"lxc.mount.entry = /dev/nvidia0 dev/nvidia0 none bind,optional,create=file\" mounts /dev/nvidia0, a GPU the container is not given: delete it from ` + pveConf,
		`hand-written line \"dev0: /dev/nvidia0,mode=0666\" passes /dev/nvidia0 through`, "pct set 101 --delete dev0", "strict = true",
	} {
		if !strings.Contains(f.log.String(), want) {
			t.Errorf("the task log lacks %q:\n%s", want, f.log)
		}
	}
	os.WriteFile(f.host.LXCConfig, []byte(generated), 0o640)
	_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1"), Strict: true}, f.logger())
	var be *BypassError
	if !errors.As(err, &be) || len(be.Findings) != 2 || !strings.Contains(err.Error(), "CT 101 has strict = true") {
		t.Fatalf("strict: %v, want a *BypassError naming both lines", err)
	}
	if got := f.config(t); got != generated {
		t.Errorf("a refused start changed the config:\n%s", got)
	}
	// Given GPU 0, the same lines bypass nothing.
	f.log.Reset()
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0"), Strict: true}, f.logger()); err != nil {
		t.Errorf("GPU 0 given, strict: %v", err)
	}
}

// A container that gets no block (gpus = [], or no driver loaded) still
// has its hand-written lines judged, as given no GPU: generated's bind of
// nvidia0 and a rule reaching GPU 0 refuse its start with strict = true.
func TestHandWrittenLinesAreJudgedWithoutABlock(t *testing.T) {
	for name, c := range map[string]struct {
		loaded bool
		gpus   gpusel.Selection
	}{"gpus = []": {true, gpusel.Of()}, "no driver": {false, gpusel.Of("0")}} {
		t.Run(name, func(t *testing.T) {
			f := setup(t, c.loaded)
			if err := os.WriteFile(f.host.LXCConfig, []byte(generated+"lxc.cgroup2.devices.allow = c 195:0 rwm\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			_, err := Run(f.host, Request{VMID: 101, GPUs: c.gpus, Strict: true}, f.logger())
			var be *BypassError
			if !errors.As(err, &be) || len(be.Findings) != 2 || !strings.Contains(err.Error(), "c 195:0 rwm") || !strings.Contains(err.Error(), "mounts /dev/nvidia0") {
				t.Fatalf("start: %v, want a *BypassError naming the bind and the rule for GPU 0", err)
			}
		})
	}
}

// A hand-written line that both reaches a GPU the container is not given
// and is superseded by the block is warned of once, as a bypass (the
// warning that says how to keep it from reaching that GPU); a line that is
// only superseded is still named as such.
func TestALineThatBypassesAndIsSupersededIsWarnedOnceAsABypass(t *testing.T) {
	f := setup(t, true)
	f.handWritten(t, "lxc.cgroup2.devices.allow = c 195:0 rwm", "lxc.cgroup2.devices.allow = c 195:1 rwm")
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	var both, only []string
	for _, line := range strings.Split(strings.TrimSpace(f.log.String()), "\n") {
		switch {
		case strings.Contains(line, "c 195:0 rwm"):
			both = append(both, line)
		case strings.Contains(line, "c 195:1 rwm"):
			only = append(only, line)
		}
	}
	if len(both) != 1 || !strings.Contains(both[0], "allows /dev/nvidia0 (195:0), a GPU the container is not given") {
		t.Errorf("the rule for GPU 0, which the container is not given, is warned of %d times, want once as a bypass:\n%s", len(both), strings.Join(both, "\n"))
	}
	if len(only) != 1 || !strings.Contains(only[0], "is superseded") {
		t.Errorf("the rule for GPU 1, which the block gives, is warned of %d times, want once as superseded:\n%s", len(only), strings.Join(only, "\n"))
	}
}

// Hand-written NVIDIA lines in the Proxmox config do not keep nvidiaprep's
// own rules and mounts out: a broad "c 195:* rwm" and binds of the host's
// nodes get the rules and the copies' mounts all the same, and the task log
// names each line with the command that removes it. (Before, the rules a
// hand-written rule covered and the mounts of targets bound by hand were
// left out, so the container kept the host's own nodes.)
func TestHandWrittenLinesDoNotKeepTheCopiesOut(t *testing.T) {
	f := setup(t, true)
	f.handWritten(t, "lxc.cgroup2.devices.allow = c 195:* rwm", "lxc.cgroup2.devices.allow = c 507:* rwm", "lxc.mount.entry = /dev/nvidiactl dev/nvidiactl none bind,optional,create=file")
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	got := f.config(t)
	if !strings.Contains(got, "\n"+lxcconf.Disabled+"lxc.mount.entry = /dev/nvidiactl dev/nvidiactl") || !strings.Contains(got, "\nlxc.cgroup2.devices.allow = c 195:* rwm\n") {
		t.Errorf("the hand-written bind of nvidiactl is not left out, or a rule is:\n%s", got)
	}
	block := got[strings.Index(got, lxcconf.Begin):]
	for _, want := range []string{"c 195:255 rw", "c 195:0 rw", "c 507:0 rw", "/dev/.nvidiaprep/101/nvidiactl dev/nvidiactl none", "/dev/.nvidiaprep/101/nvidia0 dev/nvidia0 none"} {
		if !strings.Contains(block, want) {
			t.Errorf("the block lacks %q:\n%s", want, got)
		}
	}
	log := f.log.String()
	for _, want := range []string{
		`hand-written line \"lxc.cgroup2.devices.allow = c 195:* rwm\" allows every NVIDIA node (195:*)`,
		`hand-written line \"lxc.cgroup2.devices.allow: c 507:* rwm\" is superseded`,
		`binds the host's /dev/nvidiactl: nvidiaprep mounts the container's own copy there instead`,
		"`nvidiaprep enable 101 --adopt` removes it from " + filepath.Join(f.host.PVE, "lxc/101.conf"),
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the task log lacks %q:\n%s", want, log)
		}
	}
}

// A container given GPUs 0 and 1, then only GPU 1, then none: its copies of
// the nodes it is no longer given go, and with none, its directory too.
func TestCopiesOfNodesNoLongerGivenAreRemoved(t *testing.T) {
	f := setup(t, true)
	copies := nvdev.CopiesDir(f.sh.Dev, 101)
	exists := func(name string) bool { _, err := os.Lstat(filepath.Join(copies, name)); return err == nil }
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Every()}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if !exists("nvidia0") || !exists("nvidia1") {
		t.Fatal("no copies made")
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("1")}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if exists("nvidia0") || !exists("nvidia1") || !exists("nvidiactl") {
		t.Error("GPU 0 taken away: its copy stays, or GPU 1's went")
	}
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of()}, f.logger()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(copies); err == nil {
		entries, _ := os.ReadDir(copies)
		t.Errorf("every GPU taken away: %s still holds %d entries", copies, len(entries))
	}
}

// Lines that break what the defences rely on (a /dev kept across starts, a
// mount at nvidiaprep's directory) refuse the start, naming the line; the
// config is left as it was.
func TestLinesThatBreakThePremisesRefuseTheStart(t *testing.T) {
	for _, line := range []string{
		"lxc.autodev = 0",
		"lxc.mount.entry = /srv/trap dev/.nvidiaprep none bind,create=dir 0 0",
		"lxc.hook.autodev = sh -c 'ln -s /srv/trap $LXC_ROOTFS_MOUNT/dev/.nvidiaprep'",
	} {
		f := setup(t, true)
		f.host.DriverCache = driverrun.Cache{Dir: filepath.Join(f.sh.Root, "cache")}
		os.WriteFile(f.host.LXCConfig, []byte(generated+line+"\n"), 0o640)
		_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Every(), Install: true}, f.logger())
		var pe *PremiseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), "The start is refused") {
			t.Errorf("%s: %v", line, err)
		}
		if got := f.config(t); got != generated+line+"\n" {
			t.Errorf("%s: the config was written:\n%s", line, got)
		}
	}
	// With nothing to give (gpus = []), nothing relies on them.
	f := setup(t, true)
	os.WriteFile(f.host.LXCConfig, []byte(generated+"lxc.autodev = 0\n"), 0o640)
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of()}, f.logger()); err != nil {
		t.Errorf("gpus = []: %v", err)
	}
}

// The tutorials' binds of the host's own nodes, as written for this host's
// /dev, are left out of the generated config and the start goes on with
// the copies, while a mount of anything else at a path nvidiaprep gives
// stays in the config and refuses the start: the lines pre-start leaves
// out are the lines the premises are not judged on, and no others.
// (Before, binds of the host's nodes of a /dev other than "/dev" were
// refused as hiding the node, though pre-start leaves them out.)
func TestHostNodeBindsAreLeftOutAndOtherMountsRefused(t *testing.T) {
	f := setup(t, true)
	var hand string
	for _, name := range []string{"nvidiactl", "nvidia0", "nvidia-uvm"} {
		hand += fmt.Sprintf("lxc.mount.entry = %s dev/%s none bind,optional,create=file\n", filepath.Join(f.sh.Dev, name), name)
	}
	conf := "lxc.arch = amd64\nlxc.cgroup2.devices.allow = c 195:* rwm\n" + hand
	os.WriteFile(f.host.LXCConfig, []byte(conf), 0o640)
	if _, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0")}, f.logger()); err != nil {
		t.Fatalf("the tutorial's binds refuse the start: %v", err)
	}
	got := f.config(t)
	for _, l := range strings.Split(strings.TrimSpace(hand), "\n") {
		if !strings.Contains(got, "\n"+lxcconf.Disabled+l+"\n") {
			t.Errorf("%q is not left out:\n%s", l, got)
		}
	}
	for _, line := range []string{
		"lxc.mount.entry = /tmp/fake dev/nvidia0 none bind,create=file 0 0",
		"lxc.mount.entry = " + filepath.Join(f.sh.Dev, "nvidia1") + " dev/nvidia0 none bind,optional,create=file",
		"lxc.mount.entry = /dev/nvidia1 dev/nvidia0 none bind,optional,create=file",
		"lxc.mount.entry = tmpfs dev/nvidiactl tmpfs defaults 0 0",
	} {
		f := setup(t, true)
		os.WriteFile(f.host.LXCConfig, []byte(conf+line+"\n"), 0o640)
		_, err := Run(f.host, Request{VMID: 101, GPUs: gpusel.Of("0")}, f.logger())
		var pe *PremiseError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), line) || !strings.Contains(err.Error(), "hiding its node") {
			t.Errorf("%s: %v", line, err)
		}
		if got := f.config(t); got != conf+line+"\n" {
			t.Errorf("%s: the config was written:\n%s", line, got)
		}
	}
}
