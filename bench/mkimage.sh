#!/bin/bash
# mkimage.sh: make a "golden" raw VM disk image of realistic shape and two
# clones that share most of its blocks, for the demo and the benchmarks. No
# loop devices or mounts: file systems are built with `mkfs.ext4 -d` at an
# offset inside the image file.
#
# usage: bench/mkimage.sh DIR [SIZE_MB [SEED]]     (default 1024 MiB, seed 1)
# env:   MKIMAGE_CHANGE_PCT  % of data blocks each clone changes (default 3)
#
# Writes into DIR (created):
#   golden.img   sparse raw disk: GPT, 1 MiB BIOS-boot partition with boot
#                code, /boot ext4 (kernel and initrd: incompressible), root
#                ext4 filled with ~20 % of SIZE of files (libraries and docs
#                copied from this machine's /usr, seeded logs, blobs and a
#                sparse database), a swap partition (header only) and
#                unpartitioned space: 70-80 % of the image is zeros.
#   clone1.img, clone2.img  copies with MKIMAGE_CHANGE_PCT % of the data
#                blocks of /boot and root rewritten in place at seeded
#                positions (runs of 1-32 blocks), like guests' writes. The
#                clones' file systems are not fsck-clean; they are block
#                images, not bootable guests.
#   boot.trace   a boot-like read pattern ("OFFSET LENGTH" lines, ~3 % of
#                the image plus /boot), the same for every image.
#   MANIFEST     sizes, non-zero bytes, zero %, blocks differing from golden.
# The seeded parts are identical for a seed on any machine; the copied /usr
# files and inode change times make golden.img machine- and run-specific.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: mkimage.sh DIR [SIZE_MB [SEED]]}
size_mb=${2:-1024}
seed=${3:-1}
pct=${MKIMAGE_CHANGE_PCT:-3}
tool="python3 $here/imgtool.py"

[ "$size_mb" -ge 256 ] 2>/dev/null || { echo "mkimage: SIZE_MB must be >= 256" >&2; exit 2; }
for c in sfdisk mkfs.ext4 python3 tar; do
	command -v "$c" >/dev/null 2>&1 || PATH="$PATH:/sbin:/usr/sbin"
	command -v "$c" >/dev/null 2>&1 || { echo "mkimage: $c missing (tests/tools/install-deps.sh)" >&2; exit 1; }
done
mkdir -p "$dir"
stage=$(mktemp -d "${TMPDIR:-/tmp}/mkimage.XXXXXX")
trap 'rm -rf "$stage"' EXIT

MiB=1048576
img=$dir/golden.img
# Layout in MiB: BIOS boot, /boot = 1/8, root = 5/8, swap = 1/8, the rest free.
p1=1 p1n=1
p2=2 p2n=$((size_mb / 8))
p3=$((p2 + p2n)) p3n=$((size_mb * 5 / 8))
p4=$((p3 + p3n)) p4n=$((size_mb / 8))

# uuid NAME: a UUID derived from the seed, so the image does not depend on
# /dev/urandom.
uuid() {
	local h
	h=$(printf '%s-%s' "$seed" "$1" | md5sum)
	echo "${h:0:8}-${h:8:4}-4${h:13:3}-8${h:17:3}-${h:20:12}"
}

# take SRC BUDGET DEST: copy regular files of SRC (sorted by path, each
# < 8 MiB) into DEST until BUDGET bytes.
take() {
	[ -d "$1" ] || return 0
	find "$1" -xdev -type f -size -8M -readable -printf '%s\t%p\n' 2>/dev/null |
		LC_ALL=C sort -t$'\t' -k2 |
		awk -F'\t' -v b="$2" '$1 + t <= b { t += $1; print $2 }' >"$stage/list"
	tar -cf - --no-recursion -T "$stage/list" 2>/dev/null | tar -xf - -C "$3"
}

echo "mkimage: $img ($size_mb MiB, seed $seed)"
rm -f "$dir"/golden.img "$dir"/clone[12].img
truncate -s "${size_mb}M" "$img"
sfdisk -q --no-reread --no-tell-kernel "$img" <<-EOF >/dev/null
	label: gpt
	label-id: $(uuid disk)
	unit: sectors
	start=$((p1 * 2048)), size=$((p1n * 2048)), type=21686148-6449-6E6F-744E-656564454649, uuid=$(uuid p1), name="bios"
	start=$((p2 * 2048)), size=$((p2n * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$(uuid p2), name="boot"
	start=$((p3 * 2048)), size=$((p3n * 2048)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=$(uuid p3), name="root"
	start=$((p4 * 2048)), size=$((p4n * 2048)), type=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F, uuid=$(uuid p4), name="swap"
EOF
# Boot code: 440 bytes in the MBR, a 512 KiB core image in the BIOS partition.
$tool bytes 440 "$seed" | dd of="$img" conv=notrunc status=none
$tool bytes $((512 * 1024)) $((seed + 10)) |
	dd of="$img" bs=1M seek=$p1 conv=notrunc status=none

# mkfs_at NAME START_MIB SIZE_MIB SRC: ext4 at an offset, seeded ids and
# hash seed, fixed superblock times.
mkfs_at() {
	E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -b 4096 -L "$1" -U "$(uuid "fs-$1")" \
		-E "offset=$(($2 * MiB)),nodiscard,hash_seed=$(uuid "hash-$1")" \
		-d "$4" "$img" "$(($3 * 1024))k"
}

# /boot: a compressed kernel and initrd (incompressible), a text config.
mkdir -p "$stage/boot/grub"
$tool bytes $((size_mb * MiB / 100 + 4 * MiB)) $((seed + 20)) >"$stage/boot/vmlinuz-6.1.0-gridvfs"
$tool bytes $((size_mb * MiB * 3 / 100)) $((seed + 21)) >"$stage/boot/initrd.img-6.1.0-gridvfs"
find /usr/share/doc -name copyright -type f 2>/dev/null | LC_ALL=C sort | head -n 200 |
	xargs -r cat >"$stage/boot/config-6.1.0-gridvfs" 2>/dev/null || true
printf 'set default=0\nmenuentry gridvfs { linux /vmlinuz-6.1.0-gridvfs root=LABEL=root }\n' \
	>"$stage/boot/grub/grub.cfg"
mkfs_at boot "$p2" "$p2n" "$stage/boot"
rm -rf "${stage:?}/boot"

# root: ~20 % of the image: libraries, docs, other shared data, var/.
root_b=$((size_mb * MiB / 5))
mkdir -p "$stage/root/etc" "$stage/root/home/user" "$stage/root/tmp"
take /usr/lib/x86_64-linux-gnu $((root_b / 2)) "$stage/root"
take /usr/lib $((root_b / 10)) "$stage/root"
take /usr/share/doc $((root_b / 8)) "$stage/root"
take /usr/share $((root_b / 20)) "$stage/root"
take /etc $((4 * MiB)) "$stage/root"
$tool synth "$stage/root" $((root_b / 5)) $((seed + 30))
mkfs_at root "$p3" "$p3n" "$stage/root"
rm -rf "${stage:?}/root"

# swap: the signature page only, as a fresh install leaves it.
if command -v mkswap >/dev/null 2>&1; then
	truncate -s "${p4n}M" "$stage/swap"
	mkswap -q -L swap -U "$(uuid swap)" "$stage/swap" >/dev/null
	dd if="$stage/swap" of="$img" bs=4096 count=1 seek=$((p4 * 256)) conv=notrunc status=none
	rm -f "$stage/swap"
fi

regions="$((p2 * MiB))-$(((p2 + p2n) * MiB)),$((p3 * MiB))-$(((p3 + p3n) * MiB))"
$tool trace "$img" "$dir/boot.trace" $((seed + 40)) "$((p2 * MiB))-$(((p2 + p2n) * MiB))" \
	"$((p3 * MiB))-$(((p3 + p3n) * MiB))"
{
	echo "# image size_bytes nonzero_bytes zero_pct blocks_differing_from_golden"
	echo "golden.img $($tool stats "$img") 0"
} >"$dir/MANIFEST"
for n in 1 2; do
	cp --sparse=always "$img" "$dir/clone$n.img"
	$tool clone "$img" "$dir/clone$n.img" $((seed + 50 + n)) "$pct" "$regions" >/dev/null
	echo "clone$n.img $($tool stats "$dir/clone$n.img" "$img")" >>"$dir/MANIFEST"
done
echo "trace boot.trace $(grep -vc '^#' "$dir/boot.trace") reads $(awk '!/^#/ { s += $2 } END { print s }' "$dir/boot.trace") bytes" >>"$dir/MANIFEST"
sed 's/^/mkimage:   /' "$dir/MANIFEST"
