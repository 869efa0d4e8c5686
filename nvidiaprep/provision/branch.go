package provision

import "nvidiaprep/nvidiaprep/nvversion"

// utilityPkg is a program nvidia-installer requires, with the Debian
// package that has it.
type utilityPkg struct{ name, pkg string }

// oldSystemUtils are the system utilities nvidia-installer required before
// 510.39.01 besides systemUtils (nvidia-installer.h SystemUtils: LDD, CUT,
// TR, SED at 465.19.01 to 495.46; find_system_utils refuses without them).
var oldSystemUtils = []utilityPkg{{"ldd", "libc-bin"}, {"cut", "coreutils"}, {"tr", "coreutils"}, {"sed", "sed"}}

// lastOldUtils is the first release whose installer no longer requires
// oldSystemUtils.
const lastOldUtils = "510.39.01"

// systemUtilsFor are the utilities version's installer requires: a
// container without them would fail after its packages were purged.
func systemUtilsFor(version string) []utilityPkg {
	u := make([]utilityPkg, 0, len(systemUtils)+len(oldSystemUtils))
	for _, s := range systemUtils {
		u = append(u, utilityPkg(s))
	}
	if !nvversion.AtLeast(version, lastOldUtils) {
		u = append(u, oldSystemUtils...)
	}
	return u
}
