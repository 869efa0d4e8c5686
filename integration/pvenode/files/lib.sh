# shellcheck shell=dash # sourced by the node's /bin/sh (dash: Debian 13) hooks and by bash scripts
# Shared shell functions of the Proxmox VE node stand-in (nvidiaprep test
# bed): the pct stand-in and the LXC hooks source this file. It follows
# Proxmox's behaviour (PVE::GuestHelpers, PVE::Storage, PVE::LXC) in the
# project's own words; it is not Proxmox's code.

PVE_CFG_DIR=/etc/pve/lxc
PVE_STORAGE_CFG=/etc/pve/storage.cfg

die() { echo "$*" >&2; exit 255; }

# conf_get VMID KEY: the value of "KEY: value" in the container's current
# configuration (the part before the first [section]).
conf_get() {
	sed -n '/^\[/q; s/^'"$2"': *//p' "$PVE_CFG_DIR/$1.conf" | tail -n 1
}

# volid_path VOLID: the file of a snippets volume "<storage>:snippets/<name>"
# of a dir storage in storage.cfg; fails when the storage is unknown or the
# volume is not in its snippets directory.
volid_path() {
	local storage="${1%%:*}" rel="${1#*:}" path content
	[ "$storage" != "$1" ] || { echo "unable to parse volume ID '$1'" >&2; return 1; }
	path="$(awk -v s="$storage" '
		/^[a-z]+: / { in_s = ($2 == s); next }
		in_s && $1 == "path" { print $2 }' "$PVE_STORAGE_CFG")"
	content="$(awk -v s="$storage" '
		/^[a-z]+: / { in_s = ($2 == s); next }
		in_s && $1 == "content" { print $2 }' "$PVE_STORAGE_CFG")"
	[ -n "$path" ] || { echo "storage '$storage' does not exist" >&2; return 1; }
	case "$rel" in
	snippets/*) ;;
	*) echo "'$1' is not in the snippets directory" >&2; return 1 ;;
	esac
	case ",$content," in
	*,snippets,*) ;;
	*) echo "storage '$storage' does not support content type 'snippets'" >&2; return 1 ;;
	esac
	echo "$path/$rel"
}

# check_hookscript VOLID: prints the script's path, or fails as Proxmox's
# check does when it is missing or not executable.
check_hookscript() {
	local p
	p="$(volid_path "$1")" || return 1
	[ -f "$p" ] || { echo "script '$1' does not exist" >&2; return 1; }
	[ -x "$p" ] || { echo "script '$1' is not executable" >&2; return 1; }
	echo "$p"
}

# exec_hookscript VMID PHASE [stop]: runs the container's hookscript, if it
# has one, as "<script> VMID PHASE". A missing script or a failure is an
# error with "stop" (the start aborts), else a warning.
exec_hookscript() {
	local vmid="$1" phase="$2" stop="${3:-}" hs path err rc
	hs="$(conf_get "$vmid" hookscript)"
	[ -n "$hs" ] || return 0
	if ! path="$(check_hookscript "$hs" 2>&1)"; then
		err="hookscript error for $vmid on $phase: $path"
	else
		"$path" "$vmid" "$phase" && return 0
		rc=$?
		err="hookscript error for $vmid on $phase: command '$path $vmid $phase' failed: exit code $rc"
	fi
	if [ -n "$stop" ]; then
		echo "$err" >&2
		return 1
	fi
	echo "WARN: $err" >&2
	return 0
}
