#!/bin/bash
# tests/unit/test_wanrelay.sh — runs tests/tools/wanrelay between python3
# peers on loopback: integrity, delay, rate, pause/resume, RPC counting and
# peer resets.  Exit status = number of failed checks.
#
#   tests/unit/test_wanrelay.sh            # the checks (< 30 s)
#   tests/unit/test_wanrelay.sh --bench    # also throughput and CPU figures
# WANRELAY=path uses a prebuilt relay; RELAY_WRAP="valgrind -q" wraps it.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src="${top_srcdir:-$here/../..}/tests/tools/wanrelay.c"
work=$(mktemp -d /tmp/test_wanrelay.XXXXXX)
pids=()
fails=0
bench=0
[ "${1:-}" = "--bench" ] && bench=1

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${WANRELAY:-}" ]; then
	relay=$WANRELAY
else
	relay=$work/wanrelay
	gcc -std=gnu11 -O2 -Wall -Wextra -Wshadow -Wmissing-prototypes \
	    -Wstrict-prototypes -o "$relay" "$src" || exit 1
fi
read -r -a wrap <<<"${RELAY_WRAP:-}"

ok()   { echo "PASS: $*"; }
bad()  { echo "FAIL: $*"; fails=$((fails + 1)); }

# Wait until file $1 exists and is non-empty (up to 10 s).
wait_file() {
	# 200 x 50 ms
	for _ in $(seq 200); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	echo "timeout waiting for $1" >&2
	return 1
}

# start_server MODE NAME: python peer in background; port in $work/NAME.port
start_server() {
	python3 "$work/peer.py" serve "$1" "$work/$2.port" &
	pids+=($!)
	wait_file "$work/$2.port"
}

# start_relay NAME TARGETPORT ARGS...: relay port in $work/NAME.rport,
# pid in $work/NAME.pid, control socket $work/NAME.ctl, stats $work/NAME.st
start_relay() {
	local name=$1 tport=$2
	shift 2
	"${wrap[@]}" "$relay" --listen 127.0.0.1:0 --target "127.0.0.1:$tport" \
	    --port-file "$work/$name.rport" --control "$work/$name.ctl" \
	    --stats "$work/$name.st" "$@" &
	echo $! >"$work/$name.pid"
	pids+=($!)
	wait_file "$work/$name.rport"
}

rport() { cat "$work/$1.rport"; }
rpid() { cat "$work/$1.pid"; }
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$work/$1.st"; }

# Stop relay NAME with SIGTERM; check it exits 0 and leaves a stats file.
stop_relay() {
	local pid rc
	pid=$(rpid "$1")
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
	[ "$rc" -eq 0 ] && ok "$1: SIGTERM exits 0" || bad "$1: exit status $rc"
	[ -s "$work/$1.st" ] || bad "$1: no stats file at exit"
}

cat >"$work/peer.py" <<'PY'
import hashlib, os, socket, struct, sys, threading, time

def listen(portfile):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    return s

def recv_all(c):
    h, n, buf = hashlib.sha256(), 0, bytearray(1 << 20)
    while True:
        k = c.recv_into(buf)
        if k == 0:
            return n, h.hexdigest()
        h.update(memoryview(buf)[:k])
        n += k

def recv_exact(c, n):
    out = bytearray()
    while len(out) < n:
        b = c.recv(n - len(out))
        if not b:
            raise EOFError("short read %d/%d" % (len(out), n))
        out += b
    return bytes(out)

def h_echo(c):
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        c.sendall(b)
    c.shutdown(socket.SHUT_WR)

def h_sink(c):
    n, d = recv_all(c)
    c.sendall(("%d %s\n" % (n, d)).encode())
    c.shutdown(socket.SHUT_WR)

def h_null(c):
    # Counts only: no hashing, so the relay is measured, not sha256.
    n, buf = 0, bytearray(1 << 20)
    while True:
        k = c.recv_into(buf)
        if k == 0:
            break
        n += k
    c.sendall(b"%d\n" % n)
    c.shutdown(socket.SHUT_WR)

def h_rpc(c):
    # Answer each call record: READ (proc 6) gets 100 bytes of body.
    while True:
        try:
            rec = read_record(c)
        except EOFError:
            break
        xid, _, _, prog, vers, proc = struct.unpack(">6I", rec[:24])
        body = struct.pack(">2I", xid, 1) + (b"r" * 100 if proc == 6 else b"")
        c.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)

def read_record(c):
    rec = b""
    while True:
        mark, = struct.unpack(">I", recv_exact(c, 4))
        rec += recv_exact(c, mark & 0x7fffffff)
        if mark >> 31:
            return rec

def h_reset(c):
    c.recv(100)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

def serve(mode, portfile):
    s = listen(portfile)
    h = globals()["h_" + mode]
    def run(c):
        try:
            h(c)
        except OSError:
            pass
        finally:
            c.close()
    while True:
        c, _ = s.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=run, args=(c,), daemon=True).start()

def conn(port):
    c = socket.create_connection(("127.0.0.1", int(port)))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c

def bulk(port, nbytes):
    """Echo nbytes of random data; compare sha256 both ways."""
    data = os.urandom(int(nbytes))
    c = conn(port)
    def send():
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send)
    t.start()
    n, d = recv_all(c)
    t.join()
    ok = n == len(data) and d == hashlib.sha256(data).hexdigest()
    print("bulk %d bytes back %d, sha256 %s" % (len(data), n,
          "match" if ok else "MISMATCH"))
    return 0 if ok else 1

def rtt(port, count, lo, hi):
    c = conn(port)
    ts = []
    for i in range(int(count)):
        t0 = time.monotonic()
        c.sendall(b"ping%04d" % i)
        if recv_exact(c, 8) != b"ping%04d" % i:
            return 1
        ts.append((time.monotonic() - t0) * 1000)
    ts.sort()
    med = ts[len(ts) // 2]
    print("rtt min %.2f median %.2f max %.2f ms (want %s..%s)" %
          (ts[0], med, ts[-1], lo, hi))
    return 0 if ts[0] >= float(lo) - 0.05 and med <= float(hi) else 1

def sinktime(port, nbytes, lo, hi, chunk=1 << 20):
    """Send nbytes to the sink, time until its digest comes back."""
    data = os.urandom(int(nbytes))
    c = conn(port)
    t0 = time.monotonic()
    for i in range(0, len(data), chunk):
        c.sendall(data[i:i + chunk])
    c.shutdown(socket.SHUT_WR)
    reply = c.makefile().readline().split()
    dt = time.monotonic() - t0
    ok = reply == [str(len(data)), hashlib.sha256(data).hexdigest()]
    mbit = len(data) * 8 / dt / 1e6
    print("sink %d bytes in %.3f s = %.1f Mbit/s, digest %s (want %s..%s s)"
          % (len(data), dt, mbit, "ok" if ok else "BAD", lo, hi))
    return 0 if ok and float(lo) <= dt <= float(hi) else 1

def blast(port, nbytes):
    """Throughput to the null sink: the same 1 MiB of zeros, over and over."""
    buf, n = memoryview(bytes(1 << 20)), int(nbytes)
    c = conn(port)
    t0 = time.monotonic()
    for _ in range(n >> 20):
        c.sendall(buf)
    c.shutdown(socket.SHUT_WR)
    got = int(c.makefile().readline())
    dt = time.monotonic() - t0
    print("blast %d bytes in %.3f s = %.0f Mbit/s" % (got, dt, got * 8 / dt / 1e6))
    return 0 if got == (n >> 20) << 20 else 1

def ctl(path, cmd):
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    u.sendall(cmd.encode() + b"\n")
    u.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        b = u.recv(65536)
        if not b:
            return out.decode()
        out += b

def pausecheck(port, ctlpath):
    """Paused: nothing arrives.  Resumed: all of it, intact."""
    c = conn(port)
    c.sendall(b"warmup!!")
    recv_exact(c, 8)
    if not ctl(ctlpath, "pause").startswith("ok"):
        return 1
    data = os.urandom(1 << 20)
    c.sendall(data)
    c.settimeout(0.6)
    try:
        early = c.recv(65536)
    except socket.timeout:
        early = b""
    if early:
        print("pause: %d bytes leaked while paused" % len(early))
        return 1
    paused = "paused 1" in ctl(ctlpath, "stats")
    ctl(ctlpath, "resume")
    c.settimeout(10)
    back = recv_exact(c, len(data))
    print("pause: none while paused, stats paused=%s, %s after resume" %
          (paused, "all back" if back == data else "CORRUPT"))
    return 0 if back == data and paused else 1

def dropcheck(port, ctlpath):
    """'drop' resets live connections; new ones still work."""
    c = conn(port)
    c.sendall(b"before!!")
    recv_exact(c, 8)
    reply = ctl(ctlpath, "drop")
    c.settimeout(5)
    try:
        c.sendall(b"after")
        ended = c.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        ended = True
    print("drop: reply %r, old connection %s" % (reply.strip(),
          "ended" if ended else "STILL OPEN"))
    return 0 if ended and reply.startswith("ok dropped 1") else 1

def call(xid, prog, vers, proc, body=b""):
    return struct.pack(">6I", xid, 0, 2, prog, vers, proc) + \
        struct.pack(">4I", 0, 0, 0, 0) + body

def frag(payload, last):
    return struct.pack(">I", (0x80000000 if last else 0) | len(payload)) + payload

def rpccheck(port):
    """Hand-built calls: 3 READ, 2 GETATTR, 1 NULL, 1 MOUNT MNT split
    into fragments mid-header, sent byte by byte; answers checked later
    against the relay's counters."""
    c = conn(port)
    recs = [call(1, 100003, 3, 6), call(2, 100003, 3, 1),
            call(3, 100003, 3, 6), call(4, 100003, 3, 0),
            call(5, 100003, 3, 1), call(6, 100003, 3, 6, b"x" * 4)]
    wire = b"".join(frag(r, True) for r in recs)
    mnt = call(7, 100005, 3, 1, b"\0\0\0\4/exp")
    wire += frag(mnt[:10], False) + frag(b"", False) + \
        frag(mnt[10:17], False) + frag(mnt[17:], True)
    c.sendall(wire[:100])
    for b in wire[100:]:
        c.sendall(bytes([b]))
    for _ in range(7):
        read_record(c)
    print("rpc: 7 calls sent, 7 replies received")
    return 0

def resetcheck(port):
    """Client sends then resets; the relay must carry on."""
    c = conn(port)
    c.sendall(b"x" * 1000)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()
    return 0

def resetserver(port):
    """The server resets: the client must see the connection end."""
    c = conn(port)
    c.settimeout(5)
    try:
        c.sendall(b"hello")
        b = c.recv(100)
        print("reset server: connection ended (%r)" % b)
        return 0 if b == b"" else 1
    except (ConnectionResetError, BrokenPipeError):
        print("reset server: client saw ECONNRESET/EPIPE")
        return 0

def multi(port, conns, nbytes):
    """Parallel connections, each echoing its own random data."""
    res = []
    def one():
        res.append(bulk(port, nbytes))
    ts = [threading.Thread(target=one) for _ in range(int(conns))]
    for t in ts: t.start()
    for t in ts: t.join()
    return 0 if res.count(0) == int(conns) else 1

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    sys.exit(globals()[sys.argv[1]](*sys.argv[2:]))
PY

peer() { python3 "$work/peer.py" "$@"; }

start_server echo echo || exit 1
start_server sink sink || exit 1
start_server rpc rpc || exit 1
start_server reset rst || exit 1
E=$(cat "$work/echo.port")
S=$(cat "$work/sink.port")

# --- argument handling ----------------------------------------------
"$relay" --help | grep -q -- "--backlog-ms" && ok "--help documents options" ||
	bad "--help"
"$relay" --listen 127.0.0.1:0 >/dev/null 2>&1
[ $? -eq 2 ] && ok "missing --target exits 2" || bad "missing --target"
"$relay" --listen 127.0.0.1:0 --target 127.0.0.1:1 --rate-mbit -3 2>/dev/null
[ $? -eq 2 ] && ok "negative rate exits 2" || bad "negative rate"

# --- (a) integrity, both ways, plus 8 parallel connections ------------
start_relay plain "$E" || exit 1
peer bulk "$(rport plain)" $((8 << 20)) && ok "(a) 8 MiB echo byte-identical" ||
	bad "(a) 8 MiB echo"
peer multi "$(rport plain)" 8 $((1 << 20)) >/dev/null && ok "(a) 8 parallel conns" ||
	bad "(a) parallel conns"
kill -USR1 "$(rpid plain)"
sleep 0.2
[ "$(stat_of plain bytes_up)" = $(((8 << 20) + (8 << 20))) ] &&
[ "$(stat_of plain bytes_down)" = $(((8 << 20) + (8 << 20))) ] &&
[ "$(stat_of plain conns)" = 9 ] && ok "(a) byte and conn counters" ||
	bad "(a) counters: $(tr '\n' ' ' <"$work/plain.st")"

# --- (f) peer resets --------------------------------------------------
peer resetcheck "$(rport plain)"
sleep 0.2
peer bulk "$(rport plain)" 65536 >/dev/null && kill -0 "$(rpid plain)" &&
	ok "(f) relay survives a client reset" || bad "(f) client reset"
stop_relay plain
[ "$(stat_of plain close.reset)" -ge 1 ] && ok "(f) reset counted" ||
	bad "(f) close.reset=$(stat_of plain close.reset)"
start_relay rstsrv "$(cat "$work/rst.port")" --delay-ms 5 || exit 1
peer resetserver "$(rport rstsrv)" && ok "(f) server reset reaches client" ||
	bad "(f) server reset"
"$relay" --ctl "$work/rstsrv.ctl" stats | grep -q "^close.reset 1$" &&
	ok "(f) server reset counted" || bad "(f) server reset not counted"
start_relay refused 1 || exit 1
peer resetserver "$(rport refused)" >/dev/null &&
"$relay" --ctl "$work/refused.ctl" stats | grep -q "^close.connect_failed 1$" &&
	ok "(f) refused upstream resets client" || bad "(f) refused upstream"
stop_relay rstsrv
stop_relay refused

# --- (b) delay: RTT is 2 x delay --------------------------------------
start_relay delay "$E" --delay-ms 25 || exit 1
peer rtt "$(rport delay)" 10 50 80 && ok "(b) RTT with delay 25 ms" ||
	bad "(b) RTT"
"$relay" --ctl "$work/delay.ctl" delay 5 >/dev/null &&
peer rtt "$(rport delay)" 10 10 30 && ok "(b) control 'delay 5' applies" ||
	bad "(b) delay change"
peer bulk "$(rport delay)" $((4 << 20)) >/dev/null &&
	ok "(b) 4 MiB echo intact with delay" || bad "(b) delayed bulk"
stop_relay delay

# --- (c) rate: 16 MiB at 100 Mbit/s takes ~1.34 s ---------------------
start_relay rate "$S" --rate-mbit 100 || exit 1
peer sinktime "$(rport rate)" $((16 << 20)) 1.2 2.0 &&
	ok "(c) 16 MiB at 100 Mbit/s" || bad "(c) rate"
[ "$(stat_of rate bytes_up)" -gt 0 ] 2>/dev/null &&
	ok "(c) stats file written periodically" || bad "(c) no periodic stats"
"$relay" --ctl "$work/rate.ctl" rate 200 >/dev/null &&
peer sinktime "$(rport rate)" $((8 << 20)) 0.3 0.6 &&
	ok "(c) control 'rate 200' applies" || bad "(c) rate change"
stop_relay rate
start_relay rate2 "$S" --rate-mbit 100 --delay-ms 10 || exit 1
peer sinktime "$(rport rate2)" $((8 << 20)) 0.67 1.1 &&
	ok "(c) 8 MiB at 100 Mbit/s, 20 ms RTT" || bad "(c) rate with delay"
stop_relay rate2

# --- (d) pause / resume ------------------------------------------------
start_relay pause "$E" --delay-ms 2 || exit 1
peer pausecheck "$(rport pause)" "$work/pause.ctl" &&
	ok "(d) pause holds data, resume delivers all" || bad "(d) pause"
kill -USR2 "$(rpid pause)"
sleep 0.1
"$relay" --ctl "$work/pause.ctl" stats | grep -q "^paused 1$" &&
	ok "(d) SIGUSR2 toggles pause" || bad "(d) SIGUSR2"
kill -USR2 "$(rpid pause)"
sleep 0.1
peer bulk "$(rport pause)" 100000 >/dev/null && ok "(d) flows after unpause" ||
	bad "(d) after SIGUSR2 resume"
peer dropcheck "$(rport pause)" "$work/pause.ctl" &&
"$relay" --ctl "$work/pause.ctl" stats | grep -q "^close.drop 1$" &&
	ok "(d) drop resets connections" || bad "(d) drop"
peer bulk "$(rport pause)" 100000 >/dev/null && ok "(d) new conns after drop" ||
	bad "(d) after drop"
"$relay" --ctl "$work/pause.ctl" bogus >/dev/null
[ $? -eq 1 ] && ok "control rejects bad command" || bad "control bad command"
stop_relay pause

# --- (e) RPC call counting ---------------------------------------------
start_relay rpc "$(cat "$work/rpc.port")" --rpc --delay-ms 1 || exit 1
peer rpccheck "$(rport rpc)" || bad "(e) rpc exchange"
stop_relay rpc
want="calls.100003.6=3 calls.100003.1=2 calls.100003.0=1 calls.100005.1=1"
want="$want rpc_calls=7 rpc_replies=7 rpc_bad=0 read_replies=3"
want="$want read_reply_bytes=324"
for kv in $want; do
	k=${kv%=*}
	v=$(stat_of rpc "$k")
	[ "$v" = "${kv#*=}" ] && ok "(e) $k = $v" || bad "(e) $k = '$v', want ${kv#*=}"
done

# --- optional measurements ----------------------------------------------
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
if [ $bench -eq 1 ]; then
	start_server null null || exit 1
	N=$(cat "$work/null.port")
	echo "--- bench: 4 GiB direct to a null sink (no relay)"
	peer blast "$N" $((4 << 30))
	start_relay fast "$N" || exit 1
	echo "--- bench: 4 GiB through the relay, no shaping"
	t0=$(cpu_ticks "$(rpid fast)")
	peer blast "$(rport fast)" $((4 << 30))
	echo "relay CPU: $(( $(cpu_ticks "$(rpid fast)") - t0 )) ticks ($(getconf CLK_TCK)/s)"
	stop_relay fast
	start_relay cpu "$S" --rate-mbit 100 --delay-ms 10 || exit 1
	echo "--- bench: 100 Mbit/s, 20 ms RTT, 48 MiB"
	t0=$(cpu_ticks "$(rpid cpu)")
	peer sinktime "$(rport cpu)" $((48 << 20)) 0 100
	echo "relay CPU: $(( $(cpu_ticks "$(rpid cpu)") - t0 )) ticks ($(getconf CLK_TCK)/s)"
	stop_relay cpu
fi

echo "test_wanrelay: $fails failure(s)"
exit $fails
