#!/bin/bash
# cache_readahead: readahead without a profile (issue 19).  An image with
# metadata but no profile is read one READ at a time through the client
# role over the emulated WAN (wanrelay, 20 ms RTT, 100 Mbit/s): a
# sequential stream of 16 KiB reads interleaved with a strided one (8 KiB
# every 192 KiB), as a guest reads two files at once.  With --stream-readahead
# off every new block is a synchronous miss; with it on the proxy detects
# both streams and fetches ahead: far fewer client READs send a fetch of
# their own, and fewer wait for upstream at all (gridvfs status:
# cache_read_misses, cache_read_waits, readahead_blocks).  Then a forward
# scan: 4 KiB reads that skip ahead by uneven steps of 16-240 KiB, as a
# file system reads an inode table (the guest's boot has ~100 of them):
# once the stream is sequential, a skip of up to 256 KiB continues it, so
# readahead covers the span.  Counts are asserted, times only reported.
# The background fetch is off in all runs (cache_background.sh tests it).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init cache_readahead
. "$top_srcdir/tests/integration/meta_lib.sh"
m_wan_image 48 100 11
python3 - >"$H_DIR/trace" <<'PY'
seq = [((1 << 20) + i * 16384, 16384) for i in range(256)]      # 4 MiB
stride = [((20 << 20) + i * 196608, 8192) for i in range(64)]  # 12 MiB
print("# sequential and strided, interleaved: OFFSET LENGTH")
for i, r in enumerate(seq):
    print(*r)
    if i % 4 == 3:
        print(*stride[i // 4])
PY
python3 - >"$H_DIR/trace.scan" <<'PY'
print("# a forward scan by uneven steps: OFFSET LENGTH")
off = 34 << 20
for i in range(160):
    print(off, 4096)
    off += 4096 + (16384 * (1 + (i * 7) % 15))   # 16 .. 240 KiB ahead
PY
TRACE=$H_DIR/trace

status() { "$GV" status --socket "$H_DIR/$1.sock" | awk -v k="$2" '$1 == k { print $2; exit }'; }
run() { # run NAME on|off
	local b0
	b0=$(h_stat "$ST" read_reply_bytes)
	h_take_port MP
	m_proxy "$1" "$WP" "$H_DIR/c-$1" --control "$H_DIR/$1.sock" \
		--metrics "127.0.0.1:$MP" --stream-readahead "$2" --background-fetch off
	$REPLAY 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" /vm.img "$H_EXPORT/vm.img" \
		"$TRACE" >"$H_DIR/$1.out" || h_fail "$1 replay: $(cat "$H_DIR/$1.out")"
	WAITS=$(status "$1" cache_read_waits) RA=$(status "$1" readahead_blocks)
	MISSES=$(status "$1" cache_read_misses)
	# the Prometheus endpoint says the same
	python3 - "$MP" "$MISSES" "$RA" <<-'PY' || h_fail "$1: metrics differ from status"
		import sys, urllib.request
		body = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1]).read().decode()
		got = {l.split("{")[0]: l.split()[-1] for l in body.splitlines() if l.startswith("gridvfs_")}
		assert got["gridvfs_cache_read_misses_total"] == sys.argv[2], got
		# readahead still in flight may land between the two looks
		assert int(got["gridvfs_readahead_blocks_total"]) >= int(sys.argv[3]), got
	PY
	h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
	WAN=$(($(h_stat "$ST" read_reply_bytes) - b0))
	h_log "$1: $(cat "$H_DIR/$1.out"); misses $MISSES, waits $WAITS, read ahead $RA blocks, WAN $WAN bytes"
}

run off off
w_off=$WAITS m_off=$MISSES wan_off=$WAN
[ "$RA" = 0 ] || h_fail "--stream-readahead off read $RA blocks ahead"
# 64 blocks of the sequential stream, one per strided read, the metadata
[ "$m_off" -ge 120 ] && [ "$w_off" -ge "$m_off" ] ||
	h_fail "$m_off misses, $w_off waits without readahead: counting is broken"
run on on
w_on=$WAITS m_on=$MISSES wan_on=$WAN
echo "cache_readahead: synchronous misses $m_off without readahead, $m_on with; READs that waited $w_off -> $w_on ($RA blocks read ahead); WAN MB $((wan_off >> 20)) -> $((wan_on >> 20)); replay $(awk '{ print $6 }' "$H_DIR/off.out") s -> $(awk '{ print $6 }' "$H_DIR/on.out") s"
[ $((m_on * 4)) -le "$m_off" ] || h_fail "readahead did not cut the synchronous misses to a quarter: $m_off -> $m_on"
[ "$w_on" -lt "$w_off" ] || h_fail "with readahead as many READs waited: $w_off -> $w_on"
[ "$RA" -gt 0 ] || h_fail "nothing was read ahead"
grep -q "read ahead" "$H_DIR/on.log" || h_fail "no readahead figure in the exit line"
# readahead may overshoot the end of each stream by its window, no more
[ "$wan_on" -le $((wan_off + (10 << 20))) ] || h_fail "readahead fetched $wan_on bytes, $wan_off without"

# --- a forward scan by uneven steps ----------------------------------------
TRACE=$H_DIR/trace.scan
run scanoff off
s_off=$MISSES
run scanon on
s_on=$MISSES
echo "cache_readahead: forward scan: synchronous misses $s_off without readahead, $s_on with ($RA blocks read ahead); replay $(awk '{ print $6 }' "$H_DIR/scanoff.out") s -> $(awk '{ print $6 }' "$H_DIR/scanon.out") s"
[ "$s_off" -ge 100 ] || h_fail "forward scan: only $s_off misses without readahead: counting is broken"
[ $((s_on * 3)) -le "$s_off" ] || h_fail "forward scan: readahead did not cut the synchronous misses to a third: $s_off -> $s_on"
h_pass
