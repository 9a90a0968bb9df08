#!/bin/bash
# Prepares the small Linux guest that QEMU boots in gridvfs's hypervisor
# tests: kernel (Debian cloud kernel, bzImage and extracted ELF vmlinux),
# busybox initramfs, and a raw ext4 root image whose init reads ~65 MiB.
#
#   build-guest.sh [CACHE_DIR]      (default ${GRIDVFS_VM_CACHE:-/var/cache/gridvfs-vm})
#
# Everything lands in CACHE_DIR and is rebuilt only when an input changes
# (this script, the kernel package version, busybox's version). Missing
# Debian packages are installed here, not by tests/tools/install-deps.sh,
# because the VM tests are optional for the main suite. The kernel package
# is downloaded and unpacked into the cache rather than installed: an
# installed kernel would pull systemd, udev and initramfs-tools into the
# host and run update-initramfs, none of which the guest needs.
# Prints KEY=VALUE lines (KERNEL, BZIMAGE, INITRD, IMAGE, ...) on stdout.
set -euo pipefail

CACHE=${1:-${GRIDVFS_VM_CACHE:-/var/cache/gridvfs-vm}}
IMAGE_MIB=256           # raw disk size; the rest of the content is free space
PKGS=(qemu-system-x86 qemu-utils busybox-static e2fsprogs cpio lz4 zstd xz-utils
      binutils coreutils)
# Fixed identity (mkfs's UUID, directory hash seed, times) so two builds
# differ only in inode ctimes, which mkfs -d copies from the scratch tree
# and no tool here can set; the initramfs is byte-for-byte reproducible.
FS_UUID=6a1c1e52-9d0f-4d2b-8f35-67726964766d
FS_HASH_SEED=3f0c5b7e-1d9a-4c2e-a6b4-67726964766d
FS_EPOCH=1700000000

log() { echo "build-guest: $*" >&2; }
die() { echo "build-guest: $*" >&2; exit 1; }

# deps_install: install whichever of PKGS is missing (needs root then).
deps_install() {
	local p missing=()
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]} (run as root)"
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Another apt may hold the lock (parallel tests): wait for it.
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${missing[@]}" >&2 ||
	{ apt-get update -qq >&2 &&
	  apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
		--no-install-recommends "${missing[@]}" >&2; }
}

# kernel_pkg: name of the versioned linux-image the cloud metapackage
# points at, e.g. linux-image-6.1.0-56-cloud-amd64.
kernel_pkg() {
	apt-cache depends linux-image-cloud-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*-cloud-amd64\)$/\1/p' |
		head -1
}

# kernel_locate: set KVER, KSRC_VMLINUZ, KSRC_MODULES. Prefers an installed
# cloud kernel; otherwise unpacks the package into $CACHE/kpkg.
kernel_locate() {
	local z pkg ver deb
	z=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -1 || true)
	if [ -n "$z" ] && [ -d "/lib/modules/${z#/boot/vmlinuz-}" ]; then
		KVER=${z#/boot/vmlinuz-}
		KSRC_VMLINUZ=$z
		KSRC_MODULES=/lib/modules/$KVER
		KPKG_VER="installed-$(dpkg-query -W -f='${Version}' "linux-image-$KVER" 2>/dev/null || echo unknown)"
		return 0
	fi
	# apt-cache takes seconds here; its answer can only change when the
	# package lists do, so reuse the last resolution until then.
	if [ -f "$CACHE/kpkg/.version" ] && [ -z "$(find /var/lib/apt/lists \
		-maxdepth 1 -name '*Packages*' -newer "$CACHE/kpkg/.version" |
		head -1)" ]; then
		KPKG_VER=$(cat "$CACHE/kpkg/.version")
	else
		pkg=$(kernel_pkg)
		[ -n "$pkg" ] || { apt-get update -qq >&2; pkg=$(kernel_pkg); }
		[ -n "$pkg" ] || die "cannot resolve linux-image-cloud-amd64"
		ver=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: //p')
		KPKG_VER="$pkg=$ver"
	fi
	pkg=${KPKG_VER%%=*}
	ver=${KPKG_VER#*=}
	KVER=${pkg#linux-image-}
	if [ "$(cat "$CACHE/kpkg/.version" 2>/dev/null)" != "$KPKG_VER" ]; then
		log "downloading $pkg $ver"
		rm -rf "$CACHE/kpkg" "$CACHE/kdl"
		mkdir -p "$CACHE/kdl"
		(cd "$CACHE/kdl" && apt-get -q -o APT::Sandbox::User=root \
			download "$pkg=$ver" >&2)
		deb=$(ls "$CACHE"/kdl/*.deb)
		dpkg-deb -x "$deb" "$CACHE/kpkg"
		echo "$KPKG_VER" >"$CACHE/kpkg/.version"
		rm -rf "$CACHE/kdl"
	fi
	KSRC_VMLINUZ=$CACHE/kpkg/boot/vmlinuz-$KVER
	KSRC_MODULES=$CACHE/kpkg/lib/modules/$KVER
	[ -f "$KSRC_VMLINUZ" ] || die "no $KSRC_VMLINUZ in $pkg"
}

# vmlinux_extract BZIMAGE OUT: find the compressed payload inside the
# bzImage by its magic (as the kernel's scripts/extract-vmlinux does) and
# decompress it; the result must be an ELF with the PVH entry note, which
# lets QEMU's -kernel start it directly, skipping the in-guest decompressor.
vmlinux_extract() {
	local in=$1 out=$2 magic cmd off
	local -a tries=('\x02\x21\x4c\x18:lz4 -dc' '\x1f\x8b\x08:gzip -dc'
		'\xfd\x37\x7a\x58\x5a\x00:xz -dc' '\x28\xb5\x2f\xfd:zstd -dcq'
		'\x5d\x00\x00\x00:xz -dc --format=lzma' '\x42\x5a\x68:bzip2 -dc')
	for t in "${tries[@]}"; do
		magic=${t%%:*}
		cmd=${t#*:}
		for off in $(LC_ALL=C grep -obUaP "$magic" "$in" | cut -d: -f1); do
			# Trailing bytes after the stream make some tools complain.
			tail -c +$((off + 1)) "$in" | $cmd >"$out.tmp" 2>/dev/null || true
			if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] &&
				readelf -n "$out.tmp" 2>/dev/null | grep -q '(0x00000012)'; then
				mv "$out.tmp" "$out"
				return 0
			fi
		done
	done
	rm -f "$out.tmp"
	return 1
}

# modules_for NAME...: the .ko paths (relative to the modules dir) needed
# to load NAME..., dependencies first, each once; nothing for built-ins.
# The package ships no modules.dep (depmod makes it at install time), so
# dependencies come from each module's .modinfo "depends=" field.
modules_for() {
	local seen=" " m
	_mf() {
		local name=$1 p dep
		p=$(cd "$KSRC_MODULES" && find kernel -name "$name.ko" -o \
			-name "${name//_/-}.ko" | head -1)
		[ -n "$p" ] || return 0
		case $seen in *" $p "*) return 0 ;; esac
		for dep in $(objcopy -O binary --only-section=.modinfo \
			"$KSRC_MODULES/$p" /dev/stdout | tr '\0' '\n' |
			sed -n 's/^depends=//p' | tr ',' ' '); do
			_mf "$dep"
		done
		seen+="$p "
		echo "$p"
	}
	for m in "$@"; do _mf "$m"; done
}

# initramfs_init: the initramfs's /init. Loads the virtio modules, mounts
# /dev/vda read-only and switches root to it; any failure is reported on
# the console (GRIDVFS-BOOT-FAIL) and powers off, so boot.sh never waits
# for a timeout on a guest that cannot come up.
initramfs_init() {
	cat <<'INIT'
#!/bin/sh
fail() { echo "GRIDVFS-BOOT-FAIL initramfs: $*"; poweroff -f; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules.list); do
	insmod "/lib/modules/$m" || fail "insmod $m"
done
i=0
while [ ! -b /dev/vda ]; do
	i=$((i + 1))
	[ $i -gt 500 ] && fail "no /dev/vda"
	sleep 0.01
done
mount -t ext4 -o ro /dev/vda /newroot || fail "mount /dev/vda"
umount /proc /sys
mount --move /dev /newroot/dev || fail "move /dev"
exec switch_root /newroot /sbin/init
INIT
}

# nfs_init: the /init of the kernel-NFS-client guest (issue 17). Brings up
# virtio-net on QEMU's user network (the host's loopback is 10.0.2.2),
# mounts gvfs.path from the gridvfs client role on gvfs.port with the
# kernel's NFSv3 client, and runs a POSIX workload: 24 MiB written and read
# back after a remount (sha256), truncate down and up (holes read as
# zeros), a write past the end, rename, readdir after unlink, and two uids
# (1 and 2) against a 0700 directory.  With gvfs.helper=HOST:PORT:PATH the
# mount is made by mount.gridvfs in kernel mode instead (-o kernel,
# gvfs.hopts): it starts its own client role in the guest, which the test
# adds with a second cpio archive.  Each step prints GRIDVFS-NFS-STEP;
# the end GRIDVFS-NFS-OK, or GRIDVFS-NFS-FAIL with the reason; then it
# powers off.
nfs_init() {
	cat <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin
fail() { echo "GRIDVFS-NFS-FAIL $*"; poweroff -f; }
step() { echo "GRIDVFS-NFS-STEP $*"; }
# as UID CMD: run the shell command CMD as uid 1 (daemon) or 2 (bin)
as() { [ "$1" = 1 ] && n=daemon || n=bin; su -s /bin/sh "$n" -c "$2"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=200m tmpfs /tmp
for m in $(cat /etc/modules.list); do
	insmod "/lib/modules/$m" || fail "insmod $m"
done
for kv in $(cat /proc/cmdline); do
	case $kv in
	gvfs.port=*) PORT=${kv#*=} ;;
	gvfs.path=*) EXPORT=${kv#*=} ;;
	gvfs.helper=*) HELPER=${kv#*=} ;;
	gvfs.hopts=*) HOPTS=${kv#*=} ;;
	esac
done
[ -n "$HELPER" ] || [ -n "$PORT" ] && [ -n "$EXPORT" ] ||
	fail "no gvfs.port/gvfs.path or gvfs.helper on the command line"
i=0
while [ ! -e /sys/class/net/eth0 ]; do
	i=$((i + 1))
	[ $i -gt 500 ] && fail "no eth0"
	sleep 0.01
done
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up &&
	ip route add default via 10.0.2.2 || fail "network"
O="vers=3,proto=tcp,port=$PORT,mountport=$PORT,mountproto=tcp,nolock"
mkdir -p /mnt
mnt() { mount -t nfs -o "$O" "10.0.2.2:$EXPORT" /mnt || fail "mount -t nfs 10.0.2.2:$EXPORT ($O)"; }
if [ -n "$HELPER" ]; then
	mnt() {
		# The previous mount's helper and proxy leave with their mount.
		i=0
		while pidof gridvfsd >/dev/null; do
			i=$((i + 1))
			[ $i -gt 200 ] && fail "the previous gridvfsd did not exit"
			sleep 0.1
		done
		mount.gridvfs "$HELPER" /mnt -o "kernel,$HOPTS" || fail "mount.gridvfs $HELPER -o kernel,$HOPTS"
	}
fi
mnt
step "mounted $(grep ' /mnt ' /proc/mounts)"
D=/mnt/guest
mkdir "$D" || fail "mkdir"
dd if=/dev/urandom of=/tmp/big bs=1M count=24 2>/dev/null
S0=$(sha256sum /tmp/big | cut -d' ' -f1)
dd if=/tmp/big of="$D/big" bs=1M conv=fsync 2>/dev/null || fail "write 24 MiB"
umount /mnt || fail "umount after the write"
mnt
S1=$(sha256sum "$D/big" | cut -d' ' -f1)
[ "$S0" = "$S1" ] || fail "24 MiB read back after a remount differ"
step "24 MiB written and read back"
truncate -s 1000000 "$D/big" || fail "truncate down"
[ "$(stat -c %s "$D/big")" = 1000000 ] || fail "size after truncate down: $(stat -c %s "$D/big")"
head -c 1000000 /tmp/big | cmp -s - "$D/big" || fail "bytes kept by the truncate differ"
truncate -s 3000000 "$D/big" || fail "truncate up"
[ "$(tail -c 2000000 "$D/big" | tr -d '\000' | wc -c)" = 0 ] || fail "the extended part is not zeros"
dd if=/tmp/big of="$D/big" bs=4096 count=3 seek=1000 conv=notrunc 2>/dev/null || fail "write past the end"
[ "$(stat -c %s "$D/big")" = 4108288 ] || fail "size after writing past the end: $(stat -c %s "$D/big")"
step "truncate and extend"
for i in 1 2 3; do echo "$i" >"$D/f$i" || fail "create f$i"; done
rm "$D/f2" || fail "unlink"
ls "$D" | grep -qx f2 && fail "f2 listed after its unlink"
mv "$D/f3" "$D/g3" || fail "rename"
[ -e "$D/f3" ] && fail "f3 still there after the rename"
[ "$(cat "$D/g3")" = 3 ] || fail "renamed file's content"
step "rename and readdir after unlink"
mkdir "$D/p" && chown 1:1 "$D/p" && chmod 0700 "$D/p" || fail "private dir"
as 1 "echo one >$D/p/a" || fail "uid 1 cannot write in its own 0700 dir"
[ "$(stat -c %u "$D/p/a")" = 1 ] || fail "uid 1's file is owned by $(stat -c %u "$D/p/a")"
as 2 "echo two >$D/p/b" 2>/dev/null && fail "uid 2 wrote into uid 1's 0700 dir"
as 2 "cat $D/p/a" >/dev/null 2>&1 && fail "uid 2 read uid 1's file in a 0700 dir"
as 1 "chmod 0600 $D/p/a && chmod 0755 $D/p" || fail "uid 1 chmod"
as 2 "cat $D/p/a" >/dev/null 2>&1 && fail "uid 2 read uid 1's 0600 file"
as 1 "cat $D/p/a" | grep -qx one || fail "uid 1 cannot read its own file"
step "permissions as two uids"
sync
umount /mnt || fail "final umount"
echo "GRIDVFS-NFS-OK"
poweroff -f
INIT
}

# initramfs_build OUT INIT MODULE...: busybox (applets as symlinks), the
# modules (with their dependencies) and /init from the function INIT.
# Left uncompressed: under TCG decompressing costs more than copying.
initramfs_build() {
	local out=$1 init=$2 d m
	shift 2
	d=$(mktemp -d "$CACHE/initrd.XXXXXX")
	chmod 755 "$d" # the guest's /: mktemp made it 0700, closed to non-root
	mkdir -p "$d"/{bin,sbin,etc,proc,sys,dev,newroot,tmp,mnt,lib/modules}
	chmod 1777 "$d/tmp"
	cp /bin/busybox "$d/bin/busybox"
	for a in $("$d/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
	done
	printf 'root:x:0:0:root:/:/bin/sh\ndaemon:x:1:1::/:/bin/sh\nbin:x:2:2::/:/bin/sh\n' \
		>"$d/etc/passwd"
	printf 'root:x:0:\ndaemon:x:1:\nbin:x:2:\n' >"$d/etc/group"
	: >"$d/etc/modules.list"
	for m in $(modules_for "$@"); do
		mkdir -p "$d/lib/modules/$(dirname "$m")"
		cp "$KSRC_MODULES/$m" "$d/lib/modules/$m"
		echo "$m" >>"$d/etc/modules.list"
	done
	for m in "$@"; do
		grep -q "/$m.ko" "$d/etc/modules.list" ||
			grep -q "/$m.ko" "$KSRC_MODULES/modules.builtin" ||
			die "$m is neither a module nor built in"
	done
	"$init" >"$d/init"
	chmod 755 "$d/init"
	find "$d" -exec touch -h -d "@$FS_EPOCH" {} +
	(cd "$d" && find . | LC_ALL=C sort |
		cpio -o -H newc --reproducible -R 0:0 --quiet) >"$out.tmp"
	rm -rf "$d"
	mv "$out.tmp" "$out"
}

# root_init: the root image's /sbin/init, the guest's "workload". It walks
# directories and checksums a fixed file set (~65 MiB, listed with its
# expected sums in /etc/gridvfs-boot.sha256), so wrong bytes from the disk
# path show up as GRIDVFS-BOOT-BADSUM. The reported byte count comes from
# /sys/block/vda/stat, i.e. everything the guest read from the device
# (metadata and readahead included), which is what QEMU reads from IMAGE.
root_init() {
	cat <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
echo "GRIDVFS-BOOT-START $(uname -r)"
ls -lR /etc /lib/modules >/tmp/listing
nfiles=$(find / -xdev -type f | wc -l)
uname -a >/tmp/uname
dmesg | grep -c . >/tmp/dmesg-lines
if sha256sum -c -s /etc/gridvfs-boot.sha256; then
	read -r _ _ sectors _ </sys/block/vda/stat
	echo "GRIDVFS-BOOT-FILES $nfiles files, $(wc -l </etc/gridvfs-boot.sha256) checksummed"
	echo "GRIDVFS-BOOT-OK $((sectors * 512)) bytes"
else
	echo "GRIDVFS-BOOT-BADSUM"
	sha256sum -c /etc/gridvfs-boot.sha256 2>&1 | grep -v ': OK$' | head -5
fi
poweroff -f
INIT
}

# root_tree DIR: busybox root plus the kernel's module tree as bulk
# content. The init checksums drivers/ and fs/ (~62 MiB) plus busybox and
# leaves the rest (~35 MiB) unread, like a real boot. The list is sorted
# by checksum, i.e. in an order unrelated to the on-disk layout, so the
# guest's reads jump around the image as a real boot's do instead of
# streaming it front to back.
root_tree() {
	local d=$1 a
	mkdir -p "$d"/{bin,sbin,etc,proc,sys,dev,tmp,root,lib/modules,boot}
	cp /bin/busybox "$d/bin/busybox"
	for a in $("$d/bin/busybox" --list); do
		[ "$a" = busybox ] || ln -s busybox "$d/bin/$a"
	done
	root_init >"$d/sbin/init"
	chmod 755 "$d/sbin/init"
	echo gridvfs-guest >"$d/etc/hostname"
	echo "root:x:0:0:root:/root:/bin/sh" >"$d/etc/passwd"
	cp -a "$KSRC_MODULES" "$d/lib/modules/$KVER"
	cp "$KSRC_VMLINUZ" "$d/boot/"
	(cd "$d" && find bin/busybox "lib/modules/$KVER/kernel/drivers" \
		"lib/modules/$KVER/kernel/fs" -type f | LC_ALL=C sort |
		xargs sha256sum | sed 's|  |  /|' | LC_ALL=C sort) \
		>"$d/etc/gridvfs-boot.sha256"
	find "$d" -exec touch -h -d "@$FS_EPOCH" {} +
}

# image_build OUT: raw ext4 (no partition table, the guest's /dev/vda).
image_build() {
	local out=$1 d
	d=$(mktemp -d "$CACHE/root.XXXXXX")
	root_tree "$d"
	rm -f "$out.tmp"
	truncate -s "${IMAGE_MIB}M" "$out.tmp"
	# -T default: 4 KiB blocks like a real root disk (mke2fs would pick
	# 1 KiB blocks for an image this small).
	E2FSPROGS_FAKE_TIME=$FS_EPOCH mkfs.ext4 -q -F -T default -L gridvfs-root \
		-U "$FS_UUID" -E "hash_seed=$FS_HASH_SEED,root_owner=0:0" \
		-d "$d" "$out.tmp" >&2
	rm -rf "$d"
	mv "$out.tmp" "$out"
}

# inputs_key: what the cached outputs depend on.
inputs_key() {
	{
		sha256sum <"${BASH_SOURCE[0]}"
		echo "$KPKG_VER $KVER"
		dpkg-query -W -f='${Version}\n' busybox-static e2fsprogs
	} | sha256sum | cut -c1-16
}

main() {
	local key start
	mkdir -p "$CACHE"
	# Half-built scratch dirs and .tmp files of an interrupted run.
	trap 'rm -rf "$CACHE"/initrd.?????? "$CACHE"/root.?????? "$CACHE"/*.tmp' EXIT
	# Parallel test runs share the cache: one builds, the others wait.
	exec 9>"$CACHE/.lock"
	flock 9
	start=$(date +%s%N)
	deps_install
	kernel_locate
	key=$(inputs_key)
	if [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$key" ]; then
		log "building guest for $KVER in $CACHE"
		rm -f "$CACHE/stamp"
		cp "$KSRC_VMLINUZ" "$CACHE/bzImage"
		rm -f "$CACHE/vmlinux"
		vmlinux_extract "$CACHE/bzImage" "$CACHE/vmlinux" ||
			log "no bootable ELF vmlinux in $KSRC_VMLINUZ: using the bzImage"
		initramfs_build "$CACHE/initrd.cpio" initramfs_init virtio_pci virtio_blk
		initramfs_build "$CACHE/initrd-nfs.cpio" nfs_init virtio_pci \
			virtio_net nfsv3
		image_build "$CACHE/root.img"
		echo "$key" >"$CACHE/stamp"
		log "built in $((($(date +%s%N) - start) / 1000000)) ms"
	fi
	echo "KVER=$KVER"
	if [ -f "$CACHE/vmlinux" ]; then
		echo "KERNEL=$CACHE/vmlinux"
	else
		echo "KERNEL=$CACHE/bzImage"
	fi
	echo "BZIMAGE=$CACHE/bzImage"
	echo "INITRD=$CACHE/initrd.cpio"
	echo "NFS_INITRD=$CACHE/initrd-nfs.cpio"
	echo "IMAGE=$CACHE/root.img"
	echo "INPUTS_KEY=$key"
}

main
