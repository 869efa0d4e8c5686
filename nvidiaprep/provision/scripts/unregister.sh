#!/bin/sh
# unregister.sh: removes the registration package and its pin; dpkg refuses
# while a package depends on it (exit 2 then, printing dpkg's output: the
# toolkit stays, and so does the pin).
# Run by the provisioning worker (Worker.registration) inside the container,
# through attach, when it gets no GPU or no install. From scripts.go:
# APTREG_PACKAGE, APTREG_PIN, NVIDIAPREP_APTREG_CONTROL.
if dpkg-query -W -f '${Status}' "$APTREG_PACKAGE" 2>/dev/null | grep -q 'installed$'; then
	out=$(dpkg --purge "$APTREG_PACKAGE" 2>&1) || { echo "$out"; exit 2; }
fi
rm -f "$APTREG_PIN" "$NVIDIAPREP_APTREG_CONTROL"
