#!/bin/bash
# wb_race.sh — the races that once made a caching client role lie, each
# checked byte for byte (tests/tools/nfsrace.py), through the chain as
# deployed (client role -> mTLS -> server role -> ganesha):
#  clean: write-back; WRITE, COMMIT, and a truncating SETATTR sent the
#         instant the COMMIT is answered (the file became clean in the same
#         millisecond): post-op size, GETATTR and READ say the new size.
#  fill:  a READ and a same-size overwrite of the block sent back to back,
#         under write-through and write-back: the next READs return the new
#         bytes, never a fill of the old ones.
# The export is an ext4 with whole-second timestamps (as many servers'
# file systems): a same-size overwrite within a second leaves the file's
# version unchanged, so only the proxy's own ordering can tell old bytes
# from new.  RACE_ROUNDS (default 300) rounds each.
. "$(dirname "$0")/../lib/harness.sh"
h_init wb_race
h_mount_coarse "$H_DIR/export" 256m
h_ganesha "$H_DIR/export"
h_store "$H_NFS_PORT" "$H_MNT_PORT"
N=${RACE_ROUNDS:-300}
RACE="$top_srcdir/tests/tools/nfsrace.py"

node() { # NAME POLICY: a client role with a cache in front of the store
	h_gridvfsd_at "$1" "$H_SR_PORT" "$H_SR_PORT" --role client "${H_NODE_TLS[@]}" \
		--cache-dir "$H_DIR/cache-$1" --write-policy "$2"
}

node back back
BACK=$H_AT_PORT
node through through
THROUGH=$H_AT_PORT

run() { # PORT MODE
	RACE_SEED=$RANDOM python3 "$RACE" 127.0.0.1 "$1" "$H_EXPORT" "$2" "$N" \
		>>"$H_DIR/race.log" 2>&1 || h_fail "$2 via port $1: $(tail -n 1 "$H_DIR/race.log")"
}
run "$BACK" clean
run "$THROUGH" fill
run "$BACK" fill
h_log "$(cat "$H_DIR/race.log")"
h_pass
