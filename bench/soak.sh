#!/bin/bash
# bench/soak.sh — 32 clients of mixed reads, writes and metadata work
# through the full chain (client role with cache -> mTLS -> server role ->
# ganesha) for SOAK_SECONDS (default 600).  Reports data mismatches, error
# replies, and for both daemons at start, every SOAK_SAMPLE seconds (60) and
# at the end: anonymous RSS (heap, stacks: steady growth here is a leak),
# file-backed RSS (the node's LMDB map pages count in VmRSS as file pages
# and grow with the cache, up to its size) and open file descriptors.
# A benchmark-style script: it reports, it is not part of make check.
#   SOAK_SECONDS=600 SOAK_CLIENTS=32 bash bench/soak.sh
set -u
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/tests/lib/harness.sh"
SECS=${SOAK_SECONDS:-600}
N=${SOAK_CLIENTS:-32}
GV="$top_builddir/gridvfs"

h_init soak
h_ganesha
chmod 1777 "$H_EXPORT"
CA=$H_DIR/ca
{ $GV ca init "$CA" && $GV ca issue "$CA" --name store --server 127.0.0.1; } >/dev/null 2>&1 ||
	h_fail "ca failed"
DN=$($GV ca issue "$CA" --name node | tail -n 1 | sed 's/ ACCOUNT$//')
echo "$DN root" >"$H_DIR/grid-mapfile"
GRIDVFSD_LOG_LEVEL=warn h_gridvfsd_at store "$H_NFS_PORT" "$H_MNT_PORT" --role server \
	--squash none --tls-cert "$CA/store.crt" --tls-key "$CA/store.key" \
	--tls-ca "$CA/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" --control none
SP=$H_AT_PORT SPID=$H_AT_PID
GRIDVFSD_LOG_LEVEL=warn h_gridvfsd_at node "$SP" "$SP" --role client \
	--tls-cert "$CA/node.crt" --tls-key "$CA/node.key" --tls-ca "$CA/ca.crt" \
	--cache-dir "$H_DIR/cache" --cache-size 256M --control "$H_DIR/ctl.sock"
NP=$H_AT_PORT NPID=$H_AT_PID

# rss PID: "anon A file F" in KiB (/proc/PID/status RssAnon, RssFile).
rss() { awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { printf "anon %d file %d", a, f }' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
T0=$(date +%s)
sample() { # LABEL: one line of figures for both daemons
	echo "$1 (+$(($(date +%s) - T0)) s): node RSS $(rss "$NPID") KiB fds $(fds "$NPID"); store RSS $(rss "$SPID") KiB fds $(fds "$SPID")"
}
sample start
( while sleep "${SOAK_SAMPLE:-60}"; do sample sample; done ) &
SAMPLER=$!
for i in $(seq 4); do head -c $((16 << 20)) /dev/urandom >"$H_EXPORT/ro$i"; done

python3 - "$NP" "$H_EXPORT" "$SECS" "$N" "$top_srcdir/tests/tools" <<'PY'
import hashlib, os, random, sys, threading, time
sys.path.insert(0, sys.argv[5])
from nfsrpc import Nfs, NfsError
port, export, secs, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
want = {f"ro{i}": open(f"{export}/ro{i}", "rb").read(1 << 20) for i in range(1, 5)}
stats = {"ops": 0, "mismatch": 0, "errors": 0}
lock = threading.Lock()
end = time.time() + secs
def worker(k):
    rnd = random.Random(k)
    c = Nfs("127.0.0.1", port, export, uid=0, gid=0)
    mine = f"/w{k}"
    c.create(mine)
    while time.time() < end:
        op = rnd.random()
        try:
            if op < 0.5:                       # read a shared file
                f = rnd.choice(list(want))
                ok = c.read("/" + f) == want[f]
            elif op < 0.8:                     # write and read back own file
                data = os.urandom(rnd.randint(1, 200000))
                c.write(mine, data)
                ok = c.read(mine)[:len(data)] == data
            else:                              # metadata
                c.getattr(mine)
                c.lsplus("/")
                ok = True
        except NfsError:
            with lock:
                stats["errors"] += 1
            continue
        with lock:
            stats["ops"] += 1
            if not ok:
                stats["mismatch"] += 1
ts = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print(f"soak: {n} clients, {secs} s: {stats['ops']} operations, "
      f"{stats['mismatch']} data mismatches, {stats['errors']} error replies")
sys.exit(1 if stats["mismatch"] or stats["errors"] else 0)
PY
rc=$?
kill "$SAMPLER" 2>/dev/null
wait "$SAMPLER" 2>/dev/null
sample end
$GV status --socket "$H_DIR/ctl.sock" | grep -E "^(connections|outstanding|errors|garbage|cache_bytes |READ|WRITE|GETATTR|READDIRPLUS) "
exit $rc
