#!/bin/bash
# Builds gridvfs with AddressSanitizer + UndefinedBehaviorSanitizer out of
# tree in build-asan/ and runs `make check` there: every unit test, every
# integration test (gridvfsd itself runs instrumented) and the fuzz corpus
# replay.  Any ASan/UBSan report or leak fails the test that caused it.
#   tests/sanitize.sh [--valgrind]   (--valgrind: also valgrind the units)
# If the source tree is also configured in place (./config.status exists),
# automake refuses an out-of-tree build of it, so the tracked sources are
# snapshotted into build-asan/src and built from there instead.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out="$src/build-asan"
valgrind=0
[ "${1:-}" = --valgrind ] && valgrind=1

start=$(date +%s)
mkdir -p "$out"
if [ -f "$src/config.status" ]; then
	echo "sanitize: $src is configured in place; building a snapshot"
	rm -rf "$out/src"
	mkdir -p "$out/src"
	if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$src" && git ls-files -co --exclude-standard -z |
			xargs -0 cp --parents -t "$out/src")
	else
		tar -C "$src" --exclude=./build-asan --exclude='*.o' \
			--exclude=config.status --exclude=Makefile --exclude=config.h \
			-cf - . | tar -C "$out/src" -xf -
	fi
	(cd "$out/src" && autoreconf -fi >/dev/null 2>&1)
	cfg="$out/src/configure"
	obj="$out/obj"
else
	[ -x "$src/configure" ] || (cd "$src" && autoreconf -fi)
	cfg="$src/configure"
	obj="$out"
fi
mkdir -p "$obj"
cd "$obj"
# Reconfigure only when needed, so a second run is incremental.
if [ ! -f Makefile ] || [ "$cfg" -nt config.status ]; then
	"$cfg" --enable-sanitizers --enable-werror CC=gcc >configure.log 2>&1 ||
		{ tail -30 configure.log; exit 1; }
fi
make -j"$(nproc)" >build.log 2>&1 || { tail -40 build.log; exit 1; }

# abort_on_error: a report kills the process with SIGABRT, so a daemon
# under test cannot report and carry on.  LeakSanitizer runs at exit.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
rc=0
# Every unit test and fuzz replay, and the integration scenarios that drive
# the daemon's own code paths hardest (bad input, faults, TLS, idmap,
# cache); the VM boots and FUSE mounts exercise other programs, and CI's
# 15 minutes go to the plain run of them.  SANITIZE_ALL=1 runs everything.
if [ "${SANITIZE_ALL:-0}" = 1 ]; then
	make -j"$(nproc)" check || rc=$?
else
	make -j"$(nproc)" check INTEGRATION_TESTS="tests/fuzz/run-regress.sh \
		tests/integration/proxy_procs.sh tests/integration/proxy_badinput.sh \
		tests/integration/proxy_sigterm.sh tests/integration/proxy_upstream_restart.sh \
		tests/integration/idmap_proxy.sh tests/integration/tls_chain.sh \
		tests/integration/link_zstd.sh \
		tests/integration/cache_read.sh tests/integration/proxy_status.sh \
		tests/integration/proxy_bad_upstream.sh tests/integration/ops_exports.sh \
		tests/integration/ops_reload.sh tests/integration/wb_perm.sh \
		tests/integration/wb_race.sh tests/integration/meta_learn.sh" || rc=$?
fi
if [ "$valgrind" = 1 ]; then
	echo "sanitize: valgrind over the unit tests of a plain build"
	bash "$src/tests/fuzz/valgrind-units.sh" || rc=1
fi
echo "sanitize: make check under ASan+UBSan took $(($(date +%s) - start))s (rc $rc)"
exit "$rc"
