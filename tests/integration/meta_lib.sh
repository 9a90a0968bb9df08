# Helpers of the tests/integration/meta_*.sh scripts (sourced after the
# harness; not a test itself).
GV="$top_builddir/gridvfs"

# m_image FILE MIB PCT SEED: a sparse image of MIB MiB in which PCT % of
# the 64 KiB blocks (chosen with SEED) hold random bytes, the rest holes.
m_image() {
	python3 - "$@" <<'PY' || h_fail "cannot make image $1"
import os, random, sys
path, mib, pct, seed = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
nblk = mib * 16
with open(path, "wb") as f:
    f.truncate(mib << 20)
    r = random.Random(seed)
    for b in sorted(r.sample(range(nblk), int(nblk * pct / 100))):
        f.seek(b << 16)
        f.write(os.urandom(1 << 16))
PY
}

# m_rewrite FILE PCT SEED: overwrite PCT % of FILE's 64 KiB blocks with
# new random bytes (a clone that drifted from its golden image).
m_rewrite() {
	python3 - "$@" <<'PY' || h_fail "cannot rewrite $1"
import os, random, sys
path, pct, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
nblk = os.path.getsize(path) >> 16
with open(path, "r+b") as f:
    r = random.Random(seed)
    for b in sorted(r.sample(range(nblk), int(nblk * pct / 100))):
        f.seek(b << 16)
        f.write(os.urandom(1 << 16))
PY
}

# m_proxy NAME UPSTREAM_PORT CACHE_DIR ARGS...: a client-role gridvfsd with
# a cache; sets PX (pid) and H_PX_PORT.
m_proxy() {
	local name=$1 up=$2 dir=$3
	shift 3
	h_gridvfsd_at "$name" "$up" "$H_MNT_PORT" --role client --cache-dir "$dir" \
		--cache-size 2G "$@"
	H_PX_PORT=$H_AT_PORT PX=$H_AT_PID
}

# m_get PATH OUT: copy EXPORT/PATH through the proxy with libnfs.
m_get() {
	nfs-cp "$(h_url_proxy "/$1")" "$2" >/dev/null 2>&1
}

# m_cache_stat DIR KEY: a number from `gridvfs cache stat DIR`.
m_cache_stat() {
	"$GV" cache stat "$1" | awk -v k="$2:" '$1 == k { print $2; exit }'
}

# m_wan_image MIB PCT SEED: ganesha behind a relay that emulates the WAN
# (20 ms RTT, 100 Mbit/s, RPC stats in $ST: port WP), and EXPORT/vm.img
# made by m_image with its metadata (meta scan, no profile); sets ST,
# REPLAY (meta_replay.py) and PYTHONPATH for it.
m_wan_image() {
	ST="$H_DIR/wan.stats"
	REPLAY="python3 $top_srcdir/tests/integration/meta_replay.py"
	export PYTHONPATH="$top_srcdir/tests/tools"
	h_ganesha
	h_relay WP "$H_NFS_PORT" --rpc --stats "$ST" --delay-ms 10 --rate-mbit 100
	m_image "$H_EXPORT/vm.img" "$@"
	"$GV" meta scan "$H_EXPORT/vm.img" >/dev/null || h_fail "meta scan"
}

# m_boot_trace IMAGE OUT: a boot-like trace (OFFSET LENGTH lines) of 160 of
# IMAGE's data blocks, 4-64 KiB reads in an order unrelated to the layout.
m_boot_trace() {
	python3 - "$1" >"$2" <<'PY' || h_fail "cannot make a trace of $1"
import random, sys
data = open(sys.argv[1], "rb").read()
r = random.Random(5)
blocks = [b for b in range(len(data) >> 16) if any(data[b << 16:(b << 16) + 512])]
print("# boot-like trace: OFFSET LENGTH")
for b in sorted(r.sample(blocks, 160), key=lambda b: (b // 64 * 7919) % 1009 + r.random()):
    off = (b << 16) + r.choice([0, 4096, 16384])
    for k in range(r.choice([1, 2, 4])):
        print(off + k * 16384, r.choice([4096, 16384, 16384]))
PY
}
