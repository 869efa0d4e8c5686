#!/bin/sh
# pkgnames.sh: lists the package names apt's lists know that match the
# extended regular expression $1 (the driver packages' prefixes), in one
# apt-cache call; nothing without apt.
# Run by the provisioning worker (session.register) inside the container,
# through attach. From scripts.go: APT_NO_CACHE.
command -v apt-cache >/dev/null || exit 0
# shellcheck disable=SC2086 # APT_NO_CACHE is two options: split on purpose
names=$(apt-cache $APT_NO_CACHE pkgnames) || exit $?
printf '%s\n' "$names" | grep -E "$1"
exit 0
