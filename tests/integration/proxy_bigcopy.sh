#!/bin/bash
# proxy_bigcopy: a 256 MiB random file copied into the export and back out
# through gridvfsd with nfs-cp is bit-identical on disk and on return; a file
# placed in the export behind the proxy's back reads back identical too; and
# the same again with nfsbig keeping 16 calls in flight on one connection.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_bigcopy

MB=${BIGCOPY_MB:-256}
h_ganesha
h_gridvfsd

head -c $((MB * 1024 * 1024)) /dev/urandom >"$H_DIR/in.bin" || h_fail "cannot make test data"
want=$(h_sha256 "$H_DIR/in.bin")

t0=$SECONDS
timeout -k 5 300 nfs-cp "$H_DIR/in.bin" "$(h_url_proxy /big.bin)" >"$H_DIR/cp-in.log" 2>&1 ||
	h_fail "nfs-cp into the proxy failed (exit $?): $(tail -n 1 "$H_DIR/cp-in.log")"
h_log "in: $MB MiB in $((SECONDS - t0)) s"
[ "$(h_sha256 "$H_EXPORT/big.bin")" = "$want" ] || h_fail "file written through the proxy differs on disk"

t0=$SECONDS
timeout -k 5 300 nfs-cp "$(h_url_proxy /big.bin)" "$H_DIR/out.bin" >"$H_DIR/cp-out.log" 2>&1 ||
	h_fail "nfs-cp out of the proxy failed (exit $?): $(tail -n 1 "$H_DIR/cp-out.log")"
h_log "out: $MB MiB in $((SECONDS - t0)) s"
[ "$(h_sha256 "$H_DIR/out.bin")" = "$want" ] || h_fail "file read through the proxy differs"
rm -f "$H_DIR/out.bin"

# Data the proxy never saw go in: only upstream can supply it.
head -c $((MB * 1024 * 1024 / 4 + 12345)) /dev/urandom >"$H_EXPORT/side.bin"
want=$(h_sha256 "$H_EXPORT/side.bin")
timeout -k 5 300 nfs-cp "$(h_url_proxy /side.bin)" "$H_DIR/side.bin" >"$H_DIR/cp-side.log" 2>&1 ||
	h_fail "nfs-cp of an upstream-only file failed (exit $?): $(tail -n 1 "$H_DIR/cp-side.log")"
[ "$(h_sha256 "$H_DIR/side.bin")" = "$want" ] || h_fail "upstream-only file read through the proxy differs"

# Pipelined: many outstanding WRITEs/READs on one client connection.
NFSBIG=$(h_tool nfsbig) || h_fail "nfsbig tool unavailable"
want=$(h_sha256 "$H_DIR/in.bin")
timeout -k 5 300 "$NFSBIG" put "$H_DIR/in.bin" "$(h_url_proxy /piped.bin)" 16 262144 >"$H_DIR/big-put.log" 2>&1 ||
	h_fail "pipelined write through the proxy failed: $(tail -n 1 "$H_DIR/big-put.log")"
[ "$(h_sha256 "$H_EXPORT/piped.bin")" = "$want" ] || h_fail "pipelined write differs on disk"
timeout -k 5 300 "$NFSBIG" get "$(h_url_proxy /piped.bin)" "$H_DIR/piped.out" 16 262144 >"$H_DIR/big-get.log" 2>&1 ||
	h_fail "pipelined read through the proxy failed: $(tail -n 1 "$H_DIR/big-get.log")"
[ "$(h_sha256 "$H_DIR/piped.out")" = "$want" ] || h_fail "pipelined read through the proxy differs"
h_log "nfsbig: $(cat "$H_DIR/big-put.log") / $(cat "$H_DIR/big-get.log")"

h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
h_pass
