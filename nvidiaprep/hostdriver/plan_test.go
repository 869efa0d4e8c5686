package hostdriver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"nvidiaprep/nvidiaprep/hostdriverstate"
)

// run with a confirmation: the admin at a terminal.
func (n *node) runAsking(answer bool, plan *Plan) (Report, error) {
	n.t.Helper()
	return Run(context.Background(), Options{Config: n.cfg, Runner: n.runner,
		Log: zerolog.New(&n.log), Status: func(s string) { n.status = append(n.status, s) },
		KernelRelease: release, DownloadAttempts: 2, DownloadBackoff: time.Millisecond,
		Confirm: func(p Plan) bool { *plan = p; return answer }})
}

// At a terminal the install shows what it will purge, install, rebuild and
// unload before it changes anything; "no" leaves the node as it was.
func TestPlanIsShownAndNoChangesNothing(t *testing.T) {
	n := debianNode(t)
	var plan Plan
	_, err := n.runAsking(false, &plan)
	if !errors.Is(err, ErrDeclined) {
		t.Fatalf("want ErrDeclined, got %v", err)
	}
	if !slices.Equal(plan.Purge, []string{"nvidia-driver-libs:amd64", "nvidia-kernel-dkms"}) || plan.Uninstall != verOld ||
		!slices.Equal(plan.DKMS, []string{verOld, verWant}) || !slices.Equal(plan.Install, []string{"linux-headers-" + release, "make"}) {
		t.Errorf("plan %+v", plan)
	}
	text := strings.Join(plan.Lines(), "\n")
	for _, want := range []string{"purge the distribution's NVIDIA packages: nvidia-driver-libs:amd64 nvidia-kernel-dkms",
		"uninstall the earlier .run install of driver " + verOld, "remove the DKMS module nvidia/" + verWant,
		"install linux-headers-" + release + " make", "write /" + hostdriverstate.BlacklistFile, "--dkms", "load driver " + verWant + " and make its device nodes: no reboot"} {
		if !strings.Contains(text, want) {
			t.Errorf("the plan does not say %q:\n%s", want, text)
		}
	}
	for _, c := range n.runner.calls {
		if strings.Contains(c, " purge ") && !strings.Contains(c, "-s -q purge") || strings.Contains(c, "nvidia-uninstall") || strings.Contains(c, "dkms remove") ||
			strings.Contains(c, "update-initramfs") || strings.Contains(c, "--no-install-recommends linux-headers") && !strings.Contains(c, "--download-only") {
			t.Errorf("a declined install ran %q", c)
		}
	}
	if _, err := os.Stat(filepath.Join(n.root, hostdriverstate.BlacklistFile)); err == nil {
		t.Error("a declined install wrote the blacklist")
	}
	if s, ok, _ := hostdriverstate.Load(n.cfg.Paths.State); ok && (s.Outcome == hostdriverstate.OutcomeInstalling || s.Outcome == hostdriverstate.OutcomeFailed) {
		t.Errorf("a declined install recorded %+v", s)
	}
	// Yes installs.
	if rep, err := n.runAsking(true, &plan); err != nil || rep.Path != PathInstalled {
		t.Fatalf("confirmed: %+v %v\n%s", rep, err, n.log.String())
	}
}

// kernel_module = "open" before 515.43.04: refused before anything changes.
func TestOpenModulesBefore515Refused(t *testing.T) {
	n := debianNode(t)
	run := standinRun(t, "510.108.03")
	n.cfg.Driver.Version, n.cfg.Driver.Run, n.cfg.Driver.SHA256 = "510.108.03", run, sha(t, run)
	_, err := n.run()
	if err == nil || !strings.Contains(err.Error(), `kernel_module = "open", but driver 510.108.03 has no open kernel module (the first is 515.43.04)`) || !strings.Contains(err.Error(), "nothing on the node was changed") {
		t.Fatalf("%v", err)
	}
	for _, c := range n.runner.calls {
		if strings.Contains(c, "purge") && !strings.Contains(c, " -s ") || strings.HasPrefix(c, "/bin/sh") {
			t.Errorf("changed the node: %s", c)
		}
	}
}
