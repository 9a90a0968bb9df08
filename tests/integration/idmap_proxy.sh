#!/bin/bash
# idmap_proxy: identity mapping applied on the wire, against real ganesha.
# Files created through the proxy by client uid 1001 are owned on disk by
# the mapped store uid and show as 1001 through GETATTR and READDIRPLUS;
# chown through SETATTR maps; root is squashed unless --squash none; store
# ids without a line show as the anonymous id; 16 supplementary gids map;
# an unmapped user under --unmapped deny gets NFS3ERR_ACCES and nothing is
# created; SIGHUP reloads the map under load without failing a call, and a
# broken map on SIGHUP is refused with FILE:LINE while the old one serves.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init idmap_proxy
RPC="python3 $top_srcdir/tests/tools/nfsrpc.py"

h_ganesha
chmod 1777 "$H_EXPORT"
MAP="$H_DIR/users.map"
cat >"$MAP" <<'M'
# client ids -> store ids
uid 1001 5001
gid 1001 5001
uid 2000-2099 6000
gid 100-199 700
gid 300-315 800
uid 0 0
gid 0 0
M
owner() { stat -c %u:%g "$1"; }

# --- default squash (root) -------------------------------------------------
h_gridvfsd --map "$MAP"
P=$H_PX_PORT
run() { $RPC 127.0.0.1 "$P" "$H_EXPORT" "$@"; }

run --uid 1001 --gid 1001 create /f1 || h_fail "create as 1001 failed"
[ "$(owner "$H_EXPORT/f1")" = 5001:5001 ] || h_fail "f1 on disk is $(owner "$H_EXPORT/f1"), want 5001:5001"
[ "$(run --uid 1001 --gid 1001 getattr /f1 | cut -d' ' -f1,2)" = "1001 1001" ] ||
	h_fail "GETATTR through the proxy does not show 1001 1001"
run lsplus / | grep -qx "f1 1001 1001" || h_fail "READDIRPLUS entry does not show 1001 1001"

head -c 3000000 /dev/urandom >"$H_DIR/data"
nfs-cp "$H_DIR/data" "$(h_url_proxy /c1)&uid=1001&gid=1001" >/dev/null 2>&1 ||
	h_fail "nfs-cp as uid 1001 failed"
[ "$(owner "$H_EXPORT/c1")" = 5001:5001 ] || h_fail "nfs-cp file owned by $(owner "$H_EXPORT/c1")"
nfs-ls "$(h_url_proxy /)" | grep -E "^-.* 1001 +1001 +3000000 c1$" >/dev/null ||
	h_fail "nfs-ls through the proxy does not show c1 as 1001:1001"

run --uid 0 --gid 0 create /r1 || h_fail "create as root failed"
[ "$(owner "$H_EXPORT/r1")" = 65534:65534 ] || h_fail "root not squashed: r1 is $(owner "$H_EXPORT/r1")"
run --uid 0 --gid 0 setattr /f1 2005 150 && h_fail "squashed root could chown"

touch "$H_EXPORT/f2" && chown 4444:4444 "$H_EXPORT/f2"
[ "$(run getattr /f2 | cut -d' ' -f1,2)" = "65534 65534" ] ||
	h_fail "a store id with no line does not show as the anonymous id"

# 16 supplementary gids: only the 16th (315 -> 815) opens the directory.
mkdir "$H_EXPORT/g" && chown 0:815 "$H_EXPORT/g" && chmod 0770 "$H_EXPORT/g"
G16=$(seq -s, 300 315)
G15=$(seq -s, 300 314)
run --uid 2001 --gid 2001 --gids "$G15" create /g/no >/dev/null &&
	h_fail "15 gids without the mapped 315 could create in a 0770 dir of gid 815"
run --uid 2001 --gid 2001 --gids "$G16" create /g/yes || h_fail "16 mapped gids: create failed"
[ "$(owner "$H_EXPORT/g/yes")" = 6001:65534 ] ||
	h_fail "g/yes owned by $(owner "$H_EXPORT/g/yes"), want 6001:65534 (gid 2001 unmapped -> anon)"
h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"

# --- --squash none: root maps by its line; chown maps both ways ------------
h_gridvfsd --map "$MAP" --squash none
P=$H_PX_PORT
run setattr /f1 2005 150 || h_fail "chown through SETATTR failed"
[ "$(owner "$H_EXPORT/f1")" = 6005:750 ] || h_fail "chown 2005:150 gave $(owner "$H_EXPORT/f1") on disk, want 6005:750"
[ "$(run getattr /f1 | cut -d' ' -f1,2)" = "2005 150" ] || h_fail "chowned file does not show 2005 150"
run create /r2 || h_fail "create as root (squash none) failed"
[ "$(owner "$H_EXPORT/r2")" = 0:0 ] || h_fail "root with --squash none became $(owner "$H_EXPORT/r2")"
h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"

# --- --unmapped deny, and SIGHUP reload under load -------------------------
h_gridvfsd --map "$MAP" --unmapped deny
P=$H_PX_PORT
out=$(run --uid 3000 --gid 1001 create /d1)
[ "$out" = "nfs error 13" ] || h_fail "unmapped uid under deny: got '$out', want nfs error 13"
[ ! -e "$H_EXPORT/d1" ] || h_fail "a denied create reached the store"
grep -q "identity not mapped" "$H_DIR/gridvfsd.log" || h_fail "no log line for the denied call"

head -c 8000000 /dev/urandom >"$H_DIR/load"
want=$(h_sha256 "$H_DIR/load")
pids=()
for i in 1 2 3 4 5 6 7 8; do
	( for j in 1 2 3; do
		nfs-cp "$H_DIR/load" "$(h_url_proxy /load$i.$j)&uid=1001&gid=1001" >/dev/null 2>&1 || exit 1
	  done ) &
	pids+=($!)
done
sleep 0.3
echo "uid 3000 7000" >>"$MAP"
kill -HUP "$H_PX_PID"
sleep 0.3
kill -HUP "$H_PX_PID"
for p in "${pids[@]}"; do wait "$p" || h_fail "a copy failed during SIGHUP reloads"; done
for i in 1 2 3 4 5 6 7 8; do for j in 1 2 3; do
	[ "$(h_sha256 "$H_EXPORT/load$i.$j")" = "$want" ] || h_fail "load$i.$j differs"
	[ "$(owner "$H_EXPORT/load$i.$j")" = 5001:5001 ] || h_fail "load$i.$j owner wrong"
done; done
grep -q "SIGHUP: map .* reloaded" "$H_DIR/gridvfsd.log" || h_fail "no reload log line"
run --uid 3000 --gid 1001 create /d2 || h_fail "uid 3000 still denied after the reload"
[ "$(owner "$H_EXPORT/d2")" = 7000:5001 ] || h_fail "d2 owned by $(owner "$H_EXPORT/d2"), want 7000:5001"

echo "uid 9 x y" >>"$MAP"
kill -HUP "$H_PX_PID"
sleep 0.5
grep -q "users.map:10: " "$H_DIR/gridvfsd.log" || h_fail "a broken map was not reported with FILE:LINE"
grep -q "keeping the previous map" "$H_DIR/gridvfsd.log" || h_fail "no 'keeping the previous map' line"
run --uid 3000 --gid 1001 create /d3 || h_fail "the previous map stopped serving after a bad reload"
[ "$(owner "$H_EXPORT/d3")" = 7000:5001 ] || h_fail "d3 owned by $(owner "$H_EXPORT/d3")"

h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
# A bad map at start is a start failure.
"$top_builddir/gridvfsd" --role client --upstream 127.0.0.1:$H_NFS_PORT --map "$MAP" -F \
	>"$H_DIR/bad.log" 2>&1 && h_fail "gridvfsd started with a broken map"
grep -q "users.map:10: " "$H_DIR/bad.log" || h_fail "start failure does not name FILE:LINE"
h_pass
