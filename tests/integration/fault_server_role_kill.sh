#!/bin/bash
# fault_server_role_kill: the server-role gridvfsd (mTLS, in front of
# ganesha) is kill -9'd and restarted on the same port while copies run
# through the client role, once writing and once reading.  The client role
# reconnects (RFC 9289 probe, TLS again) and resends its pending calls; each
# copy finishes bit-identical or fails with a non-zero exit, never succeeds
# with wrong data, never hangs; new clients are served afterwards.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init fault_server_role_kill
GV="$top_builddir/gridvfs"
MB=${FAULT_MB:-128}
KILL_AT=$((16 << 20))

h_ganesha
chmod 1777 "$H_EXPORT"
CA=$H_DIR/ca
{ $GV ca init "$CA" && $GV ca issue "$CA" --name store --server 127.0.0.1; } >/dev/null 2>&1 ||
	h_fail "ca failed"
DN=$($GV ca issue "$CA" --name node | tail -n 1 | sed 's/ ACCOUNT$//')
echo "$DN root" >"$H_DIR/grid-mapfile"
SARGS=(--role server --squash none --tls-cert "$CA/store.crt" --tls-key "$CA/store.key"
	--tls-ca "$CA/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" --control none)
h_gridvfsd_at store "$H_NFS_PORT" "$H_MNT_PORT" "${SARGS[@]}"
SP=$H_AT_PORT SPID=$H_AT_PID
h_gridvfsd_at node "$SP" "$SP" --role client --tls-cert "$CA/node.crt" \
	--tls-key "$CA/node.key" --tls-ca "$CA/ca.crt" --control none
H_PX_PORT=$H_AT_PORT
head -c $((MB << 20)) /dev/urandom >"$H_DIR/in.bin"
want=$(h_sha256 "$H_DIR/in.bin")
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Restart the server role on the same port (the old one is SIGKILLed).
restart_store() {
	kill -KILL "$SPID"
	wait "$SPID" 2>/dev/null
	sleep 0.5
	"$top_builddir/gridvfsd" -c /dev/null --listen "127.0.0.1:$SP" \
		--upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT" \
		--foreground --log-level debug "${SARGS[@]}" </dev/null >>"$H_DIR/store2.log" 2>&1 &
	SPID=$!
	H_PIDS+=("$SPID")
	h_wait_tcp "$SP" 20 "$SPID" || h_fail "the server role did not come back on $SP"
}

copy_with_kill() { # phase src dst progress-file
	local phase=$1 pid rc n
	timeout -k 5 240 nfs-cp "$2" "$3" >"$H_DIR/cp-$phase.log" 2>&1 &
	pid=$!
	for ((n = 0; n < 6000; n++)); do
		[ "$(fsize "$4")" -ge "$KILL_AT" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	kill -0 "$pid" 2>/dev/null || h_fail "$phase: copy ended before the kill (raise FAULT_MB)"
	h_log "$phase: kill -9 of the server role at $(fsize "$4") bytes"
	restart_store
	wait "$pid"
	rc=$?
	[ $rc -eq 124 ] || [ $rc -eq 137 ] && h_fail "$phase: copy hung after the server role died"
	OUTCOME=$([ $rc -eq 0 ] && echo completed || echo "failed($rc)")
	h_log "$phase: $OUTCOME"
}

copy_with_kill write "$H_DIR/in.bin" "$(h_url_proxy /w.bin)" "$H_EXPORT/w.bin"
[ "$OUTCOME" = completed ] && [ "$(h_sha256 "$H_EXPORT/w.bin")" != "$want" ] &&
	h_fail "write: reported success but the file on disk differs"
cp "$H_DIR/in.bin" "$H_EXPORT/r.bin"
copy_with_kill read "$(h_url_proxy /r.bin)" "$H_DIR/out.bin" "$H_DIR/out.bin"
[ "$OUTCOME" = completed ] && [ "$(h_sha256 "$H_DIR/out.bin")" != "$want" ] &&
	h_fail "read: reported success but returned different data"
grep -q "TLS up" "$H_DIR/node.log" || h_fail "the client role never reported TLS up"
[ "$(grep -c "upstream nfs: TLS up" "$H_DIR/node.log")" -ge 2 ] ||
	h_fail "the client role did not redo TLS after the server role came back"
head -c 1000000 /dev/urandom >"$H_DIR/small"
nfs-cp "$H_DIR/small" "$(h_url_proxy /small)" >/dev/null 2>&1 &&
	cmp -s "$H_DIR/small" "$H_EXPORT/small" || h_fail "no service for a new client after the restarts"
h_pass
