#!/bin/bash
# shellcheck disable=SC2016 # x, ctx and the *CHECK/*SCRIPT strings are command lines run later (eval, lxc-attach): their $ expand there
# integration/gpu/run.sh: the proof of nvidiaprep on a machine with a real
# NVIDIA GPU and driver (issue 8). Run it as root from the repository root,
# after integration/gpu/prepare.sh has filled $CARRY on a development machine
# (the GPU machine has no Go, no LXC and no network):
#
#   integration/gpu/prepare.sh                 # here: Debian 12 .debs of LXC, CGO binaries
#   OUT=/tmp/gpu-out integration/gpu/run.sh    # there
#
# It is rerunnable: each run stops and removes its own containers first.
# What it does, each step's commands and output written to $OUT:
#   01-install.txt    LXC from the carried Debian 12 .debs, unpacked into
#                     $LXC_PREFIX without overwriting any file of the machine
#                     (a dependency library the machine already has is not
#                     unpacked at all), and the carried nvidiaprep binaries
#   02-discovery.txt  the driver as the machine shows it and as nvidiaprep's
#                     own code reads it (NVML, /proc, /sys, /dev), and
#                     `nvidiaprep doctor` / `status` where the tree has them
#   03-e2e.txt        a stand-in NVIDIA .run built from this machine's own
#                     driver files (its version, libraries and nvidia-smi);
#                     container VMID_GPU started as Proxmox starts it
#                     (generated config, hookscript pre-start, lxc-start,
#                     post-start), provisioned by the worker, and nvidia-smi
#                     (and CUDA through PyTorch, where the machine has it)
#                     inside; container VMID_NOGPU, given no GPU, refused the
#                     device
#   04-bench.txt      hook wall times over BENCH_N runs (real NVML)
#   05-logs.txt       generated LXC configs, lxc-start logs, the worker's log
#   06-unprivileged.txt ... 11-podman.txt
#                     the second proof (issue 23): unprivileged containers,
#                     the reboot path through the drop-in's program, MIG and
#                     render nodes read only, the host driver unit's fast
#                     path, hook and drop-in times, Podman (integration/gpu/
#                     second.sh says what each holds; docs/gpu/second/)
#   summary.txt       the figures, one key=value a line
#
# Containers: the root file system is an overlay of the machine's own root
# with a tmpfs upper directory (the machine may have no systemd: init is a
# shell loop), with /usr/local/nvidia hidden by a tmpfs so that none of the
# machine's driver libraries leak in. They run under pure cgroup v2: where
# the machine mounts a hybrid layout (the development VMs), each container is
# started from a mount namespace whose /sys/fs/cgroup is a lone cgroup2 mount,
# as integration/lxctest does.
#
# Environment (defaults in brackets):
#   CARRY       .debs and binaries from prepare.sh [.gpucarry]
#   OUT         where the result files go [./gpu-out]
#   WORK        scratch directory [/var/tmp/nvidiaprep-gpu]
#   LXC_PREFIX  where the carried LXC goes: / on the GPU machine, a scratch
#               directory for a rehearsal (then used through PATH and
#               LD_LIBRARY_PATH), or "none" to use the machine's LXC
#               [/ when the machine has no lxc-start, else none]
#   MODE        real: the machine's driver; standin: a stand-in driver tree
#               and a stand-in .run with generated libraries, to rehearse on
#               a machine without a GPU [real when a driver is loaded]
#   VMID_GPU, VMID_NOGPU   the two containers' ids [101, 102]
#   VMID_UNPRIV, VMID_UNPRIV_NOGPU   the unprivileged ones [103, 104]
#   BENCH_N     hook runs timed [50]
set -u
umask 022
export LC_ALL=C
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/nvidia/bin:${PATH:-}

REPO=$(cd "$(dirname "$0")/../.." && pwd)
CARRY=$(cd "${CARRY:-$REPO/.gpucarry}" && pwd) || { echo "run.sh: no carry directory (run integration/gpu/prepare.sh)" >&2; exit 2; }
OUT=${OUT:-$PWD/gpu-out}
WORK=${WORK:-/var/tmp/nvidiaprep-gpu}
VMID_GPU=${VMID_GPU:-101}
VMID_NOGPU=${VMID_NOGPU:-102}
BENCH_N=${BENCH_N:-50}
if [ -z "${MODE:-}" ]; then
	if [ -e /sys/module/nvidia/version ]; then MODE=real; else MODE=standin; fi
fi
if [ -z "${LXC_PREFIX:-}" ]; then
	if command -v lxc-start >/dev/null; then LXC_PREFIX=none; else LXC_PREFIX=/; fi
fi
STANDIN_VERSION=580.159.04 # the stand-in driver's version (MODE=standin)

[ "$(id -u)" = 0 ] || { echo "run.sh: must run as root" >&2; exit 2; }
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"

LXCP=$WORK/lxc      # Proxmox's /var/lib/lxc
CACHE=$WORK/cache   # [paths] cache: runs/ and drivers/
STATE=$WORK/state   # [paths] state
CFG=$WORK/nvidiaprep.toml
BIN=$WORK/bin
HOOK=$BIN/nvidiaprep-hook
PROOF=$BIN/gpuproof
CTPATH=/usr/sbin:/usr/bin:/sbin:/bin
# tryopen NODE... (sh, inside a container): open each node read-write and
# say what happened; a missing one is said so (<> would create a regular
# file, which opens). The open runs in a subshell: a failed redirection of a
# special built-in such as ':' ends a POSIX shell.
TRYOPEN='tryopen() { for n in "$@"; do if [ ! -e "$n" ]; then echo "$n: does not exist"; elif m=$( (: <>"$n") 2>&1 ); then echo "$n: opened read-write"; else echo "$n: refused: ${m##*: }"; fi; done; }; '

# CUDA_CHECK (sh, inside a container): PyTorch of the machine's root, if it
# has one, multiplies on the GPU through the provisioned libcuda; exit 3
# when there is no torch.
CUDA_CHECK='for py in /opt/torch/.venv/bin/python3 /usr/bin/python3; do [ -x $py ] && $py -c "import torch" 2>/dev/null && exec timeout 120 $py -c "
import torch
print(\"torch\", torch.__version__, \"cuda available:\", torch.cuda.is_available(), \"devices:\", torch.cuda.device_count())
print(\"device 0:\", torch.cuda.get_device_name(0))
a = torch.randn(4096, 4096, device=\"cuda\"); b = a @ a; torch.cuda.synchronize()
print(\"matmul 4096x4096 on the GPU: checksum\", float(b.float().abs().sum()))
print([l.split()[-1] for l in open(\"/proc/self/maps\") if \"libcuda.so\" in l][0])
"; done; echo "no python3 with torch in this root"; exit 3'

# ------------------------------------------------------------------ helpers

LOG=/dev/null
section() { LOG=$OUT/$1; : >"$LOG"; echo "== $1: $2"; printf '# %s\n# %s, %s\n' "$2" "$(hostname)" "$(date -u +%FT%TZ)" >>"$LOG"; }
note() { printf '\n# %s\n' "$*" >>"$LOG"; echo "   $*"; }
fig() { printf '%s=%s\n' "$1" "$2" >>"$SUMMARY"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# x 'command': log the command, its output and a non-zero exit status.
x() {
	printf '\n$ %s\n' "$1" >>"$LOG"
	(eval "$1") >>"$LOG" 2>&1 </dev/null
	local rc=$?
	[ $rc = 0 ] || printf '[exit %d]\n' $rc >>"$LOG"
	return $rc
}

# ctx VMID 'command': the same inside a running container (lxc-attach,
# clean environment), with a deadline.
ctx() {
	printf '\n[CT %s]# %s\n' "$1" "$2" >>"$LOG"
	timeout 240 lxc-attach -n "$1" -P "$LXCP" --clear-env --set-var PATH=$CTPATH -- /bin/sh -c "$2" >>"$LOG" 2>&1 </dev/null
	local rc=$?
	[ $rc = 0 ] || printf '[exit %d]\n' $rc >>"$LOG"
	return $rc
}

# PREFIX_LDPATH is where a scratch-prefix LXC keeps liblxc.so.1, which the
# hook and the worker link; "" when LXC is installed in / or the machine's.
PREFIX_LDPATH=

# hookenv: the environment Proxmox gives a hookscript (almost none), plus
# the node's configuration file.
hookenv() {
	local e=(env -i "PATH=$CTPATH" "NVIDIAPREP_CONFIG=$CFG" NVIDIAPREP_CLUSTER_CONFIG=)
	[ -n "$PREFIX_LDPATH" ] && e+=("LD_LIBRARY_PATH=$PREFIX_LDPATH")
	printf '%q ' "${e[@]}"
}

# hook VMID PHASE: run the hookscript as Proxmox does; sets HOOK_MS, HOOK_RC.
hook() {
	local t0
	printf '\n$ nvidiaprep-hook %s %s   (as Proxmox runs it: env -i PATH=... NVIDIAPREP_CONFIG=%s)\n' "$1" "$2" "$CFG" >>"$LOG"
	t0=$(now_ms)
	eval "$(hookenv)" "$HOOK" "$1" "$2" >>"$LOG" 2>&1 </dev/null
	HOOK_RC=$?
	HOOK_MS=$(($(now_ms) - t0))
	printf '[exit %d, %d ms]\n' $HOOK_RC $HOOK_MS >>"$LOG"
	return $HOOK_RC
}

# rm_cgroups VMID: remove what a failed or killed start left of the
# container's cgroups (lxc.monitor/VMID, lxc/VMID) in the cgroup2 hierarchy,
# mounted at /sys/fs/cgroup (pure v2) or /sys/fs/cgroup/unified (hybrid).
# lxc_base: LXC's base cgroup below the mount: pid 1's cgroup without a
# trailing /init.scope (cgfsng.c, as nvidiaprep/ctinit.InitBase):
# /process_api/core on the H100 machine, whose pid 1 is not systemd; "" (the
# root) on the development VM and on a Proxmox node.
lxc_base() {
	local init
	init=$(sed -n 's/^0:://p' /proc/1/cgroup 2>/dev/null)
	init=${init%/init.scope}
	echo "${init%/}"
}

rm_cgroups() {
	local base d init
	init=$(lxc_base)
	for base in "/sys/fs/cgroup$init" "/sys/fs/cgroup/unified$init"; do
		[ "$(stat -f -c %T "$base" 2>/dev/null)" = cgroup2fs ] || continue
		for d in "$base/lxc.monitor/$1" "$base/lxc/$1"; do
			for _ in $(seq 25); do
				[ -d "$d" ] || break
				find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
				[ -d "$d" ] && sleep 0.2
			done
		done
	done
}

cleanup() {
	for v in $VMID_GPU $VMID_NOGPU $VMID_UNPRIV $VMID_UNPRIV_NOGPU; do
		if [ -d "$LXCP/$v" ] && command -v lxc-stop >/dev/null; then
			lxc-stop -n "$v" -P "$LXCP" -k >/dev/null 2>&1
		fi
		if mountpoint -q "$WORK/disk/$v" 2>/dev/null; then umount -l "$WORK/disk/$v"; fi
		rm_cgroups "$v"
	done
}

# ------------------------------------------------------------ 1. install

install_lxc() {
	section 01-install.txt "LXC from the carried Debian 12 .debs, and the carried nvidiaprep binaries"
	note "LXC_PREFIX=$LXC_PREFIX MODE=$MODE"
	x 'cat /etc/os-release | head -4; uname -r; ldd --version | head -1'
	if [ "$LXC_PREFIX" = none ]; then
		note "using the machine's own LXC: $(command -v lxc-start)"
	else
		# The dependencies and the shared object each provides: a package whose
		# library the machine already has is not unpacked (its own, often newer,
		# copy stays in use).
		local -A soname=([libseccomp2]=libseccomp.so.2 [libselinux1]=libselinux.so.1 [libapparmor1]=libapparmor.so.1
			[libcap2]=libcap.so.2 [libpcre2-8-0]=libpcre2-8.so.0 [libgcc-s1]=libgcc_s.so.1)
		local stage=$WORK/stage deb pkg f dst added=0 same=0 kept=0
		rm -rf "$stage"
		if [ "$LXC_PREFIX" != / ] && [ -e "$LXC_PREFIX/.nvidiaprep-gpu-prefix" ]; then
			rm -rf "$LXC_PREFIX" # a scratch prefix of an earlier run
		fi
		mkdir -p "$stage" "$LXC_PREFIX"
		[ "$LXC_PREFIX" = / ] || touch "$LXC_PREFIX/.nvidiaprep-gpu-prefix"
		for deb in "$CARRY"/debs/*.deb; do
			pkg=$(dpkg-deb -f "$deb" Package)
			if [ -n "${soname[$pkg]:-}" ] && ldconfig -p | grep -q "^[[:space:]]*${soname[$pkg]} "; then
				note "$pkg: not unpacked, the machine has ${soname[$pkg]}: $(ldconfig -p | grep -m1 "^[[:space:]]*${soname[$pkg]} " | sed 's/.*=> //')"
				continue
			fi
			dpkg-deb -x "$deb" "$stage/$pkg" || { note "$pkg: dpkg-deb -x failed"; continue; }
			while IFS= read -r f; do
				dst=$LXC_PREFIX/${f#./}
				if [ -e "$dst" ] || [ -L "$dst" ]; then
					if cmp -s "$stage/$pkg/$f" "$dst"; then same=$((same + 1)); else
						kept=$((kept + 1))
						printf 'NOT overwritten (the machine has its own): %s\n' "$dst" >>"$LOG"
					fi
					continue
				fi
				mkdir -p "$(dirname "$dst")" && cp -a "$stage/$pkg/$f" "$dst" && added=$((added + 1))
			done < <(cd "$stage/$pkg" && find . ! -type d)
			note "$pkg $(dpkg-deb -f "$deb" Version): unpacked"
		done
		note "files added: $added; already there, identical: $same; the machine's own kept (differing): $kept"
		fig lxc_files_added $added
		fig lxc_files_kept $kept
		if [ "$LXC_PREFIX" = / ]; then
			x ldconfig
		else
			# A scratch prefix: the tools find their libraries through
			# LD_LIBRARY_PATH and their configs through rewritten paths.
			export PATH=$LXC_PREFIX/usr/bin:$LXC_PREFIX/usr/sbin:$PATH
			PREFIX_LDPATH=$LXC_PREFIX/usr/lib/x86_64-linux-gnu:$LXC_PREFIX/lib/x86_64-linux-gnu
			export LD_LIBRARY_PATH=$PREFIX_LDPATH
			x "grep -rl '= /usr/share/lxc' '$LXC_PREFIX/usr/share/lxc/config' | xargs sed -i 's|= /usr/share/lxc|= $LXC_PREFIX/usr/share/lxc|'"
		fi
	fi
	x 'command -v lxc-start lxc-attach lxc-stop lxc-wait lxc-info'
	x 'lxc-start --version'
	x 'ldd "$(command -v lxc-start)"'
	mkdir -p "$BIN"
	cp -f "$CARRY"/bin/* "$BIN"/
	x 'ls -l "$BIN"; cat "$CARRY/bin/BUILD" 2>/dev/null'
	x 'ldd "$HOOK"'
	x '"$BIN/nvidiaprep" help'
	fig lxc_version "$(lxc-start --version 2>&1)"
}

# ------------------------------------------------------------ 2. discovery

LXCCONF=/usr/share/lxc/config
DEVROOT=/dev PROCROOT=/proc SYSROOT=/sys
VERSION=

discovery() {
	section 02-discovery.txt "the driver as the machine shows it and as nvidiaprep reads it"
	[ "$LXC_PREFIX" != none ] && [ "$LXC_PREFIX" != / ] && LXCCONF=$LXC_PREFIX/usr/share/lxc/config
	if [ "$MODE" = standin ]; then
		note "MODE=standin: no GPU here; a stand-in driver tree (integration/standin) stands for /dev, /proc and /sys"
		rm -rf "$WORK/host"
		x '"$PROOF" standin-host -root "$WORK/host" -version $STANDIN_VERSION'
		DEVROOT=$WORK/host/dev PROCROOT=$WORK/host/proc SYSROOT=$WORK/host/sys
		VERSION=$STANDIN_VERSION
		x 'ls -l "$DEVROOT"; cat "$PROCROOT/devices"; cat "$PROCROOT"/driver/nvidia/gpus/*/information'
		fig gpu_count 1
		return
	fi
	VERSION=$(cat /sys/module/nvidia/version)
	x 'uname -a; cat /etc/os-release | head -2'
	x 'nvidia-smi'
	x 'nvidia-smi -L'
	x 'nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,driver_version,persistence_mode,mig.mode.current,memory.total --format=csv'
	x 'cat /proc/driver/nvidia/version; cat /sys/module/nvidia/version'
	x 'cat /proc/devices'
	x 'ls -l /dev/nvidia*; ls -l /dev/nvidia-caps'
	x 'for f in /proc/driver/nvidia/gpus/*/information; do echo "$f:"; cat "$f"; done'
	x 'find /proc/driver/nvidia/capabilities -type f | sort | while read f; do printf "%s: " "$f"; tr "\n" " " <"$f"; echo; done'
	x 'ls /sys/module | grep -i nvidia; command -v nvidia-modprobe || echo "no nvidia-modprobe"'
	x 'ls -l /usr/local/nvidia/lib64 | head -80'
	# The hook gets no environment: NVML must be in the loader's cache, as on
	# a host where the driver's .run installed it. Where the machine keeps
	# the driver's libraries only on LD_LIBRARY_PATH, add the directory to the
	# cache (this machine is thrown away after the run).
	x 'echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"; cat /etc/ld.so.conf.d/* 2>/dev/null; ldconfig -p | grep -E "libnvidia-ml|libcuda\.so"'
	if ! ldconfig -p | grep -q 'libnvidia-ml\.so\.1 '; then
		local lib
		# shellcheck disable=SC2012 # two fixed paths: the first that exists
		lib=$(ls /usr/local/nvidia/lib64/libnvidia-ml.so.1 /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1 2>/dev/null | head -1)
		if [ -n "$lib" ]; then
			note "libnvidia-ml.so.1 is not in the loader's cache: adding $(dirname "$lib") to /etc/ld.so.conf.d/zz-nvidiaprep-gpu-proof.conf"
			dirname "$lib" >/etc/ld.so.conf.d/zz-nvidiaprep-gpu-proof.conf
			x 'ldconfig && ldconfig -p | grep -E "libnvidia-ml|libcuda\.so"'
		fi
	fi
	x 'dpkg -l 2>/dev/null | grep -iE "nvidia|cuda-drivers|libcuda" | head -20'
	x 'findmnt -n -o TARGET,SOURCE,FSTYPE,OPTIONS / ; findmnt -n /usr/local/nvidia || echo "/usr/local/nvidia is no mount of its own"'
	x 'stat -f -c "/sys/fs/cgroup: %T" /sys/fs/cgroup; cat /sys/fs/cgroup/cgroup.controllers; cat /sys/fs/cgroup/cgroup.subtree_control; echo "this shell: $(cat /proc/self/cgroup)"; echo "init ($(cat /proc/1/comm)): $(cat /proc/1/cgroup)"'
	x 'grep -E "^Cap(Eff|Bnd)" /proc/self/status; cat /sys/module/apparmor/parameters/enabled 2>/dev/null || echo "no AppArmor"; ls /run/systemd/system >/dev/null 2>&1 && echo "systemd runs" || echo "no systemd: $(cat /proc/1/comm)"'
	note "nvidiaprep's own code: nvdev (sysfs, procfs, /dev) and nvmlgpu (NVML), in the hook's empty environment"
	x 'env -i PATH=$CTPATH "$PROOF" discover | tee "$WORK/discover.txt"'
	grep -E '^[a-z0-9_]+=' "$WORK/discover.txt" >>"$SUMMARY"
	fig gpu_count "$(nvidia-smi -L | grep -c '^GPU ')"
}

admin_commands() {
	local c
	for c in doctor status; do
		if "$BIN/nvidiaprep" help 2>&1 | grep -q "^  $c"; then
			x "$(hookenv) '$BIN/nvidiaprep' $c"
			fig "nvidiaprep_${c}_exit_$1" $?
		else
			note "nvidiaprep has no '$c' command in this tree: skipped"
			fig "nvidiaprep_${c}" absent
		fi
	done
}

# ------------------------------------------------------------ 3. end to end

SHLOOP='#!/bin/sh
# init of an nvidiaprep proof container (the root may have no systemd)
trap "exit 0" PWR TERM INT
while :; do sleep 1 & wait $!; done
'

# prep_ct VMID: the container's writable layer, a tmpfs, holding its init,
# and whiteouts over what of the machine's own root would make it look
# provisioned already.
prep_ct() {
	local d=$WORK/disk/$1 p
	mkdir -p "$d" "$LXCP/$1/rootfs" "$WORK/logs"
	mount -t tmpfs -o mode=0755 "nvidiaprep-ct$1" "$d" || return 1
	mkdir "$d/upper" "$d/work"
	printf '%s' "$SHLOOP" >"$d/upper/nvidiaprep-sh-loop"
	chmod 755 "$d/upper/nvidiaprep-sh-loop"
	for p in /var/lib/nvidia /var/lib/nvidiaprep /usr/lib/nvidia/alternate-install-present $(driver_copies); do
		if [ -e "$p" ] || [ -L "$p" ]; then
			note "hiding the machine's own $p from CT $1 (overlay whiteout)"
			mkdir -p "$d/upper$(dirname "$p")" && mknod "$d/upper$p" c 0 0
		fi
	done
}

# driver_copies: the machine's own copies of, or links to, its driver's
# libraries outside /usr/local/nvidia (the H100 machine has lib<name>.so*
# links in /usr/lib), which the container would see through the overlay
# beside a hidden /usr/local/nvidia: nvidia-installer deletes every
# lib<name>.so* of its libraries under /usr/lib*, and the worker refuses an
# install that would (the first H100 run of 003e27c's carry). A container
# made from a clean root has none; an admin's container that has them gets
# that refusal, which the unit tests cover.
driver_copies() {
	local n args=()
	[ -d /usr/local/nvidia/lib64 ] || return 0
	for n in $(find /usr/local/nvidia/lib64 -maxdepth 1 -name "lib*.so*" -printf "%f\n" | sed "s/\.so.*//" | sort -u); do
		args+=(${args:+-o} -name "$n.so*")
	done
	[ ${#args[@]} -gt 0 ] || return 0
	find /usr/lib /usr/lib32 /usr/lib64 -xdev \( -type f -o -type l \) \( "${args[@]}" \) -print 2>/dev/null | sort -u
}

# LIMITS=0 leaves Proxmox's memory and cpu limit lines out (see start_ct).
LIMITS=1

# gen_config VMID: the LXC config Proxmox's update_lxc_config writes for a
# privileged container of this machine's distribution, no network, written
# from scratch as at every start; the few lines that only this bed needs
# are marked.
gen_config() {
	local id=$1 ostype ctrl
	# shellcheck source=/dev/null # the machine's own file, not the project's
	ostype=$(. /etc/os-release && echo "$ID")
	[ -e "$LXCCONF/$ostype.common.conf" ] || ostype=debian
	ctrl=$(cat /sys/fs/cgroup/cgroup.controllers /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)
	{
		echo "lxc.cgroup.relative = 0"
		echo "lxc.cgroup.dir.monitor = lxc.monitor/$id"
		echo "lxc.cgroup.dir.container = lxc/$id"
		echo "lxc.cgroup.dir.container.inner = ns"
		echo "lxc.arch = amd64"
		echo "lxc.include = $LXCCONF/$ostype.common.conf"
		is_unpriv "$id" && unpriv_lines "$id" "$ostype"
		if [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] && ! command -v apparmor_parser >/dev/null; then
			echo "# bed: AppArmor is on but apparmor_parser is missing, so LXC could not load its generated profile"
			echo "lxc.apparmor.profile = unconfined"
		else
			echo "lxc.apparmor.profile = generated"
			echo "lxc.apparmor.raw = deny mount -> /proc/,"
			echo "lxc.apparmor.raw = deny mount -> /sys/,"
		fi
		if [ "$id" = "$VMID_UNPRIV" ]; then
			echo "# bed: Proxmox's features: nesting=1, for 11-podman.txt (LXC's nesting.conf, as integration/cdi_test.go's nestingLines)"
			echo "lxc.apparmor.allow_nesting = 1"
			echo "lxc.mount.entry = proc dev/.lxc/proc proc create=dir,optional 0 0"
			echo "lxc.mount.entry = sys dev/.lxc/sys sysfs create=dir,optional 0 0"
		fi
		echo "lxc.monitor.unshare = 1"
		echo "lxc.console.path = none"
		echo "lxc.cgroup2.devices.deny = c 5:1 rwm"
		echo "# bed: Proxmox writes 2; no ttys are needed here"
		echo "lxc.tty.max = 0"
		echo "lxc.environment = TERM=linux"
		echo "lxc.uts.name = ct$id"
		if [ "$LIMITS" = 1 ]; then
			case " $ctrl " in *" memory "*) echo "lxc.cgroup2.memory.max = 8589934592"; echo "lxc.cgroup2.memory.swap.max = 0" ;; esac
			case " $ctrl " in *" cpu "*) echo "lxc.cgroup2.cpu.weight = 100" ;; esac
		else
			echo "# bed: memory and cpu limits left out: LXC could not enable those controllers here (see 03-e2e.txt)"
		fi
		echo "lxc.rootfs.path = $LXCP/$id/rootfs"
		echo "lxc.net.0.type = empty"
		echo "# bed: the root is an overlay of this machine's own root; its init is a shell loop;"
		echo "# bed: the machine's driver libraries (/usr/local/nvidia) are hidden"
		echo "lxc.init.cmd = /nvidiaprep-sh-loop"
		echo "lxc.mount.entry = tmpfs usr/local/nvidia tmpfs create=dir,mode=0755 0 0"
	} >"$LXCP/$id/config"
}

# The start of lxc-start, in a private mount namespace: pure cgroup v2
# (only where the machine mounts a hybrid layout), the root file system
# mounted as Proxmox's LXC pre-start hook would, then lxc-start -d.
STARTSCRIPT='set -eu
if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
	for m in $(awk "\$3 == \"cgroup\" { print \$2 }" /proc/self/mounts); do umount "$m"; done
	if mountpoint -q /sys/fs/cgroup/unified; then umount /sys/fs/cgroup/unified; fi
	umount /sys/fs/cgroup
	mount -t cgroup2 none /sys/fs/cgroup
fi
mount -t overlay overlay -o "lowerdir=${6:-/},upperdir=$4/upper,workdir=$4/work" "$3"
exec lxc-start -n "$2" -P "$1" -d -o "$5" -l INFO'

# start_ct VMID: "pct start": generated config, pre-start, lxc-start,
# wait for RUNNING, [checks before post-start], post-start.
# Sets PRE_MS, PRE_RC, LXCSTART_MS, POST_MS, POST_RC.
start_ct() {
	local id=$1 t0
	PRE_RC=1 POST_RC=1 PRE_MS=0 POST_MS=0 LXCSTART_MS=0
	gen_config "$id"
	hook "$id" pre-start
	PRE_RC=$HOOK_RC PRE_MS=$HOOK_MS
	[ $PRE_RC = 0 ] || { note "pre-start failed: Proxmox aborts the start"; return 1; }
	x "sed -n '/^# BEGIN nvidiaprep/,/^# END nvidiaprep/p' '$LXCP/$id/config'"
	t0=$(now_ms)
	x "unshare -m --propagation private sh -c '$STARTSCRIPT' sh '$LXCP' $id '$LXCP/$id/rootfs' '$WORK/disk/$id' '$WORK/logs/lxc-$id.log' '$(ct_lower "$id")' && lxc-wait -n $id -P '$LXCP' -s RUNNING -t 30" || {
		x "grep -E 'ERROR|WARN' '$WORK/logs/lxc-$id.log' | tail -40"
		if [ "$LIMITS" = 1 ] && grep -qE 'Could not enable "\+(memory|cpu)"|Failed to set "(memory|cpu)\.' "$WORK/logs/lxc-$id.log"; then
			note "LXC could not enable the memory/cpu controllers for CT $id: what the cgroup tree says, and a probe by hand"
			x "b=/sys/fs/cgroup$(lxc_base); for d in /sys/fs/cgroup \$b \$b/lxc \$b/lxc/$id \$b/lxc/$id/ns \$b/lxc.monitor \$b/lxc.monitor/$id; do [ -d \$d ] || continue; echo \"\$d: type \$(cat \$d/cgroup.type 2>/dev/null) controllers [\$(cat \$d/cgroup.controllers)] subtree [\$(cat \$d/cgroup.subtree_control)] procs [\$(cat \$d/cgroup.procs | tr '\n' ' ')]\"; done"
			[ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ] && x "p=/sys/fs/cgroup/nvidiaprep-probe; mkdir -p \$p/a && echo +memory >\$p/cgroup.subtree_control && echo '+memory in a fresh child of the root: ok'; echo +memory >\$p/a/cgroup.subtree_control && echo '+memory one level deeper: ok'; rmdir \$p/a \$p"
			fig cgroup_limits "left out: $(grep -m1 -oE 'Could not enable[^$]*|Failed to set[^$]*' "$WORK/logs/lxc-$id.log")"
			note "starting CT $id again, as before but without Proxmox's memory and cpu limit lines"
			LIMITS=0
			rm_cgroups "$id"
			start_ct "$id"
			return
		fi
		return 1
	}
	LXCSTART_MS=$(($(now_ms) - t0))
	note "CT $id RUNNING ${LXCSTART_MS} ms after lxc-start"
	x "echo \"CT $id init: cgroup \$(cat /proc/\$(lxc-info -n $id -P '$LXCP' -p -H)/cgroup)\""
	[ "$id" = "$VMID_GPU" ] && before_poststart "$id"
	hook "$id" post-start
	# shellcheck disable=SC2034 # POST_RC is set for callers, as PRE_RC is (none reads it yet)
	POST_RC=$HOOK_RC POST_MS=$HOOK_MS
}

# before_poststart: what the container has before provisioning: the nodes
# pre-start gave it, and none of the machine's NVIDIA libraries.
before_poststart() {
	note "CT $1 before post-start: device nodes yes, NVIDIA libraries no"
	ctx "$1" 'ls -l /dev/nvidia* /dev/nvidia-caps 2>&1; cat /proc/self/cgroup'
	ctx "$1" 'ls -la /usr/local/nvidia; f=$(command -v nvidia-smi) && { ls -l $f; if head -c 4 $f | grep -q ELF; then echo "an ELF program"; else echo "a script of this machine'"'"'s root:"; head -c 1000 $f; fi; } || echo "no nvidia-smi"'
	note "the loader cache, rebuilt by the container's own ldconfig (the cache file came with the machine's root), and every such file on the root"
	ctx "$1" 'ldconfig; ldconfig -p | grep -E "libnvidia-ml|libcuda\.so" || echo "no libnvidia-ml, no libcuda in the loader cache"; find /usr /lib /opt /etc -xdev \( -name "libnvidia-ml.so*" -o -name "libcuda.so*" \) 2>/dev/null | head -20'
}

e2e() {
	section 03-e2e.txt "end to end: containers started as Proxmox starts them, provisioned, and refused"
	local runfile=$CACHE/runs/NVIDIA-Linux-x86_64-$VERSION.run sel=0 libs=() b f t0 ngpu
	ngpu=$(sed -n 's/^gpu_count=//p' "$SUMMARY" | tail -1)
	[ "${ngpu:-1}" -ge 2 ] && sel=1
	fig ct_gpu_selector "$sel"

	note "the node's configuration"
	mkdir -p "$CACHE/runs" "$STATE"
	{
		echo "# nvidiaprep node configuration of the GPU proof (integration/gpu/run.sh)"
		echo "[paths]"
		echo "lxc = \"$LXCP\""
		echo "cache = \"$CACHE\""
		echo "state = \"$STATE\""
		if [ "$MODE" = standin ]; then
			echo "dev = \"$DEVROOT\""
			echo "proc = \"$PROCROOT\""
			echo "sys = \"$SYSROOT\""
		fi
		echo
		echo "[containers.$VMID_GPU]"
		echo "gpus = [\"$sel\"]"
		echo "required = true"
		echo
		echo "[containers.$VMID_NOGPU]"
		echo "gpus = []"
		unpriv_cfg "$sel"
	} >"$CFG"
	x "cat '$CFG'"
	admin_commands before

	note "a stand-in NVIDIA .run (integration/standin) built here from this machine's driver $VERSION"
	if [ "$MODE" = real ]; then
		for b in libnvidia-ml libcuda libnvidia-ptxjitcompiler libnvidia-nvvm libnvidia-encode libnvcuvid; do
			# shellcheck disable=SC2012 # two fixed paths: the first that exists
			f=$(ls "/usr/local/nvidia/lib64/$b.so.$VERSION" "/usr/lib/x86_64-linux-gnu/$b.so.$VERSION" 2>/dev/null | head -1)
			[ -n "$f" ] && libs+=(-lib "$f")
		done
		# The real program, not a wrapper script that execs it (this machine's
		# /usr/bin/nvidia-smi may be one).
		for f in /usr/local/nvidia/bin/nvidia-smi $(which -a nvidia-smi); do
			[ "$(head -c 4 "$f" 2>/dev/null | tr -d '\0')" = "$(printf '\177ELF')" ] && break
		done
		note "nvidia-smi shipped: $f ($(wc -c <"$f") bytes); $(command -v nvidia-smi) on PATH: $(head -c 4 "$(command -v nvidia-smi)" | tr -dc 'a-zA-Z!#/')..."
		libs+=(-bin "$f")
	else
		# Rehearsal: "this machine's driver files" are those of a first
		# stand-in .run, so the path that ships given files is the one taken.
		note "MODE=standin: the driver files are taken from a first stand-in .run (generated libraries, stand-in nvidia-smi)"
		rm -rf "$WORK/seed" "$WORK/seed.run"
		x "'$PROOF' buildrun -version $VERSION -out '$WORK/seed.run' && sh '$WORK/seed.run' -x --target '$WORK/seed' >/dev/null && ls '$WORK/seed'"
		for f in "$WORK"/seed/lib*.so."$VERSION"; do libs+=(-lib "$f"); done
		libs+=(-bin "$WORK/seed/nvidia-smi")
	fi
	rm -f "$runfile"
	x "'$PROOF' buildrun -version $VERSION -out '$runfile' ${libs[*]} | tee '$WORK/buildrun.txt'"
	grep -E '^[a-z_]+=' "$WORK/buildrun.txt" >>"$SUMMARY"
	x "sh '$runfile' --version-string; sh '$runfile' --list | head -30"

	# ---- container with the GPU
	note "CT $VMID_GPU: gpus = [\"$sel\"], required; started as Proxmox starts it"
	prep_ct "$VMID_GPU"
	t0=$(date -u +%s)
	if start_ct "$VMID_GPU"; then
		fig ct_gpu_prestart_ms $PRE_MS
		fig ct_gpu_lxcstart_ms $LXCSTART_MS
		fig ct_gpu_poststart_first_ms $POST_MS
		note "the provisioning worker, started by post-start, detached"
		if x "'$PROOF' wait-record -state '$STATE' -vmid $VMID_GPU -timeout 3m"; then
			"$PROOF" wait-record -state "$STATE" -vmid "$VMID_GPU" -timeout 1s | grep -E '^[a-z_]+=' >>"$SUMMARY"
			fig ct_gpu_provisioned yes
		else
			fig ct_gpu_provisioned no
		fi
		note "CT $VMID_GPU after provisioning"
		ctx "$VMID_GPU" 'nvidia-smi'
		ctx "$VMID_GPU" 'nvidia-smi -L'
		fig ct_gpu_nvidia_smi_L "$(timeout 60 lxc-attach -n "$VMID_GPU" -P "$LXCP" --clear-env --set-var PATH=$CTPATH -- nvidia-smi -L 2>&1 | tr '\n' ' ')"
		ctx "$VMID_GPU" 'nvidia-smi --query-gpu=index,name,uuid,pci.bus_id,driver_version,memory.total --format=csv'
		ctx "$VMID_GPU" 'head -2 /var/lib/nvidia/log; cat /var/lib/nvidiaprep/installed'
		ctx "$VMID_GPU" 'ls -l /usr/bin/nvidia-smi /usr/lib/x86_64-linux-gnu/libnvidia-ml.so* /usr/lib/x86_64-linux-gnu/libcuda.so*; ls -la /usr/local/nvidia'
		ctx "$VMID_GPU" 'ls -l /dev/nvidia*; mount | grep -E "nvidia|nvidiaprep"'
		if [ "$MODE" = real ]; then
			note "CUDA inside: PyTorch of this machine's root, if it has one, through the provisioned libcuda"
			ctx "$VMID_GPU" "$CUDA_CHECK"
			case $? in 0) fig ct_gpu_cuda ok ;; 3) fig ct_gpu_cuda "no torch" ;; *) fig ct_gpu_cuda failed ;; esac
		fi
		note "the cgroup refuses a node the container was not given: mknod 195:$((sel == 0 ? 1 : 0)) inside, then open it"
		ctx "$VMID_GPU" "$TRYOPEN mknod /dev/nvidia-other c 195 $((sel == 0 ? 1 : 0)) && ls -l /dev/nvidia-other; tryopen /dev/nvidia$sel /dev/nvidiactl /dev/nvidia-other; rm -f /dev/nvidia-other"
		note "post-start again: the container is current, post-start returns at once"
		hook "$VMID_GPU" post-start
		fig ct_gpu_poststart_current_ms $HOOK_MS
	else
		fig ct_gpu_started no
	fi

	# ---- container without a GPU
	note "CT $VMID_NOGPU: gpus = [] (no GPU)"
	prep_ct "$VMID_NOGPU"
	if start_ct "$VMID_NOGPU"; then
		fig ct_nogpu_prestart_ms $PRE_MS
		ctx "$VMID_NOGPU" 'ls -l /dev/nvidia* 2>&1; f=$(command -v nvidia-smi) && { ls -l $f; if head -c 4 $f | grep -q ELF; then echo "an ELF program"; else echo "a script of this machine'"'"'s root:"; head -c 1000 $f; fi; } || echo "no nvidia-smi"; nvidia-smi -L'
		note "a self-made node: mknod is allowed (LXC's common.conf allows m on every device), opening it is refused by the device cgroup"
		ctx "$VMID_NOGPU" "$TRYOPEN"'mknod /dev/nvidia0 c 195 0; mknod /dev/nvidiactl c 195 255; ls -l /dev/nvidia0 /dev/nvidiactl; tryopen /dev/nvidia0 /dev/nvidiactl'
		fig ct_nogpu_open_nvidia0 "$(timeout 60 lxc-attach -n "$VMID_NOGPU" -P "$LXCP" --clear-env --set-var PATH=$CTPATH -- sh -c "$TRYOPEN tryopen /dev/nvidia0" 2>&1)"
		x "ls '$STATE/containers/' ; cat '$STATE/containers/$VMID_NOGPU.json' 2>&1"
	else
		fig ct_nogpu_started no
	fi
	admin_commands after
}

# ------------------------------------------------------------ 4. bench

bench() {
	section 04-bench.txt "hook wall times (pre-start with real NVML where a driver is loaded)"
	local out
	note "each run is a fresh process as Proxmox starts it: env -i PATH=... NVIDIAPREP_CONFIG=...; $BENCH_N runs or 60 s each"
	note "which NVML library the hook loads (LD_DEBUG=libs)"
	x "$(hookenv) LD_DEBUG=libs '$HOOK' $VMID_GPU pre-start 2>&1 | grep -E 'libnvidia-ml' | head -5"
	for b in "pre-start $VMID_GPU prestart_gpu" "pre-start $VMID_NOGPU prestart_nogpu" "post-start $VMID_GPU poststart_current"; do
		# shellcheck disable=SC2086 # "PHASE VMID NAME": split on purpose
		set -- $b
		out=$(eval "'$PROOF' bench -n $BENCH_N -max 60s -name $3 -- $(hookenv) '$HOOK' $2 $1" 2>&1)
		printf '\n$ gpuproof bench -n %s -name %s -- nvidiaprep-hook %s %s\n%s\n' "$BENCH_N" "$3" "$2" "$1" "$out" >>"$LOG"
		echo "   $out"
		# shellcheck disable=SC2001 # sed: each line's prefix, not only the first
		echo "$out" | grep -q runs= && for kv in $(echo "$out" | sed 's/^[^:]*: //'); do fig "bench_$3_${kv%%=*}" "${kv#*=}"; done
	done
	if [ "$MODE" = real ]; then
		x "'$PROOF' bench -n 10 -name host_nvidia_smi_L -- nvidia-smi -L"
	fi
}

logs() {
	section 05-logs.txt "generated LXC configs, lxc-start logs, the worker's log"
	local v
	for v in $VMID_GPU $VMID_NOGPU $VMID_UNPRIV $VMID_UNPRIV_NOGPU; do
		[ -e "$LXCP/$v/config" ] || continue
		x "cat '$LXCP/$v/config'"
		x "cat '$WORK/logs/lxc-$v.log'"
	done
	x "cat '$STATE'/log/*.log 2>/dev/null || journalctl -u 'nvidiaprep-provision-*' --no-pager 2>/dev/null | tail -50"
	x "cat '$STATE'/containers/*.json"
}

# The second proof's steps (issue 23): 06-unprivileged.txt ... 11-podman.txt
. "$REPO/integration/gpu/second.sh"

# ------------------------------------------------------------ main

cleanup
rm -rf "$LXCP" "$STATE" "$WORK/logs" "$CACHE/drivers"
trap cleanup EXIT
fig date "$(date -u +%FT%TZ)"
fig mode "$MODE"
fig kernel "$(uname -r)"
# shellcheck source=/dev/null # the machine's own file, not the project's
fig os "$(. /etc/os-release && echo "$PRETTY_NAME")"
install_lxc
discovery
e2e
unprivileged
reboot_path
mig_render
host_driver
bench
hook_times
podman_nested
logs
echo "== summary.txt"
cat "$SUMMARY"
