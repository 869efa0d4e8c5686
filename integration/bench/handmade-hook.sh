#!/bin/sh
# The common hand-made hookscript, the baseline nvidiaprep's pre-start is
# measured against: read the uvm major from /proc/devices, stat each
# /dev/nvidia* node, append cgroup and mount lines to the generated config.
# Roots come from the environment so that it runs on the same stand-in tree.
vmid=$1
phase=$2
[ "$phase" = pre-start ] || exit 0
conf="$LXC/$vmid/config"
uvm=$(awk '$2 == "nvidia-uvm" { print $1 }' "$PROC/devices")
[ -n "$uvm" ] && echo "lxc.cgroup2.devices.allow = c $uvm:* rwm" >> "$conf"
echo "lxc.cgroup2.devices.allow = c 195:* rwm" >> "$conf"
for dev in "$DEV"/nvidia[0-9]* "$DEV"/nvidiactl "$DEV"/nvidia-uvm "$DEV"/nvidia-uvm-tools "$DEV"/nvidia-modeset; do
	[ -c "$dev" ] || continue
	major=$(stat -c %t "$dev")
	minor=$(stat -c %T "$dev")
	echo "# $(basename "$dev") $((0x$major)):$((0x$minor))" >> "$conf"
	echo "lxc.mount.entry = $dev dev/$(basename "$dev") none bind,optional,create=file" >> "$conf"
done
