#!/bin/bash
# Runs every built unit-test binary (tests/unit/test_*) under valgrind
# memcheck: any invalid access, use of uninitialised memory or definite
# leak fails it.  Needs a build without sanitizers (valgrind cannot run
# ASan binaries).
#   valgrind-units.sh [BUILDDIR]   (default: $top_builddir or the repo)
: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
dir=${1:-$top_builddir}
command -v valgrind >/dev/null || { echo "valgrind not installed"; exit 1; }
if grep -q -- '-fsanitize' "$dir/Makefile" 2>/dev/null &&
	grep -q '^SAN_CFLAGS = -f' "$dir/Makefile"; then
	echo "valgrind-units: $dir is a sanitizer build; use a plain one"
	exit 1
fi
logs=$(mktemp -d "${TMPDIR:-/tmp}/gridvfs-vg.XXXXXX") || exit 1
trap 'rm -rf "$logs"' EXIT
pass=0 fail=0
for t in "$dir"/tests/unit/test_*; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	case $t in *.*) continue ;; esac
	name=$(basename "$t")
	start=$(date +%s)
	# errors-for-leak-kinds=definite: "possibly lost" blocks are what
	# OpenSSL and libc keep on purpose; a definite leak is ours.
	if valgrind -q --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite --error-exitcode=1 \
		--log-file="$logs/$name.vg" "$t" >"$logs/$name.out" 2>&1; then
		echo "PASS: valgrind $name ($(($(date +%s) - start))s)"
		pass=$((pass + 1))
	else
		echo "FAIL: valgrind $name ($(($(date +%s) - start))s)"
		tail -n 40 "$logs/$name.vg" "$logs/$name.out"
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
