# gridvfs integration-test harness: sourced by every tests/integration/*.sh.
# Starts nfs-ganesha (and gridvfsd in front of it) on private ports in a
# private work dir, and tears everything down on exit, so tests can run in
# parallel. Functions are h_*; internal helpers are h__*.
#
# Usage summary (details above each function):
#   h_init NAME            work dir $H_DIR, logs, teardown trap
#   h_free_port            print a free, reserved loopback TCP port
#   h_take_port VAR        the same into VAR (lock released at teardown)
#   h_rpcbind              make sure rpcbind runs (never stopped by us)
#   h_ganesha              start ganesha: H_NFS_PORT H_MNT_PORT H_EXPORT H_GANESHA_PID
#   h_ganesha_stop [SIG]   stop it (default TERM)
#   h_ganesha_restart [SIG] stop with SIG, start again on the same ports
#   h_gridvfsd [ARGS...]   start gridvfsd in front of ganesha: H_PX_PORT H_PX_PID
#   h_store UP MNT [ARGS]  a server role (mTLS) in front of UP: H_SR_PORT, H_NODE_TLS
#   h_mount_coarse DIR SIZE an ext4 with whole-second timestamps at DIR
#   h_url_direct [PATH]    libnfs URL of EXPORT/PATH straight to ganesha
#   h_url_proxy [PATH]     the same URL through gridvfsd
#   h_tool NAME            path of tests/tools/NAME (built into $H_DIR if needed)
#   h_tree DIR             canonical listing of DIR (for on-disk checks)
#   h_log MSG / h_fail MSG / h_pass / h_sha256 FILE / h_wait_tcp PORT SECS

# Defaults: the runner exports both; standalone runs use the repo root.
: "${top_srcdir:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir

H_PORT_LOCKS="${TMPDIR:-/tmp}/gridvfs-test-ports"
H_PIDS=()
H_MOUNTS=()   # mount points unmounted at teardown (h_mount_tmpfs)
H_PORTS=()
H_NAME=""
H_DIR=""

# h_init NAME: create $H_DIR (mktemp under ${TMPDIR:-/tmp}) and arm the
# teardown trap. Every later helper logs to $H_DIR/test.log.
h_init() {
	H_NAME="$1"
	H_DIR="$(mktemp -d "${TMPDIR:-/tmp}/gridvfs-${H_NAME}.XXXXXX")" ||
		{ echo "FAIL: $H_NAME: cannot create work dir"; exit 1; }
	: >"$H_DIR/test.log"
	trap 'h__teardown' EXIT
	# INT/TERM (e.g. the runner's timeout) go through EXIT too.
	trap 'exit 130' INT
	trap 'exit 143' TERM
	h_log "work dir $H_DIR"
}

h_log() {
	printf '%s %s\n' "$(date +%T.%3N)" "$*" >>"${H_DIR:-/dev/null}/test.log"
}

# h__teardown: kill what we started (newest first), release ports, remove
# the work dir unless KEEP=1. Keeps the script's exit status.
h__teardown() {
	local rc=$? i pid
	trap - EXIT INT TERM
	# Background jobs of the test itself (nfs-cp &...) go first.
	for pid in $(jobs -p); do
		kill -TERM "$pid" 2>/dev/null
	done
	for ((i = ${#H_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${H_PIDS[i]}
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $(jobs -p) "${H_PIDS[@]}"; do
		h__wait_gone "$pid" 10 || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	done
	for i in "${H_PORTS[@]}"; do
		rm -rf "${H_PORT_LOCKS:?}/$i"
	done
	for i in "${H_MOUNTS[@]}"; do
		umount -l "$i" 2>/dev/null
	done
	if [ -n "$H_DIR" ] && [ -d "$H_DIR" ]; then
		if [ "${KEEP:-0}" = 1 ]; then
			echo "KEEP=1: work dir left at $H_DIR" >&2
		else
			rm -rf "$H_DIR"
		fi
	fi
	exit "$rc"
}

# h__wait_gone PID SECS: wait for a process (ours or not) to disappear.
h__wait_gone() {
	local pid=$1 n=$(($2 * 10))
	while kill -0 "$pid" 2>/dev/null && [ "$n" -gt 0 ]; do
		# Reap our own children so they do not linger as zombies.  A
		# killed daemon's main thread turns zombie before its other
		# threads have exited, and those still hold its files (the
		# listening socket, the cache's lock): gone means no thread of
		# it is left.  (A disowned pid is not waited for: wait would
		# return at once, so /proc is what tells.)
		if ! ps -o stat= -p "$pid" 2>/dev/null | grep -q '^[^Z]' &&
			[ "$(ls "/proc/$pid/task" 2>/dev/null | wc -l)" -le 1 ]; then
			wait "$pid" 2>/dev/null
			return 0
		fi
		sleep 0.1
		n=$((n - 1))
	done
	! kill -0 "$pid" 2>/dev/null && { wait "$pid" 2>/dev/null; return 0; }
	return 1
}

h__forget_pid() {
	local i
	for i in "${!H_PIDS[@]}"; do
		[ "${H_PIDS[i]}" = "$1" ] && unset 'H_PIDS[i]'
	done
	H_PIDS=("${H_PIDS[@]}")
}

# h_fail MSG: print the one-line reason, the tails of the logs on stderr
# (H_DUMP_LOGS=0 silences them), and exit 1.
h_fail() {
	local f
	echo "FAIL: ${H_NAME}: $*"
	h_log "FAIL: $*"
	# Called from a subshell (a pipeline's "| check", "$(...)") exit
	# only leaves the subshell: leave a mark h_pass will find.
	[ -n "$H_DIR" ] && echo "$*" >>"$H_DIR/FAILED"
	if [ "${H_DUMP_LOGS:-1}" = 1 ] && [ -n "$H_DIR" ]; then
		for f in "$H_DIR"/*.log; do
			[ -s "$f" ] || continue
			echo "--- tail of $(basename "$f") ---" >&2
			tail -n 15 "$f" >&2
		done
	fi
	exit 1
}

h_pass() {
	if [ -n "$H_DIR" ] && [ -s "$H_DIR/FAILED" ]; then
		echo "FAIL: ${H_NAME}: failed in a subshell: $(head -n 3 "$H_DIR/FAILED")"
		exit 1
	fi
	echo "PASS: ${H_NAME}"
	exit 0
}

h_sha256() {
	sha256sum "$1" | cut -d' ' -f1
}

# h_tree DIR: one sorted line per entry below DIR:
# "PATH TYPE MODE NLINK UID GID [SIZE SHA256 | ->TARGET]" (find's %y types:
# f d l p c b s). Directory sizes are left out: they depend on the fs.
h_tree() {
	local dir=$1 rel type rest
	(cd "$dir" && find . -mindepth 1 -printf '%P\t%y\t%m %n %U %G\t%s\t%l\n') |
	while IFS=$'\t' read -r rel type rest size target; do
		case $type in
		f) echo "$rel $type $rest $size $(h_sha256 "$dir/$rel")" ;;
		l) echo "$rel $type $rest ->$target" ;;
		d) echo "$rel $type $rest" ;;
		*) echo "$rel $type $rest $size" ;;
		esac
	done | LC_ALL=C sort
}

# h_free_port: print a loopback TCP port that nothing listens on and that no
# other test of ours holds. Ports come from below the kernel's ephemeral
# range so outgoing connections cannot take them; a lock dir per port keeps
# parallel tests apart (stale locks of dead owners are taken over).
h_free_port() {
	local lo p tries owner
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
	[ -n "$lo" ] && [ "$lo" -gt 12000 ] || lo=32768
	mkdir -p "$H_PORT_LOCKS"
	for ((tries = 0; tries < 200; tries++)); do
		p=$((10000 + (RANDOM * 32768 + RANDOM) % (lo - 10000)))
		if ! mkdir "$H_PORT_LOCKS/$p" 2>/dev/null; then
			owner=$(cat "$H_PORT_LOCKS/$p/pid" 2>/dev/null)
			[ -n "$owner" ] && kill -0 "$owner" 2>/dev/null && continue
			rm -rf "${H_PORT_LOCKS:?}/$p"
			mkdir "$H_PORT_LOCKS/$p" 2>/dev/null || continue
		fi
		echo $$ >"$H_PORT_LOCKS/$p/pid"
		if h__port_bindable "$p"; then
			H_PORTS+=("$p")
			echo "$p"
			return 0
		fi
		rm -rf "${H_PORT_LOCKS:?}/$p"
	done
	echo "h_free_port: no free port found" >&2
	return 1
}

# h_take_port VAR: like h_free_port, into VAR. $(h_free_port) runs in a
# subshell and cannot tell teardown about its lock (a stale lock is only
# reclaimed once this test's shell is gone); this records it here.
h_take_port() {
	local __var=$1 __p
	__p=$(h_free_port) || h_fail "no free TCP port"
	H_PORTS+=("$__p")
	printf -v "$__var" '%s' "$__p"
}

h__port_bindable() {
	if command -v python3 >/dev/null 2>&1; then
		python3 - "$1" <<-'EOF' 2>/dev/null
			import socket, sys
			s = socket.socket()
			s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
			s.bind(("127.0.0.1", int(sys.argv[1])))
		EOF
		return
	fi
	# No python: at least make sure nobody listens there.
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# h_wait_log FILE ERE SECS: wait until a line of FILE matches the extended
# regular expression (a daemon's log says something happened); 1 if it
# did not within SECS.
h_wait_log() {
	local n
	for ((n = 0; n < $3 * 10; n++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# h_wait_tcp PORT SECS [PID]: wait until 127.0.0.1:PORT accepts a TCP
# connection; fail early if PID dies.
h_wait_tcp() {
	local port=$1 n=$(($2 * 10)) pid=$3
	while [ "$n" -gt 0 ]; do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
		[ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && return 1
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# h_rpcbind: ganesha registers with rpcbind at start-up, so one must run. It
# is shared by parallel tests and by the system: started (under a lock) if
# absent, never stopped by the harness.
h_rpcbind() {
	command -v rpcbind >/dev/null 2>&1 ||
		for d in /usr/sbin /sbin; do [ -x $d/rpcbind ] && PATH="$PATH:$d"; done
	(
		flock -w 30 9 || exit 1
		h__rpcbind_up && exit 0
		h__rpcbind_start -w || h__rpcbind_start
		for _ in $(seq 50); do h__rpcbind_up && exit 0; sleep 0.1; done
		exit 1
	) 9>"${TMPDIR:-/tmp}/gridvfs-test-rpcbind.lock" || h_fail "rpcbind not running and cannot be started"
	h_log "rpcbind up"
}

# rpcbind outlives the test and does not close inherited descriptors when it
# daemonizes: started with fd 9 open it would hold the lock above forever
# (every later test then times out on it), and with the runner's output pipe
# open it would keep that pipe from ever reaching EOF. Start it with nothing
# but stdio.
h__rpcbind_start() {
	(
		for fd in $(ls /proc/$BASHPID/fd); do
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec rpcbind "$@" </dev/null >/dev/null 2>>"${H_DIR:-/tmp}/rpcbind.log"
	)
}

h__rpcbind_up() {
	if command -v rpcinfo >/dev/null 2>&1; then
		rpcinfo -p 127.0.0.1 >/dev/null 2>&1
	else
		(exec 3<>/dev/tcp/127.0.0.1/111) 2>/dev/null
	fi
}

# h_ganesha [EXPORT_DIR]: (one per test) start nfs-ganesha on two fresh ports, exporting
# EXPORT_DIR (default $H_DIR/export, created) over NFSv3/TCP. Waits until a
# libnfs client can list the export. Sets H_NFS_PORT, H_MNT_PORT, H_EXPORT,
# H_GANESHA_PID, H_GANESHA_DIR.
h_ganesha() {
	# H_GANESHA_NAME (default ganesha) names its dir and logs: set it to
	# run a second instance (save the first one's H_* variables first).
	H_GANESHA_DIR="$H_DIR/${H_GANESHA_NAME:-ganesha}"
	H_EXPORT="${1:-$H_DIR/export}"
	mkdir -p "$H_GANESHA_DIR/recov" "$H_EXPORT" || h_fail "cannot create ganesha dirs"
	h_rpcbind
	h_take_port H_NFS_PORT
	h_take_port H_MNT_PORT
	h__ganesha_conf >"$H_GANESHA_DIR/ganesha.conf"
	export H_NFS_PORT H_MNT_PORT H_EXPORT
	h__ganesha_start
}

# Why each setting: Protocols/Transports = v3 over TCP only; Enable_UDP off
# so instances do not also bind UDP; NLM/RQUOTA off (no fixed ports, no
# statd); Graceless so a restart serves I/O at once (v3 has no grace anyway
# but ganesha's grace blocks some ops); a private RecoveryRoot so parallel
# instances do not share /var/lib/nfs/ganesha. No dbus is needed: ganesha
# logs a CRIT line without the system bus and carries on.
h__ganesha_conf() {
	cat <<-EOF
		NFS_CORE_PARAM {
			Protocols = 3;
			NFS_Port = $H_NFS_PORT;
			MNT_Port = $H_MNT_PORT;
			Bind_addr = 127.0.0.1;
			Enable_NLM = false;
			Enable_RQUOTA = false;
			Enable_UDP = false;
		}
		NFSV4 { Graceless = true; RecoveryRoot = "$H_GANESHA_DIR/recov"; }
		NFS_KRB5 { Active_krb5 = false; }
		EXPORT {
			Export_Id = 1;
			Path = "$H_EXPORT";
			Pseudo = /x;
			Access_Type = RW;
			Squash = No_Root_Squash;
			Protocols = 3;
			Transports = TCP;
			SecType = sys;
			# Tests change files behind ganesha's back: have it
			# look at the disk for attributes every time, as knfsd
			# does, instead of trusting its own cache for 60 s.
			Attr_Expiration_Time = 0;
			${H_GANESHA_EXPORT_EXTRA:-}
			FSAL { Name = VFS; }
		}
	EOF
}

h__ganesha_start() {
	local try
	# ganesha exits at once when it cannot register with rpcbind; a
	# shared rpcbind may be restarting under another test: start it
	# again (if need be) and retry, up to three times.
	for try in 1 2 3; do
		h__ganesha_start_once && return 0
		grep -q "Cannot register" "$H_DIR/${H_GANESHA_NAME:-ganesha}.log" ||
			break
		h_log "ganesha could not register with rpcbind (try $try)"
		h__forget_pid "$H_GANESHA_PID"
		h_rpcbind
		sleep 1
	done
	h_fail "ganesha exited at start-up: $(tail -n 3 "$H_DIR/${H_GANESHA_NAME:-ganesha}.log" | tr '\n' ' ')"
}

# One start; 1 when ganesha exited at start-up (the caller decides).
h__ganesha_start_once() {
	local bin=${GANESHA_BIN:-/usr/bin/ganesha.nfsd} n
	[ -x "$bin" ] || h_fail "ganesha not installed ($bin)"
	local log="$H_DIR/${H_GANESHA_NAME:-ganesha}.log"
	"$bin" -F -f "$H_GANESHA_DIR/ganesha.conf" -L "$log" \
		-p "$H_GANESHA_DIR/ganesha.pid" -N "${GANESHA_LOG_LEVEL:-NIV_EVENT}" \
		</dev/null >>"$H_DIR/${H_GANESHA_NAME:-ganesha}.out.log" 2>&1 &
	H_GANESHA_PID=$!
	# Disowned: restarts SIGKILL it, and bash would report each "Killed"
	# job on stderr. Bash still reaps it; teardown only needs kill -0.
	disown "$H_GANESHA_PID"
	export H_GANESHA_PID
	H_PIDS+=("$H_GANESHA_PID")
	h_log "ganesha pid $H_GANESHA_PID nfs $H_NFS_PORT mnt $H_MNT_PORT export $H_EXPORT"
	for ((n = 0; n < 300; n++)); do
		kill -0 "$H_GANESHA_PID" 2>/dev/null || return 1
		if nfs-ls "$(h_url_direct)" >/dev/null 2>&1; then
			h_log "ganesha answers after $n polls"
			return 0
		fi
		sleep 0.1
	done
	h_fail "ganesha did not answer within 30 s: $(tail -n 3 "$log" | tr '\n' ' ')"
}

# h_ganesha_stop [SIG]: send SIG (default TERM) and wait until it is gone
# (SIGKILL after 15 s).
h_ganesha_stop() {
	local sig=${1:-TERM}
	[ -n "$H_GANESHA_PID" ] || return 0
	kill -"$sig" "$H_GANESHA_PID" 2>/dev/null
	if ! h__wait_gone "$H_GANESHA_PID" 15; then
		kill -KILL "$H_GANESHA_PID" 2>/dev/null
		h__wait_gone "$H_GANESHA_PID" 5
	fi
	h_log "ganesha $H_GANESHA_PID stopped (SIG$sig)"
	h__forget_pid "$H_GANESHA_PID"
	H_GANESHA_PID=""
}

# h_ganesha_restart [SIG]: stop with SIG (default TERM) and start again with
# the same config, ports and export; waits until it answers.
h_ganesha_restart() {
	h_ganesha_stop "${1:-TERM}"
	h__ganesha_start
}

# h_gridvfsd [ARGS...]: start $top_builddir/gridvfsd as a client-role proxy
# on a fresh port in front of the running ganesha; extra ARGS are appended.
# Waits until it accepts TCP connections. Sets H_PX_PORT, H_PX_PID.
# A missing binary is a failure, not a skip.
h_gridvfsd() {
	[ -n "$H_NFS_PORT" ] || h_fail "h_gridvfsd needs h_ganesha first"
	if h__direct_as_proxy; then
		return 0
	fi
	h_gridvfsd_at gridvfsd "$H_NFS_PORT" "$H_MNT_PORT" --role client "$@"
	H_PX_PORT=$H_AT_PORT H_PX_PID=$H_AT_PID
	export H_PX_PORT H_PX_PID
}

# h_gridvfsd_at NAME UPSTREAM_PORT MOUNT_PORT ARGS...: start any gridvfsd
# (give --role) on a free port in front of 127.0.0.1:UPSTREAM_PORT, logging
# to $H_DIR/NAME.log; sets H_AT_PORT and H_AT_PID.  For chains of daemons.
h_gridvfsd_at() {
	local bin="$top_builddir/gridvfsd" name=$1 up=$2 mnt=$3
	shift 3
	[ -x "$bin" ] || h_fail "gridvfsd not built ($bin)"
	h_take_port H_AT_PORT
	# -c /dev/null: a machine's /etc/gridvfs/gridvfsd.conf must not leak in.
	"$bin" -c /dev/null --listen "127.0.0.1:$H_AT_PORT" \
		--upstream "127.0.0.1:$up" --mount-upstream "127.0.0.1:$mnt" \
		--foreground --log-level "${GRIDVFSD_LOG_LEVEL:-debug}" "$@" \
		</dev/null >>"$H_DIR/$name.log" 2>&1 &
	H_AT_PID=$!
	H_PIDS+=("$H_AT_PID")
	h_log "$name pid $H_AT_PID port $H_AT_PORT upstream $up args: $*"
	h_wait_tcp "$H_AT_PORT" 20 "$H_AT_PID" ||
		h_fail "$name did not accept connections on $H_AT_PORT"
}

# h_store UPSTREAM_PORT MOUNT_PORT [ARGS...]: a server-role gridvfsd as
# deployed (mTLS with a test CA in $H_DIR/ca, the node's DN mapped to the
# accounts in $H_STORE_ACCOUNTS, default root; --squash none) in front of
# 127.0.0.1:UPSTREAM_PORT; sets H_SR_PORT, H_SR_PID and H_NODE_TLS (the
# client role's TLS options, an array).  Call it once per test.
h_store() {
	local up=$1 mnt=$2 gv="$top_builddir/gridvfs" dn
	shift 2
	H_CA=$H_DIR/ca
	{ $gv ca init "$H_CA" && $gv ca issue "$H_CA" --name store --server 127.0.0.1; } \
		>>"$H_DIR/test.log" 2>&1 || h_fail "h_store: test CA failed"
	dn=$($gv ca issue "$H_CA" --name node | tail -n 1 | sed 's/ ACCOUNT$//')
	[ -n "$dn" ] || h_fail "h_store: no node certificate"
	echo "$dn ${H_STORE_ACCOUNTS:-root}" >"$H_DIR/grid-mapfile"
	h_gridvfsd_at store "$up" "$mnt" --role server --squash none \
		--tls-cert "$H_CA/store.crt" --tls-key "$H_CA/store.key" \
		--tls-ca "$H_CA/ca.crt" --grid-mapfile "$H_DIR/grid-mapfile" "$@"
	H_SR_PORT=$H_AT_PORT H_SR_PID=$H_AT_PID
	H_NODE_TLS=(--tls-cert "$H_CA/node.crt" --tls-key "$H_CA/node.key"
		--tls-ca "$H_CA/ca.crt")
}

# h_mount_tmpfs DIR SIZE: a tmpfs of SIZE (e.g. 8m) at DIR, unmounted at
# teardown.
h_mount_tmpfs() {
	mkdir -p "$1" && mount -t tmpfs -o "size=$2" tmpfs "$1" || h_fail "cannot mount a tmpfs at $1"
	H_MOUNTS+=("$1")
}

# h_mount_coarse DIR SIZE: an ext4 with 128-byte inodes (whole-second
# timestamps, like many servers' file systems) on a loop image at DIR,
# unmounted at teardown: a same-size overwrite within a second leaves the
# file's (size, mtime, ctime) unchanged.
h_mount_coarse() {
	mkdir -p "$1" && truncate -s "$2" "$H_DIR/coarse.img" &&
		mkfs.ext4 -q -F -I 128 "$H_DIR/coarse.img" >/dev/null 2>&1 &&
		mount -o loop "$H_DIR/coarse.img" "$1" || h_fail "cannot mount a coarse-time ext4 at $1"
	H_MOUNTS+=("$1")
}

# h_relay VAR TARGET_PORT ARGS...: a tests/tools/wanrelay on a free port in
# front of 127.0.0.1:TARGET_PORT (extra wanrelay ARGS, e.g. --rpc --stats F
# --delay-ms 10 --rate-mbit 100); the port goes to VAR.
h_relay() {
	local var=$1 target=$2 port
	shift 2
	h_take_port "$var"
	port=${!var}
	"$top_builddir/tests/tools/wanrelay" --listen "127.0.0.1:$port" \
		--target "127.0.0.1:$target" "$@" >>"$H_DIR/relay-$port.log" 2>&1 &
	H_PIDS+=($!)
	h_wait_tcp "$port" 10 $! || h_fail "wanrelay did not start on $port"
}

# h_stat FILE KEY: a counter from a wanrelay --stats file (0 if absent),
# after asking the relays to write their counters now.
h_stat() {
	pkill -USR1 -f "wanrelay .*--stats $1" 2>/dev/null
	sleep 0.2
	awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$1" 2>/dev/null || echo 0
}

# h_stop_pid PID: SIGTERM a daemon the harness started; returns its status.
h_stop_pid() {
	local rc
	kill -TERM "$1" 2>/dev/null
	h__wait_gone "$1" 15 || h_fail "pid $1 ignored SIGTERM for 15 s"
	wait "$1" 2>/dev/null
	rc=$?
	h__forget_pid "$1"
	return "$rc"
}

# h_gridvfsd_stop: SIGTERM the proxy and require exit status 0.
h_gridvfsd_stop() {
	local rc
	[ -n "$H_PX_PID" ] || return 0
	kill -TERM "$H_PX_PID" 2>/dev/null
	h__wait_gone "$H_PX_PID" 15 || h_fail "gridvfsd ignored SIGTERM for 15 s"
	wait "$H_PX_PID" 2>/dev/null
	rc=$?
	h__forget_pid "$H_PX_PID"
	H_PX_PID=""
	return "$rc"
}

# Debugging aid only: H_DEBUG_DIRECT_AS_PROXY=1 makes the "proxy" URL point
# at ganesha itself, to check a test's logic without gridvfsd. Ignored under
# CI so it can never turn a missing proxy into a pass.
h__direct_as_proxy() {
	[ "${H_DEBUG_DIRECT_AS_PROXY:-0}" = 1 ] && [ -z "${CI:-}" ] || return 1
	echo "WARNING: H_DEBUG_DIRECT_AS_PROXY=1: no proxy under test" >&2
	h_log "H_DEBUG_DIRECT_AS_PROXY=1: proxy URL is ganesha"
	H_PX_PORT=""
	H_PX_PID=""
	return 0
}

# h_url_direct [PATH]: URL of $H_EXPORT/PATH (PATH starts with / or is
# empty) talking to ganesha's own ports.
h_url_direct() {
	printf 'nfs://127.0.0.1%s%s?version=3&nfsport=%s&mountport=%s\n' \
		"$H_EXPORT" "${1:-}" "$H_NFS_PORT" "$H_MNT_PORT"
}

# h_url_proxy [PATH]: the same through gridvfsd (NFS and MOUNT share its port).
h_url_proxy() {
	if [ -z "$H_PX_PORT" ] && [ "${H_DEBUG_DIRECT_AS_PROXY:-0}" = 1 ] && [ -z "${CI:-}" ]; then
		h_url_direct "$@"
		return
	fi
	printf 'nfs://127.0.0.1%s%s?version=3&nfsport=%s&mountport=%s\n' \
		"$H_EXPORT" "${1:-}" "$H_PX_PORT" "$H_PX_PORT"
}

# h_tool NAME: print the path of the test tool NAME, for
# `X=$(h_tool nfsops) || h_fail ...`. Uses the one make built
# ($top_builddir/tests/tools/NAME) unless its source is newer; otherwise
# compiles $top_srcdir/tests/tools/NAME.c into $H_DIR so tests also run
# standalone. Errors go to stderr and return 1.
h_tool() {
	local built="$top_builddir/tests/tools/$1" src="$top_srcdir/tests/tools/$1.c"
	if [ -x "$built" ] && { [ ! -f "$src" ] || [ "$built" -nt "$src" ]; }; then
		echo "$built"
		return 0
	fi
	[ -x "$H_DIR/$1" ] && { echo "$H_DIR/$1"; return 0; }
	[ -f "$src" ] || { echo "test tool $1 missing" >&2; return 1; }
	# shellcheck disable=SC2046
	if ! ${CC:-cc} -std=gnu11 -O2 -Wall -o "$H_DIR/$1" "$src" \
		$(pkg-config --cflags --libs libnfs) >>"$H_DIR/build.log" 2>&1; then
		echo "cannot build test tool $1 (see build.log)" >&2
		return 1
	fi
	echo "$H_DIR/$1"
}
