#!/bin/bash
# Runs the libFuzzer builds of the fuzz targets (what `make fuzz` calls):
#   run-fuzz.sh TOP_SRCDIR BINDIR [TARGET...]
# Each target runs for $FUZZ_SECONDS (60) at low priority, starting from
# the seed corpus tests/fuzz/corpus/<target>/ plus what earlier runs found
# (kept in BINDIR/work/<target>/, never written back to the source tree).
# Crash inputs land in BINDIR/crashes/; copy each into
# tests/fuzz/regress/<target>/ so `make check` replays it from then on.
# Prints one summary line per target; exits 1 if any target crashed.
set -u
src=$1 bin=$2
shift 2
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
	targets=(fuzz_record fuzz_call fuzz_reply fuzz_idmap fuzz_gridmap fuzz_meta fuzz_probe)
secs=${FUZZ_SECONDS:-60}
maxlen=${FUZZ_MAX_LEN:-70000}
bad=0
summary=()
mkdir -p "$bin/crashes"
for t in "${targets[@]}"; do
	work="$bin/work/$t"
	log="$bin/$t.log"
	mkdir -p "$work"
	seeds=("$src/tests/fuzz/corpus/$t")
	[ -d "$src/tests/fuzz/regress/$t" ] && seeds+=("$src/tests/fuzz/regress/$t")
	echo "fuzz: $t for ${secs}s (log $log)"
	# detect_leaks: a leak on an error path is a bug too.
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
		nice "$bin/$t" -max_total_time="$secs" -max_len="$maxlen" \
		-print_final_stats=1 -artifact_prefix="$bin/crashes/$t-" \
		-timeout=10 -rss_limit_mb=2048 "$work" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
	if [ "$rc" -ne 0 ]; then
		bad=1
		grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
		summary+=("$t: CRASH (rc $rc) after ${execs:-?} execs; input in $bin/crashes/")
	else
		summary+=("$t: ${execs:-?} execs, cov ${cov:-?}, ft ${ft:-?}, corpus $(find "$work" -type f | wc -l) files")
	fi
done
echo "---- fuzz summary (${secs}s per target) ----"
printf '%s\n' "${summary[@]}"
exit "$bad"
