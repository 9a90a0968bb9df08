#!/bin/bash
# proxy_sigterm: SIGTERM drains and exits 0 — idle, and in the middle of a
# copy (the copy then completes bit-identical or fails with an error; it
# never leaves wrong data behind without saying so).  With upstream gone,
# SIGTERM fails the stuck calls after --drain-timeout and still exits 0.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_sigterm

h_ganesha
h_gridvfsd
h_gridvfsd_stop || h_fail "idle gridvfsd exited $? on SIGTERM"
grep -q "SIGTERM: draining" "$H_DIR/gridvfsd.log" || h_fail "no drain log line"

h_gridvfsd --drain-timeout 5
head -c $((128 * 1024 * 1024)) /dev/urandom >"$H_DIR/in.bin"
want=$(h_sha256 "$H_DIR/in.bin")
timeout -k 2 10 nfs-cp "$H_DIR/in.bin" "$(h_url_proxy /t.bin)" >"$H_DIR/cp.log" 2>&1 &
cp=$!
sleep 0.3
t0=$(date +%s)
h_gridvfsd_stop || h_fail "busy gridvfsd exited $? on SIGTERM"
[ $(($(date +%s) - t0)) -le 8 ] || h_fail "drain took longer than --drain-timeout + grace"
if wait $cp; then
	[ "$(h_sha256 "$H_EXPORT/t.bin")" = "$want" ] ||
		h_fail "copy reported success but the file differs"
	h_log "copy finished before the drain ended"
else
	h_log "copy failed cleanly after SIGTERM: $(tail -n 1 "$H_DIR/cp.log")"
fi

# Upstream dead: calls are stuck until the drain timeout fails them.
h_gridvfsd --drain-timeout 2 --upstream-timeout 0
h_ganesha_stop KILL
python3 - "$H_PX_PORT" "$H_DIR/probe.sent" <<'PY' &
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
body = struct.pack(">IIIIIIIIII", 77, 0, 2, 100003, 3, 0, 0, 0, 0, 0)
s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
open(sys.argv[2], "w").close()
s.settimeout(30)
hdr = s.recv(4)
msg = s.recv(4096)
xid, mtype, stat, vf, vl, acc = struct.unpack(">IIIIII", msg[:24])
sys.exit(0 if (xid, stat, acc) == (77, 0, 5) else 1)
PY
probe=$!
# The call must be in flight before SIGTERM: python alone can take more
# than a second to start on a loaded machine.
for _ in $(seq 100); do [ -e "$H_DIR/probe.sent" ] && break; sleep 0.1; done
[ -e "$H_DIR/probe.sent" ] || h_fail "the probe did not send its call within 10 s"
sleep 0.3
h_gridvfsd_stop || h_fail "gridvfsd with a dead upstream exited $? on SIGTERM"
wait $probe || h_fail "a stuck call did not get SYSTEM_ERR at the drain timeout"
grep -q "drain timeout: failing 1 call" "$H_DIR/gridvfsd.log" || h_fail "no drain-timeout log line"
h_pass
