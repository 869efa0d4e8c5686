#!/bin/sh
# preflight.sh: exits 3 without glibc's loader, and 4, printing their names,
# when a utility of "$@" (systemUtils) is missing from $PATH and from the
# installer's EXTRA_PATH (misc.c find_system_util).
# Run by the provisioning worker (session.preflight) inside the container,
# through attach, before anything is changed.
[ -e /lib64/ld-linux-x86-64.so.2 ] || exit 3
missing=
dirs=${PATH:-}:/bin:/usr/bin:/sbin:/usr/sbin:/usr/X11R6/bin:/usr/bin/X11
for u in "$@"; do
	found=
	IFS=:
	for p in $dirs; do
		if [ -f "$p/$u" ] && [ -x "$p/$u" ]; then found=1; break; fi
	done
	unset IFS
	[ -n "$found" ] || missing="$missing $u"
done
[ -z "$missing" ] || { printf '%s\n' "${missing# }"; exit 4; }
