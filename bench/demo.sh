#!/bin/bash
# bench/demo.sh: the README's first command. On a fresh Debian 12 machine,
# as root: installs the packages, builds gridvfs if needed, makes a VM image
# store (golden image + two clones), serves it with nfs-ganesha behind an
# emulated WAN (20 ms RTT, 100 Mbit/s), "boots" the images through a
# client-role gridvfsd by replaying a boot read trace, and prints time and
# WAN bytes against reading the same straight over the WAN. Parts of gridvfs
# that have not landed are skipped with a line saying so. Everything it
# starts is cleaned up on exit, Ctrl-C or failure (tests/lib/harness.sh).
#
# env: DEMO_SIZE_MB (1024)  DEMO_DEPTH (4 reads in flight)  KEEP=1
# See docs/demo.md.
set -u

top_srcdir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
top_builddir=$top_srcdir
export top_srcdir top_builddir
SIZE_MB=${DEMO_SIZE_MB:-1024}
DEPTH=${DEMO_DEPTH:-4}
T0=$(date +%s)
say() { printf '[%3ds] %s\n' $(($(date +%s) - T0)) "$*"; }
note() { printf '       %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

cd "$top_srcdir" || exit 1
echo "gridvfs demo: boot VM images from a remote image store over a WAN"
echo

# --- 1. packages and build (before the harness: nothing to clean yet) ------
say "1/6 packages (tests/tools/install-deps.sh)"
bash tests/tools/install-deps.sh || die "installing packages failed (run as root)"
say "2/6 build"
BUILD_LOG=${TMPDIR:-/tmp}/gridvfs-demo-build.log
{
	if [ ! -f Makefile ]; then
		autoreconf -fi && ./configure
	fi &&
		make -j"$(nproc)" all tests/tools/wanrelay tests/vm/fuse-imgfs
} >"$BUILD_LOG" 2>&1 || { tail -n 20 "$BUILD_LOG" >&2; die "build failed (log: $BUILD_LOG)"; }
note "ok (log: $BUILD_LOG)"

# shellcheck source=lib.sh
. "$top_srcdir/bench/lib.sh"
h_init demo
NFSRAND=$(b_bin nfsrand) || h_fail "bench/nfsrand not built (libnfs-dev missing?)"

# --- 2. the image store --------------------------------------------------
STORE=$H_DIR/export
say "3/6 image store: golden.img ($SIZE_MB MiB) and two clones in $STORE"
bash bench/mkimage.sh "$STORE" "$SIZE_MB" 1 >"$H_DIR/mkimage.log" 2>&1 ||
	{ cat "$H_DIR/mkimage.log"; h_fail "mkimage.sh failed"; }
read -r _ isize inz izero _ < <(grep '^golden.img' "$STORE/MANIFEST")
read -r _ _ _ _ cdiff < <(grep '^clone1.img' "$STORE/MANIFEST")
TRACE=$STORE/boot.trace
read -r treads tbytes < <(awk '!/^#/ { n++; s += $2 } END { print n, s }' "$TRACE")
note "golden.img: GPT, /boot + root ext4 ($((inz / 1048576)) MiB of data), swap; $izero % zeros"
note "clone1.img, clone2.img: each differs from golden in $cdiff blocks of 4 KiB ($(awk -v d="$cdiff" -v s="$isize" 'BEGIN { printf "%.1f", d * 409600 / s }') % of the image)"
note "boot trace: $treads reads, $((tbytes / 1048576)) MiB (partition table, kernel + initrd, scattered root fs reads)"

# --- 3. services ---------------------------------------------------------
say "4/6 services"
h_ganesha "$STORE"
note "nfs-ganesha serving $STORE (nfs port $H_NFS_PORT, mount port $H_MNT_PORT)"
b_relay WAN_NFS "$H_NFS_PORT"
b_relay WAN_MNT "$H_MNT_PORT"
note "WAN emulator (wanrelay): $((2 * B_DELAY_MS)) ms RTT, $B_RATE_MBIT Mbit/s, in front of ganesha"
CACHE_ARGS=()
HAVE_CACHE=0
if b_has_opt --cache-dir; then
	mkdir -p "$H_DIR/cache"
	CACHE_ARGS=(--cache-dir "$H_DIR/cache")
	HAVE_CACHE=1
else
	note "skipped: LMDB block cache: not built yet (so warm = cold below)"
fi
CTLS=("$WAN_NFS_CTL" "$WAN_MNT_CTL")
if b_has_opt --tls-cert; then
	# The store's side: a server-role gridvfsd with mTLS from a demo CA and
	# a grid-mapfile. The demo runs as root, so the node's DN maps to root.
	CA=$H_DIR/ca
	{ "$top_builddir/gridvfs" ca init "$CA" && "$top_builddir/gridvfs" ca issue "$CA" --name store \
		--server 127.0.0.1 && "$top_builddir/gridvfs" ca issue "$CA" --name node1; } \
		>"$H_DIR/ca.log" 2>&1 || h_fail "gridvfs ca failed: $(tail -n 2 "$H_DIR/ca.log")"
	grep '^"' "$H_DIR/ca.log" | grep node1 | sed 's/ACCOUNT$/root/' >"$H_DIR/grid-mapfile"
	b_server PX_S "$H_NFS_PORT" "$H_MNT_PORT" --tls require --tls-cert "$CA/store.crt" \
		--tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" \
		--squash none
	note "server-role gridvfsd on port $PX_S: mTLS (demo CA), grid-mapfile $(cut -d'"' -f2 "$H_DIR/grid-mapfile") -> root"
	b_relay WAN_S "$PX_S"
	CTLS+=("$WAN_S_CTL")
	b_proxy PX "$WAN_S" "$WAN_S" --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" \
		--tls-ca "$CA/ca.crt" --tls-server-name 127.0.0.1 "${CACHE_ARGS[@]}"
	note "client-role gridvfsd on port $PX: WAN emulator -> server-role gridvfsd over TLS 1.3${CACHE_ARGS[*]:+, ${CACHE_ARGS[*]}}"
	UP_ARGS=("$WAN_S" "$WAN_S" --tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key"
		--tls-ca "$CA/ca.crt" --tls-server-name 127.0.0.1)
else
	note "skipped: server-role gridvfsd with mTLS, demo CA and grid-mapfile: not built yet (the client proxy talks to ganesha over the WAN in the clear)"
	b_proxy PX "$WAN_NFS" "$WAN_MNT" "${CACHE_ARGS[@]}"
	UP_ARGS=("$WAN_NFS" "$WAN_MNT")
	note "client-role gridvfsd on port $PX, upstream through the WAN${CACHE_ARGS[*]:+, ${CACHE_ARGS[*]}}"
fi
HAVE_META=0
if "$top_builddir/gridvfs" --help 2>&1 | grep -q 'meta scan'; then
	HAVE_META=1
	# IMAGE.gvmeta beside each image: zero map and block hashes, and the
	# boot trace as its prefetch profile; gridvfsd finds them by name.
	for img in golden clone1 clone2; do
		{ "$top_builddir/gridvfs" meta scan "$STORE/$img.img" --quiet &&
			"$top_builddir/gridvfs" meta attach "$STORE/$img.img.gvmeta" "$TRACE"; } \
			>>"$H_DIR/meta.log" 2>&1 || h_fail "gridvfs meta failed: $(tail -n 2 "$H_DIR/meta.log")"
	done
	note "gridvfs meta scan + attach: zero maps, block hashes, boot.trace as prefetch profile; golden.img: $("$top_builddir/gridvfs" meta show "$STORE/golden.img.gvmeta" 2>&1 | awk '/^zero_blocks:/ { $1 = ""; z = $0 } /^unique:/ { u = $2 } END { printf "zero blocks%s, %s unique", z, u }')"
else
	note "skipped: VM image metadata (zero maps, content hashes, prefetch): not built yet"
fi
if [ -x "$top_builddir/mount.gridvfs" ] || [ -x "$top_builddir/mount-helper/mount.gridvfs" ]; then
	note "skipped: mount.gridvfs: built, but the demo reads with libnfs (as QEMU's nfs:// driver does)"
else
	note "skipped: mount.gridvfs: not built yet; the demo reads with libnfs (as QEMU's nfs:// driver does)"
fi

# --- 4. boots --------------------------------------------------------------
ROWS=$H_DIR/rows.tsv
: >"$ROWS"
# wan_down: bytes store -> node over all WAN relays so far. (READ reply
# counts would miss the TLS link: the relay sees only ciphertext there.)
wan_down() {
	local c sum=0 v
	for c in "${CTLS[@]}"; do
		v=$("$(b_bin wanrelay)" --ctl "$c" stats | awk '$1 == "bytes_down" { print $2 }')
		sum=$((sum + v))
	done
	echo "$sum"
}
# boot ROLE REF LABEL IMAGE NFSPORT MNTPORT WAN(0/1) NFSRAND-ARGS...:
# replay on IMAGE via those ports; record time, WAN bytes (both ways),
# bytes store -> node over the WAN, bytes the client got, and the data hash.
# Rows with the same REF are compared with that REF's "direct" row.
boot() {
	local role=$1 ref=$2 label=$3 img=$4 nfs=$5 mnt=$6 wan=$7 b0 r0 out b1 r1
	shift 7
	b0=$(b_wan_bytes "${CTLS[@]}")
	r0=$(wan_down)
	out=$("$NFSRAND" -d "$DEPTH" "$@" "$(b_url "$nfs" "$mnt" "/$img")" 2>>"$H_DIR/tools.log") ||
		h_fail "$label $img failed: $(tail -n 2 "$H_DIR/tools.log")"
	b1=$(b_wan_bytes "${CTLS[@]}")
	r1=$(wan_down)
	[ "$wan" = 1 ] || { b1=$b0 r1=$r0; }
	# fields of nfsrand's line: 4 bytes, 12 hash, 14 total_secs
	read -r cbytes hash secs < <(awk '{ print $4, $12, $14 }' <<<"$out")
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$role" "$ref" "$label" "$img" \
		"$secs" $((b1 - b0)) $((r1 - r0)) "$cbytes" "$hash" >>"$ROWS"
	note "$(printf '%-36s %-10s %7.2f s  %6.1f MiB over the WAN' "$label" "$img" "$secs" \
		"$(awk -v b=$((b1 - b0)) 'BEGIN { print b / 1048576 }')")"
}

say "5/6 boots: replay the boot trace, $DEPTH reads in flight"
boot local golden "local: ganesha on loopback, no WAN" golden.img "$H_NFS_PORT" "$H_MNT_PORT" 0 -t "$TRACE"
boot direct golden "direct over WAN, no gridvfs" golden.img "$WAN_NFS" "$WAN_MNT" 1 -t "$TRACE"
boot gridvfs golden "gridvfs, cold" golden.img "$PX" "$PX" 1 -t "$TRACE"
boot gridvfs golden "gridvfs, warm" golden.img "$PX" "$PX" 1 -t "$TRACE"
boot direct clone "direct over WAN, no gridvfs" clone1.img "$WAN_NFS" "$WAN_MNT" 1 -t "$TRACE"
boot gridvfs clone "gridvfs, clone after golden" clone1.img "$PX" "$PX" 1 -t "$TRACE"
boot direct write "write 16 MiB, direct over WAN" clone2.img "$WAN_NFS" "$WAN_MNT" 1 -w -b 65536 -n 256 -s 7
boot gridvfs write "write 16 MiB, gridvfs write-through" clone2.img "$PX" "$PX" 1 -w -b 65536 -n 256 -s 8
if b_has_opt --write-policy && [ "$HAVE_CACHE" = 1 ]; then
	# A second node proxy with write-back: WRITEs are answered once durable
	# in its LMDB; the replay's final COMMIT waits until the store has it.
	mkdir -p "$H_DIR/cache-wb"
	b_proxy PXWB "${UP_ARGS[@]}" --cache-dir "$H_DIR/cache-wb" --write-policy back
	boot gridvfs write "write 16 MiB, gridvfs write-back" clone2.img "$PXWB" "$PXWB" 1 -w -b 65536 -n 256 -s 9
else
	note "skipped: write-back: not built yet"
fi
if [ "${DEMO_VM:-1}" = 0 ]; then
	note "skipped: the real QEMU boot (DEMO_VM=0)"
else
	VM_AFTER=1 # runs after this table: bench/vmboot.sh has its own store
fi

# --- 5. the table ----------------------------------------------------------
say "6/6 results"
field_of() { awk -F'\t' -v r="$1" -v f="$2" '$1 == "direct" && $2 == r { print $f }' "$ROWS"; }
line() { printf '| %-36s | %-10s | %7s | %7s | %9s | %-15s | %-18s | %-9s |\n' "$@"; }
echo
line run image "time s" "WAN MiB" "speed-up" "cache hit ratio" "saved: zero/dedup" data
line "$(printf -- '-%.0s' {1..36})" ---------- ------: ------: --------: --------------- \
	------------------ ---------
mismatch=0
while IFS=$'\t' read -r role ref label img secs wan wdown cbytes hash; do
	vs="-" hit="-" saved="-" data="-"
	if [ "$role" = gridvfs ]; then
		vs=$(awk -v a="$secs" -v b="$(field_of "$ref" 5)" 'BEGIN { printf "%.2f×", b / a }')
		if [ "$ref" = write ]; then
			hit="-"
		elif [ "$HAVE_CACHE" = 1 ]; then
			# The share of the direct run's WAN traffic that did not cross.
			hit=$(awk -v w="$wdown" -v d="$(field_of "$ref" 7)" 'BEGIN { h = d > 0 ? 1 - w / d : 0; printf "%.0f %%", (h < 0 ? 0 : h) * 100 }')
		else
			hit="no cache yet"
		fi
		saved="not built yet"
		[ "$ref" = write ] && saved="-"
		[ "$HAVE_META" = 1 ] && [ "$ref" != write ] &&
			saved=$(awk -v w="$wdown" -v d="$(field_of "$ref" 7)" 'BEGIN { s = d - w; printf "%.1f MiB", (s < 0 ? 0 : s) / 1048576 }')
	fi
	if [ "$ref" != write ]; then
		if [ "$hash" = "$(field_of "$ref" 9)" ]; then data=identical; else data=DIFFERENT; mismatch=1; fi
	fi
	line "$label" "$img" "$(printf '%.2f' "$secs")" "$(awk -v b="$wan" 'BEGIN { printf "%.1f", b / 1048576 }')" \
		"$vs" "$hit" "$saved" "$data"
done <"$ROWS"
echo
echo "time: the whole replay (mount, open, $treads reads of $((tbytes / 1048576)) MiB; writes: 256 × 64 KiB + COMMIT)."
echo "speed-up: time of the same work straight over the WAN / this time (above 1× = faster than direct)."
echo "WAN MiB: bytes both ways through the emulated WAN (wanrelay counters)."
echo "data: the replay's checksum against the direct read of the same image."
[ "$HAVE_CACHE" = 1 ] || echo "The block cache has not landed yet: gridvfs forwards every read over the WAN, so warm = cold."
echo
[ "$mismatch" = 0 ] || h_fail "a replay through gridvfs returned different data than direct"
if [ "${VM_AFTER:-0}" = 1 ]; then
	# A real hypervisor: QEMU boots the test guest from a gridvfs FUSE
	# mount over the same kind of WAN: local file, cold, cold with a
	# boot-trace prefetch profile, warm (one run each).
	say "QEMU: booting a guest from a local file and from gridvfs (cold, cold + prefetch profile, warm)"
	if VMBOOT_RUNS=1 VMBOOT_OUT="$H_DIR/vm" top_srcdir="$top_srcdir" top_builddir="$top_builddir" \
		bash "$top_srcdir/bench/vmboot.sh" >"$H_DIR/vmboot.log" 2>&1; then
		echo
		sed -n '/^| boot/,/^$/p' "$H_DIR/vm/vmboot.md" | grep '^|' | cut -d'|' -f1-6 | sed 's/$/|/'
		echo
	else
		note "the QEMU boot did not complete: $(tail -n 1 "$H_DIR/vmboot.log")"
	fi
fi
say "done; cleaning up"
