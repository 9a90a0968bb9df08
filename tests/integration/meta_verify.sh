#!/bin/bash
# meta_verify: metadata that must not be trusted.  A malformed metadata
# file and a stale one (the image changed, its mtime with it) are ignored
# with a log line and the image reads right.  An image changed upstream
# with its mtime put back (touch -r), so that its old metadata still looks
# valid: the changed blocks fail their hash, are fetched once more, fail
# again and are answered NFS3ERR_IO (logged); every other block reads
# byte-identical; no wrong byte reaches the client.
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
cp -p "$H_EXPORT/vm.img" "$H_DIR/ref"
python3 - "$H_EXPORT/vm.img" <<'PY' >"$H_DIR/changed" || h_fail "cannot change vm.img"
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
touch -r "$H_DIR/ref" "$H_EXPORT/vm.img"
"$GV" meta show "$H_EXPORT/vm.img.gvmeta" | grep -q "matches" || h_fail "the changed image's metadata should still look valid"
h_log "changed blocks: $(cat "$H_DIR/changed")"
PYTHONPATH="$top_srcdir/tests/tools" python3 - 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" \
	"$H_EXPORT/vm.img" "$(cat "$H_DIR/changed")" <<'PY' >"$H_DIR/blocks" || h_fail "block reads: $(cat "$H_DIR/blocks")"
import sys
from nfsrpc import Nfs, opaque, u32, u64
host, port, export, path, changed = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
changed = set(int(b) for b in changed.split())
truth = open(path, "rb").read()
n = Nfs(host, port, export)
fh = n.lookup_path("/vm.img")
bad = []
for b in range(len(truth) >> 16):
    st, r = n.call(6, opaque(fh) + u64(b << 16) + u32(1 << 16))
    if st:
        print(f"block {b}: nfs error {st}")
        if st != 5 or b not in changed:
            bad.append(b)
        continue
    r.post_op_attr(); r.u32(); r.u32()
    got = r.opaque()
    if b in changed:
        print(f"block {b}: served although changed")
        bad.append(b)
    elif got != truth[b << 16:(b + 1) << 16]:
        print(f"block {b}: WRONG DATA")
        bad.append(b)
print("bad:", bad)
sys.exit(1 if bad else 0)
PY
h_log "$(cat "$H_DIR/blocks")"
[ "$(grep -c "nfs error 5" "$H_DIR/blocks")" -eq 3 ] || h_fail "expected 3 blocks with NFS3ERR_IO: $(cat "$H_DIR/blocks")"
grep -q "hash mismatch with its metadata; answering NFS3ERR_IO" "$H_DIR/px.log" ||
	grep -q "hash mismatch with its metadata; fetching it again" "$H_DIR/px.log" ||
	h_fail "no log line for the hash mismatch"
h_stop_pid "$PX" || h_fail "gridvfsd exited $? on SIGTERM"
grep -q "3 failed their hash\|[0-9]* failed their hash" "$H_DIR/px.log" || h_fail "no mismatch count at exit"
grep -Eq "[1-9][0-9]* failed their hash" "$H_DIR/px.log" || h_fail "mismatch count is 0"
h_pass
