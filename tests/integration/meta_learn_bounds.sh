#!/bin/bash
# meta_learn_bounds: the learner's memory is bounded (issue 19).  A server
# role (no TLS here: the bound is what is tested) learns at most 64 images
# at once: 64 images only named by a LOOKUP (a stat, an ls -l) fill the
# table, a 65th that is read is not learned and that is logged once; the
# named-but-unread records go after 10 x --learn-idle, and the 65th, read
# again, is learned and published.  Nothing is written for the 64.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init meta_learn_bounds
export PYTHONPATH="$top_srcdir/tests/tools"

h_ganesha
for i in $(seq 0 64); do truncate -s 1M "$H_EXPORT/i$i.img"; done
head -c 1M /dev/urandom >"$H_EXPORT/i64.img"
h_gridvfsd_at store "$H_NFS_PORT" "$H_MNT_PORT" --role server --tls off \
	--squash none --learn-idle 1 --learn-min-size 1M
SP=$H_AT_PORT
# nfs WHAT...: "stat NAME" LOOKUPs it; "read NAME" LOOKUPs and reads 3 blocks
nfs() {
	python3 - "$SP" "$H_EXPORT" "$@" <<'PY' || h_fail "nfs $*"
import sys
from nfsrpc import Nfs, opaque, u32, u64
port, export, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
n = Nfs("127.0.0.1", port, export)
for what, name in zip(args[::2], args[1::2]):
    fh = n.lookup_path("/" + name)
    if what == "read":
        for off in (655360, 0, 327680):
            st, _ = n.call(6, opaque(fh) + u64(off) + u32(4096))
            assert st == 0, st
PY
}
args=()
for i in $(seq 0 63); do args+=(stat "i$i.img"); done
nfs "${args[@]}"
nfs read i64.img
sleep 2.5 # more than --learn-idle: it would have been published
grep -q "learning profiles of 64 images at once already; i64.img and others are not learned" \
	"$H_DIR/store.log" || h_fail "the full table was not logged"
[ -e "$H_EXPORT/i64.img.gvmeta" ] && h_fail "the 65th image was learned past the bound"
# the named-but-unread records expire after 10 x --learn-idle
sleep 9
nfs read i64.img
for _ in $(seq 50); do [ -e "$H_EXPORT/i64.img.gvmeta" ] && break; sleep 0.1; done
[ -e "$H_EXPORT/i64.img.gvmeta" ] || h_fail "unread records did not expire: i64.img never learned"
grep -q "profile of i64.img learned from 1 boot: 3 blocks" "$H_DIR/store.log" ||
	h_fail "i64.img's profile: $(grep 'profile of i64' "$H_DIR/store.log")"
n=$(ls "$H_EXPORT" | grep -c '\.gvmeta$')
[ "$n" = 1 ] || h_fail "$n metadata files, want only i64.img's"
h_stop_pid "$H_AT_PID" || h_fail "the server role exited $? on SIGTERM"
h_pass
