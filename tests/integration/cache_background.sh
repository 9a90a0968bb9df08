#!/bin/bash
# cache_background: the background fetch of an image's non-zero blocks
# (issue 19).  An image with metadata (no profile) behind the emulated WAN
# (wanrelay, 20 ms RTT, 100 Mbit/s); a client opens it and reads one
# block.  The client role then fetches the image's non-zero blocks on its
# own (logged start and end): the READ bytes over the WAN are the
# non-zero bytes (+ the metadata file), never the zeros, and a full read
# afterwards sends no READ upstream.  A second, fresh proxy does the same
# while a client replays scattered reads: every byte is right, the
# background gave way to the client's misses (background_yields) and no
# block crossed the WAN twice.  With --background-fetch off nothing is
# fetched beyond what the client reads; with a cache less than twice the
# image's non-zero bytes the background fetch is skipped.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init cache_background
. "$top_srcdir/tests/integration/meta_lib.sh"
m_wan_image 64 25 13
NZ=$(python3 - "$H_EXPORT/vm.img" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
print(sum(1 for b in range(0, len(d), 65536) if any(d[b:b + 65536])) * 65536)
PY
)
META=$(stat -c %s "$H_EXPORT/vm.img.gvmeta")
# a first read of one non-zero block, then scattered reads (the replay)
python3 - "$H_EXPORT/vm.img" "$H_DIR" <<'PY'
import random, sys
d = open(sys.argv[1], "rb").read()
nz = [b for b in range(len(d) >> 16) if any(d[b << 16:(b + 1) << 16])]
open(sys.argv[2] + "/one", "w").write("%d 4096\n" % (nz[0] << 16))
r = random.Random(3)
with open(sys.argv[2] + "/scatter", "w") as f:
    for b in r.sample(nz, 120):
        f.write("%d 16384\n" % ((b << 16) + r.choice([0, 16384, 32768])))
PY
status() { "$GV" status --socket "$H_DIR/$1.sock" | awk -v k="$2" '$1 == k { print $2; exit }'; }
wait_done() { # wait_done NAME: until the background fetch logs its end
	for _ in $(seq 600); do
		grep -q "background fetch of vm.img done" "$H_DIR/$1.log" && return 0
		grep -q "background fetch of vm.img stopped" "$H_DIR/$1.log" && break
		sleep 0.1
	done
	h_fail "$1: the background fetch did not finish: $(grep background "$H_DIR/$1.log")"
}
replay() { # replay NAME TRACE
	$REPLAY 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" /vm.img "$H_EXPORT/vm.img" \
		"$H_DIR/$2" >>"$H_DIR/$1.out" || h_fail "$1 replay: $(cat "$H_DIR/$1.out")"
}

# --- an opened image is fetched whole, zeros excepted -------------------------
b0=$(h_stat "$ST" read_reply_bytes)
m_proxy bg "$WP" "$H_DIR/c1" --control "$H_DIR/bg.sock" --stream-readahead off
replay bg one
wait_done bg
grep -q "background fetch of vm.img started: $((NZ >> 16)) non-zero blocks" "$H_DIR/bg.log" ||
	h_fail "start not logged as expected: $(grep background "$H_DIR/bg.log")"
wan=$(($(h_stat "$ST" read_reply_bytes) - b0))
h_log "background: $wan bytes over the WAN for $NZ non-zero bytes, metadata $META; $(grep 'background fetch of vm.img done' "$H_DIR/bg.log")"
[ "$wan" -ge "$NZ" ] || h_fail "only $wan bytes crossed the WAN, the image has $NZ non-zero"
# READ replies carry ~130 bytes of headers each; the metadata file is read too
[ "$wan" -le $((NZ + META + NZ / 100)) ] || h_fail "$wan bytes crossed the WAN for $NZ non-zero bytes + $META of metadata"
[ "$(status bg background_bytes)" -gt $((NZ * 9 / 10)) ] || h_fail "background_bytes: $(status bg background_bytes)"
RATE=$(status bg upstream_rate_bytes)
r0=$(h_stat "$ST" calls.100003.6)
m_get vm.img "$H_DIR/full" || h_fail "full read failed"
cmp -s "$H_EXPORT/vm.img" "$H_DIR/full" || h_fail "full read differs"
rm -f "$H_DIR/full"
r1=$(h_stat "$ST" calls.100003.6)
[ "$r1" -eq "$r0" ] || h_fail "a full read after the background fetch sent $((r1 - r0)) READs upstream"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"

# --- while a client reads: it goes first, nothing is fetched twice -------------
b0=$(h_stat "$ST" read_reply_bytes)
m_proxy fg "$WP" "$H_DIR/c2" --control "$H_DIR/fg.sock" --stream-readahead off
replay fg scatter
wait_done fg
wan=$(($(h_stat "$ST" read_reply_bytes) - b0))
y=$(status fg background_yields) w=$(status fg cache_read_misses)
h_log "with a client: $wan WAN bytes, $y yields, $w client misses; $(cat "$H_DIR/fg.out")"
[ "$y" -gt 0 ] || h_fail "the background fetch never gave way to the client's misses"
[ "$wan" -le $((NZ + META + NZ / 100)) ] || h_fail "$wan bytes crossed the WAN for $NZ non-zero bytes: fetched twice"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"

# --- off: only what the client reads (and its time, for the report) ----------
b0=$(h_stat "$ST" read_reply_bytes)
m_proxy off "$WP" "$H_DIR/c3" --control "$H_DIR/off.sock" --stream-readahead off --background-fetch off
replay off one
sleep 1
wan=$(($(h_stat "$ST" read_reply_bytes) - b0))
[ "$wan" -le $((META + (1 << 20))) ] || h_fail "--background-fetch off: $wan bytes crossed the WAN for one read"
replay off scatter
h_log "the same scattered reads without the background fetch: $(tail -n 1 "$H_DIR/off.out")"
! grep -q "background fetch" "$H_DIR/off.log" || h_fail "--background-fetch off logged a background fetch"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
# --- an image that would fill more than half the cache is left alone ----------
m_proxy small "$WP" "$H_DIR/c4" --cache-size 24M
replay small one
grep -q "background fetch of vm.img skipped: 16.0 MiB non-zero, more than half of --cache-size" "$H_DIR/small.log" ||
	h_fail "a 24 MiB cache: $(grep background "$H_DIR/small.log")"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
echo "cache_background: $NZ non-zero bytes of 64 MiB fetched in the background ($(grep -o 'fetched in [0-9.]* s' "$H_DIR/bg.log" | head -1), share 50 % of a measured $((RATE / 1000)) kB/s, the relay passes 12500 kB/s); with a client replaying: gave way $y times, $w client misses, replay $(awk '{ print $6 }' "$H_DIR/fg.out") s (without the background fetch $(tail -n 1 "$H_DIR/off.out" | awk '{ print $6 }') s, $(tail -n 1 "$H_DIR/off.out" | awk '{ print $8 }') misses)"
h_pass
