#!/bin/bash
# proxy_upstream_restart: ganesha is SIGKILLed and restarted on the same
# ports while a big nfs-cp runs through gridvfsd, once writing and once
# reading. Each copy must either finish bit-identical or fail with a
# non-zero exit (never succeed with wrong data, never hang), and the proxy
# must serve new clients once ganesha is back.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_upstream_restart

MB=${RESTART_MB:-256}
KILL_AT=$((16 * 1024 * 1024)) # restart once this much has moved
h_ganesha
h_gridvfsd
head -c $((MB * 1024 * 1024)) /dev/urandom >"$H_DIR/in.bin" || h_fail "cannot make test data"
want=$(h_sha256 "$H_DIR/in.bin")

fsize() { stat -c %s "$1" 2>/dev/null || echo 0; }

# $1 = phase, $2 = src, $3 = dst, $4 = file whose growth shows progress.
# Sets OUTCOME to "completed" or "failed(N)".
copy_with_restart() {
	local phase=$1 pid rc n
	timeout -k 5 300 nfs-cp "$2" "$3" >"$H_DIR/cp-$phase.log" 2>&1 &
	pid=$!
	for ((n = 0; n < 6000; n++)); do
		[ "$(fsize "$4")" -ge "$KILL_AT" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	kill -0 "$pid" 2>/dev/null ||
		h_fail "$phase: copy ended before ganesha could be killed (raise RESTART_MB)"
	h_log "$phase: killing ganesha at $(fsize "$4") bytes"
	h_ganesha_restart KILL
	h_log "$phase: ganesha back (pid $H_GANESHA_PID)"
	wait "$pid"
	rc=$?
	[ $rc -eq 124 ] || [ $rc -eq 137 ] && h_fail "$phase: copy hung after the upstream restart"
	if [ $rc -eq 0 ]; then OUTCOME=completed; else OUTCOME="failed($rc)"; fi
	h_log "$phase: $OUTCOME: $(tail -n 1 "$H_DIR/cp-$phase.log")"
}

# Write through the proxy while upstream dies.
copy_with_restart write "$H_DIR/in.bin" "$(h_url_proxy /w.bin)" "$H_EXPORT/w.bin"
w_outcome=$OUTCOME
if [ "$w_outcome" = completed ] && [ "$(h_sha256 "$H_EXPORT/w.bin")" != "$want" ]; then
	h_fail "write: nfs-cp reported success but the file on disk differs"
fi

# Read through the proxy while upstream dies.
cp "$H_DIR/in.bin" "$H_EXPORT/r.bin"
copy_with_restart read "$(h_url_proxy /r.bin)" "$H_DIR/out.bin" "$H_DIR/out.bin"
r_outcome=$OUTCOME
if [ "$r_outcome" = completed ] && [ "$(h_sha256 "$H_DIR/out.bin")" != "$want" ]; then
	h_fail "read: nfs-cp reported success but returned different data"
fi
rm -f "$H_DIR/out.bin"

# The proxy must reconnect upstream for new clients.
head -c 1000000 /dev/urandom >"$H_DIR/small.bin"
ok=0
for try in 1 2 3 4 5 6 7 8 9 10; do
	rm -f "$H_DIR/small.out"
	if timeout -k 5 30 nfs-cp "$H_DIR/small.bin" "$(h_url_proxy "/small.$try")" >>"$H_DIR/cp-small.log" 2>&1 &&
		timeout -k 5 30 nfs-cp "$(h_url_proxy "/small.$try")" "$H_DIR/small.out" >>"$H_DIR/cp-small.log" 2>&1 &&
		cmp -s "$H_DIR/small.bin" "$H_DIR/small.out"; then
		ok=1
		break
	fi
	sleep 1
done
[ $ok = 1 ] || h_fail "the proxy does not serve new clients after the upstream restart"

h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
echo "proxy_upstream_restart: write $w_outcome, read $r_outcome"
h_pass
