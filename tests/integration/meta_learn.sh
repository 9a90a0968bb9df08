#!/bin/bash
# meta_learn: profiles learned at the store (issue 19).  Node A's client
# role boots (replays a boot-like trace, one READ at a time, over an
# emulated WAN: 20 ms RTT, 100 Mbit/s) an image that has no metadata at
# all, through the server role (mTLS).  The server role notes the first
# touches and, once the image is idle, publishes them as vm.img.gvmeta:
# owned and moded like the image, profile-only, "learned from 1 boot".
# Node A's boot pauses for longer than --learn-idle halfway (a kernel
# booting from elsewhere, a slow host): what the store published at the
# pause is updated, still "1 boot", when the boot goes on.
# Node B, a fresh cache, then finds that profile, prefetches along it
# (counted in `gridvfs status`) and waits on the WAN fewer times than A.
# Beside it: an image scanned without a profile gets the learned profile
# added with its hashes kept; an operator's attached profile and an
# untrusted (group-writable) metadata file are left byte for byte alone;
# and a client role with --learn-profiles yes (a store without a server
# role) publishes too, but not for a file under --learn-min-size.  Times and bytes are reported, not asserted.
# LEARN_OFF=1 runs the store with --learn-profiles no: the test must fail.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init meta_learn
. "$top_srcdir/tests/integration/meta_lib.sh"
REPLAY="python3 $top_srcdir/tests/integration/meta_replay.py"
export PYTHONPATH="$top_srcdir/tests/tools"
LEARN=(--learn-idle 2 --learn-min-size 1M)
[ "${LEARN_OFF:-0}" = 1 ] && LEARN=(--learn-profiles no)

h_ganesha
chmod 1777 "$H_EXPORT" # the images' owner (daemon) may create beside them
h_take_port MP
h_store "$H_NFS_PORT" "$H_MNT_PORT" "${LEARN[@]}" --control "$H_DIR/store.sock" \
	--metrics "127.0.0.1:$MP"
m_image "$H_EXPORT/vm.img" 128 40 31
for i in scanned attached planted; do m_image "$H_EXPORT/$i.img" 8 50 7; done
chown daemon:daemon "$H_EXPORT"/*.img && chmod 0640 "$H_EXPORT"/*.img
# a scan without a profile; a scan with an operator's profile; metadata
# someone made writable by others (untrusted): the last two stay as they are
for i in scanned attached planted; do
	"$GV" meta scan "$H_EXPORT/$i.img" >/dev/null || h_fail "meta scan $i"
done
printf '# gridvfs-profile block=65536\n3\n1\n2\n' >"$H_DIR/op.profile"
"$GV" meta attach "$H_EXPORT/attached.img.gvmeta" "$H_DIR/op.profile" >/dev/null ||
	h_fail "meta attach"
chown daemon:daemon "$H_EXPORT"/*.gvmeta
chmod 0666 "$H_EXPORT/planted.img.gvmeta"
before_att=$(h_sha256 "$H_EXPORT/attached.img.gvmeta")
before_pl=$(h_sha256 "$H_EXPORT/planted.img.gvmeta")

# The boot-like trace of meta_prefetch (seeded): scattered data blocks.
m_boot_trace "$H_EXPORT/vm.img" "$H_DIR/trace"
printf '%s\n' "458752 4096" "65536 8192" "262144 4096" "0 512" >"$H_DIR/small"
# the boot in two parts, with a pause between them
half=$(($(grep -vc '^#' "$H_DIR/trace") / 2))
grep -v '^#' "$H_DIR/trace" | head -n "$half" >"$H_DIR/trace1"
grep -v '^#' "$H_DIR/trace" | tail -n "+$((half + 1))" >"$H_DIR/trace2"
# blocks a trace touches
blocks() { awk '!/^#/ { for (b = int($1 / 65536); b <= int(($1 + $2 - 1) / 65536); b++) print b }' "$1" | sort -u | wc -l; }
touched=$(blocks "$H_DIR/trace") touched1=$(blocks "$H_DIR/trace1")

# node NAME: a client role with a fresh cache behind its own WAN relay to
# the store; sets NP (port), NPID, NST (relay stats file).
node() {
	NST=$H_DIR/$1.wan
	h_relay WAN "$H_SR_PORT" --stats "$NST" --delay-ms 10 --rate-mbit 100
	h_gridvfsd_at "$1" "$WAN" "$WAN" --role client --cache-dir "$H_DIR/$1.cache" \
		--cache-size 1G --control "$H_DIR/$1.sock" "${H_NODE_TLS[@]}"
	NP=$H_AT_PORT NPID=$H_AT_PID
}
# replay NAME PORT IMAGE TRACE
replay() {
	$REPLAY 127.0.0.1 "$2" "$H_EXPORT" "/$3" "$H_EXPORT/$3" "$4" >"$H_DIR/$1.out" ||
		h_fail "$1 replay of $3: $(cat "$H_DIR/$1.out")"
}
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' "$H_DIR/$1.out"; }

# --- node A boots with no metadata; the store learns ---------------------
node nodeA
replay bootA1 "$NP" vm.img "$H_DIR/trace1"
h_wait_log "$H_DIR/store.log" "profile of vm.img learned from 1 boot: $touched1 blocks" 15 ||
	h_fail "nothing published during node A's pause ($touched1 blocks touched)"
replay bootA2 "$NP" vm.img "$H_DIR/trace2"
for i in scanned attached planted; do replay "small-$i" "$NP" "$i.img" "$H_DIR/small"; done
h_log "node A: $(cat "$H_DIR/bootA1.out"), after the pause $(cat "$H_DIR/bootA2.out")"
h_wait_log "$H_DIR/store.log" "profile of vm.img learned from 1 boot: $touched blocks" 30 ||
	h_fail "the learned profile of vm.img was not completed after the pause"
h_wait_log "$H_DIR/store.log" "profile of scanned.img learned" 10 ||
	h_fail "no learned profile was added to scanned.img's metadata"
h_wait_log "$H_DIR/store.log" "profile of planted.img not published" 10 ||
	h_fail "the server role said nothing about planted.img"
# Waited for like the others: a node's background fetch of the image's
# non-zero blocks may keep it read (and the store's idle timer from
# running) after the replay.
h_wait_log "$H_DIR/store.log" "profile of attached.img not published: it has an attached profile" 10 ||
	h_fail "the operator's profile of attached.img was not reported as kept"
h_stop_pid "$NPID" || h_fail "node A exited $? on SIGTERM"
"$GV" status --socket "$H_DIR/store.sock" >"$H_DIR/statusS" || h_fail "gridvfs status of the store"
# vm.img twice (the pause), scanned.img; attached.img and planted.img left alone
# (vm.img more often if a loaded host pauses a replay for --learn-idle)
[ "$(awk '$1 == "learn_profiles_published" { print $2 }' "$H_DIR/statusS")" -ge 3 ] &&
	[ "$(awk '$1 == "learn_profiles_left_alone" { print $2 }' "$H_DIR/statusS")" = 2 ] ||
	h_fail "the store's learn counters: $(grep learn_ "$H_DIR/statusS")"
python3 -c 'import sys, urllib.request
print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
	"http://127.0.0.1:$MP/metrics" >"$H_DIR/metricsS" || h_fail "no metrics from the store"
grep -q '^gridvfs_learn_profiles_left_alone_total{export=""} 2$' "$H_DIR/metricsS" ||
	h_fail "metrics: $(grep learn "$H_DIR/metricsS")"

M=$H_EXPORT/vm.img.gvmeta
[ -f "$M" ] || h_fail "no $M"
[ "$(stat -c '%U:%G %a' "$M")" = "daemon:daemon 640" ] ||
	h_fail "$M is $(stat -c '%U:%G %a' "$M"), the image daemon:daemon 640"
ls -a "$H_EXPORT" | grep -q learn- && h_fail "a temporary file was left: $(ls -a "$H_EXPORT")"
"$GV" meta show "$M" >"$H_DIR/show" || h_fail "meta show: $(cat "$H_DIR/show")"
grep -q "^origin: *learned from 1 boot$" "$H_DIR/show" || h_fail "origin: $(cat "$H_DIR/show")"
grep -q "^hashes: *none" "$H_DIR/show" || h_fail "a profile-only file shows hashes"
grep -q "trust: *trusted" "$H_DIR/show" || h_fail "the learned file is not trusted: $(cat "$H_DIR/show")"
n=$(awk '$1 == "profile:" { print $2 }' "$H_DIR/show")
# every block A read is in it; it never names more blocks than A touched
[ "$n" -eq "$touched" ] ||
	h_fail "learned profile has $n blocks; node A touched $touched"
"$GV" meta show "$H_EXPORT/scanned.img.gvmeta" >"$H_DIR/show2" || h_fail "meta show scanned"
grep -q "^origin: *learned from 1 boot" "$H_DIR/show2" && grep -q "^zero_blocks:" "$H_DIR/show2" &&
	grep -q "matches" "$H_DIR/show2" ||
	h_fail "scanned.img: hashes or profile lost: $(cat "$H_DIR/show2")"
[ "$(h_sha256 "$H_EXPORT/attached.img.gvmeta")" = "$before_att" ] ||
	h_fail "the operator's attached profile was replaced"
[ "$(h_sha256 "$H_EXPORT/planted.img.gvmeta")" = "$before_pl" ] ||
	h_fail "an untrusted metadata file was replaced"

# --- node B, fresh: prefetches along the learned profile -----------------
node nodeB
replay bootB "$NP" vm.img "$H_DIR/trace"
grep -q "metadata vm.img.gvmeta: .*profile $n learned from 1 boot" "$H_DIR/nodeB.log" ||
	h_fail "node B did not load the learned profile"
"$GV" status --socket "$H_DIR/nodeB.sock" >"$H_DIR/statusB" || h_fail "gridvfs status"
pf=$(awk '$1 == "meta_prefetched_blocks" { print $2 }' "$H_DIR/statusB")
[ -n "$pf" ] && [ "$pf" -gt 0 ] || h_fail "node B prefetched nothing: $(cat "$H_DIR/statusB")"
h_stop_pid "$NPID" || h_fail "node B exited $? on SIGTERM"
wa=$(($(field bootA1 waits) + $(field bootA2 waits))) wb=$(field bootB waits)
ta=$(echo "$(field bootA1 secs) + $(field bootA2 secs)" | bc) tb=$(field bootB secs)
ba=$(h_stat "$H_DIR/nodeA.wan" bytes_down) bb=$(h_stat "$H_DIR/nodeB.wan" bytes_down)
echo "meta_learn: node A (no profile) ${ta}s, $wa waits, $ba B over the WAN; node B (learned, $n blocks) ${tb}s, $wb waits, $bb B, $pf blocks prefetched"
[ "$wb" -lt "$wa" ] || h_fail "the learned profile did not reduce node B's waits: $wa -> $wb"

# --- a client role learns for a store without a server role -------------
if [ "${LEARN_OFF:-0}" != 1 ]; then
	m_image "$H_EXPORT/c.img" 8 50 9
	h_gridvfsd_at nodeC "$H_NFS_PORT" "$H_MNT_PORT" --role client \
		--cache-dir "$H_DIR/nodeC.cache" --learn-profiles yes --learn-idle 1 \
		--learn-min-size 4M
	head -c $((2 << 20)) /dev/urandom >"$H_EXPORT/doc.bin" # under --learn-min-size
	replay small-doc "$H_AT_PORT" doc.bin "$H_DIR/small"
	replay small-c "$H_AT_PORT" c.img "$H_DIR/small"
	h_wait_log "$H_DIR/nodeC.log" "profile of c.img learned from 1 boot: 4 blocks" 15 ||
		h_fail "the client role did not publish c.img's profile"
	sleep 1
	[ -e "$H_EXPORT/doc.bin.gvmeta" ] && h_fail "a file under --learn-min-size got a profile"
	"$GV" meta show "$H_EXPORT/c.img.gvmeta" | grep -q "trust: *trusted" ||
		h_fail "the client role's learned file is not trusted"
	h_stop_pid "$H_AT_PID" || h_fail "node C exited $? on SIGTERM"
fi
grep -q "learn_profiles_published" "$H_DIR/statusB" && h_fail "a client role without learning shows learn counters"
h_pass
