#!/bin/bash
# Boots the gridvfs test guest (tests/vm/build-guest.sh) from a raw root
# IMAGE under QEMU/TCG and reports whether it reached its marker, how long
# it took and how many bytes it read from IMAGE.
#
#   boot.sh IMAGE [--timeout S] [--cache DIR] [--kernel F] [--initrd F]
#                 [--bzimage] [--console F] [--trace F] [--quiet]
#                 [--cache-mode none|writethrough|...] [--format raw|qcow2]
#
# --cache DIR  where build-guest.sh put the kernel and initramfs
#              (default ${GRIDVFS_VM_CACHE:-/var/cache/gridvfs-vm})
# --bzimage    boot the compressed bzImage instead of the extracted vmlinux
# --console F  keep the serial console log in F
# --trace F    write every guest read as "OFFSET LENGTH" (bytes) to F
# --cache-mode QEMU's cache= for the drive; default none (O_DIRECT), or
#              writethrough where IMAGE's file system refuses O_DIRECT
# --format     the image's format (default raw); qcow2 for an overlay whose
#              backing file is elsewhere (QEMU opens both read-only)
# Output, one KEY=VALUE per line: BOOT_OK (1/0), BOOT_SECS (QEMU start to
# guest poweroff), GUEST_BYTES (what the guest says it read from /dev/vda),
# QEMU_RD_BYTES / QEMU_RD_OPS (QMP query-blockstats of the drive), CACHE_MODE.
# Exit 0 when the marker "GRIDVFS-BOOT-OK <n> bytes" appeared, 1 otherwise;
# on timeout QEMU is killed and nothing is left running.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGE=
TIMEOUT=120
CACHE=${GRIDVFS_VM_CACHE:-/var/cache/gridvfs-vm}
KERNEL=
INITRD=
BZIMAGE=0
CONSOLE=
TRACE=
QUIET=0
MODE=
FORMAT=raw

die() { echo "boot.sh: $*" >&2; exit 1; }
say() { [ "$QUIET" = 1 ] || echo "boot.sh: $*" >&2; }

while [ $# -gt 0 ]; do
	case $1 in
	--timeout) TIMEOUT=$2; shift ;;
	--cache) CACHE=$2; shift ;;
	--kernel) KERNEL=$2; shift ;;
	--initrd) INITRD=$2; shift ;;
	--bzimage) BZIMAGE=1 ;;
	--console) CONSOLE=$2; shift ;;
	--trace) TRACE=$2; shift ;;
	--quiet) QUIET=1 ;;
	--cache-mode) MODE=$2; shift ;;
	--format) FORMAT=$2; shift ;;
	-*) die "unknown option $1" ;;
	*) [ -z "$IMAGE" ] || die "one IMAGE only"; IMAGE=$1 ;;
	esac
	shift
done
[ -n "$IMAGE" ] || die "usage: boot.sh IMAGE [--timeout S] [--cache DIR] ..."
[ -r "$IMAGE" ] || die "cannot read $IMAGE"
if [ -z "$KERNEL" ]; then
	# vmlinux is absent when the kernel had no PVH entry to boot it by.
	KERNEL=$CACHE/vmlinux
	[ "$BZIMAGE" = 1 ] || [ ! -f "$KERNEL" ] && KERNEL=$CACHE/bzImage
fi
: "${INITRD:=$CACHE/initrd.cpio}"
[ -r "$KERNEL" ] && [ -r "$INITRD" ] ||
	die "no kernel/initrd in $CACHE: run tests/vm/build-guest.sh $CACHE"
command -v qemu-system-x86_64 >/dev/null ||
	die "qemu-system-x86_64 missing: run tests/vm/build-guest.sh"

# cache=none opens IMAGE with O_DIRECT, which tmpfs refuses (EINVAL).
# Probe it the way QEMU will use it; fall back to the host page cache.
cache_mode() {
	if dd if="$1" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null; then
		echo none
	else
		echo writethrough
	fi
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/gridvfs-boot.XXXXXX") || exit 1
QPID=
cleanup() {
	if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then
		kill -TERM "$QPID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$QPID" 2>/dev/null
		wait "$QPID" 2>/dev/null
	fi
	[ -n "$CONSOLE" ] && [ -f "$WORK/console" ] && cp "$WORK/console" "$CONSOLE"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ -n "$MODE" ] || MODE=$(cache_mode "$IMAGE")
TRACEARGS=()
[ -n "$TRACE" ] && TRACEARGS=(-trace "enable=blk_co_preadv" -D "$WORK/trace")
say "booting $IMAGE (kernel $(basename "$KERNEL"), cache=$MODE)"

start=$(date +%s.%N)
# -no-shutdown: the guest's poweroff pauses QEMU so qmp-wait.py can read
# the drive's counters before it quits QEMU. -nic none: no NIC, whose
# option ROM would cost SeaBIOS time under TCG.
qemu-system-x86_64 -accel tcg -m 512 -nographic -monitor none \
	-serial "file:$WORK/console" -nic none \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 root=/dev/vda ro quiet" \
	-drive "file=$IMAGE,format=$FORMAT,if=virtio,cache=$MODE,readonly=on,id=root" \
	-no-reboot -no-shutdown -qmp "unix:$WORK/qmp,server=on,wait=off" \
	"${TRACEARGS[@]}" </dev/null >"$WORK/qemu.out" 2>&1 &
QPID=$!

python3 "$here/qmp-wait.py" "$WORK/qmp" "$TIMEOUT" root "$QPID" >"$WORK/qmp.out"
qrc=$?
# After a successful quit QEMU exits by itself; give it a moment.
for _ in $(seq 50); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.1; done
if ! kill -0 "$QPID" 2>/dev/null; then
	wait "$QPID" 2>/dev/null
	QPID=
fi

val() { sed -n "s/^$1=//p" "$WORK/qmp.out" | head -1; }
shut=$(val SHUTDOWN_AT)
secs=
[ -n "$shut" ] && secs=$(awk -v a="$start" -v b="$shut" 'BEGIN{printf "%.2f", b - a}')
gbytes=$(sed -n 's/.*GRIDVFS-BOOT-OK \([0-9]*\) bytes.*/\1/p' "$WORK/console" | head -1)
ok=0
[ -n "$gbytes" ] && ok=1

if [ -n "$TRACE" ]; then
	# blk_co_preadv blk 0x... bs 0x... offset N bytes N flags 0x...
	sed -n 's/.*blk_co_preadv .* offset \([0-9]*\) bytes \([0-9]*\) .*/\1 \2/p' \
		"$WORK/trace" >"$TRACE"
fi

echo "BOOT_OK=$ok"
echo "BOOT_SECS=${secs:-}"
echo "GUEST_BYTES=${gbytes:-}"
echo "QEMU_RD_BYTES=$(val RD_BYTES)"
echo "QEMU_RD_OPS=$(val RD_OPS)"
echo "CACHE_MODE=$MODE"
if [ "$ok" != 1 ]; then
	case $qrc in
	2) say "timeout after ${TIMEOUT}s" ;;
	3) say "QEMU failed: $(val QMP_ERROR)"; sed 's/^/  qemu: /' "$WORK/qemu.out" >&2 ;;
	esac
	say "no GRIDVFS-BOOT-OK marker; console tail:"
	tail -n 15 "$WORK/console" 2>/dev/null | sed 's/^/  console: /' >&2
	exit 1
fi
say "marker seen: boot ${secs}s, guest read $gbytes bytes (QEMU: $(val RD_BYTES) bytes in $(val RD_OPS) reads)"
exit 0
