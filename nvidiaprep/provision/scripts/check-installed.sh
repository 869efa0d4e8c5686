#!/bin/sh
# check-installed.sh: prints, of the entries on stdin ("f PATH SIZE" or
# "l PATH TARGET"), the paths that are not there as installed. A 32-bit
# entry ("c NAME SIZE", "d NAME TARGET") may be in any of COMPAT32_DIRS.
# Run by the provisioning worker (session.checkManifest) inside the
# container, through attach, after the install. From scripts.go:
# COMPAT32_DIRS.
while read -r k p v; do
	case $k in
	f) if [ -L "$p" ] || [ ! -f "$p" ] || [ "$(stat -c %s "$p")" != "$v" ]; then echo "$p"; fi ;;
	l) if [ "$(readlink "$p")" != "$v" ]; then echo "$p"; fi ;;
	c)
		ok=
		# a list of directories: split on purpose
		for d in $COMPAT32_DIRS; do
			if [ ! -L "$d/$p" ] && [ -f "$d/$p" ] && [ "$(stat -c %s "$d/$p")" = "$v" ]; then ok=1; break; fi
		done
		[ -n "$ok" ] || echo "$p"
		;;
	d)
		ok=
		# a list of directories: split on purpose
		for d in $COMPAT32_DIRS; do
			if [ "$(readlink "$d/$p")" = "$v" ]; then ok=1; break; fi
		done
		[ -n "$ok" ] || echo "$p"
		;;
	esac
done
