#!/bin/sh
# record.sh: stores stdin as the in-container record of the install,
# replacing whatever is there, and clears the marker: the install is
# complete.
# Run by the provisioning worker (session.verify) inside the container,
# through attach. From scripts.go: NVIDIAPREP_RECORD, NVIDIAPREP_MARKER.
set -e
f=$NVIDIAPREP_RECORD
rm -rf "$f.tmp"
cat >"$f.tmp"
if [ -L "$f" ] || [ -d "$f" ]; then rm -rf "$f"; fi
mv -f "$f.tmp" "$f"
rm -rf "$NVIDIAPREP_MARKER"
