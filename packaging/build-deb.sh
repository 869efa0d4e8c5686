#!/bin/bash
# Builds the nvidiaprep .deb from a copy of the tree (dpkg-buildpackage writes
# next to the source directory, and a version other than debian/changelog's
# is given by an entry in the copy only) and checks it with lintian.
# Usage: build-deb.sh OUTDIR [VERSION]; run by `make deb`, which installs the
# build dependencies and fills the Go module cache first.
set -euo pipefail

out="$1"
version="${2:-}"
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

go="$(command -v "${GO:-go}" || command -v /usr/local/go/bin/go)" || {
	echo "build-deb: no Go toolchain: install Go in /usr/local/go" >&2
	exit 1
}
# The package build downloads nothing (debian/rules sets GOPROXY=off): it
# uses this module and build cache.
GOMODCACHE="$("$go" env GOMODCACHE)"
GOCACHE="$("$go" env GOCACHE)"
export GO="$go" GOMODCACHE GOCACHE

src="$out/src/nvidiaprep"
rm -rf "$out/src"
mkdir -p "$src"
# The files git knows and the new ones it does not ignore: no build output.
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
	(cd "$root" && tar --null --no-recursion -T - -cf -) | tar -xf - -C "$src"

# The commit the binaries name (`nvidiaprep --version`); the copy has no .git.
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || true)"
if [ -n "$commit" ] && [ -n "$(cd "$root" && git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	commit="$commit+dirty"
fi
printf '%s\n' "${commit:-unknown}" >"$src/debian/commit"

if [ -n "$version" ]; then
	top="$(cd "$src" && dpkg-parsechangelog -S Timestamp)"
	maint="$(cd "$src" && dpkg-parsechangelog -S Maintainer)"
	{
		printf 'nvidiaprep (%s) unstable; urgency=medium\n\n  * Build of version %s.\n\n' "$version" "$version"
		printf ' -- %s  %s\n\n' "$maint" "$(date -u -R -d "@$((top + 60))")"
		cat "$src/debian/changelog"
	} >"$src/debian/changelog.new"
	mv "$src/debian/changelog.new" "$src/debian/changelog"
fi
version="$(cd "$src" && dpkg-parsechangelog -S Version)"

echo "build-deb: building nvidiaprep $version in $src"
(cd "$src" && dpkg-buildpackage -b -us -uc --no-sign)

deb="$out/src/nvidiaprep_${version}_amd64.deb"
changes="$out/src/nvidiaprep_${version}_amd64.changes"
echo "build-deb: lintian $changes"
lintian --fail-on error,warning --display-info "$changes"
mv "$deb" "$out/"
rm -rf "$out/src" # the copy, with its own go.mod: no second module in the work tree
echo "build-deb: $out/nvidiaprep_${version}_amd64.deb"
