#!/bin/bash
# Replays the fuzz seed corpus and every saved crash input through the
# normal-compiler builds of the fuzz targets (tests/fuzz/fuzz_*, built by
# `make check` with standalone.c).  The targets abort on any broken
# invariant, and under --enable-sanitizers ASan/UBSan check each input too.
# Fails if a target aborts or an input directory is missing or empty.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
fail=0
total=0
for t in fuzz_record fuzz_call fuzz_reply fuzz_idmap fuzz_gridmap fuzz_meta fuzz_probe fuzz_zlink; do
	bin="$top_builddir/tests/fuzz/$t"
	corpus="$top_srcdir/tests/fuzz/corpus/$t"
	regress="$top_srcdir/tests/fuzz/regress/$t"
	if [ ! -x "$bin" ]; then
		echo "FAIL: $t: $bin not built"
		fail=1
		continue
	fi
	n=$(find "$corpus" -type f 2>/dev/null | wc -l)
	if [ "$n" -eq 0 ]; then
		echo "FAIL: $t: empty seed corpus $corpus"
		fail=1
		continue
	fi
	dirs=("$corpus")
	[ -d "$regress" ] && dirs+=("$regress") &&
		n=$((n + $(find "$regress" -type f | wc -l)))
	if "$bin" "${dirs[@]}"; then
		echo "ok $t: $n inputs"
		total=$((total + n))
	else
		echo "FAIL: $t: an input broke the target (see above)"
		fail=1
	fi
done
echo "fuzz regression: $total inputs replayed"
exit "$fail"
