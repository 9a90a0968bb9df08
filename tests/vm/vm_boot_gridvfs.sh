#!/bin/bash
# vm_boot_gridvfs: QEMU boots the test guest (tests/vm) from its root image
# on an NFS store, through the whole gridvfs chain: ganesha <- server-role
# gridvfsd (mTLS, grid-mapfile) <- WAN emulator (20 ms RTT, 100 Mbit/s) <-
# client-role gridvfsd with an LMDB cache, started by mount.gridvfs (FUSE).
# The cold boot reaches its marker with the guest's byte count equal to
# QEMU's; a second (warm) boot reaches it too and moves almost nothing over
# the WAN; after umount nothing is left running.  Then the libvirt/OpenStack
# pattern (issue 19): two small local qcow2 overlays whose backing file is the
# golden image on the mount both boot from the node's cache, a write to one
# stays in it (the other does not see it), the store's image is unchanged and
# no WRITE ever crossed the WAN.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init vm_boot_gridvfs

VM=$top_srcdir/tests/vm
GV=$top_builddir/gridvfs
MH=$top_builddir/mount.gridvfs
[ -x "$MH" ] || h_fail "mount.gridvfs not built ($MH)"
[ -c /dev/fuse ] || h_fail "/dev/fuse missing"
if [ -z "${GRIDVFS_VM_CACHE:-}" ]; then
	GRIDVFS_VM_CACHE=/var/cache/gridvfs-vm
	mkdir -p "$GRIDVFS_VM_CACHE" 2>/dev/null && [ -w "$GRIDVFS_VM_CACHE" ] ||
		GRIDVFS_VM_CACHE=${TMPDIR:-/tmp}/gridvfs-vm-$(id -u)
fi
export GRIDVFS_VM_CACHE
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

"$VM/build-guest.sh" "$GRIDVFS_VM_CACHE" >"$H_DIR/build.out" 2>"$H_DIR/build.log" ||
	h_fail "build-guest.sh failed"
IMAGE=$(sed -n 's/^IMAGE=//p' "$H_DIR/build.out")
[ -f "$IMAGE" ] || h_fail "build-guest.sh printed no IMAGE"

# --- the store: ganesha, the image, a server-role gridvfsd with mTLS ------
h_ganesha
cp --sparse=always "$IMAGE" "$H_EXPORT/root.img" && chmod 0644 "$H_EXPORT/root.img" ||
	h_fail "cannot copy the image to the export"
CA=$H_DIR/ca
{ $GV ca init "$CA" && $GV ca issue "$CA" --name store --server 127.0.0.1; } \
	>"$H_DIR/ca.log" 2>&1 || h_fail "gridvfs ca init/issue failed"
DN=$($GV ca issue "$CA" --name node1 2>>"$H_DIR/ca.log" | tail -n 1 | sed 's/ ACCOUNT$//')
[ -n "$DN" ] || h_fail "gridvfs ca issue node1 printed no DN"
# The node reads as 'daemon' (the image is world-readable); QEMU's root
# is squashed to it, as a hypervisor's would be at a real store.
echo "$DN daemon" >"$H_DIR/grid-mapfile"
GRIDVFSD_LOG_LEVEL=info h_gridvfsd_at server "$H_NFS_PORT" "$H_MNT_PORT" --role server \
	--tls-cert "$CA/store.crt" --tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
	--grid-mapfile "$H_DIR/grid-mapfile"
SP=$H_AT_PORT

# --- the WAN between node and store ----------------------------------------
ST=$H_DIR/wan.stats
h_relay WAN "$SP" --delay-ms 10 --rate-mbit 100 --rpc --stats "$ST" \
	--control "$H_DIR/wan.ctl"
wan() { # wan KEY: a relay counter, read over its control socket
	"$top_builddir/tests/tools/wanrelay" --ctl "$H_DIR/wan.ctl" stats 2>/dev/null |
		awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'
}

# --- the node: mount.gridvfs (FUSE) with a cache ----------------------------
MNT=$H_DIR/mnt
mkdir -p "$MNT"
MOUNTED=0
unmount() { # keeps $? so the EXIT trap still reports the test's status
	local rc=$?
	if [ "$MOUNTED" = 1 ]; then
		timeout 20 umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
		MOUNTED=0
	fi
	return $rc
}
trap 'unmount; h__teardown' EXIT
OPTS="fuse,mountport=$WAN,consistency=immutable,cache-dir=$H_DIR/cache"
OPTS+=",tls-cert=$CA/node1.crt,tls-key=$CA/node1.key,tls-ca=$CA/ca.crt"
OPTS+=",control=$H_DIR/node.sock,log-level=warn"
h_log "mount.gridvfs 127.0.0.1:$WAN:$H_EXPORT $MNT -o $OPTS"
timeout -k 5 60 "$MH" "127.0.0.1:$WAN:$H_EXPORT" "$MNT" -o "$OPTS" \
	>"$H_DIR/mount.log" 2>&1 || h_fail "mount.gridvfs failed ($?)"
MOUNTED=1
[ -f "$MNT/root.img" ] || h_fail "root.img not visible on the mount"
[ "$(stat -c %s "$MNT/root.img")" = "$(stat -c %s "$IMAGE")" ] ||
	h_fail "root.img has the wrong size on the mount"
h_log "mounted at $(elapsed) s"

val() { sed -n "s/^$2=//p" "$1" | head -1; }
boot() { # boot NAME [IMAGE [boot.sh ARGS]]: default the image on the mount;
	# WAN bytes down during it -> NAME.wan
	local d0 d1 name=$1 img=${2:-$MNT/root.img}
	shift $(($# < 2 ? $# : 2))
	d0=$(wan bytes_down)
	"$VM/boot.sh" "$img" --timeout "${VM_BOOT_TIMEOUT:-150}" "$@" \
		--console "$H_DIR/$name-console.log" >"$H_DIR/$name.out" 2>"$H_DIR/$name-boot.log" ||
		h_fail "$name boot did not reach its marker from the gridvfs mount"
	d1=$(wan bytes_down)
	echo $((d1 - d0)) >"$H_DIR/$name.wan"
	h_log "$name boot: $(tr '\n' ' ' <"$H_DIR/$name.out") wan_down $((d1 - d0)) at $(elapsed) s"
}

boot cold
guest=$(val "$H_DIR/cold.out" GUEST_BYTES)
qemu=$(val "$H_DIR/cold.out" QEMU_RD_BYTES)
cold=$(cat "$H_DIR/cold.wan")
[ "$(val "$H_DIR/cold.out" CACHE_MODE)" = none ] ||
	h_fail "O_DIRECT refused on the gridvfs mount (cache=$(val "$H_DIR/cold.out" CACHE_MODE))"
[ "$guest" = "$qemu" ] || h_fail "cold: guest read $guest bytes but QEMU served $qemu"
[ "$guest" -ge $((60 << 20)) ] || h_fail "cold: guest read only $guest bytes"
# Whatever the guest read came over the WAN once (the cache's blocks round
# reads up, the image's metadata and TLS add a little), compressed records
# (zstd between the roles) counted at their decoded size.
"$GV" status --socket "$H_DIR/node.sock" >"$H_DIR/node-cold-status.txt" 2>&1
zwire=$(awk '$1 == "zstd_bytes_received" { print $2 }' "$H_DIR/node-cold-status.txt")
zraw=$(awk '$1 == "zstd_bytes_decoded" { print $2 }' "$H_DIR/node-cold-status.txt")
[ -n "$zwire" ] && [ -n "$zraw" ] || h_fail "no zstd counters in the node's status"
h_log "cold: $cold WAN bytes, of which $zwire compressed records that decoded to $zraw"
[ $((cold - zwire + zraw)) -ge "$guest" ] ||
	h_fail "cold boot moved $cold bytes over the WAN ($zwire compressed, decoded $zraw) for $guest guest bytes"

boot warm
wguest=$(val "$H_DIR/warm.out" GUEST_BYTES)
[ "$wguest" = "$(val "$H_DIR/warm.out" QEMU_RD_BYTES)" ] ||
	h_fail "warm: guest read $wguest bytes but QEMU served $(val "$H_DIR/warm.out" QEMU_RD_BYTES)"
[ "$wguest" = "$guest" ] || h_fail "warm boot read $wguest bytes, cold $guest"
warm=$(cat "$H_DIR/warm.wan")
[ $((warm * 100)) -lt $((cold * 5)) ] ||
	h_fail "warm boot moved $warm bytes over the WAN, cold $cold (want < 5 %)"
"$GV" status --socket "$H_DIR/node.sock" >"$H_DIR/node-status.txt" 2>&1

# --- qcow2 overlays of the golden image -------------------------------------
command -v qemu-img >/dev/null && command -v qemu-io >/dev/null ||
	h_fail "qemu-img/qemu-io missing (tests/vm/build-guest.sh installs qemu-utils)"
SUM0=$(h_sha256 "$H_EXPORT/root.img")
UP0=$(wan bytes_up)
for o in ov1 ov2; do
	qemu-img create -q -f qcow2 -b "$MNT/root.img" -F raw "$H_DIR/$o.qcow2" \
		>>"$H_DIR/qemu-img.log" 2>&1 || h_fail "qemu-img create $o: $(tail -n 2 "$H_DIR/qemu-img.log")"
done
boot ov1 "$H_DIR/ov1.qcow2" --format qcow2
boot ov2 "$H_DIR/ov2.qcow2" --format qcow2
for o in ov1 ov2; do
	[ "$(val "$H_DIR/$o.out" GUEST_BYTES)" = "$guest" ] ||
		h_fail "$o: the guest read $(val "$H_DIR/$o.out" GUEST_BYTES) bytes, the raw boot $guest"
	[ $(($(cat "$H_DIR/$o.wan") * 100)) -lt $((cold * 5)) ] ||
		h_fail "$o boot moved $(cat "$H_DIR/$o.wan") bytes over the WAN (the overlays share the node's cache)"
done
# A write lands in its overlay only (the backing file is opened read-only).
qemu-io -c "write -P 0x5a 200M 1M" "$H_DIR/ov1.qcow2" >>"$H_DIR/qemu-img.log" 2>&1 ||
	h_fail "qemu-io write to the overlay failed: $(tail -n 2 "$H_DIR/qemu-img.log")"
qemu-io -c "read -P 0x5a 200M 1M" "$H_DIR/ov1.qcow2" >>"$H_DIR/qemu-img.log" 2>&1 ||
	h_fail "the overlay lost its own write"
qemu-io -c "read -P 0x5a 200M 1M" "$H_DIR/ov2.qcow2" 2>&1 | grep -q "Pattern verification failed" ||
	h_fail "the second overlay sees the first one's write"
boot ov1-again "$H_DIR/ov1.qcow2" --format qcow2
[ "$(h_sha256 "$H_EXPORT/root.img")" = "$SUM0" ] || h_fail "the store's golden image changed"
# The link is TLS: what went up is counted in bytes; a 1 MiB write could
# not hide in it.
UP=$(($(wan bytes_up) - UP0))
[ "$UP" -lt $((256 << 10)) ] || h_fail "$UP bytes went up the WAN during the overlays' life"

echo "vm_boot_gridvfs: cold $(val "$H_DIR/cold.out" BOOT_SECS)s $cold WAN bytes," \
	"warm $(val "$H_DIR/warm.out" BOOT_SECS)s $warm WAN bytes; guest read $guest bytes;" \
	"qcow2 overlays $(val "$H_DIR/ov1.out" BOOT_SECS)s $(cat "$H_DIR/ov1.wan") and" \
	"$(val "$H_DIR/ov2.out" BOOT_SECS)s $(cat "$H_DIR/ov2.wan") WAN bytes; total $(elapsed)s"

# --- unmount: the node's processes go with it ------------------------------
timeout 20 umount "$MNT" || h_fail "umount failed"
MOUNTED=0
for _ in $(seq 100); do
	left=$(pgrep -f -- "--upstream 127.0.0.1:$WAN " ; pgrep -f -- "mount.gridvfs .*$MNT")
	[ -z "$left" ] && break
	sleep 0.1
done
[ -z "$left" ] || h_fail "left running after umount: $(ps -o pid=,args= -p "$(echo $left | tr ' ' ,)")"
grep -qF " $MNT " /proc/self/mountinfo && h_fail "$MNT still mounted"
# The relay delays a FIN like data (one way, then the store's answer):
# give the goodbyes that long, then no connection may be left.
for _ in $(seq 30); do
	[ "$(wan conns_active)" = 0 ] && break
	sleep 0.1
done
[ "$(wan conns_active)" = 0 ] || h_fail "the node kept $(wan conns_active) WAN connections open"
h_pass
