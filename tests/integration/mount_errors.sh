#!/bin/bash
# mount_errors: each way a mount can fail gives its own exit status and a
# clear message, and leaves no gridvfsd, no mount.gridvfs and no mount
# behind: missing and busy mount points, an unreachable store, a path that
# is not exported, a gridvfsd that refuses an option, an unreachable
# proxy=. Then the life cycle: umount stops the proxy (and frees its
# port); a SIGKILLed FUSE process takes its proxy along and leaves a dead
# mount that umount clears.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
mh_init mount_errors
h_ganesha
M="$H_DIR/mnt"
mkdir -p "$M"

mh_run_mount "$(mh_source)" "$H_DIR/nonexistent" -o "mountport=$H_MNT_PORT"
mh_expect 32 "mount point .*nonexistent: No such file" "missing mount point"

touch "$H_DIR/file"
mh_run_mount "$(mh_source)" "$H_DIR/file" -o "mountport=$H_MNT_PORT"
mh_expect 32 "not a directory" "file as mount point"

h_take_port DEAD
mh_run_mount "127.0.0.1:$DEAD:$H_EXPORT" "$M" -o "mountport=$DEAD,timeout=3"
mh_expect 33 "cannot reach the store at 127.0.0.1:$DEAD: Connection refused" "unreachable store"

mh_run_mount "$(mh_source)" "$M" -o "mountport=$DEAD,timeout=3"
mh_expect 33 "cannot reach the store at 127.0.0.1:$DEAD" "unreachable MOUNT port"

mh_run_mount "$(mh_source /not/exported)" "$M" -o "mountport=$H_MNT_PORT"
mh_expect 34 "/not/exported is not exported by 127.0.0.1" "non-exported path"

mh_run_mount "$(mh_source)" "$M" -o "mountport=$H_MNT_PORT,no-such-option=1"
mh_expect 35 "unrecognized option '--no-such-option'" "option gridvfsd refuses"
grep -q "gridvfsd exited with status 2 before it was ready" "$H_DIR/mount.out" ||
	h_fail "refused option: no exit status in: $(cat "$H_DIR/mount.out")"

mh_run_mount "$(mh_source)" "$M" -o "mountport=$H_MNT_PORT,gridvfsd=$H_DIR/no-gridvfsd"
mh_expect 35 "cannot run .*no-gridvfsd" "missing gridvfsd"

mh_run_mount "$(mh_source)" "$M" -o "proxy=127.0.0.1:$DEAD,timeout=3"
mh_expect 33 "cannot reach gridvfsd \(proxy=\) at 127.0.0.1:$DEAD" "unreachable proxy="

mh_run_mount "$(mh_source)" "$M" -o "rsize=12"
mh_expect 1 "rsize=12" "bad option value"

# A working mount: the helper returns once it works, then umount ends it all.
mh_mount "$M" || h_fail "mount failed: $(cat "$H_DIR/mount.out")"
mh_mounted "$M" || h_fail "not mounted after mount.gridvfs returned"
echo data >"$H_EXPORT/f" && [ "$(cat "$M/f")" = data ] || h_fail "mount does not serve the export"
PX=$(mh_live "gridvfsd .*--role client.*--upstream 127.0.0.1:$H_NFS_PORT ")
[ "$(echo "$PX" | wc -w)" = 1 ] || h_fail "expected one gridvfsd, found [$PX]"
PXPORT=$(tr '\0' ' ' </proc/"$PX"/cmdline | sed -n 's/.*--listen 127.0.0.1:\([0-9]*\).*/\1/p')
[ -n "$PXPORT" ] && ss -ltn | grep -q ":$PXPORT " || h_fail "proxy port $PXPORT not listening"

mh_run_mount "$(mh_source)" "$M" -o "mountport=$H_MNT_PORT"
[ "$MH_RC" = 32 ] && grep -q "busy: already a mount point" "$H_DIR/mount.out" ||
	h_fail "busy mount point: exit $MH_RC: $(cat "$H_DIR/mount.out")"
[ "$(mh_live "gridvfsd .*--role client.*--upstream 127.0.0.1:$H_NFS_PORT ")" = "$PX" ] ||
	h_fail "busy mount point started or stopped a proxy"

timeout 20 umount "$M" || h_fail "umount failed"
mh_nothing_left "after umount"
! ss -ltn | grep -q ":$PXPORT " || h_fail "proxy port $PXPORT still listening after umount"

# SIGKILL the FUSE process: its proxy must go too (PR_SET_PDEATHSIG); the
# dead mount answers ENOTCONN until umount clears it.
mh_mount "$M" || h_fail "second mount failed: $(cat "$H_DIR/mount.out")"
FP=$(mh_live "mount.gridvfs .*$M")
PX=$(mh_live "gridvfsd .*--role client.*--upstream 127.0.0.1:$H_NFS_PORT ")
[ -n "$FP" ] && [ -n "$PX" ] || h_fail "no FUSE process [$FP] or proxy [$PX]"
kill -KILL $FP
for _ in $(seq 50); do [ -z "$(mh_live "gridvfsd .*--role client.*--upstream 127.0.0.1:$H_NFS_PORT ")" ] && break; sleep 0.1; done
[ -z "$(mh_live "gridvfsd .*--role client.*--upstream 127.0.0.1:$H_NFS_PORT ")" ] ||
	h_fail "proxy $PX outlived its SIGKILLed FUSE process"
stat "$M" >/dev/null 2>"$H_DIR/stat.err" && h_fail "dead mount still answers"
grep -q "not connected" "$H_DIR/stat.err" || h_fail "dead mount: $(cat "$H_DIR/stat.err")"
mh_run_mount "$(mh_source)" "$M" -o "mountport=$H_MNT_PORT"
[ "$MH_RC" = 32 ] && grep -q "dead gridvfs mount" "$H_DIR/mount.out" ||
	h_fail "mount over a dead mount: exit $MH_RC: $(cat "$H_DIR/mount.out")"
timeout 20 umount "$M" || h_fail "umount of the dead mount failed"
mh_nothing_left "after SIGKILL + umount"

# And it mounts again at once.
mh_mount "$M" "foreground" &
for _ in $(seq 100); do mh_mounted "$M" && break; sleep 0.1; done
mh_mounted "$M" || h_fail "foreground mount did not come up"
[ "$(cat "$M/f")" = data ] || h_fail "foreground mount does not serve the export"
timeout 20 fusermount3 -u "$M" || h_fail "fusermount3 -u failed"
wait $! || h_fail "foreground mount.gridvfs exited $? after fusermount3 -u"
mh_nothing_left "after fusermount3 -u"
h_pass
