#!/bin/bash
# proxy_bad_upstream: an upstream that misbehaves (a fake NFS server in
# python) cannot make gridvfsd misanswer or hang.  A reply with an unknown
# XID is dropped with a log line and the real reply still reaches the
# client; a malformed reply to a pending call becomes SYSTEM_ERR for that
# call only; unattributable garbage resets the link, the pending call is
# resent with the same XID on a new connection and answered.
# --upstream-timeout holds against an upstream that is gone (nothing
# listens) and against one that accepts and drops every connection (which
# once reset the timeout's clock at each reconnect, holding calls forever):
# the call gets SYSTEM_ERR in time, with a log line.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_bad_upstream
h_take_port FP
python3 - "$FP" >"$H_DIR/fake.log" 2>&1 <<'PY' &
import socket, struct, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(8)
seen = {}  # xid -> times seen (a resend reuses the xid)
def rec(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c: raise EOFError
            b += c
        return b
    m = struct.unpack(">I", exact(4))[0]
    return exact(m & 0x7fffffff)
def send(s, body):
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
def reply_hdr(xid):
    return struct.pack(">IIIIII", xid, 1, 0, 0, 0, 0)
def serve(s):
    try:
        while True:
            call = rec(s)
            xid, _, _, prog, vers, proc = struct.unpack(">IIIIII", call[:24])
            n = seen.get(xid, 0); seen[xid] = n + 1
            print("call xid %08x proc %d seen %d" % (xid, proc, n), flush=True)
            if proc == 0:        # NULL: first an unknown xid, then the answer
                send(s, reply_hdr(xid ^ 0x5a5a5a5a))
                send(s, reply_hdr(xid))
            elif proc == 1:      # GETATTR: status OK but the fattr3 cut short
                send(s, reply_hdr(xid) + struct.pack(">II", 0, 1))
            elif proc == 4 and n == 0:   # ACCESS, first time: pure garbage
                send(s, b"\x00\x01")
                s.close(); return
            elif proc == 4:      # ACCESS resent on a new connection: answer
                send(s, reply_hdr(xid) + struct.pack(">III", 0, 0, 0x1f))
            elif proc == 5:      # READLINK: drop the connection, every time
                s.close(); return
    except EOFError:
        pass
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
H_PIDS+=($!)
h_wait_tcp "$FP" 10 || h_fail "fake upstream did not start"
h_gridvfsd_at px "$FP" "$FP" --role client --control none
PX=$H_AT_PORT
python3 - "$PX" >"$H_DIR/client.log" 2>&1 <<'PY' || h_fail "client saw wrong answers: $(tail -n 3 "$H_DIR/client.log")"
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
def call(xid, proc, args=b""):
    body = struct.pack(">IIIIIIIIII", xid, 0, 2, 100003, 3, proc, 0, 0, 0, 0) + args
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
    m = struct.unpack(">I", s.recv(4))[0] & 0x7fffffff
    b = b""
    while len(b) < m: b += s.recv(m - len(b))
    return b
fh = struct.pack(">I", 8) + b"12345678"
r = call(0x100, 0)
assert struct.unpack(">III", r[:12]) == (0x100, 1, 0) and r[20:24] == b"\0\0\0\0", r
r = call(0x101, 1, fh)
assert struct.unpack(">I", r[:4])[0] == 0x101 and struct.unpack(">I", r[20:24])[0] == 5, ("want SYSTEM_ERR", r)
r = call(0x102, 4, fh + struct.pack(">I", 0x1f))
assert struct.unpack(">I", r[:4])[0] == 0x102 and struct.unpack(">II", r[20:28]) == (0, 0), ("want ACCESS ok", r)
print("client: all answers right")
PY
grep -q "reply with unknown xid" "$H_DIR/px.log" || h_fail "no log line for the unknown XID"
grep -q "malformed reply to GETATTR" "$H_DIR/px.log" || h_fail "no log line for the malformed reply"
grep -q "garbage reply from upstream\|zero-length record\|closed by upstream" "$H_DIR/px.log" ||
	h_fail "no log line for the garbage"
grep -q "seen 1" "$H_DIR/fake.log" || h_fail "the pending call was not resent after the reset"
# The resend used the XID of the first attempt.
# --upstream-timeout: a dead upstream, and one that drops every connection.
h_take_port DEAD
h_gridvfsd_at dead "$DEAD" "$DEAD" --role client --control none --upstream-timeout 2
PD=$H_AT_PORT
h_gridvfsd_at flap "$FP" "$FP" --role client --control none --upstream-timeout 2
PF=$H_AT_PORT
python3 - "$PD" "$PF" >"$H_DIR/tmo.log" 2>&1 <<'PY' || h_fail "upstream timeout: $(tail -n 3 "$H_DIR/tmo.log")"
import socket, struct, sys, time
def call(port, proc, args):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    body = struct.pack(">IIIIIIIIII", 7, 0, 2, 100003, 3, proc, 0, 0, 0, 0) + args
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
    m = struct.unpack(">I", s.recv(4))[0] & 0x7fffffff
    b = b""
    while len(b) < m: b += s.recv(m - len(b))
    return b
fh = struct.pack(">I", 8) + b"12345678"
for port, proc in ((int(sys.argv[1]), 1), (int(sys.argv[2]), 5)):
    t = time.time()
    r = call(port, proc, fh)
    took = time.time() - t
    assert struct.unpack(">I", r[20:24])[0] == 5, ("want SYSTEM_ERR", r)
    assert 1.5 < took < 8, ("answered after %.1f s, --upstream-timeout is 2" % took)
    print("port %d: SYSTEM_ERR after %.1f s" % (port, took))
PY
grep -q "upstream nfs unreachable for 2 s: failing 1 call(s)" "$H_DIR/dead.log" ||
	h_fail "no timeout line for the dead upstream"
grep -q "upstream nfs unreachable for 2 s: failing 1 call(s)" "$H_DIR/flap.log" ||
	h_fail "no timeout line for the upstream that drops connections"
grep -q "again after reconnecting" "$H_DIR/flap.log" ||
	h_fail "no line for an upstream that drops us after each connect"
x1=$(awk '/proc 4 seen 0/ { print $3 }' "$H_DIR/fake.log")
x2=$(awk '/proc 4 seen 1/ { print $3 }' "$H_DIR/fake.log")
[ -n "$x1" ] && [ "$x1" = "$x2" ] || h_fail "resend XID $x2 differs from $x1"
h_pass
