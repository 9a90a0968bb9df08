#!/bin/bash
# wb_perm.sh — write-back never acknowledges a write upstream would refuse,
# through the chain as deployed: client role (--write-policy back) ->
# relay -> mTLS -> server role -> ganesha.
#  A. uid B (www-data) writes into uid A's (daemon's) 0644 file: B gets
#     NFS3ERR_ACCES at once, A's reads never show B's bytes, A's own
#     write + COMMIT work, and nothing of B's reaches the store.
#  B. Rights revoked while A's write is absorbed but not flushed (upstream
#     paused, the store's admin chowns the file away): the flush is refused,
#     the record is dropped with a LOG_ERR naming the uid, A's next COMMIT
#     returns NFS3ERR_ACCES once (then OK), root's write to the same file
#     in the same pause still lands, and the flusher does not retry for ever.
. "$(dirname "$0")/../lib/harness.sh"
h_init wb_perm
h_ganesha
H_STORE_ACCOUNTS=root,daemon,www-data h_store "$H_NFS_PORT" "$H_MNT_PORT"
h_relay RELAY "$H_SR_PORT" --control "$H_DIR/relay.ctl"
h_gridvfsd_at node "$RELAY" "$RELAY" --role client "${H_NODE_TLS[@]}" \
	--cache-dir "$H_DIR/cache" --write-policy back
NODE=$H_AT_PORT
WAN="$top_builddir/tests/tools/wanrelay"

head -c 8192 /dev/zero | tr '\0' 'a' >"$H_EXPORT/afile"
chown 1:1 "$H_EXPORT/afile" && chmod 0644 "$H_EXPORT/afile"
cp -p "$H_EXPORT/afile" "$H_EXPORT/gfile"

py() { # SCRIPT: run python with nfsrpc against the node
	PYTHONPATH="$top_srcdir/tests/tools" NODE=$NODE EXPORT=$H_EXPORT \
		python3 -c "$1" 2>>"$H_DIR/py.log"
}
PRE='
import os, sys
from nfsrpc import Nfs, NfsError, opaque, u32, u64
def cl(uid, gid):
    return Nfs("127.0.0.1", int(os.environ["NODE"]), os.environ["EXPORT"], uid=uid, gid=gid)
def write(c, fh, off, data):
    st, r = c.call(7, opaque(fh) + u64(off) + u32(len(data)) + u32(0) + opaque(data))
    return st
def commit(c, fh):
    st, r = c.call(21, opaque(fh) + u64(0) + u32(0))
    return st
def read(c, fh, off, n):
    st, r = c.call(6, opaque(fh) + u64(off) + u32(n))
    if st: raise NfsError(st, "READ")
    r.post_op_attr(); r.u32(); r.u32()
    return r.opaque()
'

# --- A. a foreign uid's write is refused, never absorbed ------------------
out=$(py "$PRE"'
a, b = cl(1, 1), cl(33, 33)
fh = a.lookup_path("afile")
assert write(a, fh, 0, b"A" * 4096) == 0, "A could not write her own file"
st = write(b, fh, 100, b"B" * 50)
print("b_write", st)
print("b_read_sees_b", b"B" in read(b, fh, 0, 8192))
print("a_read_sees_b", b"B" in read(a, fh, 0, 8192))
print("a_read_ok", read(a, fh, 0, 8192) == b"A" * 4096 + b"a" * 4096)
print("b_commit", commit(b, fh))
print("a_commit", commit(a, fh))
') || h_fail "A: client failed: $(tail -n 3 "$H_DIR/py.log")"
h_log "A: $(echo $out)"
echo "$out" | grep -qx "b_write 13" || h_fail "A: uid B's WRITE was not refused with NFS3ERR_ACCES: $out"
echo "$out" | grep -qx "b_read_sees_b False" || h_fail "A: B reads his own refused bytes: $out"
echo "$out" | grep -qx "a_read_sees_b False" || h_fail "A: A reads B's refused bytes: $out"
echo "$out" | grep -qx "a_read_ok True" || h_fail "A: A's read is wrong: $out"
echo "$out" | grep -qx "a_commit 0" || h_fail "A: A's COMMIT failed: $out"
grep -q B "$H_EXPORT/afile" && h_fail "A: B's bytes reached the store"
[ "$(head -c 4096 "$H_EXPORT/afile" | tr -d A | wc -c)" = 0 ] || h_fail "A: A's write is not on the store"
grep -q "upstream refused" "$H_DIR/node.log" && h_fail "A: a refused write had been absorbed"

# --- B. rights revoked under an absorbed write ------------------------------
# Grants first (A and root each write once), then the pause.
py "$PRE"'
a, r = cl(1, 1), cl(0, 0)
fh = a.lookup_path("gfile")
assert write(a, fh, 0, b"x") == 0 and commit(a, fh) == 0
assert write(r, fh, 4096, b"y") == 0 and commit(r, fh) == 0
' || h_fail "B: warm-up failed: $(tail -n 3 "$H_DIR/py.log")"
# The pause is taken inside the client, after its MNT and LOOKUP.
out=$(WAN=$WAN CTL=$H_DIR/relay.ctl py "$PRE"'
import time, subprocess
a, r = cl(1, 1), cl(0, 0)
fh = a.lookup_path("gfile")
subprocess.run([os.environ["WAN"], "--ctl", os.environ["CTL"], "pause"], check=True, capture_output=True)
assert write(a, fh, 0, b"Q" * 4096) == 0, "A absorbed"
assert write(r, fh, 8192, b"R" * 4096) == 0, "root absorbed"
os.chown(os.environ["EXPORT"] + "/gfile", 2, 2)   # the store admin revokes A
subprocess.run([os.environ["WAN"], "--ctl", os.environ["CTL"], "resume"], check=True, capture_output=True)
print("root_commit", commit(r, fh))
print("a_commit", commit(a, fh))
print("a_commit_again", commit(a, fh))
print("a_write_after", write(a, fh, 0, b"Z"))
') || h_fail "B: client failed: $(tail -n 3 "$H_DIR/py.log")"
h_log "B: $(echo $out)"
echo "$out" | grep -qx "root_commit 0" || h_fail "B: root's COMMIT failed: $out"
echo "$out" | grep -qx "a_commit 13" || h_fail "B: A's COMMIT after the refusal did not say NFS3ERR_ACCES: $out"
echo "$out" | grep -qx "a_commit_again 0" || h_fail "B: the error was not given once only: $out"
echo "$out" | grep -qx "a_write_after 13" || h_fail "B: A's later write was not refused: $out"
grep -q "upstream refused a flush WRITE of file .* for uid 1 " "$H_DIR/node.log" ||
	h_fail "B: no LOG_ERR naming the file and uid 1"
grep -q Q "$H_EXPORT/gfile" && h_fail "B: A's refused bytes reached the store"
[ "$(tail -c +8193 "$H_EXPORT/gfile" | head -c 4096 | tr -d R | wc -c)" = 0 ] ||
	h_fail "B: root's write did not land"
sleep 1
n=$(grep -c "upstream refused" "$H_DIR/node.log")
sleep 2
[ "$(grep -c "upstream refused" "$H_DIR/node.log")" = "$n" ] || h_fail "B: the refused flush is being retried"
h_pass
