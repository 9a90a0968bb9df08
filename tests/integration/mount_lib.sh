#!/bin/bash
# mount_lib: helpers shared by the tests/integration/mount_*.sh scenarios
# (sourced, not run on its own). Adds FUSE-mount bookkeeping to the
# harness: every mount made with mh_mount is unmounted at exit, before the
# harness stops ganesha.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

MH_BIN="$top_builddir/mount.gridvfs"
MH_MNTS=()

# mh_init NAME: h_init plus checks that the helper and /dev/fuse exist.
mh_init() {
	h_init "$1"
	trap 'rc=$?; mh__unmount_all; (exit $rc); h__teardown' EXIT
	[ -x "$MH_BIN" ] || h_fail "mount.gridvfs not built ($MH_BIN)"
	[ -c /dev/fuse ] || h_fail "/dev/fuse missing"
}

mh__unmount_all() {
	local m
	for m in "${MH_MNTS[@]}"; do
		mountpoint -q "$m" 2>/dev/null || grep -qF " $m " /proc/self/mountinfo || continue
		timeout 20 umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
}

# mh_source [PATH]: SOURCE for ganesha's export (or PATH on it).
mh_source() {
	echo "127.0.0.1:$H_NFS_PORT:${1:-$H_EXPORT}"
}

# mh_mount DIR [OPTS]: mount the export on DIR (created) with -o
# mountport=...,OPTS; stdout/stderr to $H_DIR/mount.out. Returns the exit
# status of mount.gridvfs.
mh_mount() {
	local dir=$1 opts="mountport=$H_MNT_PORT${2:+,$2}"
	mkdir -p "$dir"
	MH_MNTS+=("$dir")
	h_log "mount.gridvfs $(mh_source) $dir -o $opts"
	timeout -k 5 60 "$MH_BIN" "$(mh_source)" "$dir" -o "$opts" >"$H_DIR/mount.out" 2>&1
}

# mh_run_mount ARGS...: run mount.gridvfs with ARGS, output in
# $H_DIR/mount.out, status in MH_RC.
mh_run_mount() {
	timeout -k 5 60 "$MH_BIN" "$@" >"$H_DIR/mount.out" 2>&1
	MH_RC=$?
	h_log "mount.gridvfs $* -> $MH_RC: $(tr '\n' ' ' <"$H_DIR/mount.out")"
}

mh_mounted() {
	grep -qF " $1 fuse.gridvfs " /proc/self/mountinfo ||
		awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo
}

# mh_live PATTERN: pids (not zombies) whose command line matches PATTERN.
mh_live() {
	local pid
	for pid in $(pgrep -f -- "$1"); do
		[ "$pid" = $$ ] && continue
		ps -o stat= -p "$pid" 2>/dev/null | grep -q '^[^Z]' && echo "$pid"
	done
}

# mh_nothing_left WHAT: fail unless no gridvfsd for our ganesha and no
# mount.gridvfs for our work dir runs, and nothing is mounted below it.
mh_nothing_left() {
	local n=0 p
	while [ $n -lt 50 ]; do
		p="$(mh_live "gridvfsd .*--role client.*--upstream 127.0.0.1:$H_NFS_PORT ")$(mh_live "mount.gridvfs .*$H_DIR")"
		[ -z "$p" ] && ! grep -qF "$H_DIR/" /proc/self/mountinfo && return 0
		sleep 0.1
		n=$((n + 1))
	done
	h_fail "$1: left behind: pids [$p] mounts [$(grep -F "$H_DIR/" /proc/self/mountinfo | cut -d' ' -f5)]"
}

# mh_expect RC REGEX WHAT: the last mh_run_mount exited RC and said REGEX.
mh_expect() {
	[ "$MH_RC" = "$1" ] || h_fail "$3: exit $MH_RC, want $1: $(cat "$H_DIR/mount.out")"
	grep -qE -- "$2" "$H_DIR/mount.out" || h_fail "$3: message lacks /$2/: $(cat "$H_DIR/mount.out")"
	mh_nothing_left "$3"
}
