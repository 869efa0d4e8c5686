package provision

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// utilsScript, run here with its directory moved to a temporary one: the
// placeholders come first on the PATH, the command gets --tmpdir, nothing
// is left, and a command killed by a signal kills the script with it.
func TestUtilsScript(t *testing.T) {
	d := t.TempDir()
	os.Mkdir(filepath.Join(d, "run.stale"), 0o755) // left by a killed run
	run := func(mode string, argv ...string) (string, error) {
		cmd := localCommand(utilsScript, map[string]string{"NVIDIAPREP_DIR": d}, append([]string{mode}, argv...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("tmpdir", "/bin/sh", "-c", `for u in modprobe rmmod lsmod depmod; do command -v $u; done; modprobe nvidia; echo "rc=$? args=$*"; test -d "$TMPDIR" && echo tmp`, "x")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, u := range []string{"modprobe", "rmmod", "lsmod", "depmod"} {
		if !strings.Contains(out, filepath.Join(d, "run.")) || !strings.Contains(out, "/"+u+"\n") {
			t.Errorf("%s is not a placeholder first on the PATH:\n%s", u, out)
		}
	}
	if !strings.Contains(out, "placeholder here") || !strings.Contains(out, "rc=1 args=--tmpdir="+d+"/run.") || !strings.Contains(out, "tmp\n") {
		t.Errorf("output:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(d, "*")); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	_, err = run("plain", "/bin/sh", "-c", "kill -9 $$")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("a killed command: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(d, "*")); len(left) > 0 {
		t.Errorf("left behind after a kill: %v", left)
	}
	if out, err := run("plain", "/bin/sh", "-c", "exit 3"); err == nil || err.(*exec.ExitError).ExitCode() != 3 {
		t.Errorf("exit 3: %v %s", err, out)
	}
}

// preflightScript: exit 3 without glibc's loader, 4 naming the utilities
// found neither on the PATH nor in the installer's EXTRA_PATH.
func TestPreflightScript(t *testing.T) {
	run := func(sc script, utils ...string) (string, int) {
		cmd := localCommand(sc, nil, utils...)
		cmd.Env = []string{"PATH=/nonexistent"}
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		return string(out), 0
	}
	if out, code := run(preflightScript, "ldconfig", "grep", "dmesg", "tail"); code != 0 {
		t.Errorf("this machine: exit %d %s", code, out)
	}
	if out, code := run(preflightScript, "grep", "nvidiaprep-no-such-utility", "tail"); code != 4 || strings.TrimSpace(out) != "nvidiaprep-no-such-utility" {
		t.Errorf("a missing utility: exit %d %q", code, out)
	}
	musl := replaced(t, preflightScript, "/lib64/ld-linux-x86-64.so.2", filepath.Join(t.TempDir(), "ld-linux-x86-64.so.2"))
	if _, code := run(musl, "grep"); code != 3 {
		t.Errorf("without glibc's loader: exit %d", code)
	}
}

// Before 510.39.01 the installer also requires ldd, cut, tr and sed.
func TestSystemUtilsByBranch(t *testing.T) {
	names := func(v string) string {
		var n []string
		for _, u := range systemUtilsFor(v) {
			n = append(n, u.name)
		}
		return strings.Join(n, " ")
	}
	if got := names("495.46"); got != "ldconfig grep dmesg tail ldd cut tr sed" {
		t.Errorf("495.46: %s", got)
	}
	if got := names("470.256.02"); !strings.Contains(got, "sed") {
		t.Errorf("470: %s", got)
	}
	if got := names("510.39.01"); got != "ldconfig grep dmesg tail" {
		t.Errorf("510.39.01: %s", got)
	}
}

// An installed nvidia-uninstall that does not list --skip-module-unload
// (before 346.16) is passed over for the new installer's --uninstall.
func TestUninstallScriptOldUninstaller(t *testing.T) {
	d := t.TempDir()
	log := filepath.Join(d, "log")
	os.WriteFile(log, []byte("x"), 0o600)
	old := filepath.Join(d, "nvidia-uninstall")
	newInst := filepath.Join(d, "nvidia-installer")
	for path, help := range map[string]string{old: "  --skip-depmod", newInst: "  --skip-module-unload\n  --skip-depmod"} {
		os.WriteFile(path, []byte("#!/bin/sh\nif [ \"$1\" = -A ]; then printf '"+help+"\\n'; exit 0; fi\necho \"$0 $*\"\n"), 0o755)
	}
	sc := replaced(t, uninstallScript, "/usr/bin/nvidia-uninstall", old)
	vars := map[string]string{"NVIDIA_LOG": log}
	out, err := localCommand(sc, vars, newInst).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), newInst+" --uninstall --silent --skip-module-unload --skip-depmod") {
		t.Errorf("%v: %s", err, out)
	}
	os.WriteFile(old, []byte("#!/bin/sh\nif [ \"$1\" = -A ]; then printf '  --skip-module-unload\\n'; exit 0; fi\necho \"$0 $*\"\n"), 0o755)
	out, err = localCommand(sc, vars, newInst).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), old+" --silent --skip-module-unload --log-file-name") {
		t.Errorf("a current uninstaller: %v: %s", err, out)
	}
}
