#!/bin/bash
# bench/bench.sh (`make bench`): the same work done straight against
# nfs-ganesha and through a client-role gridvfsd, on loopback and through
# the emulated WAN (tests/tools/wanrelay: 20 ms RTT, 100 Mbit/s), as medians
# of BENCH_RUNS runs and ratios. Reports, never asserts. Writes
# bench/results/latest.md and latest.png (gnuplot). See docs/benchmarks.md.
#
# env: BENCH_RUNS (3)   BENCH_QUICK=1 (1 run, 64 MiB files: a smoke run)
#      BENCH_WAN=0 (loopback only)   BENCH_OUT (bench/results)   KEEP=1
#      BENCH_ONLY="GROUP..." run only these row groups (all by default):
#        core conc idmap cache tls writeback exports peer
#        (peer: ganesha's own proxy, FSAL PROXY_V4; tls: the mTLS chain and
#        the handshake times).  A partial run writes partial.md/.png, by
#        default in bench/partial/ (git-ignored, not in the tarball: files
#        under bench/results/ ship), so the full table stays as it is.
set -u

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
. "$top_srcdir/bench/lib.sh"

QUICK=${BENCH_QUICK:-0}
RUNS=${BENCH_RUNS:-3}
LO_MB=256      # sequential transfers on loopback
WAN_MB=64      # over the WAN: 100 Mbit/s moves 64 MiB in 5.4 s
WAN_CP_MB=16   # one call in flight over 20 ms RTT is slow: keep it short
LO_RAND=20000 WAN_RAND=3000 LO_PING=2000 WAN_PING=100
if [ "$QUICK" = 1 ]; then
	RUNS=1 LO_MB=64 WAN_MB=64 WAN_CP_MB=8 LO_RAND=5000 WAN_RAND=1000 WAN_PING=20
fi
GROUPS_ALL="core conc idmap cache tls writeback exports peer"
ONLY=${BENCH_ONLY:-}
read -ra ONLY_A <<<"${ONLY//,/ }"
ONLY="${ONLY_A[*]}"   # the words, single spaces; "*" is not a glob here
for g in "${ONLY_A[@]}"; do
	case " $GROUPS_ALL " in *" $g "*) ;; *)
		echo "bench: BENCH_ONLY: unknown group '$g' (groups: $GROUPS_ALL)" >&2
		exit 2 ;;
	esac
done
NAME=latest OUT=${BENCH_OUT:-$top_srcdir/bench/results}
[ -n "$ONLY" ] && NAME=partial OUT=${BENCH_OUT:-$top_builddir/bench/partial}
# want GROUP: is this row group selected?
want() { [ -z "$ONLY" ] || case " $ONLY " in *" $1 "*) true ;; *) false ;; esac; }
DEPTH=8        # READ/WRITE calls in flight, like a kernel client's readahead
SHM=/dev/shm
[ -d "$SHM" ] && [ -w "$SHM" ] || SHM=""

h_init bench
[ -n "$SHM" ] || SHM=$H_DIR
RES=$H_DIR/results.tsv   # row|skip TAB fields (see b_emit)
: >"$RES"
NFSBIG=$(b_bin nfsbig) && NFSRAND=$(b_bin nfsrand) && RPCPING=$(b_bin rpcping) &&
	TLSPING=$(b_bin tlsping) && b_bin wanrelay >/dev/null && b_bin gridvfsd >/dev/null ||
	h_fail "build first: make && make bench/nfsrand bench/tlsping tests/tools/nfsbig tests/tools/wanrelay"
command -v nfs-cp >/dev/null || h_fail "nfs-cp missing (libnfs-utils)"
T0=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*"; }

# --- the four paths: ports of NFS and MOUNT for each ----------------------
# direct-lo: ganesha; proxy-lo: gridvfsd -> ganesha; direct-wan: relay ->
# ganesha; proxy-wan: gridvfsd -> relay -> ganesha (the proxy sits at the
# client's end of the WAN, as a hypervisor node's would).
ports() {
	case $1 in
	direct-lo) P_NFS=$H_NFS_PORT P_MNT=$H_MNT_PORT ;;
	proxy-lo) P_NFS=$PX_LO P_MNT=$PX_LO ;;
	direct-wan) P_NFS=$WAN_NFS P_MNT=$WAN_MNT ;;
	proxy-wan) P_NFS=$PX_WAN P_MNT=$PX_WAN ;;
	*) P_NFS=${1%/*} P_MNT=${1#*/} ;;   # "NFSPORT/MNTPORT" for extra rows
	esac
}
url() { ports "$1"; b_url "$P_NFS" "$P_MNT" "$2"; }
now() { date +%s.%N; }
mibs() { awk -v b="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.1f\n", b / 1048576 / (t1 - t0) }'; }

# --- measurements: each prints one number (MiB/s, IOPS or µs) -------------
# m_get PATH FILE: nfsbig get with DEPTH READs in flight.
m_get() {
	local o="$SHM/bench-get.$$" r
	rm -f "$o"
	r=$("$NFSBIG" get "$(url "$1" "$2")" "$o" "$DEPTH" 2>>"$H_DIR/tools.log") || { rm -f "$o"; echo nan; return; }
	rm -f "$o"
	awk '{ print $(NF - 1) }' <<<"$r"
}
# m_put PATH MB: nfsbig put of a fresh MB MiB file (COMMIT included).
m_put() {
	local name="put.$RANDOM$RANDOM" r
	r=$("$NFSBIG" put "$H_DIR/src$2" "$(url "$1" "/$name")" "$DEPTH" 2>>"$H_DIR/tools.log") || r="nan nan"
	rm -f "$H_EXPORT/$name"
	awk '{ print $(NF - 1) }' <<<"$r"
}
# m_cpget / m_cpput PATH MB: nfs-cp, one call in flight.
m_cpget() {
	local o="$SHM/bench-cp.$$" t0 t1
	rm -f "$o"
	t0=$(now)
	nfs-cp "$(url "$1" "/f$2")" "$o" >/dev/null 2>>"$H_DIR/tools.log" || { rm -f "$o"; echo nan; return; }
	t1=$(now)
	rm -f "$o"
	mibs $(($2 * 1048576)) "$t0" "$t1"
}
m_cpput() {
	local name="cp.$RANDOM$RANDOM" t0 t1 r
	t0=$(now)
	nfs-cp "$H_DIR/src$2" "$(url "$1" "/$name")" >/dev/null 2>>"$H_DIR/tools.log" || r=nan
	t1=$(now)
	rm -f "$H_EXPORT/$name"
	[ -n "${r:-}" ] && { echo nan; return; }
	mibs $(($2 * 1048576)) "$t0" "$t1"
}
# m_rand PATH COUNT [-w]: 4 KiB random READs (WRITEs), 32 in flight: IOPS.
m_rand() {
	local r
	r=$("$NFSRAND" -d 32 -b 4096 -n "$2" -s "$RANDOM" ${3:-} "$(url "$1" "/f$LO_MB")" \
		2>>"$H_DIR/tools.log") || { echo nan; return; }
	awk '{ print $8 }' <<<"$r"
}
# m_rand_answered PATH COUNT -w: like m_rand, but IOPS until every WRITE
# was answered (what the writer waits for), not including the final COMMIT.
m_rand_answered() {
	local r
	r=$("$NFSRAND" -d 32 -b 4096 -n "$2" -s "$RANDOM" ${3:-} "$(url "$1" "/f$LO_MB")" \
		2>>"$H_DIR/tools.log") || { echo nan; return; }
	awk '{ for (i = 1; i < NF; i++) if ($i == "answered_iops") print $(i + 1) }' <<<"$r"
}
# m_getattr PATH COUNT: median GETATTR round trip in µs (bench/rpcping).
m_getattr() {
	local r
	ports "$1"
	r=$("$RPCPING" 127.0.0.1 "$P_NFS" "$P_MNT" "$H_EXPORT" "$2" getattr 2>>"$H_DIR/tools.log") ||
		{ echo nan; return; }
	awk '{ print $2 }' <<<"$r"
}
# m_conc PATH N MB: N clients each reading the MB MiB file at once
# (DEPTH 4 each): aggregate MiB/s.
m_conc() {
	local i t0 t1 fail=0 pids=()
	t0=$(now)
	for ((i = 0; i < $2; i++)); do
		"$NFSBIG" get "$(url "$1" "/f$3")" "$SHM/bench-conc.$$.$i" 4 \
			>/dev/null 2>>"$H_DIR/tools.log" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || fail=1; done
	t1=$(now)
	rm -f "$SHM/bench-conc.$$".*
	[ "$fail" = 0 ] || { echo nan; return; }
	mibs $(($2 * $3 * 1048576)) "$t0" "$t1"
}

# --- rows -----------------------------------------------------------------
# b_emit: one result line. KIND thr (higher is better, ratio gridvfs/base)
# or lat (lower is better, added = gridvfs - base).
b_emit() { printf 'row\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }
skip() {
	printf 'skip\t%s\t%s\n' "$1" "$2" >>"$RES"
	say "skipped: $1: $2"
}

# row KIND LINK UNIT KEY LABEL BASE_PATH PROXY_PATH FN ARGS...: run FN on
# both paths RUNS times, alternating so drift hits both alike; record the
# medians. KEY names the scenario in the chart (the same on both links).
row() {
	local kind=$1 link=$2 unit=$3 key=$4 label=$5 base=$6 px=$7 fn=$8 i rb=() rp=() mb mp
	shift 8
	for ((i = 0; i < RUNS; i++)); do
		rb+=("$("$fn" "$base" "$@")")
		rp+=("$("$fn" "$px" "$@")")
	done
	mb=$(printf '%s\n' "${rb[@]}" | grep -v nan | b_median)
	mp=$(printf '%s\n' "${rp[@]}" | grep -v nan | b_median)
	b_emit "$label" "$link" "$unit" "$kind" "$mb" "$mp" "${rb[*]} | ${rp[*]}" "$key"
	say "$(printf '%-44s %-8s %10s %10s %s' "$label" "$link" "$mb" "$mp" "$unit")"
}

rows_core() {
	local link=$1 d=direct-$1 px=proxy-$1 mb cp rnd ping
	if [ "$link" = lo ]; then
		mb=$LO_MB cp=$LO_MB rnd=$LO_RAND ping=$LO_PING
	else
		mb=$WAN_MB cp=$WAN_CP_MB rnd=$WAN_RAND ping=$WAN_PING
	fi
	row thr "$link" MiB/s "seq read, nfsbig" "seq read $mb MiB (nfsbig, $DEPTH in flight)" "$d" "$px" m_get "/f$mb"
	row thr "$link" MiB/s "seq write, nfsbig" "seq write $mb MiB (nfsbig, $DEPTH in flight)" "$d" "$px" m_put "$mb"
	row thr "$link" MiB/s "seq read, nfs-cp" "seq read $cp MiB (nfs-cp, 1 in flight)" "$d" "$px" m_cpget "$cp"
	row thr "$link" MiB/s "seq write, nfs-cp" "seq write $cp MiB (nfs-cp, 1 in flight)" "$d" "$px" m_cpput "$cp"
	row thr "$link" IOPS "4K rand read" "4 KiB random read (nfsrand, 32 in flight)" "$d" "$px" m_rand "$rnd"
	row thr "$link" IOPS "4K rand write" "4 KiB random write (nfsrand, 32 in flight, write-through)" "$d" "$px" m_rand "$((rnd / 2))" -w
	row lat "$link" µs "GETATTR" "GETATTR median round trip (rpcping)" "$d" "$px" m_getattr "$ping"
}

rows_conc() {
	local n
	if [ "$1" = lo ]; then
		for n in 1 16 64; do
			row thr lo MiB/s "$n client(s)" "$n concurrent client(s) reading $((LO_MB / n)) MiB each (aggregate)" \
				direct-lo proxy-lo m_conc "$n" "$((LO_MB / n))"
		done
	else
		row thr wan MiB/s "16 clients" "16 concurrent clients reading $((WAN_MB / 16)) MiB each (aggregate)" \
			direct-wan proxy-wan m_conc 16 "$((WAN_MB / 16))"
	fi
}

# Features that are not in every build: each adds rows when the built
# gridvfsd has the option, and says why not otherwise.
rows_idmap() {
	local map=$H_DIR/ids.map i
	if ! b_has_opt --map; then
		skip "idmap, 10 000-line map" "gridvfsd --map not built yet"
		return
	fi
	# 5 000 uid and 5 000 gid lines of disjoint single ids and ranges, none
	# matching the bench's own ids: the cost is the lookup, not a rewrite.
	for ((i = 0; i < 5000; i++)); do
		echo "uid $((100000 + i * 10)) $((500000 + i * 10))"
		echo "gid $((100000 + i * 10))-$((100000 + i * 10 + 4)) $((500000 + i * 10))"
	done >"$map"
	b_proxy PX_MAP "$H_NFS_PORT" "$H_MNT_PORT" --map "$map"
	row thr lo MiB/s "10k-line map (vs no map)" "seq read $LO_MB MiB, 10 000-line map (base: proxy, no map)" \
		proxy-lo "$PX_MAP/$PX_MAP" m_get "/f$LO_MB"
	row lat lo µs "GETATTR, map" "GETATTR, 10 000-line map (base: proxy, no map)" \
		proxy-lo "$PX_MAP/$PX_MAP" m_getattr "$LO_PING"
	b_proxy_stop "$PX_MAP_PID"
}

# m_cache LINK MB WHICH: a fresh --cache-dir proxy; a cold read, the same
# read again at once ("again": the cache's writer thread may still be
# committing the first read's fills, so some blocks come from upstream),
# and, once the writer has had 2 s, a third ("warm"). Prints the WHICH
# one, so every run starts from an empty cache.
m_cache() {
	local up_nfs=$H_NFS_PORT up_mnt=$H_MNT_PORT cold again warm
	[ "$1" = wan ] && up_nfs=$WAN_NFS up_mnt=$WAN_MNT
	rm -rf "$H_DIR/cache"
	mkdir -p "$H_DIR/cache"
	b_proxy PX_C "$up_nfs" "$up_mnt" --cache-dir "$H_DIR/cache"
	cold=$(m_get "$PX_C/$PX_C" "/f$2")
	again=$(m_get "$PX_C/$PX_C" "/f$2")
	sleep 2
	warm=$(m_get "$PX_C/$PX_C" "/f$2")
	b_proxy_stop "$PX_C_PID"
	case $3 in cold) echo "$cold" ;; again) echo "$again" ;; *) echo "$warm" ;; esac
}
rows_cache() {
	local link mb
	if ! b_has_opt --cache-dir; then
		skip "block cache, cold and warm reads" "gridvfsd --cache-dir (LMDB cache) not built yet"
		return
	fi
	for link in lo ${WAN_LINKS:-}; do
		mb=$LO_MB
		[ "$link" = wan ] && mb=$WAN_MB
		row thr "$link" MiB/s "seq read, cold cache" "seq read $mb MiB, cold cache" direct proxy-cold \
			m_cache_run "$link" "$mb" cold
		row thr "$link" MiB/s "seq read again at once" "seq read $mb MiB, the same read again at once" direct proxy-again \
			m_cache_run "$link" "$mb" again
		row thr "$link" MiB/s "seq read, warm cache" "seq read $mb MiB, warm cache (writer done)" direct proxy-warm \
			m_cache_run "$link" "$mb" warm
	done
}
# row passes the path name first: "direct" or "proxy-cold"/"proxy-warm".
m_cache_run() {
	case $1 in
	direct) m_get "direct-$2" "/f$3" ;;
	proxy-*) m_cache "$2" "$3" "${1#proxy-}" ;;
	esac
}

# rows_tls: the full chain of issue 4: client -> client-role gridvfsd ->
# (WAN) -> server-role gridvfsd with mTLS and a grid-mapfile -> ganesha.
rows_tls() {
	local ca=$H_DIR/ca gv="$top_builddir/gridvfs" tlsc link mb
	if ! b_has_opt --tls-cert; then
		skip "mTLS between the domains (seq read/write, handshake)" "gridvfsd --tls (server role with mTLS) not built yet"
		return
	fi
	"$gv" ca init "$ca" >/dev/null && "$gv" ca issue "$ca" --name server --server 127.0.0.1 >/dev/null &&
		"$gv" ca issue "$ca" --name node1 >"$H_DIR/ca-issue.out" ||
		{ skip "mTLS" "gridvfs ca init/issue failed"; return; }
	# The bench runs as root: map the node's DN to root and keep root.
	grep '^"' "$H_DIR/ca-issue.out" | sed 's/ACCOUNT$/root/' >"$H_DIR/grid-mapfile"
	b_server PX_S "$H_NFS_PORT" "$H_MNT_PORT" --tls require --tls-cert "$ca/server.crt" \
		--tls-key "$ca/server.key" --tls-ca "$ca/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" \
		--squash none
	tlsc=(--tls-cert "$ca/node1.crt" --tls-key "$ca/node1.key" --tls-ca "$ca/ca.crt"
		--tls-server-name 127.0.0.1)
	b_proxy PX_TLS_LO "$PX_S" "$PX_S" "${tlsc[@]}"
	if [ -n "$WAN_LINKS" ]; then
		b_relay WAN_S "$PX_S"
		b_proxy PX_TLS_WAN "$WAN_S" "$WAN_S" "${tlsc[@]}"
	fi
	for link in lo $WAN_LINKS; do
		local px=$PX_TLS_LO
		mb=$LO_MB
		[ "$link" = wan ] && px=$PX_TLS_WAN mb=$WAN_MB
		row thr "$link" MiB/s "read, mTLS chain" "seq read $mb MiB, full chain with mTLS (2 proxies)" \
			"direct-$link" "$px/$px" m_get "/f$mb"
		row thr "$link" MiB/s "write, mTLS chain" "seq write $mb MiB, full chain with mTLS (2 proxies)" \
			"direct-$link" "$px/$px" m_put "$mb"
		# Image-like data (the random files above never pack): the
		# roles' zstd records (--compress auto) over the slow link.
		row thr "$link" MiB/s "read libs, mTLS chain" "seq read $mb MiB of shared libraries (packs $(cat "$H_DIR/libs.ratio")× with zlib -1), full chain with mTLS (2 proxies)" \
			"direct-$link" "$px/$px" m_get "/libs$mb"
		row thr "$link" MiB/s "write libs, mTLS chain" "seq write $mb MiB of shared libraries, full chain with mTLS (2 proxies)" \
			"direct-$link" "$px/$px" m_put "libs$mb"
	done
	rows_handshake
}

# m_tls MODE WHAT PORT COUNT: bench/tlsping's median (WHAT hs or ready)
# of COUNT set-ups to the server role at PORT; MODE full or resume.
m_tls() {
	local r
	r=$("$TLSPING" -n "$4" -m "${1/resumed/resume}" "${TLSPING_ARGS[@]}" 127.0.0.1 "$3" 2>>"$H_DIR/tools.log") ||
		{ echo nan; return; }
	echo "tlsping $1 port $3: $r" >>"$H_DIR/tools.log"
	awk -v k="${2}_median_us" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$r"
}
# rows_handshake: RPC-with-TLS set-up to the server role of rows_tls
# (PX_S; over the WAN through WAN_S), full handshakes (base) against
# handshakes resumed from a ticket (the "gridvfs" column).  A first short
# run asks whether the server resumes at all, and the labels say so.
rows_handshake() {
	local ca=$H_DIR/ca link port n r hits note
	TLSPING_ARGS=(-c "$ca/node1.crt" -k "$ca/node1.key" -a "$ca/ca.crt" -s 127.0.0.1)
	r=$("$TLSPING" -n 5 -m resume "${TLSPING_ARGS[@]}" 127.0.0.1 "$PX_S" 2>&1) ||
		{ skip "TLS handshake and resumed-handshake times" "bench/tlsping failed: $r"; return; }
	hits=$(awk '{ print $6 }' <<<"$r")
	note="resumed from a ticket"
	[ "$hits" = 5 ] || note="offering a ticket: the server resumed $hits of 5, the rest were full handshakes"
	for link in lo $WAN_LINKS; do
		if [ "$link" = lo ]; then port=$PX_S n=200; else port=$WAN_S n=20; fi
		[ "$QUICK" = 1 ] && n=$((n / 4))
		row lat "$link" µs - "TLS 1.3 mTLS handshake, $n set-ups (base: full; gridvfs column: $note)" \
			full resumed m_tls hs "$port" "$n"
		row lat "$link" µs - "connect to first reply (TCP, STARTTLS probe, handshake, NULL call; base: full; gridvfs column: $note)" \
			full resumed m_tls ready "$port" "$n"
	done
}

# rows_writeback: writes through a write-back proxy (acknowledged once
# durable in its LMDB dirty store, flushed upstream in the background)
# against the same writes straight over the link. The timing ends when
# the client has its answers: nfsbig's COMMIT waits for upstream's stable
# COMMIT, so the sequential row includes the whole flush; the random-write
# row (UNSTABLE writes, no COMMIT) measures what a VM's writes wait.
m_wb() { # m_wb PATH FN ARGS...: PATH base or wb-LINK
	local p=$1 fn=$2 link up_nfs=$H_NFS_PORT up_mnt=$H_MNT_PORT r
	shift 2
	case $p in
	wb-*)
		link=${p#wb-}
		[ "$link" = wan ] && up_nfs=$WAN_NFS up_mnt=$WAN_MNT
		rm -rf "$H_DIR/wbcache" && mkdir -p "$H_DIR/wbcache"
		b_proxy PX_WB "$up_nfs" "$up_mnt" --cache-dir "$H_DIR/wbcache" \
			--write-policy back
		r=$("$fn" "$PX_WB/$PX_WB" "$@")
		b_proxy_stop "$PX_WB_PID"
		echo "$r"
		;;
	*) "$fn" "$p" "$@" ;;
	esac
}
rows_writeback() {
	local link mb rnd
	if ! b_has_opt write-policy; then
		skip "write-back: 4 KiB random and sequential writes" "write-back not built yet (the write rows above are write-through)"
		return
	fi
	for link in lo ${WAN_LINKS:-}; do
		if [ "$link" = lo ]; then mb=$LO_MB rnd=$((LO_RAND / 2)); else mb=$WAN_MB rnd=$((WAN_RAND / 2)); fi
		row thr "$link" MiB/s "seq write, write-back" "seq write $mb MiB, write-back (COMMIT waits for the flush)" \
			"direct-$link" "wb-$link" m_wb m_put "$mb"
		row thr "$link" IOPS "4K rand write, write-back" "4 KiB random write, write-back, until COMMIT done (32 in flight)" \
			"direct-$link" "wb-$link" m_wb m_rand "$rnd" -w
		row thr "$link" IOPS "4K rand write answered, write-back" "4 KiB random write, write-back, until all answered (32 in flight)" \
			"direct-$link" "wb-$link" m_wb m_rand_answered "$rnd" -w
	done
}

# rows_exports: the cost of several exports in one daemon (a 4-byte tag on
# every handle, routed per call) against the same daemon with one export.
# Export "bench" has the bench's own path, so the URLs do not change.
rows_exports() {
	if ! b_has_opt "export NAME"; then
		skip "two exports in one daemon" "[export NAME] sections not built yet"
		return
	fi
	mkdir -p "$H_DIR/other"
	cat >"$H_DIR/exports.conf" <<-EOF
		[export bench]
		path = $H_EXPORT
		[export other]
		path = /other
		upstream-path = $H_DIR/other
	EOF
	b_proxy PX_EX "$H_NFS_PORT" "$H_MNT_PORT" -c "$H_DIR/exports.conf"
	row thr lo MiB/s "seq read, 2 exports" "seq read $LO_MB MiB, daemon with 2 exports (base: 1 export)" \
		proxy-lo "$PX_EX/$PX_EX" m_get "/f$LO_MB"
	row lat lo µs "GETATTR, 2 exports" "GETATTR, daemon with 2 exports (base: 1 export)" \
		proxy-lo "$PX_EX/$PX_EX" m_getattr "$LO_PING"
	b_proxy_stop "$PX_EX_PID"
}

# m_cpuget PIDS@PATH MB: CPU time (ms) that the processes PIDS (comma-
# separated) spent per read while nfs-cp read the MB MiB file through PATH
# CPU_READS times: what a proxy costs per byte, whoever else wants the
# cores (less sensitive to other load than MiB/s, not immune: on a busy VM
# the same read's CPU varies too).  From /proc/PID/stat, whose utime and
# stime cover every thread the process ever had: ganesha's worker pools
# start and end threads, so per-thread counters would lose time.  They
# come in 10 ms ticks, hence several reads per figure.
CPU_READS=4
m_cpuget() {
	local pid=${1%%@*} c0 c1 i
	c0=$(b_cpu_ticks "$pid")
	[ -n "$c0" ] || { echo nan; return; }
	for ((i = 0; i < CPU_READS; i++)); do
		[ "$(m_cpget "${1#*@}" "$2")" != nan ] || { echo nan; return; }
	done
	c1=$(b_cpu_ticks "$pid")
	echo "m_cpuget $1: pids $pid ticks $c0 -> $c1 for $CPU_READS reads" >>"$H_DIR/tools.log"
	awk -v a="$c0" -v b="$c1" -v n="$CPU_READS" -v hz="$(getconf CLK_TCK)" \
		'BEGIN { printf "%.1f\n", (b - a) * 1000 / hz / n }'
}
# b_cpu_ticks PIDS: utime + stime summed over the processes, in ticks.
# The fields are counted after the ")" that ends the command name.
b_cpu_ticks() {
	local p
	for p in ${1//,/ }; do
		sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null || return 1
	done | awk '{ s += $12 + $13 } END { if (NR) print s }'
}

# rows_peer: the peer to beat, nfs-ganesha's own proxy (FSAL PROXY_V4) in
# front of the same store, against the client role without a cache
# (PX_LO).  Loopback only: the question is what each proxy costs per call
# and per byte, which the WAN's 11 MiB/s would hide.
rows_peer() {
	local pv4
	if ! b_ganesha_pv4 PV4 "$H_NFS_PORT"; then
		skip "gridvfs vs ganesha PROXY_V4 (the peer): seq read/write" "$B_WHY"
		return
	fi
	say "ganesha PROXY_V4 up (nfs $PV4, mount $PV4_MNT)"
	pv4="$PV4/$PV4_MNT"
	row thr lo MiB/s "vs PROXY_V4: read, nfs-cp" "seq read $LO_MB MiB (nfs-cp, 1 in flight), gridvfs pass-through vs ganesha PROXY_V4 (base: PROXY_V4)" \
		"$pv4" proxy-lo m_cpget "$LO_MB"
	row thr lo MiB/s "vs PROXY_V4: read, nfsbig" "seq read $LO_MB MiB (nfsbig, $DEPTH in flight), gridvfs pass-through vs ganesha PROXY_V4 (base: PROXY_V4)" \
		"$pv4" proxy-lo m_get "/f$LO_MB"
	row thr lo MiB/s "vs PROXY_V4: write, nfs-cp" "seq write $LO_MB MiB (nfs-cp, 1 in flight), gridvfs pass-through vs ganesha PROXY_V4 (base: PROXY_V4)" \
		"$pv4" proxy-lo m_cpput "$LO_MB"
	row thr lo MiB/s "vs PROXY_V4: write, nfsbig" "seq write $LO_MB MiB (nfsbig, $DEPTH in flight), gridvfs pass-through vs ganesha PROXY_V4 (base: PROXY_V4)" \
		"$pv4" proxy-lo m_put "$LO_MB"
	row lat lo "CPU ms" - "proxy process CPU per nfs-cp read of $LO_MB MiB (mean of $CPU_READS), gridvfs pass-through vs ganesha PROXY_V4 (base: PROXY_V4)" \
		"$PV4_PID@$pv4" "$PX_LO_PID@proxy-lo" m_cpuget "$LO_MB"
	# The store serves PROXY_V4 over NFSv4.1 and gridvfs over NFSv3, so
	# its CPU is part of what each path costs.
	row lat lo "CPU ms" - "proxy + store CPU per nfs-cp read of $LO_MB MiB (mean of $CPU_READS), gridvfs pass-through vs ganesha PROXY_V4 (base: PROXY_V4)" \
		"$PV4_PID,$H_GANESHA_PID@$pv4" "$PX_LO_PID,$H_GANESHA_PID@proxy-lo" m_cpuget "$LO_MB"
	# Context, not gridvfs: what the peer itself costs against direct.
	row thr lo MiB/s - "seq read $LO_MB MiB (nfs-cp, 1 in flight), ganesha PROXY_V4 vs direct (context: gridvfs column = PROXY_V4)" \
		direct-lo "$pv4" m_cpget "$LO_MB"
	b_ganesha_pv4_stop "$PV4_PID"
}

# --- set up ---------------------------------------------------------------
say "gridvfs bench: $RUNS run(s) per cell, loopback $LO_MB MiB, WAN $WAN_MB MiB ($((2 * B_DELAY_MS)) ms RTT, $B_RATE_MBIT Mbit/s)"
b_ganesha_store
say "ganesha up (nfs $H_NFS_PORT, mount $H_MNT_PORT)"
for mb in $(printf '%s\n' "$LO_MB" "$WAN_MB" "$WAN_CP_MB" $((LO_MB / 16)) $((LO_MB / 64)) $((WAN_MB / 16)) | sort -un); do
	head -c $((mb * 1048576)) /dev/urandom >"$H_DIR/src$mb"
	cp "$H_DIR/src$mb" "$H_EXPORT/f$mb"
done
# Shared libraries and programs of this machine, the kind of bytes a VM
# image holds (the mTLS rows read and write them too).
for mb in $(printf '%s\n' "$LO_MB" "$WAN_MB" | sort -un); do
	python3 "$top_srcdir/tests/tools/libsdata.py" "$H_DIR/srclibs$mb" $((mb * 1048576)) \
		>"$H_DIR/libs.ratio" || h_fail "cannot gather $mb MiB of libraries"
	cp "$H_DIR/srclibs$mb" "$H_EXPORT/libs$mb"
done
b_proxy PX_LO "$H_NFS_PORT" "$H_MNT_PORT"
WAN_LINKS=""
if [ "${BENCH_WAN:-1}" = 1 ]; then
	b_relay WAN_NFS "$H_NFS_PORT"
	b_relay WAN_MNT "$H_MNT_PORT"
	b_proxy PX_WAN "$WAN_NFS" "$WAN_MNT"
	WAN_LINKS=wan
fi
say "gridvfsd up (loopback $PX_LO${WAN_LINKS:+, WAN ${PX_WAN:-}})"
say "$(printf '%-44s %-8s %10s %10s %s' scenario link direct gridvfs unit)"

want core && rows_core lo
want conc && rows_conc lo
for l in $WAN_LINKS; do
	want core && rows_core "$l"
	want conc && rows_conc "$l"
done
want idmap && rows_idmap
want cache && rows_cache
want tls && rows_tls
want writeback && rows_writeback
want exports && rows_exports
want peer && rows_peer
say "done"

# --- report ---------------------------------------------------------------
mkdir -p "$OUT"
machine() {
	printf -- '- machine: %s cores, %s, %s GiB RAM\n' "$(nproc)" \
		"$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" \
		"$(awk '/MemTotal/ { printf "%d", $2 / 1048576 + 0.5 }' /proc/meminfo)"
	printf -- '- load average: %s at the start, %s at the end (other work on the machine makes loopback rows noisy)\n' \
		"$LOAD0" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf -- '- kernel: %s; %s\n' "$(uname -sr)" "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	printf -- '- date: %s; gridvfs %s (%s)\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$("$top_builddir/gridvfsd" --version 2>/dev/null | head -n1)" \
		"$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo '?')"
	printf -- '- runs: %s per cell, median shown; WAN = wanrelay, %s ms RTT, %s Mbit/s\n' \
		"$RUNS" "$((2 * B_DELAY_MS))" "$B_RATE_MBIT"
	[ -z "$ONLY" ] || printf -- '- partial run: only the row groups %s (BENCH_ONLY)\n' "$ONLY"
}

# targets: the loopback targets of issue 18 against this run's rows, each
# met or missed; a missed one points at the profile of where its time goes
# (docs/benchmarks.md).  Rows are matched by label (any file size).
targets() {
	local spec
	spec=$(cat <<-'T'
		thr	^seq read [0-9]+ MiB, cold cache$	0.85	direct keeps both cores ~70 % busy; the cache writer's copy of every byte into the page cache (and CRC) does not fit beside ganesha, the client and the loop on 2 cores
		thr	^seq read [0-9]+ MiB \(nfsbig, 8 in flight\)$	0.9	the proxy is a second hop on 2 cores
		thr	^seq read [0-9]+ MiB \(nfs-cp, 1 in flight\)$	0.9	one call in flight: the proxy's two copies of each byte are on the call's path (cut-through measured: no gain; only splice() would remove them)
		thr	^seq read [0-9]+ MiB, full chain with mTLS	0.7	two proxies each encrypt or decrypt and copy every byte, on 2 cores, no kernel TLS here
		thr	^seq write [0-9]+ MiB, full chain with mTLS	0.8	two proxies each encrypt or decrypt and copy every byte, on 2 cores
		thr	^4 KiB random write, write-back, until all answered	1.0	each group of the dirty log still waits for one disk flush before its WRITEs are answered
		lat	^GETATTR median round trip	30	two more loopback hops per call, each a wake-up
		thr	^seq read [0-9]+ MiB \(nfs-cp, 1 in flight\), gridvfs pass-through vs ganesha PROXY_V4	2.0	per-call latency of the hop: the proxy copies each byte in and out
	T
	)
	echo "Targets (issue 18, loopback):"
	echo
	echo "| row | measured | target | verdict |"
	echo "|---|---:|---:|---|"
	awk -F'\t' -v spec="$spec" '
		BEGIN {
			n = split(spec, L, "\n")
			for (i = 1; i <= n; i++) {
				split(L[i], f, "\t")
				sub(/^[ \t]+/, "", f[1])
				kind[i] = f[1]; re[i] = f[2]; want[i] = f[3]; why[i] = f[4]
			}
		}
		$1 == "row" && $3 == "lo" && $6 != "nan" && $7 != "nan" {
			for (i = 1; i <= n; i++) if ($2 ~ re[i] && !(i in got)) {
				got[i] = 1
				if (kind[i] == "lat") {
					v = $7 - $6
					verdict = v <= want[i] ? "met" : "missed: " why[i]
					printf "| %s | +%.0f µs | ≤ +%s µs | %s |\n", $2, v, want[i], verdict
				} else {
					v = $6 > 0 ? $7 / $6 : 0
					verdict = v >= want[i] ? "met" : "missed: " why[i]
					printf "| %s | %.2f× | ≥ %s× | %s |\n", $2, v, want[i], verdict
				}
			}
		}' "$RES"
	echo
	echo "Where the time goes, before and after: docs/benchmarks.md, \"The cold read path, the mTLS chain, the pass-through and GETATTR\" and \"Write-back 4 KiB random writes on loopback\"."
	echo
}
{
	echo "# gridvfs benchmark: direct nfs-ganesha vs through gridvfsd"
	echo
	machine
	echo
	echo "| scenario | link | unit | base (direct unless noted) | gridvfs | gridvfs vs base |"
	echo "|---|---|---|---:|---:|---:|"
	awk -F'\t' '$1 == "row" {
		link = $3 == "lo" ? "loopback" : "WAN 20 ms/100 Mbit"
		if ($6 == "nan" || $7 == "nan") cmp = "n/a"
		else if ($5 == "thr") cmp = sprintf("%.2f×", $7 / $6)
		else cmp = sprintf("%+.0f %s", $7 - $6, $4)
		nf = gsub(/nan/, "nan", $8)
		if (nf) cmp = cmp sprintf(" (%d failed run%s)", nf, nf > 1 ? "s" : "")
		printf "| %s | %s | %s | %s | %s | %s |\n", $2, link, $4, $6, $7, cmp
	}' "$RES"
	if grep -q '^skip' "$RES"; then
		echo
		echo "Not measured yet:"
		echo
		awk -F'\t' '$1 == "skip" { printf "- skipped: %s: %s\n", $2, $3 }' "$RES"
	fi
	echo
	targets
	echo "Ratio = gridvfs / base for throughput (MiB/s, IOPS; higher is better);"
	echo "added µs = gridvfs − base for latency. Raw runs: base | gridvfs."
	echo
	echo '<details><summary>raw runs</summary>'
	echo
	awk -F'\t' '$1 == "row" { printf "- %s (%s): %s\n", $2, $3, $8 }' "$RES"
	echo
	echo '</details>'
} >"$OUT/$NAME.md"

# Chart: throughput ratios, loopback and WAN side by side per scenario.
plot() {
	local dat=$H_DIR/ratios.dat
	# Key "-": a context row (not a gridvfs ratio), left out of the chart.
	awk -F'\t' '$1 == "row" && $5 == "thr" && $9 != "-" && $6 != "nan" && $7 != "nan" {
		key = $9
		if (!(key in seen)) { seen[key] = ++n; name[n] = key }
		r[key, $3] = $7 / $6
	} END {
		for (i = 1; i <= n; i++) {
			k = name[i]
			printf "\"%s\" %s %s\n", k, ((k, "lo") in r) ? r[k, "lo"] : "?", ((k, "wan") in r) ? r[k, "wan"] : "?"
		}
	}' "$RES" >"$dat"
	[ -s "$dat" ] || return 0
	gnuplot <<-EOF
		set terminal pngcairo size 1100,560 font "sans,10"
		set output "$OUT/$NAME.png"
		set title "gridvfsd vs direct nfs-ganesha: throughput ratio (1.0 = same as direct)"
		set datafile missing "?"
		set style data histograms
		set style histogram clustered gap 1
		set style fill solid 0.8 border -1
		set boxwidth 0.9
		set yrange [0:*]
		set ylabel "gridvfs / direct"
		set xtics rotate by -30 left
		set key outside top center horizontal
		set grid ytics
		set bmargin 9
		plot "$dat" using 2:xtic(1) title "loopback", "" using 3 title "WAN (20 ms RTT, 100 Mbit/s)", \
			1.0 with lines lw 2 lc rgb "black" title "direct", \
			0.9 with lines dt 2 lc rgb "red" title "target 0.9×"
	EOF
}
if command -v gnuplot >/dev/null 2>&1; then
	plot 2>>"$H_DIR/gnuplot.log" || say "gnuplot failed (see $H_DIR/gnuplot.log)"
else
	say "gnuplot not installed: no chart (tests/tools/install-deps.sh installs gnuplot-nox)"
fi
echo
cat "$OUT/$NAME.md"
echo
say "wrote $OUT/$NAME.md and $OUT/$NAME.png"
