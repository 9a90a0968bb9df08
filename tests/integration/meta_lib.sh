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
