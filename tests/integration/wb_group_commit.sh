#!/bin/bash
# wb_group_commit.sh — the dirty log's group commit (issue 18), counted,
# never timed: a write-back client role in front of ganesha, and
# bench/nfsrand writing 4 KiB at random offsets.
#  A. 32 WRITEs in flight: every one is absorbed into the log, and they
#     share fsyncs: the log's groups (one fsync each, wb_groups) are at
#     most a quarter of its records (wb_group_records); before the writer
#     lingered for the WRITEs it had just answered, a 32-deep writer got
#     ~13 per fsync, now ~25.  The closing COMMIT brings everything
#     upstream, and the log is empty after it.  Only groups that hold a
#     deletion (or a stable WRITE) are flushed twice (wb_group_syncs):
#     the absorbed UNSTABLE WRITEs' groups are flushed once.
#  B. One WRITE in flight: the writer never lingers for it (a lone
#     writer's WRITE is committed the moment it arrives).
. "$(dirname "$0")/../lib/harness.sh"
h_init wb_group_commit
NFSRAND="$top_builddir/bench/nfsrand"
[ -x "$NFSRAND" ] || h_fail "bench/nfsrand is not built (make bench/nfsrand)"
GV="$top_builddir/gridvfs"
SOCK="$H_DIR/ctl.sock"
N=${WB_GROUP_WRITES:-3000}

h_ganesha
head -c $((64 << 20)) /dev/urandom >"$H_EXPORT/f"
h_gridvfsd --cache-dir "$H_DIR/cache" --write-policy back --control "$SOCK"
URL="nfs://127.0.0.1$H_EXPORT/f?version=3&nfsport=$H_PX_PORT&mountport=$H_PX_PORT"

st() { # NAME: one figure of gridvfs status
	"$GV" status --socket "$SOCK" | awk -v k="$1" '$1 == k { print $2; f = 1 } END { exit !f }' ||
		h_fail "gridvfs status has no $1"
}

# --- A: 32 in flight ------------------------------------------------------
"$NFSRAND" -d 32 -b 4096 -n "$N" -s 7 -w "$URL" >"$H_DIR/a.out" 2>>"$H_DIR/nfsrand.log" ||
	h_fail "A: nfsrand failed: $(tail -n 2 "$H_DIR/nfsrand.log")"
h_log "A: $(cat "$H_DIR/a.out")"
grep -q "^ops $N " "$H_DIR/a.out" || h_fail "A: not every WRITE was answered: $(cat "$H_DIR/a.out")"
[ "$(st wb_passed_through)" = 0 ] || h_fail "A: WRITEs went write-through (no grant?)"
REC=$(st wb_group_records) GR=$(st wb_group_deletes) GROUPS_=$(st wb_groups)
h_log "A: groups $GROUPS_ records $REC deletes $GR lingers $(st wb_group_lingers) commit_us $(st wb_group_commit_us)"
[ "$REC" = "$N" ] || h_fail "A: $REC records put in the log, $N WRITEs sent"
[ "$GROUPS_" -gt 0 ] && [ $((GROUPS_ * 4)) -le "$REC" ] ||
	h_fail "A: $GROUPS_ fsync'ed groups for $REC records: group commit does not batch a 32-deep writer"
[ "$(st wb_group_lingers)" -gt 0 ] || h_fail "A: the writer never lingered for a 32-deep writer"
# The COMMIT returned: everything is upstream and deleted from the log.
for ((i = 0; i < 50; i++)); do
	[ "$(st wb_dirty_bytes)" = 0 ] && [ "$(st wb_group_deletes)" = "$N" ] && break
	sleep 0.1
done
[ "$(st wb_dirty_bytes)" = 0 ] || h_fail "A: $(st wb_dirty_bytes) bytes still dirty after the COMMIT"
[ "$(st wb_group_deletes)" = "$N" ] || h_fail "A: $(st wb_group_deletes) records deleted, $N written"
SY=$(st wb_group_syncs) GROUPS_=$(st wb_groups)
h_log "A: $SY of $GROUPS_ groups flushed twice"
[ "$SY" -ge 1 ] || h_fail "A: no group was made durable at once, yet $N records were deleted"
[ "$SY" -lt "$GROUPS_" ] || h_fail "A: all $GROUPS_ groups flushed twice: the UNSTABLE WRITEs' groups should be flushed once"

# --- B: one in flight -----------------------------------------------------
L0=$(st wb_group_lingers) R0=$(st wb_group_records)
"$NFSRAND" -d 1 -b 4096 -n 300 -s 8 -w "$URL" >"$H_DIR/b.out" 2>>"$H_DIR/nfsrand.log" ||
	h_fail "B: nfsrand failed: $(tail -n 2 "$H_DIR/nfsrand.log")"
h_log "B: $(cat "$H_DIR/b.out"); lingers $L0 -> $(st wb_group_lingers)"
[ $(($(st wb_group_records) - R0)) = 300 ] || h_fail "B: not every WRITE went to the log"
[ "$(st wb_group_lingers)" = "$L0" ] || h_fail "B: the log lingered for a writer with one WRITE in flight"
h_pass
