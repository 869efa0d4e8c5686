#!/bin/sh
# purge.sh: purges the distribution's NVIDIA driver packages, with apt-get
# where there is apt, else with dpkg.
# Run by the provisioning worker (session.clean) inside the container,
# through attach. $1: apt's lock timeout in seconds; the rest: the packages.
# From scripts.go: APT_NO_CACHE.
timeout=$1
shift
if command -v apt-get >/dev/null; then
	# shellcheck disable=SC2086 # APT_NO_CACHE is two options: split on purpose
	apt-get $APT_NO_CACHE purge -y -q -o DPkg::Lock::Timeout="$timeout" "$@"
else
	dpkg --purge "$@"
fi
