#!/bin/bash
# mount_posix_chain: POSIX semantics through the whole chain a node uses —
# mount.gridvfs (FUSE) -> client-role gridvfsd (LMDB cache, write policy
# "through", or "back" with WB=1) -> mutual TLS -> server-role gridvfsd
# (grid-mapfile granting the node's DN its users root, daemon and bin;
# --squash none) -> ganesha. Each failure class of issue 17 has a check:
# an fsx-like random exerciser (write/read/truncate/holes/mmap/
# copy_file_range/O_APPEND/reopen) against an in-memory model and the
# store's disk; readdir after unlink (rewinddir); nlink after link and
# unlink of another name; EPERM (not EIO) from the store; NAME_MAX 255,
# 256-byte names, the proxy answering NFS3ERR_NAMETOOLONG; a 4000-byte
# symlink target; O_EXCL; O_APPEND; setuid cleared on write and chown;
# offsets past 4 GiB; permission
# checks as two users (uid 1 and 2) and their ownership on the store.
# FSX_OPS (default 1500) sets the exerciser's length.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
POLICY=through
[ "${WB:-0}" = 1 ] && POLICY=back
mh_init "mount_posix_chain_$POLICY"
h_ganesha
GV="$top_builddir/gridvfs"
RPC="python3 $top_srcdir/tests/tools/nfsrpc.py"
FSX="python3 $top_srcdir/tests/tools/fsx.py"
M="$H_DIR/mnt"
E="$H_EXPORT"
# uid 1 and 2 must walk to the export through ganesha's AUTH_SYS checks.
chmod 755 "$H_DIR"
chmod 1777 "$E"

# --- the chain --------------------------------------------------------------
CA=$H_DIR/ca
$GV ca init "$CA" >/dev/null || h_fail "ca init failed"
$GV ca issue "$CA" --name store --server 127.0.0.1 >/dev/null || h_fail "ca issue store failed"
DN=$($GV ca issue "$CA" --name node1 | tail -n 1 | sed 's/ ACCOUNT$//') || h_fail "ca issue node1 failed"
# The node's several users keep their ids: its DN is granted each of them
# (docs/mount.gridvfs.md, "Several users through a server role").
printf '%s root,daemon,bin\n' "$DN" >"$H_DIR/grid-mapfile"
h_gridvfsd_at server "$H_NFS_PORT" "$H_MNT_PORT" --role server \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--grid-mapfile "$H_DIR/grid-mapfile" --squash none
SP=$H_AT_PORT
h_take_port LP
mkdir -p "$M"
MH_MNTS+=("$M")
MOPTS="mountport=$SP,localport=$LP,tls-ca=$CA/ca.crt,tls-cert=$CA/node1.crt,tls-key=$CA/node1.key"
MOPTS+=",cache-dir=$H_DIR/cache,write-policy=$POLICY"
h_log "mount.gridvfs 127.0.0.1:$SP:$E $M -o $MOPTS"
timeout -k 5 60 "$MH_BIN" "127.0.0.1:$SP:$E" "$M" -o "$MOPTS" >"$H_DIR/mount.out" 2>&1 ||
	h_fail "mount through the chain failed: $(cat "$H_DIR/mount.out")"
mh_mounted "$M" || h_fail "not mounted"
U1=(setpriv --reuid=1 --regid=1 --clear-groups)
U2=(setpriv --reuid=2 --regid=2 --clear-groups)

# --- random exerciser against a model ---------------------------------------
for seed in 1 2; do
	$FSX --seed "$seed" --ops "${FSX_OPS:-1500}" --maxlen 131072 "$M/fsx$seed" "$E/fsx$seed" \
		>"$H_DIR/fsx.out" 2>&1 || h_fail "fsx seed $seed: $(cat "$H_DIR/fsx.out")"
	h_log "$(cat "$H_DIR/fsx.out")"
done

# --- readdir after unlink (cthon04 basic test6) -----------------------------
mkdir "$M/rd" && for i in 0 1 2 3 4 5 6 7 8 9; do : >"$M/rd/file.$i"; done
python3 - "$M/rd" >"$H_DIR/rd.out" 2>&1 <<'PY' || h_fail "readdir after unlink: $(cat "$H_DIR/rd.out")"
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.opendir.restype = ctypes.c_void_p
libc.readdir.restype = ctypes.c_void_p
libc.readdir.argtypes = libc.rewinddir.argtypes = libc.closedir.argtypes = [ctypes.c_void_p]
def names(d):
    out = set()
    while True:
        e = libc.readdir(d)
        if not e:
            return out
        out.add(ctypes.string_at(e + 19).decode())  # struct dirent d_name
d = libc.opendir(sys.argv[1].encode())
first = names(d)
assert {"file.%d" % i for i in range(10)} <= first, first
for i in range(5):
    os.unlink(os.path.join(sys.argv[1], "file.%d" % i))
libc.rewinddir(ctypes.c_void_p(d))
second = names(d)
libc.closedir(ctypes.c_void_p(d))
stale = {"file.%d" % i for i in range(5)} & second
assert not stale, "unlinked entries still listed after rewinddir: %s" % sorted(stale)
assert {"file.%d" % i for i in range(5, 10)} <= second, second
PY

# --- hard links: nlink of every name at once ---------------------------------
echo linked >"$M/la"
[ "$(stat -c %h "$M/la")" = 1 ] || h_fail "new file nlink"
ln "$M/la" "$M/lb" || h_fail "link"
[ "$(stat -c %h "$M/la")" = 2 ] || h_fail "nlink of the source right after ln: $(stat -c %h "$M/la") (want 2)"
[ "$(stat -c %h "$M/lb")" = 2 ] || h_fail "nlink of the new name: $(stat -c %h "$M/lb")"
ln "$M/lb" "$M/lc" || h_fail "second link"
[ "$(stat -c %h "$M/la")" = 3 ] || h_fail "nlink of the first name after a link of the second: $(stat -c %h "$M/la") (want 3)"
rm "$M/la" || h_fail "unlink"
[ "$(stat -c %h "$M/lb")" = 2 ] && [ "$(stat -c %h "$M/lc")" = 2 ] ||
	h_fail "nlink of the other names after unlink: $(stat -c %h "$M/lb" "$M/lc" | tr '\n' ' ') (want 2 2)"
[ "$(stat -c %i "$M/lb")" = "$(stat -c %i "$M/lc")" ] || h_fail "links have different inode numbers"

# --- names and symlink targets -----------------------------------------------
[ "$(python3 -c 'import os,sys; print(os.pathconf(sys.argv[1], "PC_NAME_MAX"))' "$M")" = 255 ] ||
	h_fail "NAME_MAX: $(python3 -c 'import os,sys; print(os.pathconf(sys.argv[1], "PC_NAME_MAX"))' "$M") (want 255)"
n255=$(printf 'n%.0s' $(seq 255)) n256=$(printf 'n%.0s' $(seq 256))
: >"$M/$n255" && [ -e "$E/$n255" ] || h_fail "255-byte name"
touch "$M/$n256" 2>"$H_DIR/err" && h_fail "a 256-byte name was created"
grep -q "File name too long" "$H_DIR/err" || h_fail "256-byte name: $(cat "$H_DIR/err")"
# libnfs-level: a 256-byte name reaches the client role, which answers as a
# server does (NFS3ERR_NAMETOOLONG = 63), not GARBAGE_ARGS.
out=$($RPC 127.0.0.1 "$LP" "$E" create "/$n256" 2>&1)
[ "$out" = "nfs error 63" ] || h_fail "CREATE with a 256-byte name through the proxy: '$out' (want nfs error 63)"
out=$($RPC 127.0.0.1 "$LP" "$E" create "/$n255-" 2>&1)
[ "$out" = "nfs error 63" ] || h_fail "CREATE with a 256-byte name (2): '$out'"
$RPC 127.0.0.1 "$LP" "$E" getattr "/$n255" >/dev/null || h_fail "a 255-byte name through the proxy"
# Symlink targets: the proxies take the server's PATH_MAX (4000 bytes
# here through the chain, 4097 refused as NAMETOOLONG); through FUSE,
# libnfs's 4 KiB call buffer caps them near 3.8 KB (docs/mount.gridvfs.md).
target=$(python3 -c 'print("d/" * 1999 + "xy")')
out=$($RPC 127.0.0.1 "$LP" "$E" symlink /longlink "$target" 2>&1) || h_fail "4000-byte symlink target through the chain: $out"
[ "$(readlink "$E/longlink")" = "$target" ] && [ "$(readlink "$M/longlink")" = "$target" ] ||
	h_fail "4000-byte symlink target read back differs"
out=$($RPC 127.0.0.1 "$LP" "$E" symlink /toolong "$(python3 -c 'print("t" * 4097)')" 2>&1)
[ "$out" = "nfs error 63" ] || h_fail "SYMLINK with a 4097-byte target: '$out' (want nfs error 63)"
target=$(python3 -c 'print("m/" * 1850)')
ln -s "$target" "$M/mlink" 2>"$H_DIR/err" || h_fail "3700-byte symlink target through the mount: $(cat "$H_DIR/err")"
[ "$(readlink "$M/mlink")" = "$target" ] && [ "$(readlink "$E/mlink")" = "$target" ] ||
	h_fail "3700-byte symlink target through the mount differs"
ln -s "$(python3 -c 'print("x" * 4000)')" "$M/xlink" 2>"$H_DIR/err" && h_fail "libnfs took a 4000-byte target (update the docs)"
grep -q "File name too long" "$H_DIR/err" || h_fail "4000-byte target through the mount: $(cat "$H_DIR/err") (want ENAMETOOLONG)"

# --- O_EXCL, O_APPEND --------------------------------------------------------
python3 - "$M" >"$H_DIR/flags.out" 2>&1 <<'PY' || h_fail "open flags: $(cat "$H_DIR/flags.out")"
import errno, os, sys
p = os.path.join(sys.argv[1], "excl")
fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
os.close(fd)
try:
    os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    sys.exit("O_EXCL on an existing file succeeded")
except FileExistsError:
    pass
a = os.open(p, os.O_WRONLY | os.O_APPEND)
b = os.open(p, os.O_WRONLY | os.O_APPEND)
for i in range(20):
    os.write(a if i % 2 else b, b"%02d" % i)
os.close(a); os.close(b)
got = open(p, "rb").read()
want = b"".join(b"%02d" % i for i in range(20))
assert got == want, (got, want)
PY

# --- setuid/setgid cleared on write by a non-root owner -----------------------
echo x >"$M/suid" && chown 1:1 "$M/suid" && chmod 6755 "$M/suid" || h_fail "suid setup"
[ "$(stat -c %a "$E/suid")" = 6755 ] || h_fail "suid bits not on disk: $(stat -c %a "$E/suid")"
"${U1[@]}" sh -c "echo more >>'$M/suid'" || h_fail "owner cannot write its suid file"
[ "$(stat -c %a "$M/suid")" = 755 ] || h_fail "setuid/setgid after a write by the owner: $(stat -c %a "$M/suid") through the mount (want 755)"
[ "$(stat -c %a "$E/suid")" = 755 ] || h_fail "setuid/setgid after write on disk: $(stat -c %a "$E/suid")"
# A group member (not the owner) may write a 6775 file; the write must work
# and clear both bits, as on a local disk. (The kernel's own chmod before
# the write is refused by the store for a non-owner: it failed with EPERM.)
echo x >"$M/sgid" && chown 1:2 "$M/sgid" && chmod 6775 "$M/sgid" || h_fail "sgid setup"
"${U2[@]}" sh -c "echo more >>'$M/sgid'" 2>"$H_DIR/err" || h_fail "group member's write to a 6775 file: $(cat "$H_DIR/err")"
[ "$(stat -c %a "$M/sgid")" = 775 ] && [ "$(stat -c %a "$E/sgid")" = 775 ] ||
	h_fail "setuid/setgid after a group member's write: $(stat -c %a "$M/sgid") mount, $(stat -c %a "$E/sgid") disk (want 775)"
[ "$(cat "$E/sgid")" = $'x\nmore' ] || h_fail "group member's write on disk: $(cat "$E/sgid")"
echo x >"$M/strunc" && chown 1:2 "$M/strunc" && chmod 2775 "$M/strunc" || h_fail "truncate setup"
"${U2[@]}" truncate -s 1 "$M/strunc" 2>"$H_DIR/err" || h_fail "group member's truncate of a 2775 file: $(cat "$H_DIR/err")"
[ "$(stat -c %a "$E/strunc") $(stat -c %s "$E/strunc")" = "775 1" ] || h_fail "after truncate by a group member: $(stat -c '%a %s' "$E/strunc")"

echo x >"$M/schown" && chmod 6755 "$M/schown" && chown 1:1 "$M/schown" || h_fail "chown setup"
[ "$(stat -c %a "$E/schown")" = 755 ] || h_fail "setuid/setgid after chown: $(stat -c %a "$E/schown") (want 755)"

# --- offsets past 4 GiB ---------------------------------------------------------
printf 'far' | dd of="$M/big" bs=1 seek=$((5 * 1024 * 1024 * 1024)) conv=notrunc status=none || h_fail "write at 5 GiB"
[ "$(stat -c %s "$M/big")" = $((5 * 1024 * 1024 * 1024 + 3)) ] && [ "$(tail -c 3 "$E/big")" = far ] &&
	[ "$(tail -c 3 "$M/big")" = far ] || h_fail "5 GiB offset: size $(stat -c %s "$M/big")"
rm "$M/big"

# --- permissions as two users -------------------------------------------------
mkdir "$M/pub" && chmod 1777 "$M/pub"
"${U1[@]}" sh -c "echo one >'$M/pub/f1' && chmod 600 '$M/pub/f1'" || h_fail "uid 1 cannot create"
[ "$(stat -c '%u %g %a' "$E/pub/f1")" = "1 1 600" ] || h_fail "uid 1's file on the store: $(stat -c '%u %g %a' "$E/pub/f1")"
"${U2[@]}" cat "$M/pub/f1" >/dev/null 2>"$H_DIR/err" && h_fail "uid 2 read uid 1's 0600 file"
grep -q "Permission denied" "$H_DIR/err" || h_fail "uid 2 read 0600: $(cat "$H_DIR/err")"
"${U2[@]}" sh -c "echo x >>'$M/pub/f1'" 2>/dev/null && h_fail "uid 2 wrote uid 1's 0600 file"
"${U2[@]}" chmod 666 "$M/pub/f1" 2>"$H_DIR/err" && h_fail "uid 2 chmod'ed uid 1's file"
grep -q "Operation not permitted" "$H_DIR/err" || h_fail "chmod of another's file: $(cat "$H_DIR/err") (want EPERM)"
"${U2[@]}" rm "$M/pub/f1" 2>/dev/null && h_fail "uid 2 removed uid 1's file in a sticky dir"
"${U1[@]}" chmod 640 "$M/pub/f1" || h_fail "owner chmod"
"${U2[@]}" cat "$M/pub/f1" >/dev/null 2>&1 && h_fail "uid 2 (not in group 1) read a 0640 file"
"${U1[@]}" cat "$M/pub/f1" >/dev/null || h_fail "owner cannot read its 0640 file"
"${U2[@]}" sh -c "echo two >'$M/pub/f2'" || h_fail "uid 2 cannot create"
[ "$(stat -c '%u %g' "$E/pub/f2")" = "2 2" ] || h_fail "uid 2's file on the store: $(stat -c '%u %g' "$E/pub/f2")"
"${U1[@]}" rm "$M/pub/f1" || h_fail "owner cannot remove in a sticky dir"
chown 2:2 "$M/pub/f2" 2>/dev/null && chown 1:1 "$M/pub/f2" || h_fail "root chown to the node's users"

# --- EPERM from the store, not EIO --------------------------------------------
# A second mount that keeps attributes for an hour: the kernel still
# believes uid 1 owns 'own' after the store gave it to root, lets uid 1's
# chmod through, and the store's NFS3ERR_PERM must reach chmod(2) as EPERM.
M2="$H_DIR/mnt2"
h_take_port LP2
mkdir -p "$M2"
MH_MNTS+=("$M2")
timeout -k 5 60 "$MH_BIN" "127.0.0.1:$SP:$E" "$M2" \
	-o "${MOPTS/localport=$LP/localport=$LP2},consistency=immutable,cache-dir=$H_DIR/cache2" >"$H_DIR/mount2.out" 2>&1 ||
	h_fail "second mount failed: $(cat "$H_DIR/mount2.out")"
echo x >"$M/own" && chown 1:1 "$M/own" || h_fail "own setup"
[ "$(stat -c %u "$M2/own")" = 1 ] || h_fail "own not owned by uid 1"
chown 0:0 "$E/own"
"${U1[@]}" chmod 600 "$M2/own" 2>"$H_DIR/err" && h_fail "uid 1 chmod'ed root's file"
grep -q "Operation not permitted" "$H_DIR/err" || h_fail "store's EPERM reached chmod as: $(cat "$H_DIR/err")"
timeout 20 umount "$M2" || h_fail "umount of the second mount"

timeout 20 umount "$M" || h_fail "umount"
for _ in $(seq 50); do
	[ -z "$(mh_live "gridvfsd .*--listen 127.0.0.1:$LP ")" ] && break
	sleep 0.1
done
[ -z "$(mh_live "gridvfsd .*--listen 127.0.0.1:$LP ")" ] || h_fail "the mount's gridvfsd outlived umount"
h_pass
