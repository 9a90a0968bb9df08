#!/bin/bash
# meta_dedup: two 128 MiB images sharing 90 % of their 64 KiB blocks (a
# golden image and a clone that drifted), each with its metadata.  After
# both are read through the client-role proxy the cache holds at most
# 1.15x what it held after the first; the second image costs only its own
# blocks over the wire; `gridvfs cache verify` finds the chunk counts
# right.  Then, with a 48 MiB cap, reading A, B, A evicts shared chunks by
# reference count: data stays right, the cap holds, verify passes.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init meta_dedup
. "$top_srcdir/tests/integration/meta_lib.sh"
ST="$H_DIR/relay.stats"

h_ganesha
h_relay RP "$H_NFS_PORT" --rpc --stats "$ST"
rbytes() { h_stat "$ST" read_reply_bytes; }

SIZE=$((128 << 20))
m_image "$H_EXPORT/golden.img" 128 100 11
cp "$H_EXPORT/golden.img" "$H_EXPORT/clone.img"
m_rewrite "$H_EXPORT/clone.img" 10 12
"$GV" meta scan "$H_EXPORT/golden.img" >/dev/null || h_fail "scan golden"
"$GV" meta scan "$H_EXPORT/clone.img" >/dev/null || h_fail "scan clone"

m_proxy px "$RP" "$H_DIR/c1"
m_get golden.img "$H_DIR/a" && cmp -s "$H_EXPORT/golden.img" "$H_DIR/a" ||
	h_fail "golden.img read wrong"
sleep 1
one=$(m_cache_stat "$H_DIR/c1" bytes)
b0=$(rbytes)
m_get clone.img "$H_DIR/b" && cmp -s "$H_EXPORT/clone.img" "$H_DIR/b" ||
	h_fail "clone.img read wrong"
b1=$(rbytes)
sleep 1
two=$(m_cache_stat "$H_DIR/c1" bytes)
chunks=$(m_cache_stat "$H_DIR/c1" chunks)
h_log "cache bytes after golden: $one, after clone too: $two; chunks $chunks; clone cost $((b1 - b0)) bytes upstream"
echo "meta_dedup: cache $one -> $two bytes (ratio $(echo "scale=3; $two / $one" | bc)), clone read $((b1 - b0)) bytes upstream"
[ -n "$one" ] && [ "$one" -ge "$SIZE" ] || h_fail "after one image the cache holds only '$one' bytes"
[ $((two * 100)) -le $((one * 115)) ] || h_fail "two images take $two bytes, one took $one: more than 1.15x"
[ "$chunks" -ge 2048 ] && [ "$chunks" -le 2300 ] || h_fail "$chunks chunks for 2048 + 204 distinct blocks"
[ $((b1 - b0)) -le $((SIZE * 15 / 100)) ] || h_fail "the clone cost $((b1 - b0)) bytes upstream: shared blocks were fetched again"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
"$GV" cache verify "$H_DIR/c1" >"$H_DIR/verify" 2>&1 || h_fail "cache verify: $(cat "$H_DIR/verify")"
grep -q " 0 errors" "$H_DIR/verify" || h_fail "cache verify: $(cat "$H_DIR/verify")"

# --- eviction of shared chunks under a cap ----------------------------------
m_proxy px2 "$RP" "$H_DIR/c2" --cache-size 48M
for f in golden clone golden; do
	rm -f "$H_DIR/x"
	m_get "$f.img" "$H_DIR/x" && cmp -s "$H_EXPORT/$f.img" "$H_DIR/x" ||
		h_fail "$f.img read wrong under a 48 MiB cap"
done
sleep 1
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
bytes=$(m_cache_stat "$H_DIR/c2" bytes)
h_log "under a 48 MiB cap: $bytes bytes"
[ "$bytes" -le $(((48 << 20) + (64 << 10))) ] || h_fail "cache holds $bytes bytes, cap 48 MiB"
"$GV" cache verify "$H_DIR/c2" >"$H_DIR/verify2" 2>&1 || h_fail "cache verify after eviction: $(cat "$H_DIR/verify2")"
grep -q " 0 errors" "$H_DIR/verify2" || h_fail "cache verify after eviction: $(cat "$H_DIR/verify2")"
h_pass
