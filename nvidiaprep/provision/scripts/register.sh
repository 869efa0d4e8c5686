#!/bin/sh
# register.sh: builds the registration package (aptreg) from the control
# file on stdin with dpkg-deb and installs it with apt, which removes the
# distribution's driver packages it conflicts with in the same step while
# what depends on them stays; without apt, dpkg installs it. The control
# file is kept as NVIDIAPREP_APTREG_CONTROL.
# Run by the provisioning worker (session.register) inside the container,
# through attach. $1: apt's lock timeout in seconds. From scripts.go:
# NVIDIAPREP_DIR, NVIDIAPREP_APTREG_CONTROL, APTREG_PACKAGE, APT_NO_CACHE.
set -e
d=$NVIDIAPREP_DIR/aptreg
deb=$d/$APTREG_PACKAGE.deb
rm -rf "$d"
mkdir -p "$d/pkg/DEBIAN"
cat >"$d/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -b "$d/pkg" "$deb" >/dev/null
if command -v apt-get >/dev/null; then
	# shellcheck disable=SC2086 # APT_NO_CACHE is two options: split on purpose
	DEBIAN_FRONTEND=noninteractive apt-get $APT_NO_CACHE install -y -q --no-install-recommends --allow-downgrades -o DPkg::Lock::Timeout="$1" "$deb"
else
	dpkg -i "$deb"
fi
rm -rf "$NVIDIAPREP_APTREG_CONTROL"
cp "$d/pkg/DEBIAN/control" "$NVIDIAPREP_APTREG_CONTROL"
rm -rf "$d"
