/*
 * proxy/control.c — the local control socket behind `gridvfs status`: a
 * unix stream socket (mode 0600, so root or the daemon's user only) that
 * takes one request line ("status" or "status json") and answers with the
 * daemon's figures, then closes.  Also the per-procedure latency
 * histograms the status reports.
 */
#include "config.h"
#include "proxy/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cache/cache.h"

#define REPLY_MAX (256u << 10)

/* ---------------------------------------------------------------------- */
/* Latency histograms: bucket i holds samples below 2^(i/4) microseconds. */

/* Four buckets per power of two: bucket b covers [lo, lat_upper(b)). */
static unsigned lat_bucket(uint64_t us)
{
	unsigned lg, b;

	if (us < 4)
		return (unsigned)us;
	lg = 63u - (unsigned)__builtin_clzll(us);
	b = lg * 4 + (unsigned)((us >> (lg - 2)) & 3u) - 4;
	return b < PX_LAT_BUCKETS ? b : PX_LAT_BUCKETS - 1;
}

static uint64_t lat_upper(unsigned b)
{
	unsigned lg = (b + 4) / 4, frac = (b + 4) % 4;

	if (b < 4)
		return b + 1;
	return (5ull + frac) << (lg - 2);
}

void px_stats_latency(struct px_loop *l, uint32_t prog, uint32_t proc,
		      const struct timespec *start)
{
	double ms = px_elapsed_ms(start);
	uint64_t us = ms < 0 ? 0 : (uint64_t)(ms * 1000.0);
	unsigned p = prog == RPC_PROG_NFS ? 0 : 1;

	if (proc >= NFS3_NPROC)
		return;
	l->lp_stats.s_lat[p][proc][lat_bucket(us)]++;
}

/* The q-quantile (0..1) of a histogram, as the bucket's upper bound. */
static uint64_t lat_quantile(const uint64_t *h, double q)
{
	uint64_t n = 0, seen = 0;

	for (unsigned b = 0; b < PX_LAT_BUCKETS; b++)
		n += h[b];
	if (!n)
		return 0;
	for (unsigned b = 0; b < PX_LAT_BUCKETS; b++) {
		seen += h[b];
		if ((double)seen >= q * (double)n)
			return lat_upper(b);
	}
	return lat_upper(PX_LAT_BUCKETS - 1);
}

/* ---------------------------------------------------------------------- */
/* The report                                                              */

struct out {
	char *o_buf;
	size_t o_len, o_cap;
};

static void outf(struct out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->o_len >= o->o_cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->o_buf + o->o_len, o->o_cap - o->o_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->o_len += (size_t)n < o->o_cap - o->o_len ? (size_t)n
							    : o->o_cap - o->o_len;
}

static const char *link_state_name(enum px_link_state s)
{
	static const char *const n[] = {"idle", "connecting", "probing",
					"tls-handshake", "up", "backoff"};
	return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

/* One "key value" (text) or "key": value (json) pair. */
static void kv(struct out *o, bool json, bool *first, const char *k,
	       unsigned long long v)
{
	if (json)
		outf(o, "%s\"%s\": %llu", *first ? "" : ", ", k, v);
	else
		outf(o, "%-24s %llu\n", k, v);
	*first = false;
}

static void report(struct px_loop *l, struct out *o, bool json)
{
	const struct px_stats *st = &l->lp_stats;
	const struct px_opts *op = l->lp_opts;
	bool first = true;
	struct timespec now;

	px_now(&now);
	if (json)
		outf(o, "{\"role\": \"%s\", \"listen\": \"%s\", \"upstream\": \"%s\", ",
		     op->o_role == PX_ROLE_CLIENT ? "client" : "server",
		     op->o_listen, op->o_upstream);
	else
		outf(o, "role                     %s\nlisten                   %s\n"
			"upstream                 %s\n",
		     op->o_role == PX_ROLE_CLIENT ? "client" : "server",
		     op->o_listen, op->o_upstream);
	kv(o, json, &first, "uptime_s", (unsigned long long)(now.tv_sec -
							      l->lp_started.tv_sec));
	kv(o, json, &first, "connections", l->lp_nclients);
	kv(o, json, &first, "outstanding_calls", l->lp_npending);
	kv(o, json, &first, "connections_accepted", st->s_conns_accepted);
	kv(o, json, &first, "connections_refused", st->s_conns_refused);
	kv(o, json, &first, "replies_forwarded", st->s_replies);
	kv(o, json, &first, "errors_answered_locally", st->s_errors_local);
	kv(o, json, &first, "garbage", st->s_garbage);
	kv(o, json, &first, "retransmissions_absorbed",
	   st->s_dups_dropped + st->s_dups_retargeted + st->s_dups_reused);
	kv(o, json, &first, "calls_resent_after_reconnect", st->s_resent);
	kv(o, json, &first, "upstream_connects", st->s_upstream_connects);
	kv(o, json, &first, "upstream_failures", st->s_upstream_failures);
	kv(o, json, &first, "bytes_from_clients", st->s_bytes_in);
	kv(o, json, &first, "bytes_to_clients", st->s_bytes_out);
	if (json)
		outf(o, ", \"links\": {");
	for (int i = 0; i < 2; i++) {
		const struct px_link *ln = i ? &l->lp_mount : &l->lp_nfs;

		if (json)
			outf(o, "%s\"%s\": {\"state\": \"%s\", \"pending\": %u, "
				"\"tls\": %s}", i ? ", " : "", ln->ln_name,
			     link_state_name(ln->ln_state), ln->ln_npending,
			     ln->ln_tls ? "true" : "false");
		else
			outf(o, "link_%-19s %s, %u pending%s\n", ln->ln_name,
			     link_state_name(ln->ln_state), ln->ln_npending,
			     ln->ln_tls ? ", tls" : "");
	}
	if (json)
		outf(o, "}");
	if (px_rcache_cache(l)) {
		struct cache_stats cs;
		uint64_t hits, bytes, fetches, coal;

		cache_stats(px_rcache_cache(l), &cs);
		px_rcache_stats(l, &hits, &bytes, &fetches, &coal);
		if (json)
			outf(o, ", \"cache\": {");
		first = true;
		kv(o, json, &first, "cache_reads_local", hits);
		kv(o, json, &first, "cache_bytes_local", bytes);
		kv(o, json, &first, "cache_fetches", fetches);
		kv(o, json, &first, "cache_fetches_shared", coal);
		kv(o, json, &first, "cache_bytes", cs.cs_bytes);
		kv(o, json, &first, "cache_max_bytes", cs.cs_max_bytes);
		kv(o, json, &first, "cache_blocks", cs.cs_blocks);
		kv(o, json, &first, "cache_files", cs.cs_files);
		kv(o, json, &first, "cache_fill_bytes", cs.cs_fill_bytes);
		kv(o, json, &first, "cache_evictions", cs.cs_evictions);
		kv(o, json, &first, "cache_dropped_fills", cs.cs_dropped_fills);
		kv(o, json, &first, "cache_bypass", cs.cs_bypass);
		if (json)
			outf(o, "}");
	}
	if (json)
		outf(o, ", \"procedures\": [");
	else
		outf(o, "%-12s %10s %10s %10s %10s\n", "procedure", "calls",
		     "p50_us", "p90_us", "p99_us");
	first = true;
	for (int p = 0; p < 2; p++)
		for (uint32_t i = 0; i < (p ? MNT3_NPROC : NFS3_NPROC); i++) {
			const uint64_t *h = st->s_lat[p][i];
			const char *name = p ? rpc_mnt3_proc_name(i)
					     : rpc_nfs3_proc_name(i);

			if (!st->s_calls[p][i])
				continue;
			if (json)
				outf(o, "%s{\"program\": \"%s\", \"name\": \"%s\", "
					"\"calls\": %llu, \"p50_us\": %llu, "
					"\"p90_us\": %llu, \"p99_us\": %llu}",
				     first ? "" : ", ", p ? "mount" : "nfs", name,
				     (unsigned long long)st->s_calls[p][i],
				     (unsigned long long)lat_quantile(h, 0.5),
				     (unsigned long long)lat_quantile(h, 0.9),
				     (unsigned long long)lat_quantile(h, 0.99));
			else
				outf(o, "%-12s %10llu %10llu %10llu %10llu\n",
				     name, (unsigned long long)st->s_calls[p][i],
				     (unsigned long long)lat_quantile(h, 0.5),
				     (unsigned long long)lat_quantile(h, 0.9),
				     (unsigned long long)lat_quantile(h, 0.99));
			first = false;
		}
	if (json)
		outf(o, "]}\n");
}

/* ---------------------------------------------------------------------- */
/* The socket                                                              */

/* One request, answered at once: the requester is local and trusted
 * (0600), the answer small; a requester that does not read gets a cut
 * answer rather than a stalled loop. */
static void control_serve(struct px_loop *l, int fd)
{
	char line[64];
	struct out o = {0};
	ssize_t n;
	size_t off = 0;
	struct timeval tmo = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	n = read(fd, line, sizeof(line) - 1);
	if (n <= 0)
		return;
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (!(o.o_buf = malloc(REPLY_MAX)))
		return;
	o.o_cap = REPLY_MAX;
	if (!strcmp(line, "status"))
		report(l, &o, false);
	else if (!strcmp(line, "status json"))
		report(l, &o, true);
	else
		outf(&o, "error: unknown request '%.40s' (try 'status' or "
			 "'status json')\n", line);
	while (off < o.o_len) {
		n = send(fd, o.o_buf + off, o.o_len - off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	free(o.o_buf);
}

static void control_event(struct px_ev *ev, uint32_t events)
{
	struct px_loop *l = (struct px_loop *)((char *)ev -
					       offsetof(struct px_loop, lp_ctl));
	int fd = accept4(ev->ev_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	control_serve(l, fd);
	close(fd);
}

int px_control_open(struct px_loop *l)
{
	const char *path = l->lp_opts->o_control;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	mode_t old;
	int fd;

	px_now(&l->lp_started);
	l->lp_ctl.ev_fd = -1;
	if (!path || !*path)
		return 0;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		px_err("--control %s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	if (l->lp_opts->o_control_default) {
		/* The default lives in /run/gridvfs; without it (not root),
		 * run without a control socket rather than not at all. */
		if (mkdir("/run/gridvfs", 0755) < 0 && errno != EEXIST) {
			px_warn("no control socket: /run/gridvfs: %s (use "
				"--control PATH)", strerror(errno));
			return 0;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A live daemon's socket is not ours to take. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		px_err("--control %s: another daemon answers there", path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	old = umask(0177);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0) {
		int err = errno;

		umask(old);
		px_err("--control %s: %s", path, strerror(err));
		if (fd >= 0)
			close(fd);
		return -err;
	}
	umask(old);
	l->lp_ctl.ev_fd = fd;
	l->lp_ctl.ev_fn = control_event;
	return px_ev_add(l, &l->lp_ctl, EPOLLIN);
}

void px_control_close(struct px_loop *l)
{
	if (l->lp_ctl.ev_fd < 0)
		return;
	px_ev_del(l, &l->lp_ctl);
	close(l->lp_ctl.ev_fd);
	l->lp_ctl.ev_fd = -1;
	unlink(l->lp_opts->o_control);
}
