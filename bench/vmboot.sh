#!/bin/bash
# bench/vmboot.sh: boot time and WAN bytes of the QEMU test guest
# (tests/vm) booted from a local file and from a gridvfs mount over the
# emulated WAN (20 ms RTT, 100 Mbit/s): cold, cold with a boot-trace
# prefetch profile, cold on a second node with the profile the server role
# learned from the first cold boot (issue 19), warm. Reports, never asserts. Prints a table and writes
# bench/results/vmboot.md (see docs/vm-boot.md, "Benchmark").
#
# Chain: ganesha <- server-role gridvfsd (mTLS, grid-mapfile) <- wanrelay
# <- client-role gridvfsd (LMDB cache) started by mount.gridvfs (FUSE).
# env: VMBOOT_RUNS (3: local and warm boots; cold ones run once)
#      VMBOOT_OUT (bench/results)  KEEP=1  GRIDVFS_VM_CACHE
set -u

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=lib.sh
. "$top_srcdir/bench/lib.sh"

RUNS=${VMBOOT_RUNS:-3}
OUT=${VMBOOT_OUT:-$top_srcdir/bench/results}
VM=$top_srcdir/tests/vm
GV=$top_builddir/gridvfs
MH=$top_builddir/mount.gridvfs
FUSEFS=$top_builddir/tests/vm/fuse-imgfs
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }

h_init vmboot
for b in gridvfsd gridvfs mount.gridvfs wanrelay; do
	b_bin "$b" >/dev/null || h_fail "build first: make && make tests/tools/wanrelay"
done
if [ -z "${GRIDVFS_VM_CACHE:-}" ]; then
	GRIDVFS_VM_CACHE=/var/cache/gridvfs-vm
	mkdir -p "$GRIDVFS_VM_CACHE" 2>/dev/null && [ -w "$GRIDVFS_VM_CACHE" ] ||
		GRIDVFS_VM_CACHE=${TMPDIR:-/tmp}/gridvfs-vm-$(id -u)
fi
export GRIDVFS_VM_CACHE
say "guest (tests/vm/build-guest.sh $GRIDVFS_VM_CACHE)"
"$VM/build-guest.sh" "$GRIDVFS_VM_CACHE" >"$H_DIR/build.out" 2>"$H_DIR/build.log" ||
	{ tail -n 20 "$H_DIR/build.log"; h_fail "build-guest.sh failed"; }
IMAGE=$(sed -n 's/^IMAGE=//p' "$H_DIR/build.out")

# --- the store and the WAN -----------------------------------------------
h_ganesha
cp --sparse=always "$IMAGE" "$H_EXPORT/root.img" && chmod 0644 "$H_EXPORT/root.img" ||
	h_fail "cannot copy the image to the export"
CA=$H_DIR/ca
{ $GV ca init "$CA" && $GV ca issue "$CA" --name store --server 127.0.0.1; } \
	>"$H_DIR/ca.log" 2>&1 || h_fail "gridvfs ca failed"
DN=$($GV ca issue "$CA" --name node1 2>>"$H_DIR/ca.log" | tail -n 1 | sed 's/ ACCOUNT$//')
echo "$DN daemon" >"$H_DIR/grid-mapfile"
# --learn-idle 5: the store publishes a boot's order 5 s after its last
# new block (the default, 20 s, is for real hosts); info logs say when.
b_server SP "$H_NFS_PORT" "$H_MNT_PORT" --tls-cert "$CA/store.crt" \
	--tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" \
	--learn-idle 5 --log-level info
b_relay WAN "$SP"
say "store: ganesha $H_NFS_PORT <- server-role gridvfsd $SP (mTLS) <- WAN $WAN ($((2 * B_DELAY_MS)) ms RTT, $B_RATE_MBIT Mbit/s)"

MNT=$H_DIR/mnt
mkdir -p "$MNT"
MOUNTED=""
unmount() { # keeps $?
	local rc=$?
	if [ -n "$MOUNTED" ]; then
		timeout 20 umount "$MOUNTED" 2>/dev/null || umount -l "$MOUNTED" 2>/dev/null
		MOUNTED=""
	fi
	return $rc
}
cleanup() { # keeps $? for the harness's teardown
	local rc=$?
	unmount
	fusermount3 -u "$H_DIR/fmnt" 2>/dev/null
	(exit $rc)
	h__teardown
}
trap cleanup EXIT

# gv_mount CACHEDIR SOCK: mount the store over the WAN on $MNT.
gv_mount() {
	local o="fuse,mountport=$WAN,consistency=immutable,cache-dir=$1,control=$2"
	o+=",tls-cert=$CA/node1.crt,tls-key=$CA/node1.key,tls-ca=$CA/ca.crt,log-level=warn"
	timeout -k 5 60 "$MH" "127.0.0.1:$WAN:$H_EXPORT" "$MNT" -o "$o" \
		>>"$H_DIR/mount.log" 2>&1 || h_fail "mount.gridvfs failed (see mount.log)"
	MOUNTED=$MNT
}

val() { sed -n "s/^$2=//p" "$1" | head -1; }
# boot NAME IMAGE [boot.sh args]: one boot; appends "secs wan_bytes" to
# $H_DIR/NAME.runs.
boot() {
	local name=$1 img=$2 w0 w1 n
	shift 2
	n=1
	[ -f "$H_DIR/$name.runs" ] && n=$(($(wc -l <"$H_DIR/$name.runs") + 1))
	w0=$(b_wan_bytes "$WAN_CTL")
	"$VM/boot.sh" "$img" --timeout 300 --console "$H_DIR/$name-$n.console" "$@" \
		>"$H_DIR/$name-$n.out" 2>"$H_DIR/$name-$n.log" ||
		{ cat "$H_DIR/$name-$n.log"; h_fail "$name boot $n failed"; }
	w1=$(b_wan_bytes "$WAN_CTL")
	echo "$(val "$H_DIR/$name-$n.out" BOOT_SECS) $((w1 - w0))" >>"$H_DIR/$name.runs"
	say "  $name #$n: $(val "$H_DIR/$name-$n.out" BOOT_SECS) s, $((w1 - w0)) WAN bytes, guest read $(val "$H_DIR/$name-$n.out" GUEST_BYTES)"
}
# status NAME SOCK: keep the node proxy's figures for the report
status() { "$GV" status --socket "$2" >"$H_DIR/$1.status" 2>&1; }

# --- the scenarios ---------------------------------------------------------
# replay NAME FILE: the cold boot's reads (boot.sh --trace), one at a time
# with O_DIRECT as QEMU issues them, without the guest: the I/O path's own
# time (FUSE, proxy, cache), apart from TCG's CPU time. Appends seconds to
# $H_DIR/NAME.replay.
replay() {
	python3 - "$H_DIR/boot.trace" "$2" >>"$H_DIR/$1.replay" <<-'EOF'
		import mmap, os, sys, time
		reads = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
		fd = os.open(sys.argv[2], os.O_RDONLY | os.O_DIRECT)
		buf = mmap.mmap(-1, 4 << 20)
		t = time.monotonic()
		for off, n in reads:
		    a = off & ~4095
		    e = (off + n + 4095) & ~4095
		    os.preadv(fd, [memoryview(buf)[:e - a]], a)
		print("%.3f" % (time.monotonic() - t))
	EOF
}

say "gridvfs cold (fresh cache; the boot's reads are traced)"
gv_mount "$H_DIR/cache-cold" "$H_DIR/cold.sock"
boot cold "$MNT/root.img" --trace "$H_DIR/boot.trace"
status cold "$H_DIR/cold.sock"
unmount

# Node A's cold boot above went through the server role with no metadata:
# the store learns its order and publishes root.img.gvmeta (a profile only,
# no hashes).  "Node B" (a fresh cache and mount) boots with it.
say "gridvfs cold on a second node, learned profile (published by the server role after the cold boot; fresh cache)"
# The boot may pause longer than --learn-idle (TCG boots the kernel, which
# is not on root.img): the store publishes at each pause and updates the
# file as the boot goes on.  Wait for the last publish after the boot's end.
sleep 7
SLOG=$H_DIR/gridvfsd-server.log
for _ in $(seq 120); do
	a=$(grep -c "profile of root.img: boot over" "$SLOG")
	b=$(grep -c "profile of root.img \(learned\|not published\)" "$SLOG")
	[ "$a" -gt 0 ] && [ "$a" = "$b" ] && break
	sleep 0.5
done
if grep -q "profile of root.img learned" "$H_DIR/gridvfsd-server.log"; then
	"$GV" meta show "$H_EXPORT/root.img.gvmeta" >"$H_DIR/learned.meta" 2>&1
	say "  $(grep -E '^(profile|origin|trust):' "$H_DIR/learned.meta" | tr -s ' ' | paste -sd';')"
	gv_mount "$H_DIR/cache-learned" "$H_DIR/learned.sock"
	boot learned "$MNT/root.img"
	status learned "$H_DIR/learned.sock"
	unmount
else
	say "skipped: the server role published no learned profile (see gridvfsd-server.log)"
fi

if "$GV" meta --help >/dev/null 2>&1; then
	say "gridvfs cold with prefetch profile (meta scan + attach of the cold boot's trace; fresh cache)"
	"$GV" meta scan "$H_EXPORT/root.img" --quiet >"$H_DIR/meta.log" 2>&1 &&
		"$GV" meta attach "$H_EXPORT/root.img.gvmeta" "$H_DIR/boot.trace" >>"$H_DIR/meta.log" 2>&1 ||
		{ cat "$H_DIR/meta.log"; h_fail "gridvfs meta scan/attach failed"; }
	gv_mount "$H_DIR/cache-pf" "$H_DIR/pf.sock"
	boot prefetch "$MNT/root.img"
	status prefetch "$H_DIR/pf.sock"
	unmount
else
	say "skipped: prefetch not built yet (no 'gridvfs meta')"
fi

# Local, FUSE-only and warm boots take turns, so that the load of the
# machine (TCG is CPU-bound; other work shares the 2 cores) hits each alike.
FPID=
if [ -x "$FUSEFS" ]; then
	mkdir -p "$H_DIR/fmnt"
	"$FUSEFS" "$H_EXPORT/root.img" "$H_DIR/fmnt" -f >"$H_DIR/fuse-imgfs.log" 2>&1 &
	FPID=$!
	H_PIDS+=("$FPID")
	for _ in $(seq 50); do [ -f "$H_DIR/fmnt/disk.img" ] && break; sleep 0.1; done
	[ -f "$H_DIR/fmnt/disk.img" ] || h_fail "fuse-imgfs did not mount"
fi
say "local file, local file through FUSE (tests/vm/fuse-imgfs), gridvfs warm (the cold boot's cache, new mount): $RUNS rounds"
gv_mount "$H_DIR/cache-cold" "$H_DIR/warm.sock"
for _ in $(seq "$RUNS"); do
	boot local "$H_EXPORT/root.img"
	[ -n "$FPID" ] && boot fuse "$H_DIR/fmnt/disk.img"
	boot warm "$MNT/root.img"
done
status warm "$H_DIR/warm.sock"
for _ in $(seq "$RUNS"); do
	replay local "$H_EXPORT/root.img"
	[ -n "$FPID" ] && replay fuse "$H_DIR/fmnt/disk.img"
	replay warm "$MNT/root.img"
done
unmount
if [ -n "$FPID" ]; then
	fusermount3 -u "$H_DIR/fmnt" 2>/dev/null || umount -l "$H_DIR/fmnt"
	h_stop_pid "$FPID"
fi

# --- report ----------------------------------------------------------------
med() { awk -v c="$2" '{ print $c }' "$H_DIR/$1.runs" | b_median; }
LOCAL=$(med local 1)
# st NAME KEY: a figure from the kept status output
st() { awk -v k="$2" '$1 == k { print $2; exit }' "$H_DIR/$1.status" 2>/dev/null; }
# rd NAME COLUMN: the READ row of the per-procedure table (3 = p50, 4 = p90)
rd() { awk -v c="$2" '$1 == "READ" { print $c; exit }' "$H_DIR/$1.status" 2>/dev/null; }
# The proxy's read path for files with metadata (.gvmeta) does not count
# local reads nor time READs (yet): say so rather than print zeros.
proxy_reads() {
	[ -f "$H_DIR/$1.status" ] || { echo -; return; }
	if [ "$(($(st "$1" cache_reads_local) + $(st "$1" cache_fetches)))" = 0 ] &&
		[ "$(rd "$1" 2)" -gt 0 ]; then
		echo "not counted"
	else
		echo "$(st "$1" cache_reads_local) / $(st "$1" cache_fetches)"
	fi
}
proxy_lat() {
	[ -f "$H_DIR/$1.status" ] || { echo -; return; }
	if [ "$(rd "$1" 4)" = 0 ]; then echo "not timed"; else echo "$(rd "$1" 3) / $(rd "$1" 4)"; fi
}
row() { # row LABEL NAME
	local s w n
	s=$(med "$2" 1) w=$(med "$2" 2) n=$(wc -l <"$H_DIR/$2.runs")
	printf '| %s | %s | %.2f | %.2f× | %.1f | %s | %s | %s | %s |\n' "$1" "$n" "$s" \
		"$(awk -v a="$s" -v b="$LOCAL" 'BEGIN { print a / b }')" \
		"$(awk -v b="$w" 'BEGIN { print b / 1048576 }')" \
		"$(proxy_reads "$2")" "$(proxy_lat "$2")" \
		"$( [ -f "$H_DIR/$2.replay" ] && b_median <"$H_DIR/$2.replay" || echo -)" \
		"$(val "$H_DIR/$2-1.out" GUEST_BYTES)"
}
mkdir -p "$OUT"
{
	echo "# VM boot from gridvfs over the emulated WAN"
	echo
	printf -- '- machine: %s cores, %s, %s GiB RAM; %s; QEMU %s, TCG\n' "$(nproc)" \
		"$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
		"$(awk '/MemTotal/ { printf "%d", $2 / 1048576 + 0.5 }' /proc/meminfo)" \
		"$(uname -sr)" "$(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')"
	printf -- '- load average: %s at the start, %s at the end\n' "$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf -- '- date: %s; gridvfs %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')"
	printf -- '- WAN: wanrelay, %s ms RTT, %s Mbit/s; chain: ganesha, server-role gridvfsd (mTLS), WAN, client-role gridvfsd (LMDB cache, 64 KiB blocks, consistency=immutable) started by mount.gridvfs (FUSE); QEMU cache=none\n' \
		"$((2 * B_DELAY_MS))" "$B_RATE_MBIT"
	echo "- boot: tests/vm guest (SeaBIOS, kernel, init reads and checksums ~62 MiB of its root disk, powers off); median of the runs shown"
	echo
	echo "| boot | runs | seconds | vs local | WAN MiB | proxy READs local / fetched | proxy READ p50 / p90 µs | I/O replay s | guest bytes |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	row "local file" local
	[ -f "$H_DIR/fuse.runs" ] && row "local file through FUSE (fuse-imgfs)" fuse
	row "gridvfs cold" cold
	if [ -f "$H_DIR/learned.runs" ]; then
		row "gridvfs cold on a second node, learned profile" learned
	else
		echo "| gridvfs cold on a second node, learned profile | skipped: no learned profile | | | | | | | |"
	fi
	if [ -f "$H_DIR/prefetch.runs" ]; then
		row "gridvfs cold, prefetch profile" prefetch
	else
		echo "| gridvfs cold, prefetch profile | skipped: prefetch not built yet | | | | | | | |"
	fi
	row "gridvfs warm" warm
	echo
	echo "Goal (issue 12): warm within 1.2× of local; cold with prefetch well under cold."
	echo "Goal (issue 19): cold on a second node with the profile the store learned from one boot elsewhere within 1.3× of local."
	echo
	echo "- local, FUSE and warm boots alternate (one of each per round) so that other load on the machine hits them alike."
	echo "- proxy columns: the node's client-role gridvfsd (gridvfs status) over the whole mount: cache_reads_local / cache_fetches, and READ latency percentiles."
	echo "- learned profile: the server role noted the cold boot's first touches (64 KiB blocks) and published them in root.img.gvmeta, profile only (no hashes: no zero map), $(awk '$1 == "profile:" { print $2 }' "$H_DIR/learned.meta" 2>/dev/null) blocks; the scan + attach for the hand-made row ran after it."
	echo "- I/O replay: the cold boot's $(wc -l <"$H_DIR/boot.trace") reads (boot.sh --trace) replayed one at a time with O_DIRECT, without QEMU: the I/O path's own time, median of $RUNS."
} >"$OUT/vmboot.md"
for n in cold learned prefetch warm; do
	[ -f "$H_DIR/$n.status" ] && cp "$H_DIR/$n.status" "$OUT/vmboot-$n.status.txt"
done
echo
cat "$OUT/vmboot.md"
say "written to $OUT/vmboot.md"
h_pass
