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

# A healthy client on one long-lived connection (so --max-conns cannot
# refuse it mid-test) writes and reads back for as long as the abuse lasts.
python3 - "$H_PX_PORT" "$H_EXPORT" "$H_DIR/stop" "$top_srcdir/tests/tools" <<'PY' &
import os, sys
sys.path.insert(0, sys.argv[4])
from nfsrpc import Nfs
c = Nfs("127.0.0.1", int(sys.argv[1]), sys.argv[2])
c.create("/healthy")
n = 0
while not os.path.exists(sys.argv[3]) or n < 20:
    data = os.urandom(30000)
    c.write("/healthy", data)
    if c.read("/healthy")[:len(data)] != data:
        sys.exit(2)
    n += 1
print(f"healthy client: {n} write/read rounds")
PY
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
