package hostdriver

import (
	"fmt"
	"strings"

	"nvidiaprep/nvidiaprep/kernels"
)

// buildFailedStep is the step nvidia-installer names when the kernel
// module does not build (install-from-cwd.c install_kernel_modules; the
// stand-in's row 11): "An error occurred while performing the step:
// "Building kernel modules"".
const buildFailedStep = `"Building kernel modules"`

// installerCause names, from the installer's output, a failure that no
// reboot puts right, with its fix: with no reboot between the install and
// the load, a module that does not build for the running kernel is known
// at once, and the unit says so instead of "reboot required" (which would
// be a reboot loop: the next boot has no module either). "" when the
// output names no such cause.
func installerCause(output, version, release string) string {
	if !strings.Contains(output, buildFailedStep) {
		return ""
	}
	return fmt.Sprintf("the NVIDIA kernel module did not build for kernel %s (the compiler's errors are in %s), so driver %s cannot load on this kernel and rebooting does not help; "+
		"fix: read the log: a kernel newer than the driver needs a newer [driver] version, missing headers need `apt install %s`; then `systemctl restart nvidiaprep-host-driver.service`, or boot a kernel the driver builds for",
		release, InstallerLog, version, kernels.HeadersFor(release))
}
