#!/bin/bash
# vm_boot_fuse: QEMU boots the test guest from an image behind a FUSE mount
# (tests/vm/fuse-imgfs, a stand-in for mount.gridvfs) with cache=none, i.e.
# O_DIRECT on a FUSE file without FUSE's direct_io: the marker appears and
# the FUSE fs sees QEMU's reads one for one (no kernel readahead), so what
# it served matches what the guest read.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init vm_boot_fuse

VM=$top_srcdir/tests/vm
FUSEFS=$top_builddir/tests/vm/fuse-imgfs
[ -x "$FUSEFS" ] || h_fail "$FUSEFS not built"
if [ -z "${GRIDVFS_VM_CACHE:-}" ]; then
	GRIDVFS_VM_CACHE=/var/cache/gridvfs-vm
	mkdir -p "$GRIDVFS_VM_CACHE" 2>/dev/null && [ -w "$GRIDVFS_VM_CACHE" ] ||
		GRIDVFS_VM_CACHE=${TMPDIR:-/tmp}/gridvfs-vm-$(id -u)
fi
export GRIDVFS_VM_CACHE

"$VM/build-guest.sh" "$GRIDVFS_VM_CACHE" >"$H_DIR/build.out" 2>"$H_DIR/build.log" ||
	h_fail "build-guest.sh failed"
IMAGE=$(sed -n 's/^IMAGE=//p' "$H_DIR/build.out")
[ -f "$IMAGE" ] || h_fail "build-guest.sh printed no IMAGE"

MNT=$H_DIR/mnt
mkdir -p "$MNT"
"$FUSEFS" "$IMAGE" "$MNT" -f --log "$H_DIR/fuse-reads.txt" \
	>"$H_DIR/fuse.log" 2>&1 &
FPID=$!
H_PIDS+=("$FPID")
# unmount keeps $? so the EXIT trap still reports the test's status.
unmount() {
	local rc=$?
	fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	return $rc
}
trap 'unmount; h__teardown' EXIT
for _ in $(seq 50); do
	[ -f "$MNT/disk.img" ] && break
	kill -0 "$FPID" 2>/dev/null || h_fail "fuse-imgfs exited"
	sleep 0.1
done
[ -f "$MNT/disk.img" ] || h_fail "FUSE mount did not come up"

val() { sed -n "s/^$2=//p" "$1" | head -1; }
"$VM/boot.sh" "$MNT/disk.img" --timeout 90 --console "$H_DIR/console.log" \
	>"$H_DIR/boot.out" 2>"$H_DIR/boot.log" ||
	h_fail "guest did not boot to its marker from the FUSE mount"
unmount
[ "$(val "$H_DIR/boot.out" CACHE_MODE)" = none ] ||
	h_fail "O_DIRECT refused on the FUSE file: cache=$(val "$H_DIR/boot.out" CACHE_MODE)"
guest=$(val "$H_DIR/boot.out" GUEST_BYTES)
qemu=$(val "$H_DIR/boot.out" QEMU_RD_BYTES)
served=$(awk '{ s += $2 } END { print s + 0 }' "$H_DIR/fuse-reads.txt")
nreads=$(wc -l <"$H_DIR/fuse-reads.txt")
echo "vm_boot_fuse: boot $(val "$H_DIR/boot.out" BOOT_SECS)s, guest $guest bytes, FUSE served $served bytes in $nreads reads"
[ "$guest" = "$qemu" ] || h_fail "guest read $guest bytes but QEMU served $qemu"
[ "$guest" -ge $((60 << 20)) ] || h_fail "guest read only $guest bytes"
# QEMU's own probes (alignment, first sector, boot.sh's dd) add a few KiB;
# page-cache readahead would add megabytes.
[ "$served" -ge "$guest" ] && [ "$served" -le $((guest + (256 << 10))) ] ||
	h_fail "FUSE served $served bytes for $guest guest bytes"
h_pass
