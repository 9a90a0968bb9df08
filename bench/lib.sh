# shellcheck shell=bash
# bench/lib.sh: helpers shared by bench/bench.sh and bench/demo.sh, on top
# of tests/lib/harness.sh (sourced here: its h_init trap tears down every
# process whose pid is in H_PIDS). Functions are b_*.
#
#   b_bin NAME            path of a built program (gridvfsd, bench/nfsrand…)
#   b_has_opt OPT         does the built gridvfsd's --help mention OPT?
#   b_relay VAR PORT      wanrelay (20 ms RTT, 100 Mbit/s) in front of
#                         127.0.0.1:PORT: VAR=listen port, VAR_CTL=socket
#   b_proxy VAR NFS MNT [ARGS]  client-role gridvfsd to upstream ports NFS
#                         and MNT: VAR=port, VAR_PID=pid
#   b_server VAR NFS MNT [ARGS] the same, server role
#   b_url NFS MNT PATH    libnfs URL of $H_EXPORT/PATH via those ports
#   b_wan_bytes CTL...    bytes_up+bytes_down summed over relays
#   b_median              median of numbers on stdin, one per line

: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
# shellcheck source=../tests/lib/harness.sh
. "$top_srcdir/tests/lib/harness.sh"

B_DELAY_MS=${B_DELAY_MS:-10}     # one way: 20 ms RTT
B_RATE_MBIT=${B_RATE_MBIT:-100}

b_bin() {
	local p
	for p in "$top_builddir/$1" "$top_builddir/bench/$1" "$top_builddir/tests/tools/$1"; do
		[ -x "$p" ] && [ ! -d "$p" ] && { echo "$p"; return 0; }
	done
	echo "b_bin: $1 is not built (run make, or make bench)" >&2
	return 1
}

b_has_opt() {
	"$top_builddir/gridvfsd" --help 2>&1 | grep -q -- "$1"
}

# b_relay VAR TARGET_PORT [EXTRA wanrelay ARGS]
b_relay() {
	local __var=$1 target=$2 port pid ctl
	shift 2
	h_take_port port
	ctl="$H_DIR/wan-$__var.ctl"
	"$(b_bin wanrelay)" --listen "127.0.0.1:$port" --target "127.0.0.1:$target" \
		--delay-ms "$B_DELAY_MS" --rate-mbit "$B_RATE_MBIT" --rpc \
		--stats "$H_DIR/wan-$__var.stats" --control "$ctl" "$@" \
		</dev/null >>"$H_DIR/wanrelay.log" 2>&1 &
	pid=$!
	H_PIDS+=("$pid")
	h_log "wanrelay $__var pid $pid port $port -> $target"
	h_wait_tcp "$port" 10 "$pid" || h_fail "wanrelay did not start (see wanrelay.log)"
	printf -v "$__var" '%s' "$port"
	printf -v "${__var}_CTL" '%s' "$ctl"
	printf -v "${__var}_PID" '%s' "$pid"
}

# b_daemon ROLE LOG VAR UP_NFS_PORT UP_MNT_PORT [EXTRA gridvfsd ARGS]: a
# gridvfsd of ROLE on a free port in front of the given upstream, logging to
# $H_DIR/LOG; sets VAR (its port) and VAR_PID.
b_daemon() {
	local role=$1 log=$2 __var=$3 nfs=$4 mnt=$5 port pid
	shift 5
	h_take_port port
	"$top_builddir/gridvfsd" -c /dev/null --role "$role" --listen "127.0.0.1:$port" \
		--upstream "127.0.0.1:$nfs" --mount-upstream "127.0.0.1:$mnt" \
		--foreground --log-level "${GRIDVFSD_LOG_LEVEL:-warn}" "$@" \
		</dev/null >>"$H_DIR/$log" 2>&1 &
	pid=$!
	H_PIDS+=("$pid")
	h_log "gridvfsd $role $__var pid $pid port $port -> $nfs/$mnt args: $*"
	h_wait_tcp "$port" 20 "$pid" || h_fail "$role-role gridvfsd did not start (see $log)"
	printf -v "$__var" '%s' "$port"
	printf -v "${__var}_PID" '%s' "$pid"
}

# b_proxy VAR UP_NFS_PORT UP_MNT_PORT [ARGS]: a client-role gridvfsd.
b_proxy() { b_daemon client gridvfsd.log "$@"; }

# b_server VAR UP_NFS_PORT UP_MNT_PORT [ARGS]: a server-role gridvfsd (in
# front of the store).
b_server() { b_daemon server gridvfsd-server.log "$@"; }

# b_proxy_stop PID: SIGTERM one proxy we started and wait for it.
b_proxy_stop() {
	kill -TERM "$1" 2>/dev/null
	h__wait_gone "$1" 15 || kill -KILL "$1" 2>/dev/null
	h__forget_pid "$1"
}

b_url() {
	printf 'nfs://127.0.0.1%s/%s?version=3&nfsport=%s&mountport=%s\n' \
		"$H_EXPORT" "${3#/}" "$1" "$2"
}

b_wan_bytes() {
	local ctl sum=0 v
	for ctl in "$@"; do
		v=$("$(b_bin wanrelay)" --ctl "$ctl" stats 2>/dev/null |
			awk '$1 == "bytes_up" || $1 == "bytes_down" { s += $2 } END { print s + 0 }')
		sum=$((sum + v))
	done
	echo "$sum"
}

b_median() {
	LC_ALL=C sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
