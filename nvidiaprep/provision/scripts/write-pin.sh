#!/bin/sh
# write-pin.sh: replaces the apt pin of the registration with stdin.
# Run by the provisioning worker (session.register) inside the container,
# through attach. From scripts.go: APTREG_PIN.
set -e
mkdir -p /etc/apt/preferences.d
rm -rf "$APTREG_PIN.nvidiaprep-tmp"
cat >"$APTREG_PIN.nvidiaprep-tmp"
chmod 644 "$APTREG_PIN.nvidiaprep-tmp"
mv -f "$APTREG_PIN.nvidiaprep-tmp" "$APTREG_PIN"
