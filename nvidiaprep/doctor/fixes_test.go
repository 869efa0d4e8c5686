package doctor

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	"nvidiaprep/nvidiaprep/gpusel"
	"nvidiaprep/nvidiaprep/hostdriver"
	"nvidiaprep/nvidiaprep/hostdriverstate"
	"nvidiaprep/nvidiaprep/kernelguard"
	"nvidiaprep/nvidiaprep/kernels"
	"nvidiaprep/nvidiaprep/nvdev"
	"nvidiaprep/nvidiaprep/prestart"
	"nvidiaprep/nvidiaprep/record"
	"nvidiaprep/nvidiaprep/secureboot"
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
	if err := n.hostDriverRun(); err != nil {
		n.t.Fatalf("host driver unit: %v", err)
	}
}

// hostDriverRun runs the host driver unit's real code on the running
// kernel of the stand-in node and returns its error.
func (n *node) hostDriverRun() error {
	o := hostdriver.Options{Config: n.opts.Config, Runner: n.log, Log: zerolog.Nop(), Status: func(string) {}, KernelRelease: n.opts.KernelRelease}
	_, err := hostdriver.Run(context.Background(), o)
	return err
}

// preStart runs the hook's real pre-start for vmid on the stand-in node,
// as Proxmox does at `pct reboot`.
func (n *node) preStart(vmid int) {
	n.t.Helper()
	p := n.opts.Config.Paths
	h := prestart.Host{LXCConfig: p.LXCConfig(vmid), Dev: p.Dev, Proc: p.Proc, Sys: p.Sys, Nodes: n.host.Nodes,
		GPUs: nvdev.ProcGPUs{Proc: p.Proc}, DriverCache: driverrun.Cache{Dir: p.Cache}, PVE: p.PVE}
	ct := n.opts.Config.Container(vmid)
	req := prestart.Request{VMID: vmid, GPUs: ct.GPUs, Required: ct.Required, Install: ct.Install}
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
				n.write(hostdriverstate.Path(n.opts.Config.Paths.State), `{"configured":"590.1","outcome":"failed","error":"no .run for 590.1","time":"2025-11-26T09:00:00Z"}`, 0o644)
			},
			says: []string{"journalctl -u nvidiaprep-host-driver.service", "systemctl restart nvidiaprep-host-driver.service"},
			// The cause: a version with no .run; [driver] version set to the
			// loaded one, then the unit run again.
			apply: func(n *node) { n.opts.Config.Driver.Version = version; n.hostDriverUnit() }},
		{name: "reboot pending", check: "reboot-pending",
			make: func(n *node) {
				n.opts.Config.Driver.Version = "580.172.01"
				n.write(hostdriverstate.Path(n.opts.Config.Paths.State), `{"configured":"580.172.01","installed":"580.172.01","loaded":"`+version+`","outcome":"reboot-required"}`, 0o644)
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
			says: []string{"/" + hostdriverstate.BlacklistFile, "update-initramfs -u", "reboot"},
			apply: func(n *node) {
				// The printed command writes the host driver unit's own
				// file (the one it checks and rewrites); after the reboot
				// the blacklisted module is not loaded.
				n.write(filepath.Join(n.opts.Config.Paths.Root, hostdriverstate.BlacklistFile), "blacklist nouveau\noptions nouveau modeset=0\n", 0o644)
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
				n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{All: true}, Install: true, Chain: "local:snippets/mount-nfs.sh"}
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
				n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{"7"}}, Required: true, Install: true}
				// Its start was refused: the config Proxmox wrote has no block.
				n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
			},
			says: []string{"nvidiaprep enable 101 --gpus 0", "pct start 101"},
			apply: func(n *node) {
				n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{"0"}}, Required: true, Install: true}
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
				n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{}}}
				n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\nlxc.cgroup2.devices.allow: c 195:* rwm\n")
			},
			says:  []string{"delete"},
			apply: func(n *node) { editCT(n, 101, dropLine("lxc.cgroup2.devices.allow: c 195:*")) }},
		{name: "API mismatch in the kernel log: the host's libraries", check: "api-mismatch",
			make: func(n *node) {
				// The host's own libraries are 580.142 (installed without
				// reloading the module), and a program on the host used them.
				n.write(filepath.Join(n.opts.Config.Paths.Root, record.NVIDIALog), "1.0-1 (580.142)\n", 0o600)
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
		{name: "the container's toolkit cannot work there", check: "container-toolkit",
			make: func(n *node) {
				// What the worker leaves when it cannot set no-cgroups in
				// an unprivileged container (toolkit.go).
				if err := record.SaveFindings(n.opts.Config.Paths.State, 101, []string{"it is unprivileged and NVIDIA's container toolkit there lacks no-cgroups = true (setting it failed: sed: couldn't open temporary file /etc/nvidia-container-runtime/sedX: Read-only file system): docker/podman --gpus and nvidia-container-cli fail with a cgroup error"}); err != nil {
					n.t.Fatal(err)
				}
			},
			says: []string{"/etc/nvidia-container-runtime/config.toml inside CT 101", "no-cgroups = true", "nvidiaprep provision 101"},
			// The worker of `nvidiaprep provision 101` (its real code needs
			// a running container: the integration tests) finds no-cgroups
			// set and leaves no findings.
			apply: func(n *node) {
				if err := record.SaveFindings(n.opts.Config.Paths.State, 101, nil); err != nil {
					n.t.Fatal(err)
				}
			}},
		{name: "a table that names no container", check: "config",
			make: func(n *node) { n.configFile("[containers.ct101]\ngpus = [\"0\"]\n") },
			says: []string{"name the container's vmid in the table's header, or remove the table"},
			apply: func(n *node) {
				n.editConfig(func(s string) string { return strings.Replace(s, "[containers.ct101]", "[containers.101]", 1) })
			}},
		{name: "an error in a container's table", check: "config",
			make: func(n *node) {
				n.configFile("[containers.101]\ngpu = [\"0\"]\n")
				// pre-start refused its start: no block in the config.
				n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
			},
			says: []string{"correct that line", "nvidiaprep check", "pct start 101"},
			apply: func(n *node) {
				n.editConfig(func(s string) string { return strings.Replace(s, "gpu = ", "gpus = ", 1) })
				n.preStart(101)
			}},
		{name: "a new kernel without headers", check: "kernel-not-ready",
			make: func(n *node) {
				n.installRecord(version)
				// apt installed a newer kernel, without its headers.
				n.kernelImage(testKernel)
				n.kernelImage(newKernel)
			},
			says:  []string{"`apt install proxmox-headers-" + newKernel + "`", "nvidiaprep kernel-installed " + newKernel, kernels.PinCommand(testKernel)},
			apply: func(n *node) { n.installHeaders(newKernel); n.kernelInstalled(newKernel) }},
		{name: "the module signed by a key not enrolled", check: "module-signature",
			make: func(n *node) {
				// The unit installed the driver with Secure Boot on: DKMS
				// signs with its key; the key was never enrolled, so at
				// this boot the kernel refused the module.
				n.installRecord(version)
				n.opts.Config.Driver.Version = version
				n.secureBoot()
				if _, _, err := secureboot.EnsureKey(n.opts.Config.Paths.Root); err != nil {
					n.t.Fatal(err)
				}
				if _, err := secureboot.EnsureDKMSSigning(n.opts.Config.Paths.Root); err != nil {
					n.t.Fatal(err)
				}
				n.dkmsInstall(testKernel)
				n.bootWithout("Loading of module with unavailable key is rejected")
			},
			says: []string{secureboot.ImportCommand, "MOK manager"},
			apply: func(n *node) {
				n.enroll()
				n.reboot(version)
			}},
		{name: "an unsigned module that Secure Boot refuses", check: "module-signature",
			make: func(n *node) {
				// Built by DKMS before Secure Boot was turned on: unsigned.
				n.installRecord(version)
				n.opts.Config.Driver.Version = version
				n.secureBoot()
				n.bootWithout("Loading of unsigned module is rejected")
			},
			says: []string{"nvidiaprep kernel-installed " + testKernel, "dkms remove nvidia/" + version + " -k " + testKernel + " && dkms install nvidia/" + version + " -k " + testKernel, secureboot.ImportCommand},
			apply: func(n *node) {
				n.kernelInstalled(testKernel)
				n.dkmsInstall(testKernel) // dkms remove, then dkms install
				n.enroll()
				n.reboot(version)
			}},
		{name: "a boot into a kernel without the module", check: "driver-not-loaded-after-reboot",
			make: func(n *node) {
				n.installRecord(version)
				n.opts.Config.Driver.Version = version
				n.kernelImage(testKernel)
				if _, err := n.host.Boot(time.Now().Add(-time.Hour)); err != nil {
					n.t.Fatal(err)
				}
				n.hostDriverUnit() // this boot's run: the driver loaded
				// apt installs a newer kernel without its headers, and the
				// node boots it.
				n.kernelImage(newKernel)
				n.opts.KernelRelease = newKernel
				n.bootWithout("Linux version " + newKernel + " (build@proxmox)")
				var nl *hostdriver.NotLoadedError
				if err := n.hostDriverRun(); !errors.As(err, &nl) {
					n.t.Fatalf("the unit at the new boot: %v, want a driver that did not load", err)
				}
			},
			says: []string{"`apt install proxmox-headers-" + newKernel + "`", "systemctl restart nvidiaprep-host-driver.service", kernels.PinCommand(testKernel)},
			apply: func(n *node) {
				n.installHeaders(newKernel)
				n.kernelInstalled(newKernel)
				// The unit's restart: its modprobe nvidia and
				// nvidia-modprobe (they need the GPU), then its own run.
				n.load(version)
				n.hostDriverUnit()
			}},
	}
}

// newKernel is a kernel apt installs after the stand-in node's.
const newKernel = "6.8.12-5-pve"

// configFile writes text as the node's configuration file (with the
// stand-in node's [paths]) and loads it with the real loader.
func (n *node) configFile(text string) {
	n.t.Helper()
	p := n.opts.Config.Paths
	paths := fmt.Sprintf("[paths]\nlxc = %q\ndev = %q\nproc = %q\nsys = %q\ncache = %q\nstate = %q\npve = %q\nroot = %q\n\n",
		p.LXC, p.Dev, p.Proc, p.Sys, p.Cache, p.State, p.PVE, p.Root)
	n.write(n.configPath(), paths+text, 0o644)
	n.loadConfig()
}

func (n *node) configPath() string {
	return filepath.Join(n.opts.Config.Paths.Root, config.NodeFile)
}

func (n *node) loadConfig() {
	n.t.Helper()
	cfg, err := config.LoadFiles(config.File{Path: n.configPath()})
	if err != nil {
		n.t.Fatal(err)
	}
	n.opts.Config = cfg
}

// editConfig edits the node's configuration file and loads it again.
func (n *node) editConfig(edit func(string) string) {
	n.t.Helper()
	b, err := os.ReadFile(n.configPath())
	if err != nil {
		n.t.Fatal(err)
	}
	n.write(n.configPath(), edit(string(b)), 0o644)
	n.loadConfig()
}

// installRecord is nvidia-installer's record of driver v.
func (n *node) installRecord(v string) {
	n.write(filepath.Join(n.opts.Config.Paths.Root, record.NVIDIALog), "1.0-1 ("+v+")\nNVIDIA Accelerated Graphics Driver for Linux-x86_64\n", 0o600)
}

// kernelImage is a kernel package's image in /boot.
func (n *node) kernelImage(release string) {
	n.write(filepath.Join(n.opts.Config.Paths.Root, "boot/vmlinuz-"+release), "", 0o644)
}

// installHeaders stands in for `apt install proxmox-headers-<release>`:
// the headers, and DKMS's header_postinst.d hook, which builds and
// installs the module for that kernel.
func (n *node) installHeaders(release string) {
	n.t.Helper()
	n.write(filepath.Join(n.opts.Config.Paths.Root, "lib/modules", release, "build/include/linux/version.h"), "", 0o644)
	n.dkmsInstall(release)
}

// dkmsInstall is what `dkms install` (and autoinstall, and its hooks) does
// on the node: it needs the kernel's headers, and signs the module only
// with a signing configuration (nvidiaprep's secureboot.DKMSConf), with
// DKMS's key.
func (n *node) dkmsInstall(release string) {
	n.t.Helper()
	root := n.opts.Config.Paths.Root
	if !kernels.HasHeaders(root, release) {
		n.t.Fatalf("dkms install for %s: its headers are not installed", release)
	}
	sig := ""
	if _, err := os.Stat(filepath.Join(root, secureboot.DKMSConf)); err == nil {
		k, err := secureboot.ReadKey(root)
		if err != nil {
			n.t.Fatal(err)
		}
		sig = secureboot.SigKey(k.Cert)
	}
	n.dkmsModule(release, sig)
}

// kernelInstalled runs `nvidiaprep kernel-installed <release>`'s real code.
func (n *node) kernelInstalled(release string) {
	n.t.Helper()
	if _, err := kernelguard.KernelInstalled(context.Background(), kernelguard.GuardInput{Config: n.opts.Config, Release: release, Running: n.opts.KernelRelease, Runner: n.log, Out: io.Discard}); err != nil {
		n.t.Fatal(err)
	}
}

// secureBoot turns Secure Boot on in the firmware.
func (n *node) secureBoot() {
	n.t.Helper()
	if err := n.host.SetSecureBoot(true); err != nil {
		n.t.Fatal(err)
	}
}

// enroll stands in for mokutil --import and the MOK manager at the
// console: shim's list holds DKMS's key.
func (n *node) enroll() {
	n.t.Helper()
	k, err := secureboot.ReadKey(n.opts.Config.Paths.Root)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.host.EnrollMOK(k.Cert.Raw); err != nil {
		n.t.Fatal(err)
	}
}

// bootWithout stands in for a boot that came up without the driver: a new
// boot id, no module loaded, no device nodes (a new /dev), and the kernel
// log's lines.
func (n *node) bootWithout(log ...string) {
	n.t.Helper()
	if _, err := n.host.Boot(time.Now()); err != nil {
		n.t.Fatal(err)
	}
	if err := n.host.UnloadDriver(); err != nil {
		n.t.Fatal(err)
	}
	nodes, _ := filepath.Glob(filepath.Join(n.host.Dev, "nvidia*"))
	for _, p := range nodes {
		if err := os.RemoveAll(p); err != nil {
			n.t.Fatal(err)
		}
	}
	n.log.log = strings.Join(log, "\n") + "\n"
}

// load stands in for modprobe nvidia and nvidia-modprobe: driver v is
// loaded, its nodes made.
func (n *node) load(v string) {
	n.t.Helper()
	n.drv.Version = v
	if err := n.host.LoadDriver(n.drv); err != nil {
		n.t.Fatal(err)
	}
	if err := n.host.MakeNodes(n.drv); err != nil {
		n.t.Fatal(err)
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
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{"GPU-00000000-0000-0000-0000-000000000007"}}, Required: true, Install: true}
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

// A driver loaded by hand after the unit recorded a boot without it
// (`modprobe nvidia`, once the running kernel has the module) is no longer
// named as not loaded: the unit's record is of the boot's start. (Before,
// doctor said it "did not load on this boot" with "no cause found".)
func TestDriverLoadedSinceTheUnitsRecord(t *testing.T) {
	n := newNode(t)
	i := slices.IndexFunc(fixCases(), func(c fixCase) bool { return c.check == "driver-not-loaded-after-reboot" })
	fixCases()[i].make(n)
	n.want(n.run(), "driver-not-loaded", "driver-not-loaded-after-reboot", "kernel-not-ready")
	n.installHeaders(newKernel)
	n.load(version) // modprobe nvidia, nvidia-modprobe: without the unit
	n.want(n.run())
}
