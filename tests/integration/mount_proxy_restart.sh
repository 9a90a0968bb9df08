#!/bin/bash
# mount_proxy_restart: a dead client-role gridvfsd must not freeze the node.
# mount.gridvfs supervises the gridvfsd it started and starts it again at
# once on the same port; calls in flight are resent (libnfs reconnects),
# like a hard NFS mount whose server came back. A 48 MiB copy into the
# mount survives kill -9 of gridvfsd in its middle, bit-identical on disk;
# an idle kill is followed by working reads; umount leaves nothing behind.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
mh_init mount_proxy_restart
h_ganesha
M="$H_DIR/mnt"
E="$H_EXPORT"
h_take_port LP
mh_mount "$M" "localport=$LP" || h_fail "mount failed: $(cat "$H_DIR/mount.out")"
pid_of_proxy() { mh_live "gridvfsd .*--listen 127.0.0.1:$LP "; }
p1=$(pid_of_proxy)
[ -n "$p1" ] || h_fail "no gridvfsd on port $LP"

head -c $((48 << 20)) /dev/urandom >"$H_DIR/src"
want=$(h_sha256 "$H_DIR/src")
dd if="$H_DIR/src" of="$M/f" bs=256k status=none 2>"$H_DIR/err" &
cpid=$!
# Kill it once the copy is under way (some data on the store already).
for _ in $(seq 100); do
	[ "$(stat -c %s "$E/f" 2>/dev/null || echo 0)" -gt $((4 << 20)) ] && break
	sleep 0.05
done
kill -KILL "$p1"
h_log "killed gridvfsd $p1 at $(stat -c %s "$E/f") bytes on disk"
for _ in $(seq 600); do
	kill -0 "$cpid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$cpid" 2>/dev/null && h_fail "the copy hangs 60 s after gridvfsd was killed"
wait "$cpid" || h_fail "the copy failed after gridvfsd was killed: $(cat "$H_DIR/err")"
[ "$(h_sha256 "$E/f")" = "$want" ] || h_fail "file written across the restart differs on disk"
p2=$(pid_of_proxy)
[ -n "$p2" ] && [ "$p2" != "$p1" ] || h_fail "no new gridvfsd (old $p1, now '$p2')"

# Idle: the next calls find the restarted proxy.
kill -KILL "$p2"
got=$(timeout 60 sha256sum <"$M/f" | cut -d' ' -f1) || h_fail "read after an idle kill hung or failed"
[ "$got" = "$want" ] || h_fail "read after an idle kill differs"
p3=$(pid_of_proxy)
[ -n "$p3" ] && [ "$p3" != "$p2" ] || h_fail "no third gridvfsd"

timeout 30 umount "$M" || h_fail "umount"
mh_nothing_left "after umount"
h_pass
