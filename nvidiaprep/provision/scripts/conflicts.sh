#!/bin/sh
# conflicts.sh: prints "<path>\t<package or ->\t<final target, dangling or empty>" for
# each file or link under CONFLICT_DIRS named like one of the prefixes in
# "$@" (searched as nvidia-installer does, through links, skipping source,
# build and nvidia-cg-toolkit).
# Run by the provisioning worker (session.checkConflicts) inside the
# container, through attach, before the install. From scripts.go:
# CONFLICT_DIRS.
set -f
n=
for p in "$@"; do
	if [ -z "$n" ]; then set -- "$@" -name "$p*"; n=1; else set -- "$@" -o -name "$p*"; fi
	shift
done
# a list of directories: split on purpose
for d in $CONFLICT_DIRS; do
	[ -d "$d" ] || continue
	find -L "$d" \( -name source -o -name build -o -name nvidia-cg-toolkit \) -prune -o \( -type f -o -type l \) \( "$@" \) -print 2>/dev/null
done | sort -u | while IFS= read -r f; do
	o=$(dpkg -S "$f" 2>/dev/null | head -n 1 | cut -d: -f1)
	t=
	# the end of the link's chain (libcuda.so -> libcuda.so.1 -> libcuda.so.<version>),
	# resolved here, inside the container; "dangling" where it ends nowhere
	if [ -L "$f" ]; then
		if [ -e "$f" ]; then t=$(readlink -f "$f"); else t=dangling; fi
	fi
	printf '%s\t%s\t%s\n' "$f" "${o:--}" "$t"
done
