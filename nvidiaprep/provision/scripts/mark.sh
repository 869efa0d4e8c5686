#!/bin/sh
# mark.sh: removes the distribution's alternate-install marker and marks an
# install of driver $1 as under way.
# Run by the provisioning worker (session.clean) inside the container,
# through attach. From scripts.go: NVIDIA_ALT_MARKER, NVIDIA_DIR,
# NVIDIAPREP_DIR, NVIDIAPREP_MARKER.
#
# nvidiaprep's directory inside the container is made a directory again when
# it is not one (a link that leads nowhere, a file), and its files are
# replaced, never written through: what the container left there is not
# trusted. (All of it runs inside the container, so its links resolve there
# anyway.) A link that leads nowhere in place of nvidia-installer's directory
# goes too: the installer could not recreate it.
set -e
rm -rf "$NVIDIA_ALT_MARKER"
if [ -L "$NVIDIA_DIR" ] && [ ! -d "$NVIDIA_DIR" ]; then rm -f "$NVIDIA_DIR"; fi
d=$NVIDIAPREP_DIR
if [ ! -d "$d" ]; then rm -f "$d"; mkdir -p "$d"; fi
rm -rf "$NVIDIAPREP_MARKER"
printf '%s\n' "$1" >"$NVIDIAPREP_MARKER"
