#!/bin/sh
# register.sh: builds the registration package (aptreg) from the control
# file on stdin with dpkg-deb and installs it. Where a package it conflicts
# with, or an earlier registration, is installed, apt installs it: apt
# removes those packages in the same step while what depends on them stays.
# Otherwise dpkg installs it, without apt's cache (a second on a Debian
# list); apt takes over when dpkg fails (its lock held, say). Without apt,
# dpkg installs it. dpkg writes its journal and the package's files under
# /var/lib/dpkg before it rewrites its status file, so on a disk without
# room for that rewrite a failed dpkg would leave them and use up the last
# of the space; apt, which writes its logs first and so fails before dpkg
# starts, installs it there. The control file is kept as
# NVIDIAPREP_APTREG_CONTROL.
# Run by the provisioning worker (session.register) inside the container,
# through attach. $1: apt's lock timeout in seconds; the rest: the packages
# it conflicts with. From scripts.go:
# NVIDIAPREP_DIR, NVIDIAPREP_APTREG_CONTROL, APTREG_PACKAGE, APT_NO_CACHE.
set -e
d=$NVIDIAPREP_DIR/aptreg
deb=$d/$APTREG_PACKAGE.deb
rm -rf "$d"
mkdir -p "$d/pkg/DEBIAN"
cat >"$d/pkg/DEBIAN/control"
dpkg-deb --root-owner-group -b "$d/pkg" "$deb" >/dev/null
timeout=$1
shift
# installed: whether one of the named packages is on the system in any
# state but not-installed or config-files (dpkg-query's second letter).
installed() {
	dpkg-query -W -f '${db:Status-Abbrev}\n' "$@" 2>/dev/null | grep -q '^.[^nc]'
}
# roomy: whether /var/lib/dpkg's file system has room for twice the status
# file and 1 MiB more.
roomy() {
	free=$(df -Pk /var/lib/dpkg | awk 'NR == 2 { print $4 }')
	status=$(wc -c </var/lib/dpkg/status)
	[ "${free:-0}" -gt $((status / 512 + 1024)) ]
}
if ! command -v apt-get >/dev/null; then
	dpkg -i "$deb"
elif installed "$APTREG_PACKAGE" "$@" || ! roomy || ! dpkg -i "$deb"; then
	# shellcheck disable=SC2086 # APT_NO_CACHE is two options: split on purpose
	DEBIAN_FRONTEND=noninteractive apt-get $APT_NO_CACHE install -y -q --no-install-recommends --allow-downgrades -o DPkg::Lock::Timeout="$timeout" "$deb"
fi
rm -rf "$NVIDIAPREP_APTREG_CONTROL"
cp "$d/pkg/DEBIAN/control" "$NVIDIAPREP_APTREG_CONTROL"
rm -rf "$d"
