#!/bin/sh
# write-spec.sh: replaces the CDI spec with stdin, as the container's root
# (links resolve inside). With "backup" as $1 what is there (a user's
# nvidia-ctk spec) is kept as CDI_SPEC_BACKUP first, a name CDI does not
# read; with "replace" it is replaced.
# Run by the provisioning worker (Worker.spec) inside the container, through
# attach. From scripts.go: CDI_SPEC, CDI_SPEC_DIR, CDI_SPEC_BACKUP.
set -e
f=$CDI_SPEC
if [ -L "$CDI_SPEC_DIR" ] || { [ -e "$CDI_SPEC_DIR" ] && [ ! -d "$CDI_SPEC_DIR" ]; }; then rm -f "$CDI_SPEC_DIR"; fi
mkdir -p "$CDI_SPEC_DIR"
if [ "$1" = backup ]; then
	rm -rf "$CDI_SPEC_BACKUP"
	mv -f "$f" "$CDI_SPEC_BACKUP"
fi
rm -rf "$f.nvidiaprep-tmp"
cat >"$f.nvidiaprep-tmp"
chmod 644 "$f.nvidiaprep-tmp"
mv -f "$f.nvidiaprep-tmp" "$f"
