#!/bin/sh
# with-utils.sh: runs a command with a temporary directory of placeholders
# for kmod's modprobe, rmmod, lsmod and depmod first on the PATH.
# Run by the provisioning worker (session.withUtils) inside the container,
# through attach. $1: "tmpdir" (the command also gets --tmpdir, a directory
# in the same place) or "plain"; the rest: the command and its arguments.
# From scripts.go: NVIDIAPREP_DIR. Exit 120: the directory could not be made.
#
# nvidia-installer refuses to run without those utilities, even with
# --no-kernel-module (nvidia-installer.c main, misc.c find_module_utils,
# which looks in $PATH before /bin:/usr/bin:/sbin:/usr/sbin), and a container
# need not have kmod (a debootstrap minbase has not). They only exit 1: with
# the flags nvidiaprep passes the installer runs none of them, and in a
# privileged container none can reach the host's modules. The directory is
# removed afterwards (one left by a killed run goes at the next), so the
# container keeps nothing of it.
mode=$1
shift
d=$NVIDIAPREP_DIR
rm -rf "$d"/run.*
t=$(mktemp -d "$d/run.XXXXXX") || exit 120
trap 'rm -rf "$t"' EXIT
for s in TERM INT HUP; do
	# shellcheck disable=SC2064 # $s now (the signal of this trap), $t when it fires
	trap "rm -rf \"\$t\"; trap - $s EXIT; kill -$s \$\$" "$s"
done
for u in modprobe rmmod lsmod depmod; do
	printf '#!/bin/sh\necho "nvidiaprep: %s is a placeholder here: nvidia-installer does not load or unload kernel modules inside a container" >&2\nexit 1\n' "$u" >"$t/$u" && chmod 755 "$t/$u" || exit 120
done
mkdir "$t/tmp" || exit 120
[ "$mode" = tmpdir ] && set -- "$@" --tmpdir="$t/tmp"
PATH="$t:${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}" TMPDIR="$t/tmp" "$@"
rc=$?
# A command killed by a signal (the container stopping): die of it too, so
# that the caller sees the signal, not an exit status.
if [ $rc -gt 128 ] && [ $rc -lt 160 ]; then
	rm -rf "$t"
	trap - EXIT
	kill -$((rc - 128)) $$
fi
exit $rc
