#!/bin/bash
# ops_exports.sh — several exports in one gridvfsd ([export NAME] sections),
# each with its own upstream server and policies, selected by the path a
# client mounts. Two nfs-ganesha instances are the two stores; libnfs and a
# raw RPC client are the clients.
#  A. Each mount path reaches its own store (same file names, different
#     bytes); a write through export alpha (write-back) lands in store A
#     only; each export caches in its own LMDB under the daemon's cache-dir.
#  B. Handles carry an 8-byte keyed tag (a MAC over export and handle):
#     8 bytes longer than the store's, the store's handle after them; RENAME across exports is NFS3ERR_XDEV; a
#     handle of no export is NFS3ERR_STALE; an unknown path is MNT3ERR_NOENT;
#     MOUNT EXPORT lists the configured paths; a CREATE forwarded by the
#     write-back engine (dirty data waiting) carries the tag too.
#  C. Handles survive a restart with the sections in another order.
#  D. gridvfs status shows each export; --check-config prints the sections;
#     bad sections are refused with FILE:LINE.
. "$(dirname "$0")/../lib/harness.sh"
h_init ops_exports
export H_DIR
GV="$top_builddir/gridvfs"
RPC="$top_srcdir/tests/tools/nfsrpc.py"

# Two stores.
H_GANESHA_NAME=storeA h_ganesha "$H_DIR/storeA"
A_NFS=$H_NFS_PORT A_MNT=$H_MNT_PORT A_EXP=$H_EXPORT
H_GANESHA_NAME=storeB h_ganesha "$H_DIR/storeB"
B_NFS=$H_NFS_PORT B_MNT=$H_MNT_PORT B_EXP=$H_EXPORT
# Store A's NFS port behind a relay the test can pause (write-back case).
export WAN="$top_builddir/tests/tools/wanrelay"
h_relay A_RELAY "$A_NFS" --control "$H_DIR/relay.ctl"
head -c 300000 /dev/urandom >"$A_EXP/image.raw"
head -c 200000 /dev/urandom >"$B_EXP/image.raw"
mkdir -p "$B_EXP/sub" && echo beta-sub >"$B_EXP/sub/note"

conf() { # ORDER: "ab" or "ba"
	cat <<-EOF
		# daemon-wide
		role = client
		cache-dir = $H_DIR/cache
		cache-size = 64M
	EOF
	local alpha beta
	alpha=$(cat <<-EOF
		[export alpha]   # store A, write-back
		path = /stores/alpha
		upstream-path = $A_EXP
		upstream = 127.0.0.1:$A_RELAY
		mount-upstream = 127.0.0.1:$A_MNT
		write-policy = back
	EOF
	)
	beta=$(cat <<-EOF
		[export beta]
		path = /stores/beta/
		upstream-path = $B_EXP
		upstream = 127.0.0.1:$B_NFS
		mount-upstream = 127.0.0.1:$B_MNT
		consistency = immutable
	EOF
	)
	if [ "$1" = ab ]; then printf '%s\n%s\n' "$alpha" "$beta"; else printf '%s\n%s\n' "$beta" "$alpha"; fi
}
conf ab >"$H_DIR/gridvfsd.conf"

start() {
	h_gridvfsd_at multi 1 1 -c "$H_DIR/gridvfsd.conf" --control "$H_DIR/ctl.sock" "$@"
	P=$H_AT_PORT PID=$H_AT_PID
}
url() { printf 'nfs://127.0.0.1%s?version=3&nfsport=%s&mountport=%s' "$1" "$P" "$P"; }

# --- A ------------------------------------------------------------------
start
grep -q "export alpha: clients mount /stores/alpha, upstream 127.0.0.1:$A_RELAY" "$H_DIR/multi.log" ||
	h_fail "no start-up line for export alpha"
nfs-cat "$(url /stores/alpha/image.raw)" >"$H_DIR/a.out" 2>"$H_DIR/a.err" ||
	h_fail "read through /stores/alpha failed: $(cat "$H_DIR/a.err")"
nfs-cat "$(url /stores/beta/image.raw)" >"$H_DIR/b.out" 2>"$H_DIR/b.err" ||
	h_fail "read through /stores/beta failed: $(cat "$H_DIR/b.err")"
cmp -s "$H_DIR/a.out" "$A_EXP/image.raw" || h_fail "/stores/alpha/image.raw is not store A's file"
cmp -s "$H_DIR/b.out" "$B_EXP/image.raw" || h_fail "/stores/beta/image.raw is not store B's file"
h_log "A: each path reads its own store"
nfs-ls "$(url /stores/beta)" >"$H_DIR/b.ls" 2>&1 || h_fail "nfs-ls /stores/beta: $(cat "$H_DIR/b.ls")"
grep -q " sub$" "$H_DIR/b.ls" || h_fail "listing of /stores/beta lacks sub: $(cat "$H_DIR/b.ls")"
head -c 150000 /dev/urandom >"$H_DIR/new.bin"
nfs-cp "$H_DIR/new.bin" "$(url /stores/alpha/new.bin)" >"$H_DIR/cp.err" 2>&1 ||
	h_fail "write through /stores/alpha failed: $(cat "$H_DIR/cp.err")"
for _ in $(seq 100); do cmp -s "$H_DIR/new.bin" "$A_EXP/new.bin" && break; sleep 0.1; done
cmp -s "$H_DIR/new.bin" "$A_EXP/new.bin" || h_fail "the write through alpha did not reach store A"
[ ! -e "$B_EXP/new.bin" ] || h_fail "the write through alpha reached store B"
[ -f "$H_DIR/cache/alpha/data.mdb" ] && [ -f "$H_DIR/cache/beta/data.mdb" ] ||
	h_fail "no per-export caches under cache-dir: $(ls -R "$H_DIR/cache" | head)"
[ -d "$H_DIR/cache/alpha/dirty" ] || h_fail "export alpha (write-back) has no dirty store"
[ ! -d "$H_DIR/cache/beta/dirty" ] || h_fail "export beta (write-through) has a dirty store"
h_log "A: write-back on alpha reached store A only; caches per export"

# --- B ------------------------------------------------------------------
python3 - "$P" "$A_MNT" "$A_EXP" "$RPC" "$A_NFS" <<'PY' >"$H_DIR/b.py.log" 2>&1 || h_fail "B: $(tail -n 5 "$H_DIR/b.py.log")"
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[4]))
from nfsrpc import Nfs, NfsError, opaque, u32, u64
port, a_mnt, a_exp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
al = Nfs("127.0.0.1", port, "/stores/alpha")
be = Nfs("127.0.0.1", port, "/stores/beta")
direct = Nfs("127.0.0.1", int(sys.argv[5]), a_exp, mountport=a_mnt)
assert al.root[8:] == direct.root, "alpha's root handle is not tag + store A's"
assert len(al.root) == len(direct.root) + 8
assert al.root[:8] != be.root[:8], "both exports have the same tag"
fa = al.lookup_path("image.raw")
fb = be.lookup_path("image.raw")
# GETATTR of each through the proxy gives that store's size.
for fh, size in ((fa, os.path.getsize(a_exp + "/image.raw")), (fb, 200000)):
    st, r = al.call(1, opaque(fh))
    assert st == 0, st
    a = r.fattr()
    assert a["size"] == size, (a, size)
# RENAME from alpha into beta: XDEV (18).
st, r = al.call(14, opaque(al.root) + opaque(b"image.raw") + opaque(be.root) + opaque(b"x"))
assert st == 18, f"cross-export RENAME gave {st}, want NFS3ERR_XDEV"
# A handle with a tag no export has: STALE (70).
bad = bytes(b ^ 0xFF for b in fa[:8]) + fa[8:]
st, r = al.call(1, opaque(bad))
assert st == 70, f"unknown tag gave {st}, want NFS3ERR_STALE"
# A handle shorter than a tag: BADHANDLE (10001).
st, r = al.call(1, opaque(b"ab"))
assert st == 10001, f"short handle gave {st}, want NFS3ERR_BADHANDLE"
# MNT of a path no export has: MNT3ERR_NOENT (2).
try:
    Nfs("127.0.0.1", port, "/stores/gamma")
    raise AssertionError("MNT /stores/gamma succeeded")
except NfsError as e:
    assert e.status == 2, e.status
# A subdirectory of an export mounts through it.
sub = Nfs("127.0.0.1", port, "/stores/beta/sub")
st, r = be.call(1, opaque(sub.root))
assert st == 0, f"GETATTR of beta/sub's root: {st}"
# MOUNT EXPORT (proc 5) lists both paths, answered by the proxy.
r = al._call(al.s, 100005, 5, b"")
paths = []
while r.u32():
    paths.append(r.opaque().decode())
    while r.u32():
        r.opaque()
assert sorted(paths) == ["/stores/alpha", "/stores/beta"], paths
# Write-back (alpha): a truncating CREATE while dirty data waits is
# forwarded by the write-back engine itself; its new handle must carry the
# tag too. Store A's link is paused so the data stays dirty, the CREATE
# waits behind it, and goes up (through the write-back engine) on resume.
import subprocess, threading, time
wfh = al.lookup_path("new.bin")
ctl = [os.environ["WAN"], "--ctl", os.environ["H_DIR"] + "/relay.ctl"]
subprocess.run(ctl + ["pause"], check=True, stdout=subprocess.DEVNULL)
threading.Timer(1.0, lambda: subprocess.run(ctl + ["resume"], stdout=subprocess.DEVNULL)).start()
for i in range(128):
    st, r = al.call(7, opaque(wfh) + u64(i * 65536) + u32(65536) + u32(0) + opaque(bytes([i]) * 65536))
    assert st == 0, f"WRITE {st}"
sattr_trunc = u32(0) + u32(0) + u32(0) + u32(1) + u64(0) + u32(0) + u32(0)
st, r = al.call(8, opaque(al.root) + opaque(b"made-while-dirty") + u32(0) + sattr_trunc)
assert st == 0, f"CREATE {st}"
assert r.u32() == 1, "CREATE gave no handle"
nfh = r.opaque()
assert len(nfh) > 8, "CREATE's handle lacks alpha's tag"
st, r = al.call(1, opaque(nfh))
assert st == 0, f"GETATTR of the new file: {st}"
st, r = al.call(21, opaque(wfh) + u64(0) + u32(0))  # COMMIT
assert st == 0, f"COMMIT {st}"
open(os.environ["H_DIR"] + "/handles", "w").write(fa.hex() + " " + fb.hex())
print("ok")
PY
[ -e "$A_EXP/made-while-dirty" ] || h_fail "CREATE through alpha did not reach store A"
python3 -c '
import sys
d = open(sys.argv[1], "rb").read()
assert len(d) == 128 * 65536 and all(d[i * 65536] == i for i in range(128)), "new.bin content"
' "$A_EXP/new.bin" || h_fail "write-back data of new.bin did not reach store A intact"
grep -q "MNT /stores/gamma: no export has that path" "$H_DIR/multi.log" ||
	h_fail "no log line for the unknown mount path"
h_log "B: tags, XDEV, STALE, BADHANDLE, NOENT, EXPORT list"

# --- D (while running) ---------------------------------------------------
"$GV" status --socket "$H_DIR/ctl.sock" --json >"$H_DIR/status.json" ||
	h_fail "gridvfs status failed"
python3 - "$H_DIR/status.json" <<'PY' || h_fail "status: $(cat "$H_DIR/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
ex = {e["name"]: e for e in s["exports"]}
assert set(ex) == {"alpha", "beta"}, ex
assert ex["alpha"]["path"] == "/stores/alpha" and ex["beta"]["path"] == "/stores/beta"
assert ex["alpha"]["calls"] > 0 and ex["beta"]["calls"] > 0
assert ex["alpha"]["nfs_link"] == "up" and ex["beta"]["nfs_link"] == "up"
PY

# --- SIGHUP with sections ---------------------------------------------------
hup_wait() { # N: wait for the N-th "SIGHUP: ..." outcome line
	for _ in $(seq 50); do
		[ "$(grep -c "SIGHUP: configuration reloaded\|SIGHUP: the set of exports changed" "$H_DIR/multi.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	h_fail "no SIGHUP outcome: $(tail -n 5 "$H_DIR/multi.log")"
}
sed -i 's/^consistency = immutable$/consistency = strict/' "$H_DIR/gridvfsd.conf"
kill -HUP "$PID"
hup_wait 1
grep -q "SIGHUP: export beta: consistency changed: takes effect at the next start" "$H_DIR/multi.log" ||
	h_fail "a per-export restart-only change was not reported: $(tail -n 5 "$H_DIR/multi.log")"
printf '[export gamma]\npath = /stores/gamma\nupstream = 127.0.0.1:%s\n' "$B_NFS" >>"$H_DIR/gridvfsd.conf"
kill -HUP "$PID"
hup_wait 2
grep -q "SIGHUP: the set of exports changed: takes effect at the next start" "$H_DIR/multi.log" ||
	h_fail "a new export was not reported as waiting for a restart"
nfs-cat "$(url /stores/beta/image.raw)" 2>/dev/null | cmp -s - "$B_EXP/image.raw" ||
	h_fail "beta stopped serving after the reloads"
h_log "SIGHUP: per-export changes reported, the export set kept"

# --- C ------------------------------------------------------------------
h_stop_pid "$PID"
conf ba >"$H_DIR/gridvfsd.conf"
start
python3 - "$P" "$RPC" <<'PY' >"$H_DIR/c.py.log" 2>&1 || h_fail "C: $(tail -n 5 "$H_DIR/c.py.log")"
import os, sys
sys.path.insert(0, os.path.dirname(sys.argv[2]))
from nfsrpc import Nfs, opaque
fa, fb = (bytes.fromhex(h) for h in open(os.environ["H_DIR"] + "/handles").read().split())
c = Nfs("127.0.0.1", int(sys.argv[1]), "/stores/beta")
for fh, size in ((fa, 300000), (fb, 200000)):
    st, r = c.call(1, opaque(fh))
    assert st == 0, f"old handle after restart: status {st}"
    assert r.fattr()["size"] == size
print("ok")
PY
h_log "C: handles survive a restart with reordered sections"

# --- D (configuration) ---------------------------------------------------
"$top_builddir/gridvfsd" -c "$H_DIR/gridvfsd.conf" --check-config >"$H_DIR/check.out" 2>&1 ||
	h_fail "--check-config failed: $(cat "$H_DIR/check.out")"
grep -q "^\[export beta\].*gridvfsd.conf:5" "$H_DIR/check.out" &&
	grep -q "^path = /stores/alpha$" "$H_DIR/check.out" &&
	grep -q "^write-policy = back.*gridvfsd.conf:" "$H_DIR/check.out" ||
	h_fail "--check-config does not show the sections: $(cat "$H_DIR/check.out")"

bad() { # WANT_LINE TEXT-IN-ERROR: the config on stdin is refused
	cat >"$H_DIR/bad.conf"
	if "$top_builddir/gridvfsd" -c "$H_DIR/bad.conf" --check-config >"$H_DIR/bad.out" 2>&1; then
		h_fail "accepted a bad config: $(cat "$H_DIR/bad.conf")"
	fi
	grep -q "bad.conf:$1" "$H_DIR/bad.out" && grep -q "$2" "$H_DIR/bad.out" ||
		h_fail "want bad.conf:$1 and '$2', got: $(cat "$H_DIR/bad.out")"
}
printf 'role = client\n[export a]\nupstream = h:1\n' | bad 2 "no 'path = /DIR'"
printf 'role = client\n[export a]\npath = /x\nlisten = 127.0.0.1:9\n' | bad 4 "daemon-wide"
printf 'role = client\n[export a]\npath = /x\n[export a]\npath = /y\n' | bad 4 "second \[export\] section"
printf 'role = client\n[export a]\npath = x\n' | bad 3 "absolute path"
printf 'role = client\n[export a b]\npath = /x\n' | bad 2 "expected ']'"
printf 'role = client\n[exports a]\n' | bad 2 "unknown section"
printf 'role = client\nupstream = 127.0.0.1:1\n[export a]\npath = /x\n[export b]\npath = /x\n' | bad 5 "is export a's already"
printf 'role = server\nupstream = 127.0.0.1:1\n[export a]\npath = /x\ntls-cert = /c\n' | bad 3 "server role's TLS is the daemon's"
h_log "D: status, --check-config and refusals"
h_pass
