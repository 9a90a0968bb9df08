#!/bin/bash
# cache_prefetch: `gridvfs cache prefetch` warms a running proxy's cache
# with pipelined READs (counted at a relay in front of ganesha); a later
# read through the proxy then sends no READ upstream and is bit-identical;
# a missing file is a clear error and a non-zero exit.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init cache_prefetch
GV="$top_builddir/gridvfs"
ST="$H_DIR/relay.stats"

h_ganesha
mkdir -p "$H_EXPORT/img" && head -c $((48 << 20)) /dev/urandom >"$H_EXPORT/img/golden.raw"
h_relay RP "$H_NFS_PORT" --rpc --stats "$ST"
h_gridvfsd_at px "$RP" "$H_MNT_PORT" --role client --cache-dir "$H_DIR/c" --control none
H_PX_PORT=$H_AT_PORT
$GV cache prefetch --proxy "127.0.0.1:$H_PX_PORT" --export "$H_EXPORT" img/golden.raw \
	>"$H_DIR/pf.out" 2>"$H_DIR/pf.err" || h_fail "prefetch failed: $(cat "$H_DIR/pf.err")"
grep -q "^prefetched 50331648 bytes" "$H_DIR/pf.out" || h_fail "prefetch did not report the whole file"
grep -q "48 / 48 MiB (100%)" "$H_DIR/pf.err" || h_fail "no progress shown"
sleep 0.5
r1=$(h_stat "$ST" calls.100003.6)
[ "$r1" -ge 48 ] || h_fail "prefetch sent only $r1 READs upstream"
nfs-cp "$(h_url_proxy /img/golden.raw)" "$H_DIR/o" >/dev/null 2>&1 || h_fail "read after prefetch failed"
cmp -s "$H_EXPORT/img/golden.raw" "$H_DIR/o" || h_fail "read after prefetch differs"
r2=$(h_stat "$ST" calls.100003.6)
[ "$r2" -eq "$r1" ] || h_fail "the read after prefetch sent $((r2 - r1)) READs upstream"
$GV cache prefetch --proxy "127.0.0.1:$H_PX_PORT" --export "$H_EXPORT" img/nope 2>"$H_DIR/err" &&
	h_fail "prefetch of a missing file succeeded"
grep -q "nope: no such file" "$H_DIR/err" || h_fail "unclear error: $(cat "$H_DIR/err")"
h_pass
