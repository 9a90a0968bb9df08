#!/bin/bash
# mount_hang: a proxy that stops answering must not freeze the node. Through
# an external client-role gridvfsd (proxy=), stopped with SIGSTOP:
#  - hard (default): a call waits, and completes once the proxy answers
#    again (like a hard NFS mount);
#  - soft,timeo=10,retrans=1: a call fails with EIO after ~2 s (nfs(5)),
#    and the mount works again once the proxy does;
#  - umount -f releases a waiting process at once;
#  - umount -l releases it too (the helper aborts the FUSE connection once
#    the mount is gone and a call has waited 3 s), and the helper exits.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
mh_init mount_hang
h_ganesha
h_gridvfsd
E="$H_EXPORT"
echo hello >"$E/a"
stopped=0
pause() { kill -STOP "$H_PX_PID"; stopped=1; sleep 1.5; }   # > 1 s attribute cache
resume() { kill -CONT "$H_PX_PID"; stopped=0; }
trap 'rc=$?; [ $stopped = 1 ] && kill -CONT "$H_PX_PID"; mh__unmount_all; (exit $rc); h__teardown' EXIT
# running PID: 0 while PID runs (not a zombie)
running() { kill -0 "$1" 2>/dev/null; }
helper_of() { mh_live "mount.gridvfs .*$1"; }

# --- hard ------------------------------------------------------------------
M="$H_DIR/hard"
mh_mount "$M" "proxy=127.0.0.1:$H_PX_PORT" || h_fail "mount failed: $(cat "$H_DIR/mount.out")"
[ "$(cat "$M/a")" = hello ] || h_fail "read before the pause"
pause
cat "$M/a" >"$H_DIR/hard.out" 2>&1 & c=$!
sleep 3
running $c || h_fail "hard: the call ended while the proxy was stopped: $(cat "$H_DIR/hard.out")"
resume
for _ in $(seq 100); do running $c || break; sleep 0.1; done
running $c && h_fail "hard: the call still waits 10 s after the proxy is back"
wait $c && [ "$(cat "$H_DIR/hard.out")" = hello ] || h_fail "hard: after the pause: $(cat "$H_DIR/hard.out")"
timeout 20 umount "$M" || h_fail "umount hard"

# --- soft ------------------------------------------------------------------
M="$H_DIR/soft"
mh_mount "$M" "proxy=127.0.0.1:$H_PX_PORT,soft,timeo=10,retrans=1" || h_fail "soft mount failed: $(cat "$H_DIR/mount.out")"
[ "$(cat "$M/a")" = hello ] || h_fail "soft: read before the pause"
pause
t0=$(date +%s%N)
timeout 30 cat "$M/a" >"$H_DIR/soft.out" 2>&1 && h_fail "soft: read worked with the proxy stopped"
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "Input/output error" "$H_DIR/soft.out" || h_fail "soft: $(cat "$H_DIR/soft.out") (want EIO)"
[ $ms -ge 1500 ] && [ $ms -lt 15000 ] || h_fail "soft: failed after $ms ms (want ~2000)"
resume
sleep 0.5
[ "$(cat "$M/a")" = hello ] || h_fail "soft: read after the proxy is back"
timeout 20 umount "$M" || h_fail "umount soft"

# --- umount -f / -l release waiters ------------------------------------------
for how in -f -l; do
	M="$H_DIR/um$how"
	mh_mount "$M" "proxy=127.0.0.1:$H_PX_PORT" || h_fail "mount ($how) failed: $(cat "$H_DIR/mount.out")"
	[ "$(cat "$M/a")" = hello ] || h_fail "$how: read before the pause"
	pause
	cat "$M/a" >"$H_DIR/um.out" 2>&1 & c=$!
	sleep 1
	running $c || h_fail "$how: the call did not wait"
	umount "$how" "$M" 2>"$H_DIR/err"
	# -f may answer "busy" while it aborts; the waiter must end either way.
	for _ in $(seq 150); do running $c || break; sleep 0.1; done
	running $c && h_fail "umount $how left the waiting process blocked ($(cat "$H_DIR/err"))"
	wait $c && h_fail "$how: the waiting read succeeded?"
	h_log "umount $how: waiter ended with: $(cat "$H_DIR/um.out")"
	mh_mounted "$M" && timeout 10 umount "$M"
	resume
	for _ in $(seq 100); do [ -z "$(helper_of "$M")" ] && break; sleep 0.1; done
	[ -z "$(helper_of "$M")" ] || h_fail "$how: mount.gridvfs still runs"
	mh_mounted "$M" && h_fail "$how: still mounted"
done
h_pass
