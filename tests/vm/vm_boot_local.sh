#!/bin/bash
# vm_boot_local: builds the test guest (cached, tests/vm/build-guest.sh) and
# boots it under QEMU/TCG from a local raw image: the guest must reach its
# marker and report exactly the bytes QEMU's block layer served (QMP), and a
# copy with one corrupted file block must fail the guest's checksums.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init vm_boot_local

VM=$top_srcdir/tests/vm
# The shared cache wants root (/var/cache); otherwise use a per-user one.
if [ -z "${GRIDVFS_VM_CACHE:-}" ]; then
	GRIDVFS_VM_CACHE=/var/cache/gridvfs-vm
	mkdir -p "$GRIDVFS_VM_CACHE" 2>/dev/null && [ -w "$GRIDVFS_VM_CACHE" ] ||
		GRIDVFS_VM_CACHE=${TMPDIR:-/tmp}/gridvfs-vm-$(id -u)
fi
export GRIDVFS_VM_CACHE

t0=$(date +%s)
"$VM/build-guest.sh" "$GRIDVFS_VM_CACHE" >"$H_DIR/build.out" 2>"$H_DIR/build.log" ||
	h_fail "build-guest.sh failed"
h_log "guest ready in $(($(date +%s) - t0)) s"
IMAGE=$(sed -n 's/^IMAGE=//p' "$H_DIR/build.out")
[ -f "$IMAGE" ] || h_fail "build-guest.sh printed no IMAGE"

# val FILE KEY: a KEY=VALUE line of boot.sh's output.
val() { sed -n "s/^$2=//p" "$1" | head -1; }

"$VM/boot.sh" "$IMAGE" --timeout 90 --console "$H_DIR/console.log" \
	>"$H_DIR/boot.out" 2>"$H_DIR/boot.log" ||
	h_fail "guest did not boot to its marker"
guest=$(val "$H_DIR/boot.out" GUEST_BYTES)
qemu=$(val "$H_DIR/boot.out" QEMU_RD_BYTES)
secs=$(val "$H_DIR/boot.out" BOOT_SECS)
h_log "boot ${secs}s, guest read $guest bytes, QEMU served $qemu"
echo "vm_boot_local: boot ${secs}s, guest read $guest bytes (QEMU: $qemu)"
[ -n "$secs" ] || h_fail "no boot time reported"
[ "$guest" = "$qemu" ] || h_fail "guest read $guest bytes but QEMU served $qemu"
# The init checksums ~62 MiB of files: it must have read at least that,
# and far less than the whole 256 MiB image.
[ "$guest" -ge $((60 << 20)) ] && [ "$guest" -le $((128 << 20)) ] ||
	h_fail "guest read $guest bytes, expected 60-128 MiB"
grep -q '^GRIDVFS-BOOT-FILES' "$H_DIR/console.log" ||
	h_fail "the guest's init did not run its programs"

# Corrupt the first block of one checksummed file in a sparse copy: the
# guest must see the wrong bytes and refuse the marker.
cp --sparse=always "$IMAGE" "$H_DIR/bad.img"
victim=$(debugfs -R "cat /etc/gridvfs-boot.sha256" "$H_DIR/bad.img" 2>/dev/null |
	awk 'NR == 1 { print $2 }')
blk=$(debugfs -R "bmap $victim 0" "$H_DIR/bad.img" 2>/dev/null)
[ -n "$victim" ] && [ "${blk:-0}" -gt 0 ] || h_fail "cannot locate a file to corrupt"
bsize=$(dumpe2fs -h "$H_DIR/bad.img" 2>/dev/null | sed -n 's/^Block size: *//p')
printf 'GRIDVFS-CORRUPT!' |
	dd of="$H_DIR/bad.img" bs=1 seek=$((blk * bsize + 64)) conv=notrunc 2>/dev/null
if "$VM/boot.sh" "$H_DIR/bad.img" --timeout 90 --console "$H_DIR/bad-console.log" \
	>"$H_DIR/bad-boot.out" 2>"$H_DIR/bad-boot.log"; then
	h_fail "guest booted OK from a corrupted image"
fi
grep -q 'GRIDVFS-BOOT-BADSUM' "$H_DIR/bad-console.log" ||
	h_fail "corrupted image: no GRIDVFS-BOOT-BADSUM from the guest"
grep -q "$victim" "$H_DIR/bad-console.log" ||
	h_fail "corrupted image: the guest did not name $victim"
h_pass
