#!/bin/bash
# gridvfs test runner, called by `make check`:
#   run-tests.sh TEST...
# A TEST ending in .sh is an integration script (path relative to
# $top_srcdir, run with bash, up to $INTEGRATION_JOBS at a time); anything
# else is a unit-test binary (path relative to $top_builddir, run one at a
# time). Each test's output is printed framed, then "PASS: name (Ns)" or
# "FAIL: name (Ns)"; the run ends with "N passed, N failed" and exits 1 if
# any failed. A test running longer than $TEST_TIMEOUT seconds (600) fails.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${top_srcdir:=$here}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
TIMEOUT=${TEST_TIMEOUT:-300}
JOBS=${INTEGRATION_JOBS:-2}

OUT=$(mktemp -d "${TMPDIR:-/tmp}/gridvfs-run.XXXXXX") || exit 1
trap 'rm -rf "$OUT"' EXIT
passed=0
failed=0
failed_names=()

# run_one ID NAME CMD...: run under a timeout; leaves ID.log, ID.rc, ID.secs.
run_one() {
	local id=$1 start rc
	shift 2
	start=$(date +%s)
	timeout -k 15 "$TIMEOUT" "$@" >"$OUT/$id.log" 2>&1 </dev/null
	rc=$?
	echo $(($(date +%s) - start)) >"$OUT/$id.secs"
	echo "$rc" >"$OUT/$id.rc"
}

# report ID NAME: print the framed output and the verdict.
report() {
	local id=$1 name=$2 rc secs
	rc=$(cat "$OUT/$id.rc" 2>/dev/null || echo 255)
	secs=$(cat "$OUT/$id.secs" 2>/dev/null || echo 0)
	echo "======== $name ========"
	cat "$OUT/$id.log"
	echo "======== end of $name ========"
	if [ "$rc" -eq 0 ]; then
		echo "PASS: $name (${secs}s)"
		passed=$((passed + 1))
	else
		[ "$rc" -eq 124 ] && echo "$name: timed out after ${TIMEOUT}s"
		echo "FAIL: $name (${secs}s)"
		failed=$((failed + 1))
		failed_names+=("$name")
	fi
}

units=()
integ=()
for t in "$@"; do
	case $t in
	*.sh) integ+=("$t") ;;
	*) units+=("$t") ;;
	esac
done

n=0
for t in "${units[@]}"; do
	n=$((n + 1))
	if [ -x "$top_builddir/$t" ]; then
		run_one "$n" "$t" "$top_builddir/$t"
	else
		echo "missing test binary $top_builddir/$t" >"$OUT/$n.log"
		echo 127 >"$OUT/$n.rc"
	fi
	report "$n" "$t"
done

# Integration tests: a small pool; each finished job is reported at once.
declare -A running=()
for t in "${integ[@]}"; do
	while [ "${#running[@]}" -ge "$JOBS" ]; do
		wait -n -p done_pid
		report "${running[$done_pid]%%:*}" "${running[$done_pid]#*:}"
		unset "running[$done_pid]"
	done
	n=$((n + 1))
	if [ -f "$top_srcdir/$t" ]; then
		run_one "$n" "$t" bash "$top_srcdir/$t" &
		running[$!]="$n:$t"
	else
		echo "missing test script $top_srcdir/$t" >"$OUT/$n.log"
		echo 127 >"$OUT/$n.rc"
		report "$n" "$t"
	fi
done
while [ "${#running[@]}" -gt 0 ]; do
	wait -n -p done_pid
	report "${running[$done_pid]%%:*}" "${running[$done_pid]#*:}"
	unset "running[$done_pid]"
done

[ "$failed" -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
