package hostdriver

import (
	"strings"
	"testing"
)

func TestInstallerCauseNamesABuildThatFailed(t *testing.T) {
	built := `ERROR: An error occurred while performing the step: "Building kernel modules". See /var/log/nvidia-installer.log for details.`
	got := installerCause(built, "580.159.04", "6.17.2-1-pve")
	for _, want := range []string{"did not build for kernel 6.17.2-1-pve", InstallerLog, "rebooting does not help", "apt install proxmox-headers-6.17.2-1-pve", "systemctl restart nvidiaprep-host-driver.service"} {
		if !strings.Contains(got, want) {
			t.Errorf("cause lacks %q: %s", want, got)
		}
	}
	// A failure that a reboot may put right, or one it does not know, gets
	// no cause of its own.
	for _, out := range []string{"ERROR: Unable to load the kernel module 'nvidia.ko'.", "ERROR: Installation has failed.", ""} {
		if c := installerCause(out, "580.159.04", "6.17.2-1-pve"); c != "" {
			t.Errorf("%q: cause %q, want none", out, c)
		}
	}
}
