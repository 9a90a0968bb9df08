#!/bin/bash
# ops_config: gridvfsd driven by a configuration file (gridvfs.conf(5)) in
# front of ganesha.  The file's settings take effect, the command line wins
# over them, --check-config prints the effective settings with their
# origins, errors name FILE:LINE and exit 2, the shipped example validates,
# a daemon (foreground = no, pidfile) started from a file detaches and
# stops on SIGTERM, and SIGHUP reloads the file's map on a live connection.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init ops_config

D="$top_builddir/gridvfsd"
[ -x "$D" ] || h_fail "gridvfsd not built"
h_ganesha
echo "hello from the store" >"$H_EXPORT/hello.txt"
h_take_port PORT_FILE
h_take_port PORT_CMD
CONF="$H_DIR/node.conf"
cat >"$CONF" <<EOF
# written by ops_config
role = client
listen = 127.0.0.1:$PORT_FILE
upstream = 127.0.0.1:$H_NFS_PORT
mount-upstream = "127.0.0.1:$H_MNT_PORT"   # quoted, with a comment
foreground = yes
log-level = debug
control = none
map = $H_DIR/map
EOF
echo "uid 1000 2000" >"$H_DIR/map"

# --check-config: the merged view, each line with where it came from.
"$D" -c "$CONF" --listen "127.0.0.1:$PORT_CMD" --check-config >"$H_DIR/check.out" 2>"$H_DIR/check.err" ||
	h_fail "--check-config of a good file failed: $(cat "$H_DIR/check.err")"
grep -qP "^listen = 127.0.0.1:$PORT_CMD\t# command line\$" "$H_DIR/check.out" ||
	h_fail "--check-config does not show the command line's listen: $(cat "$H_DIR/check.out")"
grep -qP "^upstream = 127.0.0.1:$H_NFS_PORT\t# $CONF:4\$" "$H_DIR/check.out" ||
	h_fail "--check-config does not show upstream from $CONF:4"
grep -qP "^mount-upstream = 127.0.0.1:$H_MNT_PORT\t# $CONF:5\$" "$H_DIR/check.out" ||
	h_fail "quoted value with a comment misread"
grep -q "^foreground = yes" "$H_DIR/check.out" || h_fail "flag foreground missing from --check-config"
# Its output is a configuration file meaning the same.
"$D" -c "$H_DIR/check.out" --check-config >"$H_DIR/check2.out" 2>&1 ||
	h_fail "--check-config output is not a valid file: $(cat "$H_DIR/check2.out")"
diff <(grep -v '^#' "$H_DIR/check.out" | cut -f1) <(grep -v '^#' "$H_DIR/check2.out" | cut -f1) >/dev/null ||
	h_fail "re-reading --check-config output changes the settings"

# Run it: the command line's --listen wins, the file's upstream is used.
"$D" -c "$CONF" --listen "127.0.0.1:$PORT_CMD" </dev/null >>"$H_DIR/gridvfsd.log" 2>&1 &
PX=$!
H_PIDS+=("$PX")
h_wait_tcp "$PORT_CMD" 20 "$PX" || h_fail "gridvfsd from $CONF does not listen on the command line's port"
(exec 3<>"/dev/tcp/127.0.0.1/$PORT_FILE") 2>/dev/null && h_fail "the file's listen port is open too"
got=$(nfs-cat "nfs://127.0.0.1$H_EXPORT/hello.txt?version=3&nfsport=$PORT_CMD&mountport=$PORT_CMD" 2>&1) ||
	h_fail "nfs-cat through the configured gridvfsd failed: $got"
[ "$got" = "hello from the store" ] || h_fail "read '$got' through the proxy"

# SIGHUP reloads the file's map; a connection opened before stays usable.
python3 - "$PORT_CMD" "$PX" >"$H_DIR/hup.log" 2>&1 <<'PY' || h_fail "connection across SIGHUP: $(cat "$H_DIR/hup.log")"
import os, signal, socket, struct, sys, time
def null(s, xid):
    body = struct.pack(">IIIIIIIIII", xid, 0, 2, 100003, 3, 0, 0, 0, 0, 0)
    s.sendall(struct.pack(">I", 0x80000000 | len(body)) + body)
    hdr = s.recv(4)
    n = struct.unpack(">I", hdr)[0] & 0x7fffffff
    msg = b""
    while len(msg) < n:
        msg += s.recv(n - len(msg))
    rxid, mtype, stat = struct.unpack(">III", msg[:12])
    assert (rxid, mtype, stat) == (xid, 1, 0), (rxid, mtype, stat)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
null(s, 1)
os.kill(int(sys.argv[2]), signal.SIGHUP)
time.sleep(0.5)
null(s, 2)
PY
grep -q "SIGHUP: map $H_DIR/map reloaded" "$H_DIR/gridvfsd.log" || h_fail "no map reload on SIGHUP"
h_stop_pid "$PX" || h_fail "configured gridvfsd exited $? on SIGTERM"

# Errors: FILE:LINE, exit status 2, nothing started.
bad() { # bad LINE EXPECTED-MESSAGE (the config file is on stdin)
	local rc
	cat >"$H_DIR/bad.conf"
	"$D" -c "$H_DIR/bad.conf" --check-config >/dev/null 2>"$H_DIR/bad.err"
	rc=$?
	[ "$rc" = 2 ] || h_fail "bad config ($2) gave exit $rc, not 2"
	grep -qF "$H_DIR/bad.conf:$1" "$H_DIR/bad.err" && grep -qF "$2" "$H_DIR/bad.err" ||
		h_fail "bad config: want '$H_DIR/bad.conf:$1 ... $2', got: $(cat "$H_DIR/bad.err")"
}
printf 'role = client\n\nupstrem = 127.0.0.1:1\n' | bad 3 "upstrem: unknown key"
printf 'upstream = 127.0.0.1:1\nforeground = sometimes\n' | bad 2 "a flag takes yes or no"
printf 'upstream = 127.0.0.1:1\ncache-size = 12Q\n' | bad 2 "cache-size"
printf 'upstream = 127.0.0.1:1\ncompress = maybe\n' | bad 2 "'maybe' is not one of off, auto, on"
printf 'upstream = 127.0.0.1:1\ncompress-below = 0\n' | bad 2 "compress-below: '0' is not a number"
printf 'upstream = 127.0.0.1:1\n[export images]\n' | bad 2 "no 'path = /DIR'"
printf 'upstream =\n' | bad 1 "missing value"
{ printf 'role = client\n'; head -c 300 /dev/urandom | tr '\n' x; echo; } | bad 2 ""
"$D" -c "$H_DIR/absent.conf" --check-config >/dev/null 2>"$H_DIR/absent.err"
[ $? = 2 ] && grep -q "absent.conf: No such file" "$H_DIR/absent.err" ||
	h_fail "a missing -c file is not an error: $(cat "$H_DIR/absent.err")"

# The shipped example is valid (its store name does not resolve here).
"$D" -c "$top_srcdir/examples/gridvfsd.conf.example" --upstream 127.0.0.1:2050 \
	--mount-upstream 127.0.0.1:2050 --check-config >"$H_DIR/example.out" 2>&1 ||
	h_fail "examples/gridvfsd.conf.example: $(cat "$H_DIR/example.out")"
grep -q '^cache-size = 50G' "$H_DIR/example.out" || h_fail "example not read"

# A daemon from the file: detaches, writes its pid file, drains on SIGTERM.
sed -e 's/^foreground = yes/foreground = no/' -e "s|^listen = .*|listen = 127.0.0.1:$PORT_FILE|" \
	"$CONF" >"$H_DIR/daemon.conf"
echo "pidfile = $H_DIR/gridvfsd.pid" >>"$H_DIR/daemon.conf"
"$D" -c "$H_DIR/daemon.conf" >"$H_DIR/daemon.out" 2>&1 || h_fail "daemon start failed: $(cat "$H_DIR/daemon.out")"
[ -s "$H_DIR/gridvfsd.pid" ] || h_fail "no pid file"
DPID=$(cat "$H_DIR/gridvfsd.pid")
H_PIDS+=("$DPID")
h_wait_tcp "$PORT_FILE" 10 "$DPID" || h_fail "the detached daemon does not listen on the file's port"
got=$(nfs-cat "nfs://127.0.0.1$H_EXPORT/hello.txt?version=3&nfsport=$PORT_FILE&mountport=$PORT_FILE" 2>&1)
[ "$got" = "hello from the store" ] || h_fail "read '$got' through the detached daemon"
kill -TERM "$DPID"
h__wait_gone "$DPID" 15 || h_fail "detached daemon ignored SIGTERM"
h__forget_pid "$DPID"
[ ! -e "$H_DIR/gridvfsd.pid" ] || h_fail "pid file left behind"
h_pass
