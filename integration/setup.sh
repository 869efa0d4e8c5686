#!/bin/bash
# Prepares a Debian 12 machine for nvidiaprep's real-LXC integration tests
# (package nvidiaprep/integration/lxctest): installs LXC and friends, builds
# the cached Debian bookworm and trixie root file systems the test containers
# (and the Proxmox VE 9-like node) boot from,
# and gives root the subordinate ids that unprivileged containers map to.
#
# Idempotent and quick when everything is already in place. Run as root.
# NVIDIAPREP_TEST_CACHE overrides the cache directory.
set -euo pipefail

CACHE="${NVIDIAPREP_TEST_CACHE:-/var/cache/nvidiaprep-test}"
PACKAGES=(lxc lxc-templates lxc-dev pkg-config debootstrap uidmap dpkg-dev debhelper lintian shellcheck)

say() { echo "setup: $*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "setup: must run as root" >&2
	exit 1
fi

# --- packages ---------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing+=("$p")
	fi
done
if [ "${#missing[@]}" -gt 0 ]; then
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
else
	say "packages present"
fi

# --- Debian mirror that this machine's apt uses ----------------------------
# Prints the first URI of the deb822 stanza (or one-line source) whose suites
# include bookworm itself (not bookworm-updates or bookworm-security); the
# same mirror serves trixie.
mirror_from_deb822() {
	awk -v suite=bookworm '
		function flush() { if (uri != "" && hit && !done) { print uri; done = 1 } uri = ""; hit = 0 }
		/^[ \t]*$/ { flush(); next }
		tolower($1) == "uris:" { uri = $2 }
		tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
		END { flush() }
	' "$1"
}

mirror_from_list() {
	awk -v suite=bookworm '
		$1 != "deb" { next }
		{ i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } }
		$(i + 1) == suite { print $i; exit }
	' "$1"
}

find_mirror() {
	local f m
	for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
		[ -r "$f" ] || continue
		case "$f" in
		*.sources) m="$(mirror_from_deb822 "$f")" ;;
		*) m="$(mirror_from_list "$f")" ;;
		esac
		if [ -n "$m" ]; then
			echo "$m"
			return
		fi
	done
	echo http://deb.debian.org/debian
}

# --- cached root file systems -----------------------------------------------
# build_root SUITE INCLUDES: debootstrap SUITE (minbase plus INCLUDES) into
# $CACHE/rootfs-SUITE, only when it is missing. bookworm is the Debian 12
# guest; trixie is both the Proxmox VE 9-like node (LXC 6.0 inside) and the
# Debian 13 guest; sid is the node with LXC 7.0.
build_root() {
	local suite="$1" include="$2" extra="${3:-}" root="$CACHE/rootfs-$1" mirror tmp
	# Beside the tree, what it was built with: another list builds it anew.
	if [ -x "$root/usr/lib/systemd/systemd" ] && [ "$(cat "$root.packages" 2>/dev/null)" = "$include $extra" ]; then
		say "root file system present: $root"
		return
	fi
	mirror="$(find_mirror)"
	say "debootstrap $suite from $mirror into $root (one to several minutes)"
	mkdir -p "$CACHE"
	tmp="$(mktemp -d "$CACHE/rootfs-$suite.tmp.XXXXXX")"
	trap 'rm -rf --one-file-system "$tmp" "$tmp.log"' EXIT
	debootstrap --variant=minbase --include="$include" "$suite" "$tmp" "$mirror" >"$tmp.log" 2>&1 || {
		tail -n 30 "$tmp.log" >&2
		exit 1
	}
	# Packages debootstrap cannot configure itself (lintian's Perl
	# modules) come with apt in the new tree, from the same mirror.
	if [ -n "$extra" ]; then
		cp /etc/resolv.conf "$tmp/etc/resolv.conf"
		# shellcheck disable=SC2086
		chroot "$tmp" sh -c "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $extra && apt-get clean" >"$tmp.log" 2>&1 || {
			tail -n 30 "$tmp.log" >&2
			exit 1
		}
		: >"$tmp/etc/resolv.conf"
	fi
	rm -f "$tmp.log"
	chmod 0755 "$tmp"
	# Owner-shifted copies (unprivileged containers) follow the new tree.
	rm -rf --one-file-system "$root" "$root"-[0-9]*
	mv -T "$tmp" "$root"
	printf '%s' "$include $extra" >"$root.packages"
	trap - EXIT
	say "root file system ready: $root"
}

build_root bookworm systemd,systemd-sysv,dbus
# lintian: the node checks the package with Debian 13's lintian too.
build_root trixie systemd,systemd-sysv,dbus,lxc,lxc-templates,iproute2,procps lintian
# sid: the node bed's second root, with Debian unstable's LXC 7.0 (what
# Proxmox VE 9.2 ships), so that every LXC Proxmox ships is tested.
build_root sid systemd,systemd-sysv,dbus,lxc,lxc-templates,iproute2,procps

# --- subordinate ids for unprivileged containers -----------------------------
for f in /etc/subuid /etc/subgid; do
	touch "$f"
	if ! grep -qx 'root:100000:65536' "$f"; then
		echo 'root:100000:65536' >>"$f"
		say "added root:100000:65536 to $f"
	fi
done

say "done"
