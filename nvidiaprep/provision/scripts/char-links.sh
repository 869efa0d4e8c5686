#!/bin/sh
# char-links.sh: makes /dev/char/<major>:<minor> links to each device node
# given ("$@"), as `nvidia-ctk system create-dev-char-symlinks` does: runc's
# systemd cgroup driver names devices that way. /dev is new at every start.
# Run by the provisioning worker (Worker.toolkit) inside the container,
# through attach.
mkdir -p /dev/char || exit 1
for n in "$@"; do
	[ -c "$n" ] || continue
	# shellcheck disable=SC2046 # stat prints two hex numbers: split on purpose
	set -- $(stat -c '%t %T' "$n")
	ln -sfn "..${n#/dev}" "/dev/char/$((0x$1)):$((0x$2))" || exit 1
done
