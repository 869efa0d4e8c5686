#!/bin/bash
# integration/gpu/prepare.sh: fills the carry directory that
# integration/gpu/run.sh needs on a GPU machine without Go, LXC or network.
# Run it on a Debian 12 development machine (root for apt-get download is not
# needed, but Go 1.26 with CGO, gcc and lxc-dev are: integration/setup.sh):
#
#   integration/gpu/prepare.sh [CARRY]     # default .gpucarry (keep it ignored)
#
#   CARRY/debs/  Debian 12 .debs of LXC 5.0 and its libraries: lxc, liblxc1,
#                liblxc-common, lxc-templates (the distributions' configs),
#                libseccomp2, libapparmor1, libcap2, libselinux1, libpcre2-8-0
#                (run.sh unpacks a library only where the machine lacks it)
#   CARRY/bin/   nvidiaprep-hook, nvidiaprep (CGO: they link liblxc.so.1),
#                gpuproof (CGO for NVML) and nvidiaprep-unit-prestart (the
#                pve-container@ drop-in's program, no cgo), from this tree, x86-64
#   CARRY/podman/ Debian 12 .debs of podman, runc, conmon and their libraries
#                (11-podman.txt: nested Podman through the CDI spec)
#   CARRY/bin/BUILD  what was built from which commit
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CARRY=${1:-$REPO/.gpucarry}
export PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=1 CGO_CFLAGS=-Wno-deprecated-declarations GOARCH=amd64 GOOS=linux

# download DIR PACKAGE...: the packages' .debs into DIR, those not there yet.
download() {
	local dir=$1 p missing=()
	shift
	mkdir -p "$dir"
	for p in "$@"; do
		ls "$dir/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		(cd "$dir" && apt-get download "${missing[@]}")
	fi
}

mkdir -p "$CARRY/bin"
download "$CARRY/debs" lxc liblxc1 liblxc-common lxc-templates libseccomp2 libapparmor1 libcap2 libselinux1 libpcre2-8-0

# Nested Podman (run.sh's 11-podman.txt): Debian 12's podman and what it
# needs with --network none, vfs storage and runc, unpacked inside a
# container where the container lacks a file. runc, not crun: Debian 12's
# crun raises RLIMIT_MEMLOCK before it loads the device cgroup's BPF
# program, which a container's root may not (integration/cdi_test.go).
download "$CARRY/podman" podman runc conmon golang-github-containers-common golang-github-containers-image libgpgme11 libassuan0 libsubid4 libdevmapper1.02.1 libglib2.0-0

cd "$REPO"
go build -trimpath -ldflags='-s -w' -o "$CARRY/bin/nvidiaprep-hook" ./hook
go build -trimpath -ldflags='-s -w' -o "$CARRY/bin/nvidiaprep" ./nvidiaprep
go build -trimpath -ldflags='-s -w' -o "$CARRY/bin/gpuproof" ./integration/gpu/gpuproof
# The drop-in's program, without cgo as debian/rules builds it; beside the
# hook, where it looks for it.
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$CARRY/bin/nvidiaprep-unit-prestart" ./hook/unitprestart
{
	# shellcheck source=/dev/null # the machine's own file, not the project's
	echo "built $(date -u +%FT%TZ) on $(. /etc/os-release && echo "$PRETTY_NAME"), $(go version)"
	echo "from commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' with uncommitted changes')"
	echo "nvidiaprep commands: $("$CARRY/bin/nvidiaprep" help 2>&1 | sed -n 's/^  \([a-z-]\+\).*/\1/p' | tr '\n' ' ')"
} >"$CARRY/bin/BUILD"
cat "$CARRY/bin/BUILD"
# What travels to the GPU machine with the working tree (64 MiB in all).
echo "carry: $(du -sb "$CARRY" | cut -f1) bytes ($(du -sh "$CARRY" | cut -f1)); debs $(du -sh "$CARRY/debs" | cut -f1), podman $(du -sh "$CARRY/podman" | cut -f1), bin $(du -sh "$CARRY/bin" | cut -f1)"
