#!/bin/bash
# ops_reload.sh — SIGHUP re-reads the whole configuration file without
# dropping connections:
#  A. live settings apply at once (log-level, limits); settings fixed at
#     start-up (cache-size, listen) are logged as waiting for the next start
#     and keep their old value; a connection opened before keeps working.
#  B. a file with a syntax error or a bad value is refused with FILE:LINE
#     in the log and nothing changes.
#  C. server role: the grid-mapfile and TLS files are read again; a peer
#     whose DN left the grid-mapfile is disconnected with the reason, and
#     cannot come back until it is listed again.
. "$(dirname "$0")/../lib/harness.sh"
h_init ops_reload
export H_DIR
GV="$top_builddir/gridvfs"
h_ganesha
echo "hello" >"$H_EXPORT/hello.txt"
h_take_port P
CONF=$H_DIR/gridvfsd.conf
write_conf() { # LOG_LEVEL CACHE_SIZE [EXTRA LINE]
	cat >"$CONF" <<-EOF
		role = client
		listen = 127.0.0.1:$P
		upstream = 127.0.0.1:$H_NFS_PORT
		mount-upstream = 127.0.0.1:$H_MNT_PORT
		cache-dir = $H_DIR/cache
		cache-size = $2
		log-level = $1
		control = $H_DIR/ctl.sock
		${3:-}
	EOF
}
write_conf warn 64M
"$top_builddir/gridvfsd" -c "$CONF" -F >"$H_DIR/px.log" 2>&1 &
PX=$!
H_PIDS+=("$PX")
h_wait_tcp "$P" 20 "$PX" || h_fail "gridvfsd did not start: $(tail -n 5 "$H_DIR/px.log")"
URL="nfs://127.0.0.1$H_EXPORT/hello.txt?version=3&nfsport=$P&mountport=$P"
hup() { # wait for the reload's last line
	local before
	before=$(grep -c "SIGHUP: configuration" "$H_DIR/px.log")
	kill -HUP "$PX"
	for _ in $(seq 50); do
		[ "$(grep -c "SIGHUP: configuration" "$H_DIR/px.log")" -gt "$before" ] && return 0
		sleep 0.1
	done
	h_fail "no SIGHUP outcome line in the log: $(tail -n 5 "$H_DIR/px.log")"
}

# A connection that lives across every reload below.
python3 - "$P" "$H_DIR/conn.go" "$H_DIR/conn.done" >"$H_DIR/conn.log" 2>&1 <<'PY' &
import os, socket, struct, sys, time
def null(s, xid):
    body = struct.pack(">IIIIIIIIII", xid, 0, 2, 100003, 3, 0, 0, 0, 0, 0)
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
    n = struct.unpack(">I", s.recv(4))[0] & 0x7fffffff
    msg = b""
    while len(msg) < n:
        msg += s.recv(n - len(msg))
    assert struct.unpack(">III", msg[:12]) == (xid, 1, 0)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
null(s, 1)
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
    time.sleep(0.05)
null(s, 2)
print("ok")
PY
CONN=$!
for _ in $(seq 50); do [ -e "$H_DIR/conn.go" ] && break; sleep 0.1; done

# --- A ------------------------------------------------------------------
nfs-cat "$URL" >/dev/null 2>&1 || h_fail "read before reload failed"
grep -q "connected" "$H_DIR/px.log" && h_fail "debug lines at log-level warn"
write_conf debug 128M "max-client-calls = 7"
hup
grep -q "SIGHUP: cache-size changed: takes effect at the next start" "$H_DIR/px.log" ||
	h_fail "no 'cache-size waits for the next start' line: $(tail -n 5 "$H_DIR/px.log")"
grep -q "SIGHUP: configuration reloaded (some settings wait" "$H_DIR/px.log" ||
	h_fail "no reload line"
nfs-cat "$URL" >/dev/null 2>&1 || h_fail "read after reload failed"
grep -q "px_client_accept: client .* connected" "$H_DIR/px.log" ||
	h_fail "log-level debug did not take effect at SIGHUP"
"$GV" status --socket "$H_DIR/ctl.sock" >"$H_DIR/st" 2>&1 || h_fail "status: $(cat "$H_DIR/st")"
grep -q "^cache_max_bytes  *67108864$" "$H_DIR/st" || h_fail "cache-size changed live: $(cat "$H_DIR/st")"
# listen is fixed too: the old port still answers.
write_conf debug 64M "listen = 127.0.0.1:1"
sed -i "2d" "$CONF" # the file now has only the new listen line
hup
grep -q "SIGHUP: listen changed" "$H_DIR/px.log" || h_fail "no 'listen changed' line"
nfs-cat "$URL" >/dev/null 2>&1 || h_fail "the old port stopped answering after a listen change"
h_log "A: live settings applied, fixed ones kept and reported"

# --- B ------------------------------------------------------------------
write_conf info 64M "bogus-key = 1"
hup
grep -q "SIGHUP: $CONF:9: bogus-key: unknown key" "$H_DIR/px.log" ||
	h_fail "a bad key was not reported with FILE:LINE: $(tail -n 5 "$H_DIR/px.log")"
grep -q "SIGHUP: configuration refused: nothing changed" "$H_DIR/px.log" || h_fail "no refusal line"
write_conf info 64M "max-conns = lots"
hup
grep -q "SIGHUP: .*max-conns" "$H_DIR/px.log" && grep -q "SIGHUP: (set at $CONF:9)" "$H_DIR/px.log" ||
	h_fail "a bad value was not reported with its line: $(tail -n 6 "$H_DIR/px.log")"
# Still at debug (the refused files asked for info): nothing changed.
n=$(grep -c "px_client_accept" "$H_DIR/px.log")
nfs-cat "$URL" >/dev/null 2>&1 || h_fail "read after refused reloads failed"
[ "$(grep -c "px_client_accept" "$H_DIR/px.log")" -gt "$n" ] || h_fail "a refused file changed the log level"
touch "$H_DIR/conn.done"
wait "$CONN" || h_fail "the connection opened before the reloads broke: $(cat "$H_DIR/conn.log")"
h_log "B: refused files change nothing; the old connection lives"

# --- C ------------------------------------------------------------------
CA=$H_DIR/ca
{ $GV ca init "$CA" && $GV ca issue "$CA" --name store --server 127.0.0.1; } >/dev/null 2>&1 ||
	h_fail "ca failed"
DN=$($GV ca issue "$CA" --name node | tail -n 1 | sed 's/ ACCOUNT$//')
echo "$DN root" >"$H_DIR/grid-mapfile"
h_gridvfsd_at store "$H_NFS_PORT" "$H_MNT_PORT" --role server --squash none \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--grid-mapfile "$H_DIR/grid-mapfile" --control none
SP=$H_AT_PORT SPID=$H_AT_PID
h_gridvfsd_at node "$SP" "$SP" --role client --tls-cert "$CA/node.crt" \
	--tls-key "$CA/node.key" --tls-ca "$CA/ca.crt" --control none --upstream-timeout 3
NP=$H_AT_PORT
NURL="nfs://127.0.0.1$H_EXPORT/hello.txt?version=3&nfsport=$NP&mountport=$NP"
[ "$(nfs-cat "$NURL" 2>&1)" = hello ] || h_fail "read over TLS failed"
echo "# nobody" >"$H_DIR/grid-mapfile"
kill -HUP "$SPID"
for _ in $(seq 50); do grep -q "refused after the grid-mapfile reload: no longer in it" "$H_DIR/store.log" && break; sleep 0.1; done
grep -q "TLS peer '${DN//\"/}' refused after the grid-mapfile reload: no longer in it" "$H_DIR/store.log" ||
	h_fail "the removed peer was not disconnected: $(tail -n 5 "$H_DIR/store.log")"
grep -q "SIGHUP: TLS certificate, key, CA and CRL reloaded, grid-mapfile too" "$H_DIR/store.log" ||
	h_fail "no TLS reload line"
timeout 20 nfs-cat "$NURL" >"$H_DIR/refused.out" 2>&1 && h_fail "a peer no longer in the grid-mapfile read a file"
grep -q "not in the grid-mapfile" "$H_DIR/store.log" || h_fail "the reconnect was not refused"
echo "$DN root" >"$H_DIR/grid-mapfile"
kill -HUP "$SPID"
ok=0
for _ in $(seq 40); do
	[ "$(nfs-cat "$NURL" 2>/dev/null)" = hello ] && { ok=1; break; }
	sleep 0.5
done
[ $ok = 1 ] || h_fail "the peer listed again could not read"
# A broken grid-mapfile is refused and the one in force stays.
echo "garbage line without quotes" >"$H_DIR/grid-mapfile"
kill -HUP "$SPID"
for _ in $(seq 50); do grep -q "keeping the previous TLS settings and grid-mapfile" "$H_DIR/store.log" && break; sleep 0.1; done
grep -q "keeping the previous TLS settings and grid-mapfile" "$H_DIR/store.log" ||
	h_fail "a broken grid-mapfile was not refused: $(tail -n 5 "$H_DIR/store.log")"
[ "$(nfs-cat "$NURL" 2>/dev/null)" = hello ] || h_fail "reads stopped after a refused grid-mapfile"
h_log "C: grid-mapfile reload disconnects removed peers, refuses a broken file"
h_pass
