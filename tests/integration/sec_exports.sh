#!/bin/bash
# sec_exports: issue 16 item 5, escaping an export.  Two exports on one
# upstream: pub (squash none) and priv (squash all), priv holding uid
# 2001's 0600 file.  Cases: lookup_dotdot (LOOKUP ".." at pub's root is
# pub's root, so priv is not reachable from it), readdirplus_dotdot (no
# handle for ".." entries), retag (a priv handle given pub's tag, as
# anyone could compute before, is STALE, not served under pub's policy),
# mnt_dotdot ("/pub/../priv" is refused with MNT3ERR_ACCES, in a daemon
# with sections and in one without), key_kept (the tag key is made mode
# 0600 in --state-dir and handles survive a restart).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init sec_exports
export H_DIR
RPC="$top_srcdir/tests/tools/nfsrpc.py"

h_ganesha
mkdir -p "$H_EXPORT/pub" "$H_EXPORT/priv"
echo "public" >"$H_EXPORT/pub/readme"
echo "priv-secret" >"$H_EXPORT/priv/secret"
chown 2001:2001 "$H_EXPORT/priv/secret"
chmod 600 "$H_EXPORT/priv/secret"
cat >"$H_DIR/exports.conf" <<EOF
role = client
state-dir = $H_DIR/state
[export pub]
path = /pub
upstream-path = $H_EXPORT/pub
squash = none
[export priv]
path = /priv
upstream-path = $H_EXPORT/priv
squash = all
EOF
start() {
	h_gridvfsd_at multi "$H_NFS_PORT" "$H_MNT_PORT" -c "$H_DIR/exports.conf" --control none
	P=$H_AT_PORT MPID=$H_AT_PID
}
start

python3 - "$P" "$H_NFS_PORT" "$H_MNT_PORT" "$H_EXPORT" "$RPC" <<'PY' >"$H_DIR/cases.log" 2>&1 || h_fail "$(tail -n 3 "$H_DIR/cases.log")"
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[5]))
from nfsrpc import Nfs, NfsError, opaque, u32, u64
port, nfs, mnt, exp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
pub = Nfs("127.0.0.1", port, "/pub")
priv = Nfs("127.0.0.1", port, "/priv", uid=2001, gid=2001)
direct = Nfs("127.0.0.1", nfs, exp + "/pub", mountport=mnt)
T = len(pub.root) - len(direct.root)   # the tag's length, whatever it is
assert T > 0 and pub.root[T:] == direct.root, "pub's root is not tag + upstream handle"

def lookup(c, fh, name):
    st, r = c.call(3, opaque(fh) + opaque(name))
    return st, (r.opaque() if st == 0 else None)

def read(c, fh):
    st, r = c.call(6, opaque(fh) + u64(0) + u32(4096))
    if st:
        return st, None
    r.post_op_attr(); r.u32(); r.u32()
    return 0, r.opaque()

# lookup_dotdot
st, up = lookup(pub, pub.root, b"..")
assert st == 0, f"lookup_dotdot: LOOKUP .. at pub's root failed: {st}"
assert up == pub.root, "lookup_dotdot: LOOKUP .. at pub's root left the export"
st, h = lookup(pub, up, b"priv")
assert st == 2, f"lookup_dotdot: priv reached from pub's root via .. ({st})"
st, sub = lookup(pub, pub.root, b"readme")
assert st == 0
print("lookup_dotdot ok")

# readdirplus_dotdot
st, r = pub.call(17, opaque(pub.root) + u64(0) + b"\0" * 8 + u32(8192) + u32(65536))
assert st == 0, f"readdirplus_dotdot: READDIRPLUS failed: {st}"
r.post_op_attr(); r.p += 8
names = {}
while r.u32():
    r.u64(); name = r.opaque().decode(); r.u64(); r.post_op_attr()
    names[name] = r.opaque() if r.u32() else None
assert ".." in names, f"readdirplus_dotdot: no .. entry: {sorted(names)}"
assert names[".."] is None, "readdirplus_dotdot: the .. entry of pub's root carries a handle (the upstream's parent)"
assert names["readme"] is not None, "readdirplus_dotdot: ordinary entries lost their handles"
print("readdirplus_dotdot ok")

# retag: priv's file handle with pub's tag in front
st, sh = lookup(priv, priv.root, b"secret")
assert st == 0, f"retag: LOOKUP secret in priv: {st}"
forged = pub.root[:T] + sh[T:]
st, data = read(pub, forged)
assert data != b"priv-secret\n", "retag: a re-tagged priv handle was served under pub's policy"
assert st == 70, f"retag: a re-tagged handle gave {st}, want NFS3ERR_STALE"
st, data = read(priv, sh)
assert st == 13, f"retag: priv's own policy should refuse (squash all): {st}"
print("retag ok")

# mnt_dotdot
for path in ("/pub/../priv", "/pub/sub/../../priv", "/../priv"):
    try:
        Nfs("127.0.0.1", port, path)
        raise AssertionError(f"mnt_dotdot: MNT {path} succeeded")
    except NfsError as e:
        assert e.status == 13, f"mnt_dotdot: MNT {path} gave {e.status}, want MNT3ERR_ACCES"
n = Nfs("127.0.0.1", port, "//pub/./")
assert n.root == pub.root, "mnt_dotdot: a path with // and . did not normalise to /pub"
open(os.environ["H_DIR"] + "/pubroot", "w").write(pub.root.hex())
print("mnt_dotdot ok")
PY
grep -q "MNT /pub/../priv refused: '..' in the path" "$H_DIR/multi.log" || h_fail "mnt_dotdot: no log line"

# key_kept: the key file, and handles across a restart
[ "$(stat -c %a "$H_DIR/state/handle-key")" = 600 ] && [ "$(stat -c %s "$H_DIR/state/handle-key")" = 32 ] ||
	h_fail "key_kept: state/handle-key is $(stat -c '%a %s' "$H_DIR/state/handle-key" 2>&1)"
h_stop_pid "$MPID"
start
python3 - "$P" "$RPC" "$(cat "$H_DIR/pubroot")" <<'PY' || h_fail "key_kept: pub's root handle is STALE after a restart"
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[2]))
from nfsrpc import Nfs, opaque
c = Nfs("127.0.0.1", int(sys.argv[1]), "/pub")
st, r = c.call(1, opaque(bytes.fromhex(sys.argv[3])))
sys.exit(0 if st == 0 else 1)
PY
chmod 644 "$H_DIR/state/handle-key"
h_stop_pid "$MPID"
"$top_builddir/gridvfsd" -c "$H_DIR/exports.conf" -F --listen "127.0.0.1:$P" --control none \
	--upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT" >"$H_DIR/badkey.log" 2>&1 &
BK=$!
for _ in $(seq 50); do kill -0 "$BK" 2>/dev/null || break; sleep 0.1; done
kill -0 "$BK" 2>/dev/null && { kill "$BK"; h_fail "key_kept: a group/other-readable handle key was accepted"; }
grep -q "handle key .*mode 0600" "$H_DIR/badkey.log" || h_fail "key_kept: no reason for refusing the key: $(tail -n 2 "$H_DIR/badkey.log")"

# mnt_dotdot without sections: refused by the daemon, not left to upstream
h_gridvfsd
python3 - "$H_PX_PORT" "$H_EXPORT" "$RPC" <<'PY' || h_fail "mnt_dotdot (one export): a '..' MNT path was not refused with MNT3ERR_ACCES"
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[3]))
from nfsrpc import Nfs, NfsError
try:
    Nfs("127.0.0.1", int(sys.argv[1]), sys.argv[2] + "/pub/../priv")
    sys.exit(1)
except NfsError as e:
    sys.exit(0 if e.status == 13 else 1)
PY
grep -q "MNT refused: '..' in the path" "$H_DIR/gridvfsd.log" || h_fail "mnt_dotdot (one export): no log line"
h_pass
