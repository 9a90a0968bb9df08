#!/bin/bash
# fault_cache_full: the client role's cache directory runs out of room.
#  A. Cache dir full: a write-back proxy's --cache-dir (read cache and
#     dirty log) is on a 160 MiB tmpfs that another writer fills up.  Reads
#     through the proxy stay correct (from upstream) and the log says the
#     cache file system is full; WRITEs are answered NFS3_OK (durable) or
#     NFS3ERR_NOSPC, nothing else, and a refused WRITE never reaches
#     upstream; the proxy is kill -9'd and restarted on the full disk, and
#     starts and serves.  Then, in that process: data acknowledged while
#     upstream was paused is flushed while the disk is full again and
#     other WRITEs are being refused (so deleting the flushed records from
#     the log can fail).  Once the space is back the same process,
#     unrestarted, takes writes again, the clients' COMMITs complete, every
#     acknowledged chunk is upstream, and the read cache resumes ("writes
#     resumed", with the cap given back as the free space allows: a
#     second read of a 16 MiB file sends no READ upstream).
#     A runs through the chain as deployed: client role -> mTLS -> server
#     role -> relay -> ganesha (the relay counts READs and pauses upstream).
#  B. LMDB map full: a write-through proxy with --cache-size 1M (map =
#     2 x cap + 64 MiB).  Four concurrent cold reads of 32 MiB files do not
#     fill the map (a backlog is committed in groups, not as one
#     transaction), the cache stays within its cap and 'gridvfs cache
#     stat' reads it.  Then a reader that holds an old snapshot (mdb_dump
#     blocked on a pipe) keeps freed pages from reuse: the map fills, the
#     log says "LMDB map full", reads stay correct.  The reader is kill -9'd
#     (its reader slot stays behind): the writer clears the dead slot and
#     resumes within one retry, and the cache serves again.  After a
#     restart the cache is opened as it is, not moved aside.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init fault_cache_full
GV="$top_builddir/gridvfs"
WR="python3 $top_srcdir/tests/tools/nfswriter.py"
ST="$H_DIR/relay.stats"
command -v mdb_dump >/dev/null && command -v mdb_stat >/dev/null ||
	h_fail "mdb_dump/mdb_stat missing (lmdb-utils)"

h_ganesha
h_relay RP "$H_NFS_PORT" --rpc --stats "$ST" --control "$H_DIR/relay.ctl"
reads() { h_stat "$ST" calls.100003.6; }
relay() { "$top_builddir/tests/tools/wanrelay" --ctl "$H_DIR/relay.ctl" "$1" >/dev/null ||
	h_fail "cannot $1 the relay"; }
fill() { dd if=/dev/zero of="$H_DIR/fs/filler" bs=1M >/dev/null 2>&1
	[ "$(avail_kib "$H_DIR/fs")" -lt 1024 ] || h_fail "the tmpfs did not fill up"; }
url() { # PORT PATH
	printf 'nfs://127.0.0.1%s%s?version=3&nfsport=%s&mountport=%s\n' \
		"$H_EXPORT" "$2" "$1" "$1"
}
get() { # PORT NAME: read NAME through the proxy on PORT, compare
	rm -f "$H_DIR/got"
	timeout -k 5 120 nfs-cp "$(url "$1" "/$2")" "$H_DIR/got" >>"$H_DIR/cp.log" 2>&1 ||
		h_fail "$3: nfs-cp of $2 failed"
	cmp -s "$H_EXPORT/$2" "$H_DIR/got" || h_fail "$3: $2 read through the proxy differs"
}
wait_file() { # FILE SECS
	local n
	for ((n = 0; n < $2 * 10; n++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
avail_kib() { df --output=avail -k "$1" | tail -n 1 | tr -d ' '; }
for f in r1 r2; do head -c $((16 << 20)) /dev/urandom >"$H_EXPORT/$f"; done
for i in 1 2 3 4 5 6 7; do head -c $((32 << 20)) /dev/urandom >"$H_EXPORT/m$i"; done
head -c $((256 << 10)) /dev/urandom >"$H_EXPORT/small"
touch "$H_EXPORT/w" "$H_EXPORT/wa" "$H_EXPORT/wb" && chmod 666 "$H_EXPORT"/w*

# --- A: the cache dir's file system fills up ------------------------------
h_mount_tmpfs "$H_DIR/fs" 160m
h_store "$RP" "$H_MNT_PORT"
PA_ARGS=(--role client --cache-dir "$H_DIR/fs/c" --cache-size 1G --write-policy back
	--control none "${H_NODE_TLS[@]}")
h_gridvfsd_at pa "$H_SR_PORT" "$H_SR_PORT" "${PA_ARGS[@]}"
PA_PORT=$H_AT_PORT PA=$H_AT_PID
get "$PA_PORT" r1 "A: before"
sleep 0.5
# Someone else fills the file system.
fill
h_log "A: cache file system full ($(avail_kib "$H_DIR/fs") KiB free)"
get "$PA_PORT" r2 "A: full"
get "$PA_PORT" r1 "A: full"
h_wait_log "$H_DIR/pa.log" "\(cache file system full\); bypassing the cache" 5 ||
	h_fail "A: no log line saying the cache file system is full"
# Write-back WRITEs on a full disk: durable and acknowledged, or refused
# with NFS3ERR_NOSPC (nfswriter fails on any other answer).
$WR write 127.0.0.1 "$PA_PORT" "$H_EXPORT" /w --mib 4 --tag wfull \
	--acked "$H_DIR/w1.acked" --allow-nospc --timeout 60 \
	>"$H_DIR/w1.out" 2>"$H_DIR/w1.err" ||
	h_fail "A: WRITE on a full disk got neither OK nor NOSPC: $(tail -n 2 "$H_DIR/w1.err")"
h_log "A: writer on a full disk: $(cat "$H_DIR/w1.out")"
grep -q "nospc [1-9]" "$H_DIR/w1.out" ||
	h_fail "A: no WRITE was refused: the dirty log never met the full disk ($(cat "$H_DIR/w1.out"))"
grep -qE "dirty log.*(No space left|NFS3ERR_NOSPC)" "$H_DIR/pa.log" ||
	h_fail "A: no log line saying the dirty log is out of space"
kill -0 "$PA" 2>/dev/null || h_fail "A: the proxy died on a full disk"

# kill -9 on the full disk, restart on the same port and cache dir.
disown "$PA" 2>/dev/null
kill -KILL "$PA"
h__wait_gone "$PA" 10
h__forget_pid "$PA"
"$top_builddir/gridvfsd" -c /dev/null --listen "127.0.0.1:$PA_PORT" \
	--upstream "127.0.0.1:$H_SR_PORT" --mount-upstream "127.0.0.1:$H_SR_PORT" \
	--foreground --log-level debug "${PA_ARGS[@]}" </dev/null >>"$H_DIR/pa2.log" 2>&1 &
PA=$!
H_PIDS+=("$PA")
h_wait_tcp "$PA_PORT" 20 "$PA" ||
	h_fail "A: the proxy did not start again on the full disk: $(tail -n 3 "$H_DIR/pa2.log")"
grep -q "verifier .* (kept)" "$H_DIR/pa2.log" || h_fail "A: the dirty log was not kept across kill -9"
get "$PA_PORT" r2 "A: restarted on a full disk"
get "$PA_PORT" r1 "A: restarted on a full disk"
h_wait_log "$H_DIR/pa2.log" "bypassing the cache" 5 ||
	h_fail "A: the restarted proxy did not meet the full disk (test broken?)"

# Acknowledged while upstream is paused, flushed on a full disk while other
# WRITEs are refused: deletions from the log share their groups and fail.
rm -f "$H_DIR/fs/filler"
# (the writer's LOOKUP needs upstream: it is made before the pause)
$WR write 127.0.0.1 "$PA_PORT" "$H_EXPORT" /wa --mib 2 --tag wpaused --go "$H_DIR/wa.go" \
	>"$H_DIR/wa.out" 2>"$H_DIR/wa.err" &
WA=$!
wait_file "$H_DIR/wa.go.ready" 10 || h_fail "A: writer did not get ready: $(tail -n 2 "$H_DIR/wa.err")"
relay pause
touch "$H_DIR/wa.go"
wait "$WA" || h_fail "A: writes with upstream paused failed: $(tail -n 2 "$H_DIR/wa.err")"
grep -q "acked 32 " "$H_DIR/wa.out" || h_fail "A: writes with upstream paused: $(cat "$H_DIR/wa.out")"
fill
relay resume
$WR write 127.0.0.1 "$PA_PORT" "$H_EXPORT" /wb --mib 4 --tag wrefused --allow-nospc \
	--timeout 60 >"$H_DIR/wb.out" 2>"$H_DIR/wb.err" ||
	h_fail "A: WRITE on a full disk got neither OK nor NOSPC: $(tail -n 2 "$H_DIR/wb.err")"
sleep 2
h_log "A: flushed on a full disk; failed deletions: $(grep -c "cannot delete a record" "$H_DIR/pa2.log")"

# Space comes back; nothing is restarted.
rm -f "$H_DIR/fs/filler"
T_FREE=$(date +%s)
h_log "A: space back"
timeout -k 5 90 $WR write 127.0.0.1 "$PA_PORT" "$H_EXPORT" /wa --mib 0 --commit \
	>"$H_DIR/wa2.out" 2>"$H_DIR/wa2.err" ||
	h_fail "A: COMMIT of data flushed while the disk was full did not complete"
$WR write 127.0.0.1 "$PA_PORT" "$H_EXPORT" /w --mib 2 --offset-mib 4 --tag wfree \
	--commit --timeout 60 >"$H_DIR/w2.out" 2>"$H_DIR/w2.err" ||
	h_fail "A: writes after the space came back failed: $(tail -n 2 "$H_DIR/w2.err")"
h_log "A: writer after the space came back: $(cat "$H_DIR/w2.out")"
grep -q "nospc 0 " "$H_DIR/w2.out" || h_fail "A: still NOSPC after the space came back"
$WR check "$H_EXPORT/w" --mib 4 --tag wfull --acked "$H_DIR/w1.acked" --refused-absent \
	>>"$H_DIR/test.log" ||
	h_fail "A: an acknowledged WRITE is missing or a refused one arrived upstream"
$WR check "$H_EXPORT/wa" --mib 2 --tag wpaused >>"$H_DIR/test.log" ||
	h_fail "A: data acknowledged while upstream was paused is not upstream after COMMIT"
$WR check "$H_EXPORT/w" --mib 2 --offset-mib 4 --tag wfree >>"$H_DIR/test.log" ||
	h_fail "A: the WRITEs after the space came back are not upstream after COMMIT"

# --- B: the LMDB map fills -------------------------------------------------
PB_DIR=$H_DIR/cb
h_gridvfsd_at pb "$RP" "$H_MNT_PORT" --role client --cache-dir "$PB_DIR" --cache-size 1M \
	--control none
PB_PORT=$H_AT_PORT PB=$H_AT_PID
# B1: a backlog of fills (4 readers at once) must not fill the map.
pids=()
for i in 1 2 3 4; do
	(
		rm -f "$H_DIR/b$i"
		nfs-cp "$(url "$PB_PORT" "/m$i")" "$H_DIR/b$i" >>"$H_DIR/cp.log" 2>&1 &&
			cmp -s "$H_EXPORT/m$i" "$H_DIR/b$i"
	) &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || h_fail "B1: a concurrent read failed or differs"; done
rm -f "$H_DIR"/b[1-4]
sleep 0.5
grep -q "MDB_MAP_FULL" "$H_DIR/pb.log" &&
	h_fail "B1: four concurrent reads filled the map of a 1 MiB cache"
$GV cache stat "$PB_DIR" >"$H_DIR/stat1" 2>&1 ||
	h_fail "B1: gridvfs cache stat cannot read the cache: $(cat "$H_DIR/stat1")"
bytes=$(awk '$1 == "bytes:" { print $2 }' "$H_DIR/stat1")
[ -n "$bytes" ] && [ "$bytes" -le $(((1 << 20) + (64 << 10))) ] ||
	h_fail "B1: cache holds '$bytes' bytes with a 1 MiB cap"

# B2: a reader holding an old snapshot: the map fills.
# The fifo's reader never reads: mdb_dump blocks on it inside its read
# transaction once the pipe is full.
mkfifo "$H_DIR/pin.fifo"
# shellcheck disable=SC2217
sleep 600 <"$H_DIR/pin.fifo" &
mdb_dump -s blocks "$PB_DIR" >"$H_DIR/pin.fifo" 2>/dev/null &
PIN=$!
pinned() { mdb_stat -r "$PB_DIR" 2>/dev/null | awk -v p="$PIN" '$1 == p { f = 1 } END { exit !f }'; }
for ((n = 0; n < 50; n++)); do pinned && break; sleep 0.1; done
pinned || h_fail "B2: mdb_dump holds no reader slot (test broken)"
# With the snapshot pinned every group grows the file (by about a quarter
# of what is read, measured here): the 66 MiB map fills within these reads.
for i in 1 2 3 4 5 6 7 1 2 3 4 5 6 7 1 2 3 4 5 6 7; do
	get "$PB_PORT" "m$i" "B2: map filling"
	grep -q "MDB_MAP_FULL" "$H_DIR/pb.log" && break
done
h_wait_log "$H_DIR/pb.log" "MDB_MAP_FULL.*\(LMDB map full\); bypassing" 5 ||
	h_fail "B2: no log line saying the LMDB map is full (map never filled?)"
get "$PB_PORT" m5 "B2: map full"
kill -0 "$PB" || h_fail "B2: the proxy died when the map filled"
# The reader dies without releasing its slot.
kill -KILL "$PIN"
wait "$PIN" 2>/dev/null
pinned || h_fail "B2: the dead reader's slot is already gone (test broken)"
T_KILL=$(date +%s)
h_log "B2: snapshot holder killed"

# --- recovery, A and B: within one retry (30 s) of the cause going away ---
h_wait_log "$H_DIR/pa2.log" "writes resumed" $((40 - ($(date +%s) - T_FREE))) ||
	h_fail "A: the read cache did not resume within 40 s of the space coming back"
r0=$(reads)
get "$PA_PORT" r2 "A: after recovery"
sleep 1
r1=$(reads)
get "$PA_PORT" r2 "A: after recovery, warm"
r2=$(reads)
h_log "A: r2 after recovery: $((r1 - r0)) READs upstream, then $((r2 - r1))"
[ $((r2 - r1)) -eq 0 ] || h_fail "A: the read cache serves nothing after the recovery ($((r2 - r1)) READs)"

h_wait_log "$H_DIR/pb.log" "cleared 1 reader slot" $((40 - ($(date +%s) - T_KILL))) ||
	h_fail "B2: the dead reader's slot was not cleared within 40 s"
h_wait_log "$H_DIR/pb.log" "writes resumed" 5 || h_fail "B2: the cache did not resume after the map was full"
pinned && h_fail "B2: the dead reader's slot is still there"
get "$PB_PORT" small "B2: after recovery"
sleep 1
r0=$(reads)
get "$PB_PORT" small "B2: after recovery, warm"
[ "$(reads)" -eq "$r0" ] || h_fail "B2: the cache serves nothing after the map was full"

# A clean stop and a start: the cache is taken as it is.
h_stop_pid "$PB" || h_fail "B: proxy exit status"
$GV cache stat "$PB_DIR" >"$H_DIR/stat2" 2>&1 ||
	h_fail "B: gridvfs cache stat cannot read the stopped cache: $(cat "$H_DIR/stat2")"
h_gridvfsd_at pb2 "$RP" "$H_MNT_PORT" --role client --cache-dir "$PB_DIR" --cache-size 1M \
	--control none
grep -qiE "moved aside|bad-" "$H_DIR/pb2.log" && h_fail "B: the cache was moved aside at restart"
get "$H_AT_PORT" small "B: after restart"
h_stop_pid "$H_AT_PID" || h_fail "B: restarted proxy exit status"
h_stop_pid "$PA" || h_fail "A: proxy exit status"
h_pass
