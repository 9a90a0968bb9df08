#!/bin/bash
# ops_man: the man pages render with man -l and groff without a warning, and
# cannot fall behind the code: every long option of gridvfsd --help is in
# gridvfsd(8) and is a key in gridvfs.conf(5); every gridvfs command and
# option, and every mount.gridvfs option, is in its page.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
h_init ops_man

MAN="$top_srcdir/docs/man"
PAGES="gridvfsd.8 gridvfs.1 mount.gridvfs.8 gridvfs.conf.5"
command -v man >/dev/null || h_fail "man not installed (man-db)"
command -v groff >/dev/null || h_fail "groff not installed (groff-base)"
for b in gridvfsd gridvfs mount.gridvfs; do
	[ -x "$top_builddir/$b" ] || h_fail "$b not built"
done

# render PAGE: plain text, wide lines so that nothing is hyphenated away.
render() {
	LC_ALL=C MANWIDTH=250 MAN_KEEP_FORMATTING= man -l "$MAN/$1" 2>/dev/null | sed 's/.\x08//g'
}

for p in $PAGES; do
	[ -f "$MAN/$p" ] || h_fail "missing page $p"
	# man-db's --warnings passes -w all to groff; both must be silent.
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$MAN/$p" 2>&1 >/dev/null)
	[ -z "$warn" ] || h_fail "man -l $p warns: $warn"
	warn=$(groff -ww -z -man "$MAN/$p" 2>&1)
	[ -z "$warn" ] || h_fail "groff -ww $p warns: $warn"
	render "$p" >"$H_DIR/$p.txt"
	grep -q '^NAME' "$H_DIR/$p.txt" && grep -q '^SEE ALSO' "$H_DIR/$p.txt" ||
		h_fail "$p renders without NAME or SEE ALSO"
	h_log "$p: $(wc -l <"$H_DIR/$p.txt") lines, no warnings"
done
# gridvfsd: every long option of --help, in the page and as a config key.
"$top_builddir/gridvfsd" --help >"$H_DIR/gridvfsd.help" || h_fail "gridvfsd --help failed"
opts=$(grep -oE -- '--[a-z][a-z0-9-]+' "$H_DIR/gridvfsd.help" | sort -u)
[ "$(echo "$opts" | wc -l)" -ge 40 ] || h_fail "only $(echo "$opts" | wc -l) options in gridvfsd --help?"
for o in $opts; do
	grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" "$H_DIR/gridvfsd.8.txt" ||
		h_fail "gridvfsd.8 does not document $o (in gridvfsd --help)"
	case $o in --help | --version | --config | --check-config) continue ;; esac
	grep -qE "^ +${o#--} = " "$H_DIR/gridvfs.conf.5.txt" ||
		h_fail "gridvfs.conf.5 lists no key ${o#--} (gridvfsd $o)"
done
# The signals and exit codes --help names are in the page too.
sigs=$(grep -oE 'SIG[A-Z0-9]+' "$H_DIR/gridvfsd.help" | sort -u)
for w in $sigs SIGHUP "EXIT STATUS" FILES EXAMPLES; do
	grep -q "$w" "$H_DIR/gridvfsd.8.txt" || h_fail "gridvfsd.8 lacks $w"
done
# And no key of the page is unknown to the daemon (a removed option).
grep -oE '^       [a-z][a-z0-9-]+ = ' "$H_DIR/gridvfs.conf.5.txt" |
	awk '{ print $1 }' | sort -u >"$H_DIR/conf.keys"
[ -s "$H_DIR/conf.keys" ] || h_fail "no keys found in gridvfs.conf.5"
while read -r k; do
	case $k in
	path | upstream-path) # keys of [export NAME] sections only
		grep -q "^       $k = /DIR" "$H_DIR/gridvfs.conf.5.txt" ||
			h_fail "gridvfs.conf.5 does not describe the section key $k"
		continue ;;
	esac
	grep -q -- "--$k" "$H_DIR/gridvfsd.help" || h_fail "gridvfs.conf.5 lists $k, which gridvfsd --help does not know"
done <"$H_DIR/conf.keys"

# gridvfs: every command of 'help' and every option of the commands' help.
G="$top_builddir/gridvfs"
{
	"$G" help
	"$G" cache --help
	"$G" ca --help
	"$G" idmap check --help
	"$G" status --help
	"$G" meta --help
} >"$H_DIR/gridvfs.help" 2>&1
cmds=$("$G" help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
[ -n "$cmds" ] || h_fail "no commands in gridvfs help"
while read -r c; do
	grep -q "$c" "$H_DIR/gridvfs.1.txt" || h_fail "gridvfs.1 lacks the command '$c'"
done <<<"$cmds"
for sub in stat verify evict init issue revoke; do
	grep -qw "$sub" "$H_DIR/gridvfs.1.txt" || h_fail "gridvfs.1 lacks '$sub'"
done
for o in $(grep -oE -- '--[a-z][a-z0-9-]+' "$H_DIR/gridvfs.help" | sort -u); do
	grep -q -- "$o" "$H_DIR/gridvfs.1.txt" || h_fail "gridvfs.1 does not document $o"
done

# mount.gridvfs: option words and flags of --help.
"$top_builddir/mount.gridvfs" --help >"$H_DIR/mount.help" 2>&1
mopts=$(sed -n '/^Mount-helper options:/,/^Every other/p' "$H_DIR/mount.help" |
	grep -oE '^  [a-z_]+(=|[ ,])' | tr -d ' =,' | sort -u)
[ "$(echo "$mopts" | wc -w)" -ge 10 ] || h_fail "few options parsed from mount.gridvfs --help: $mopts"
for o in $mopts; do
	grep -qE "(^|[^a-z_])$o([^a-z_]|\$)" "$H_DIR/mount.gridvfs.8.txt" ||
		h_fail "mount.gridvfs.8 does not document $o"
done
for f in -o -v -f -n -s -h -V --help --version; do
	grep -qE -- "(^|[ ,])$f([ ,]|\$)" "$H_DIR/mount.gridvfs.8.txt" ||
		h_fail "mount.gridvfs.8 lacks the flag $f"
done
codes=$(sed -n '/^Exit status/,$p' "$H_DIR/mount.help" | grep -oE '^  [0-9]+' | tr -d ' ')
for c in $codes; do
	grep -qE "^       $c( |\$)" "$H_DIR/mount.gridvfs.8.txt" || h_fail "mount.gridvfs.8 lacks exit status $c"
done
h_log "checked $(echo "$opts" | wc -l) gridvfsd options, $(echo "$mopts" | wc -w) mount options, exit codes: $codes"
h_pass
