#!/bin/sh
# pkgnames.sh: lists the package names that apt's Packages lists and dpkg's
# status file hold and that match the extended regular expression $1 (the
# driver packages' prefixes); nothing without apt.
# It reads the files themselves: apt-config names apt's lists directory and
# apt-helper cat-file decompresses them, neither of which opens apt's cache.
# `apt-cache pkgnames` (and any apt-get command) builds apt's whole cache
# first, a second on one Debian list, and writes it to /var/cache/apt
# unless told not to; it is the fallback where apt-helper is missing or
# fails.
# Run by the provisioning worker (session.register) inside the container,
# through attach. From scripts.go: APT_NO_CACHE.
command -v apt-get >/dev/null || exit 0
helper=/usr/lib/apt/apt-helper
lists=
if [ -x "$helper" ] && eval "$(apt-config shell lists Dir::State::lists/d)" && [ -d "$lists" ]; then
	failed="nvidiaprep: unreadable list"
	names=$(
		for f in "$lists"/*_Packages "$lists"/*_Packages.gz "$lists"/*_Packages.xz "$lists"/*_Packages.lz4 "$lists"/*_Packages.zst "$lists"/*_Packages.bz2 /var/lib/dpkg/status; do
			[ -f "$f" ] || continue
			{ "$helper" cat-file "$f" || printf '\n%s\n' "$failed"; } | grep -E "^(Package: |$failed\$)" | sed 's/^Package: //' | grep -E "$1|^$failed\$"
		done
	)
	case $names in
	*"$failed"*) ;;
	*)
		printf '%s\n' "$names" | sort -u
		exit 0
		;;
	esac
fi
# shellcheck disable=SC2086 # APT_NO_CACHE is two options: split on purpose
names=$(apt-cache $APT_NO_CACHE pkgnames) || exit $?
printf '%s\n' "$names" | grep -E "$1"
exit 0
