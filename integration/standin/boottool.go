package standin

// proxmoxBootTool is a stand-in for Proxmox VE's proxmox-boot-tool
// (proxmox-kernel-helper's src/bin/proxmox-boot-tool): its `kernel pin`,
// `kernel unpin`, `kernel list` and `refresh` commands with the real
// files (/etc/kernel/proxmox-boot-pin, /etc/kernel/next-boot-pin, the ESP
// list /etc/kernel/proxmox-boot-uuids), arguments, messages and exit
// statuses, as on a node whose ESPs it manages. It mounts and writes no
// ESP: refresh only says which hooks the real one runs.
const proxmoxBootTool = `#!/bin/sh
# Stand-in for proxmox-boot-tool (nvidiaprep tests): kernel pin/unpin/list, refresh.
set -e
ESP_LIST="/etc/kernel/proxmox-boot-uuids"
PINNED_KERNEL_CONF="/etc/kernel/proxmox-boot-pin"
NEXT_BOOT_PIN="/etc/kernel/next-boot-pin"
warn() { echo "$@" 1>&2; }
get_first_line() { if [ -e "$1" ]; then head -n1 "$1"; fi; }
boot_kernel_list() { ls /boot/vmlinuz-* 2>/dev/null | sed 's#^/boot/vmlinuz-##' | sort -V -r; }
usage() {
	warn "USAGE: $0 <commands> [ARGS]"
	warn ""
	warn "  $0 kernel pin <kernel-version> [--next-boot]"
	warn "  $0 kernel unpin [--next-boot]"
	warn "  $0 kernel list"
	warn "  $0 refresh [--hook <name>]"
}
pin_kernel() {
	ver="$1"
	pin_file="$PINNED_KERNEL_CONF"
	[ "$2" = "--next-boot" ] && pin_file="$NEXT_BOOT_PIN"
	if [ -z "$ver" ]; then
		warn "E: <kernel-version> is mandatory"
		warn ""
		warn "Possible Proxmox kernel versions are:"
		warn "$(boot_kernel_list)"
		exit 1
	fi
	if [ ! -e "/boot/vmlinuz-$ver" ]; then
		warn "E: no kernel image found in /boot for '$ver', not setting default."
		warn ""
		warn "Possible Proxmox kernel versions are:"
		warn "$(boot_kernel_list)"
		exit 1
	fi
	if [ -e "$pin_file" ]; then
		old_pin=$(get_first_line "$pin_file")
		if [ "$ver" != "$old_pin" ]; then
			echo "Overriding previously pinned version '$old_pin' with '$ver'"
		fi
	fi
	mkdir -p /etc/kernel
	echo "$ver" > "$pin_file"
	echo "Set kernel '$ver' in $pin_file. Use the 'refresh' command to update the ESPs."
}
unpin_kernel() {
	rm -f "$NEXT_BOOT_PIN"
	echo "Removed $NEXT_BOOT_PIN."
	if [ -z "$1" ]; then
		rm -f "$PINNED_KERNEL_CONF"
		echo "Removed $PINNED_KERNEL_CONF."
	fi
}
case "$1" in
kernel)
	case "$2" in
	pin) pin_kernel "$3" "$4" ;;
	unpin) unpin_kernel "$3" ;;
	list)
		echo "Manually selected kernels:"
		echo "None."
		echo ""
		echo "Automatically selected kernels:"
		boot_kernel_list
		if [ -n "$(get_first_line "$PINNED_KERNEL_CONF")" ]; then
			echo ""
			echo "Pinned kernel:"
			get_first_line "$PINNED_KERNEL_CONF"
		fi
		;;
	*) usage; exit 1 ;;
	esac
	;;
refresh)
	echo "Running hook script 'proxmox-auto-removal'.."
	echo "Running hook script 'zz-proxmox-boot'.."
	;;
*) usage; exit 1 ;;
esac
`

// ProxmoxBootTool returns the stand-in proxmox-boot-tool script. Install
// it as /usr/sbin/proxmox-boot-tool with an ESP list
// (/etc/kernel/proxmox-boot-uuids, ESPList) so that it behaves as on a
// node whose ESPs it manages.
func ProxmoxBootTool() []byte { return []byte(proxmoxBootTool) }

// ESPList is an ESP list (/etc/kernel/proxmox-boot-uuids) of one ESP.
const ESPList = "ABCD-1234\n"
