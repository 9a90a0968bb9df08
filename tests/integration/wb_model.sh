#!/bin/bash
# wb_model.sh — a seeded random sequence of write/truncate/extend/read/
# getattr/commit operations on several files through gridvfsd, every read
# and size checked against a model, under --write-policy through and back.
# Under write-back the upstream is paused (wanrelay) for a burst of writes,
# the proxy is killed with SIGKILL while that data is acknowledged but not
# flushed, and restarted: the final upstream contents must equal the model
# and the write verifier must not have changed (the dirty log survived).
# Runs: through and back straight to ganesha; back through a server role
# (mTLS, its strict parser: ganesha forgives malformed WRITEs a server role
# refuses); back through a server role with truncates sent without a
# COMMIT first (the parked-SETATTR path).  Every WRITE/SETATTR reply's
# post-op size is checked too (tests/tools/nfsmodel.py).
# WB_MODEL_OPS (default 4000 per run; the issue's 20000 fits in ~1 min
# per run: WB_MODEL_OPS=20000), WB_MODEL_SEED (default random, logged),
# WB_MODEL_RUNS (default "through back back-store back-store-nc").
. "$(dirname "$0")/../lib/harness.sh"
h_init wb_model
h_ganesha
h_store "$H_NFS_PORT" "$H_MNT_PORT"

OPS=${WB_MODEL_OPS:-4000}
SEED=${WB_MODEL_SEED:-$RANDOM}
FILES=5
MODEL="$top_srcdir/tests/tools/nfsmodel.py"
h_log "seed $SEED ops $OPS"

model() { # STATE ARGS...: run the driver against the proxy
	local st=$1
	shift
	python3 "$MODEL" 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" "$st" \
		--seed "$SEED" --files "$FILES" "$@" 2>>"$H_DIR/model.log"
}

compare() { # STATE POLICY: export files equal the model
	local i
	for ((i = 0; i < FILES; i++)); do
		cmp -s "$1/model-f$i" "$H_EXPORT/f$i" ||
			return 1
	done
}

# run_policy NAME POLICY direct|store [nfsmodel options]
run_policy() {
	local name=$1 pol=$2 chain=$3 st="$H_DIR/state-$1" half=$((OPS / 2)) out v1 v2 n
	local up=$H_NFS_PORT mnt=$H_MNT_PORT tls=()
	shift 3
	local margs=("$@")
	if [ "$chain" = store ]; then
		up=$H_SR_PORT mnt=$H_SR_PORT tls=("${H_NODE_TLS[@]}")
	fi
	mkdir -p "$st"
	h_log "run $name: policy $pol via $chain ${margs[*]}"
	h_relay RELAY "$up" --control "$H_DIR/relay-$name.ctl"
	local pxargs=(--role client --cache-dir "$H_DIR/cache-$name" --write-policy "$pol" "${tls[@]}")
	h_gridvfsd_at "px-$name" "$RELAY" "$mnt" "${pxargs[@]}"
	H_PX_PORT=$H_AT_PORT
	local pid=$H_AT_PID
	out=$(python3 "$MODEL" 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" "$st" \
		--seed "$SEED" --files "$FILES" --create --from 0 --to "$half" "${margs[@]}" \
		2>>"$H_DIR/model.log") || h_fail "$name: first half: $(tail -n 2 "$H_DIR/model.log")"
	v1=$(echo "$out" | awk '$1 == "verf" { print $2 }')
	h_log "$name: first half done, verf $v1"
	# Acknowledged but unflushed: upstream paused while 200 writes land.
	"$top_builddir/tests/tools/wanrelay" --ctl "$H_DIR/relay-$name.ctl" pause >/dev/null ||
		h_fail "cannot pause the relay"
	if [ "$pol" = back ]; then
		out=$(model "$st" --writes-only --from "$half" --to $((half + 200)) "${margs[@]}") ||
			h_fail "$name: writes while upstream paused failed"
		v2=$(echo "$out" | awk '$1 == "verf" { print $2 }')
		compare "$st" "" && h_fail "$name: upstream already equals the model while paused"
		disown "$pid" 2>/dev/null # no "Killed" job notice
		kill -KILL "$pid"
		h__wait_gone "$pid" 10
		h__forget_pid "$pid"
		h_log "$name: proxy killed with dirty data"
	fi
	"$top_builddir/tests/tools/wanrelay" --ctl "$H_DIR/relay-$name.ctl" resume >/dev/null ||
		h_fail "cannot resume the relay"
	if [ "$pol" = back ]; then
		sleep 1 # let the relay deliver or drop what the dead proxy sent
		h_gridvfsd_at "px-$name-2" "$RELAY" "$mnt" "${pxargs[@]}"
		H_PX_PORT=$H_AT_PORT
		pid=$H_AT_PID
		half=$((half + 200))
	fi
	out=$(model "$st" --from "$half" --to "$OPS" --final "${margs[@]}") ||
		h_fail "$name: second half: $(tail -n 2 "$H_DIR/model.log")"
	v2=$(echo "$out" | awk '$1 == "verf" { print $2 }')
	if [ "$pol" = back ]; then
		[ "$v1" = "$v2" ] || h_fail "back: verifier changed across kill -9 ($v1 -> $v2)"
	fi
	# After the final COMMITs upstream holds everything.
	compare "$st" "" || {
		for ((n = 0; n < FILES; n++)); do
			cmp "$st/model-f$n" "$H_EXPORT/f$n" >>"$H_DIR/test.log" 2>&1
		done
		h_fail "$name: upstream differs from the model after COMMIT (seed $SEED)"
	}
	h_stop_pid "$pid" || h_fail "$name: proxy exit status $?"
	grep -h "write-back: dirty" "$H_DIR/px-$name"*.log | tail -n 1 >>"$H_DIR/test.log"
	# Nothing the node acknowledged was refused on the way.
	if grep -h "upstream refused\|garbage arguments" "$H_DIR/px-$name"*.log "$H_DIR/store.log" \
		>>"$H_DIR/test.log" 2>/dev/null; then
		h_fail "$name: an upstream refused a flush (see test.log)"
	fi
	# The next policy starts from fresh files.
	for ((n = 0; n < FILES; n++)); do rm -f "$H_EXPORT/f$n"; done
}

RUNS=${WB_MODEL_RUNS:-through back back-store back-store-nc}
for name in $RUNS; do
	case $name in
	through) run_policy through through direct ;;
	back) run_policy back back direct ;;
	back-store) run_policy back-store back store ;;
	back-store-nc) run_policy back-store-nc back store --no-commit-truncate ;;
	*) h_fail "unknown run $name" ;;
	esac
done
for name in $RUNS; do
	[ "$name" = through ] && continue
	grep -q "verifier .* (kept)" "$H_DIR/px-$name-2.log" ||
		h_fail "$name: restarted proxy did not keep its verifier"
	grep -qE "write-back: dirty log .* [1-9][0-9]* bytes to flush" "$H_DIR/px-$name-2.log" ||
		h_fail "$name: restarted proxy found nothing to replay"
done
h_pass
