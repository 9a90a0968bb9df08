#!/bin/bash
# sec_daemon: issue 16 items 10, 11 and 12, the daemon's own edges.
# pidfile_symlink: a pid file path that is a symlink planted by a local
# user (or a FIFO, or a hard link) is refused with a reason; its target is
# left alone.  startup_stderr: a detaching daemon that fails at start-up
# (a malformed grid-mapfile) says why on stderr before exiting 1.
# crl_reload: a certificate revoked while its connection is up loses that
# connection when SIGHUP loads the new CRL.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init sec_daemon
GV="$top_builddir/gridvfs"
BIN="$top_builddir/gridvfsd"

h_ganesha
h_take_port P

# --- case pidfile_symlink (item 10) -----------------------------------------
mkdir -m 1777 "$H_DIR/shared"
echo "precious" >"$H_DIR/victim"
ln -s "$H_DIR/victim" "$H_DIR/shared/gridvfsd.pid"
timeout 20 "$BIN" -c /dev/null -F --listen "127.0.0.1:$P" --upstream "127.0.0.1:$H_NFS_PORT" \
	--mount-upstream "127.0.0.1:$H_MNT_PORT" --control none \
	--pidfile "$H_DIR/shared/gridvfsd.pid" >"$H_DIR/pid1.log" 2>&1
rc=$?
[ "$rc" = 1 ] || h_fail "pidfile_symlink: gridvfsd exited $rc with a symlinked pid file, want 1"
[ "$(cat "$H_DIR/victim")" = precious ] ||
	h_fail "pidfile_symlink: the symlink's target was overwritten: $(cat "$H_DIR/victim")"
grep -q "cannot write pid file .*symbolic link" "$H_DIR/pid1.log" ||
	h_fail "pidfile_symlink: no reason given: $(cat "$H_DIR/pid1.log")"
# A FIFO must neither hang the start nor be written.
rm "$H_DIR/shared/gridvfsd.pid"
mkfifo "$H_DIR/shared/gridvfsd.pid"
timeout 20 "$BIN" -c /dev/null -F --listen "127.0.0.1:$P" --upstream "127.0.0.1:$H_NFS_PORT" \
	--mount-upstream "127.0.0.1:$H_MNT_PORT" --control none \
	--pidfile "$H_DIR/shared/gridvfsd.pid" >"$H_DIR/pid2.log" 2>&1
rc=$?
[ "$rc" = 1 ] || h_fail "pidfile_fifo: gridvfsd exited $rc with a FIFO as pid file, want 1"
grep -q "cannot write pid file .*not a regular file" "$H_DIR/pid2.log" ||
	h_fail "pidfile_fifo: no reason given: $(cat "$H_DIR/pid2.log")"
# A hard link to a file elsewhere is refused too.
rm "$H_DIR/shared/gridvfsd.pid"
ln "$H_DIR/victim" "$H_DIR/shared/gridvfsd.pid"
timeout 20 "$BIN" -c /dev/null -F --listen "127.0.0.1:$P" --upstream "127.0.0.1:$H_NFS_PORT" \
	--mount-upstream "127.0.0.1:$H_MNT_PORT" --control none \
	--pidfile "$H_DIR/shared/gridvfsd.pid" >"$H_DIR/pid3.log" 2>&1
[ "$(cat "$H_DIR/victim")" = precious ] || h_fail "pidfile_hardlink: the link's target was overwritten"
# An ordinary stale pid file is still replaced.
rm "$H_DIR/shared/gridvfsd.pid"
echo 99999 >"$H_DIR/shared/gridvfsd.pid"
h_gridvfsd --pidfile "$H_DIR/shared/gridvfsd.pid"
[ "$(cat "$H_DIR/shared/gridvfsd.pid")" = "$H_PX_PID" ] ||
	h_fail "pidfile_regular: pid file holds '$(cat "$H_DIR/shared/gridvfsd.pid")', want $H_PX_PID"
h_gridvfsd_stop

# --- case startup_stderr (item 12) ------------------------------------------
CA=$H_DIR/ca
$GV ca init "$CA" >/dev/null && $GV ca issue "$CA" --name store --server 127.0.0.1 >/dev/null ||
	h_fail "ca failed"
echo '"/O=gridvfs/CN=node1 daemon' >"$H_DIR/bad-grid-mapfile" # unterminated quote
timeout 20 "$BIN" -c /dev/null --role server --listen "127.0.0.1:$P" \
	--upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT" \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--grid-mapfile "$H_DIR/bad-grid-mapfile" --control none \
	>"$H_DIR/detach.out" 2>"$H_DIR/detach.err"
rc=$?
[ "$rc" = 1 ] || h_fail "startup_stderr: a detaching daemon with a bad grid-mapfile exited $rc, want 1"
grep -q "grid-mapfile refused: .*bad-grid-mapfile:1" "$H_DIR/detach.err" ||
	h_fail "startup_stderr: the reason is not on stderr: '$(cat "$H_DIR/detach.err")'"
# A good start detaches, says nothing, and leaves no stderr behind.
timeout 20 "$BIN" -c /dev/null --listen "127.0.0.1:$P" --upstream "127.0.0.1:$H_NFS_PORT" \
	--mount-upstream "127.0.0.1:$H_MNT_PORT" --control none \
	--pidfile "$H_DIR/good.pid" >"$H_DIR/good.out" 2>"$H_DIR/good.err"
rc=$?
[ "$rc" = 0 ] || h_fail "startup_stderr: a good detached start exited $rc: $(cat "$H_DIR/good.err")"
GPID=$(cat "$H_DIR/good.pid")
H_PIDS+=("$GPID")
[ ! -s "$H_DIR/good.err" ] || h_fail "startup_stderr: a good start wrote to stderr: $(cat "$H_DIR/good.err")"
[ "$(readlink "/proc/$GPID/fd/2")" = /dev/null ] ||
	h_fail "startup_stderr: the running daemon still holds the starter's stderr ($(readlink "/proc/$GPID/fd/2"))"
kill -TERM "$GPID"

# --- case crl_reload (item 11) ------------------------------------------------
# node2's link is up when its certificate is revoked: SIGHUP's new CRL must
# close it, not only refuse its next handshake.
DN2=$($GV ca issue "$CA" --name node2 | tail -n 1 | sed 's/ ACCOUNT$//') || h_fail "ca issue node2 failed"
printf '%s daemon\n' "$DN2" >"$H_DIR/grid-mapfile"
echo hello >"$H_EXPORT/hello"
h_gridvfsd_at server "$H_NFS_PORT" "$H_MNT_PORT" --role server --log-level info \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--tls-crl "$CA/crl.pem" --grid-mapfile "$H_DIR/grid-mapfile"
SP=$H_AT_PORT SPID=$H_AT_PID
h_gridvfsd --tls-cert "$CA/node2.crt" --tls-key "$CA/node2.key" --tls-ca "$CA/ca.crt" \
	--upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP" --upstream-timeout 5
nfs-ls "$(h_url_proxy)" | grep -q hello || h_fail "crl_reload: the chain does not work before the revocation"
DN2Q=${DN2//\"/}
grep -q "TLS peer '$DN2Q'" "$H_DIR/server.log" || h_fail "crl_reload: node2 never connected"
$GV ca revoke "$CA" --name node2 >/dev/null || h_fail "crl_reload: ca revoke failed"
kill -HUP "$SPID"
for _ in $(seq 50); do
	grep -q "refused after the reload: certificate revoked" "$H_DIR/server.log" && break
	sleep 0.1
done
grep -q "client .* closed: TLS peer '$DN2Q' refused after the reload: certificate revoked" "$H_DIR/server.log" ||
	h_fail "crl_reload: the revoked peer's established connection stayed open after SIGHUP"
timeout 30 nfs-ls "$(h_url_proxy)" >/dev/null 2>&1 &&
	h_fail "crl_reload: the revoked node still reads through a new connection"
h_pass
