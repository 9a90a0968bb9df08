#!/bin/bash
# sec_preauth: issue 16 items 6 and 8, what an unauthenticated peer can
# hold.  preauth_record: 150 connections each sending most of a 1 MiB
# record before the TLS probe used to pin ~150 MiB in the server role; now
# each is closed past 4 KiB and the daemon stays small.  probe_deadline: a
# socket that never sends the probe is closed at --handshake-timeout
# (there was no deadline at all).  exhaustion: 200 idle sockets from six
# addresses no longer lock an mTLS client out of a server role with
# --max-conns 48 (per-address cap, unauthenticated sockets shed).
# client_role_local: the same from a local non-root user against the
# client role, where root must still get in.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init sec_preauth
GV="$top_builddir/gridvfs"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

h_ganesha
CA=$H_DIR/ca
$GV ca init "$CA" >/dev/null || h_fail "ca init failed"
$GV ca issue "$CA" --name store --server 127.0.0.1 >/dev/null || h_fail "ca issue store failed"
DN1=$($GV ca issue "$CA" --name node1 | tail -n 1 | sed 's/ ACCOUNT$//') || h_fail "ca issue node1 failed"
printf '%s daemon\n' "$DN1" >"$H_DIR/grid-mapfile"
echo hello >"$H_EXPORT/hello"
srv() {
	local name=$1
	shift
	h_gridvfsd_at "$name" "$H_NFS_PORT" "$H_MNT_PORT" --role server \
		--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
		--grid-mapfile "$H_DIR/grid-mapfile" --log-level info "$@"
	SP=$H_AT_PORT SPID=$H_AT_PID
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Holds N idle connections to PORT from the given source addresses for
# SECS seconds (or until killed); prints "ready" once all were tried.
cat >"$H_DIR/hold.py" <<'PY'
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
srcs = sys.argv[4].split(",")
held = []
for i in range(n):
    s = socket.socket()
    if srcs[i % len(srcs)]:
        s.bind((srcs[i % len(srcs)], 0))
    try:
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
print("ready", flush=True)
time.sleep(secs)
PY

# --- case preauth_record (item 8) --------------------------------------------
srv s1 --max-unauth-per-addr 1000
before=$(rss_kib "$SPID")
$PY - "$SP" >"$H_DIR/flood.out" <<'PY' || h_fail "preauth_record: the flood script failed"
import socket, sys
port = int(sys.argv[1])
held, closed = [], 0
rec = (1 << 20) - 1
for i in range(150):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall((0x80000000 | rec).to_bytes(4, "big") + b"\0" * (rec - 1))
        held.append(s)
    except ConnectionError:
        closed += 1
        s.close()
# Every connection still open must be closed by the server (EOF or reset)
# within 5 s; one still open then counts as held.
import select, time
deadline = time.time() + 5
while held and time.time() < deadline:
    r, _, _ = select.select(held, [], [], max(0, deadline - time.time()))
    for s in r:
        try:
            if s.recv(65536) != b"":
                continue
        except ConnectionError:
            pass
        closed += 1
        held.remove(s)
        s.close()
print(closed)
PY
after=$(rss_kib "$SPID")
h_log "preauth_record: rss ${before} -> ${after} KiB, $(cat "$H_DIR/flood.out") closed"
[ "$(cat "$H_DIR/flood.out")" = 150 ] ||
	h_fail "preauth_record: only $(cat "$H_DIR/flood.out") of 150 pre-TLS 1 MiB senders were cut off"
[ $((after - before)) -lt 32768 ] ||
	h_fail "preauth_record: RSS grew by $(((after - before) / 1024)) MiB for 150 unauthenticated senders"
grep -q "pre-authentication limit" "$H_DIR/s1.log" || h_fail "preauth_record: no log line with the reason"
h_stop_pid "$SPID"

# --- case probe_deadline (item 6) --------------------------------------------
srv s2 --handshake-timeout 2
$PY - "$SP" <<'PY' || h_fail "probe_deadline: an idle pre-TLS socket was not closed within 6 s (--handshake-timeout 2)"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=6)
t = time.time()
try:
    r = s.recv(1)
except socket.timeout:
    sys.exit(1)
sys.exit(0 if r == b"" and time.time() - t >= 1.5 else 1)
PY
grep -q "no TLS probe within --handshake-timeout" "$H_DIR/s2.log" || h_fail "probe_deadline: no log line"
h_stop_pid "$SPID"

# --- case exhaustion (item 6) -------------------------------------------------
srv s3 --max-conns 48 --max-unauth-per-addr 8 --handshake-timeout 60
# Six addresses fill --max-conns with 8 each: their later sockets replace
# their own older ones, and the mTLS client needs a global shed.
$PY "$H_DIR/hold.py" "$SP" 200 40 127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5,127.0.0.6,127.0.0.7 \
	>"$H_DIR/hold3.out" &
HOLD=$!
for _ in $(seq 100); do grep -q ready "$H_DIR/hold3.out" && break; sleep 0.1; done
grep -q ready "$H_DIR/hold3.out" || h_fail "exhaustion: the holder did not connect"
h_gridvfsd --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" --tls-ca "$CA/ca.crt" \
	--upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP"
timeout 20 nfs-ls "$(h_url_proxy)" 2>"$H_DIR/ls.err" | grep -q hello ||
	h_fail "exhaustion: an mTLS client was locked out by 200 idle sockets: $(head -c 300 "$H_DIR/ls.err")"
grep -q "shed: --max-unauth-per-addr reached" "$H_DIR/s3.log" ||
	h_fail "exhaustion: the per-address cap never acted"
grep -q "closed: shed: --max-conns reached" "$H_DIR/s3.log" ||
	h_fail "exhaustion: no unauthenticated socket was shed for the mTLS client"
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
h_gridvfsd_stop
h_stop_pid "$SPID"

# --- case client_role_local (item 6) -----------------------------------------
chmod 755 "$H_DIR"
h_gridvfsd --max-conns 32 --max-unauth-per-addr 8
setpriv --reuid=65534 --regid=65534 --clear-groups $PY "$H_DIR/hold.py" "$H_PX_PORT" 100 40 "" \
	>"$H_DIR/hold4.out" &
HOLD=$!
for _ in $(seq 100); do grep -q ready "$H_DIR/hold4.out" && break; sleep 0.1; done
grep -q ready "$H_DIR/hold4.out" || h_fail "client_role_local: the holder did not connect"
timeout 20 nfs-ls "$(h_url_proxy)" 2>"$H_DIR/ls.err" | grep -q hello ||
	h_fail "client_role_local: root was locked out of the client role by a local user's 100 sockets"
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
h_pass
