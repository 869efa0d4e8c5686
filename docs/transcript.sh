#!/bin/bash
# Records docs/first-ten-minutes.md: a new admin's first ten minutes on the
# node bed (a Proxmox VE 9-like node in a container, nvidiaprep's real .deb
# installed with apt, real nested containers, stand-in GPUs). Run it as root
# on a development machine after integration/setup.sh, never on a Proxmox
# node; it takes a few minutes (make deb, the node's boot, two containers).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$PATH:/usr/local/go/bin" CGO_CFLAGS="${CGO_CFLAGS:--Wno-deprecated-declarations}"
export NVIDIAPREP_TRANSCRIPT="$root/docs/first-ten-minutes.md"
# Real containers share the machine's vmids and cgroups with other test runs.
flock /tmp/nvidiaprep-lxc.lock go test -tags integration -p 1 -count=1 -timeout 20m \
	-run '^TestFirstTenMinutes$' ./integration/
echo "wrote $NVIDIAPREP_TRANSCRIPT"
