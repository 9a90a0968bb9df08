#!/bin/bash
# fault_kill_matrix: kill -9 of a daemon in the middle of a copy through
# the proxy, then a restart on the same port (and the same cache dir), for
# the combinations of (daemon killed) x (write policy) that no other test
# covers.  Already covered: server role x write-through
# (fault_server_role_kill.sh), ganesha x write-through
# (proxy_upstream_restart.sh).  Here:
#   1. client role, write-through: a 48 MiB write (nfswriter) and a 128 MiB
#      read (nfs-cp, with the read cache on) through the proxy;
#   2. client role, write-back: a 48 MiB write; the dirty log survives and
#      its verifier is kept, so the client resends nothing;
#   3. server role (mTLS) under a write-back client role: a 48 MiB write;
#   4. ganesha under a write-back client role (over a 5 ms link): a 48 MiB
#      write; upstream's verifier changes and the proxy, not the client,
#      resends what was written but not committed.
# The writer acts as a real client: it reconnects and resends the WRITE
# that had no answer, and after its COMMIT resends what a changed
# verifier says was lost.  After each: every byte written is upstream
# (after the COMMIT), the read returned exactly the file, and a new
# client is served without anyone restarting anything by hand.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init fault_kill_matrix
GV="$top_builddir/gridvfs"
WR="python3 $top_srcdir/tests/tools/nfswriter.py"
MB=${KILL_MB:-48}
KILL_AT=$(((MB / 4) << 20))

h_ganesha
chmod 1777 "$H_EXPORT"

# daemon NAME PORT ARGS...: gridvfsd on 127.0.0.1:PORT (a restart reuses
# the port), logging to NAME.log; the pid goes to DPID.
daemon() {
	local name=$1 port=$2
	shift 2
	"$top_builddir/gridvfsd" -c /dev/null --listen "127.0.0.1:$port" \
		--foreground --log-level debug --control none "$@" \
		</dev/null >>"$H_DIR/$name.log" 2>&1 &
	DPID=$!
	H_PIDS+=("$DPID")
	h_wait_tcp "$port" 20 "$DPID" || h_fail "$name did not start on $port: $(tail -n 3 "$H_DIR/$name.log")"
	h_log "$name pid $DPID port $port: $*"
}
kill9() {
	disown "$1" 2>/dev/null
	kill -KILL "$1"
	h__wait_gone "$1" 10 || h_fail "pid $1 survived SIGKILL"
	h__forget_pid "$1"
}
progress() { cat "$1" 2>/dev/null || echo 0; }
fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }
url() { printf 'nfs://127.0.0.1%s%s?version=3&nfsport=%s&mountport=%s\n' "$H_EXPORT" "$2" "$1" "$1"; }

# write_with_kill CASE PORT RESTART: nfswriter writes CASE.bin ($MB MiB)
# through the proxy on PORT; once KILL_AT bytes are answered, RESTART (a
# function) kills a daemon and starts it again.  Then the writer finishes
# (reconnecting as needed) and COMMITs; every chunk must be upstream.
write_with_kill() {
	local c=$1 port=$2 restart=$3 pid n
	touch "$H_EXPORT/$c.bin" && chmod 666 "$H_EXPORT/$c.bin"
	$WR write 127.0.0.1 "$port" "$H_EXPORT" "/$c.bin" --mib "$MB" --tag "$c" \
		--progress "$H_DIR/$c.progress" --commit --reconnect 60 --timeout 120 \
		>"$H_DIR/$c.out" 2>"$H_DIR/$c.err" &
	pid=$!
	for ((n = 0; n < 3000; n++)); do
		[ "$(progress "$H_DIR/$c.progress")" -ge "$KILL_AT" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	kill -0 "$pid" 2>/dev/null || h_fail "$c: the writer ended before the kill: $(tail -n 2 "$H_DIR/$c.err")"
	h_log "$c: kill -9 at $(progress "$H_DIR/$c.progress") bytes answered"
	$restart
	h_log "$c: restarted"
	timeout -k 5 120 tail --pid="$pid" -f /dev/null
	wait "$pid" || h_fail "$c: the writer failed after the restart: $(tail -n 3 "$H_DIR/$c.err")"
	h_log "$c: writer: $(cat "$H_DIR/$c.out")"
	$WR check "$H_EXPORT/$c.bin" --mib "$MB" --tag "$c" >>"$H_DIR/test.log" ||
		h_fail "$c: upstream differs from what was written and COMMITted"
	[ "$(fsize "$H_EXPORT/$c.bin")" -eq $((MB << 20)) ] ||
		h_fail "$c: upstream size $(fsize "$H_EXPORT/$c.bin")"
}

# served PORT CASE: a new client writes and reads back through PORT.
served() {
	head -c 300000 /dev/urandom >"$H_DIR/small"
	rm -f "$H_DIR/small.back"
	timeout -k 5 60 nfs-cp "$H_DIR/small" "$(url "$1" "/$2.small")" >/dev/null 2>&1 &&
		timeout -k 5 60 nfs-cp "$(url "$1" "/$2.small")" "$H_DIR/small.back" >/dev/null 2>&1 &&
		cmp -s "$H_DIR/small" "$H_DIR/small.back" ||
		h_fail "$2: a new client is not served after the restart"
}

# --- 1. client role, write-through -----------------------------------------
h_take_port P1
P1_ARGS=(--role client --upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT"
	--cache-dir "$H_DIR/c1" --write-policy through)
daemon px1 "$P1" "${P1_ARGS[@]}"
PX1=$DPID
restart_px1() { kill9 "$PX1"; sleep 0.3; daemon px1 "$P1" "${P1_ARGS[@]}"; PX1=$DPID; }
write_with_kill wt "$P1" restart_px1
grep -q "^acked $((MB * 16)) nospc 0 reconnects [1-9]" "$H_DIR/wt.out" ||
	h_fail "wt: the writer never lost its connection (kill too late?): $(cat "$H_DIR/wt.out")"

# The read: nfs-cp through the proxy with the cache on, killed mid-copy.
head -c $((128 << 20)) /dev/urandom >"$H_EXPORT/rt.bin"
rm -f "$H_DIR/rt.out"
timeout -k 5 120 nfs-cp "$(url "$P1" /rt.bin)" "$H_DIR/rt.out" >"$H_DIR/rt.cp.log" 2>&1 &
CP=$!
for ((n = 0; n < 3000; n++)); do
	[ "$(fsize "$H_DIR/rt.out")" -ge $((32 << 20)) ] && break
	kill -0 "$CP" 2>/dev/null || break
	sleep 0.01
done
kill -0 "$CP" 2>/dev/null || h_fail "rt: the copy ended before the kill"
h_log "rt: kill -9 at $(fsize "$H_DIR/rt.out") bytes read"
restart_px1
wait "$CP"
rc=$?
[ $rc -eq 124 ] || [ $rc -eq 137 ] && h_fail "rt: the copy hung after the restart"
if [ $rc -eq 0 ]; then
	cmp -s "$H_EXPORT/rt.bin" "$H_DIR/rt.out" || h_fail "rt: the copy succeeded with wrong data"
	h_log "rt: the copy completed across the restart"
else
	# As a user would: copy again, from the restarted proxy's cache.
	h_log "rt: the copy failed ($rc): $(tail -n 1 "$H_DIR/rt.cp.log"); copying again"
	rm -f "$H_DIR/rt.out"
	timeout -k 5 120 nfs-cp "$(url "$P1" /rt.bin)" "$H_DIR/rt.out" >>"$H_DIR/rt.cp.log" 2>&1 ||
		h_fail "rt: the copy failed again after the restart"
	cmp -s "$H_EXPORT/rt.bin" "$H_DIR/rt.out" || h_fail "rt: the second copy returned wrong data"
fi
rm -f "$H_DIR/rt.out" "$H_EXPORT/rt.bin"
served "$P1" wt
h_stop_pid "$PX1" || h_fail "wt: proxy exit status"

# --- 2. client role, write-back --------------------------------------------
h_take_port P2
P2_ARGS=(--role client --upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT"
	--cache-dir "$H_DIR/c2" --write-policy back)
daemon px2 "$P2" "${P2_ARGS[@]}"
PX2=$DPID
restart_px2() { kill9 "$PX2"; sleep 0.3; daemon px2 "$P2" "${P2_ARGS[@]}"; PX2=$DPID; }
write_with_kill wb "$P2" restart_px2
grep -q "^acked $((MB * 16)) nospc 0 reconnects [1-9][0-9]* resent 0 " "$H_DIR/wb.out" ||
	h_fail "wb: expected reconnects and no resend (the log is kept): $(cat "$H_DIR/wb.out")"
grep -q "verifier .* (kept)" "$H_DIR/px2.log" || h_fail "wb: the restarted proxy did not keep its verifier"
served "$P2" wb
h_stop_pid "$PX2" || h_fail "wb: proxy exit status"

# --- 3. server role (mTLS) under a write-back client role --------------------
CA=$H_DIR/ca
{ $GV ca init "$CA" && $GV ca issue "$CA" --name store --server 127.0.0.1; } >/dev/null 2>&1 ||
	h_fail "ca failed"
DN=$($GV ca issue "$CA" --name node | tail -n 1 | sed 's/ ACCOUNT$//')
echo "$DN root" >"$H_DIR/grid-mapfile"
h_take_port SP
S_ARGS=(--role server --upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT"
	--squash none --tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt"
	--grid-mapfile "$H_DIR/grid-mapfile")
daemon store "$SP" "${S_ARGS[@]}"
SPID=$DPID
h_take_port P3
daemon node "$P3" --role client --upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP" \
	--tls-cert "$CA/node.crt" --tls-key "$CA/node.key" --tls-ca "$CA/ca.crt" \
	--cache-dir "$H_DIR/c3" --write-policy back
NODE=$DPID
restart_store() { kill9 "$SPID"; sleep 0.5; daemon store "$SP" "${S_ARGS[@]}"; SPID=$DPID; }
write_with_kill sb "$P3" restart_store
[ "$(grep -c "upstream nfs: TLS up" "$H_DIR/node.log")" -ge 2 ] ||
	h_fail "sb: the client role did not redo TLS with the restarted server role"
served "$P3" sb
h_stop_pid "$NODE" || h_fail "sb: client role exit status"
h_stop_pid "$SPID" || h_fail "sb: server role exit status"

# --- 4. ganesha under a write-back client role --------------------------------
# A 5 ms link keeps flush WRITEs in flight, so COMMITs come every 16 MiB
# and the kill finds data written upstream but not yet committed.
h_relay R4 "$H_NFS_PORT" --delay-ms 5
h_take_port P4
daemon px4 "$P4" --role client --upstream "127.0.0.1:$R4" \
	--mount-upstream "127.0.0.1:$H_MNT_PORT" --cache-dir "$H_DIR/c4" --write-policy back
PX4=$DPID
# (the port can stay busy for a moment after the kill: wait until it is free)
restart_ganesha() {
	h_ganesha_stop KILL
	for ((n = 0; n < 100; n++)); do
		ss -Htan "sport = :$H_NFS_PORT" | grep -q . || break
		sleep 0.1
	done
	ss -tan "sport = :$H_NFS_PORT" >>"$H_DIR/test.log"
	h__ganesha_start
}
write_with_kill gb "$P4" restart_ganesha
grep -q " resent 0 " "$H_DIR/gb.out" ||
	h_fail "gb: the client had to resend: the proxy's verifier changed: $(cat "$H_DIR/gb.out")"
grep -q "verifier changed: resending" "$H_DIR/px4.log" ||
	h_fail "gb: the proxy never saw upstream's verifier change (nothing uncommitted at the kill?)"
served "$P4" gb
h_stop_pid "$PX4" || h_fail "gb: proxy exit status"
h_pass
