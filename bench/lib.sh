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
#   b_ganesha_store       h_ganesha, with NFSv4 on as well (for PROXY_V4)
#   b_ganesha_pv4 VAR NFS a second ganesha, FSAL PROXY_V4 in front of the
#                         store's NFSv4 at NFS, serving NFSv3: VAR=NFS port,
#                         VAR_MNT, VAR_PID; or 1 with the reason in B_WHY
#   b_ganesha_pv4_stop PID  stop it (SIGKILL after 3 s)
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

# b_ganesha_store: the bench's store.  h_ganesha serves NFSv3 only; the
# PROXY_V4 peer talks NFSv4 (4.1) to its upstream, so turn v4 on too, and
# make the export's NFSv4 pseudo path its real path: the peer's Path then
# equals $H_EXPORT and every path mounts the same name.  Always on (not
# only when the peer runs), so direct figures do not depend on BENCH_ONLY.
b_ganesha_store() {
	local conf
	h_ganesha
	conf="$H_GANESHA_DIR/ganesha.conf"
	sed -i -e 's/Protocols = 3;/Protocols = 3, 4;/' \
		-e "s|Pseudo = /x;|Pseudo = \"$H_EXPORT\";|" "$conf"
	[ "$(grep -c 'Protocols = 3, 4;' "$conf")" = 2 ] && grep -q "Pseudo = \"$H_EXPORT\";" "$conf" ||
		h_fail "b_ganesha_store: h__ganesha_conf changed, cannot turn NFSv4 on (see $conf)"
	h_ganesha_restart
}

# b_ganesha_pv4 VAR UP_NFS_PORT: nfs-ganesha's own proxy (FSAL PROXY_V4,
# package nfs-ganesha-proxy-v4) in front of the store's NFSv4 on
# 127.0.0.1:UP_NFS_PORT, serving NFSv3 on ports of its own.  Its own dir
# (config, pid file, RecoveryRoot) and log; rpcbind registration cannot be
# turned off in ganesha 4, so, as in the harness, a start that lost a race
# for rpcbind is retried (the bench's clients never ask rpcbind: ports are
# in the URLs).  Waits until nfs-ls lists the export through it.  0 and
# VAR, VAR_MNT, VAR_PID; 1 with B_WHY (the skip line's reason) otherwise.
b_ganesha_pv4() {
	local __var=$1 up=$2 dir="$H_DIR/ganesha-pv4" bin=${GANESHA_BIN:-/usr/bin/ganesha.nfsd}
	local nfs mnt pid try n f have=""
	for f in /usr/lib/*/ganesha/libfsalproxy_v4.so /usr/lib*/ganesha/libfsalproxy_v4.so; do
		[ -e "$f" ] && have=$f
	done
	if [ -z "$have" ]; then
		B_WHY="FSAL PROXY_V4 not installed (package nfs-ganesha-proxy-v4: tests/tools/install-deps.sh)"
		return 1
	fi
	mkdir -p "$dir/recov"
	h_take_port nfs
	h_take_port mnt
	# Front end like the store's (NFSv3 over TCP only, no NLM/RQUOTA/UDP);
	# behind it ganesha's defaults for PROXY_V4 (1 MiB maxread/maxwrite,
	# NFSv4.1 to the store) but for the address and port.  The store
	# does not insist on reserved ports, so neither do we.
	cat >"$dir/ganesha.conf" <<-EOF
		NFS_CORE_PARAM {
			Protocols = 3;
			NFS_Port = $nfs;
			MNT_Port = $mnt;
			Bind_addr = 127.0.0.1;
			Enable_NLM = false;
			Enable_RQUOTA = false;
			Enable_UDP = false;
		}
		NFSV4 { Graceless = true; RecoveryRoot = "$dir/recov"; }
		NFS_KRB5 { Active_krb5 = false; }
		EXPORT {
			Export_Id = 1;
			Path = "$H_EXPORT";
			Pseudo = /pv4;
			Access_Type = RW;
			Squash = No_Root_Squash;
			Protocols = 3;
			Transports = TCP;
			SecType = sys;
			FSAL {
				Name = PROXY_V4;
				Srv_Addr = 127.0.0.1;
				NFS_Port = $up;
				Use_Privileged_Client_Port = false;
			}
		}
	EOF
	for try in 1 2 3; do
		"$bin" -F -f "$dir/ganesha.conf" -L "$H_DIR/ganesha-pv4.log" -p "$dir/ganesha.pid" \
			-N "${GANESHA_LOG_LEVEL:-NIV_EVENT}" </dev/null >>"$H_DIR/ganesha-pv4.out.log" 2>&1 &
		pid=$!
		# Disowned like the harness's ganesha: a SIGKILL (see
		# b_ganesha_pv4_stop) must not print a "Killed" job line.
		disown "$pid"
		H_PIDS+=("$pid")
		h_log "ganesha PROXY_V4 pid $pid nfs $nfs mnt $mnt -> store nfs $up"
		for ((n = 0; n < 300; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			if nfs-ls "$(b_url "$nfs" "$mnt" /)" >/dev/null 2>&1; then
				printf -v "$__var" '%s' "$nfs"
				printf -v "${__var}_MNT" '%s' "$mnt"
				printf -v "${__var}_PID" '%s' "$pid"
				return 0
			fi
			sleep 0.1
		done
		b_ganesha_pv4_stop "$pid"
		grep -q "Cannot register" "$H_DIR/ganesha-pv4.log" 2>/dev/null || break
		h_log "ganesha PROXY_V4 could not register with rpcbind (try $try)"
		h_rpcbind
		sleep 1
	done
	# The last serious log line, leaving out the ones every start has.
	f=$(grep -E ':(CRIT|MAJ|FATAL) :' "$H_DIR/ganesha-pv4.log" 2>/dev/null |
		grep -v -e DBUS -e krb5 -e keytab | tail -n 1 | sed 's/^.*\] //')
	B_WHY="ganesha with FSAL PROXY_V4 exited or did not serve $H_EXPORT within 30 s: ${f:-see ganesha-pv4.log (KEEP=1)}"
	return 1
}

# b_ganesha_pv4_stop PID: ganesha 4.3 with a PROXY_V4 export stalls in
# "Removing all exports" on SIGTERM (15 s and more): give it 3 s, then KILL.
b_ganesha_pv4_stop() {
	kill -TERM "$1" 2>/dev/null
	h__wait_gone "$1" 3 || { kill -KILL "$1" 2>/dev/null; h__wait_gone "$1" 5; }
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
