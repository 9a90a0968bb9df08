#!/bin/bash
# mount_jukebox: NFS3ERR_JUKEBOX ("not now, try later", what ganesha says in
# its grace period) must never reach an application as EAGAIN: mount.gridvfs
# resends the call after a delay, like the kernel NFS client. A relay
# (tests/tools/rpcfault.py) between the FUSE mount and the client-role
# gridvfsd answers the first CREATE, SETATTR and LOOKUP calls with JUKEBOX;
# creat, truncate-on-open, utimes and stat must all succeed, with the data
# on disk, and each injected reply must have been resent.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
mh_init mount_jukebox
h_ganesha
h_gridvfsd
M="$H_DIR/mnt"
E="$H_EXPORT"
h_take_port FP
# JUKEBOX for the first 3 calls each of CREATE (8), SETATTR (2) and
# LOOKUP (3) once armed.
python3 "$top_srcdir/tests/tools/rpcfault.py" "$FP" "$H_PX_PORT" --log "$H_DIR/fault.log" \
	--jukebox 8:3,2:3,3:3 --arm "$H_DIR/armed" </dev/null >>"$H_DIR/fault.out" 2>&1 &
H_PIDS+=($!)
h_wait_tcp "$FP" 20 $! || h_fail "rpcfault did not start"
mh_mount "$M" "proxy=127.0.0.1:$FP" || h_fail "mount failed: $(cat "$H_DIR/mount.out")"
# Armed only now: the mount's own calls are not the point.
: >"$H_DIR/armed"

t0=$(date +%s%N)
(echo data >"$M/j1") 2>"$H_DIR/err" || h_fail "create under JUKEBOX: $(cat "$H_DIR/err")"
t1=$(date +%s%N)
[ "$(cat "$E/j1")" = data ] || h_fail "created file's data on disk"
[ "$(grep -c '^jukebox 8 ' "$H_DIR/fault.log")" = 3 ] || h_fail "CREATE JUKEBOX replies: $(grep -c '^jukebox 8 ' "$H_DIR/fault.log") (want 3)"
# 3 waits of 100, 200 and 400 ms before the CREATE that worked.
[ $(((t1 - t0) / 1000000)) -ge 600 ] || h_fail "create returned after $(((t1 - t0) / 1000000)) ms: no back-off"
touch -d '2001-02-03 04:05:06' "$M/j1" 2>"$H_DIR/err" || h_fail "utimes under JUKEBOX: $(cat "$H_DIR/err")"
[ "$(stat -c %Y "$E/j1")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || h_fail "mtime on disk"
(: >"$M/j1") 2>"$H_DIR/err" || h_fail "O_TRUNC under JUKEBOX: $(cat "$H_DIR/err")"
[ "$(stat -c %s "$E/j1")" = 0 ] || h_fail "O_TRUNC on disk"
[ "$(grep -c '^jukebox 2 ' "$H_DIR/fault.log")" = 3 ] || h_fail "SETATTR JUKEBOX replies: $(grep -c '^jukebox 2 ' "$H_DIR/fault.log")"
[ "$(grep -c '^jukebox 3 ' "$H_DIR/fault.log")" = 3 ] || h_fail "LOOKUP JUKEBOX replies: $(grep -c '^jukebox 3 ' "$H_DIR/fault.log")"
timeout 20 umount "$M" || h_fail "umount"
h_pass
