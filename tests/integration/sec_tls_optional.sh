#!/bin/bash
# sec_tls_optional: issue 16 item 7.  A server role under --tls optional
# used to believe a plaintext client's AUTH_SYS as it stood (no
# certificate, so no grid-mapfile restriction): anyone on the network could
# create files as any uid.  Now a plaintext client acts as the anonymous id
# unless --plaintext-accounts names accounts, chown to another account is
# refused, and the downgrade risk is logged at error level on both roles.
# A plaintext client may still open with a full-size call (the pre-TLS
# 4 KiB bound of item 8 is for --tls require).
# An mTLS client in the same daemon still acts as its grid-mapfile account.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init sec_tls_optional
GV="$top_builddir/gridvfs"
RPC="python3 $top_srcdir/tests/tools/nfsrpc.py"

h_ganesha
chmod 1777 "$H_EXPORT"
CA=$H_DIR/ca
$GV ca init "$CA" >/dev/null || h_fail "ca init failed"
$GV ca issue "$CA" --name store --server 127.0.0.1 >/dev/null || h_fail "ca issue store failed"
DN1=$($GV ca issue "$CA" --name node1 | tail -n 1 | sed 's/ ACCOUNT$//') || h_fail "ca issue node1 failed"
printf '%s daemon\n' "$DN1" >"$H_DIR/grid-mapfile"
DAEMON_UID=$(id -u daemon)
owner() { stat -c %u:%g "$1"; }
srv() {
	h_gridvfsd_at server "$H_NFS_PORT" "$H_MNT_PORT" --role server --tls optional \
		--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
		--grid-mapfile "$H_DIR/grid-mapfile" --squash none "$@"
	SP=$H_AT_PORT SPID=$H_AT_PID
}

# --- case plaintext_anonymous ---------------------------------------------
srv
$RPC 127.0.0.1 "$SP" "$H_EXPORT" --uid 2001 --gid 2001 create /p1 ||
	h_fail "plaintext_anonymous: create failed"
[ "$(owner "$H_EXPORT/p1")" = 65534:65534 ] ||
	h_fail "plaintext_anonymous: a plaintext client created a file as $(owner "$H_EXPORT/p1"), want the anonymous 65534:65534"
$RPC 127.0.0.1 "$SP" "$H_EXPORT" --uid 0 --gid 0 create /p0 || h_fail "plaintext_anonymous: create as root failed"
[ "$(owner "$H_EXPORT/p0")" = 65534:65534 ] ||
	h_fail "plaintext_anonymous: plaintext root (with --squash none) created $(owner "$H_EXPORT/p0")"
out=$($RPC 127.0.0.1 "$SP" "$H_EXPORT" --uid 2001 --gid 2001 create /p2 2001 2001)
[ "$out" = "nfs error 13" ] && [ ! -e "$H_EXPORT/p2" ] ||
	h_fail "plaintext_anonymous: giving a new file to uid 2001 got '$out'"
grep -q "gridvfsd\[error\].*--tls optional: plaintext clients are accepted" "$H_DIR/server.log" ||
	h_fail "plaintext_anonymous: the downgrade risk is not logged at error level"

# --- case plaintext_big_first_call: under optional the pre-TLS 4 KiB bound
# must not cut off a plaintext client whose first call is a 64 KiB WRITE
# (a client reconnecting in the middle of a copy).
python3 - "$SP" "$H_EXPORT" "$top_srcdir/tests/tools" <<'PY' || h_fail "plaintext_big_first_call: a 64 KiB first call was refused"
import sys
sys.path.insert(0, sys.argv[3])
from nfsrpc import Nfs, opaque, u32, u64
port, exp = int(sys.argv[1]), sys.argv[2]
a = Nfs("127.0.0.1", port, exp)
a.create("/big")
fh = a.lookup_path("/big")
b = Nfs("127.0.0.1", port, exp)   # a fresh NFS connection: WRITE is its first record
st, r = b.call(7, opaque(fh) + u64(0) + u32(65536) + u32(2) + opaque(b"x" * 65536))
sys.exit(0 if st == 0 else 1)
PY
[ "$(stat -c %s "$H_EXPORT/big")" = 65536 ] || h_fail "plaintext_big_first_call: the WRITE did not land"

# --- case plaintext_accounts ------------------------------------------------
h_stop_pid "$SPID"
srv --plaintext-accounts daemon
$RPC 127.0.0.1 "$SP" "$H_EXPORT" --uid "$DAEMON_UID" --gid "$(id -g daemon)" create /d1 ||
	h_fail "plaintext_accounts: create as daemon failed"
[ "$(stat -c %u "$H_EXPORT/d1")" = "$DAEMON_UID" ] ||
	h_fail "plaintext_accounts: a file created as daemon is owned by $(owner "$H_EXPORT/d1")"
$RPC 127.0.0.1 "$SP" "$H_EXPORT" --uid 2001 --gid 2001 create /d2 || h_fail "plaintext_accounts: create as 2001 failed"
[ "$(owner "$H_EXPORT/d2")" = 65534:65534 ] ||
	h_fail "plaintext_accounts: uid 2001 (not named) created $(owner "$H_EXPORT/d2")"

# --- case tls_peer_unchanged: the mTLS client acts as its account ----------
h_gridvfsd --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" --tls-ca "$CA/ca.crt" \
	--upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP"
grep -q "gridvfsd\[error\].*--tls optional" "$H_DIR/gridvfsd.log" &&
	h_fail "tls_peer_unchanged: the client role with --tls require logged a downgrade"
$RPC 127.0.0.1 "$H_PX_PORT" "$H_EXPORT" --uid "$DAEMON_UID" --gid "$(id -g daemon)" create /t1 ||
	h_fail "tls_peer_unchanged: create through the mTLS chain failed"
[ "$(stat -c %u "$H_EXPORT/t1")" = "$DAEMON_UID" ] ||
	h_fail "tls_peer_unchanged: the TLS peer's file is owned by $(owner "$H_EXPORT/t1")"
h_gridvfsd_stop

# --- case client_role_optional_logged ---------------------------------------
h_gridvfsd --tls optional --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" \
	--tls-ca "$CA/ca.crt" --upstream "127.0.0.1:$SP" --mount-upstream "127.0.0.1:$SP"
grep -q "gridvfsd\[error\].*--tls optional: the upstream link goes plaintext" "$H_DIR/gridvfsd.log" ||
	h_fail "client_role_optional_logged: no error-level line about the downgrade"
h_pass
