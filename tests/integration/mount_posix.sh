#!/bin/bash
# mount_posix: POSIX behaviour through a FUSE mount.gridvfs over ganesha,
# checked both through the mount and on the export's disk: file and
# directory life cycle, errno mapping, permissions and ownership as root
# and as uid 1234, hard links, symlinks, renames over existing files,
# truncation, sparse files, timestamps, special files, a 10 000-entry
# readdir, and concurrent readers and writers.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
mh_init "${MP_NAME:-mount_posix}"
h_ganesha
M="$H_DIR/mnt"
E="$H_EXPORT"
if [ "${MP_EXPORTS:-0}" = 1 ]; then
	# The same scenario through a daemon with two [export] sections: every
	# handle the mount sees carries an export tag (mount_posix_exports.sh).
	mkdir -p "$H_DIR/other"
	cat >"$H_DIR/exports.conf" <<-EOF
		role = client
		[export posix]
		path = $H_EXPORT
		upstream = 127.0.0.1:$H_NFS_PORT
		mount-upstream = 127.0.0.1:$H_MNT_PORT
		[export other]
		path = /other
		upstream-path = $H_DIR/other
		upstream = 127.0.0.1:$H_NFS_PORT
		mount-upstream = 127.0.0.1:$H_MNT_PORT
	EOF
	h_gridvfsd_at multi "$H_NFS_PORT" "$H_MNT_PORT" -c "$H_DIR/exports.conf" --control none
	mh_mount "$M" "proxy=127.0.0.1:$H_AT_PORT" || h_fail "mount failed: $(cat "$H_DIR/mount.out")"
	grep -q "2 exports" "$H_DIR/multi.log" || h_fail "the daemon does not serve 2 exports"
else
	mh_mount "$M" || h_fail "mount failed: $(cat "$H_DIR/mount.out")"
fi
U=(setpriv --reuid=1234 --regid=1234 --clear-groups)
# ganesha runs as root and checks AUTH_SYS: uid 1234 must be able to walk
# to the export.
chmod 755 "$H_DIR"

# --- files and directories ---------------------------------------------
echo one >"$M/f" || h_fail "create"
echo two >>"$M/f" || h_fail "append"
[ "$(cat "$E/f")" = $'one\ntwo' ] || h_fail "written data differs on disk"
[ "$(stat -c %s "$M/f")" = 8 ] || h_fail "size through the mount"
mkdir -p "$M/d1/d2/d3" && [ -d "$E/d1/d2/d3" ] || h_fail "mkdir -p"
echo x >"$M/d1/d2/d3/x"
rmdir "$M/d1/d2/d3" 2>"$H_DIR/err" && h_fail "rmdir of a non-empty dir worked"
grep -q "Directory not empty" "$H_DIR/err" || h_fail "rmdir non-empty: $(cat "$H_DIR/err")"
mkdir "$M/d1" 2>"$H_DIR/err"; grep -q "File exists" "$H_DIR/err" || h_fail "mkdir existing: $(cat "$H_DIR/err")"
cat "$M/nope" 2>"$H_DIR/err"; grep -q "No such file" "$H_DIR/err" || h_fail "ENOENT: $(cat "$H_DIR/err")"
rm "$M/d1/d2/d3/x" && rmdir "$M/d1/d2/d3" "$M/d1/d2" "$M/d1" || h_fail "rm/rmdir"
[ ! -e "$E/d1" ] || h_fail "rmdir not on disk"
rm "$M/f" && [ ! -e "$E/f" ] && [ ! -e "$M/f" ] || h_fail "unlink"

# --- links and renames -------------------------------------------------
echo target >"$M/t"
ln "$M/t" "$M/hard" || h_fail "link"
[ "$(stat -c %h "$M/hard")" = 2 ] && [ "$(stat -c %i "$M/t")" = "$(stat -c %i "$M/hard")" ] || h_fail "hard link count/inode: $(stat -c "%h %i" "$M/t" "$M/hard")"
ln -s t "$M/sym" || h_fail "symlink"
[ "$(readlink "$M/sym")" = t ] && [ "$(readlink "$E/sym")" = t ] && [ "$(cat "$M/sym")" = target ] || h_fail "symlink read"
ln -s /no/where "$M/dangling" && [ "$(readlink "$M/dangling")" = /no/where ] || h_fail "dangling symlink"
echo old >"$M/dst"
echo new >"$M/src"
mv "$M/src" "$M/dst" || h_fail "rename over existing"
[ "$(cat "$M/dst")" = new ] && [ ! -e "$M/src" ] && [ "$(cat "$E/dst")" = new ] || h_fail "rename result"
mkdir "$M/rd"; mv "$M/dst" "$M/rd/moved" && [ "$(cat "$E/rd/moved")" = new ] || h_fail "rename across dirs"

# --- truncation and sparse files ---------------------------------------
head -c 100000 /dev/urandom >"$M/tr"
truncate -s 1000 "$M/tr" && [ "$(stat -c %s "$E/tr")" = 1000 ] || h_fail "truncate down"
truncate -s 5000 "$M/tr" && [ "$(stat -c %s "$M/tr")" = 5000 ] || h_fail "truncate up"
[ "$(tail -c 4000 "$M/tr" | tr -d '\0' | wc -c)" = 0 ] || h_fail "grown part not zero"
: >"$M/tr" && [ "$(stat -c %s "$E/tr")" = 0 ] || h_fail "O_TRUNC"
truncate -s 2G "$M/sparse" || h_fail "sparse create"
printf 'end' | dd of="$M/sparse" bs=1 seek=$((2 * 1024 * 1024 * 1024 - 3)) conv=notrunc status=none || h_fail "write at 2G"
printf 'mid' | dd of="$M/sparse" bs=1 seek=$((1024 * 1024 * 1024)) conv=notrunc status=none
[ "$(stat -c %s "$E/sparse")" = $((2 * 1024 * 1024 * 1024)) ] || h_fail "sparse size"
[ "$(du -k "$E/sparse" | cut -f1)" -lt 1024 ] || h_fail "sparse file not sparse on disk"
[ "$(tail -c 3 "$M/sparse")" = end ] || h_fail "sparse tail"
[ "$(dd if="$M/sparse" bs=1M skip=1023 count=1 status=none | tr -d '\0' | wc -c)" = 0 ] || h_fail "hole not zero"
[ "$(dd if="$M/sparse" bs=1 skip=$((1024 * 1024 * 1024)) count=3 status=none)" = mid ] || h_fail "sparse middle"
rm "$M/sparse"

# --- timestamps --------------------------------------------------------
touch -d '2001-02-03 04:05:06' "$M/t" || h_fail "touch -d"
[ "$(stat -c %Y "$E/t")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || h_fail "mtime on disk"
[ "$(stat -c %X "$M/t")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || h_fail "atime through the mount"
touch -m -d '2010-01-01 00:00:00' "$M/t"
[ "$(stat -c %X "$E/t")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || h_fail "touch -m changed atime"
[ "$(stat -c %Y "$E/t")" = "$(date -d '2010-01-01' +%s)" ] || h_fail "touch -m mtime"
before=$(date +%s); sleep 1.1; echo more >>"$M/t"
[ "$(stat -c %Y "$M/t")" -ge "$before" ] || h_fail "write did not move mtime"

# --- special files -----------------------------------------------------
mkfifo "$M/fifo" && [ "$(stat -c %F "$E/fifo")" = fifo ] || h_fail "mkfifo"
mknod "$M/null" c 1 3 && [ "$(stat -c '%F %t %T' "$E/null")" = "character special file 1 3" ] || h_fail "mknod c: $(stat -c '%F %t %T' "$E/null")"
mknod "$M/blk" b 7 0 && [ "$(stat -c '%F' "$M/blk")" = "block special file" ] || h_fail "mknod b"
python3 -c "import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$M/sock" &&
	[ "$(stat -c %F "$E/sock")" = socket ] || h_fail "socket node"

# --- permissions and ownership -----------------------------------------
echo secret >"$M/priv" && chmod 600 "$M/priv"
[ "$(stat -c %a "$E/priv")" = 600 ] || h_fail "chmod on disk"
"${U[@]}" cat "$M/priv" >/dev/null 2>&1 && h_fail "uid 1234 read a 0600 root file"
chmod 644 "$M/priv"; sleep 1.1
[ "$("${U[@]}" cat "$M/priv")" = secret ] || h_fail "uid 1234 cannot read a 0644 file"
"${U[@]}" sh -c "echo x >>'$M/priv'" 2>/dev/null && h_fail "uid 1234 wrote a root 0644 file"
"${U[@]}" touch "$M/u1234" 2>/dev/null && h_fail "uid 1234 created in a root 0755 dir"
mkdir "$M/pub" && chmod 1777 "$M/pub"
"${U[@]}" sh -c "echo mine >'$M/pub/u' && mkdir '$M/pub/ud'" || h_fail "uid 1234 cannot create in 1777 dir"
[ "$(stat -c '%u %g' "$E/pub/u")" = "1234 1234" ] || h_fail "new file owner on disk: $(stat -c '%u %g' "$E/pub/u")"
[ "$(stat -c '%u %g' "$M/pub/ud")" = "1234 1234" ] || h_fail "new dir owner through the mount"
"${U[@]}" chmod 600 "$M/pub/u" || h_fail "owner chmod"
"${U[@]}" rm "$M/priv" 2>/dev/null && h_fail "uid 1234 removed a root file"
chown 1234:1234 "$M/t" && [ "$(stat -c '%u %g' "$E/t")" = "1234 1234" ] || h_fail "chown"
chown :0 "$M/t" && [ "$(stat -c '%u %g' "$E/t")" = "1234 0" ] || h_fail "chgrp keeps uid"
chown -h 1234 "$M/sym" && [ "$(stat -c %u "$E/sym")" = 1234 ] && [ "$(stat -c %u "$E/t")" = 1234 ] || h_fail "lchown"
"${U[@]}" sh -c "echo owned >>'$M/t'" || h_fail "new owner cannot write"
[ "$(stat -c %a "$M/pub")" = 1777 ] || h_fail "sticky bit"

# --- readdir of 10 000 entries (made on disk: fast) --------------------
mkdir "$E/big"
python3 -c "
import os,sys
for i in range(10000): open(os.path.join(sys.argv[1], 'entry-%05d' % i), 'w').close()" "$E/big"
n=$(ls -f "$M/big" | grep -c '^entry-')
[ "$n" = 10000 ] || h_fail "readdir saw $n of 10000"
diff <(ls "$E/big") <(ls "$M/big") >/dev/null || h_fail "readdir names differ"
[ "$(ls -l "$M/big" | grep -c '^-rw')" = 10000 ] || h_fail "ls -l (readdirplus) lost entries"

# --- concurrent readers and writers ------------------------------------
head -c $((32 * 1024 * 1024)) /dev/urandom >"$H_DIR/shared"
cp "$H_DIR/shared" "$M/shared" || h_fail "cp in"
want=$(h_sha256 "$H_DIR/shared")
for i in 1 2 3 4; do
	head -c $((8 * 1024 * 1024 + i * 4097)) /dev/urandom >"$H_DIR/w$i"
done
pids=()
for i in 1 2 3 4; do
	cp "$H_DIR/w$i" "$M/w$i" & pids+=($!)
	(for _ in 1 2; do [ "$(h_sha256 "$M/shared")" = "$want" ] || exit 1; done) & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || h_fail "a concurrent reader or writer failed"; done
for i in 1 2 3 4; do
	[ "$(h_sha256 "$E/w$i")" = "$(h_sha256 "$H_DIR/w$i")" ] || h_fail "concurrent write $i differs on disk"
done

# --- statfs, fsync -----------------------------------------------------
df "$M" | grep -q "127.0.0.1:$H_NFS_PORT:" || h_fail "df"
python3 -c "import os,sys; f=os.open(sys.argv[1], os.O_WRONLY|os.O_CREAT); os.write(f, b'sync'); os.fsync(f); os.close(f)" "$M/synced" &&
	[ "$(cat "$E/synced")" = sync ] || h_fail "fsync"

timeout 20 umount "$M" || h_fail "umount"
mh_nothing_left "after umount"
h_pass
