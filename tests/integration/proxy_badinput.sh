#!/bin/bash
# proxy_badinput: malformed and unexpected RPC (unknown programs, versions
# and procedures, bad credentials, garbage arguments, oversized, empty and
# endless records, half-sent records, a connection flood) each get the
# right RPC error or a closed connection with a logged reason, while a
# libnfs client copying through the same proxy is not disturbed.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_badinput

h_ganesha
GRIDVFSD_LOG_LEVEL=info h_gridvfsd --record-timeout 2 --max-conns 100

head -c $((32 * 1024 * 1024)) /dev/urandom >"$H_DIR/in.bin"
want=$(h_sha256 "$H_DIR/in.bin")
# A healthy client loops copies for as long as the abuse lasts.
(
	i=0
	while [ ! -e "$H_DIR/stop" ]; do
		i=$((i + 1))
		nfs-cp "$H_DIR/in.bin" "$(h_url_proxy /healthy$i.bin)" >/dev/null 2>&1 || exit 1
		[ "$(h_sha256 "$H_EXPORT/healthy$i.bin")" = "$want" ] || exit 2
		rm -f "$H_EXPORT/healthy$i.bin"
	done
	exit 0
) &
healthy=$!

python3 "$top_srcdir/tests/tools/badrpc.py" 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" \
	--record-timeout 2 --max-conns 100 >"$H_DIR/badrpc.out" 2>&1
rc=$?
touch "$H_DIR/stop"
wait $healthy
hrc=$?
cat "$H_DIR/badrpc.out"
[ $rc -eq 0 ] || h_fail "badrpc reported failures"
[ $hrc -eq 0 ] || h_fail "the healthy client failed (exit $hrc) during the abuse"
for why in "record larger than --max-record" "zero-length record" \
	"record is not an RPC call" "half-sent record timed out" \
	"refused: --max-conns reached" "garbage arguments"; do
	grep -q "$why" "$H_DIR/gridvfsd.log" || h_fail "no log line for: $why"
done
kill -0 "$H_PX_PID" 2>/dev/null || h_fail "gridvfsd died"
h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
h_pass
