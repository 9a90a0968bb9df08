#!/bin/bash
# meta_verify: metadata that must not be trusted.  A malformed metadata
# file and a stale one (the image changed, its mtime with it) are ignored
# with a log line and the image reads right.  An image changed upstream
# with its mtime put back (touch -r): its ctime moved past its metadata's,
# so the metadata is ignored (logged) and every block reads as it is now.
# The same with the metadata file touched afterwards, so that it looks
# valid in every way: the first changed block fails its hash, the
# metadata is set aside (logged) and the bytes upstream sent are served;
# every block reads as it is now and none answers NFS3ERR_IO (issue 16:
# upstream is the authority on the bytes, metadata only a hint).
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init meta_verify
. "$top_srcdir/tests/integration/meta_lib.sh"

h_ganesha
m_image "$H_EXPORT/bad.img" 8 50 21
m_image "$H_EXPORT/old.img" 8 50 22
m_image "$H_EXPORT/vm.img" 8 50 23
for f in bad old vm; do "$GV" meta scan "$H_EXPORT/$f.img" >/dev/null || h_fail "scan $f"; done
# malformed: one byte of a hash flipped (the checksum no longer matches)
printf '\xff' | dd of="$H_EXPORT/bad.img.gvmeta" bs=1 seek=200 conv=notrunc 2>/dev/null
"$GV" meta show "$H_EXPORT/bad.img.gvmeta" >/dev/null 2>&1 && h_fail "meta show accepted a damaged file"
# stale: the image changed after the scan (its mtime moved)
m_rewrite "$H_EXPORT/old.img" 5 24
touch -d '+1 min' "$H_EXPORT/old.img"
"$GV" meta show "$H_EXPORT/old.img.gvmeta" | grep -q STALE || h_fail "meta show did not call old.img.gvmeta stale"

m_proxy px "$H_NFS_PORT" "$H_DIR/c1"
for f in bad old; do
	m_get "$f.img" "$H_DIR/$f" && cmp -s "$H_EXPORT/$f.img" "$H_DIR/$f" || h_fail "$f.img read wrong"
done
grep -q "metadata bad.img.gvmeta ignored: malformed" "$H_DIR/px.log" || h_fail "no log line for the malformed metadata"
grep -q "metadata old.img.gvmeta ignored: stale" "$H_DIR/px.log" || h_fail "no log line for the stale metadata"

# --- changed under valid-looking metadata --------------------------------
# vm.img: changed, mtime put back; vm2.img: the same, then its metadata
# touched (as if rewritten after the change by its owner)
m_image "$H_EXPORT/vm2.img" 8 50 25
"$GV" meta scan "$H_EXPORT/vm2.img" >/dev/null || h_fail "scan vm2"
sleep 0.1 # the change below gets a later ctime than the scan
for f in vm vm2; do
	cp -p "$H_EXPORT/$f.img" "$H_DIR/ref"
	python3 - "$H_EXPORT/$f.img" <<'PY' >"$H_DIR/changed.$f" || h_fail "cannot change $f.img"
import sys
# flip one byte in three data blocks (zero blocks are never fetched: the
# metadata is their authority, docs/metadata.md)
data = open(sys.argv[1], "rb").read()
blocks = [b for b in range(len(data) >> 16) if any(data[b << 16:(b << 16) + 4096])][:3]
with open(sys.argv[1], "r+b") as f:
    for b in blocks:
        f.seek((b << 16) + 1000)
        f.write(bytes([data[(b << 16) + 1000] ^ 0x5a]))
print(" ".join(map(str, sorted(blocks))))
PY
	touch -r "$H_DIR/ref" "$H_EXPORT/$f.img"
	"$GV" meta show "$H_EXPORT/$f.img.gvmeta" | grep -q "matches" || h_fail "the changed $f.img's metadata should still look valid"
	h_log "$f.img changed blocks: $(cat "$H_DIR/changed.$f")"
done
sleep 0.1
touch "$H_EXPORT/vm2.img.gvmeta"
for f in vm vm2; do
	PYTHONPATH="$top_srcdir/tests/tools" python3 - 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" \
		"$H_EXPORT/$f.img" "$(cat "$H_DIR/changed.$f")" <<'PY' >"$H_DIR/blocks.$f" || h_fail "$f.img block reads: $(cat "$H_DIR/blocks.$f")"
import os, sys
from nfsrpc import Nfs, opaque, u32, u64
host, port, export, path, changed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
changed = set(int(b) for b in changed.split())
truth = open(path, "rb").read()
n = Nfs(host, port, export)
fh = n.lookup_path("/" + os.path.basename(path))
bad = []
for b in range(len(truth) >> 16):
    st, r = n.call(6, opaque(fh) + u64(b << 16) + u32(1 << 16))
    if st:
        print(f"block {b}: nfs error {st}")
        bad.append(b)
        continue
    r.post_op_attr(); r.u32(); r.u32()
    got = r.opaque()
    if got != truth[b << 16:(b + 1) << 16]:
        print(f"block {b}: WRONG DATA{' (a changed one)' if b in changed else ''}")
        bad.append(b)
print("bad:", bad)
sys.exit(1 if bad else 0)
PY
	h_log "$f.img: $(cat "$H_DIR/blocks.$f")"
done
grep -q "metadata vm.img.gvmeta ignored: untrusted: older than the image's last change" "$H_DIR/px.log" ||
	h_fail "no log line for the metadata older than its image's change"
grep -q "hash mismatch with its metadata; metadata vm2.img.gvmeta set aside" "$H_DIR/px.log" ||
	h_fail "no log line for the hash mismatch"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
grep -Eq "[1-9][0-9]* failed their hash" "$H_DIR/px.log" || h_fail "no mismatch count at exit"
h_pass
