#!/bin/bash
# sec_local_ident: issue 16 item 3, local identity forgery on the client
# role.  User A (2001) owns a 0600 file; a local user M (nobody, 65534)
# talks raw ONC RPC to the client role's loopback port from an unreserved
# port.  Claiming uid 2001 must be refused (AUTH_TOOWEAK, logged) instead
# of reading A's file; claiming its own ids works (and ganesha answers
# ACCES for A's file).  Root on an unreserved port (the kernel says the
# socket is root's) and libnfs tools keep working; --insecure restores the
# old belief in any credential, with a warning.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init sec_local_ident
RPC="python3 $top_srcdir/tests/tools/nfsrpc.py"
# The system python: a user's pyenv shim may not be readable by nobody.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
M_AS=(setpriv --reuid=65534 --regid=65534 --clear-groups)

h_ganesha
chmod 755 "$H_DIR" "$H_EXPORT"
# What nobody runs, copied where nobody can read it: the source and build
# trees may sit in a directory only root may enter (a mktemp -d clone).
mkdir -p "$H_DIR/pub" &&
	cp "$top_srcdir/tests/tools/nfsrpc.py" "$top_builddir/gridvfsd" "$H_DIR/pub/" &&
	chmod 755 "$H_DIR/pub" || h_fail "cannot copy the tools for uid 65534"
M_RPC=$H_DIR/pub/nfsrpc.py
echo "A-secret" >"$H_EXPORT/secret"
chown 2001:2001 "$H_EXPORT/secret"
chmod 600 "$H_EXPORT/secret"

h_gridvfsd
P=$H_PX_PORT
asm() { "${M_AS[@]}" $PY "$M_RPC" 127.0.0.1 "$P" "$H_EXPORT" --mountcred 65534:65534 "$@"; }

# --- case forged_uid: M claims A's uid -------------------------------------
out=$(asm --uid 2001 --gid 2001 read /secret 2>&1)
[ "$out" = "nfs error 1005" ] ||
	h_fail "forged_uid: local uid 65534 claiming uid 2001 got '$out', want AUTH_TOOWEAK (nfs error 1005)"
grep -q "call refused (AUTH_TOOWEAK): local uid 65534 claimed uid 2001" "$H_DIR/gridvfsd.log" ||
	h_fail "forged_uid: no log line naming the forged claim"
# A forged group is refused too (gid 0 is not nobody's).
out=$(asm --uid 65534 --gid 0 read /secret 2>&1)
[ "$out" = "nfs error 1005" ] || h_fail "forged_gid: got '$out', want nfs error 1005"
out=$(asm --uid 65534 --gid 65534 --gids 2001 read /secret 2>&1)
[ "$out" = "nfs error 1005" ] || h_fail "forged_groups: got '$out', want nfs error 1005"
# Mounting as root from an unreserved port is a forgery as well.
out=$("${M_AS[@]}" $PY "$M_RPC" 127.0.0.1 "$P" "$H_EXPORT" getattr / 2>&1)
[ "$out" = "nfs error 1005" ] || h_fail "forged_mount: MNT as uid 0 by uid 65534 got '$out'"

# --- case own_ids: M's own identity still works -----------------------------
out=$(asm --uid 65534 --gid 65534 read /secret 2>&1)
[ "$out" = "nfs error 13" ] || h_fail "own_ids: M reading A's 0600 file as itself got '$out', want ACCES (13)"
asm --uid 65534 --gid 65534 getattr / >/dev/null || h_fail "own_ids: M cannot GETATTR the root as itself"

# --- case root_peer: root's socket on an unreserved port is believed -------
[ "$($RPC 127.0.0.1 "$P" "$H_EXPORT" --uid 2001 --gid 2001 read /secret)" = "A-secret" ] ||
	h_fail "root_peer: root acting as 2001 could not read the file"
nfs-ls "$(h_url_proxy)" | grep -q secret || h_fail "root_peer: nfs-ls through the proxy failed"

# --- case unprivileged_daemon: a user's own gridvfsd (mount.gridvfs run by
# that user) serves that user from an unreserved port; the default control
# socket in root's /run/gridvfs is skipped with a warning, not fatal.
echo "for all" >"$H_EXPORT/public"
chmod 644 "$H_EXPORT/public"
h_take_port P2
"${M_AS[@]}" "$H_DIR/pub/gridvfsd" -c /dev/null --listen "127.0.0.1:$P2" \
	--upstream "127.0.0.1:$H_NFS_PORT" --mount-upstream "127.0.0.1:$H_MNT_PORT" --foreground \
	</dev/null >"$H_DIR/unpriv.log" 2>&1 &
H_PIDS+=($!)
h_wait_tcp "$P2" 20 $! || h_fail "unprivileged_daemon: gridvfsd as uid 65534 did not start: $(tail -n 2 "$H_DIR/unpriv.log")"
out=$("${M_AS[@]}" $PY "$M_RPC" 127.0.0.1 "$P2" "$H_EXPORT" \
	--mountcred 65534:65534 --uid 65534 --gid 65534 read /public 2>&1)
[ "$out" = "for all" ] || h_fail "unprivileged_daemon: its own user got '$out'"

# --- case insecure: the old behaviour, on request, with a warning ----------
h_gridvfsd_stop
h_gridvfsd --insecure
P=$H_PX_PORT
[ "$(asm --uid 2001 --gid 2001 read /secret 2>&1)" = "A-secret" ] ||
	h_fail "insecure: --insecure did not restore the old behaviour"
grep -q -- "--insecure: every AUTH_SYS credential is believed" "$H_DIR/gridvfsd.log" ||
	h_fail "insecure: no warning logged"
h_pass
