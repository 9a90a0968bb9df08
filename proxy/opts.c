/*
 * proxy/opts.c — gridvfsd's command line: parsing, validation with clear
 * messages, and the --help text (kept in step with docs/man/gridvfsd.8 and
 * gridvfs.conf.5: tests/integration/ops_man.sh compares them).
 */
#include "config.h"
#include "proxy/px.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
"Usage: gridvfsd --role client|server --upstream HOST[:PORT] [OPTIONS]\n"
"\n"
"gridvfsd is the gridvfs proxy daemon.  It accepts NFSv3 and MOUNTv3 calls\n"
"(ONC RPC over TCP) from unmodified NFS clients and forwards them to an\n"
"upstream NFSv3 server or another gridvfsd, answering both programs on one\n"
"port so that clients can use port=P,mountport=P.\n"
"\n"
"Roles:\n"
"  --role client        runs on a hypervisor node, next to the NFS client\n"
"  --role server        runs at the image store, in front of its NFS server\n"
"\n"
"Addresses:\n"
"  --listen ADDR:PORT   where to accept clients (default 127.0.0.1:2049);\n"
"                       IPv6 as [ADDR]:PORT\n"
"  --upstream HOST[:PORT]\n"
"                       the NFS server (or gridvfsd) to forward to\n"
"                       (port default 2049); required\n"
"  --mount-upstream HOST[:PORT]\n"
"                       where MOUNT calls go; default: ask the upstream\n"
"                       host's rpcbind for MOUNT v3 over TCP\n"
"  --register           register NFS v3 and MOUNT v3 on the listening port\n"
"                       with the local rpcbind (unregistered at exit)\n"
"\n"
"Identity mapping (on with any of these options; always on for the server\n"
"role, which then squashes root by default):\n"
"  --map FILE           static uid/gid map in the user-space nfsd map_static\n"
"                       format: 'uid|gid CLIENT[-HI] STORE|-' lines (see\n"
"                       gridvfs idmap check); reloaded on SIGHUP, a bad map\n"
"                       is refused with FILE:LINE and the old one stays\n"
"  --squash root|all|none\n"
"                       map client root (default), every id, or none to the\n"
"                       anonymous id\n"
"  --anonuid N, --anongid N\n"
"                       the store's anonymous ids (default 65534)\n"
"  --unmapped squash|deny\n"
"                       ids no map line covers act as the anonymous id\n"
"                       (default) or are refused: their NFS calls fail with\n"
"                       NFS3ERR_ACCES (EACCES at the client) and nothing\n"
"                       reaches the store\n"
"\n"
"Link security (RPC-with-TLS, RFC 9289: an AUTH_TLS probe, then TLS 1.3\n"
"with ALPN sunrpc and mutual X.509 on the same connection):\n"
"  --tls require|optional|off\n"
"                       server role: what clients must do (default\n"
"                       require; a plaintext call then gets AUTH_TOOWEAK\n"
"                       and the connection is closed); client role: what\n"
"                       the upstream link does (default require when\n"
"                       --tls-cert is given, else off)\n"
"  --tls-cert FILE      our certificate chain (PEM)\n"
"  --tls-key FILE       our private key (PEM; refused unless mode 0600 or\n"
"                       stricter)\n"
"  --tls-ca FILE        CA bundle that peers' certificates must chain to\n"
"  --tls-crl FILE       certificate revocation list (PEM), optional\n"
"  --tls-server-name NAME\n"
"                       client role: the name or IP the server certificate\n"
"                       must carry (default: the --upstream host)\n"
"  --compress auto|on|off\n"
"                       zstd between a client role and a server role over\n"
"                       TLS (agreed in the handshake as ALPN gridvfs-z1;\n"
"                       other RFC 9289 peers get plain sunrpc).  auto\n"
"                       (default): compress records of 1K and more while\n"
"                       this end measures its link below --compress-below;\n"
"                       on: always; off: never offer or accept it.  Records\n"
"                       that do not shrink by an eighth go plain\n"
"  --compress-below MBIT\n"
"                       auto's threshold, Mbit/s (default 1000): above it\n"
"                       the compressor would be slower than the wire\n"
"  --grid-mapfile FILE  server role: Globus grid-mapfile mapping client\n"
"                       certificate DNs to store accounts; a peer with no\n"
"                       entry is refused, and its calls may act only as its\n"
"                       accounts (other ids are squashed, or refused under\n"
"                       --unmapped deny)\n"
"  --plaintext-accounts ACCT[,ACCT...]\n"
"                       server role with --tls optional: the accounts a\n"
"                       plaintext client may act as (its other ids are\n"
"                       squashed, or refused under --unmapped deny);\n"
"                       default none: plaintext clients act as the\n"
"                       anonymous id.  'optional' on either role lets a\n"
"                       network attacker strip TLS: it is logged as an\n"
"                       error at start-up\n"
"\n"
"Local identities (client role): AUTH_SYS is a claim the store believes.\n"
"A call from a reserved source port (< 1024) is believed, as with Linux's\n"
"'secure' exports; so is one from a local socket of root or of the user\n"
"gridvfsd runs as (the kernel names the owner).  Another local user may\n"
"claim only its own uid and groups; a remote peer on an unreserved port is\n"
"refused.  Refused calls get AUTH_TOOWEAK and a log line.\n"
"  --insecure           believe every AUTH_SYS credential, from any port\n"
"                       (the old behaviour; logs a warning)\n"
"\n"
"Read cache (client role; LMDB, persistent across restarts):\n"
"  --cache-dir DIR      keep a block cache in DIR (created if missing); off\n"
"                       without it.  A corrupt or foreign cache file is moved\n"
"                       aside and rebuilt; a full disk turns filling off\n"
"                       with a warning, reads go on\n"
"  --cache-size BYTES   cap on the cache (default 10G; K, M, G suffixes);\n"
"                       least recently used blocks are evicted\n"
"  --cache-block BYTES  block size, a power of two from 4K to 1M (default\n"
"                       64K); fixed when the cache is created\n"
"  --consistency strict|immutable\n"
"                       strict (default): close-to-open; every attribute\n"
"                       seen in a reply sets the file's version and blocks\n"
"                       of other versions are never served.  immutable:\n"
"                       golden images; the first version seen is trusted\n"
"                       for --immutable-ttl seconds\n"
"  --immutable-ttl SEC  (default 3600)\n"
"  --access-ttl SEC     a cached block is served to a user only if upstream\n"
"                       let that user (uid and groups) read that version of\n"
"                       the file (a chmod revokes) within this many seconds\n"
"                       (default 30)\n"
"  --stream-readahead on|off\n"
"                       images with trusted metadata (NAME.gvmeta): detect\n"
"                       sequential and constant-stride reads per file and\n"
"                       fetch ahead of them, 128K growing to 4M (default on)\n"
"  --background-fetch on|off\n"
"                       once an image with trusted metadata is opened,\n"
"                       fetch its non-zero blocks that are not cached, in\n"
"                       the background, only while no client READ waits\n"
"                       for upstream (default on)\n"
"  --background-share PCT\n"
"                       cap on the background fetch: PCT % (1-100) of the\n"
"                       upstream rate the proxy measures (default 50)\n"
"\n"
"Write policy (client role):\n"
"  --write-policy through|back\n"
"                       through (default): WRITE and COMMIT go upstream\n"
"                       as they are.  back: WRITEs are answered once the\n"
"                       data is in the log DIR/dirty under --cache-dir\n"
"                       (stable WRITEs: flushed to disk; UNSTABLE ones:\n"
"                       written and flushed once per group, and the write\n"
"                       verifier changes if a machine crash may have lost\n"
"                       some), and flushed upstream in the background;\n"
"                       COMMIT waits for upstream's stable COMMIT\n"
"  --dirty-max BYTES    unflushed data allowed before writes wait for the\n"
"                       flusher (default 1G)\n"
"\n"
"Learned prefetch profiles:\n"
"  --learn-profiles yes|no\n"
"                       note the order in which READs first touch each\n"
"                       image (regular file >= --learn-min-size, in 64 KiB\n"
"                       blocks) and,\n"
"                       when the boot is over, publish it as the image's\n"
"                       prefetch profile in NAME.gvmeta beside it (written\n"
"                       as the image's owner, atomically; a scan's hashes\n"
"                       are kept; an attached profile is never replaced).\n"
"                       Default: yes in the server role, no in the client\n"
"                       role (for stores without a server role)\n"
"  --learn-idle SEC     an image without a newly touched block for SEC\n"
"                       seconds has finished booting (default 20)\n"
"  --learn-boots N      build a learned profile from the first N boots\n"
"                       (default 1; later boots add only new blocks)\n"
"  --learn-min-size BYTES\n"
"                       smaller files are not learned, so that documents\n"
"                       and archives get no NAME.gvmeta (default 64M;\n"
"                       K, M, G suffixes; at least 1M)\n"
"\n"
"Limits (each protects the daemon from one misbehaving peer):\n"
"  --max-record BYTES   largest RPC record accepted from either side\n"
"                       (default 1052672 = 1 MiB + 4 KiB); a larger one\n"
"                       closes that connection with a logged reason\n"
"  --max-conns N        client connections at once (default 1024).  When\n"
"                       full, the oldest unauthenticated connection (one\n"
"                       still before TLS, or an idle one) makes room;\n"
"                       authenticated ones are never shed: a newcomer is\n"
"                       then accepted and closed, with a log line\n"
"  --max-unauth-per-addr N\n"
"                       unauthenticated connections from one source at\n"
"                       once (default 32): server role, before the TLS\n"
"                       handshake completes (or plaintext under --tls\n"
"                       optional), per address; client role, a non-root\n"
"                       local user per uid, a remote peer per address.\n"
"                       One more replaces that source's oldest such one\n"
"  --handshake-timeout SEC\n"
"                       server role: a client that has not completed the\n"
"                       TLS probe and handshake this long after connecting\n"
"                       is closed (default 10).  Before that, under --tls\n"
"                       require, one record of at most 4 KiB is accepted\n"
"  --max-client-calls N outstanding calls per client connection before the\n"
"                       proxy stops reading from it (default 128)\n"
"  --max-client-out BYTES\n"
"                       replies queued for a client that does not read\n"
"                       before the proxy stops reading its calls\n"
"                       (default 16777216)\n"
"  --max-pending N      outstanding upstream calls in total before all\n"
"                       clients are paused (default 4096)\n"
"  --record-timeout SEC a client holding a half-sent record this long is\n"
"                       disconnected (default 30)\n"
"  --upstream-timeout SEC\n"
"                       how long calls wait for an unreachable upstream\n"
"                       before they fail with SYSTEM_ERR (default 120;\n"
"                       0 waits forever, like a hard mount)\n"
"  --drain-timeout SEC  on SIGTERM, how long outstanding calls may take\n"
"                       before they fail (default 10)\n"
"  --busy-poll USEC     while calls are outstanding, poll for replies\n"
"                       without sleeping for up to USEC microseconds\n"
"                       (default 0: off).  Cuts the added latency of a\n"
"                       small call roughly in half at the cost of CPU\n"
"                       time that the NFS server may need on small hosts\n"
"  --dup-window SEC     how long a completed non-idempotent call is\n"
"                       remembered so a client's retransmission reaches\n"
"                       upstream with the same XID and bytes (default 120)\n"
"\n"
"Observability:\n"
"  --control PATH       control socket for 'gridvfs status' (mode 0600);\n"
"                       default /run/gridvfs/gridvfsd-PORT.sock with PORT the\n"
"                       listening port; 'none' turns it off\n"
"  --metrics ADDR:PORT  serve Prometheus text metrics at\n"
"                       http://ADDR:PORT/metrics (off by default; there is\n"
"                       no authentication: keep it on a loopback address)\n"
"\n"
"Running:\n"
"  -F, --foreground     stay in the foreground and log to stderr\n"
"                       (default: detach and log to syslog)\n"
"  -c, --config FILE    read options from FILE, one 'key = value' a line\n"
"                       (keys are these long options; default\n"
"                       " PX_CONFIG_PATH ", skipped if\n"
"                       absent); the command line wins.  [export NAME]\n"
"                       sections put several stores, each with its own\n"
"                       upstream and policies, behind one port, chosen by\n"
"                       the path a client mounts (gridvfs.conf(5))\n"
"  --check-config       check the options and the file, print the\n"
"                       effective configuration, and exit\n"
"  --pidfile FILE       write the daemon's pid to FILE (refused if it is a\n"
"                       symlink or not a regular file)\n"
"  --state-dir DIR      where the secret key of export handle tags is kept\n"
"                       (DIR/handle-key, made on first use, mode 0600;\n"
"                       default " PX_STATE_DIR "); only with [export]\n"
"                       sections\n"
"  --user NAME          after opening the listening socket, keys, cache and\n"
"                       control socket as root, run as NAME (no way back)\n"
"  --upstream-privport  connect upstream from a reserved port (< 1024), as\n"
"                       Linux 'secure' exports require; with --user, keeps\n"
"                       only CAP_NET_BIND_SERVICE for it\n"
"  --log-level LEVEL    error, warn, info (default) or debug\n"
"  --syslog             log to syslog even in the foreground\n"
"  -h, --help           show this text\n"
"  -V, --version        show the version\n"
"\n"
"Signals: SIGTERM and SIGINT drain (stop accepting, let outstanding calls\n"
"finish for --drain-timeout, fail the rest) and exit 0.  SIGHUP reads the\n"
"configuration again without dropping connections: maps, TLS files, the\n"
"grid-mapfile, log level, limits and timeouts apply at once; settings\n"
"fixed at start-up are logged as waiting for the next start; a bad file\n"
"changes nothing.  SIGUSR1 logs a one-line status.\n"
"\n"
"Exit status: 0 after a clean shutdown, 1 on a start-up failure (bad\n"
"option, address in use), 2 on a usage error or a configuration file\n"
"error (reported as FILE:LINE).\n";

enum {
	OPT_ROLE = 256, OPT_LISTEN, OPT_UPSTREAM, OPT_MOUNT_UPSTREAM,
	OPT_REGISTER, OPT_PIDFILE, OPT_LOG_LEVEL, OPT_SYSLOG, OPT_MAX_RECORD,
	OPT_MAX_CONNS, OPT_MAX_CLIENT_CALLS, OPT_MAX_CLIENT_OUT,
	OPT_MAX_PENDING, OPT_RECORD_TIMEOUT, OPT_UPSTREAM_TIMEOUT,
	OPT_DRAIN_TIMEOUT, OPT_DUP_WINDOW, OPT_MAP, OPT_SQUASH, OPT_ANONUID,
	OPT_ANONGID, OPT_UNMAPPED, OPT_TLS, OPT_TLS_CERT, OPT_TLS_KEY,
	OPT_TLS_CA, OPT_TLS_CRL, OPT_TLS_SERVER_NAME, OPT_GRID_MAPFILE,
	OPT_CACHE_DIR, OPT_CACHE_SIZE, OPT_CACHE_BLOCK, OPT_CONSISTENCY,
	OPT_IMMUTABLE_TTL, OPT_ACCESS_TTL, OPT_WRITE_POLICY, OPT_DIRTY_MAX,
	OPT_CHECK_CONFIG, OPT_LEARN_PROFILES, OPT_LEARN_IDLE, OPT_LEARN_BOOTS,
	OPT_LEARN_MIN_SIZE,
	OPT_CONTROL, OPT_BUSY_POLL, OPT_USER, OPT_UPSTREAM_PRIVPORT,
	OPT_METRICS, OPT_INSECURE, OPT_PLAINTEXT_ACCOUNTS,
	OPT_HANDSHAKE_TIMEOUT, OPT_MAX_UNAUTH_PER_ADDR, OPT_STATE_DIR,
	OPT_READAHEAD, OPT_BACKGROUND_FETCH, OPT_BACKGROUND_SHARE,
	OPT_COMPRESS, OPT_COMPRESS_BELOW,
};

static const struct option longopts[] = {
	{"role", required_argument, NULL, OPT_ROLE},
	{"listen", required_argument, NULL, OPT_LISTEN},
	{"upstream", required_argument, NULL, OPT_UPSTREAM},
	{"mount-upstream", required_argument, NULL, OPT_MOUNT_UPSTREAM},
	{"register", no_argument, NULL, OPT_REGISTER},
	{"foreground", no_argument, NULL, 'F'},
	{"pidfile", required_argument, NULL, OPT_PIDFILE},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"syslog", no_argument, NULL, OPT_SYSLOG},
	{"max-record", required_argument, NULL, OPT_MAX_RECORD},
	{"max-conns", required_argument, NULL, OPT_MAX_CONNS},
	{"max-client-calls", required_argument, NULL, OPT_MAX_CLIENT_CALLS},
	{"max-client-out", required_argument, NULL, OPT_MAX_CLIENT_OUT},
	{"max-pending", required_argument, NULL, OPT_MAX_PENDING},
	{"record-timeout", required_argument, NULL, OPT_RECORD_TIMEOUT},
	{"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
	{"max-unauth-per-addr", required_argument, NULL,
	 OPT_MAX_UNAUTH_PER_ADDR},
	{"upstream-timeout", required_argument, NULL, OPT_UPSTREAM_TIMEOUT},
	{"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
	{"dup-window", required_argument, NULL, OPT_DUP_WINDOW},
	{"map", required_argument, NULL, OPT_MAP},
	{"squash", required_argument, NULL, OPT_SQUASH},
	{"anonuid", required_argument, NULL, OPT_ANONUID},
	{"anongid", required_argument, NULL, OPT_ANONGID},
	{"unmapped", required_argument, NULL, OPT_UNMAPPED},
	{"tls", required_argument, NULL, OPT_TLS},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"tls-ca", required_argument, NULL, OPT_TLS_CA},
	{"tls-crl", required_argument, NULL, OPT_TLS_CRL},
	{"tls-server-name", required_argument, NULL, OPT_TLS_SERVER_NAME},
	{"compress", required_argument, NULL, OPT_COMPRESS},
	{"compress-below", required_argument, NULL, OPT_COMPRESS_BELOW},
	{"grid-mapfile", required_argument, NULL, OPT_GRID_MAPFILE},
	{"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
	{"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
	{"cache-block", required_argument, NULL, OPT_CACHE_BLOCK},
	{"consistency", required_argument, NULL, OPT_CONSISTENCY},
	{"immutable-ttl", required_argument, NULL, OPT_IMMUTABLE_TTL},
	{"access-ttl", required_argument, NULL, OPT_ACCESS_TTL},
	{"stream-readahead", required_argument, NULL, OPT_READAHEAD},
	{"background-fetch", required_argument, NULL, OPT_BACKGROUND_FETCH},
	{"background-share", required_argument, NULL, OPT_BACKGROUND_SHARE},
	{"write-policy", required_argument, NULL, OPT_WRITE_POLICY},
	{"dirty-max", required_argument, NULL, OPT_DIRTY_MAX},
	{"learn-profiles", required_argument, NULL, OPT_LEARN_PROFILES},
	{"learn-idle", required_argument, NULL, OPT_LEARN_IDLE},
	{"learn-boots", required_argument, NULL, OPT_LEARN_BOOTS},
	{"learn-min-size", required_argument, NULL, OPT_LEARN_MIN_SIZE},
	{"control", required_argument, NULL, OPT_CONTROL},
	{"busy-poll", required_argument, NULL, OPT_BUSY_POLL},
	{"user", required_argument, NULL, OPT_USER},
	{"metrics", required_argument, NULL, OPT_METRICS},
	{"upstream-privport", no_argument, NULL, OPT_UPSTREAM_PRIVPORT},
	{"insecure", no_argument, NULL, OPT_INSECURE},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"plaintext-accounts", required_argument, NULL, OPT_PLAINTEXT_ACCOUNTS},
	{"config", required_argument, NULL, 'c'},
	{"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* Parse an unsigned number in [lo, hi] with an optional K/M/G suffix. */
static int parse_num(const char *opt, const char *s, uint64_t lo, uint64_t hi,
		     bool suffix, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	if (suffix && *end) {
		unsigned shift = 0;

		switch (*end) {
		case 'k': case 'K': shift = 10; break;
		case 'm': case 'M': shift = 20; break;
		case 'g': case 'G': shift = 30; break;
		default: goto bad;
		}
		if (v > (ULLONG_MAX >> shift))
			goto bad;
		v <<= shift;
		end++;
	}
	if (*end || v < lo || v > hi)
		goto bad;
	*out = v;
	return 0;
bad:
	fprintf(stderr,
		"gridvfsd: --%s: '%s' is not a number from %" PRIu64
		" to %" PRIu64 "%s\n",
		opt, s, lo, hi, suffix ? " (K, M, G suffixes allowed)" : "");
	return -EINVAL;
}

int px_addr_parse(const char *s, uint16_t defport, struct sockaddr_storage *ss,
		  socklen_t *len)
{
	char host[256];
	const char *port = NULL;
	char portbuf[8];
	struct addrinfo hints = {0}, *res;
	size_t hl;

	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || (size_t)(close - s - 1) >= sizeof(host))
			return -EINVAL;
		hl = (size_t)(close - s - 1);
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (close[1] == ':')
			port = close + 2;
		else if (close[1])
			return -EINVAL;
	} else {
		const char *colon = strrchr(s, ':');

		hl = colon ? (size_t)(colon - s) : strlen(s);
		if (hl >= sizeof(host) || (colon && strchr(s, ':') != colon))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (colon)
			port = colon + 1;
	}
	if (!port) {
		snprintf(portbuf, sizeof(portbuf), "%u", defport);
		port = portbuf;
	}
	char *end;
	unsigned long p = strtoul(port, &end, 10);

	if (!*port || *end || p > 65535)
		return -EINVAL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(*host ? host : NULL, port, &hints, &res))
		return -EHOSTUNREACH;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

const char *px_addr_str(const struct sockaddr_storage *ss, char *buf,
			size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

static void opts_defaults(struct px_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->o_role = PX_ROLE_CLIENT;
	o->o_log_level = LOG_INFO;
	o->o_max_record = 1024 * 1024 + 4096;
	o->o_max_conns = 1024;
	o->o_max_client_calls = 128;
	o->o_max_client_out = 16u * 1024 * 1024;
	o->o_max_pending = 4096;
	o->o_record_timeout = 30;
	o->o_handshake_timeout = 10;
	o->o_max_unauth_per_addr = 32;
	o->o_upstream_timeout = 120;
	o->o_drain_timeout = 10;
	o->o_dup_window = 120;
	o->o_learn = -1;
	o->o_learn_idle = 20;
	o->o_learn_boots = 1;
	o->o_learn_min_size = 64u << 20;
	o->o_squash = -1;
	o->o_unmapped = -1;
	o->o_anonuid = -1;
	o->o_anongid = -1;
	o->o_tls = -1;
	o->o_cache_size = 10ull << 30;
	o->o_cache_block = 64u << 10;
	o->o_immutable_ttl = 3600;
	o->o_access_ttl = 30;
	o->o_readahead = true;
	o->o_bg_fetch = true;
	o->o_bg_share = 50;
	o->o_compress = 1; /* auto (zlink.h) */
	o->o_compress_below = 1000;
	o->o_dirty_max = 1ull << 30;
}

/* Defaults that depend on the role, and TLS files that must go together. */
static int opts_tls_finish(struct px_opts *o)
{
	if (o->o_tls < 0)
		o->o_tls = o->o_role == PX_ROLE_SERVER || o->o_tls_cert
				   ? PX_TLS_REQUIRE
				   : PX_TLS_OFF;
	if (o->o_tls == PX_TLS_OFF)
		return 0;
	if (!o->o_tls_cert || !o->o_tls_key || !o->o_tls_ca) {
		fprintf(stderr, "gridvfsd: --tls %s needs --tls-cert, --tls-key "
				"and --tls-ca%s\n",
			o->o_tls == PX_TLS_REQUIRE ? "require" : "optional",
			o->o_role == PX_ROLE_SERVER
				? " (the server role requires TLS by default; "
				  "--tls off turns it off)"
				: "");
		return -EINVAL;
	}
	if (o->o_role == PX_ROLE_SERVER && !o->o_grid_mapfile) {
		fprintf(stderr, "gridvfsd: the server role with TLS needs "
				"--grid-mapfile (which peers may act as whom)\n");
		return -EINVAL;
	}
	return 0;
}

bool px_opts_idmap_active(const struct px_opts *o)
{
	return o->o_role == PX_ROLE_SERVER || o->o_map || o->o_squash >= 0 ||
	       o->o_unmapped >= 0 || o->o_anonuid >= 0 || o->o_anongid >= 0;
}

/* Index of s in names[], or -1 after printing what was expected. */
static int pick(const char *opt, const char *s, const char *const *names,
		int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	fprintf(stderr, "gridvfsd: --%s: '%s' is not one of", opt, s);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "%s %s", i ? "," : "", names[i]);
	fputc('\n', stderr);
	return -1;
}

static int set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

/* Apply one option; 0, or -EINVAL after printing why. */
static int opts_apply(struct px_opts *o, int c, const char *arg)
{
	uint64_t v;
	int rc = 0;

	switch (c) {
	case 'c': /* read by px_config_load() before parsing */
		return 0;
	case OPT_CHECK_CONFIG:
		o->o_check_config = true;
		return 0;
	case OPT_ROLE:
		if (!strcmp(arg, "client"))
			o->o_role = PX_ROLE_CLIENT;
		else if (!strcmp(arg, "server"))
			o->o_role = PX_ROLE_SERVER;
		else {
			fprintf(stderr, "gridvfsd: --role: '%s' is neither "
					"'client' nor 'server'\n", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_LISTEN: return set_str(&o->o_listen, arg);
	case OPT_UPSTREAM: return set_str(&o->o_upstream, arg);
	case OPT_MOUNT_UPSTREAM: return set_str(&o->o_mount_upstream, arg);
	case OPT_REGISTER: o->o_register = true; return 0;
	case 'F': o->o_foreground = true; return 0;
	case OPT_PIDFILE: return set_str(&o->o_pidfile, arg);
	case OPT_SYSLOG: o->o_syslog = true; return 0;
	case OPT_LOG_LEVEL:
		if ((o->o_log_level = px_log_level_parse(arg)) < 0) {
			fprintf(stderr, "gridvfsd: --log-level: '%s' is not "
					"error, warn, info or debug\n", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_MAX_RECORD:
		rc = parse_num("max-record", arg, 8192, 64u << 20, true, &v);
		o->o_max_record = (size_t)v;
		break;
	case OPT_MAX_CONNS:
		rc = parse_num("max-conns", arg, 1, 1u << 20, false, &v);
		o->o_max_conns = (unsigned)v;
		break;
	case OPT_MAX_CLIENT_CALLS:
		rc = parse_num("max-client-calls", arg, 1, 65536, false, &v);
		o->o_max_client_calls = (unsigned)v;
		break;
	case OPT_MAX_CLIENT_OUT:
		rc = parse_num("max-client-out", arg, 65536, 1ull << 32, true,
			       &v);
		o->o_max_client_out = (size_t)v;
		break;
	case OPT_MAX_PENDING:
		rc = parse_num("max-pending", arg, 1, 1u << 20, false, &v);
		o->o_max_pending = (unsigned)v;
		break;
	case OPT_RECORD_TIMEOUT:
		rc = parse_num("record-timeout", arg, 1, 86400, false, &v);
		o->o_record_timeout = (unsigned)v;
		break;
	case OPT_HANDSHAKE_TIMEOUT:
		rc = parse_num("handshake-timeout", arg, 1, 3600, false, &v);
		o->o_handshake_timeout = (unsigned)v;
		break;
	case OPT_MAX_UNAUTH_PER_ADDR:
		rc = parse_num("max-unauth-per-addr", arg, 1, 1u << 20, false,
			       &v);
		o->o_max_unauth_per_addr = (unsigned)v;
		break;
	case OPT_UPSTREAM_TIMEOUT:
		rc = parse_num("upstream-timeout", arg, 0, 86400 * 365, false,
			       &v);
		o->o_upstream_timeout = (unsigned)v;
		break;
	case OPT_DRAIN_TIMEOUT:
		rc = parse_num("drain-timeout", arg, 0, 3600, false, &v);
		o->o_drain_timeout = (unsigned)v;
		break;
	case OPT_MAP: return set_str(&o->o_map, arg);
	case OPT_TLS: {
		static const char *const tm[] = {"off", "optional", "require"};

		return (o->o_tls = pick("tls", arg, tm, 3)) < 0 ? -EINVAL : 0;
	}
	case OPT_TLS_CERT: return set_str(&o->o_tls_cert, arg);
	case OPT_TLS_KEY: return set_str(&o->o_tls_key, arg);
	case OPT_TLS_CA: return set_str(&o->o_tls_ca, arg);
	case OPT_TLS_CRL: return set_str(&o->o_tls_crl, arg);
	case OPT_TLS_SERVER_NAME: return set_str(&o->o_tls_server_name, arg);
	case OPT_COMPRESS: {
		/* order matches enum zlink_mode */
		static const char *const cm[] = {"off", "auto", "on"};
		int m = pick("compress", arg, cm, 3);

		if (m < 0)
			return -EINVAL;
		o->o_compress = m;
		break;
	}
	case OPT_COMPRESS_BELOW:
		rc = parse_num("compress-below", arg, 1, 1000000, false, &v);
		o->o_compress_below = (unsigned)v;
		break;
	case OPT_GRID_MAPFILE: return set_str(&o->o_grid_mapfile, arg);
	case OPT_CACHE_DIR: return set_str(&o->o_cache_dir, arg);
	case OPT_CACHE_SIZE:
		rc = parse_num("cache-size", arg, 1u << 20, 1ull << 50, true, &v);
		o->o_cache_size = v;
		break;
	case OPT_CACHE_BLOCK:
		rc = parse_num("cache-block", arg, 4096, 1u << 20, true, &v);
		if (!rc && (v & (v - 1))) {
			fprintf(stderr, "gridvfsd: --cache-block: %s is not a "
					"power of two\n", arg);
			rc = -EINVAL;
		}
		o->o_cache_block = (uint32_t)v;
		break;
	case OPT_CONSISTENCY: {
		static const char *const cm[] = {"strict", "immutable"};

		return (o->o_consistency = pick("consistency", arg, cm, 2)) < 0
			       ? -EINVAL
			       : 0;
	}
	case OPT_CONTROL: return set_str(&o->o_control, arg);
	case OPT_USER: return set_str(&o->o_user, arg);
	case OPT_METRICS: return set_str(&o->o_metrics, arg);
	case OPT_UPSTREAM_PRIVPORT: o->o_upstream_privport = true; return 0;
	case OPT_INSECURE: o->o_insecure = true; return 0;
	case OPT_STATE_DIR: return set_str(&o->o_state_dir, arg);
	case OPT_PLAINTEXT_ACCOUNTS:
		return set_str(&o->o_plaintext_accounts, arg);
	case OPT_BUSY_POLL:
		rc = parse_num("busy-poll", arg, 0, 100000, false, &v);
		o->o_busy_poll_us = (unsigned)v;
		break;
	case OPT_WRITE_POLICY: {
		static const char *const wp[] = {"through", "back"};

		return (o->o_write_policy = pick("write-policy", arg, wp, 2)) < 0
			       ? -EINVAL
			       : 0;
	}
	case OPT_DIRTY_MAX:
		rc = parse_num("dirty-max", arg, 1u << 20, 1ull << 50, true, &v);
		o->o_dirty_max = v;
		break;
	case OPT_IMMUTABLE_TTL:
		rc = parse_num("immutable-ttl", arg, 1, 86400 * 365, false, &v);
		o->o_immutable_ttl = (unsigned)v;
		break;
	case OPT_ACCESS_TTL:
		rc = parse_num("access-ttl", arg, 0, 86400, false, &v);
		o->o_access_ttl = (unsigned)v;
		break;
	case OPT_READAHEAD:
	case OPT_BACKGROUND_FETCH: {
		static const char *const oo[] = {"off", "on"};
		int on = pick(c == OPT_READAHEAD ? "stream-readahead" : "background-fetch",
			      arg, oo, 2);

		if (on < 0)
			return -EINVAL;
		if (c == OPT_READAHEAD)
			o->o_readahead = on;
		else
			o->o_bg_fetch = on;
		return 0;
	}
	case OPT_BACKGROUND_SHARE: {
		char num[16];
		size_t n = strlen(arg);

		/* "50" or "50%" */
		if (n && n < sizeof(num) && arg[n - 1] == '%')
			n--;
		if (!n || n >= sizeof(num)) {
			fprintf(stderr, "gridvfsd: --background-share: %s is not a "
					"percentage\n", arg);
			return -EINVAL;
		}
		memcpy(num, arg, n);
		num[n] = '\0';
		rc = parse_num("background-share", num, 1, 100, false, &v);
		o->o_bg_share = (unsigned)v;
		break;
	}
	case OPT_SQUASH: {
		/* order matches enum idmap_squash */
		static const char *const sq[] = {"root", "all", "none"};

		return (o->o_squash = pick("squash", arg, sq, 3)) < 0 ? -EINVAL : 0;
	}
	case OPT_UNMAPPED: {
		static const char *const um[] = {"squash", "deny"};

		return (o->o_unmapped = pick("unmapped", arg, um, 2)) < 0 ? -EINVAL
									   : 0;
	}
	case OPT_ANONUID:
	case OPT_ANONGID:
		rc = parse_num(c == OPT_ANONUID ? "anonuid" : "anongid", arg, 1,
			       4294967294u, false, &v);
		if (c == OPT_ANONUID)
			o->o_anonuid = (int64_t)v;
		else
			o->o_anongid = (int64_t)v;
		break;
	case OPT_DUP_WINDOW:
		rc = parse_num("dup-window", arg, 0, 3600, false, &v);
		o->o_dup_window = (unsigned)v;
		break;
	case OPT_LEARN_PROFILES: {
		static const char *const yn[] = {"no", "yes"};

		return (o->o_learn = pick("learn-profiles", arg, yn, 2)) < 0
			       ? -EINVAL
			       : 0;
	}
	case OPT_LEARN_IDLE:
		rc = parse_num("learn-idle", arg, 1, 86400, false, &v);
		o->o_learn_idle = (unsigned)v;
		break;
	case OPT_LEARN_BOOTS:
		rc = parse_num("learn-boots", arg, 1, 64, false, &v);
		o->o_learn_boots = (unsigned)v;
		break;
	case OPT_LEARN_MIN_SIZE:
		rc = parse_num("learn-min-size", arg, 1u << 20, 1ull << 40, true,
			       &v);
		o->o_learn_min_size = v;
		break;
	default:
		return -EINVAL;
	}
	return rc;
}

/* Returns 0 to run, 1 when --help/--version was served, -EINVAL (usage). */
const struct option *px_opts_table(void)
{
	return longopts;
}

int px_opts_parse(struct px_opts *o, int argc, char **argv,
		  const struct px_config *pc)
{
	int c;
	struct sockaddr_storage ss;
	socklen_t sl;

	opts_defaults(o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "Fc:hV", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (c == 'V') {
			printf("gridvfsd %s\n", PACKAGE_VERSION);
			return 1;
		}
		if (c == '?' || opts_apply(o, c, optarg)) {
			const char *w = px_config_where(pc, optind - 1);

			if (w)
				fprintf(stderr, "gridvfsd: (set at %s)\n", w);
			fprintf(stderr, "Try 'gridvfsd --help'.\n");
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gridvfsd: unexpected argument '%s'\n"
				"Try 'gridvfsd --help'.\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->o_upstream) {
		fprintf(stderr, "gridvfsd: --upstream HOST[:PORT] is required\n"
				"Try 'gridvfsd --help'.\n");
		return -EINVAL;
	}
	if (!o->o_listen && set_str(&o->o_listen, "127.0.0.1:2049"))
		return -ENOMEM;
	if (o->o_learn < 0)
		o->o_learn = o->o_role == PX_ROLE_SERVER;
	if (o->o_write_policy == PX_WRITE_BACK &&
	    (o->o_role != PX_ROLE_CLIENT || !o->o_cache_dir)) {
		fprintf(stderr, "gridvfsd: --write-policy back needs the client "
				"role and --cache-dir (dirty data lives there)\n");
		return -EINVAL;
	}
	if (o->o_cache_dir && o->o_role == PX_ROLE_SERVER) {
		fprintf(stderr, "gridvfsd: --cache-dir is for the client role\n");
		return -EINVAL;
	}
	if (!o->o_control) {
		/* One daemon per listening port, so the port names it. */
		char buf[128];
		const char *port = strrchr(o->o_listen, ':');

		snprintf(buf, sizeof(buf), "/run/gridvfs/gridvfsd-%s.sock",
			 port ? port + 1 : "2049");
		if (set_str(&o->o_control, buf))
			return -ENOMEM;
		o->o_control_default = true;
	} else if (!strcmp(o->o_control, "none")) {
		free(o->o_control);
		o->o_control = NULL;
	}
	if (opts_tls_finish(o)) {
		fprintf(stderr, "Try 'gridvfsd --help'.\n");
		return -EINVAL;
	}
	const char *which[] = {"listen", "upstream", "mount-upstream",
			       "metrics"};
	const char *vals[] = {o->o_listen, o->o_upstream, o->o_mount_upstream,
			      o->o_metrics};

	for (int i = 0; i < 4; i++)
		if (vals[i] && px_addr_parse(vals[i], 2049, &ss, &sl)) {
			fprintf(stderr, "gridvfsd: --%s: cannot resolve '%s' "
					"(want HOST:PORT or [V6ADDR]:PORT)\n",
				which[i], vals[i]);
			return -EINVAL;
		}
	return 0;
}

void px_opts_free(struct px_opts *o)
{
	free(o->o_listen);
	free(o->o_upstream);
	free(o->o_mount_upstream);
	free(o->o_pidfile);
	free(o->o_plaintext_accounts);
	free(o->o_state_dir);
	free(o->o_map);
	free(o->o_tls_cert);
	free(o->o_tls_key);
	free(o->o_tls_ca);
	free(o->o_tls_crl);
	free(o->o_tls_server_name);
	free(o->o_grid_mapfile);
	free(o->o_cache_dir);
	free(o->o_control);
	free(o->o_user);
	free(o->o_metrics);
	free(o->o_export_name);
	free(o->o_export_path);
	free(o->o_upstream_path);
}
