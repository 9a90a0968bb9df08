#!/bin/bash
# cascade: node cache -> site cache -> mTLS -> store, three levels of
# gridvfsd (the hierarchical cache of the GVFS papers).  Data read on two
# nodes is correct; the second node's cold read is served from the site
# cache: the store (counted by a relay in front of ganesha) sees no more
# READs; and a node's warm read touches neither.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init cascade
GV="$top_builddir/gridvfs"
ST="$H_DIR/store.stats"

h_ganesha
h_relay RP "$H_NFS_PORT" --rpc --stats "$ST"
CA=$H_DIR/ca
$GV ca init "$CA" >/dev/null && $GV ca issue "$CA" --name store --server 127.0.0.1 >/dev/null ||
	h_fail "ca failed"
DN=$($GV ca issue "$CA" --name site | tail -n 1 | sed 's/ ACCOUNT$//')
echo "$DN root" >"$H_DIR/grid-mapfile"
h_gridvfsd_at store "$RP" "$H_MNT_PORT" --role server --squash none \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--grid-mapfile "$H_DIR/grid-mapfile"
SP=$H_AT_PORT
h_gridvfsd_at site "$SP" "$SP" --role client --cache-dir "$H_DIR/site" \
	--tls-cert "$CA/site.crt" --tls-key "$CA/site.key" --tls-ca "$CA/ca.crt"
SITE=$H_AT_PORT
h_gridvfsd_at node1 "$SITE" "$SITE" --role client --cache-dir "$H_DIR/n1"
N1=$H_AT_PORT
h_gridvfsd_at node2 "$SITE" "$SITE" --role client --cache-dir "$H_DIR/n2"
N2=$H_AT_PORT
url() { printf 'nfs://127.0.0.1%s/img?version=3&nfsport=%s&mountport=%s' "$H_EXPORT" "$1" "$1"; }
reads() { h_stat "$ST" calls.100003.6; }

head -c $((64 << 20)) /dev/urandom >"$H_EXPORT/img"
want=$(h_sha256 "$H_EXPORT/img")
nfs-cp "$(url "$N1")" "$H_DIR/a" >/dev/null 2>&1 || h_fail "node1 read failed"
[ "$(h_sha256 "$H_DIR/a")" = "$want" ] || h_fail "node1 read differs"
sleep 0.5
r1=$(reads)
[ "$r1" -gt 0 ] || h_fail "the store relay counted no READ"
nfs-cp "$(url "$N2")" "$H_DIR/b" >/dev/null 2>&1 || h_fail "node2 read failed"
[ "$(h_sha256 "$H_DIR/b")" = "$want" ] || h_fail "node2 read differs"
r2=$(reads)
[ "$r2" -eq "$r1" ] || h_fail "node2's cold read reached the store: $((r2 - r1)) READs"
rm -f "$H_DIR/a"
nfs-cp "$(url "$N1")" "$H_DIR/a" >/dev/null 2>&1 || h_fail "node1 warm read failed"
[ "$(h_sha256 "$H_DIR/a")" = "$want" ] || h_fail "node1 warm read differs"
[ "$(reads)" -eq "$r1" ] || h_fail "node1's warm read reached the store"
h_log "store READs: $r1 for node1 cold, 0 for node2 cold (site cache), 0 warm"
h_pass
