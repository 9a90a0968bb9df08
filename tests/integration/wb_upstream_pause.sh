#!/bin/bash
# wb_upstream_pause.sh — write-back with the upstream unreachable (a paused
# wanrelay between gridvfsd and ganesha):
#  A. 30 s pause (issue 10): 8 MiB of writes are acknowledged during the
#     pause (the writer sees no error and does not wait), nothing reaches
#     upstream and the writer's COMMIT is still waiting 28 s in; after the
#     resume the COMMIT completes and the data is upstream.  In the same
#     pause a write-through client (a second proxy on the same relay)
#     writes 2 MiB: its calls wait for the whole pause with no reply at
#     all (no error), then complete, and the data is upstream.
#  A runs through the chain as deployed (client roles -> relay -> mTLS ->
#  server role -> ganesha), B straight to ganesha.  The writers open their
#  file with an ACCESS, as a kernel client does, before the pause: write-back
#  absorbs a WRITE only under upstream's write grant.
#  B. --dirty-max 2 MiB: during a pause the writer's acknowledged bytes stop
#     at the bound (writes wait, they do not fail); after the resume the
#     writer finishes; the proxy's high-water mark never passed the bound.
. "$(dirname "$0")/../lib/harness.sh"
h_init wb_upstream_pause
h_ganesha
RELAYCTL="$H_DIR/relay.ctl"
WAN="$top_builddir/tests/tools/wanrelay"
h_relay RELAY "$H_NFS_PORT" --control "$RELAYCTL"
h_store "$H_NFS_PORT" "$H_MNT_PORT"
SRELAYCTL="$H_DIR/srelay.ctl"
h_relay SRELAY "$H_SR_PORT" --control "$SRELAYCTL"

# writer NAME MiB: (after NAME.progress.ready appears, waits for .go) write NAME sequentially in 64 KiB UNSTABLE WRITEs
# (pattern depends on offset and name), then COMMIT; progress (bytes
# acknowledged) goes to $H_DIR/NAME.progress; exit 0 only if all went well.
writer() {
	python3 - "$H_PX_PORT" "$H_EXPORT" "$1" "$2" "$H_DIR/$1.progress" <<-'EOF'
		import os, sys
		sys.path.insert(0, os.environ["top_srcdir"] + "/tests/tools")
		from nfsmodel import Client
		port, export, name, mib, prog = sys.argv[1:6]
		c = Client("127.0.0.1", int(port), export)
		c.s.settimeout(120)  # the COMMIT waits out the whole pause
		fh = c.fh(name)  # LOOKUP needs upstream: before the pause
		assert c.access(fh) & 0x0c == 0x0c, "no write access"  # as at open
		open(prog + ".ready", "w").close()
		while not os.path.exists(prog + ".go"):
		    import time; time.sleep(0.02)
		total = int(mib) << 20
		for off in range(0, total, 65536):
		    blk = (name.encode().ljust(8, b"_") + off.to_bytes(8, "big")) * 4096
		    c.write_at(fh, off, blk)
		    with open(prog + ".tmp", "w") as f:
		        f.write(str(off + 65536))
		    os.rename(prog + ".tmp", prog)
		c.commit(fh)
		print("done")
	EOF
}

expected() { # NAME MiB: the content writer() writes
	python3 -c '
import sys
name, mib = sys.argv[1], int(sys.argv[2])
out = sys.stdout.buffer
for off in range(0, mib << 20, 65536):
    out.write((name.encode().ljust(8, b"_") + off.to_bytes(8, "big")) * 4096)
' "$1" "$2" >"$H_DIR/$1.want"
}

ready() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ -e "$H_DIR/$1.progress.ready" ] && return 0
		sleep 0.1
	done
	h_fail "writer $1 did not get ready: $(tail -n 3 "$H_DIR/$1.err")"
}

progress() { cat "$H_DIR/$1.progress" 2>/dev/null || echo 0; }

start_proxy() { # NAME UPSTREAM MOUNT ARGS...
	h_gridvfsd_at "$1" "$2" "$3" --role client \
		--cache-dir "$H_DIR/cache" --write-policy back "${@:4}"
	H_PX_PORT=$H_AT_PORT PX_PID=$H_AT_PID
}

# --- A: a 30 s outage is absorbed -----------------------------------------
PAUSE=${WB_PAUSE_SECS:-30}
# The write-through proxy of the same node, on the same (paused) link.
h_gridvfsd_at px-t "$SRELAY" "$SRELAY" --role client --write-policy through "${H_NODE_TLS[@]}"
PT_PORT=$H_AT_PORT PT_PID=$H_AT_PID
start_proxy px-a "$SRELAY" "$SRELAY" --dirty-max 64M "${H_NODE_TLS[@]}"
touch "$H_EXPORT/a" "$H_EXPORT/b" "$H_EXPORT/t" && chmod 666 "$H_EXPORT"/[abt]
expected a 8
writer a 8 >"$H_DIR/a.out" 2>"$H_DIR/a.err" &
WPID=$!
python3 "$top_srcdir/tests/tools/nfswriter.py" write 127.0.0.1 "$PT_PORT" "$H_EXPORT" /t \
	--mib 2 --tag through --commit --go "$H_DIR/t.go" --progress "$H_DIR/t.progress" \
	--reconnect 1 --timeout 120 >"$H_DIR/t.out" 2>"$H_DIR/t.err" &
TPID=$!
ready a
for ((i = 0; i < 100; i++)); do [ -e "$H_DIR/t.go.ready" ] && break; sleep 0.1; done
[ -e "$H_DIR/t.go.ready" ] || h_fail "A: write-through writer did not get ready: $(tail -n 2 "$H_DIR/t.err")"
"$WAN" --ctl "$SRELAYCTL" pause >/dev/null || h_fail "cannot pause the relay"
h_log "A: upstream paused for $PAUSE s"
T0=$(date +%s.%N)
touch "$H_DIR/a.progress.go" "$H_DIR/t.go"
# All 8 MiB acknowledged while upstream is away (the COMMIT then waits).
for ((i = 0; i < 80; i++)); do
	[ "$(progress a)" -ge $((8 << 20)) ] && break
	sleep 0.1
done
T1=$(date +%s.%N)
[ "$(progress a)" -ge $((8 << 20)) ] ||
	h_fail "A: only $(progress a) bytes acknowledged in 8 s with upstream paused"
h_log "A: 8 MiB acknowledged in $(echo "$T1 - $T0" | bc) s while paused"
cmp -s "$H_DIR/a.want" "$H_EXPORT/a" && h_fail "A: data upstream during the pause?"
kill -0 "$WPID" 2>/dev/null || h_fail "A: writer ended during the pause: $(cat "$H_DIR/a.err")"
# Late in the pause: still nothing upstream, the COMMIT still waits, the
# write-through client has had no answer (and no error) at all.
sleep $(echo "$PAUSE - 2 - ($(date +%s.%N) - $T0)" | bc | sed 's/^-.*/0/')
h_log "A: $(echo "$(date +%s.%N) - $T0" | bc) s into the pause"
cmp -s "$H_DIR/a.want" "$H_EXPORT/a" && h_fail "A: data upstream during the pause?"
kill -0 "$WPID" 2>/dev/null || h_fail "A: write-back COMMIT answered during the pause: $(cat "$H_DIR/a.out" "$H_DIR/a.err")"
kill -0 "$TPID" 2>/dev/null ||
	h_fail "A: write-through writer ended during the pause: $(cat "$H_DIR/t.out" "$H_DIR/t.err")"
[ "$(cat "$H_DIR/t.progress" 2>/dev/null || echo 0)" -eq 0 ] ||
	h_fail "A: a write-through WRITE was answered with upstream paused"
grep -q "connection lost" "$H_DIR/t.err" && h_fail "A: the write-through client's connection broke"
[ -s "$H_EXPORT/t" ] && h_fail "A: write-through data upstream during the pause?"
sleep $(echo "$PAUSE - ($(date +%s.%N) - $T0)" | bc | sed 's/^-.*/0/')
"$WAN" --ctl "$SRELAYCTL" resume >/dev/null
h_log "A: upstream resumed"
wait "$WPID" || h_fail "A: writer failed: $(tail -n 3 "$H_DIR/a.err")"
grep -q done "$H_DIR/a.out" || h_fail "A: writer did not finish"
cmp -s "$H_DIR/a.want" "$H_EXPORT/a" || h_fail "A: upstream content differs after COMMIT"
wait "$TPID" || h_fail "A: write-through writer failed after the resume: $(tail -n 3 "$H_DIR/t.err")"
h_log "A: write-through writer: $(cat "$H_DIR/t.out")"
grep -q "^acked 32 nospc 0 reconnects 0 " "$H_DIR/t.out" ||
	h_fail "A: write-through writer: $(cat "$H_DIR/t.out")"
python3 "$top_srcdir/tests/tools/nfswriter.py" check "$H_EXPORT/t" --mib 2 --tag through \
	>>"$H_DIR/test.log" || h_fail "A: write-through data upstream differs after COMMIT"
grep -q "SYSTEM_ERR\|timed out" "$H_DIR/px-t.log" && h_fail "A: the write-through proxy failed calls"
h_stop_pid "$PX_PID" || h_fail "A: proxy exit status"
h_stop_pid "$PT_PID" || h_fail "A: write-through proxy exit status"

# --- B: --dirty-max bounds what is absorbed ---------------------------------
start_proxy px-b "$RELAY" "$H_MNT_PORT" --dirty-max 2M
expected b 8
writer b 8 >"$H_DIR/b.out" 2>"$H_DIR/b.err" &
WPID=$!
ready b
"$WAN" --ctl "$RELAYCTL" pause >/dev/null
touch "$H_DIR/b.progress.go"
sleep 4
P=$(progress b)
h_log "B: $P bytes acknowledged after 4 s paused"
[ "$P" -le $((2 << 20)) ] || h_fail "B: $P bytes acknowledged with --dirty-max 2M and upstream paused"
[ "$P" -ge $((1 << 20)) ] || h_fail "B: only $P bytes acknowledged: the bound is not used"
kill -0 "$WPID" 2>/dev/null || h_fail "B: writer ended instead of waiting: $(cat "$H_DIR/b.err")"
"$WAN" --ctl "$RELAYCTL" resume >/dev/null
wait "$WPID" || h_fail "B: writer failed: $(tail -n 3 "$H_DIR/b.err")"
cmp -s "$H_DIR/b.want" "$H_EXPORT/b" || h_fail "B: upstream content differs after COMMIT"
h_stop_pid "$PX_PID" || h_fail "B: proxy exit status"
HWM=$(grep -o 'high-water [0-9]*' "$H_DIR/px-b.log" | awk '{ print $2 }' | sort -n | tail -n 1)
WAITED=$(grep -o 'writes waited [0-9]*' "$H_DIR/px-b.log" | awk '{ print $3 }' | sort -n | tail -n 1)
h_log "B: high-water $HWM, writes waited $WAITED"
[ -n "$HWM" ] && [ "$HWM" -le $((2 << 20)) ] || h_fail "B: dirty high-water $HWM above --dirty-max"
[ "${WAITED:-0}" -ge 1 ] || h_fail "B: no write waited"
h_pass
