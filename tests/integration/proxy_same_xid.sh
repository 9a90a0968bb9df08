#!/bin/bash
# proxy_same_xid: 32 connections from one host send identical calls with
# the same XID at once (as separate processes may).  Each is a caller of
# its own: all 32 get their reply, none is taken for a retransmission of
# another.  (Regression: the proxy used to re-target the pending call to
# the newest connection, leaving the others waiting forever.)
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_same_xid
h_ganesha
h_gridvfsd --control none
python3 - "$H_PX_PORT" "$H_EXPORT" "$top_srcdir/tests/tools" <<'PY' || h_fail "not every caller got its reply"
import sys, threading
sys.path.insert(0, sys.argv[3])
from nfsrpc import Nfs
ok, bad = [], []
def w(k):
    try:
        c = Nfs("127.0.0.1", int(sys.argv[1]), sys.argv[2])   # MNT, xid 0x7001
        c.getattr("/")                                        # GETATTR, xid 0x7002
        ok.append(k)
    except Exception as e:
        bad.append(repr(e))
ts = [threading.Thread(target=w, args=(k,)) for k in range(32)]
[t.start() for t in ts]
[t.join() for t in ts]
print(f"{len(ok)} callers answered, {len(bad)} not: {bad[:2]}")
sys.exit(0 if len(ok) == 32 else 1)
PY
h_pass
