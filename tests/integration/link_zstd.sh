#!/bin/bash
# link_zstd: compressed records between the roles (ALPN gridvfs-z1) over
# the whole chain: libnfs client -> client-role gridvfsd -> mTLS -> the
# emulated WAN (wanrelay, 10 ms RTT, 100 Mbit/s) -> server-role gridvfsd ->
# ganesha.  With the default --compress auto on both roles, both ends
# measure the slow link and pack: reading and writing 48 MiB of shared
# libraries (an image's kind of data) moves well under its size over the
# WAN, bit-identical at both ends; random data crosses plain, at its full
# size, after a few tries.  A client role with --compress off does not
# offer it (ALPN sunrpc, the whole size crosses).  The server role refuses,
# each with a log line and without harm to a healthy client: a compressed
# record of garbage, one stating 64 MiB, one stating more than it holds,
# one that is not a whole record, and the compressed bit on a link that
# never agreed to it.  A client role that stops ends its TLS with
# close_notify.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init link_zstd
GV="$top_builddir/gridvfs"
PROBE="python3 $top_srcdir/tests/tools/tlsprobe.py"
ST="$H_DIR/wan.stats"
MB=48

h_ganesha
h_store "$H_NFS_PORT" "$H_MNT_PORT"
h_relay WP "$H_SR_PORT" --stats "$ST" --delay-ms 5 --rate-mbit 100
node() { # node NAME ARGS...: a client role across the WAN
	local name=$1
	shift
	h_gridvfsd_at "$name" "$WP" "$WP" --role client "${H_NODE_TLS[@]}" \
		--tls-server-name 127.0.0.1 --control "$H_DIR/$name.sock" "$@"
	NP=$H_AT_PORT NPID=$H_AT_PID
}
url() { printf 'nfs://127.0.0.1%s%s?version=3&nfsport=%s&mountport=%s\n' "$H_EXPORT" "$1" "$NP" "$NP"; }
status() { "$GV" status --socket "$H_DIR/$1.sock" | awk -v k="$2" '$1 == k { print $2; exit }'; }
bytes() { h_stat "$ST" "$1"; }

# Shared libraries, as found on the machine: the kind of bytes a VM image
# holds.  Checked to be compressible at all (zlib -1 at least 1.5x), so a
# failure below is the link's, not the data's.
r=$(python3 "$top_srcdir/tests/tools/libsdata.py" "$H_EXPORT/libs" $((MB << 20)) 1.5) ||
	h_fail "cannot make compressible test data (zlib -1: ${r:-none})"
h_log "libraries: zlib -1 packs them ${r}x"
head -c $((16 << 20)) /dev/urandom >"$H_EXPORT/noise"
chmod 644 "$H_EXPORT/libs" "$H_EXPORT/noise"

# --- auto on both ends: the slow link is measured and packed ---------------
node n1
d0=$(bytes bytes_down)
nfs-cp "$(url /libs)" "$H_DIR/libs.back" >/dev/null 2>&1 || h_fail "read of libs through the chain failed"
cmp -s "$H_EXPORT/libs" "$H_DIR/libs.back" || h_fail "libs read through the compressed link differs"
down=$(($(bytes bytes_down) - d0))
grep -q "upstream nfs: TLS up (.*, zstd)" "$H_DIR/n1.log" || h_fail "the client role did not agree gridvfs-z1: $(grep 'TLS up' "$H_DIR/n1.log")"
grep -q "TLS peer .*zstd" "$H_DIR/store.log" || h_fail "the server role did not log gridvfs-z1"
sent=$("$GV" status --socket "$H_DIR/n1.sock" | awk '$1 == "zstd_records_received" { print $2 }')
h_log "read $MB MiB of libraries: $down bytes over the WAN; client received $sent compressed records"
[ "$down" -lt $((MB * 1048576 * 8 / 10)) ] || h_fail "reading $MB MiB moved $down bytes over the WAN: not compressed"
[ "${sent:-0}" -gt 0 ] || h_fail "the client role decoded no compressed record"
"$GV" status --socket "$H_DIR/n1.sock" | grep -q "^link_nfs .*zstd" || h_fail "status does not show the link as compressed"

u0=$(bytes bytes_up)
nfs-cp "$H_DIR/libs.back" "$(url /libs.w)" >/dev/null 2>&1 || h_fail "write of libs through the chain failed"
up=$(($(bytes bytes_up) - u0))
cmp -s "$H_EXPORT/libs" "$H_EXPORT/libs.w" || h_fail "libs written through the compressed link differ on the store"
zs=$(status n1 zstd_records_sent)
h_log "wrote $MB MiB of libraries: $up bytes over the WAN; the client packed $zs records ($(status n1 zstd_bytes_raw) -> $(status n1 zstd_bytes_wire) bytes)"
[ "$up" -lt $((MB * 1048576 * 8 / 10)) ] || h_fail "writing $MB MiB moved $up bytes over the WAN: not compressed"
rm -f "$H_DIR/libs.back" "$H_EXPORT/libs.w"

# Random data: plain, its full size, only a few records tried.
d0=$(bytes bytes_down)
nfs-cp "$(url /noise)" "$H_DIR/noise.back" >/dev/null 2>&1 || h_fail "read of noise failed"
cmp -s "$H_EXPORT/noise" "$H_DIR/noise.back" || h_fail "noise read through the link differs"
down=$(($(bytes bytes_down) - d0))
h_log "read 16 MiB of noise: $down bytes over the WAN"
[ "$down" -ge $((16 << 20)) ] || h_fail "noise shrank to $down bytes?"
rm -f "$H_DIR/noise.back"
h_stop_pid "$NPID" || h_fail "client role exited $? on SIGTERM"
# A client role that stops says goodbye in TLS (close_notify): the store
# logs an ordinary close, not a peer that died, and closes its side too
# (no connection is left across the relay).
for _ in $(seq 30); do
	[ "$(bytes conns_active)" = 0 ] && break
	sleep 0.1
done
[ "$(bytes conns_active)" = 0 ] || h_fail "$(bytes conns_active) connections left across the relay after the client role stopped"
grep -q "without a TLS close_notify" "$H_DIR/store.log" &&
	h_fail "a stopped client role closed without close_notify: $(grep close_notify "$H_DIR/store.log")"

# --- a client role with --compress off offers plain sunrpc -----------------
node n2 --compress off
d0=$(bytes bytes_down)
nfs-cp "$(url /libs)" "$H_DIR/libs.back" >/dev/null 2>&1 || h_fail "read with --compress off failed"
cmp -s "$H_EXPORT/libs" "$H_DIR/libs.back" || h_fail "libs read with --compress off differs"
down=$(($(bytes bytes_down) - d0))
h_log "--compress off: $down bytes over the WAN"
[ "$down" -ge $((MB << 20)) ] || h_fail "--compress off still moved only $down bytes"
grep "upstream nfs: TLS up" "$H_DIR/n2.log" | grep -q zstd && h_fail "--compress off agreed gridvfs-z1"
[ "$(status n2 zstd_records_received)" = 0 ] || h_fail "--compress off received compressed records"
rm -f "$H_DIR/libs.back"

# --- bad compressed records, while a healthy client keeps reading ----------
( while [ ! -e "$H_DIR/stop" ]; do
	nfs-cp "$(url /noise)" "$H_DIR/h.back" >/dev/null 2>&1 || exit 1
	cmp -s "$H_EXPORT/noise" "$H_DIR/h.back" || exit 2
done ) &
healthy=$!
K=(--ca "$H_CA/ca.crt" --cert "$H_CA/node.crt" --key "$H_CA/node.key")
try() { # try MODE WANT_LOG_TEXT
	$PROBE 127.0.0.1 "$H_SR_PORT" "$1" "${K[@]}" >>"$H_DIR/probe.out" 2>&1 ||
		h_fail "tlsprobe $1: wrong outcome ($(tail -n 1 "$H_DIR/probe.out"))"
	for _ in $(seq 50); do
		grep -q -- "$2" "$H_DIR/store.log" && return 0
		sleep 0.1
	done
	h_fail "no server log line '$2' for $1"
}
try zstd-ok "TLS peer .*zstd"
try zstd-garbage "compressed record is not a zstd frame"
try zstd-bomb "compressed record states 67108864 bytes"
try zstd-short "compressed record does not decode"
try zstd-frags "compressed record in more than one fragment"
try zstd-unagreed "record larger than --max-record"
touch "$H_DIR/stop"
wait $healthy || h_fail "the healthy client failed while bad records were refused"
kill -0 "$H_SR_PID" || h_fail "the server role died"

h_stop_pid "$NPID" || h_fail "client role exited $? on SIGTERM"
h_stop_pid "$H_SR_PID" || h_fail "server role exited $? on SIGTERM"
h_pass
