# shellcheck shell=bash # sourced by run.sh
# shellcheck disable=SC2016 # ctx and the *CHECK strings are command lines run later: their $ expand there
# integration/gpu/second.sh: the second proof's steps (issue 23), sourced by
# integration/gpu/run.sh after its e2e step (they use its helpers, its
# configuration and its CT VMID_GPU):
#   06-unprivileged.txt  CT VMID_UNPRIV (one GPU) and VMID_UNPRIV_NOGPU (none),
#                        unprivileged: lxc.idmap u/g 0 100000 65536, the
#                        distribution's userns.conf and Proxmox's
#                        userns.conf.d lines (lxc.cgroup2.devices.allow = a);
#                        the root's owners shifted by an idmapped mount of the
#                        machine's root (the overlay's lower layer), the
#                        closest substitute for Proxmox's on-disk shift here
#   07-reboot.txt        the reboot from inside: CT VMID_GPU stopped, its
#                        config written anew without nvidiaprep's block (as
#                        Proxmox's post-stop hook leaves it), the drop-in's
#                        program run as pve-container@.service's
#                        ExecStartPre=, then lxc-start alone (Proxmox runs no
#                        hookscript on this path)
#   08-mig-render.txt    MIG mode, nvidia-caps nodes, mig-minors, /dev/dri, read
#                        only; `nvidiaprep gpus --json` and pre-start's block
#   09-host-driver.txt   `nvidiaprep host-driver` against the loaded driver: the
#                        fast path's nodes, cached tree and milliseconds; status
#                        and doctor exit codes
#   10-hook-times.txt    pre-start, post-start and the drop-in, BENCH_N runs each
#   11-podman.txt        Debian 12's podman inside the unprivileged CT, nvidia-smi in a
#                        nested container through the CDI spec (--device nvidia.com/gpu=0)
VMID_UNPRIV=${VMID_UNPRIV:-103}
VMID_UNPRIV_NOGPU=${VMID_UNPRIV_NOGPU:-104}
IDSHIFT=100000 IDRANGE=65536
UNIT_PRESTART=$BIN/nvidiaprep-unit-prestart
PVEDIR=$WORK/pve    # Proxmox's /etc/pve, for the drop-in's program only
CFG_PVE=$WORK/nvidiaprep-pve.toml

is_unpriv() { [ "$1" = "$VMID_UNPRIV" ] || [ "$1" = "$VMID_UNPRIV_NOGPU" ]; }

# ct_lower VMID: the overlay's lower directory: the machine's root, through
# the idmapped mount for an unprivileged container.
ct_lower() { if is_unpriv "$1"; then echo "$WORK/disk/$1/lower"; else echo /; fi; }

# unpriv_lines VMID OSTYPE: what Proxmox's update_lxc_config adds for
# "unprivileged: 1" (the id map follows at the end of gen_config's block).
unpriv_lines() {
	local rules=$LXCP/$1/rules.seccomp
	echo "lxc.include = $LXCCONF/$2.userns.conf"
	echo "# bed: Proxmox's userns.conf.d/01-pve.conf, which the line above includes on a node"
	echo "lxc.cgroup2.devices.deny ="
	echo "lxc.cgroup2.devices.allow ="
	echo "lxc.cgroup2.devices.allow = a"
	# Proxmox's pve-userns.seccomp: LXC's common rules and two of its own.
	{ cat "$LXCCONF/common.seccomp"; printf 'ioctl errno 1 [1,0x9400,SCMP_CMP_MASKED_EQ,0xff00]\nkeyctl errno 38\n'; } >"$rules"
	echo "lxc.seccomp.profile = $rules"
	echo "lxc.mount.auto = sys:mixed"
	echo "lxc.idmap = u 0 $IDSHIFT $IDRANGE"
	echo "lxc.idmap = g 0 $IDSHIFT $IDRANGE"
}

# unpriv_cfg SEL: the unprivileged containers' tables of the node's config.
unpriv_cfg() {
	printf '\n[containers.%s]\ngpus = ["%s"]\nrequired = true\n\n[containers.%s]\ngpus = []\n' \
		"$VMID_UNPRIV" "$1" "$VMID_UNPRIV_NOGPU"
}

# prep_unpriv VMID: prep_ct, then the upper layer owned by the container's
# root and the machine's root mounted idmapped as the lower one.
prep_unpriv() {
	local d=$WORK/disk/$1
	prep_ct "$1" || return 1
	mkdir "$d/lower"
	# the upper layer's directories (prep_ct's whiteouts made /usr/lib and
	# others there) shifted like the root's own, root-owned, directories
	find "$d/upper" -type d -exec chown $IDSHIFT:$IDSHIFT {} +
	chown $IDSHIFT:$IDSHIFT "$d/upper/nvidiaprep-sh-loop"
	x "'$PROOF' idmap-mount -src / -dst '$d/lower' -shift $IDSHIFT -range $IDRANGE && stat -c '%u:%g %A %n' / '$d/lower' '$d/lower/etc/shadow' '$d/lower/usr/bin/passwd'"
}

# running VMID: whether LXC reports the container RUNNING.
running() { lxc-info -n "$1" -P "$LXCP" -s 2>/dev/null | grep -q RUNNING; }

# ------------------------------------------------------------ 6. unprivileged

unprivileged() {
	section 06-unprivileged.txt "unprivileged containers (lxc.idmap 0 $IDSHIFT $IDRANGE, lxc.cgroup2.devices.allow = a): one GPU, and none"
	local sel
	sel=$(sed -n 's/^ct_gpu_selector=//p' "$SUMMARY" | tail -1)
	note "the root's owners: an idmapped mount of the machine's root (mount_setattr MOUNT_ATTR_IDMAP) as the overlay's lower layer, the closest substitute for Proxmox's on-disk shift (a copy of this root, chowned, would not fit); the writable upper layer belongs to $IDSHIFT"
	note "CT $VMID_UNPRIV: gpus = [\"$sel\"], required, unprivileged"
	if ! prep_unpriv "$VMID_UNPRIV"; then
		fig unpriv_gpu_started "no: the idmapped mount failed"
	elif start_ct "$VMID_UNPRIV"; then
		fig unpriv_gpu_prestart_ms "$PRE_MS"
		fig unpriv_gpu_poststart_first_ms "$POST_MS"
		ctx "$VMID_UNPRIV" 'cat /proc/self/uid_map /proc/self/gid_map; ls -ln / | head -5; ls -l /etc/shadow /usr/bin/passwd; id'
		ctx "$VMID_UNPRIV" 'ls -l /dev/nvidia* 2>&1; cat /proc/self/cgroup'
		if x "'$PROOF' wait-record -state '$STATE' -vmid $VMID_UNPRIV -timeout 3m"; then
			"$PROOF" wait-record -state "$STATE" -vmid "$VMID_UNPRIV" -timeout 1s | grep -E '^[a-z_]+=' | sed 's/^/unpriv_/' >>"$SUMMARY"
			fig unpriv_gpu_provisioned yes
		else
			fig unpriv_gpu_provisioned no
		fi
		ctx "$VMID_UNPRIV" 'nvidia-smi'
		fig unpriv_gpu_nvidia_smi_L "$(timeout 60 lxc-attach -n "$VMID_UNPRIV" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- nvidia-smi -L 2>&1 | tr '\n' ' ')"
		ctx "$VMID_UNPRIV" 'nvidia-smi -L; ls -l /usr/bin/nvidia-smi /usr/lib/x86_64-linux-gnu/libcuda.so* /var/lib/nvidiaprep/installed 2>&1'
		ctx "$VMID_UNPRIV" "$TRYOPEN tryopen /dev/nvidia$sel /dev/nvidiactl /dev/nvidia-uvm"
		note "the CDI spec the worker wrote, which a nested Podman's --device nvidia.com/gpu=0 would use"
		ctx "$VMID_UNPRIV" 'ls -l /etc/cdi; grep -E "^(#|cdiVersion|kind)|name:|path:|hostPath:" /etc/cdi/nvidia.yaml | head -30'
		fig unpriv_cdi_spec "$(timeout 60 lxc-attach -n "$VMID_UNPRIV" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- sh -c 'test -s /etc/cdi/nvidia.yaml && grep -c "hostPath:" /etc/cdi/nvidia.yaml | sed "s/$/ mounts/" || echo missing' 2>&1)"
		if [ "$MODE" = real ]; then
			ctx "$VMID_UNPRIV" "$CUDA_CHECK"
			case $? in 0) fig unpriv_gpu_cuda ok ;; 3) fig unpriv_gpu_cuda "no torch" ;; *) fig unpriv_gpu_cuda failed ;; esac
		fi
		note "mknod is refused in a user namespace; a node for a GPU not given cannot be made"
		ctx "$VMID_UNPRIV" "mknod /dev/nvidia-other c 195 $((sel == 0 ? 1 : 0)); ls -l /dev/nvidia-other 2>&1"
	else
		fig unpriv_gpu_started no
	fi

	note "CT $VMID_UNPRIV_NOGPU: gpus = [], unprivileged (every device allowed in its cgroup: the only guard is that no node exists and none can be made)"
	if ! prep_unpriv "$VMID_UNPRIV_NOGPU"; then
		fig unpriv_nogpu_started "no: the idmapped mount failed"
	elif start_ct "$VMID_UNPRIV_NOGPU"; then
		fig unpriv_nogpu_prestart_ms "$PRE_MS"
		ctx "$VMID_UNPRIV_NOGPU" "$TRYOPEN"'ls -l /dev/nvidia* 2>&1; mknod /dev/nvidia0 c 195 0; mknod /dev/nvidiactl c 195 255; tryopen /dev/nvidia0 /dev/nvidiactl'
		fig unpriv_nogpu_open_nvidia0 "$(timeout 60 lxc-attach -n "$VMID_UNPRIV_NOGPU" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- sh -c "$TRYOPEN mknod /dev/nvidia0 c 195 0 2>/dev/null; tryopen /dev/nvidia0" 2>&1)"
	else
		fig unpriv_nogpu_started no
	fi
}

# ------------------------------------------------------------ 7. reboot

# pve_conf VMID: the container's Proxmox config as the drop-in's program
# reads it (hookscript and, for unprivileged ones, the flag).
pve_conf() {
	mkdir -p "$PVEDIR/lxc"
	{
		echo "arch: amd64"
		echo "hostname: ct$1"
		echo "hookscript: local:snippets/nvidiaprep-hook"
		# shellcheck source=/dev/null # the machine's own file, not the project's
		echo "ostype: $(. /etc/os-release && echo "$ID")"
		is_unpriv "$1" && echo "unprivileged: 1"
	} >"$PVEDIR/lxc/$1.conf"
	# The drop-in's configuration: the node's, with [paths] pve.
	sed "s|^\[paths\]|[paths]\npve = \"$PVEDIR\"|" "$CFG" >"$CFG_PVE"
}

# dropin VMID: the drop-in's program as systemd runs ExecStartPre= (the
# unit's environment: PATH and the node's config); sets HOOK_MS, HOOK_RC.
dropin() {
	local t0
	printf '\n$ nvidiaprep-unit-prestart %s   (ExecStartPre= of pve-container@%s.service)\n' "$1" "$1" >>"$LOG"
	t0=$(now_ms)
	eval "$(hookenv | sed "s|NVIDIAPREP_CONFIG=[^ ]*|NVIDIAPREP_CONFIG=$CFG_PVE|")" "$UNIT_PRESTART" "$1" >>"$LOG" 2>&1 </dev/null
	HOOK_RC=$?
	HOOK_MS=$(($(now_ms) - t0))
	printf '[exit %d, %d ms]\n' $HOOK_RC $HOOK_MS >>"$LOG"
	return $HOOK_RC
}

reboot_path() {
	section 07-reboot.txt "a reboot from inside CT $VMID_GPU: post-stop's fresh config, the drop-in's program, lxc-start"
	local id=$VMID_GPU
	if ! running "$id"; then
		note "CT $id is not running (see 03-e2e.txt): nothing to reboot"
		fig reboot_done "no: CT $id not running"
		return
	fi
	pve_conf "$id"
	x "cat '$PVEDIR/lxc/$id.conf'"
	note "the container stops (its init exits, as on reboot); its root disk (the overlay's upper layer) keeps what the worker installed"
	x "lxc-stop -n $id -P '$LXCP' -t 20 || lxc-stop -n $id -P '$LXCP' -k; lxc-info -n $id -P '$LXCP' -s"
	rm_cgroups "$id"
	note "control: the config written anew (no block) and lxc-start alone, as a node without the drop-in starts it"
	gen_config "$id"
	if x "unshare -m --propagation private sh -c '$STARTSCRIPT' sh '$LXCP' $id '$LXCP/$id/rootfs' '$WORK/disk/$id' '$WORK/logs/lxc-$id-control.log' / && lxc-wait -n $id -P '$LXCP' -s RUNNING -t 30"; then
		ctx "$id" "$TRYOPEN"'ls -l /dev/nvidia* 2>&1; tryopen /dev/nvidia0'
		fig reboot_control_open_nvidia0 "$(timeout 60 lxc-attach -n "$id" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- sh -c "$TRYOPEN tryopen /dev/nvidia0" 2>&1)"
		x "lxc-stop -n $id -P '$LXCP' -t 20 || lxc-stop -n $id -P '$LXCP' -k"
		rm_cgroups "$id"
	fi
	note "Proxmox's post-stop hook writes the config anew from /etc/pve/lxc/$id.conf: no nvidiaprep block"
	gen_config "$id"
	x "grep -c 'BEGIN nvidiaprep' '$LXCP/$id/config' || echo 'no block'"
	note "pve-container@$id.service: ExecStartPre=nvidiaprep-unit-prestart $id (the package's drop-in), then lxc-start; no hookscript runs"
	dropin "$id"
	fig reboot_dropin_rc $HOOK_RC
	fig reboot_dropin_ms $HOOK_MS
	x "sed -n '/^# BEGIN nvidiaprep/,/^# END nvidiaprep/p' '$LXCP/$id/config'"
	note "the drop-in once more, the block now fresh: it leaves the config alone"
	x "stat -c '%y' '$LXCP/$id/config'"
	dropin "$id"
	fig reboot_dropin_fresh_ms $HOOK_MS
	x "stat -c '%y' '$LXCP/$id/config'"
	local t0
	t0=$(now_ms)
	if x "unshare -m --propagation private sh -c '$STARTSCRIPT' sh '$LXCP' $id '$LXCP/$id/rootfs' '$WORK/disk/$id' '$WORK/logs/lxc-$id-reboot.log' / && lxc-wait -n $id -P '$LXCP' -s RUNNING -t 30"; then
		note "CT $id RUNNING again $(($(now_ms) - t0)) ms after lxc-start"
		ctx "$id" 'ls -l /dev/nvidia*; nvidia-smi -L'
		fig reboot_nvidia_smi_L "$(timeout 60 lxc-attach -n "$id" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- nvidia-smi -L 2>&1 | tr '\n' ' ')"
		if [ "$MODE" = real ]; then
			ctx "$id" "$CUDA_CHECK"
			case $? in 0) fig reboot_cuda ok ;; 3) fig reboot_cuda "no torch" ;; *) fig reboot_cuda failed ;; esac
		fi
		fig reboot_done yes
	else
		x "grep -E 'ERROR|WARN' '$WORK/logs/lxc-$id-reboot.log' | tail -20"
		fig reboot_done "no: lxc-start failed"
	fi


}

# ------------------------------------------------------------ 8. MIG, render

mig_render() {
	section 08-mig-render.txt "MIG and render nodes, read only (MIG mode is never switched)"
	if [ "$MODE" = real ]; then
		x 'nvidia-smi --query-gpu=index,name,mig.mode.current,mig.mode.pending --format=csv'
		x 'nvidia-smi mig -lgi; nvidia-smi mig -lci'
	fi
	x "ls -l '$DEVROOT'/nvidia-caps 2>&1"
	x "cat '$PROCROOT'/driver/nvidia-caps/mig-minors 2>&1 | head -12; echo ...; wc -l <'$PROCROOT'/driver/nvidia-caps/mig-minors 2>&1"
	x "find '$PROCROOT'/driver/nvidia/capabilities -type f 2>/dev/null | sort | while read f; do printf '%s: ' \"\$f\"; tr '\n' ' ' <\"\$f\"; echo; done"
	x "ls -l '$DEVROOT'/dri 2>&1; ls -d '$SYSROOT'/module/nvidia_drm '$SYSROOT'/module/nvidia_modeset 2>&1; grep -E 'drm|nvidia' '$PROCROOT'/devices"
	note "what nvidiaprep makes of it: its GPU list, and the block pre-start gave CT $VMID_GPU"
	x "NVIDIAPREP_CONFIG='$CFG' '$BIN/nvidiaprep' gpus --json"
	x "sed -n '/^# BEGIN nvidiaprep/,/^# END nvidiaprep/p' '$LXCP/$VMID_GPU/config'"
	fig mig_mode "$( [ "$MODE" = real ] && nvidia-smi --query-gpu=mig.mode.current --format=csv,noheader 2>&1 | tr '\n' ' ' || echo standin)"
	# shellcheck disable=SC2012 # names for the record, not to act on
	fig dev_dri "$(ls "$DEVROOT"/dri 2>/dev/null | tr '\n' ' ' || true)"
}

# ------------------------------------------------------------ 9. host driver

host_driver() {
	section 09-host-driver.txt "the host driver unit's fast path: nvidiaprep host-driver against the loaded driver $VERSION"
	local cfg=$WORK/nvidiaprep-hostdriver.toml rc t0
	{
		cat "$CFG"
		printf '\n[driver]\nversion = "%s"\nrun = "%s"\n' "$VERSION" "$CACHE/runs/NVIDIA-Linux-x86_64-$VERSION.run"
	} >"$cfg"
	if [ "$MODE" = standin ]; then
		# The stand-in tree's root for the host's own files (/run,
		# /etc/modprobe.d, /var/lib/nvidia): never this machine's.
		mkdir -p "$WORK/hostroot"
		sed -i "s|^\[paths\]|[paths]\nroot = \"$WORK/hostroot\"|" "$cfg"
	fi
	x "sed -n '/^\[paths\]/,/^$/p;/^\[driver\]/,\$p' '$cfg'"
	x "ls -l '$DEVROOT'/nvidia* 2>&1; ls '$CACHE/drivers' 2>&1"
	t0=$(now_ms)
	printf '\n$ nvidiaprep host-driver --yes\n' >>"$LOG"
	NVIDIAPREP_CONFIG=$cfg "$BIN/nvidiaprep" host-driver --yes >>"$LOG" 2>&1 </dev/null
	rc=$?
	printf '[exit %d, %d ms]\n' $rc $(($(now_ms) - t0)) >>"$LOG"
	fig hostdriver_first_rc $rc
	fig hostdriver_first_ms $(($(now_ms) - t0))
	x "ls -l '$DEVROOT'/nvidia* 2>&1; ls '$CACHE/drivers' 2>&1; cat '$STATE'/host-driver*.json 2>/dev/null | head -30"
	local out
	out=$("$PROOF" bench -n 20 -max 60s -name hostdriver_fast -- env NVIDIAPREP_CONFIG="$cfg" "$BIN/nvidiaprep" host-driver --yes 2>&1)
	printf '\n$ gpuproof bench -n 20 -name hostdriver_fast -- nvidiaprep host-driver --yes\n%s\n' "$out" >>"$LOG"
	echo "   $out"
	# shellcheck disable=SC2001 # sed: each line's prefix, not only the first
	echo "$out" | grep -q runs= && for kv in $(echo "$out" | sed 's/^[^:]*: //'); do fig "bench_hostdriver_fast_${kv%%=*}" "${kv#*=}"; done
	printf '\n$ nvidiaprep status\n' >>"$LOG"
	NVIDIAPREP_CONFIG=$cfg "$BIN/nvidiaprep" status >>"$LOG" 2>&1 </dev/null
	rc=$?; printf '[exit %d]\n' $rc >>"$LOG"; fig hostdriver_status_rc $rc
	printf '\n$ nvidiaprep doctor\n' >>"$LOG"
	NVIDIAPREP_CONFIG=$cfg "$BIN/nvidiaprep" doctor >>"$LOG" 2>&1 </dev/null
	rc=$?; printf '[exit %d]\n' $rc >>"$LOG"; fig hostdriver_doctor_rc $rc
}

# ------------------------------------------------------------ 10. hook times

hook_times() {
	section 10-hook-times.txt "hook and drop-in wall times, $BENCH_N runs each (fresh processes, Proxmox's environment)"
	local b out cfgfile=$LXCP/$VMID_GPU/config
	[ -e "$PVEDIR/lxc/$VMID_GPU.conf" ] || pve_conf "$VMID_GPU"
	note "dropin_applies: each run first ages the config's block by 2 minutes (sh + touch, included), so the program runs pre-start; dropin_fresh: the block is fresh, it returns at once"
	for b in "prestart_gpu:$(hookenv) '$HOOK' $VMID_GPU pre-start" \
		"poststart_current:$(hookenv) '$HOOK' $VMID_GPU post-start" \
		"dropin_applies:sh -c 'touch -d \"-2 min\" $cfgfile && exec $(hookenv | sed "s|NVIDIAPREP_CONFIG=[^ ]*|NVIDIAPREP_CONFIG=$CFG_PVE|") $UNIT_PRESTART $VMID_GPU'" \
		"dropin_fresh:$(hookenv | sed "s|NVIDIAPREP_CONFIG=[^ ]*|NVIDIAPREP_CONFIG=$CFG_PVE|") '$UNIT_PRESTART' $VMID_GPU"; do
		out=$(eval "'$PROOF' bench -n $BENCH_N -max 60s -name ${b%%:*} -- ${b#*:}" 2>&1)
		printf '\n$ gpuproof bench -n %s -name %s -- %s\n%s\n' "$BENCH_N" "${b%%:*}" "${b#*:}" "$out" >>"$LOG"
		echo "   $out"
		# shellcheck disable=SC2001 # sed: each line's prefix, not only the first
		echo "$out" | grep -q runs= && for kv in $(echo "$out" | sed 's/^[^:]*: //'); do fig "times_${b%%:*}_${kv%%=*}" "${kv#*=}"; done
	done
	note "beside them: the development VM's 'make bench' of the same commit (docs/bench.md there; run it at $(sed -n 's/^from commit //p' "$CARRY/bin/BUILD" 2>/dev/null))"
	[ -e "$REPO/docs/bench.md" ] && x "cat '$REPO/docs/bench.md'"
}

# ------------------------------------------------------------ 11. podman

# PODMAN_UNPACK (sh, inside a container): Debian 12's podman, runc, conmon
# and their libraries from the .debs in /root/podman-debs, unpacked where
# the container lacks a file (its own, often newer, libraries stay), then
# configured as integration/cdi_test.go's podmanConfig does: vfs storage,
# cgroupfs, events to a file, runc.
PODMAN_UNPACK='set -e
st=/root/podman-stage
rm -rf $st; mkdir -p $st
for deb in /root/podman-debs/*.deb; do dpkg-deb -x "$deb" $st; done
cd $st
find . ! -type d >/root/podman-files
added=0; kept=0
while IFS= read -r f; do
	dst=/${f#./}
	if [ -e "$dst" ] || [ -L "$dst" ]; then kept=$((kept + 1)); continue; fi
	mkdir -p "$(dirname "$dst")"; cp -a "$f" "$dst"; added=$((added + 1))
done </root/podman-files
echo "files added: $added; the container'"'"'s own kept: $kept"
ldconfig 2>/dev/null
# podman keeps its locks in /dev/shm, which systemd mounts; this init is a shell loop
mountpoint -q /dev/shm || { mkdir -p /dev/shm && mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm; }
mkdir -p /etc/containers /var/lib/containers/storage /run/containers/storage
printf "[storage]\ndriver = \"vfs\"\nrunroot = \"/run/containers/storage\"\ngraphroot = \"/var/lib/containers/storage\"\n" >/etc/containers/storage.conf
printf "[containers]\npids_limit = 0\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n" >/etc/containers/containers.conf
[ -e /etc/containers/policy.json ] || echo "{\"default\":[{\"type\":\"insecureAcceptAnything\"}]}" >/etc/containers/policy.json
podman --version; runc --version | head -1; conmon --version | head -1'

# PODMAN_IMAGE (sh, inside a container): an image of a few of the
# container's own programs and libraries, with no NVIDIA file: what the
# nested container has of the driver comes from the CDI spec alone.
PODMAN_IMAGE='set -e
rm -rf /root/img && mkdir -p /root/img/usr/lib/x86_64-linux-gnu /root/img/usr/bin /root/img/dev /root/img/proc /root/img/sys /root/img/etc /root/img/tmp
cd /root/img
ln -s usr/bin bin; ln -s usr/lib lib; ln -s usr/lib64 lib64; ln -s usr/bin sbin
cp -a /usr/lib64 usr/
for f in sh dash cat ls head; do cp -a /usr/bin/$f usr/bin/; done
cd /usr/lib/x86_64-linux-gnu
for f in ld-linux-x86-64.so* libc.so* libm.so* libdl.so* libpthread.so* librt.so* libselinux.so* libpcre2-8.so* libacl.so* libattr.so* libcap.so*; do [ -e "$f" ] && cp -a "$f" /root/img/usr/lib/x86_64-linux-gnu/; done
echo "root:x:0:0:root:/root:/bin/sh" >/root/img/etc/passwd
echo "root:x:0:" >/root/img/etc/group
tar -C /root/img -cf /root/img.tar .
podman import /root/img.tar localhost/gpu-probe:latest >/dev/null
podman images
! find /root/img -name "*nvidia*" -o -name "libcuda*" | grep .'

# PODMAN_RUN: podman run in the container, with the nested container's
# resource limits at the container's own hard limits (podman would raise
# them, which a root without CAP_SYS_RESOURCE may not; cdi_test.go).
PODMAN_RUN='podman run --rm --network none $(awk '"'"'/^Max open files/ {print "--ulimit nofile=" $5 ":" $5} /^Max processes/ {print "--ulimit nproc=" $4 ":" $4} /^Max locked memory/ {print "--ulimit memlock=" $5 ":" $5}'"'"' /proc/self/limits | sed "s/unlimited/-1/g")'

podman_nested() {
	local id=$VMID_UNPRIV deb
	section 11-podman.txt "nested Podman through the CDI spec: Debian 12's podman in CT $id (unprivileged, nesting), --device nvidia.com/gpu=0"
	if ! ls "$CARRY"/podman/*.deb >/dev/null 2>&1; then
		note "Debian's podman was not carried ($CARRY/podman is empty): run integration/gpu/prepare.sh"
		fig podman "not carried"
		return
	fi
	if ! running "$id"; then
		note "CT $id is not running (06-unprivileged.txt)"
		fig podman "CT $id not running"
		return
	fi
	x "du -sh '$CARRY' '$CARRY/podman'; ls '$CARRY/podman'"
	note "the carried .debs copied into CT $id and unpacked where it lacks a file"
	for deb in "$CARRY"/podman/*.deb; do
		# shellcheck disable=SC2094 # the file written is inside the container
		timeout 60 lxc-attach -n "$id" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- sh -c "mkdir -p /root/podman-debs && cat >'/root/podman-debs/$(basename "$deb")'" <"$deb" || note "copying $(basename "$deb") into CT $id failed"
	done
	if ! ctx "$id" "$PODMAN_UNPACK"; then
		fig podman "unpack failed"
		return
	fi
	note "the CDI spec the worker wrote in CT $id, as podman reads it"
	ctx "$id" 'podman info --format "{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}} {{.Host.CgroupsVersion}} {{.Store.GraphDriverName}}"; grep -E "^kind|name:" /etc/cdi/nvidia.yaml'
	note "an image made of the container's own programs, with no NVIDIA file, from a local tarball"
	if ! ctx "$id" "$PODMAN_IMAGE"; then
		fig podman "image failed"
		return
	fi
	note "a nested container given the GPU through the spec: nvidia-smi, its libraries and nodes come from the spec alone"
	ctx "$id" "$PODMAN_RUN --device nvidia.com/gpu=0 localhost/gpu-probe:latest sh -c 'ls -l /dev/nvidia* /usr/bin/nvidia-smi; nvidia-smi; nvidia-smi -L' 2>&1"
	fig podman_nvidia_smi_L "$(timeout 120 lxc-attach -n "$id" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- sh -c "$PODMAN_RUN --device nvidia.com/gpu=0 localhost/gpu-probe:latest nvidia-smi -L" 2>&1 | grep -v 'level=warning' | tr '\n' ' ')"
	note "a nested container without --device: no node, no nvidia-smi"
	ctx "$id" "$PODMAN_RUN localhost/gpu-probe:latest sh -c 'ls /dev/nvidia* /usr/bin/nvidia-smi' 2>&1"
	fig podman_without_device "$(timeout 120 lxc-attach -n "$id" -P "$LXCP" --clear-env --set-var "PATH=$CTPATH" -- sh -c "$PODMAN_RUN localhost/gpu-probe:latest sh -c 'ls /dev/nvidia0 /usr/bin/nvidia-smi'" 2>&1 | grep -v 'level=warning' | tr '\n' ' ')"
	fig podman carried
}
