#!/bin/bash
# herd: N nodes (client-role gridvfsd, each with its own cache) replay the
# same boot-like read trace at the same moment through one site cache (a
# client role) over the emulated WAN to the store's server role (mTLS):
#   ganesha <- relay (counts READs) <- server role <- WAN relay (counts
#   bytes, 10 ms one way) <- site <- node1..nodeN <- meta_replay.py each
# Every node reads every byte right; the site asks upstream for each block
# once however many nodes miss it together: the store's READ reply bytes
# and the WAN's bytes stay within 1.1x the distinct non-zero data the
# trace reads (zero blocks come from the image's metadata, no transfer);
# the site's shared-fetch counter shows that nodes did race.  HERD_N nodes
# (default 8).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init herd
. "$top_srcdir/tests/integration/meta_lib.sh"
N=${HERD_N:-8}
ST="$H_DIR/store.stats" WS="$H_DIR/wan.stats"
REPLAY="python3 $top_srcdir/tests/integration/meta_replay.py"
export PYTHONPATH="$top_srcdir/tests/tools"

h_ganesha
h_relay RP "$H_NFS_PORT" --rpc --stats "$ST"
h_store "$RP" "$H_MNT_PORT"
h_relay WP "$H_SR_PORT" --stats "$WS" --delay-ms 10
h_gridvfsd_at site "$WP" "$WP" --role client --cache-dir "$H_DIR/site" \
	--control "$H_DIR/site.sock" "${H_NODE_TLS[@]}"
SITE=$H_AT_PORT
NODES=()
for i in $(seq "$N"); do
	h_gridvfsd_at "node$i" "$SITE" "$SITE" --role client --cache-dir "$H_DIR/n$i" \
		--log-level info
	NODES+=("$H_AT_PORT")
done

# A 32 MiB image, 30 % of its 64 KiB blocks data, the rest holes, with its
# metadata; a boot-like trace over it: every data block read in 1-4 small
# pieces (some runs cross into the next block), in an order that jumps
# around the image, with reads of zero regions between.  D: the bytes of
# the distinct non-zero blocks the trace touches.
m_image "$H_EXPORT/vm.img" 32 30 41
"$GV" meta scan "$H_EXPORT/vm.img" >/dev/null || h_fail "meta scan"
python3 - "$H_EXPORT/vm.img" "$H_DIR/trace" >"$H_DIR/D" <<'PY'
import random, sys
data = open(sys.argv[1], "rb").read()
nblk = len(data) >> 16
nonzero = [any(data[b << 16:(b + 1) << 16]) for b in range(nblk)]
r = random.Random(7)
blocks = list(range(nblk))
r.shuffle(blocks)
touched = set()
with open(sys.argv[2], "w") as t:
    t.write("# boot-like trace: OFFSET LENGTH\n")
    for b in sorted(blocks, key=lambda b: (b // 32 * 7919) % 101 + r.random()):
        if not nonzero[b] and r.random() > 0.2:
            continue
        off = (b << 16) + r.choice([0, 4096, 16384, 49152])
        for k in range(r.choice([1, 2, 4])):
            n = r.choice([4096, 16384, 16384])
            o = off + k * 16384
            if o + n > len(data):
                break
            t.write(f"{o} {n}\n")
            touched.update(range(o >> 16, ((o + n - 1) >> 16) + 1))
print(sum(1 for b in touched if nonzero[b]) << 16)
PY
D=$(cat "$H_DIR/D")
[ "$D" -gt $((4 << 20)) ] || h_fail "the trace reads too little data: $D bytes"

# All N replays LOOKUP, then wait for the same instant to start reading.
at=$(python3 -c 'import time; print(time.time() + 3)')
pids=()
for i in $(seq "$N"); do
	REPLAY_AT=$at $REPLAY 127.0.0.1 "${NODES[$((i - 1))]}" "$H_EXPORT" /vm.img \
		"$H_EXPORT/vm.img" "$H_DIR/trace" >"$H_DIR/replay$i.out" 2>&1 &
	pids+=($!)
done
for i in $(seq "$N"); do
	wait "${pids[$((i - 1))]}" ||
		h_fail "node$i's replay failed: $(tail -n 3 "$H_DIR/replay$i.out")"
	h_log "node$i: $(cat "$H_DIR/replay$i.out")"
done

reads=$(h_stat "$ST" calls.100003.6)
rbytes=$(h_stat "$ST" read_reply_bytes)
wan=$(($(h_stat "$WS" bytes_up) + $(h_stat "$WS" bytes_down)))
shared=$("$GV" status --socket "$H_DIR/site.sock" | awk '$1 == "cache_fetches_shared" { print $2; exit }')
slow=$(awk '{ print $6 }' "$H_DIR"/replay*.out | sort -g | tail -n 1)
echo "herd: $N nodes, distinct non-zero data $D bytes; store READs $reads ($rbytes reply bytes); WAN $wan bytes ($(echo "scale=3; $wan / $D" | bc)x); site shared fetches $shared; slowest node ${slow}s"
[ "$reads" -gt 0 ] || h_fail "the store relay counted no READ"
# Each block once: the image's distinct blocks, its metadata file twice
# (the site reads it for itself, and for its nodes through its block
# cache), and at most 192 bytes of RPC and NFS headers per READ reply (132
# in fact); one block fetched twice is over.
meta=$(stat -c %s "$H_EXPORT/vm.img.gvmeta")
[ "$rbytes" -le $((D + 2 * meta + reads * 192)) ] ||
	h_fail "the store sent $rbytes bytes in READ replies for $D + 2 x $meta bytes of distinct data: $(((rbytes - D - 2 * meta) >> 16)) blocks' worth more than once"
[ "$wan" -le $((D * 11 / 10)) ] ||
	h_fail "the WAN carried $wan bytes for $D bytes of distinct data (over 1.1x)"
# Each node reads the metadata file once: N-1 shared reads at most from
# that; more means the nodes' image misses met at the site.
[ -n "$shared" ] && [ "$shared" -ge "$N" ] ||
	h_fail "the site shared too few fetches between nodes (cache_fetches_shared: '$shared')"
h_pass
