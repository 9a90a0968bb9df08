#!/bin/bash
# proxy_status: `gridvfs status` over the control socket reports what the
# daemon did (per-procedure counts and latency percentiles, links, cache),
# in text and in JSON; the socket is 0600; a second daemon cannot take a
# live daemon's socket; a missing socket is a clear error.
# --metrics serves the same figures as Prometheus text (checked with a
# strict parse of the exposition format), answers 404 elsewhere, and a
# client that connects and sends nothing cannot stall the daemon.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_status
GV="$top_builddir/gridvfs"
SOCK="$H_DIR/ctl.sock"

h_ganesha
h_take_port MP
h_gridvfsd --cache-dir "$H_DIR/cache" --control "$SOCK" --metrics "127.0.0.1:$MP"
[ "$(stat -c %a "$SOCK")" = 600 ] || h_fail "control socket mode is $(stat -c %a "$SOCK"), want 600"
"$top_builddir/bench/rpcping" 127.0.0.1 "$H_PX_PORT" "$H_PX_PORT" "$H_EXPORT" 300 >/dev/null ||
	h_fail "rpcping through the proxy failed"
head -c 3000000 /dev/urandom >"$H_EXPORT/f"
nfs-cp "$(h_url_proxy /f)" "$H_DIR/o" >/dev/null 2>&1 || h_fail "copy failed"
$GV status --socket "$SOCK" >"$H_DIR/st.txt" || h_fail "gridvfs status failed"
cat "$H_DIR/st.txt"
n=$(awk '$1 == "GETATTR" { print $2 }' "$H_DIR/st.txt")
[ -n "$n" ] && [ "$n" -ge 400 ] || h_fail "status shows '$n' GETATTRs, rpcping made 400"
p50=$(awk '$1 == "GETATTR" { print $3 }' "$H_DIR/st.txt")
[ -n "$p50" ] && [ "$p50" -gt 0 ] || h_fail "no GETATTR latency figure"
grep -q "^link_nfs  *up" "$H_DIR/st.txt" || h_fail "status does not show the NFS link up"
# Fills are committed by the cache's writer thread in groups, after the
# READ was answered: give it up to 5 s.
for _ in $(seq 50); do
	grep -q "^cache_fill_bytes  *[1-9]" "$H_DIR/st.txt" && break
	sleep 0.1
	$GV status --socket "$SOCK" >"$H_DIR/st.txt" || h_fail "gridvfs status failed"
done
grep -q "^cache_fill_bytes  *[1-9]" "$H_DIR/st.txt" || h_fail "status shows no cache fills"
$GV status --json --socket "$SOCK" | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = [p for p in d["procedures"] if p["name"] == "GETATTR"][0]
assert g["calls"] >= 400 and g["p99_us"] >= g["p50_us"] > 0, g
assert d["links"]["nfs"]["state"] == "up"
assert d["cache"]["cache_fill_bytes"] > 0
' || h_fail "JSON status is not what it should be"
# --metrics: a silent client is connected during the scrape and a GETATTR.
exec 7<>"/dev/tcp/127.0.0.1/$MP" || h_fail "cannot connect to --metrics port"
python3 - "$MP" "$H_PX_PORT" "$H_EXPORT" "$top_srcdir/tests/tools" <<'PY' || h_fail "metrics: see above"
import re, socket, sys, time, urllib.request, urllib.error
sys.path.insert(0, sys.argv[4])
from nfsrpc import Nfs, opaque
mp = int(sys.argv[1])
t = time.time()
c = Nfs("127.0.0.1", int(sys.argv[2]), sys.argv[3])
st, r = c.call(1, opaque(c.root))
assert st == 0 and time.time() - t < 2, "a silent metrics client stalled the daemon"
body = urllib.request.urlopen(f"http://127.0.0.1:{mp}/metrics", timeout=5).read().decode()
# Exposition format: every sample line is NAME{LABELS} VALUE, every family
# has HELP and TYPE before its samples.
typed = set()
for line in body.splitlines():
    if line.startswith("# TYPE "):
        typed.add(line.split()[2]); continue
    if line.startswith("#"):
        continue
    m = re.fullmatch(r'([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+-]+)', line)
    assert m, "bad sample line: " + line
    name = m.group(1)
    base = re.sub(r"_(count|sum)$", "", name)
    assert name in typed or base in typed, "no TYPE for " + name
def val(pat):
    m = re.search("^" + pat + r" (\S+)$", body, re.M)
    assert m, "missing: " + pat
    return float(m.group(1))
assert val(r'gridvfs_up\{role="client"\}') == 1
assert val(r'gridvfs_calls_total\{program="nfs",procedure="GETATTR"\}') >= 401
assert val(r'gridvfs_call_latency_seconds\{program="nfs",procedure="GETATTR",quantile="0.99"\}') > 0
assert val(r'gridvfs_upstream_link_up\{export="",link="nfs"\}') == 1
assert val(r'gridvfs_cache_fetches_total\{export=""\}') >= 1
assert val(r'gridvfs_client_bytes_sent_total') > 3000000
try:
    urllib.request.urlopen(f"http://127.0.0.1:{mp}/other", timeout=5)
    raise AssertionError("/other was served")
except urllib.error.HTTPError as e:
    assert e.code == 404, e.code
print("metrics ok")
PY
exec 7>&-
# A second daemon may not take the live socket.
"$top_builddir/gridvfsd" --role client --listen 127.0.0.1:0 --upstream "127.0.0.1:$H_NFS_PORT" \
	--control "$SOCK" -F >"$H_DIR/second.log" 2>&1 && h_fail "a second daemon started on a live control socket"
grep -q "another daemon answers there" "$H_DIR/second.log" || h_fail "no clear error for a taken socket"
$GV status --socket "$SOCK" >/dev/null || h_fail "the first daemon's socket was disturbed"
h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
[ ! -e "$SOCK" ] || h_fail "the control socket was left behind"
$GV status --socket "$SOCK" 2>"$H_DIR/err" && h_fail "status on a dead socket succeeded"
grep -q "No such file" "$H_DIR/err" || h_fail "unclear error for a missing socket: $(cat "$H_DIR/err")"
h_pass
