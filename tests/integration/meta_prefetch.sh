#!/bin/bash
# meta_prefetch: a boot-like read trace replayed (one READ at a time)
# through the client-role proxy over the emulated WAN (wanrelay, 20 ms
# RTT, 100 Mbit/s), cold, first without and then with a prefetch profile
# recorded from that trace (gridvfs meta record + attach).  Both replays
# read every byte right; with the profile the proxy prefetches (logged,
# counted) and the replay waits on the WAN fewer times.  Times and the
# ratio are reported, not asserted.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init meta_prefetch
. "$top_srcdir/tests/integration/meta_lib.sh"
m_wan_image 128 40 31
# A boot-like trace: 4-128 KiB reads of data blocks, in an order that
# jumps around the image (seeded, so every run replays the same boot).
m_boot_trace "$H_EXPORT/vm.img" "$H_DIR/trace"

replay() { # replay NAME CACHE_DIR
	m_proxy "$1" "$WP" "$2"
	$REPLAY 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" /vm.img "$H_EXPORT/vm.img" \
		"$H_DIR/trace" >"$H_DIR/$1.out" || h_fail "$1 replay: $(cat "$H_DIR/$1.out")"
	h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
	h_log "$1: $(cat "$H_DIR/$1.out")"
}
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$H_DIR/$1.out"; }

replay plain "$H_DIR/c1"
grep -q "profile 0" "$H_DIR/plain.log" || h_fail "the first run should have metadata without a profile"

"$GV" meta record "$H_DIR/trace" -o "$H_DIR/profile" 2>"$H_DIR/rec" || h_fail "meta record: $(cat "$H_DIR/rec")"
"$GV" meta attach "$H_EXPORT/vm.img.gvmeta" "$H_DIR/profile" >"$H_DIR/att" || h_fail "meta attach: $(cat "$H_DIR/att")"
n=$(grep -vc '^#' "$H_DIR/profile")
grep -q "profile of $n blocks" "$H_DIR/att" || h_fail "attach stored: $(cat "$H_DIR/att"), profile has $n blocks"
"$GV" meta show "$H_EXPORT/vm.img.gvmeta" | grep -q "profile: *$n blocks" || h_fail "meta show does not see the profile"
"$GV" meta show "$H_EXPORT/vm.img.gvmeta" | grep -q "matches" || h_fail "attaching made the metadata stale"

replay prefetch "$H_DIR/c2"
grep -q "profile $n" "$H_DIR/prefetch.log" || h_fail "the second run did not see the profile"
pf=$(grep -o '[0-9]* prefetched' "$H_DIR/prefetch.log" | awk '{ print $1 }')
[ -n "$pf" ] && [ "$pf" -gt 0 ] || h_fail "nothing was prefetched"
t1=$(field plain secs) t2=$(field prefetch secs) w1=$(field plain waits) w2=$(field prefetch waits)
echo "meta_prefetch: replay without profile ${t1}s ($w1 waits), with ${t2}s ($w2 waits, $pf blocks prefetched), ratio $(echo "scale=2; $t1 / $t2" | bc)"
[ "$w2" -lt "$w1" ] || h_fail "prefetch did not reduce the waits on the WAN: $w1 -> $w2"
h_pass
