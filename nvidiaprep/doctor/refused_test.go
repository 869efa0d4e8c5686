package doctor

import (
	"strings"
	"testing"

	"nvidiaprep/nvidiaprep/config"
	"nvidiaprep/nvidiaprep/gpusel"
)

// After pre-start refused a start (required GPUs this node does not have,
// or an error in the container's table), the generated config has no
// block: doctor names the cause and its fix, not "a lost block" and `pct
// reboot`. (Before, it said the block was lost and to reboot.)
func TestRefusedStartIsNotALostBlock(t *testing.T) {
	n := newNode(t)
	n.ct(101, "hookscript: local:snippets/nvidiaprep-hook\n")
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{"7"}}, Required: true, Install: true}
	r := n.run()
	n.want(r, "gpu-selection")
	f := dump(r)
	for _, want := range []string{`CT 101 does not start: GPU selector "7" matches no GPU on this node; GPUs here: 0 (GPU-1d2a0c41-7c39-4a3b-9d35-000000000000, 0000:01:00.0), and it has required = true`,
		"`nvidiaprep enable 101 --gpus 0`"} {
		if !strings.Contains(f, want) {
			t.Errorf("doctor lacks %q:\n%s", want, f)
		}
	}
	if strings.Contains(f, "pct reboot") || strings.Contains(f, "lost") {
		t.Errorf("doctor blames a lost block:\n%s", f)
	}

	// Not required: the container runs without those GPUs; said too.
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{Selectors: []string{"0", "7"}}, Install: true}
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n# BEGIN nvidiaprep: written by nvidiaprep-hook at every start; edits here are lost\n# END nvidiaprep\n", 0o644)
	r = n.run()
	n.want(r, "gpu-selection")
	if f := dump(r); !strings.Contains(f, "CT 101: GPU selector \"7\" matches no GPU on this node") || !strings.Contains(f, "starts without those GPUs") {
		t.Errorf("doctor:\n%s", f)
	}

	// An error in its table: that is the cause.
	n.write(n.opts.Config.Paths.LXCConfig(101), "lxc.uts.name = ct101\n", 0o644)
	n.opts.Config.Containers[101] = config.Container{GPUs: gpusel.Selection{All: true}, Install: true}
	n.opts.Config.Problems = []*config.Error{{VMID: 101, File: "/etc/pve/nvidiaprep.toml", Line: 7, Key: "containers.101.gpu", Msg: "unknown key"}}
	r = n.run()
	n.want(r, "config")
	if f := dump(r); !strings.Contains(f, "CT 101 does not start: /etc/pve/nvidiaprep.toml:7: containers.101.gpu: unknown key") || strings.Contains(f, "pct reboot") {
		t.Errorf("doctor:\n%s", f)
	}
}
