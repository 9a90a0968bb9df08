#!/bin/bash
# tls_chain: libnfs client -> client-role gridvfsd -> RFC 9289 mutual TLS ->
# server-role gridvfsd -> ganesha.  A 256 MiB file round-trips bit-identical;
# the link between the proxies carries no plaintext of the file (a canary
# that shows up in a capture of the client's own plaintext link is absent
# from the capture of the TLS link), and tshark decodes the link as an RPC
# AUTH_TLS probe followed by a TLS ClientHello offering ALPN sunrpc (after
# gridvfs-z1, see link_zstd.sh).
# Refused, each with a log line, while a healthy client keeps copying: a
# certificate from another CA, an expired one, a revoked one (CRL), a DN
# not in the grid-mapfile, a plaintext client, a TLS 1.2-only client, no
# ALPN, garbage and truncated TLS.  A peer granted only 'daemon' cannot act
# as www-data: it is squashed and cannot read www-data's 0600 file.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init tls_chain
GV="$top_builddir/gridvfs"
PROBE="python3 $top_srcdir/tests/tools/tlsprobe.py"
RPC="python3 $top_srcdir/tests/tools/nfsrpc.py"

h_ganesha
chmod 1777 "$H_EXPORT"
CA=$H_DIR/ca EVIL=$H_DIR/evil
$GV ca init "$CA" >/dev/null && $GV ca init "$EVIL" >/dev/null || h_fail "ca init failed"
$GV ca issue "$CA" --name store --server 127.0.0.1 >/dev/null || h_fail "ca issue store failed"
dn() { $GV ca issue "$1" --name "$2" | tail -n 1 | sed 's/ ACCOUNT$//'; }
DN1=$(dn "$CA" node1) && DN3=$(dn "$CA" node3) && dn "$CA" node2 >/dev/null &&
	dn "$EVIL" node1 >/dev/null || h_fail "ca issue failed"
$GV ca revoke "$CA" --name node3 >/dev/null || h_fail "ca revoke failed"
# An expired certificate from the right CA, made with plain openssl.
mkdir -p "$H_DIR/ossl" && : >"$H_DIR/ossl/index.txt" && echo 1000 >"$H_DIR/ossl/serial"
cat >"$H_DIR/ossl/ca.cnf" <<C
[ca]
default_ca = x
[x]
database = $H_DIR/ossl/index.txt
new_certs_dir = $H_DIR/ossl
serial = $H_DIR/ossl/serial
default_md = sha256
policy = p
[p]
commonName = supplied
organizationName = optional
C
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=gridvfs/CN=old" \
	-keyout "$H_DIR/old.key" -out "$H_DIR/old.csr" 2>/dev/null &&
	openssl ca -batch -config "$H_DIR/ossl/ca.cnf" -cert "$CA/ca.crt" -keyfile "$CA/ca.key" \
		-in "$H_DIR/old.csr" -out "$H_DIR/old.crt" -startdate 20200101000000Z \
		-enddate 20200201000000Z -notext >/dev/null 2>&1 || h_fail "cannot make an expired certificate"
chmod 600 "$H_DIR/old.key"
printf '%s daemon\n%s daemon\n"/O=gridvfs/CN=old" daemon\n' "$DN1" "$DN3" >"$H_DIR/grid-mapfile"

h_gridvfsd_at server "$H_NFS_PORT" "$H_MNT_PORT" --role server \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--tls-crl "$CA/crl.pem" --grid-mapfile "$H_DIR/grid-mapfile"
SP=$H_AT_PORT SPID=$H_AT_PID
h_gridvfsd --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" --tls-ca "$CA/ca.crt" \
	--upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP"

# --- 256 MiB round trip through the chain --------------------------------
MB=${TLS_MB:-256}
head -c $((MB << 20)) /dev/urandom >"$H_DIR/big" || h_fail "no test data"
want=$(h_sha256 "$H_DIR/big")
nfs-cp "$H_DIR/big" "$(h_url_proxy /big)" >/dev/null 2>&1 || h_fail "copy into the chain failed"
[ "$(h_sha256 "$H_EXPORT/big")" = "$want" ] || h_fail "file written through TLS differs on disk"
nfs-cp "$(h_url_proxy /big)" "$H_DIR/back" >/dev/null 2>&1 || h_fail "copy out of the chain failed"
[ "$(h_sha256 "$H_DIR/back")" = "$want" ] || h_fail "file read through TLS differs"
rm -f "$H_DIR/back" "$H_DIR/big"

# --- no plaintext on the TLS link; tshark's view of it --------------------
python3 - "$H_DIR/canary" <<'PY'
import os, sys
pat = b"GRIDVFS-CANARY-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJK"
assert len(pat) == 64
with open(sys.argv[1], "wb") as f:
    for i in range(32):
        f.write(pat + os.urandom((1 << 20) - 64))
PY
h_gridvfsd_stop && h_stop_pid "$SPID" || h_fail "daemons did not stop cleanly"
h_gridvfsd_at server "$H_NFS_PORT" "$H_MNT_PORT" --role server \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--tls-crl "$CA/crl.pem" --grid-mapfile "$H_DIR/grid-mapfile"
SP=$H_AT_PORT SPID=$H_AT_PID
tcpdump -i lo -B 32768 -U -s 0 -w "$H_DIR/link.pcap" "tcp port $SP" >"$H_DIR/tcpdump.log" 2>&1 &
TD=$!
H_PIDS+=("$TD")
h_gridvfsd --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" --tls-ca "$CA/ca.crt" \
	--upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP"
tcpdump -i lo -B 32768 -U -s 0 -w "$H_DIR/plain.pcap" "tcp port $H_PX_PORT" >"$H_DIR/tcpdump2.log" 2>&1 &
TD2=$!
H_PIDS+=("$TD2")
sleep 1
nfs-cp "$H_DIR/canary" "$(h_url_proxy /canary)" >/dev/null 2>&1 || h_fail "canary copy failed"
sleep 1
kill -INT "$TD" "$TD2"; wait "$TD" "$TD2" 2>/dev/null
PAT="GRIDVFS-CANARY-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJK"
plain=$(grep -a -c -F "$PAT" "$H_DIR/plain.pcap")
tls=$(grep -a -c -F "$PAT" "$H_DIR/link.pcap")
h_log "canary: $plain hits on the plaintext link, $tls on the TLS link"
[ "$plain" -ge 16 ] || h_fail "capture method broken: canary seen only $plain times in plaintext"
[ "$tls" -eq 0 ] || h_fail "plaintext of the file crossed the TLS link ($tls hits)"
[ "$(stat -c %s "$H_DIR/link.pcap")" -gt $((16 << 20)) ] || h_fail "TLS link capture too small"
flav=$(tshark -r "$H_DIR/link.pcap" -d "tcp.port==$SP,rpc" -Y "rpc.auth.flavor == 7" \
	-T fields -e frame.number 2>/dev/null | head -n 1)
[ -n "$flav" ] || h_fail "tshark sees no RPC call with AUTH_TLS on the link"
alpn=$(tshark -r "$H_DIR/link.pcap" -d "tcp.port==$SP,tls" -Y "tls.handshake.type == 1" \
	-T fields -e tls.handshake.extensions_alpn_str 2>/dev/null | head -n 1)
# sunrpc (RFC 9289), after gridvfs-z1 (compressed records, proxy/zlink.h)
[[ ",$alpn," == *,sunrpc,* ]] || h_fail "tshark sees no TLS ClientHello with ALPN sunrpc (got '$alpn')"
hello=$(tshark -r "$H_DIR/link.pcap" -d "tcp.port==$SP,tls" -Y "tls.handshake.type == 1" \
	-T fields -e frame.number 2>/dev/null | head -n 1)
[ "$hello" -gt "$flav" ] || h_fail "the ClientHello (frame $hello) does not follow the probe (frame $flav)"

# --- refusals, while a healthy client keeps copying -----------------------
head -c $((8 << 20)) /dev/urandom >"$H_DIR/h"
hw=$(h_sha256 "$H_DIR/h")
( i=0; while [ ! -e "$H_DIR/stop" ]; do i=$((i + 1))
	nfs-cp "$H_DIR/h" "$(h_url_proxy /h$i)" >/dev/null 2>&1 || exit 1
	[ "$(h_sha256 "$H_EXPORT/h$i")" = "$hw" ] || exit 2; rm -f "$H_EXPORT/h$i"
done ) &
healthy=$!
try() { # try MODE WANT_LOG_TEXT [cert args]
	local mode=$1 want=$2
	shift 2
	$PROBE 127.0.0.1 "$SP" "$mode" "$@" >>"$H_DIR/probe.out" 2>&1 ||
		h_fail "tlsprobe $mode $*: wrong outcome ($(tail -n 1 "$H_DIR/probe.out"))"
	sleep 0.2
	grep -q -- "$want" "$H_DIR/server.log" || h_fail "no server log line '$want' for $mode $*"
}
K="--ca $CA/ca.crt"
try ok "TLS peer '/O=gridvfs/CN=node1'" $K --cert "$CA/node1.crt" --key "$CA/node1.key"
try refused "unknown CA\|unable to get local issuer" $K --cert "$EVIL/node1.crt" --key "$EVIL/node1.key"
try refused "expired" $K --cert "$H_DIR/old.crt" --key "$H_DIR/old.key"
try refused "revoked" $K --cert "$CA/node3.crt" --key "$CA/node3.key"
try refused "not in the grid-mapfile" $K --cert "$CA/node2.crt" --key "$CA/node2.key"
try plaintext "plaintext call refused"
try tls12 "no shared protocol version" $K --cert "$CA/node1.crt" --key "$CA/node1.key"
try noalpn "no ALPN sunrpc" $K --cert "$CA/node1.crt" --key "$CA/node1.key"
try garbage "TLS protocol error"
try truncated "closed mid-handshake" $K
touch "$H_DIR/stop"
wait $healthy || h_fail "the healthy client failed while bad peers were refused"

# --- a peer may act only as its accounts ----------------------------------
echo "www-data secret" >"$H_EXPORT/wsecret" && chown 33:33 "$H_EXPORT/wsecret" && chmod 600 "$H_EXPORT/wsecret"
echo "daemon data" >"$H_EXPORT/dsecret" && chown 1:1 "$H_EXPORT/dsecret" && chmod 600 "$H_EXPORT/dsecret"
out=$($RPC 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" --uid 33 --gid 33 read /wsecret)
[ "$out" = "nfs error 13" ] || h_fail "peer acting as www-data read its 0600 file: '$out'"
out=$($RPC 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" --uid 1 --gid 1 read /dsecret)
[ "$out" = "daemon data" ] || h_fail "peer acting as daemon could not read daemon's file: '$out'"
$RPC 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" --uid 33 --gid 33 create /wnew || h_fail "squashed create failed"
[ "$(stat -c %u "$H_EXPORT/wnew")" = 65534 ] || h_fail "a claim of uid 33 was not squashed"
out=$($RPC 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" --uid 1 --gid 1 setattr /dsecret 33 33)
[ "$out" = "nfs error 13" ] || h_fail "peer could give a file to www-data: '$out'"
[ "$(stat -c %u "$H_EXPORT/dsecret")" = 1 ] || h_fail "dsecret changed owner"

h_gridvfsd_stop || h_fail "client role exited $? on SIGTERM"
h_stop_pid "$SPID" || h_fail "server role exited $? on SIGTERM"
h_pass
