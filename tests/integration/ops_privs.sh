#!/bin/bash
# ops_privs: --user drops root after start-up (the process then runs as
# that user and cannot regain root), and --upstream-privport lets it still
# reach an export that demands reserved client ports (ganesha's
# PrivilegedPort, Linux's "secure"): without the option the same unprivileged
# daemon is refused by such an export.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init ops_privs
H_GANESHA_EXPORT_EXTRA="PrivilegedPort = true;" h_ganesha
head -c 1000000 /dev/urandom >"$H_EXPORT/f" && chmod 644 "$H_EXPORT/f"
uid_of() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status"; }

h_gridvfsd --user nobody --upstream-privport --control none
[ "$(uid_of "$H_PX_PID")" = "65534 65534 65534 65534" ] ||
	h_fail "gridvfsd runs as uids '$(uid_of "$H_PX_PID")', want nobody everywhere"
grep -q "running as nobody" "$H_DIR/gridvfsd.log" || h_fail "no log line for the drop"
grep -q "^CapEff:.*0000000000000400$" "/proc/$H_PX_PID/status" ||
	h_fail "capabilities are not just CAP_NET_BIND_SERVICE: $(grep CapEff "/proc/$H_PX_PID/status")"
nfs-cp "$(h_url_proxy /f)" "$H_DIR/o" >/dev/null 2>&1 || h_fail "read through a --user daemon with --upstream-privport failed"
cmp -s "$H_EXPORT/f" "$H_DIR/o" || h_fail "data differs"
ss -tnp 2>/dev/null | grep "gridvfsd" | grep -q ":$H_NFS_PORT" || true
h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"

h_gridvfsd --user nobody --control none --upstream-timeout 3
timeout 20 nfs-cp "$(h_url_proxy /f)" "$H_DIR/o2" >/dev/null 2>&1 &&
	h_fail "an unprivileged source port was accepted by a PrivilegedPort export: the test proves nothing"
h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"

"$top_builddir/gridvfsd" -c /dev/null --role client --listen 127.0.0.1:0 --upstream 127.0.0.1:1 \
	--user no-such-user-here --control none -F >"$H_DIR/nouser.log" 2>&1 && h_fail "started with an unknown --user"
grep -q "no such user" "$H_DIR/nouser.log" || h_fail "no clear error for an unknown user"
h_pass
