#!/bin/bash
# ops_install: `make install DESTDIR=...` puts every file where it belongs
# (gridvfsd and mount.gridvfs in sbin, gridvfs in bin, four man pages, the
# example configuration, the systemd unit with its paths substituted); the
# pages render; and the installed binaries serve one scenario in front of
# ganesha, started with the unit's own ExecStart line and a config file.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init ops_install

DEST="$H_DIR/dest"
# Called from `make check`: the outer make's jobserver is not ours.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s -C "$top_builddir" "$@"; }
cat >"$H_DIR/dirs.mk" <<'EOF'
ops-print-dirs:
	@echo "sbindir=$(sbindir) bindir=$(bindir) mandir=$(mandir) sysconfdir=$(sysconfdir) unitdir=$(systemdsystemunitdir)"
EOF
dirs=$(mk -f Makefile -f "$H_DIR/dirs.mk" ops-print-dirs) || h_fail "cannot read the install dirs"
eval "$dirs"
h_log "$dirs"
for v in sbindir bindir mandir sysconfdir unitdir; do
	[ -n "${!v}" ] || h_fail "install dir $v is empty ($dirs)"
done
mk install DESTDIR="$DEST" >"$H_DIR/install.log" 2>&1 || h_fail "make install failed: $(tail -n 5 "$H_DIR/install.log")"

# --- the layout ---------------------------------------------------------
S="$DEST$sbindir" B="$DEST$bindir"
for f in "$S/gridvfsd" "$S/mount.gridvfs" "$B/gridvfs"; do
	[ -f "$f" ] && [ -x "$f" ] || h_fail "not installed or not executable: ${f#"$DEST"}"
done
[ ! -e "$B/gridvfsd" ] && [ ! -e "$B/mount.gridvfs" ] && [ ! -e "$S/gridvfs" ] ||
	h_fail "a binary is in the wrong one of bin and sbin"
for p in man8/gridvfsd.8 man8/mount.gridvfs.8 man1/gridvfs.1 man5/gridvfs.conf.5; do
	f="$DEST$mandir/$p"
	[ -f "$f" ] || h_fail "man page not installed: ${f#"$DEST"}"
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null)
	[ -z "$warn" ] || h_fail "installed $p warns: $warn"
	LC_ALL=C man -l "$f" 2>/dev/null | grep -q '^NAME' || h_fail "installed $p does not render"
done
EX="$DEST$sysconfdir/gridvfs/gridvfsd.conf.example"
[ -f "$EX" ] || h_fail "example config not installed at ${EX#"$DEST"}"
[ ! -e "$DEST$sysconfdir/gridvfs/gridvfsd.conf" ] || h_fail "install wrote a live gridvfsd.conf"
U="$DEST$unitdir/gridvfsd@.service"
[ -f "$U" ] || h_fail "systemd unit not installed at ${U#"$DEST"}"
grep -q '@[a-z]*@' "$U" && h_fail "unsubstituted @dir@ left in the unit: $(grep '@[a-z]*@' "$U")"
want="ExecStart=$sbindir/gridvfsd -F -c $sysconfdir/gridvfs/%i.conf"
grep -qxF "$want" "$U" || h_fail "unit lacks '$want': $(grep ExecStart "$U")"
grep -qxF 'ExecReload=/bin/kill -HUP $MAINPID' "$U" || h_fail "unit has no ExecReload"
command -v systemd-analyze >/dev/null || h_fail "systemd-analyze missing (Debian package systemd)"
{
	# verify wants the unit's binary and man pages at their final paths:
	# check a copy that points into DESTDIR.
	mkdir -p "$H_DIR/unit"
	sed "s|$sbindir/|$S/|g" "$U" >"$H_DIR/unit/gridvfsd@.service"
	out=$(MANPATH="$DEST$mandir" SYSTEMD_LOG_LEVEL=warning \
		systemd-analyze verify "$H_DIR/unit/gridvfsd@.service" 2>&1) ||
		h_fail "systemd-analyze verify: $out"
	[ -z "$out" ] || h_fail "systemd-analyze verify warns: $out"
	score=$(systemd-analyze security --offline=true "$H_DIR/unit/gridvfsd@.service" 2>/dev/null |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	h_log "systemd-analyze security exposure: ${score:-?}"
	[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s < 5.0) }' ||
		h_fail "unit sandbox is weak: exposure ${score:-unknown} (want < 5.0)"
}

# --- the installed binaries at work -------------------------------------
"$B/gridvfs" version | grep -q '^gridvfs ' || h_fail "installed gridvfs does not run"
h_ganesha
head -c $((8 * 1024 * 1024 + 123)) /dev/urandom >"$H_EXPORT/img.bin"
h_take_port PORT
mkdir -p "$DEST$sysconfdir/gridvfs"
cat >"$DEST$sysconfdir/gridvfs/node.conf" <<EOF
role = client
listen = 127.0.0.1:$PORT
upstream = 127.0.0.1:$H_NFS_PORT
mount-upstream = 127.0.0.1:$H_MNT_PORT
cache-dir = $H_DIR/cache
control = $H_DIR/ctl.sock
log-level = debug
EOF
# The unit's ExecStart, instance "node", with the DESTDIR in front.
cmd=$(sed -n 's/^ExecStart=//p' "$U" | sed -e 's/%i/node/g' -e "s|$sbindir/|$S/|" -e "s| $sysconfdir/| $DEST$sysconfdir/|")
h_log "starting: $cmd"
# shellcheck disable=SC2086
$cmd </dev/null >>"$H_DIR/gridvfsd.log" 2>&1 &
PX=$!
H_PIDS+=("$PX")
h_wait_tcp "$PORT" 20 "$PX" || h_fail "installed gridvfsd did not listen"
url="nfs://127.0.0.1$H_EXPORT/img.bin?version=3&nfsport=$PORT&mountport=$PORT"
for pass in cold warm; do
	rm -f "$H_DIR/out.bin"
	nfs-cp "$url" "$H_DIR/out.bin" >"$H_DIR/cp.log" 2>&1 || h_fail "$pass read through the installed gridvfsd: $(cat "$H_DIR/cp.log")"
	[ "$(h_sha256 "$H_DIR/out.bin")" = "$(h_sha256 "$H_EXPORT/img.bin")" ] || h_fail "$pass read differs"
done
"$B/gridvfs" cache stat "$H_DIR/cache" >"$H_DIR/stat.out" 2>&1 || h_fail "installed gridvfs cache stat: $(cat "$H_DIR/stat.out")"
"$B/gridvfs" status --socket "$H_DIR/ctl.sock" >"$H_DIR/status.out" 2>&1 ||
	h_fail "installed gridvfs status: $(cat "$H_DIR/status.out")"
grep -qi 'read' "$H_DIR/status.out" || h_fail "gridvfs status shows no READ calls: $(head -n 5 "$H_DIR/status.out")"
# The installed mount helper finds the installed daemon next to it.
mkdir -p "$H_DIR/mnt"
"$S/mount.gridvfs" "127.0.0.1:$H_NFS_PORT:$H_EXPORT" "$H_DIR/mnt" -o dry-run,mountport=$H_MNT_PORT \
	>"$H_DIR/dry.out" 2>&1 || h_fail "installed mount.gridvfs dry-run: $(cat "$H_DIR/dry.out")"
grep -qF "$S/gridvfsd" "$H_DIR/dry.out" || h_fail "installed mount.gridvfs would not start the installed gridvfsd: $(cat "$H_DIR/dry.out")"
h_stop_pid "$PX" || h_fail "installed gridvfsd exited $? on SIGTERM"

mk uninstall DESTDIR="$DEST" >>"$H_DIR/install.log" 2>&1 || h_fail "make uninstall failed"
rm -f "$DEST$sysconfdir/gridvfs/node.conf"
left=$(find "$DEST" -type f | sed "s|^$DEST||")
[ -z "$left" ] || h_fail "make uninstall left: $left"
h_pass
