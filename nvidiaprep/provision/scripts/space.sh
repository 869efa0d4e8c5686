#!/bin/sh
# space.sh: prints "<dir> <KiB available>" for the directories the installer
# writes to: the first library directory it finds, /usr/bin and /var/lib.
# Run by the provisioning worker (session.fullHint) inside the container,
# through attach, after a failed install.
for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do [ -d "$d" ] && break; done
for d in "$d" /usr/bin /var/lib; do
	[ -d "$d" ] || continue
	printf '%s ' "$d"
	df -Pk "$d" | awk 'NR == 2 { print $4 }'
done
