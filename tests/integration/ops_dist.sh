#!/bin/bash
# ops_dist: the release tarball is complete and builds out of tree.
#  - `make distdir` from this build tree into a work dir, packed with the
#    same tar command (and format) as `make dist`, then extracted;
#  - when the source tree is a git checkout: every tracked file is in the
#    tarball, and nothing git ignores (build products) is;
#  - the extracted tree, read-only, is configured and built out of tree
#    (-j2), its unit tests pass (`make check INTEGRATION_TESTS=`: not the
#    integration suite, which this tree's own `make check` runs);
#  - `make install DESTDIR=` then `make uninstall DESTDIR=` leave no file,
#    `make distclean` leaves no file in the build dir, and the build never
#    wrote into the source tree (compared file by file: as root the a-w
#    permissions alone would not stop it).
# `make distcheck` is the full version of this (the integration suite
# out of tree too, about 4 minutes); this takes 35-50 s.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init ops_dist

# Called from `make check`: the outer make's jobserver is not ours.
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -s "$@"; }
# fail MSG: give the source tree its write permission back first, so that
# the teardown can remove it as any user.
fail() {
	[ -d "$H_DIR/src" ] && chmod -R u+w "$H_DIR/src"
	h_fail "$@"
}
t0=$(date +%s)
lap() { h_log "$1: $(($(date +%s) - t0))s"; }

# --- the tarball -----------------------------------------------------------
# distdir= puts the tree into our work dir rather than into the build tree
# (where a tarball of the user's own could be); ops-dist-tar is `make
# dist`'s own packing line ($(am__tar): tar's v7 format, 99-byte names).
cat >"$H_DIR/dist.mk" <<'EOF'
ops-dist-name:
	@echo $(distdir)
ops-dist-tar:
	@cd "$(OPS_DIR)" && tardir=$(distdir) && $(am__tar) | eval GZIP= gzip $(GZIP_ENV) -c >$(distdir).tar.gz
EOF
# (The last line: a stale Makefile is remade first, and says so.)
pv=$(mk -C "$top_builddir" -f Makefile -f "$H_DIR/dist.mk" ops-dist-name | tail -n 1)
[[ $pv =~ ^[A-Za-z0-9._+-]+$ ]] || fail "cannot read the distribution name: $pv"
mk -C "$top_builddir" distdir distdir="$H_DIR/$pv" >"$H_DIR/dist.log" 2>&1 ||
	fail "make distdir failed: $(tail -n 5 "$H_DIR/dist.log")"
mk -C "$top_builddir" -f Makefile -f "$H_DIR/dist.mk" ops-dist-tar OPS_DIR="$H_DIR" \
	>>"$H_DIR/dist.log" 2>&1 || fail "packing the tarball failed: $(tail -n 5 "$H_DIR/dist.log")"
rm -rf "${H_DIR:?}/${pv:?}"
mkdir "$H_DIR/src"
tar -C "$H_DIR/src" -xzf "$H_DIR/$pv.tar.gz" || fail "cannot extract $pv.tar.gz"
S="$H_DIR/src/$pv"
[ -x "$S/configure" ] || fail "the tarball has no configure"
(cd "$S" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$H_DIR/shipped"
h_log "$pv.tar.gz: $(wc -l <"$H_DIR/shipped") files, $(du -k "$H_DIR/$pv.tar.gz" | cut -f1) KiB"
lap "dist"

# --- complete: every tracked file; clean: nothing git ignores --------------
src_real=$(cd "$top_srcdir" && pwd -P)
if [ "$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null)" = "$src_real" ]; then
	# Only .gitignore files stay out of the tarball on purpose.
	(cd "$top_srcdir" && git ls-files -z | xargs -0 -r ls -d 2>/dev/null) |
		grep -v -e '^\.gitignore$' -e '/\.gitignore$' | LC_ALL=C sort >"$H_DIR/tracked"
	missing=$(LC_ALL=C comm -23 "$H_DIR/tracked" "$H_DIR/shipped")
	[ -z "$missing" ] || fail "tracked but not in the tarball (add them to EXTRA_DIST or a _SOURCES): ${missing//$'\n'/ }"
	# What `make dist` generates (autoreconf's output) is ignored by git
	# and belongs in the tarball; anything else ignored does not.
	junk=$(cd "$top_srcdir" && LC_ALL=C comm -13 "$H_DIR/tracked" "$H_DIR/shipped" |
		grep -v -x -e configure -e aclocal.m4 -e config.h.in -e 'build-aux/.*' -e '\(.*/\)\{0,1\}Makefile\.in' |
		git check-ignore --stdin)
	[ -z "$junk" ] || fail "ignored by git (build products) but in the tarball: ${junk//$'\n'/ }"
	h_log "all $(wc -l <"$H_DIR/tracked") tracked files shipped, no ignored file"
else
	h_log "$top_srcdir is no git checkout (a tarball): file lists not compared"
fi

# --- out of tree, read-only source ----------------------------------------
chmod -R a-w "$S"
h_tree "$S" >"$H_DIR/tree.before"
mkdir "$H_DIR/build"
cd "$H_DIR/build" || fail "no build dir"
cfg=()
# The same warning policy as the tree under test (CI builds with -Werror).
"$top_builddir/config.status" --config 2>/dev/null | grep -q -- "--enable-werror" &&
	cfg+=(--enable-werror)
"$S/configure" "${cfg[@]}" >"$H_DIR/configure.log" 2>&1 ||
	fail "configure of the tarball failed: $(tail -n 5 "$H_DIR/configure.log")"
lap "configure"
mk -j2 >"$H_DIR/build.log" 2>&1 || fail "build from the tarball failed: $(grep -m 5 -e 'rror' -e 'No rule' "$H_DIR/build.log")"
lap "build"
mk -j2 check INTEGRATION_TESTS= >"$H_DIR/check.log" 2>&1 ||
	fail "unit tests of the tarball failed: $(grep -e '^FAIL' -e 'missing test' -e 'rror' "$H_DIR/check.log" | head -n 5)"
grep -q '^[1-9][0-9]* passed, 0 failed$' "$H_DIR/check.log" || fail "the unit tests did not run: $(tail -n 3 "$H_DIR/check.log")"
h_log "unit tests: $(tail -n 1 "$H_DIR/check.log")"
lap "check"

# --- install, uninstall, distclean -----------------------------------------
D="$H_DIR/dest"
mk install DESTDIR="$D" >"$H_DIR/install.log" 2>&1 || fail "make install failed: $(tail -n 5 "$H_DIR/install.log")"
n=$(find "$D" -type f | wc -l)
[ "$n" -ge 7 ] || fail "make install installed only $n files: $(find "$D" -type f)"
mk uninstall DESTDIR="$D" >>"$H_DIR/install.log" 2>&1 || fail "make uninstall failed: $(tail -n 5 "$H_DIR/install.log")"
left=$(find "$D" ! -type d | sed "s|^$D||")
[ -z "$left" ] || fail "make uninstall left: ${left//$'\n'/ }"
h_log "install/uninstall: $n files in, none left"
mk distclean >"$H_DIR/distclean.log" 2>&1 || fail "make distclean failed: $(tail -n 5 "$H_DIR/distclean.log")"
left=$(find . ! -type d)
[ -z "$left" ] || fail "make distclean left: ${left//$'\n'/ }"
cd "$H_DIR" || fail "no work dir"

h_tree "$S" >"$H_DIR/tree.after"
chmod -R u+w "$S"
changed=$(diff "$H_DIR/tree.before" "$H_DIR/tree.after")
[ -z "$changed" ] || fail "the out-of-tree build wrote into the source tree: $changed"
lap "total"
echo "ops_dist: $pv.tar.gz ($(wc -l <"$H_DIR/shipped") files) built out of tree in $(($(date +%s) - t0))s"
h_pass
