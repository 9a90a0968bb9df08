#!/bin/bash
# meta_zero: VM-image metadata against real ganesha behind a counting relay.
# A 256 MiB image of which 80 % is zeros (sparse; the issue says 1 GiB,
# scaled down for the time budget on 2 cores): with its metadata (gridvfs
# meta scan), a cold full read through the client-role proxy sends at most
# 22 % of the image's bytes upstream and is bit-identical; without the
# metadata the same read sends the whole image (reported).  A warm read
# sends no READ at all.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init meta_zero
. "$top_srcdir/tests/integration/meta_lib.sh"
ST="$H_DIR/relay.stats"

h_ganesha
h_relay RP "$H_NFS_PORT" --rpc --stats "$ST"
rbytes() { h_stat "$ST" read_reply_bytes; }
reads() { h_stat "$ST" calls.100003.6; }

SIZE=$((256 << 20))
m_image "$H_EXPORT/vm.img" 256 20 7
out=$("$GV" meta scan "$H_EXPORT/vm.img") || h_fail "meta scan failed"
h_log "$out"
[ -s "$H_EXPORT/vm.img.gvmeta" ] || h_fail "meta scan wrote no vm.img.gvmeta"
"$GV" meta show "$H_EXPORT/vm.img.gvmeta" >"$H_DIR/show" || h_fail "meta show: $(cat "$H_DIR/show")"
grep -q "zero_blocks: *3277 (80.0 %)" "$H_DIR/show" || h_fail "meta show: $(cat "$H_DIR/show")"
grep -q "image: .*matches" "$H_DIR/show" || h_fail "meta show does not match the image"

# --- cold, with metadata ----------------------------------------------------
m_proxy px "$RP" "$H_DIR/c1"
b0=$(rbytes)
t0=$(date +%s.%N)
m_get vm.img "$H_DIR/o1" || h_fail "nfs-cp through the proxy failed"
t1=$(date +%s.%N)
b1=$(rbytes)
cmp -s "$H_EXPORT/vm.img" "$H_DIR/o1" || h_fail "cold read with metadata differs"
up=$((b1 - b0))
h_log "cold read with metadata: $up bytes upstream ($((up * 100 / SIZE)) % of the image), $(echo "$t1 - $t0" | bc) s"
echo "meta_zero: cold with metadata: $up bytes over the relay ($((up * 1000 / SIZE)) per mille)"
[ "$up" -gt 0 ] || h_fail "no READ bytes counted: counting is broken"
[ "$up" -le $((SIZE * 22 / 100)) ] || h_fail "cold read sent $up bytes upstream, more than 22 % of $SIZE"
grep -q "metadata vm.img.gvmeta: 4096 blocks" "$H_DIR/px.log" || h_fail "proxy did not log the metadata it found"

# --- warm: nothing upstream --------------------------------------------------
sleep 0.5
r0=$(reads)
rm -f "$H_DIR/o1"
m_get vm.img "$H_DIR/o2" || h_fail "warm nfs-cp failed"
cmp -s "$H_EXPORT/vm.img" "$H_DIR/o2" || h_fail "warm read differs"
r1=$(reads)
[ "$r1" -eq "$r0" ] || h_fail "warm read sent $((r1 - r0)) READs upstream"
rm -f "$H_DIR/o2"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
grep -q "metadata: 1 files with metadata" "$H_DIR/px.log" || h_fail "no metadata summary at exit"

# --- cold, without metadata (for the report) ---------------------------------
mv "$H_EXPORT/vm.img.gvmeta" "$H_DIR/saved.gvmeta"
m_proxy px2 "$RP" "$H_DIR/c2"
b0=$(rbytes)
m_get vm.img "$H_DIR/o3" || h_fail "nfs-cp without metadata failed"
b1=$(rbytes)
cmp -s "$H_EXPORT/vm.img" "$H_DIR/o3" || h_fail "cold read without metadata differs"
h_log "cold read without metadata: $((b1 - b0)) bytes upstream"
echo "meta_zero: cold without metadata: $((b1 - b0)) bytes over the relay"
[ $((b1 - b0)) -ge "$SIZE" ] || h_fail "without metadata only $((b1 - b0)) bytes came: the 22 % check proves nothing"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
h_pass
