#!/bin/bash
# sec_meta: issue 16 items 1, 2 and 9 — metadata is trusted only from the
# image's owner (or root), and blocks are shared between images of one
# owner only; access grants hold for one version of a file.  Users A=2001
# (the victim) and B=2002 (the attacker) reach one client-role proxy with
# a cache; the test plays B's files as B would make them (owned by B).
#   scan_mode:     `meta scan` writes IMAGE.gvmeta with the image's read
#                  permissions and, as root, its owner.
#   item1_forged:  B writes metadata for his own file listing A's block
#                  hashes (learned from an old 0644 .gvmeta, a backup...);
#                  A's blocks are in the cache; B's READs return B's bytes.
#   item2_planted: in a sticky 1777 directory B plants victim.gvmeta files
#                  (his own blocks' hashes; random hashes) beside A's 0600
#                  images; A reads her own bytes, never NFS3ERR_IO.
#   item9_chmod:   B was granted a read; A chmods 0600 and reads (the new
#                  version is cached); B is refused at once, though
#                  --access-ttl is 600 s.
#   item9_chmod_immutable: the same with --consistency immutable and the
#                  chmod made on the store: once A's GETATTR shows the new
#                  mode, B is refused (the cache still trusts the old
#                  version, for those who may read it).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init sec_meta
. "$top_srcdir/tests/integration/meta_lib.sh"
A=2001
B=2002

h_ganesha
m_proxy px "$H_NFS_PORT" "$H_DIR/c1" --access-ttl 600

# rd UID PATH OUT: EXPORT/PATH through the proxy as UID:UID: LOOKUPs (so
# the proxy looks for metadata as the user), an ACCESS as a kernel client
# sends at open (upstream grants the read), then 64 KiB READs.  Prints
# "nfs error N" and fails on the first error.
rd() {
	PYTHONPATH="$top_srcdir/tests/tools" python3 - 127.0.0.1 "$H_PX_PORT" \
		"$H_EXPORT" "$@" <<'PY'
import sys
from nfsrpc import Nfs, NfsError, opaque, u32, u64
host, port, export, uid, path, out = sys.argv[1:7]
n = Nfs(host, int(port), export, int(uid), int(uid), mountport=int(port))
try:
    fh = n.lookup_path(path)
    st, r = n.call(4, opaque(fh) + u32(1))
    if st:
        raise NfsError(st, "ACCESS")
    data, off = b"", 0
    while True:
        st, r = n.call(6, opaque(fh) + u64(off) + u32(1 << 16))
        if st:
            raise NfsError(st, "READ")
        r.post_op_attr()
        r.u32()
        eof = r.u32()
        chunk = r.opaque()
        data += chunk
        off += len(chunk)
        if eof or not chunk:
            break
except NfsError as e:
    print(f"nfs error {e.status}")
    sys.exit(1)
open(out, "wb").write(data)
PY
}

# forge META IMAGE OUT [random]: META's hashes (or random ones), relabelled
# with IMAGE's size and mtime and a correct checksum: what a user can write
# with a hex editor.
forge() {
	python3 - "$@" <<'PY' || h_fail "cannot forge $3"
import hashlib, os, struct, sys
meta, image, out = sys.argv[1:4]
b = bytearray(open(meta, "rb").read())
st = os.stat(image)
b[16:24] = struct.pack(">Q", st.st_size)
b[24:32] = struct.pack(">q", st.st_mtime_ns // 10**9)
b[32:36] = struct.pack(">I", st.st_mtime_ns % 10**9)
if len(sys.argv) > 4:
    nblk = struct.unpack(">Q", b[40:48])[0]
    b[96:96 + 32 * nblk] = os.urandom(32 * nblk)
b[64:96] = bytes(32)
b[64:96] = hashlib.sha256(b).digest()
open(out, "wb").write(b)
PY
}

# --- scan_mode: the metadata file is as private as its image ---------------
m_image "$H_EXPORT/a.img" 4 100 31
chown $A:$A "$H_EXPORT/a.img" && chmod 600 "$H_EXPORT/a.img"
m_image "$H_EXPORT/g.img" 2 100 32
chown $A:$A "$H_EXPORT/g.img" && chmod 640 "$H_EXPORT/g.img"
(umask 022 && "$GV" meta scan "$H_EXPORT/a.img" >/dev/null && "$GV" meta scan "$H_EXPORT/g.img" >/dev/null) ||
	h_fail "scan_mode: meta scan failed"
got=$(stat -c '%a %u %g' "$H_EXPORT/a.img.gvmeta")
[ "$got" = "600 $A $A" ] || h_fail "scan_mode: a.img is 0600 uid $A; its metadata is '$got'"
got=$(stat -c '%a %u %g' "$H_EXPORT/g.img.gvmeta")
[ "$got" = "640 $A $A" ] || h_fail "scan_mode: g.img is 0640 uid $A; its metadata is '$got'"
"$GV" meta show "$H_EXPORT/a.img.gvmeta" | grep -q "^trust: *trusted" ||
	h_fail "scan_mode: meta show does not call a.img.gvmeta trusted"
h_log "scan_mode: metadata follows its image (0600, 0640, owner $A)"

# --- item1_forged: B's metadata with A's hashes does not fetch A's blocks --
rd $A /a.img "$H_DIR/a" || h_fail "item1: A cannot read her own image: $(cat "$H_DIR/a" 2>/dev/null)"
cmp -s "$H_EXPORT/a.img" "$H_DIR/a" || h_fail "item1: A's read of a.img is wrong"
grep -q "metadata a.img.gvmeta: " "$H_DIR/px.log" || h_fail "item1: A's own metadata was not used"
sleep 1 # A's blocks committed to the cache (as chunks)
m_image "$H_EXPORT/b.img" 4 100 33
chown $B:$B "$H_EXPORT/b.img"
forge "$H_EXPORT/a.img.gvmeta" "$H_EXPORT/b.img" "$H_EXPORT/b.img.gvmeta"
chown $B:$B "$H_EXPORT/b.img.gvmeta" && chmod 644 "$H_EXPORT/b.img.gvmeta"
out=$(rd $B /b.img "$H_DIR/b") || h_fail "item1: B's read of his own file failed: $out"
cmp -s "$H_EXPORT/a.img" "$H_DIR/b" && h_fail "item1: B read A's 0600 image through his forged metadata"
cmp -s "$H_EXPORT/b.img" "$H_DIR/b" || h_fail "item1: B's read of b.img is not b.img"
grep -q "hash mismatch with its metadata; metadata b.img.gvmeta set aside" "$H_DIR/px.log" ||
	h_fail "item1: no log line for the metadata that lied"
h_log "item1_forged: B got his own bytes, none of A's"

# --- item2_planted: metadata planted by another user is not used -----------
mkdir "$H_EXPORT/pub" && chmod 1777 "$H_EXPORT/pub"
m_image "$H_EXPORT/pub/own.img" 4 100 34
chown $B:$B "$H_EXPORT/pub/own.img"
"$GV" meta scan "$H_EXPORT/pub/own.img" >/dev/null || h_fail "item2: scan own.img"
rd $B /pub/own.img "$H_DIR/o" && cmp -s "$H_EXPORT/pub/own.img" "$H_DIR/o" ||
	h_fail "item2: B's read of his own image"
sleep 1 # B's blocks in the cache
seed=40
for v in victim victim2 victim3; do
	m_image "$H_EXPORT/pub/$v.img" 4 100 $((seed += 1))
	chown $A:$A "$H_EXPORT/pub/$v.img" && chmod 600 "$H_EXPORT/pub/$v.img"
done
# victim: B's own blocks' hashes; victim2: random hashes (both valid files)
forge "$H_EXPORT/pub/own.img.gvmeta" "$H_EXPORT/pub/victim.img" "$H_EXPORT/pub/victim.img.gvmeta"
forge "$H_EXPORT/pub/own.img.gvmeta" "$H_EXPORT/pub/victim2.img" "$H_EXPORT/pub/victim2.img.gvmeta" random
chown $B:$B "$H_EXPORT"/pub/victim*.gvmeta && chmod 644 "$H_EXPORT"/pub/victim*.gvmeta
# victim3: A's own random-hash metadata, but group/other-writable
forge "$H_EXPORT/pub/own.img.gvmeta" "$H_EXPORT/pub/victim3.img" "$H_EXPORT/pub/victim3.img.gvmeta" random
chown $A:$A "$H_EXPORT/pub/victim3.img.gvmeta" && chmod 666 "$H_EXPORT/pub/victim3.img.gvmeta"
for v in victim victim2 victim3; do
	out=$(rd $A "/pub/$v.img" "$H_DIR/$v") || h_fail "item2: A's read of her $v.img failed: $out"
	cmp -s "$H_EXPORT/pub/own.img" "$H_DIR/$v" && h_fail "item2: A's $v.img read as B's bytes"
	cmp -s "$H_EXPORT/pub/$v.img" "$H_DIR/$v" || h_fail "item2: A's read of $v.img is wrong"
done
"$GV" meta show "$H_EXPORT/pub/victim.img.gvmeta" >"$H_DIR/show" &&
	h_fail "item2: meta show exits 0 for the planted metadata: $(cat "$H_DIR/show")"
grep -q "UNTRUSTED: owned by neither" "$H_DIR/show" || h_fail "item2: meta show: $(cat "$H_DIR/show")"
grep -q "metadata victim.img.gvmeta ignored: untrusted: owned by neither" "$H_DIR/px.log" ||
	h_fail "item2: no log line for the planted victim.img.gvmeta"
grep -q "metadata victim3.img.gvmeta ignored: untrusted: writable by group or others" "$H_DIR/px.log" ||
	h_fail "item2: no log line for the writable victim3.img.gvmeta"
h_log "item2_planted: A read her own bytes from all three images"

# --- item9_chmod: a grant does not outlive a chmod --------------------------
RPC="python3 $top_srcdir/tests/tools/nfsrpc.py 127.0.0.1 $H_PX_PORT $H_EXPORT --mountport $H_PX_PORT"
head -c 200000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 200000 >"$H_EXPORT/shared.txt"
chown $A:$A "$H_EXPORT/shared.txt" && chmod 644 "$H_EXPORT/shared.txt"
out=$($RPC --uid $B --gid $B read /shared.txt)
[ "$out" = "$(cat "$H_EXPORT/shared.txt")" ] || h_fail "item9: B could not read the 0644 file: ${out:0:80}"
PYTHONPATH="$top_srcdir/tests/tools" python3 - 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" $A <<'PY' ||
import sys
from nfsrpc import Nfs
host, port, export, uid = sys.argv[1:5]
Nfs(host, int(port), export, int(uid), int(uid), mountport=int(port)).setattr("/shared.txt", mode=0o600)
PY
	h_fail "item9: A's chmod through the proxy failed"
[ "$(stat -c %a "$H_EXPORT/shared.txt")" = 600 ] || h_fail "item9: the chmod did not reach the export"
out=$($RPC --uid $A --gid $A read /shared.txt)
[ "$out" = "$(cat "$H_EXPORT/shared.txt")" ] || h_fail "item9: A could not read her file after chmod"
sleep 1 # the new version's blocks committed: B's READ could be a hit
out=$($RPC --uid $B --gid $B read /shared.txt)
[ "$out" = "nfs error 13" ] || h_fail "item9: B still read the file after chmod 0600: '${out:0:80}'"
h_log "item9_chmod: B refused at once after the chmod"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"

# --- item9_chmod_immutable: the same where the cache trusts one version ----
# The chmod is made on the store and seen in A's GETATTR: an immutable
# cache keeps serving the version it trusts, but not to a revoked user.
m_proxy px2 "$H_NFS_PORT" "$H_DIR/c2" --access-ttl 600 --consistency immutable
RPC2="python3 $top_srcdir/tests/tools/nfsrpc.py 127.0.0.1 $H_PX_PORT $H_EXPORT --mountport $H_PX_PORT"
head -c 100000 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c 100000 >"$H_EXPORT/golden.txt"
chown $A:$A "$H_EXPORT/golden.txt" && chmod 644 "$H_EXPORT/golden.txt"
for i in 1 2; do
	out=$($RPC2 --uid $B --gid $B read /golden.txt)
	[ "$out" = "$(cat "$H_EXPORT/golden.txt")" ] || h_fail "item9 immutable: B could not read the 0644 file"
	sleep 1 # the blocks committed: B's next READ is a hit
done
chmod 600 "$H_EXPORT/golden.txt"
[ "$($RPC2 --uid $A --gid $A getattr /golden.txt)" = "$A $A 0o600 100000" ] ||
	h_fail "item9 immutable: A's GETATTR does not show the chmod"
out=$($RPC2 --uid $B --gid $B read /golden.txt)
[ "$out" = "nfs error 13" ] || h_fail "item9 immutable: B still read the file after chmod 0600: '${out:0:80}'"
h_log "item9_chmod_immutable: B refused once the new mode was seen"
h_stop_pid "$PX" || h_fail "gridvfsd (immutable) exited $? on SIGTERM"
h_pass
