#!/bin/sh
# set-no-cgroups.sh: sets no-cgroups = true in NVIDIA container toolkit's
# config: with nvidia-ctk when it is there (as NVIDIA documents), else by
# editing the [nvidia-container-cli] table's line (commented out in NVIDIA's
# default file) or adding one.
# Run by the provisioning worker (Worker.toolkit) inside an unprivileged
# container, through attach. From scripts.go: TOOLKIT_CONFIG.
set -e
f=$TOOLKIT_CONFIG
if command -v nvidia-ctk >/dev/null 2>&1; then
	nvidia-ctk config --in-place --config="$f" --set nvidia-container-cli.no-cgroups=true >/dev/null && exit 0
fi
t="$f.nvidiaprep-tmp"
if grep -q '^[[:space:]]*#\?[[:space:]]*no-cgroups[[:space:]]*=' "$f"; then
	sed 's/^[[:space:]]*#\?[[:space:]]*no-cgroups[[:space:]]*=.*/no-cgroups = true/' "$f" >"$t"
elif grep -q '^\[nvidia-container-cli\]' "$f"; then
	sed 's/^\[nvidia-container-cli\].*/&\nno-cgroups = true/' "$f" >"$t"
else
	{
		cat "$f"
		printf '\n[nvidia-container-cli]\nno-cgroups = true\n'
	} >"$t"
fi
chmod 644 "$t"
mv -f "$t" "$f"
