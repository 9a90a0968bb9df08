#!/bin/bash
# bench/vmboot.sh: boot time and WAN bytes of the QEMU test guest
# (tests/vm) booted from a local file and from a gridvfs mount over the
# emulated WAN (20 ms RTT, 100 Mbit/s): cold, cold on a second node with
# the profile the server role learned from the first cold boot, cold with
# metadata but no profile (readahead + background fetch of the non-zero
# blocks), cold with a boot-trace prefetch profile, warm, and the grid
# scenarios below. Reports, never asserts. Prints a table and writes
# bench/results/vmboot.md (see docs/vm-boot.md, "Benchmark").
#
# Chain: ganesha <- server-role gridvfsd (mTLS, grid-mapfile) <- wanrelay
# <- client-role gridvfsd (LMDB cache) started by mount.gridvfs (FUSE).
# Issue 19 adds, behind the same WAN: a herd (N node client roles, each
# with its own cache, replaying the cold boot's trace at the same moment
# through one site client role), two real QEMU boots at once on two nodes
# (FUSE mounts) through a site, and qcow2 overlays on the gridvfs mount.
#
# Scenarios (functions sc_*; VMBOOT_ONLY picks some, in this order):
#   cold      gridvfs cold boot, traced (the trace feeds replay and herd;
#             it runs whenever warm, prefetch or herd is chosen)
#   learned   a second node's cold boot with the profile the server role
#             learned from the cold boot (needs cold)
#   noprofile cold with metadata (meta scan) but no profile: readahead and
#             the background fetch of the non-zero blocks (and, unless
#             VMBOOT_QUICK, each alone and neither)
#   herd      N = VMBOOT_HERD ("1 4 8") nodes replay the trace at once
#   qemu2     2 QEMU boots at once, two nodes' mounts, one site cache
#   qcow2     qcow2 overlays backed by root.img on a gridvfs mount: cold,
#             warm, and a second overlay on the same node
#   prefetch  cold with the trace as prefetch profile
#   warm      local / FUSE / gridvfs warm boots in turns, and I/O replays
#             (when not chosen, one local boot still runs as the baseline)
# env: VMBOOT_ONLY ("cold learned noprofile herd qemu2 qcow2 prefetch warm")
#      VMBOOT_RUNS (3: local and warm boots; cold ones run once)
#      VMBOOT_HERD ("1 4 8")  VMBOOT_NICE (10: QEMU's niceness)
#      VMBOOT_OUT (bench/results)  KEEP=1  GRIDVFS_VM_CACHE
#      VMBOOT_QUICK=1: skip the three rows that take readahead and the
#      background fetch apart
#      VMBOOT_GVOPTS: more mount.gridvfs -o options for every gridvfs mount
#      (e.g. background-share=100)
set -u

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=lib.sh
. "$top_srcdir/bench/lib.sh"

RUNS=${VMBOOT_RUNS:-3}
ONLY=" ${VMBOOT_ONLY:-cold learned noprofile herd qemu2 qcow2 prefetch warm} "
HERD=${VMBOOT_HERD:-1 4 8}
NICE=${VMBOOT_NICE:-10}
want() { case $ONLY in *" $1 "*) return 0 ;; esac; return 1; }
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
# Only "learned" wants a learning store: any other run without it would
# let the first boot's learned profile leak into the later rows (a
# VMBOOT_ONLY=noprofile run's "neither" row booted with a profile).
LEARN=(--learn-profiles no)
want learned && LEARN=(--learn-idle 5)
b_server SP "$H_NFS_PORT" "$H_MNT_PORT" --tls-cert "$CA/store.crt" \
	--tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" \
	"${LEARN[@]}" --log-level info
b_relay WAN "$SP"
SLOG=$H_DIR/gridvfsd-server.log # the server role's log (b_server)
say "store: ganesha $H_NFS_PORT <- server-role gridvfsd $SP (mTLS) <- WAN $WAN ($((2 * B_DELAY_MS)) ms RTT, $B_RATE_MBIT Mbit/s)"

MNT=$H_DIR/mnt
mkdir -p "$MNT"
MOUNTS=() # every FUSE mount made here, unmounted at exit
unmount() { # unmount [DIR]: DIR (default $MNT); keeps $?
	local rc=$? d=${1:-$MNT}
	if grep -qF " $d " /proc/self/mountinfo; then
		timeout 20 umount "$d" 2>/dev/null || umount -l "$d" 2>/dev/null
	fi
	return $rc
}
cleanup() { # keeps $? for the harness's teardown
	local rc=$? d
	for d in "${MOUNTS[@]}"; do unmount "$d"; done
	fusermount3 -u "$H_DIR/fmnt" 2>/dev/null
	(exit $rc)
	h__teardown
}
trap cleanup EXIT

# mount_at DIR UPSTREAM_PORT OPTS: mount.gridvfs (FUSE) of the store's
# export through 127.0.0.1:UPSTREAM_PORT on DIR.
mount_at() {
	mkdir -p "$1"
	timeout -k 5 60 "$MH" "127.0.0.1:$2:$H_EXPORT" "$1" -o "fuse,mountport=$2,$3" \
		>>"$H_DIR/mount.log" 2>&1 || h_fail "mount.gridvfs on $1 failed (see mount.log)"
	MOUNTS+=("$1")
}
# gv_mount CACHEDIR SOCK [OPTS]: mount the store over the WAN on $MNT (a
# node without a site: its client role holds the TLS certificate). OPTS:
# more -o options (e.g. gridvfsd's stream-readahead=off); VMBOOT_GVOPTS
# go to every gridvfs mount.
gv_mount() {
	mount_at "$MNT" "$WAN" "consistency=immutable,cache-dir=$1,control=$2${3:+,$3}${VMBOOT_GVOPTS:+,$VMBOOT_GVOPTS},tls-cert=$CA/node1.crt,tls-key=$CA/node1.key,tls-ca=$CA/ca.crt,log-level=warn"
}
# site_up NAME: a site-level client role (the only one holding the TLS
# certificate) over the WAN, fresh cache $H_DIR/NAME; sets SITE, SITE_PID.
site_up() {
	b_proxy SITE "$WAN" "$WAN" --cache-dir "$H_DIR/$1" --cache-size 1G \
		--consistency immutable --control "$H_DIR/$1.sock" \
		--tls-cert "$CA/node1.crt" --tls-key "$CA/node1.key" --tls-ca "$CA/ca.crt"
}

val() { sed -n "s/^$2=//p" "$1" | head -1; }
# boot NAME IMAGE [boot.sh args]: one boot (niced); appends "secs
# wan_bytes" to $H_DIR/NAME.runs.
boot() {
	local name=$1 img=$2 w0 w1 n
	shift 2
	n=1
	[ -f "$H_DIR/$name.runs" ] && n=$(($(wc -l <"$H_DIR/$name.runs") + 1))
	w0=$(b_wan_bytes "$WAN_CTL")
	nice -n "$NICE" "$VM/boot.sh" "$img" --timeout 300 --console "$H_DIR/$name-$n.console" "$@" \
		>"$H_DIR/$name-$n.out" 2>"$H_DIR/$name-$n.log" ||
		{ cat "$H_DIR/$name-$n.log"; h_fail "$name boot $n failed"; }
	w1=$(b_wan_bytes "$WAN_CTL")
	echo "$(val "$H_DIR/$name-$n.out" BOOT_SECS) $((w1 - w0))" >>"$H_DIR/$name.runs"
	say "  $name #$n: $(val "$H_DIR/$name-$n.out" BOOT_SECS) s, $((w1 - w0)) WAN bytes, guest read $(val "$H_DIR/$name-$n.out" GUEST_BYTES)"
}
# status NAME SOCK: keep a proxy's figures for the report
status() { "$GV" status --socket "$2" >"$H_DIR/$1.status" 2>&1; }
# gv_boot NAME [OPTS] [-- boot.sh args]: a fresh cache and mount (mount
# options OPTS), one boot of root.img on it as NAME, its proxy's figures.
gv_boot() {
	local name=$1 opts=${2:-}
	shift $(($# > 1 ? 2 : 1))
	[ "${1:-}" = -- ] && shift
	gv_mount "$H_DIR/cache-$name" "$H_DIR/$name.sock" "$opts"
	boot "$name" "$MNT/root.img" "$@"
	status "$name" "$H_DIR/$name.sock"
	unmount
}

# replay NAME FILE: the cold boot's reads (boot.sh --trace), one at a time
# with O_DIRECT as QEMU issues them, without the guest: the I/O path's own
# time (FUSE, proxy, cache), apart from TCG's CPU time. Appends seconds to
# $H_DIR/NAME.replay.
replay() {
	python3 - "$H_DIR/boot.trace" "$2" >>"$H_DIR/$1.replay" <<-'PY'
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
	PY
}

# meta_scan: root.img's metadata (zero map, hashes) without a profile, as
# a store would publish a golden image; the herd and site runs use it.
meta_scan() {
	# A scan keeps a profile already in the file: the one the store
	# learned from the cold boot must not leak into the no-profile rows.
	rm -f "$H_EXPORT/root.img.gvmeta"
	"$GV" meta scan "$H_EXPORT/root.img" --quiet >>"$H_DIR/meta.log" 2>&1 ||
		{ cat "$H_DIR/meta.log"; h_fail "gridvfs meta scan failed"; }
}

# --- the scenarios ---------------------------------------------------------
sc_cold() {
	say "gridvfs cold (fresh cache; the boot's reads are traced)"
	gv_boot cold "" -- --trace "$H_DIR/boot.trace"
}

# Node A's cold boot above went through the server role with no metadata:
# the store learns its order and publishes root.img.gvmeta (a profile only,
# no hashes).  "Node B" (a fresh cache and mount) boots with it.
sc_learned() {
	local a b
	say "gridvfs cold on a second node, learned profile (published by the server role after the cold boot; fresh cache)"
	# The boot may pause longer than --learn-idle (TCG boots the kernel,
	# which is not on root.img): the store publishes at each pause and
	# updates the file as the boot goes on.  Wait for the last publish
	# after the boot's end.
	sleep 7
	for _ in $(seq 120); do
		a=$(grep -c "profile of root.img: boot over" "$SLOG")
		b=$(grep -c "profile of root.img \(learned\|not published\)" "$SLOG")
		[ "$a" -gt 0 ] && [ "$a" = "$b" ] && break
		sleep 0.5
	done
	if ! grep -q "profile of root.img learned" "$SLOG"; then
		say "skipped: the server role published no learned profile (see gridvfsd-server.log)"
		return
	fi
	"$GV" meta show "$H_EXPORT/root.img.gvmeta" >"$H_DIR/learned.meta" 2>&1
	say "  $(grep -E '^(profile|origin|trust):' "$H_DIR/learned.meta" | tr -s ' ' | paste -sd';')"
	gv_boot learned
}

# have_meta: is 'gridvfs meta' built?  Says so when not (the row is skipped).
have_meta() {
	"$GV" meta --help >/dev/null 2>&1 && return 0
	say "skipped: no 'gridvfs meta'"
	return 1
}

# Metadata (meta scan: zero map, hashes) but no profile, the first boot a
# grid sees: readahead and the background fetch of the non-zero blocks;
# unless VMBOOT_QUICK, each mechanism alone and neither, to show where the
# gain comes from.
sc_noprofile() {
	have_meta || return
	say "gridvfs cold, metadata without a profile (meta scan; readahead + background fetch; fresh cache)"
	meta_scan
	gv_boot noprofile
	[ -n "${VMBOOT_QUICK:-}" ] && return
	say "the same with readahead only, background fetch only, neither (fresh caches)"
	gv_boot raonly background-fetch=off
	gv_boot bgonly stream-readahead=off
	gv_boot metaonly stream-readahead=off,background-fetch=off
}

sc_prefetch() {
	have_meta || return
	say "gridvfs cold with prefetch profile (meta scan + attach of the cold boot's trace; fresh cache)"
	meta_scan
	"$GV" meta attach "$H_EXPORT/root.img.gvmeta" "$H_DIR/boot.trace" >>"$H_DIR/meta.log" 2>&1 ||
		{ cat "$H_DIR/meta.log"; h_fail "gridvfs meta attach failed"; }
	gv_boot prefetch
}

# Local, FUSE-only and warm boots take turns, so that the load of the
# machine (TCG is CPU-bound; other work shares the 2 cores) hits each alike.
sc_warm() {
	local fpid=
	if [ -x "$FUSEFS" ]; then
		mkdir -p "$H_DIR/fmnt"
		"$FUSEFS" "$H_EXPORT/root.img" "$H_DIR/fmnt" -f >"$H_DIR/fuse-imgfs.log" 2>&1 &
		fpid=$!
		H_PIDS+=("$fpid")
		for _ in $(seq 50); do [ -f "$H_DIR/fmnt/disk.img" ] && break; sleep 0.1; done
		[ -f "$H_DIR/fmnt/disk.img" ] || h_fail "fuse-imgfs did not mount"
	fi
	say "local file, local file through FUSE (tests/vm/fuse-imgfs), gridvfs warm (the cold boot's cache, new mount): $RUNS rounds"
	gv_mount "$H_DIR/cache-cold" "$H_DIR/warm.sock"
	for _ in $(seq "$RUNS"); do
		boot local "$H_EXPORT/root.img"
		[ -n "$fpid" ] && boot fuse "$H_DIR/fmnt/disk.img"
		boot warm "$MNT/root.img"
	done
	status warm "$H_DIR/warm.sock"
	for _ in $(seq "$RUNS"); do
		replay local "$H_EXPORT/root.img"
		[ -n "$fpid" ] && replay fuse "$H_DIR/fmnt/disk.img"
		replay warm "$MNT/root.img"
	done
	unmount
	if [ -n "$fpid" ]; then
		fusermount3 -u "$H_DIR/fmnt" 2>/dev/null || umount -l "$H_DIR/fmnt"
		h_stop_pid "$fpid"
	fi
}

# herd N: a fresh site and N fresh nodes (client roles, each its own
# cache, no FUSE: tests/integration/meta_replay.py speaks NFS to each, one
# READ at a time, checking every byte); all N replay the cold boot's trace
# starting at the same instant. Appends "N slowest fastest wan_bytes
# shared_fetches" to $H_DIR/herd.rows.
# busy_jiffies: the machine's CPU time so far, all cores (USER_HZ ticks).
busy_jiffies() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
herd() {
	local n=$1 i at w0 w1 c0 c1 nodes=() pids=() npids=()
	site_up "herd$n-site"
	for i in $(seq "$n"); do
		b_proxy NODE "$SITE" "$SITE" --cache-dir "$H_DIR/herd$n-n$i" --cache-size 1G \
			--consistency immutable
		nodes+=("$NODE") npids+=("$NODE_PID")
	done
	w0=$(b_wan_bytes "$WAN_CTL")
	at=$(python3 -c 'import time; print(time.time() + 2 + 0.3 * '"$n"')')
	c0=$(busy_jiffies)
	for i in $(seq "$n"); do
		REPLAY_AT=$at PYTHONPATH="$top_srcdir/tests/tools" python3 \
			"$top_srcdir/tests/integration/meta_replay.py" 127.0.0.1 "${nodes[$((i - 1))]}" \
			"$H_EXPORT" /root.img "$H_EXPORT/root.img" "$H_DIR/boot.trace" \
			>"$H_DIR/herd$n-$i.out" 2>&1 &
		pids+=($!)
	done
	for i in $(seq "$n"); do
		wait "${pids[$((i - 1))]}" ||
			h_fail "herd of $n: node $i's replay failed: $(tail -n 3 "$H_DIR/herd$n-$i.out")"
	done
	w1=$(b_wan_bytes "$WAN_CTL")
	c1=$(busy_jiffies)
	status "herd$n-site" "$H_DIR/herd$n-site.sock"
	for i in "${npids[@]}"; do b_proxy_stop "$i"; done
	b_proxy_stop "$SITE_PID"
	echo "$n $(awk '{ print $6 }' "$H_DIR"/herd"$n"-*.out | sort -g | tail -n 1)" \
		"$(awk '{ print $6 }' "$H_DIR"/herd"$n"-*.out | sort -g | head -n 1) $((w1 - w0))" \
		"$(awk '$1 == "cache_fetches_shared" { print $2 }' "$H_DIR/herd$n-site.status")" \
		"$(awk -v j=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", j / hz }')" \
		>>"$H_DIR/herd.rows"
	say "  herd of $n: $(tail -n 1 "$H_DIR/herd.rows") (N slowest_s fastest_s WAN_bytes shared)"
}

sc_herd() {
	local n
	say "herd: N nodes replay the cold boot's trace at once through one site cache (N = $HERD)"
	[ -f "$H_EXPORT/root.img.gvmeta" ] || meta_scan
	# what the herd is measured against: the image's non-zero data, and
	# the non-zero part of the 64 KiB blocks the trace touches
	python3 - "$H_EXPORT/root.img" "$H_DIR/boot.trace" >"$H_DIR/herd.data" <<-'PY'
		import sys
		img = open(sys.argv[1], "rb")
		nz = set()
		b = 0
		while True:
		    d = img.read(1 << 16)
		    if not d:
		        break
		    if d.count(0) != len(d):
		        nz.add(b)
		    b += 1
		t = set()
		for l in open(sys.argv[2]):
		    if l.strip():
		        o, n = map(int, l.split()[:2])
		        t.update(range(o >> 16, ((o + n - 1) >> 16) + 1))
		print(len(nz) << 16, len(nz & t) << 16)
	PY
	for n in $HERD; do herd "$n"; done
}

# Two real QEMU boots at once, on two nodes (a FUSE mount each, each its
# own cache) behind one site cache.
sc_qemu2() {
	local i pids=() w0 w1
	say "2 QEMU boots at once on two nodes through one site cache (fresh caches)"
	[ -f "$H_EXPORT/root.img.gvmeta" ] || meta_scan
	site_up q2-site
	for i in 1 2; do
		mount_at "$H_DIR/q2m$i" "$SITE" "consistency=immutable,cache-dir=$H_DIR/q2-n$i,control=$H_DIR/q2-n$i.sock,log-level=warn"
	done
	w0=$(b_wan_bytes "$WAN_CTL")
	for i in 1 2; do
		nice -n "$NICE" "$VM/boot.sh" "$H_DIR/q2m$i/root.img" --timeout 400 \
			--console "$H_DIR/q2-$i.console" >"$H_DIR/q2-$i.out" 2>"$H_DIR/q2-$i.log" &
		pids+=($!)
	done
	for i in 1 2; do
		wait "${pids[$((i - 1))]}" || { cat "$H_DIR/q2-$i.log"; h_fail "QEMU boot $i of 2 failed"; }
	done
	w1=$(b_wan_bytes "$WAN_CTL")
	echo $((w1 - w0)) >"$H_DIR/q2.wan"
	status q2-site "$H_DIR/q2-site.sock"
	for i in 1 2; do unmount "$H_DIR/q2m$i"; done
	b_proxy_stop "$SITE_PID"
	say "  2 at once: $(val "$H_DIR/q2-1.out" BOOT_SECS) s and $(val "$H_DIR/q2-2.out" BOOT_SECS) s, $((w1 - w0)) WAN bytes"
}

# The libvirt/OpenStack pattern: small local qcow2 overlays whose backing
# file is the golden raw image on a gridvfs mount (consistency=immutable).
sc_qcow2() {
	local o
	say "qcow2 overlays on gridvfs: ov1 cold (fresh cache), ov1 warm, ov2 (a second overlay, same node)"
	gv_mount "$H_DIR/cache-qcow2" "$H_DIR/qcow2.sock"
	for o in ov1 ov2; do
		qemu-img create -q -f qcow2 -b "$MNT/root.img" -F raw "$H_DIR/$o.qcow2" \
			>>"$H_DIR/qemu-img.log" 2>&1 || h_fail "qemu-img create $o failed"
	done
	boot qcow2-cold "$H_DIR/ov1.qcow2" --format qcow2
	boot qcow2-warm "$H_DIR/ov1.qcow2" --format qcow2
	boot qcow2-ov2 "$H_DIR/ov2.qcow2" --format qcow2
	status qcow2 "$H_DIR/qcow2.sock"
	unmount
}

want cold || want warm || want prefetch || want herd || want learned && sc_cold
want learned && sc_learned
# From here on the store must not learn: the scenarios below measure boots
# without a profile (or with a hand-made one), and a profile the store
# learned from one of them would reach the next (a fresh `meta scan` has
# no boots recorded, so the learner takes it up again, as it should in a
# grid).  A second server role without learning, behind its own relay.
if want learned; then
	# Stopped first: after node B's boot it may still update the file
	# (a boot paused over --learn-idle), which would put a profile back
	# after the scans below.
	b_proxy_stop "$SP_PID"
	b_server SPN "$H_NFS_PORT" "$H_MNT_PORT" --tls-cert "$CA/store.crt" \
		--tls-key "$CA/store.key" --tls-ca "$CA/ca.crt" \
		--grid-mapfile "$H_DIR/grid-mapfile" --learn-profiles no
	b_relay WANN "$SPN"
	WAN=$WANN WAN_CTL=$WANN_CTL
	say "store for the remaining scenarios: server-role gridvfsd $SPN (--learn-profiles no) <- WAN $WAN"
fi
want noprofile && sc_noprofile
want herd && sc_herd
want qemu2 && sc_qemu2
want qcow2 && sc_qcow2
want prefetch && sc_prefetch
if want warm; then
	sc_warm
elif want qemu2 || want qcow2 || want noprofile; then
	say "local file (the baseline of this run)"
	boot local "$H_EXPORT/root.img"
fi

# --- report ----------------------------------------------------------------
med() { awk -v c="$2" '{ print $c }' "$H_DIR/$1.runs" | b_median; }
LOCAL=$( [ -f "$H_DIR/local.runs" ] && med local 1 || echo nan)
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
row() { # row LABEL NAME [STATUS]: nothing if NAME did not run
	local s w n
	[ -f "$H_DIR/$2.runs" ] || return 0
	s=$(med "$2" 1) w=$(med "$2" 2) n=$(wc -l <"$H_DIR/$2.runs")
	printf '| %s | %s | %.2f | %.2f× | %.1f | %s | %s | %s | %s |\n' "$1" "$n" "$s" \
		"$(awk -v a="$s" -v b="$LOCAL" 'BEGIN { print a / b }')" \
		"$(awk -v b="$w" 'BEGIN { print b / 1048576 }')" \
		"$(proxy_reads "${3:-$2}")" "$(proxy_lat "${3:-$2}")" \
		"$( [ -f "$H_DIR/$2.replay" ] && b_median <"$H_DIR/$2.replay" || echo -)" \
		"$(val "$H_DIR/$2-1.out" GUEST_BYTES)"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
# The herd rows: slowest node against the herd of one (a single node's
# cold replay through the same site), WAN bytes against the image's
# non-zero data.
herd_report() {
	local one nz tz n slow fast wan shared cpu
	[ -f "$H_DIR/herd.rows" ] || return 0
	read -r nz tz <"$H_DIR/herd.data"
	one=$(awk '$1 == 1 { print $2; exit }' "$H_DIR/herd.rows")
	echo
	echo "### Herd: N nodes replay the cold boot at once through one site cache"
	echo
	echo "| nodes | slowest node s | fastest s | slowest vs 1 node | WAN MiB | WAN / image non-zero data | site fetches shared | machine CPU s | cores busy |"
	echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	while read -r n slow fast wan shared cpu; do
		printf '| %s | %.2f | %.2f | %s | %s | %.2f× | %s | %s | %s |\n' "$n" "$slow" "$fast" \
			"$( [ -n "$one" ] && awk -v a="$slow" -v b="$one" 'BEGIN { printf "%.2f×", a / b }' || echo -)" \
			"$(mib "$wan")" "$(awk -v a="$wan" -v b="$nz" 'BEGIN { print a / b }')" "${shared:-?}" \
			"${cpu:-?}" "$(awk -v c="${cpu:-0}" -v s="$slow" 'BEGIN { printf "%.2f", c / s }')"
	done <"$H_DIR/herd.rows"
	echo
	echo "Goal (issue 19): a herd of 8: WAN bytes ≤ 1.1× one image's non-zero data ($(mib "$nz") MiB; the trace touches $(mib "$tz") MiB of it), slowest node ≤ 2× a single node's cold replay."
	echo
	echo "- each node: a client-role gridvfsd with its own fresh cache, its upstream the site (a client-role gridvfsd with a fresh cache, the only one on the WAN, mTLS); the image has its metadata (zero map, hashes; no profile)."
	echo "- each node's reader: tests/integration/meta_replay.py, the cold boot's $(wc -l <"$H_DIR/boot.trace") reads one at a time over NFS (no FUSE, no QEMU), every byte checked; all start at the same instant."
	echo "- machine CPU s: all processes' CPU time (/proc/stat, user+nice+system+irq+softirq+steal) from just before the replays are started until the last ends (includes their ~2 s wait for the common start); cores busy = that / the slowest node's seconds (this machine has $(nproc))."
}
qemu2_report() {
	[ -f "$H_DIR/q2.wan" ] || return 0
	echo
	echo "### Two QEMU boots at once on two nodes through one site cache"
	echo
	local s cold
	cold=$( [ -f "$H_DIR/cold.runs" ] && med cold 1 || echo nan)
	echo "| boot | seconds | vs local | vs gridvfs cold row (one node, no metadata) | guest bytes |"
	echo "|---|---:|---:|---:|---:|"
	for i in 1 2; do
		s=$(val "$H_DIR/q2-$i.out" BOOT_SECS)
		printf '| node %s | %.2f | %.2f× | %.2f× | %s |\n' "$i" "$s" \
			"$(awk -v a="$s" -v b="$LOCAL" 'BEGIN { print a / b }')" \
			"$(awk -v a="$s" -v b="$cold" 'BEGIN { print a / b }')" \
			"$(val "$H_DIR/q2-$i.out" GUEST_BYTES)"
	done
	echo
	echo "- WAN: $(mib "$(cat "$H_DIR/q2.wan")") MiB for both boots; site fetches shared: $(awk '$1 == "cache_fetches_shared" { print $2 }' "$H_DIR/q2-site.status"); fresh caches (site and both nodes); each node a mount.gridvfs FUSE mount; local = the local-file boot(s) of this run; both QEMUs share the 2 cores, so each boot's CPU time doubles against a lone boot."
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
	row "local file through FUSE (fuse-imgfs)" fuse
	row "gridvfs cold" cold
	if [ -f "$H_DIR/learned.runs" ]; then
		row "gridvfs cold on a second node, learned profile" learned
	elif want learned; then
		echo "| gridvfs cold on a second node, learned profile | skipped: no learned profile | | | | | | | |"
	fi
	row "gridvfs cold, no profile (readahead + zero-map fetch)" noprofile
	row "gridvfs cold, no profile, readahead only" raonly
	row "gridvfs cold, no profile, zero-map fetch only" bgonly
	row "gridvfs cold, no profile, neither (metadata: zeros, exact blocks)" metaonly
	if want prefetch && ! [ -f "$H_DIR/prefetch.runs" ]; then
		echo "| gridvfs cold, prefetch profile | skipped: prefetch not built yet | | | | | | | |"
	fi
	row "gridvfs cold, prefetch profile" prefetch
	row "gridvfs warm" warm
	row "qcow2 overlay on gridvfs, cold (fresh cache)" qcow2-cold qcow2
	row "qcow2 overlay on gridvfs, warm (same overlay again)" qcow2-warm
	row "second qcow2 overlay, same node (shared cache)" qcow2-ov2
	echo
	echo "Goals: warm within 1.2× of local (issue 12); cold with prefetch well under cold; cold on a second node with the profile the store learned from one boot elsewhere within 1.3× of local; cold with metadata but no profile (readahead + zero-map fetch) within 2.5× of local; qcow2 overlay warm within 1.1× of local (issue 19)."
	echo
	echo "- local, FUSE and warm boots alternate (one of each per round) so that other load on the machine hits them alike; every QEMU runs under nice -n $NICE."
	echo "- proxy columns: the node's client-role gridvfsd (gridvfs status) over the whole mount: cache_reads_local / cache_fetches, and READ latency percentiles."
	[ -f "$H_DIR/learned.runs" ] &&
		echo "- learned profile: the server role noted the cold boot's first touches (64 KiB blocks) and published them in root.img.gvmeta, profile only (no hashes: no zero map), $(awk '$1 == "profile:" { print $2 }' "$H_DIR/learned.meta" 2>/dev/null) blocks; every later scenario starts from a fresh meta scan (the learned file removed first)."
	[ -f "$H_DIR/local.replay" ] &&
		echo "- I/O replay: the cold boot's $(wc -l <"$H_DIR/boot.trace") reads (boot.sh --trace) replayed one at a time with O_DIRECT, without QEMU: the I/O path's own time, median of $RUNS."
	[ -f "$H_DIR/qcow2-cold.runs" ] &&
		echo "- qcow2: overlays made with qemu-img create -f qcow2 -b MOUNT/root.img -F raw, local to the node; the golden image has its metadata (meta scan, no profile); the three boots share one mount and cache, in the order shown (proxy columns on the cold row: the whole mount)."
	herd_report
	qemu2_report
} >"$OUT/vmboot.md"
for n in cold learned noprofile raonly bgonly metaonly prefetch warm qcow2 herd1-site herd4-site herd8-site q2-site; do
	[ -f "$H_DIR/$n.status" ] && cp "$H_DIR/$n.status" "$OUT/vmboot-$n.status.txt"
done
echo
cat "$OUT/vmboot.md"
say "written to $OUT/vmboot.md"
h_pass
