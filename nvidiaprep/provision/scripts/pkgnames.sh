#!/bin/sh
# pkgnames.sh: lists the package names that apt's Packages lists and dpkg's
# status file hold and that match the extended regular expression $1 (the
# driver packages' prefixes); nothing without apt.
# It reads the lists themselves: `apt-get indextargets` names them and
# apt-helper cat-file decompresses them (apt's interface for tools that
# read its lists, apt-file's way). `apt-cache pkgnames` would build apt's
# whole cache in memory first, a second on one Debian list; it is the
# fallback where that interface is missing (apt before 1.1) or fails.
# Run by the provisioning worker (session.register) inside the container,
# through attach. From scripts.go: APT_NO_CACHE.
command -v apt-get >/dev/null || exit 0
helper=/usr/lib/apt/apt-helper
# shellcheck disable=SC2016 # $(FILENAME) is apt's format, not the shell's
if [ -x "$helper" ] && lists=$(apt-get indextargets --format '$(FILENAME)' 'Created-By: Packages' 2>/dev/null); then
	failed="nvidiaprep: unreadable list"
	names=$(
		for f in $lists /var/lib/dpkg/status; do
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
