#!/bin/bash
# mount_dryrun: `-o dry-run` prints the exact gridvfsd and mount(8)
# command lines (kernel mode, which this machine cannot run) or the FUSE
# options, starts nothing and touches no mount point; --help documents
# every exit status.
. "$(dirname "${BASH_SOURCE[0]}")/mount_lib.sh"
mh_init mount_dryrun
GV="$top_builddir/gridvfsd"

mh_run_mount "store.example.org:7000:/images" /var/lib/images \
	-n -o "kernel,dry-run,ro,localport=40123,mountport=7001,tls-ca=/etc/gv/ca.pem,cache-size=20G,_netdev"
[ "$MH_RC" = 0 ] || h_fail "kernel dry-run exit $MH_RC: $(cat "$H_DIR/mount.out")"
cat >"$H_DIR/want" <<-WANT
	$GV -c /dev/null --role client --listen 127.0.0.1:40123 --upstream store.example.org:7000 --mount-upstream store.example.org:7001 --foreground --tls-ca /etc/gv/ca.pem --cache-size 20G
	mount -t nfs -n -o vers=3,proto=tcp,port=40123,mountport=40123,mountproto=tcp,nolock,ro 127.0.0.1:/images /var/lib/images
WANT
diff -u "$H_DIR/want" "$H_DIR/mount.out" >"$H_DIR/diff" || h_fail "kernel dry-run output differs: $(cat "$H_DIR/diff")"

# Without localport= a free port is picked; both lines must use the same.
mh_run_mount "st:/img" /mnt/x -o "kernel,dry-run,gridvfsd=/opt/gv/gridvfsd,consistency=immutable"
[ "$MH_RC" = 0 ] || h_fail "second dry-run exit $MH_RC"
p=$(sed -n '1s/.*--listen 127.0.0.1:\([0-9]*\) .*/\1/p' "$H_DIR/mount.out")
[ -n "$p" ] && grep -qx "mount -t nfs -o vers=3,proto=tcp,port=$p,mountport=$p,mountproto=tcp,nolock,actimeo=3600,nocto 127.0.0.1:/img /mnt/x" "$H_DIR/mount.out" ||
	h_fail "picked-port dry-run: $(cat "$H_DIR/mount.out")"
grep -q "^/opt/gv/gridvfsd -c /dev/null --role client .*--upstream st:2049 --mount-upstream st:2049 --foreground$" "$H_DIR/mount.out" ||
	h_fail "gridvfsd= or defaults: $(cat "$H_DIR/mount.out")"

# proxy=: no gridvfsd line, mount against the given proxy.
mh_run_mount "st:/img" /mnt/x -o "kernel,dry-run,proxy=127.0.0.1:2050"
[ "$MH_RC" = 0 ] && [ "$(cat "$H_DIR/mount.out")" = "mount -t nfs -o vers=3,proto=tcp,port=2050,mountport=2050,mountproto=tcp,nolock 127.0.0.1:/img /mnt/x" ] ||
	h_fail "proxy= dry-run: $(cat "$H_DIR/mount.out")"

# FUSE mode (the default here: no kernel NFS client).
mh_run_mount "st:/img" /mnt/x -o "dry-run,localport=41000,nodev"
[ "$MH_RC" = 0 ] || h_fail "fuse dry-run exit $MH_RC"
grep -qx "# FUSE mount of /img on /mnt/x through 127.0.0.1:41000, -o fsname=st:/img,subtype=gridvfs,max_read=1048576,nodev,allow_other,default_permissions" "$H_DIR/mount.out" ||
	h_fail "fuse dry-run: $(cat "$H_DIR/mount.out")"

# -f (mount's fake) is a dry run too; nothing was started by any of this.
mh_run_mount "st:/img" /mnt/x -f -o kernel,localport=1
[ "$MH_RC" = 0 ] && grep -q "^mount -t nfs" "$H_DIR/mount.out" || h_fail "-f: $(cat "$H_DIR/mount.out")"
[ -z "$(mh_live "gridvfsd --role client --listen 127.0.0.1:4(0123|1000) ")" ] || h_fail "dry-run started a gridvfsd"

mh_run_mount --help
[ "$MH_RC" = 0 ] || h_fail "--help exit $MH_RC"
for code in 0 1 2 32 33 34 35 36; do
	grep -qE "^  $code +" "$H_DIR/mount.out" || h_fail "--help does not document exit status $code"
done
mh_run_mount "st:/img"
[ "$MH_RC" = 1 ] && grep -q "usage:" "$H_DIR/mount.out" || h_fail "missing DIR: exit $MH_RC"
h_pass
