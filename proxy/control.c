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
#include <netinet/in.h>
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

/* Several exports: one entry each (the figures above are export 0's,
 * with connections and outstanding calls the daemon's). */
static void report_exports(struct px_loop *l, struct out *o, bool json)
{
	if (json)
		outf(o, ", \"exports\": [");
	for (unsigned i = 0; i < l->lp_neng; i++) {
		struct px_loop *e = l->lp_eng[i];
		const struct px_opts *op = e->lp_opts;
		uint64_t calls = 0, hits = 0, bytes = 0, fetches = 0, coal = 0;
		bool first = true;

		for (int p = 0; p < 2; p++)
			for (unsigned k = 0; k < NFS3_NPROC; k++)
				calls += e->lp_stats.s_calls[p][k];
		if (px_rcache_cache(e))
			px_rcache_stats(e, &hits, &bytes, &fetches, &coal);
		if (json)
			outf(o, "%s{\"name\": \"%s\", \"path\": \"%s\", "
				"\"upstream\": \"%s\", \"nfs_link\": \"%s\", "
				"\"mount_link\": \"%s\", ", i ? ", " : "",
			     op->o_export_name, op->o_export_path,
			     op->o_upstream, link_state_name(e->lp_nfs.ln_state),
			     link_state_name(e->lp_mount.ln_state));
		else
			outf(o, "export %s: path %s, upstream %s, links nfs "
				"%s mount %s\n", op->o_export_name,
			     op->o_export_path, op->o_upstream,
			     link_state_name(e->lp_nfs.ln_state),
			     link_state_name(e->lp_mount.ln_state));
		const struct {
			const char *k;
			uint64_t v;
		} f[] = {
			{"calls", calls},
			{"outstanding_calls", e->lp_npending},
			{"replies_forwarded", e->lp_stats.s_replies},
			{"cache_reads_local", hits},
			{"cache_fetches", fetches},
		};

		for (size_t k = 0; k < sizeof(f) / sizeof(f[0]); k++) {
			if (!json)
				outf(o, "  ");
			kv(o, json, &first, f[k].k, f[k].v);
		}
		if (json)
			outf(o, "}");
	}
	if (json)
		outf(o, "]");
}

/* Every engine's figures added up (px_stats is all uint64_t counters). */
static const struct px_stats *stats_total(struct px_loop *l,
					  struct px_stats **tmp)
{
	uint64_t *sum;

	*tmp = NULL;
	if (l->lp_neng == 1 || !(*tmp = calloc(1, sizeof(**tmp))))
		return &l->lp_stats;
	sum = (uint64_t *)*tmp;
	for (unsigned i = 0; i < l->lp_neng; i++) {
		const uint64_t *v = (const uint64_t *)&l->lp_eng[i]->lp_stats;

		for (size_t k = 0; k < sizeof(**tmp) / sizeof(uint64_t); k++)
			sum[k] += v[k];
	}
	return *tmp;
}

static void report(struct px_loop *l, struct out *o, bool json)
{
	struct px_stats *tmp;
	const struct px_stats *st = stats_total(l, &tmp);
	const struct px_opts *op = l->lp_opts;
	bool first = true;
	struct timespec now;

	px_now(&now);
	if (json)
		outf(o, "{\"role\": \"%s\", \"listen\": \"%s\", \"upstream\": \"%s\", ",
		     op->o_role == PX_ROLE_CLIENT ? "client" : "server",
		     op->o_listen, l->lp_neng > 1 ? "(per export)" : op->o_upstream);
	else
		outf(o, "role                     %s\nlisten                   %s\n"
			"upstream                 %s\n",
		     op->o_role == PX_ROLE_CLIENT ? "client" : "server",
		     op->o_listen, l->lp_neng > 1 ? "(per export)" : op->o_upstream);
	kv(o, json, &first, "uptime_s", (unsigned long long)(now.tv_sec -
							      l->lp_started.tv_sec));
	kv(o, json, &first, "connections", l->lp_nclients);
	kv(o, json, &first, "outstanding_calls", px_pending_total(l));
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
	/* Compressed links (zlink.h): records this daemon sent packed, the
	 * bytes they held and became, and what it received packed. */
	kv(o, json, &first, "zstd_records_sent", px_zstats.zs_packed);
	kv(o, json, &first, "zstd_bytes_raw", px_zstats.zs_raw_bytes);
	kv(o, json, &first, "zstd_bytes_wire", px_zstats.zs_wire_bytes);
	kv(o, json, &first, "zstd_incompressible", px_zstats.zs_incompressible);
	kv(o, json, &first, "zstd_records_received", px_zstats.zs_unpacked);
	kv(o, json, &first, "zstd_bytes_received", px_zstats.zs_unpacked_wire);
	kv(o, json, &first, "zstd_bytes_decoded", px_zstats.zs_unpacked_bytes);
	if (json)
		outf(o, ", \"links\": {");
	for (int i = 0; i < 2; i++) {
		const struct px_link *ln = i ? &l->lp_mount : &l->lp_nfs;
		bool z = ln->ln_out.q_z != NULL;

		if (json)
			outf(o, "%s\"%s\": {\"state\": \"%s\", \"pending\": %u, "
				"\"tls\": %s, \"zstd\": %s, \"goodput_bytes\": %llu, "
				"\"zstd_asked\": %s}",
			     i ? ", " : "", ln->ln_name,
			     link_state_name(ln->ln_state), ln->ln_npending,
			     ln->ln_tls ? "true" : "false", z ? "true" : "false",
			     z ? (unsigned long long)ln->ln_z.zo_rate : 0ull,
			     z && ln->ln_z.zo_ask ? "true" : "false");
		else if (z && ln->ln_z.zo_rate)
			outf(o, "link_%-19s %s, %u pending, tls, zstd %s (goodput "
				"%.1f Mbit/s)\n", ln->ln_name,
			     link_state_name(ln->ln_state), ln->ln_npending,
			     ln->ln_z.zo_ask ? "on" : "idle",
			     (double)ln->ln_z.zo_rate * 8 / 1e6);
		else
			outf(o, "link_%-19s %s, %u pending%s%s\n", ln->ln_name,
			     link_state_name(ln->ln_state), ln->ln_npending,
			     ln->ln_tls ? ", tls" : "", z ? ", zstd" : "");
	}
	if (json)
		outf(o, "}");
	if (px_rcache_cache(l)) {
		struct cache_stats cs;
		uint64_t hits, bytes, fetches, coal;
		struct px_ra_stats ra;

		cache_stats(px_rcache_cache(l), &cs);
		px_rcache_stats(l, &hits, &bytes, &fetches, &coal);
		if (json)
			outf(o, ", \"cache\": {");
		first = true;
		kv(o, json, &first, "cache_reads_local", hits);
		kv(o, json, &first, "cache_bytes_local", bytes);
		kv(o, json, &first, "cache_fetches", fetches);
		kv(o, json, &first, "cache_fetches_shared", coal);
		px_rcache_ra_stats(l, &ra);
		kv(o, json, &first, "cache_read_waits", ra.rs_waits);
		kv(o, json, &first, "cache_read_misses", ra.rs_misses);
		kv(o, json, &first, "readahead_blocks", ra.rs_ra_blocks);
		kv(o, json, &first, "background_blocks", ra.rs_bg_blocks);
		kv(o, json, &first, "background_bytes", ra.rs_bg_bytes);
		kv(o, json, &first, "background_yields", ra.rs_bg_yields);
		kv(o, json, &first, "upstream_rate_bytes", ra.rs_link_rate);
		kv(o, json, &first, "cache_bytes", cs.cs_bytes);
		kv(o, json, &first, "cache_max_bytes", cs.cs_max_bytes);
		kv(o, json, &first, "cache_blocks", cs.cs_blocks);
		kv(o, json, &first, "cache_files", cs.cs_files);
		kv(o, json, &first, "cache_fill_bytes", cs.cs_fill_bytes);
		kv(o, json, &first, "cache_evictions", cs.cs_evictions);
		kv(o, json, &first, "cache_dropped_fills", cs.cs_dropped_fills);
		kv(o, json, &first, "cache_bypass", cs.cs_bypass);
		{
			uint64_t mfiles, pf;

			px_rcache_meta_stats(l, &mfiles, &pf);
			kv(o, json, &first, "meta_files", mfiles);
			kv(o, json, &first, "meta_prefetched_blocks", pf);
		}
		if (json)
			outf(o, "}");
	}
	if (l->lp_learn) {
		uint64_t w, pub, skip, fail;

		px_learn_stats(l, &w, &pub, &skip, &fail);
		if (json)
			outf(o, ", \"learn\": {");
		first = true;
		kv(o, json, &first, "learn_images_watched", w);
		kv(o, json, &first, "learn_profiles_published", pub);
		kv(o, json, &first, "learn_profiles_left_alone", skip);
		kv(o, json, &first, "learn_publish_failures", fail);
		if (json)
			outf(o, "}");
	}
	if (l->lp_neng > 1)
		report_exports(l, o, json);
	if (l->lp_wb) {
		struct px_wb_stats ws;

		px_wb_stats(l, &ws);
		if (json)
			outf(o, ", \"write_back\": {");
		first = true;
		kv(o, json, &first, "wb_dirty_bytes", ws.ws_dirty_bytes);
		kv(o, json, &first, "wb_dirty_max", ws.ws_dirty_max);
		kv(o, json, &first, "wb_dirty_high_water", ws.ws_dirty_hwm);
		kv(o, json, &first, "wb_flushed_bytes", ws.ws_flushed_bytes);
		kv(o, json, &first, "wb_writes_waited", ws.ws_writes_waited);
		kv(o, json, &first, "wb_writes_parked", ws.ws_parked);
		kv(o, json, &first, "wb_flushes_in_flight", ws.ws_inflight);
		kv(o, json, &first, "wb_verifier_resends", ws.ws_resends);
		kv(o, json, &first, "wb_flush_errors", ws.ws_flush_errors);
		kv(o, json, &first, "wb_refused", ws.ws_refused);
		kv(o, json, &first, "wb_dropped_bytes", ws.ws_dropped_bytes);
		kv(o, json, &first, "wb_passed_through", ws.ws_passed_through);
		kv(o, json, &first, "wb_groups", ws.ws_groups);
		kv(o, json, &first, "wb_group_records", ws.ws_group_records);
		kv(o, json, &first, "wb_group_deletes", ws.ws_group_deletes);
		kv(o, json, &first, "wb_group_commit_us", ws.ws_group_commit_us);
		kv(o, json, &first, "wb_group_lingers", ws.ws_group_lingers);
		kv(o, json, &first, "wb_group_syncs", ws.ws_group_syncs);
		kv(o, json, &first, "wb_flush_holds", ws.ws_flush_holds);
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
	free(tmp);
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
		if (fd >= 0)
			close(fd);
		if (l->lp_opts->o_control_default &&
		    (err == EACCES || err == EPERM)) {
			/* /run/gridvfs is root's: an unprivileged daemon (a
			 * user's mount.gridvfs) runs without the socket. */
			px_warn("no control socket: %s: %s (use --control "
				"PATH)", path, strerror(err));
			return 0;
		}
		px_err("--control %s: %s", path, strerror(err));
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

/* ---------------------------------------------------------------------- */
/* --metrics: Prometheus text exposition over HTTP                         */

/*
 * A scrape is local and small, but the port is TCP: any local process may
 * connect, so nothing here may block the loop.  Connections are
 * non-blocking, at most METRICS_CONNS at once, each given METRICS_TMO_MS
 * to send its request and take the answer; then it is closed.
 */
#define METRICS_CONNS 8
#define METRICS_TMO_MS 3000
#define METRICS_REQ_MAX 4096

struct mconn {
	struct px_ev mc_ev;
	struct px_metrics *mc_m;
	char mc_req[METRICS_REQ_MAX];
	size_t mc_rlen;
	struct out mc_out;
	size_t mc_off;
	uint64_t mc_since;
	bool mc_used;
};

struct px_metrics {
	struct px_loop *m_loop;
	struct px_ev m_ev;
	struct mconn m_conn[METRICS_CONNS];
	uint64_t m_refused;
};

static void mconn_close(struct mconn *mc)
{
	px_ev_del(mc->mc_m->m_loop, &mc->mc_ev);
	close(mc->mc_ev.ev_fd);
	mc->mc_ev.ev_fd = -1;
	free(mc->mc_out.o_buf);
	memset(&mc->mc_out, 0, sizeof(mc->mc_out));
	mc->mc_used = false;
}

/* One metric family's header. */
static void fam(struct out *o, const char *name, const char *type,
		const char *help)
{
	outf(o, "# HELP gridvfs_%s %s\n# TYPE gridvfs_%s %s\n", name, help,
	     name, type);
}

/* Counter families read from a struct of uint64_t fields. */
struct mcounter {
	const char *name, *help;
	size_t off;
};

static void counters_out(struct out *o, const struct mcounter *c, size_t n,
			 const void *base)
{
	for (size_t i = 0; i < n; i++) {
		fam(o, c[i].name, "counter", c[i].help);
		outf(o, "gridvfs_%s %llu\n", c[i].name,
		     (unsigned long long)*(const uint64_t *)(
			     (const char *)base + c[i].off));
	}
}

static void metrics_body(struct px_loop *l, struct out *o)
{
	struct px_stats *tmp;
	const struct px_stats *st = stats_total(l, &tmp);
	struct timespec now;
	static const struct mcounter counters[] = {
#define C(n, f, h) {n, h, offsetof(struct px_stats, f)}
		C("connections_accepted_total", s_conns_accepted,
		  "Client connections accepted."),
		C("connections_refused_total", s_conns_refused,
		  "Client connections refused (--max-conns, draining)."),
		C("replies_forwarded_total", s_replies,
		  "Upstream replies relayed to clients."),
		C("errors_local_total", s_errors_local,
		  "Calls answered by the daemon with an error."),
		C("garbage_total", s_garbage,
		  "Malformed calls or replies."),
		C("retransmissions_absorbed_total", s_dups_dropped,
		  "Client retransmissions of calls still in flight."),
		C("calls_resent_total", s_resent,
		  "Calls resent after an upstream reconnect."),
		C("upstream_connects_total", s_upstream_connects,
		  "Upstream connections made."),
		C("upstream_failures_total", s_upstream_failures,
		  "Upstream connections lost or refused."),
		C("client_bytes_received_total", s_bytes_in,
		  "Bytes received from clients."),
		C("client_bytes_sent_total", s_bytes_out,
		  "Bytes sent to clients."),
#undef C
	};

	px_now(&now);
	fam(o, "up", "gauge", "1 while the daemon runs.");
	outf(o, "gridvfs_up{role=\"%s\"} 1\n",
	     l->lp_opts->o_role == PX_ROLE_CLIENT ? "client" : "server");
	fam(o, "uptime_seconds", "gauge", "Seconds since start.");
	outf(o, "gridvfs_uptime_seconds %lld\n",
	     (long long)(now.tv_sec - l->lp_started.tv_sec));
	fam(o, "connections", "gauge", "Client connections open.");
	outf(o, "gridvfs_connections %u\n", l->lp_nclients);
	fam(o, "outstanding_calls", "gauge", "Calls waiting for upstream.");
	outf(o, "gridvfs_outstanding_calls %u\n", px_pending_total(l));
	counters_out(o, counters, sizeof(counters) / sizeof(counters[0]), st);
	{
		static const struct mcounter zc[] = {
#define Z(n, f, h) {n, h, offsetof(struct zlink_stats, f)}
			Z("zstd_records_sent_total", zs_packed,
			  "Records sent compressed (ALPN gridvfs-z1 links)."),
			Z("zstd_bytes_raw_total", zs_raw_bytes,
			  "Bytes those records held before compression."),
			Z("zstd_bytes_wire_total", zs_wire_bytes,
			  "Bytes those records took on the wire."),
			Z("zstd_incompressible_total", zs_incompressible,
			  "Records tried and sent plain: they did not shrink."),
			Z("zstd_records_received_total", zs_unpacked,
			  "Compressed records received and decoded."),
			Z("zstd_bytes_received_total", zs_unpacked_wire,
			  "Bytes compressed records took on the wire."),
			Z("zstd_bytes_decoded_total", zs_unpacked_bytes,
			  "Bytes those records decoded to."),
#undef Z
		};

		counters_out(o, zc, sizeof(zc) / sizeof(zc[0]), &px_zstats);
	}
	fam(o, "calls_total", "counter", "Calls by program and procedure.");
	for (int p = 0; p < 2; p++)
		for (uint32_t i = 0; i < (p ? MNT3_NPROC : NFS3_NPROC); i++)
			if (st->s_calls[p][i])
				outf(o, "gridvfs_calls_total{program=\"%s\","
					"procedure=\"%s\"} %llu\n",
				     p ? "mount" : "nfs",
				     p ? rpc_mnt3_proc_name(i)
				       : rpc_nfs3_proc_name(i),
				     (unsigned long long)st->s_calls[p][i]);
	fam(o, "call_latency_seconds", "summary",
	    "Call latency through the daemon (upper bound of the bucket).");
	for (int p = 0; p < 2; p++)
		for (uint32_t i = 0; i < (p ? MNT3_NPROC : NFS3_NPROC); i++) {
			static const double q[] = {0.5, 0.9, 0.99};
			const char *name = p ? rpc_mnt3_proc_name(i)
					     : rpc_nfs3_proc_name(i);
			uint64_t n = 0;

			for (unsigned b = 0; b < PX_LAT_BUCKETS; b++)
				n += st->s_lat[p][i][b];
			if (!n)
				continue;
			for (int k = 0; k < 3; k++)
				outf(o, "gridvfs_call_latency_seconds{program="
					"\"%s\",procedure=\"%s\",quantile="
					"\"%g\"} %.6f\n",
				     p ? "mount" : "nfs", name, q[k],
				     (double)lat_quantile(st->s_lat[p][i], q[k]) /
					     1e6);
			outf(o, "gridvfs_call_latency_seconds_count{program="
				"\"%s\",procedure=\"%s\"} %llu\n",
			     p ? "mount" : "nfs", name, (unsigned long long)n);
		}
	free(tmp);
	fam(o, "upstream_link_up", "gauge",
	    "1 when the upstream link of an export is connected.");
	for (unsigned i = 0; i < l->lp_neng; i++) {
		struct px_loop *e = l->lp_eng[i];
		const char *ex = e->lp_opts->o_export_name;

		for (int k = 0; k < 2; k++) {
			const struct px_link *ln = k ? &e->lp_mount : &e->lp_nfs;

			outf(o, "gridvfs_upstream_link_up{export=\"%s\","
				"link=\"%s\"} %d\n", ex ? ex : "",
			     ln->ln_name, ln->ln_state == LINK_UP);
		}
	}
	/* Per-export families: the figures first, then one family at a time
	 * (the format wants each family's samples together). */
	enum { K_CACHE, K_WB, K_LEARN, K_N }; /* which engines have it */
	static const struct {
		const char *name, *type, *help;
		int kind;
	} pe[] = {
		{"cache_reads_local_total", "counter",
		 "READs answered from the block cache.", K_CACHE},
		{"cache_bytes_local_total", "counter",
		 "Bytes of READs answered from the block cache.", K_CACHE},
		{"cache_fetches_total", "counter",
		 "Block fetches from upstream for the cache.", K_CACHE},
		{"cache_fetches_shared_total", "counter",
		 "READs that waited for another READ's identical fetch.",
		 K_CACHE},
		{"cache_bytes", "gauge", "Bytes the cache holds.", K_CACHE},
		{"cache_max_bytes", "gauge", "The cache's cap (--cache-size).",
		 K_CACHE},
		{"cache_blocks", "gauge", "Blocks the cache holds.", K_CACHE},
		{"cache_evictions_total", "counter", "Blocks evicted.", K_CACHE},
		{"cache_dropped_fills_total", "counter",
		 "Fills dropped (writer queue full, disk full).", K_CACHE},
		{"meta_prefetched_blocks_total", "counter",
		 "Blocks fetched along .gvmeta prefetch profiles.", K_CACHE},
		{"cache_read_misses_total", "counter",
		 "Client READs of images with metadata that sent a fetch of their own.",
		 K_CACHE},
		{"cache_read_waits_total", "counter",
		 "Client READs that waited for upstream (joins included).", K_CACHE},
		{"readahead_blocks_total", "counter",
		 "Blocks fetched by stream readahead.", K_CACHE},
		{"background_bytes_total", "counter",
		 "Bytes fetched by the background fetch of non-zero blocks.", K_CACHE},
		{"background_yields_total", "counter",
		 "Times the background fetch gave way to clients.", K_CACHE},
		{"upstream_rate_bytes", "gauge",
		 "Upstream rate measured from the proxy's own fetches, bytes/s.",
		 K_CACHE},
		{"writeback_dirty_bytes", "gauge",
		 "Acknowledged writes not yet flushed upstream.", K_WB},
		{"writeback_dirty_max_bytes", "gauge", "--dirty-max.", K_WB},
		{"writeback_flushed_bytes_total", "counter",
		 "Bytes flushed upstream.", K_WB},
		{"writeback_writes_waited_total", "counter",
		 "Writes that waited for --dirty-max.", K_WB},
		{"writeback_flush_errors_total", "counter",
		 "Flush WRITEs/COMMITs upstream failed or refused.", K_WB},
		{"writeback_refused_total", "counter",
		 "Flushes refused for good (records dropped, COMMIT errors).",
		 K_WB},
		{"writeback_dropped_bytes_total", "counter",
		 "Acknowledged bytes dropped after a final upstream refusal.",
		 K_WB},
		{"writeback_passed_through_total", "counter",
		 "WRITEs sent write-through for want of a write grant.", K_WB},
		{"writeback_groups_total", "counter",
		 "Dirty log group commits (one flush each).", K_WB},
		{"writeback_group_records_total", "counter",
		 "WRITE records made durable by those group commits.", K_WB},
		{"writeback_group_deletes_total", "counter",
		 "Record deletions made durable by those group commits.", K_WB},
		{"writeback_group_commit_microseconds_total", "counter",
		 "Microseconds spent committing them.", K_WB},
		{"writeback_group_lingers_total", "counter",
		 "Group commits that waited for more records first.", K_WB},
		{"writeback_group_syncs_total", "counter",
		 "Group commits flushed twice to be durable at once (stable "
		 "WRITEs, deletions).", K_WB},
		{"writeback_flush_holds_total", "counter",
		 "Times the flusher waited for a burst of WRITEs to pause.", K_WB},
		{"learn_images_watched", "gauge",
		 "Images whose first touches are being learned.", K_LEARN},
		{"learn_profiles_published_total", "counter",
		 "Learned profiles written to NAME.gvmeta.", K_LEARN},
		{"learn_profiles_left_alone_total", "counter",
		 "Images whose metadata was left alone (attached profile, "
		 "untrusted, stale).", K_LEARN},
		{"learn_publish_failures_total", "counter",
		 "Publishes that failed.", K_LEARN},
	};
	enum { NPE = sizeof(pe) / sizeof(pe[0]) };
	uint64_t v[PX_EXPORTS_MAX][NPE];
	bool has[PX_EXPORTS_MAX][K_N];

	for (unsigned i = 0; i < l->lp_neng && i < PX_EXPORTS_MAX; i++) {
		struct px_loop *e = l->lp_eng[i];
		struct cache_stats cs;
		struct px_wb_stats ws;
		uint64_t hits = 0, bytes = 0, fetches = 0, coal = 0;
		uint64_t mfiles, pf, lw, lp, ls, lf;
		struct px_ra_stats ra;

		memset(&cs, 0, sizeof(cs));
		px_rcache_ra_stats(e, &ra);
		has[i][K_CACHE] = px_rcache_cache(e) != NULL;
		has[i][K_WB] = e->lp_wb != NULL;
		has[i][K_LEARN] = e->lp_learn != NULL;
		px_rcache_meta_stats(e, &mfiles, &pf);
		px_learn_stats(e, &lw, &lp, &ls, &lf);
		if (has[i][0]) {
			cache_stats(px_rcache_cache(e), &cs);
			px_rcache_stats(e, &hits, &bytes, &fetches, &coal);
		}
		px_wb_stats(e, &ws);
		uint64_t row[NPE] = {hits, bytes, fetches, coal, cs.cs_bytes,
				     cs.cs_max_bytes, cs.cs_blocks,
				     cs.cs_evictions, cs.cs_dropped_fills, pf,
				     ra.rs_misses, ra.rs_waits, ra.rs_ra_blocks,
				     ra.rs_bg_bytes, ra.rs_bg_yields,
				     ra.rs_link_rate,
				     ws.ws_dirty_bytes, ws.ws_dirty_max,
				     ws.ws_flushed_bytes, ws.ws_writes_waited,
				     ws.ws_flush_errors, ws.ws_refused,
				     ws.ws_dropped_bytes, ws.ws_passed_through,
				     ws.ws_groups, ws.ws_group_records,
				     ws.ws_group_deletes,
				     ws.ws_group_commit_us,
				     ws.ws_group_lingers, ws.ws_group_syncs,
				     ws.ws_flush_holds,
				     lw, lp, ls, lf};

		memcpy(v[i], row, sizeof(row));
	}
	for (unsigned k = 0; k < NPE; k++) {
		bool any = false;

		for (unsigned i = 0; i < l->lp_neng && i < PX_EXPORTS_MAX; i++)
			any |= has[i][pe[k].kind];
		if (!any)
			continue;
		fam(o, pe[k].name, pe[k].type, pe[k].help);
		for (unsigned i = 0; i < l->lp_neng && i < PX_EXPORTS_MAX; i++) {
			const char *ex = l->lp_eng[i]->lp_opts->o_export_name;

			if (has[i][pe[k].kind])
				outf(o, "gridvfs_%s{export=\"%s\"} %llu\n",
				     pe[k].name, ex ? ex : "",
				     (unsigned long long)v[i][k]);
		}
	}
}

static void mconn_answer(struct mconn *mc)
{
	struct out *o = &mc->mc_out;
	char *body;
	size_t blen;
	bool ok = !strncmp(mc->mc_req, "GET /metrics ", 13) ||
		  !strncmp(mc->mc_req, "GET /metrics?", 13);
	bool get = !strncmp(mc->mc_req, "GET ", 4);

	if (!(o->o_buf = malloc(REPLY_MAX))) {
		mconn_close(mc);
		return;
	}
	o->o_cap = REPLY_MAX;
	if (ok) {
		/* Body first, at an offset, so the header knows its length. */
		struct out b = {o->o_buf + 256, 0, REPLY_MAX - 256};

		metrics_body(mc->mc_m->m_loop, &b);
		body = b.o_buf;
		blen = b.o_len;
		outf(o, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
			"version=0.0.4; charset=utf-8\r\nContent-Length: %zu\r\n"
			"Connection: close\r\n\r\n", blen);
		memmove(o->o_buf + o->o_len, body, blen);
		o->o_len += blen;
	} else {
		const char *msg = get ? "404 Not Found" : "405 Method Not Allowed";

		outf(o, "HTTP/1.0 %s\r\nContent-Type: text/plain\r\n"
			"Connection: close\r\n\r\n%s: only GET /metrics is "
			"served here\n", msg, msg);
	}
	mc->mc_off = 0;
	px_ev_mod(mc->mc_m->m_loop, &mc->mc_ev, EPOLLOUT);
}

static void mconn_event(struct px_ev *ev, uint32_t events)
{
	struct mconn *mc = (struct mconn *)((char *)ev -
					    offsetof(struct mconn, mc_ev));
	ssize_t n;

	if (mc->mc_out.o_buf) { /* answering */
		n = send(ev->ev_fd, mc->mc_out.o_buf + mc->mc_off,
			 mc->mc_out.o_len - mc->mc_off,
			 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			mc->mc_off += (size_t)n;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0 || mc->mc_off == mc->mc_out.o_len)
			mconn_close(mc);
		return;
	}
	n = recv(ev->ev_fd, mc->mc_req + mc->mc_rlen,
		 sizeof(mc->mc_req) - 1 - mc->mc_rlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		mconn_close(mc);
		return;
	}
	mc->mc_rlen += (size_t)n;
	mc->mc_req[mc->mc_rlen] = '\0';
	if (strstr(mc->mc_req, "\r\n\r\n") || strstr(mc->mc_req, "\n\n"))
		mconn_answer(mc);
	else if (mc->mc_rlen == sizeof(mc->mc_req) - 1)
		mconn_close(mc); /* no request fits in 4 KiB */
	(void)events;
}

static void metrics_accept(struct px_ev *ev, uint32_t events)
{
	struct px_metrics *m = (struct px_metrics *)((char *)ev -
						     offsetof(struct px_metrics,
							      m_ev));
	int fd;

	(void)events;
	while ((fd = accept4(ev->ev_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct mconn *mc = NULL;

		for (unsigned i = 0; i < METRICS_CONNS && !mc; i++)
			if (!m->m_conn[i].mc_used)
				mc = &m->m_conn[i];
		if (!mc) {
			m->m_refused++;
			px_warn_rl("--metrics: %u scrapes at once already: "
				   "connection refused", METRICS_CONNS);
			close(fd);
			continue;
		}
		memset(mc, 0, sizeof(*mc));
		mc->mc_m = m;
		mc->mc_used = true;
		mc->mc_ev.ev_fd = fd;
		mc->mc_ev.ev_fn = mconn_event;
		mc->mc_since = px_now_ms();
		if (px_ev_add(m->m_loop, &mc->mc_ev, EPOLLIN) < 0) {
			close(fd);
			mc->mc_used = false;
		}
	}
}

void px_metrics_tick(struct px_loop *l)
{
	struct px_metrics *m = l->lp_metrics;
	uint64_t now = px_now_ms();

	for (unsigned i = 0; m && i < METRICS_CONNS; i++)
		if (m->m_conn[i].mc_used &&
		    now - m->m_conn[i].mc_since > METRICS_TMO_MS)
			mconn_close(&m->m_conn[i]);
}

int px_metrics_open(struct px_loop *l)
{
	const char *addr = l->lp_opts->o_metrics;
	struct sockaddr_storage ss;
	struct px_metrics *m;
	socklen_t sl;
	int fd, one = 1;

	if (!addr)
		return 0;
	if (px_addr_parse(addr, 9464, &ss, &sl)) {
		px_err("--metrics %s: not an address", addr);
		return -EINVAL;
	}
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 16) < 0) {
		px_err("--metrics %s: %s", addr, strerror(errno));
		if (fd >= 0)
			close(fd);
		free(m);
		return -EINVAL;
	}
	m->m_loop = l;
	m->m_ev.ev_fd = fd;
	m->m_ev.ev_fn = metrics_accept;
	if (px_ev_add(l, &m->m_ev, EPOLLIN) < 0) {
		close(fd);
		free(m);
		return -EINVAL;
	}
	l->lp_metrics = m;
	px_info("metrics: Prometheus text on http://%s/metrics", addr);
	return 0;
}

void px_metrics_close(struct px_loop *l)
{
	struct px_metrics *m = l->lp_metrics;

	if (!m)
		return;
	for (unsigned i = 0; i < METRICS_CONNS; i++)
		if (m->m_conn[i].mc_used)
			mconn_close(&m->m_conn[i]);
	px_ev_del(l, &m->m_ev);
	close(m->m_ev.ev_fd);
	free(m);
	l->lp_metrics = NULL;
}
