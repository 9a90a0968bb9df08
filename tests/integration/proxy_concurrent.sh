#!/bin/bash
# proxy_concurrent: 16 nfs-cp clients copy different files into the export
# through gridvfsd at once, then 16 copy them back out at once, while 4 more
# read a shared file; every copy is bit-identical.
# shellcheck source=tests/lib/harness.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init proxy_concurrent

N=${CONCURRENT_CLIENTS:-16}
MB=${CONCURRENT_MB:-16}
h_ganesha
h_gridvfsd

for i in $(seq 1 "$N"); do
	# Odd sizes so the last READ/WRITE of each file is short.
	head -c $((MB * 1024 * 1024 + i * 4099)) /dev/urandom >"$H_DIR/in.$i" ||
		h_fail "cannot make test data"
done
head -c $((MB * 1024 * 1024)) /dev/urandom >"$H_EXPORT/shared.bin"

# $1 = phase name; remaining: "i src dst" triples run concurrently.
run_all() {
	local phase=$1 pids=() i rc bad=""
	shift
	while [ $# -ge 3 ]; do
		timeout -k 5 300 nfs-cp "$2" "$3" >"$H_DIR/$phase.$1.log" 2>&1 &
		pids+=("$1:$!")
		shift 3
	done
	for i in "${pids[@]}"; do
		wait "${i#*:}"
		rc=$?
		[ $rc -eq 0 ] || bad="$bad ${i%%:*}(exit $rc)"
	done
	[ -z "$bad" ] || h_fail "$phase: copies failed:$bad"
}

args=()
for i in $(seq 1 "$N"); do args+=("$i" "$H_DIR/in.$i" "$(h_url_proxy "/f.$i")"); done
run_all in "${args[@]}"
for i in $(seq 1 "$N"); do
	cmp -s "$H_DIR/in.$i" "$H_EXPORT/f.$i" || h_fail "file $i written through the proxy differs on disk"
done

args=()
for i in $(seq 1 "$N"); do args+=("$i" "$(h_url_proxy "/f.$i")" "$H_DIR/out.$i"); done
for i in 1 2 3 4; do args+=("s$i" "$(h_url_proxy /shared.bin)" "$H_DIR/shared.$i"); done
run_all out "${args[@]}"
for i in $(seq 1 "$N"); do
	cmp -s "$H_DIR/in.$i" "$H_DIR/out.$i" || h_fail "file $i read through the proxy differs"
done
for i in 1 2 3 4; do
	cmp -s "$H_EXPORT/shared.bin" "$H_DIR/shared.$i" || h_fail "shared reader $i got different data"
done

h_gridvfsd_stop || h_fail "gridvfsd exited $? on SIGTERM"
h_pass
