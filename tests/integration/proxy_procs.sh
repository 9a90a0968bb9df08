#!/bin/bash
# proxy_procs: every NFSv3/MOUNTv3 procedure (nfsops) gives the same answers
# straight to ganesha and through gridvfsd, and leaves the same files on
# disk; gridvfsd then exits 0 on SIGTERM.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_procs

NFSOPS=$(h_tool nfsops) || h_fail "nfsops tool unavailable"
h_ganesha
h_gridvfsd

# $1 = label, $2 = URL, $3 = work dir name
run_nfsops() {
	timeout -k 5 180 "$NFSOPS" "$2" "$3" >"$H_DIR/$1.out" 2>"$H_DIR/$1.err.log"
	local rc=$?
	[ $rc -eq 124 ] && h_fail "nfsops $1 hung (180 s)"
	[ $rc -eq 0 ] && return 0
	h_fail "nfsops $1 exit $rc: $(grep -m1 -E '^UNEXPECTED' "$H_DIR/$1.out")"
}

run_nfsops direct "$(h_url_direct)" direct
run_nfsops proxied "$(h_url_proxy)" proxied

# Transfer sizes may be lowered by the proxy, never raised or zeroed.
sizes() { grep '^raw-fsinfo-sizes' "$H_DIR/$1.out" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2; }
for k in rtmax rtpref wtmax wtpref dtpref; do
	d=$(sizes direct $k)
	p=$(sizes proxied $k)
	[ -n "$d" ] && [ -n "$p" ] && [ "$p" -gt 0 ] && [ "$p" -le "$d" ] ||
		h_fail "FSINFO $k: direct '$d', through proxy '$p'"
done

grep -v '^raw-fsinfo-sizes' "$H_DIR/direct.out" >"$H_DIR/direct.cmp"
grep -v '^raw-fsinfo-sizes' "$H_DIR/proxied.out" >"$H_DIR/proxied.cmp"
if ! diff -u "$H_DIR/direct.cmp" "$H_DIR/proxied.cmp" >"$H_DIR/diff.log"; then
	h_fail "nfsops output differs through the proxy: $(grep -m1 '^[-+][^-+]' "$H_DIR/diff.log")"
fi
[ "$(wc -l <"$H_DIR/direct.cmp")" -gt 100 ] || h_fail "nfsops printed too little"

# On disk: what nfsops documents it leaves behind, the same in both dirs.
cat >"$H_DIR/expected.tree" <<'EOF'
c f 600 2 1234 5678 70000
d f 600 2 1234 5678 70000
e f 604 1 0 0 0
p p 640 1 0 0 0
pub d 777 2 0 0
pub/mine f 644 1 4321 4321 0
s l 777 1 0 0 ->c
EOF
h_tree "$H_EXPORT/direct" >"$H_DIR/direct.tree"
h_tree "$H_EXPORT/proxied" >"$H_DIR/proxied.tree"
cut -d' ' -f1-7 "$H_DIR/direct.tree" | sed 's/ *$//' >"$H_DIR/direct.shape"
diff -u "$H_DIR/expected.tree" "$H_DIR/direct.shape" >"$H_DIR/diff.log" ||
	h_fail "direct run left unexpected files: $(grep -m1 '^[-+][^-+]' "$H_DIR/diff.log")"
diff -u "$H_DIR/direct.tree" "$H_DIR/proxied.tree" >"$H_DIR/diff.log" ||
	h_fail "on-disk result differs through the proxy: $(grep -m1 '^[-+][^-+]' "$H_DIR/diff.log")"
[ "$(h_sha256 "$H_EXPORT/proxied/c")" = "$(h_sha256 "$H_EXPORT/direct/c")" ] ||
	h_fail "file data differs on disk"

h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
h_pass
