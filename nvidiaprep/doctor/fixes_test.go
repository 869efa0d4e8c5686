package doctor

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/integration/standin"
	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/driverrun"
	"nvidiaprep/nvidiaprep/hostdriver"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/prestart"
	"nvidiaprep/nvidiaprep/record"
)

// fixCase is one finding: how to make it, what its fix must say, and that
// fix done on the stand-in node (the command's effect where the command
// itself needs a GPU, a reboot or Proxmox).
type fixCase struct {
	name  string
	check string
	make  func(n *node)
	says  []string // what the printed fix must contain
	apply func(n *node)
}

// reboot stands in for a reboot of the node: driver version v is loaded
// (its nodes made as the driver's tool makes them), the kernel log is the
// new boot's, and the host driver unit's boot run records it.
func (n *node) reboot(v string) {
	n.t.Helper()
	n.drv.Version = v
	if err := n.host.LoadDriver(n.drv); err != nil {
		n.t.Fatal(err)
	}
	if err := n.host.MakeNodes(n.drv); err != nil {
		n.t.Fatal(err)
	}
	n.log.log = "NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  " + v + "\n"
	if n.opts.Config.Driver.Version != "" {
		n.hostDriverUnit()
	}
}

// hostDriverUnit runs the host driver unit's real code (nvidiaprep
// host-driver) on the stand-in node, as `systemctl start
// nvidiaprep-host-driver.service` does; the configured driver is loaded,
// so it takes its fast path and records it.
func (n *node) hostDriverUnit() {
	n.t.Helper()
	o := hostdriver.Options{Config: n.opts.Config, Runner: n.log, Log: zerolog.Nop(), Status: func(string) {}}
	if _, err := hostdriver.Run(context.Background(), o); err != nil {
		n.t.Fatalf("host driver unit: %v", err)
	}
}

// preStart runs the hook's real pre-start for vmid on the stand-in node,
// as Proxmox does at `pct reboot`.
func (n *node) preStart(vmid int) {
	n.t.Helper()
	p := n.opts.Config.Paths
	h := prestart.Host{LXCConfig: p.LXCConfig(vmid), Dev: p.Dev, Proc: p.Proc, Sys: p.Sys, Nodes: n.host.Nodes,
		GPUs: nvdev.ProcGPUs{Proc: p.Proc}, DriverCache: driverrun.Cache{Dir: p.Cache}, PVE: p.PVE}
	ct := n.opts.Config.Container(vmid)
	req := prestart.Request{VMID: vmid, Required: ct.Required, Install: ct.Install}
	if !ct.GPUs.All {
		req.GPUs = ct.GPUs.Selectors
	}
	if _, err := prestart.Run(h, req, zerolog.Nop()); err != nil {
		n.t.Fatalf("pre-start: %v", err)
	}
}

func editCT(n *node, vmid int, edit func(string) string) {
	n.t.Helper()
	path := filepath.Join(n.opts.Config.Paths.PVE, "lxc", strconv.Itoa(vmid)+".conf")
	b, err := os.ReadFile(path)
	if err != nil {
		n.t.Fatal(err)
	}
	n.write(path, edit(string(b)), 0o644)
}

func dropLine(prefix string) func(string) string {
	return func(s string) string {
		var keep []string
		for _, l := range strings.SplitAfter(s, "\n") {
			if !strings.HasPrefix(l, prefix) {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "")
	}
}

func fixCases() []fixCase {
	now := time.Now()
	return []fixCase{
		{name: "driver not loaded", check: "driver-not-loaded",
			make: func(n *node) {
				n.opts.Config.Driver.Version = version
				if err := n.host.UnloadDriver(); err != nil {
					n.t.Fatal(err)
				}
			},
			says: []string{"systemctl start nvidiaprep-host-driver.service", "installs and loads driver"},
			// The unit installs the driver and the node reboots into it.
			apply: func(n *node) { n.reboot(version) }},
		{name: "host driver install failed", check: "host-driver-failed",
			make: func(n *node) {
				n.write(hostdriver.StatePath(n.opts.Config.Paths.State), `{"configured":"590.1","outcome":"failed","error":"no .run for 590.1","time":"2025-11-26T09:00:00Z"}`, 0o644)
			},
			says: []string{"journalctl -u nvidiaprep-host-driver.service", "systemctl restart nvidiaprep-host-driver.service"},
			// The cause: a version with no .run; [driver] version set to the
			// loaded one, then the unit run again.
			apply: func(n *node) { n.opts.Config.Driver.Version = version; n.hostDriverUnit() }},
		{name: "reboot pending", check: "reboot-pending",
			make: func(n *node) {
				n.opts.Config.Driver.Version = "580.172.01"
				n.write(hostdriver.StatePath(n.opts.Config.Paths.State), `{"configured":"580.172.01","installed":"580.172.01","loaded":"`+version+`","outcome":"reboot-required"}`, 0o644)
				n.cacheRun("580.172.01")
			},
			says:  []string{"reboot the node"},
			apply: func(n *node) { n.reboot("580.172.01") }},
		{name: "control node missing", check: "device-nodes",
			make:  func(n *node) { os.Remove(filepath.Join(n.host.Dev, "nvidiactl")) },
			says:  []string{"nvidia-modprobe -c=0"},
			apply: func(n *node) { n.modprobe() }},
		{name: "node with an old major", check: "device-nodes",
			make: func(n *node) {
				if err := n.host.MakeNode("nvidia-uvm", 508, 0, 0o666); err != nil {
					n.t.Fatal(err)
				}
			},
			says:  []string{"rm /dev/nvidia-uvm", "nvidia-modprobe -u -c=0"},
			apply: func(n *node) { os.Remove(filepath.Join(n.host.Dev, "nvidia-uvm")); n.modprobe() }},
		{name: "nvidia-uvm not loaded", check: "device-nodes",
			make: func(n *node) {
				d := n.drv
				d.UVMMajor = 0
				if err := n.host.LoadDriver(d); err != nil {
					n.t.Fatal(err)
				}
			},
			says: []string{"modprobe nvidia-uvm && nvidia-modprobe -u -c=0"},
			apply: func(n *node) {
				if err := n.host.LoadDriver(n.drv); err != nil { // modprobe nvidia-uvm
					n.t.Fatal(err)
				}
				n.modprobe()
			}},
		{name: "nouveau loaded", check: "nouveau",
			make: func(n *node) {
				n.write(filepath.Join(n.host.Proc, "modules"), "drm 1 1 nouveau, Live 0x0\nnouveau 2 0 - Live 0x0\n", 0o644)
			},
			says: []string{"/" + hostdriver.BlacklistFile, "update-initramfs -u", "reboot"},
			apply: func(n *node) {
				// The printed command writes the host driver unit's own
				// file (the one it checks and rewrites); after the reboot
				// the blacklisted module is not loaded.
				n.write(filepath.Join(n.opts.Config.Paths.Root, hostdriver.BlacklistFile), "blacklist nouveau\noptions nouveau modeset=0\n", 0o644)
				n.write(filepath.Join(n.host.Proc, "modules"), "nvidia_uvm 1 0 - Live 0x0\nnvidia 2 1 nvidia_uvm, Live 0x0\n", 0o644)
			}},
		{name: "provisioning failed", check: "provisioning-failed",
			make: func(n *node) {
				n.save(record.Provision{VMID: 101, Version: version, Outcome: record.Failed, Started: now, Error: "CT 101: no space left on device"})
			},
			says: []string{"nvidiaprep provision 101"},
			// The worker (its real code needs a running container: the
			// integration tests) records a verified install.
			apply: func(n *node) {
				n.save(record.Provision{VMID: 101, Version: version, Outcome: record.Installed, Started: now, Finished: now})
			}},
		{name: "version skew", check: "version-skew",
			make: func(n *node) {
				n.save(record.Provision{VMID: 101, Version: "570.86.15", Outcome: record.Installed, Started: now})
			},
			says: []string{"pct reboot 101"},
			apply: func(n *node) {
				n.save(record.Provision{VMID: 101, Version: version, Outcome: record.Installed, Started: now, Finished: now})
			}},
		{name: "tree changed", check: "tree-changed",
			make: func(n *node) {
				n.write(filepath.Join(driverrun.Cache{Dir: n.opts.Config.Paths.Cache}.Tree(version), "nvidia-installer"), "#!/bin/sh\n", 0o755)
			},
			says: []string{"the next provisioning extracts the tree again"},
			// What the next provisioning does: extract again.
			apply: func(n *node) { n.extract("") }},
		{name: "tree not from the pinned .run", check: "tree-not-pinned",
			make: func(n *node) {
				n.opts.Config.Driver.Version, n.opts.Config.Driver.SHA256 = version, strings.Repeat("ab", 32)
			},
			says: []string{"fix [driver] sha256"},
			apply: func(n *node) {
				sum, err := driverrun.SHA256(filepath.Join(driverrun.Cache{Dir: n.opts.Config.Paths.Cache}.RunsDir(), driverrun.RunFileName(version)))
				if err != nil {
					n.t.Fatal(err)
				}
				n.opts.Config.Driver.SHA256 = sum
			}},
		{name: ".run not cached", check: "run-not-cached",
			make: func(n *node) {
				c := driverrun.Cache{Dir: n.opts.Config.Paths.Cache}
				os.RemoveAll(c.DriversDir())
				os.RemoveAll(c.RunsDir())
			},
			says:  []string{"put NVIDIA's " + driverrun.RunFileName(version) + " there"},
			apply: func(n *node) { n.cacheRun(version) }},
		{name: "table without hookscript", check: "hookscript",
			make: func(n *node) { n.ct(101, "") },
			says: []string{"`nvidiaprep enable 101`"},
			// enable's pct set.
			apply: func(n *node) { n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\n") }},
		{name: "hookscript link gone", check: "hookscript",
			make: func(n *node) {
				os.Remove(filepath.Join(n.opts.Config.Paths.Root, "var/lib/vz/snippets/nvidiaprep-hook"))
			},
			says: []string{"apt install --reinstall nvidiaprep"},
			// postinst makes the link.
			apply: func(n *node) {
				root := n.opts.Config.Paths.Root
				if err := os.Symlink(filepath.Join(root, "usr/lib/nvidiaprep/nvidiaprep-hook"), filepath.Join(root, "var/lib/vz/snippets/nvidiaprep-hook")); err != nil {
					n.t.Fatal(err)
				}
			}},
		{name: "hook not executable", check: "hookscript",
			make: func(n *node) {
				os.Chmod(filepath.Join(n.opts.Config.Paths.Root, "usr/lib/nvidiaprep/nvidiaprep-hook"), 0o644)
			},
			says: []string{"apt install --reinstall nvidiaprep"},
			apply: func(n *node) {
				os.Chmod(filepath.Join(n.opts.Config.Paths.Root, "usr/lib/nvidiaprep/nvidiaprep-hook"), 0o755)
			}},
		{name: "hookscript on a storage without snippets", check: "hookscript",
			make: func(n *node) {
				n.write(filepath.Join(n.opts.Config.Paths.PVE, "storage.cfg"), "dir: local\n\tpath /var/lib/vz\n\tcontent iso\n\nlvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n", 0o644)
				n.ct(101, "hookscript: local-lvm:snippets/nvidiaprep-hook\n")
			},
			says:  []string{"pct set 101 --hookscript local:snippets/nvidiaprep-hook"},
			apply: func(n *node) { n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\n") }},
		{name: "chained hookscript gone", check: "chained-hookscript",
			make: func(n *node) {
				n.opts.Config.Containers[101] = config.Container{GPUs: config.Selection{All: true}, Install: true, Chain: "local:snippets/mount-nfs.sh"}
			},
			says: []string{"put the script back", "delete the chain line of [containers.101]"},
			apply: func(n *node) {
				n.write(filepath.Join(n.opts.Config.Paths.Root, "var/lib/vz/snippets/mount-nfs.sh"), "#!/bin/sh\n", 0o755)
			}},
		{name: "lost block", check: "lost-block",
			make:  func(n *node) { n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644) },
			says:  []string{"pct reboot 101"},
			apply: func(n *node) { n.preStart(101) }},
		{name: "a GPU the node does not have", check: "gpu-selection",
			make: func(n *node) {
				n.opts.Config.Containers[101] = config.Container{GPUs: config.Selection{Selectors: []string{"7"}}, Required: true, Install: true}
				// Its start was refused: the config Proxmox wrote has no block.
				n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
			},
			says: []string{"nvidiaprep enable 101 --gpus 0", "pct start 101"},
			apply: func(n *node) {
				n.opts.Config.Containers[101] = config.Container{GPUs: config.Selection{Selectors: []string{"0"}}, Required: true, Install: true}
				n.preStart(101)
			}},
		{name: "unit drop-in missing", check: "unit-drop-in",
			make:  func(n *node) { os.Remove(filepath.Join(n.opts.Config.Paths.Root, unitDropIns[0])) },
			says:  []string{"apt install --reinstall nvidiaprep", "systemctl daemon-reload"},
			apply: func(n *node) { n.write(filepath.Join(n.opts.Config.Paths.Root, unitDropIns[0]), "[Service]\n", 0o644) }},
		{name: "hand-written rule for an old major", check: "hand-written-lines",
			make: func(n *node) {
				n.ct(105, "lxc.cgroup2.devices.allow: c 195:255 rwm\nlxc.cgroup2.devices.allow: c 237:* rwm\n")
			},
			says: []string{"delete it from "},
			apply: func(n *node) {
				editCT(n, 105, dropLine("lxc.cgroup2.devices.allow: c 237:"))
			}},
		{name: "devN of a node that does not exist", check: "hand-written-lines",
			make:  func(n *node) { n.ct(105, "dev0: /dev/nvidia7\n") },
			says:  []string{"pct set 105 --delete dev0"},
			apply: func(n *node) { editCT(n, 105, dropLine("dev0:")) }},
		{name: "rule that reaches every GPU", check: "gpu-bypass",
			make: func(n *node) {
				n.opts.Config.Containers[101] = config.Container{GPUs: config.Selection{Selectors: []string{}}}
				n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\nlxc.cgroup2.devices.allow: c 195:* rwm\n")
			},
			says:  []string{"delete"},
			apply: func(n *node) { editCT(n, 101, dropLine("lxc.cgroup2.devices.allow: c 195:*")) }},
		{name: "API mismatch in the kernel log: the host's libraries", check: "api-mismatch",
			make: func(n *node) {
				// The host's own libraries are 580.142 (installed without
				// reloading the module), and a program on the host used them.
				n.write(filepath.Join(n.opts.Config.Paths.Root, "var/lib/nvidia/log"), "1.0-1 (580.142)\n", 0o600)
				n.log.log += "NVRM: API mismatch: the client has the version 580.142, but\nNVRM: this kernel module has the version 580.159.04.\n"
			},
			says: []string{"reboot the node"},
			apply: func(n *node) {
				// The reboot loads what was installed.
				n.cacheRun("580.142")
				n.reboot("580.142")
			}},
		{name: "API mismatch in the kernel log: a container's libraries", check: "api-mismatch-client",
			make: func(n *node) {
				n.ct(105, "hookscript: local:snippets/nvidiaprep-hook\n")
				n.save(record.Provision{VMID: 105, Version: "570.86.15", Outcome: record.Installed})
				n.log.log += "NVRM: API mismatch: the client has the version 570.86.15, but\nNVRM: this kernel module has the version 580.159.04.\n"
			},
			says:  []string{"nvidiaprep provision <vmid>", "pct reboot <vmid>"},
			apply: func(n *node) { n.save(record.Provision{VMID: 105, Version: version, Outcome: record.Installed}) }},
		{name: "a line that breaks a premise", check: "breaks-premise",
			make: func(n *node) {
				n.ct(105, "hookscript: local:snippets/nvidiaprep-hook\nlxc.autodev: 0\n")
			},
			says:  []string{"delete it from "},
			apply: func(n *node) { editCT(n, 105, dropLine("lxc.autodev:")) }},
	}
}

// Every finding doctor can print has a case below whose printed fix,
// applied, makes it go away (and leaves the node healthy).
func TestEveryFixWorks(t *testing.T) {
	for _, c := range fixCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := newNode(t)
			n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
			n.preStart(101) // CT 101 has started once: its block is there
			if r := n.run(); !r.OK() {
				t.Fatalf("not healthy before: %s", dump(r))
			}
			c.make(n)
			r := n.run()
			fix, found := "", false
			for _, p := range r.Problems {
				if p.Check == c.check {
					fix, found = fix+p.Fix+"\n", true
				}
			}
			if !found {
				t.Fatalf("no %s finding: %s", c.check, dump(r))
			}
			for _, s := range c.says {
				if !strings.Contains(fix, s) {
					t.Errorf("the fix does not say %q:\n%s", s, fix)
				}
			}
			c.apply(n)
			if r := n.run(); !r.OK() {
				t.Errorf("after the fix: %s", dump(r))
			}
		})
	}
}

// Each check doctor's files can print has a case in fixCases.
func TestEveryFindingHasAFixCase(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var covered []string
	for _, c := range fixCases() {
		covered = append(covered, c.check)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`r\.problem\("([a-z-]+)"`).FindAllStringSubmatch(string(src), -1) {
			if !slices.Contains(covered, m[1]) {
				t.Errorf("doctor prints %q (%s), and no case shows its fix working", m[1], f)
			}
		}
	}
}

func (n *node) save(p record.Provision) {
	n.t.Helper()
	if err := record.Save(n.opts.Config.Paths.State, p); err != nil {
		n.t.Fatal(err)
	}
}

// modprobe makes the missing or removed nodes with the driver's numbers,
// as nvidia-modprobe does.
func (n *node) modprobe() {
	n.t.Helper()
	if err := n.host.MakeNodes(n.drv); err != nil {
		n.t.Fatal(err)
	}
}

// cacheRun puts a stand-in .run of version v in the cache's runs/.
func (n *node) cacheRun(v string) {
	n.t.Helper()
	c := driverrun.Cache{Dir: n.opts.Config.Paths.Cache}
	if err := os.MkdirAll(c.RunsDir(), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := builtRun(v, filepath.Join(c.RunsDir(), driverrun.RunFileName(v))); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) extract(sha string) {
	n.t.Helper()
	if _, err := (driverrun.Cache{Dir: n.opts.Config.Paths.Cache}).Extract(context.Background(), version, sha); err != nil {
		n.t.Fatal(err)
	}
}

// runs holds the stand-in .run of each version, built once for the
// package's tests (a build takes seconds) and linked into each node.
var runs = struct {
	sync.Mutex
	dir   string
	built map[string]string
}{built: map[string]string{}}

func builtRun(v, dest string) error {
	runs.Lock()
	defer runs.Unlock()
	if runs.built[v] == "" {
		if runs.dir == "" {
			d, err := os.MkdirTemp("", "nvidiaprep-doctor-runs-")
			if err != nil {
				return err
			}
			runs.dir = d
		}
		p := filepath.Join(runs.dir, driverrun.RunFileName(v))
		if err := standin.BuildRun(p, standin.RunOptions{Version: v}); err != nil {
			return err
		}
		runs.built[v] = p
	}
	return os.Link(runs.built[v], dest)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if runs.dir != "" {
		os.RemoveAll(runs.dir)
	}
	os.Exit(code)
}

// A container refused for a GPU the node does not have is named for that,
// not for a lost block with `pct reboot` (which would be refused again).
func TestUnknownGPUIsNotALostBlock(t *testing.T) {
	n := newNode(t)
	n.opts.Config.Containers[101] = config.Container{GPUs: config.Selection{Selectors: []string{"GPU-00000000-0000-0000-0000-000000000007"}}, Required: true, Install: true}
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
	r := n.run()
	n.want(r, "gpu-selection")
	if w := dump(r); !strings.Contains(w, `GPU selector "GPU-00000000-0000-0000-0000-000000000007" matches no GPU on this node; GPUs here: 0 (GPU-1d2a0c41-7c39-4a3b-9d35-000000000000, 0000:01:00.0), and it has required = true`) {
		t.Error(w)
	}
}

// A stopped container whose last start was refused (its config has no
// block) is no lost block: its next start writes one. Running, it is.
func TestStoppedContainerHasNoLostBlock(t *testing.T) {
	n := newNode(t)
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
	running := false
	n.opts.Running = func(int) (bool, bool) { return running, true }
	n.want(n.run())
	running = true
	n.want(n.run(), "lost-block")
	n.opts.Running = func(int) (bool, bool) { return false, false } // cannot tell
	n.want(n.run(), "lost-block")
}
