#!/bin/sh
# uninstall.sh: removes an earlier .run install (or a half-done one of the
# same version) explicitly, before the install: left to the installer, its
# upgrade path runs the old `nvidia-uninstall -s`, which unloads sixteen
# modules and runs depmod (backup.c run_existing_uninstaller, do_uninstall).
# Run by the provisioning worker (session.uninstall) inside the container,
# through attach, under with-utils.sh. $1: the new nvidia-installer (in the
# node's read-only tree). From scripts.go: NVIDIA_LOG.
#
# The old uninstaller is used when it is there, else the new installer's
# --uninstall; --skip-depmod only when it lists it, as nvidia-installer's own
# check_skip_depmod_support asks. An old nvidia-uninstall that does not list
# --skip-module-unload (before 346.16: it would reject it, exit 1) is passed
# over for the new installer's --uninstall, which reads the same record.
[ -f "$NVIDIA_LOG" ] || exit 0
if [ -x /usr/bin/nvidia-uninstall ] && /usr/bin/nvidia-uninstall -A 2>/dev/null </dev/null | grep -q -- '^ \+--skip-module-unload$'; then set -- /usr/bin/nvidia-uninstall; else set -- "$1" --uninstall; fi
skip=
if "$1" -A 2>/dev/null </dev/null | grep -q -- '^ \+--skip-depmod$'; then skip=--skip-depmod; fi
"$@" --silent --skip-module-unload ${skip:+"$skip"} --log-file-name=/var/log/nvidia-uninstall.log
