#!/bin/bash
# vm_nfs_kernel: the Linux kernel NFS client, as hypervisor nodes use it,
# against gridvfs (issue 17).  This machine has no kernel NFS client; the
# QEMU guest of tests/vm runs the Debian cloud kernel, whose NFSv3 client
# ships as modules (tests/vm/build-guest.sh packs sunrpc, lockd, nfs,
# nfsv3 and virtio-net into a second initramfs).  The guest, on QEMU's
# user network, mounts the client role at 10.0.2.2 (QEMU's name for the
# host's loopback; nothing leaves the machine) with
#   mount -t nfs -o vers=3,proto=tcp,port=P,mountport=P,mountproto=tcp,nolock
# and runs a POSIX workload (24 MiB written and read back after a remount,
# truncate down and up, a write past the end, rename, readdir after unlink,
# two uids against a 0700 directory and a 0600 file), once per write
# policy, through the whole chain: kernel client -> client role (LMDB cache,
# through | back) -> mTLS -> server role (grid-mapfile: root, daemon, bin;
# --squash none) -> ganesha.  The store's files are checked after each run.
# A third run mounts with mount.gridvfs's kernel mode inside the guest
# (-o kernel): the helper starts its own client role there (mTLS to the
# server role at 10.0.2.2) and runs mount -t nfs against it; gridvfsd,
# mount.gridvfs, their libraries and the node's TLS files come in a second
# cpio archive appended to the initramfs.  About 60-90 s here.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init vm_nfs_kernel

VM=$top_srcdir/tests/vm
if [ -z "${GRIDVFS_VM_CACHE:-}" ]; then
	GRIDVFS_VM_CACHE=/var/cache/gridvfs-vm
	mkdir -p "$GRIDVFS_VM_CACHE" 2>/dev/null && [ -w "$GRIDVFS_VM_CACHE" ] ||
		GRIDVFS_VM_CACHE=${TMPDIR:-/tmp}/gridvfs-vm-$(id -u)
fi
"$VM/build-guest.sh" "$GRIDVFS_VM_CACHE" >"$H_DIR/build.out" 2>"$H_DIR/build.log" ||
	h_fail "build-guest.sh failed: $(tail -n 3 "$H_DIR/build.log")"
val() { sed -n "s/^$2=//p" "$1" | head -1; }
KERNEL=$(val "$H_DIR/build.out" KERNEL)
NFS_INITRD=$(val "$H_DIR/build.out" NFS_INITRD)
INITRD=$NFS_INITRD
[ -r "$KERNEL" ] && [ -r "$INITRD" ] || h_fail "build-guest.sh gave no kernel / NFS initramfs"

check_store() { # NAME: what the guest left, seen from the store's side
	local G=$H_EXPORT/guest
	[ "$(stat -c %s "$G/big")" = 4108288 ] || h_fail "$1: big is $(stat -c %s "$G/big") bytes at the store"
	[ -e "$G/f2" ] && h_fail "$1: f2 still at the store"
	[ "$(cat "$G/g3")" = 3 ] || h_fail "$1: g3 wrong at the store"
	[ "$(stat -c '%u %a' "$G/p/a")" = "1 600" ] ||
		h_fail "$1: p/a is '$(stat -c '%u %a' "$G/p/a")' at the store"
	[ -e "$G/p/b" ] && h_fail "$1: uid 2's file reached the store"
	rm -rf "$G"
}

h_ganesha
H_STORE_ACCOUNTS=root,daemon,bin h_store "$H_NFS_PORT" "$H_MNT_PORT"

guest() { # NAME INITRD ARGS: boot the NFS guest (ARGS: its gvfs.* settings)
	local name=$1 initrd=$2 rc
	timeout -k 5 "${VM_NFS_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -m 512 \
		-nographic -monitor none -serial "file:$H_DIR/$name-console.log" \
		-nic user,model=virtio-net-pci -kernel "$KERNEL" -initrd "$initrd" \
		-append "console=ttyS0 quiet gvfs.path=$H_EXPORT $3" \
		-no-reboot </dev/null >"$H_DIR/$name-qemu.log" 2>&1
	rc=$?
	h_log "$name: qemu exit $rc; $(grep -a GRIDVFS-NFS "$H_DIR/$name-console.log" | tr '\n' ';')"
	[ $rc -eq 124 ] && h_fail "$name: the guest did not finish: $(tail -n 5 "$H_DIR/$name-console.log")"
	grep -aq "GRIDVFS-NFS-FAIL" "$H_DIR/$name-console.log" &&
		h_fail "$name: $(grep -a GRIDVFS-NFS-FAIL "$H_DIR/$name-console.log")"
	grep -aq "GRIDVFS-NFS-OK" "$H_DIR/$name-console.log" ||
		h_fail "$name: no GRIDVFS-NFS-OK: $(tail -n 8 "$H_DIR/$name-console.log")"
}

# helper_initrd OUT: the NFS initramfs plus gridvfsd, mount.gridvfs, their
# libraries and the node's TLS files.  busybox has no nfs-utils: the guest's
# /sbin/mount.nfs is busybox's own mount, which calls mount(2) itself.
helper_initrd() {
	local d=$H_DIR/helper-root lib
	mkdir -p "$d"/{sbin,etc/gridvfs,lib64,lib/x86_64-linux-gnu}
	cp "$top_builddir/gridvfsd" "$top_builddir/mount.gridvfs" "$d/sbin/"
	for lib in $(ldd "$top_builddir/gridvfsd" "$top_builddir/mount.gridvfs" |
		awk '$3 ~ /^\// { print $3 }' | sort -u); do
		cp -L "$lib" "$d/lib/x86_64-linux-gnu/"
	done
	cp -L /lib64/ld-linux-x86-64.so.2 "$d/lib64/"
	cp "$H_CA/node.crt" "$H_CA/node.key" "$H_CA/ca.crt" "$d/etc/gridvfs/"
	chmod 600 "$d/etc/gridvfs/node.key"
	printf '#!/bin/sh\nexec mount -i -t nfs "$@"\n' >"$d/sbin/mount.nfs"
	chmod 755 "$d/sbin/mount.nfs"
	{ cat "$INITRD"; (cd "$d" && find . | cpio -o -H newc -R 0:0 --quiet); } >"$1" ||
		h_fail "cannot build the helper initramfs"
}

for pol in through back helper; do
	T0=$(date +%s)
	if [ "$pol" = helper ]; then
		helper_initrd "$H_DIR/initrd-helper.cpio"
		HO=tls-cert=/etc/gridvfs/node.crt,tls-key=/etc/gridvfs/node.key
		# The store is 10.0.2.2 through QEMU's NAT; its certificate names 127.0.0.1.
		HO+=,tls-ca=/etc/gridvfs/ca.crt,tls-server-name=127.0.0.1
		HO+=,cache-dir=/tmp/gvcache,write-policy=back
		guest helper "$H_DIR/initrd-helper.cpio" \
			"gvfs.helper=10.0.2.2:$H_SR_PORT:$H_EXPORT gvfs.hopts=$HO"
		grep -aq "GRIDVFS-NFS-STEP mounted .*127.0.0.1:$H_EXPORT .*nfs .*vers=3" \
			"$H_DIR/helper-console.log" ||
			h_fail "helper: the guest's mount is not the kernel client on the helper's proxy"
		check_store helper
		continue
	fi
	h_gridvfsd_at "node-$pol" "$H_SR_PORT" "$H_SR_PORT" --role client "${H_NODE_TLS[@]}" \
		--cache-dir "$H_DIR/cache-$pol" --write-policy "$pol"
	guest "$pol" "$NFS_INITRD" "gvfs.port=$H_AT_PORT"
	check_store "$pol"
	h_log "$pol: guest done in $(($(date +%s) - T0)) s"
	h_stop_pid "$H_AT_PID" || h_fail "$pol: client role exit status"
	if [ "$pol" = back ]; then
		# The kernel client's writes were absorbed, then flushed (its
		# ACCESS at open gave the write grants).
		f=$(grep -o 'flushed [0-9]*' "$H_DIR/node-back.log" | awk '{ print $2 }' | sort -n | tail -n 1)
		[ "${f:-0}" -ge $((24 << 20)) ] || h_fail "back: only ${f:-0} bytes went through the write-back log"
		grep -q "passed_through\|upstream refused" "$H_DIR/node-back.log" &&
			h_fail "back: a write was refused or passed through"
	fi
	rm -rf "$G"
done
h_pass
