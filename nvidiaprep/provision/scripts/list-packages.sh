#!/bin/sh
# list-packages.sh: lists the container's packages in the dpkg-query format
# $1 (nvpkgs.QueryFormat), for nvpkgs.DriverPackages; nothing where there is
# no dpkg.
# Run by the provisioning worker (session.clean) inside the container,
# through attach.
command -v dpkg-query >/dev/null || exit 0
dpkg-query -W -f "$1"
