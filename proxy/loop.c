/*
 * proxy/loop.c — the event loop: epoll over the listening socket, clients
 * and upstream links, a signalfd for SIGTERM/SIGINT/SIGHUP, and a 100 ms
 * tick for backoff, timeouts and the drain on shutdown.
 *
 * One loop thread moves every byte.  A client's retransmission must find
 * its pending call (and the server's duplicate cache must see the same
 * XID on the same upstream connection) wherever the client reconnects, so
 * all calls share one table and one set of upstream links; the cache's
 * LMDB writer (cache/) runs in its own thread.
 */
#include "config.h"
#include "proxy/core.h"

#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "crypto/tls.h"
#include "idmap/idmap.h"

#define TICK_MS 100

void px_now(struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
}

double px_elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	px_now(&now);
	return (double)(now.tv_sec - since->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static struct px_loop *the_loop;

int px_ev_add(struct px_loop *l, struct px_ev *ev, uint32_t mask)
{
	struct epoll_event e = {.events = mask, .data.ptr = ev};

	if (epoll_ctl(l->lp_epfd, EPOLL_CTL_ADD, ev->ev_fd, &e) < 0)
		return -errno;
	ev->ev_mask = mask;
	return 0;
}

int px_ev_mod(struct px_loop *l, struct px_ev *ev, uint32_t mask)
{
	struct epoll_event e = {.events = mask, .data.ptr = ev};

	if (epoll_ctl(l->lp_epfd, EPOLL_CTL_MOD, ev->ev_fd, &e) < 0)
		return -errno;
	ev->ev_mask = mask;
	return 0;
}

void px_ev_del(struct px_loop *l, struct px_ev *ev)
{
	epoll_ctl(l->lp_epfd, EPOLL_CTL_DEL, ev->ev_fd, NULL);
	ev->ev_mask = 0;
}

static void listen_event(struct px_ev *ev, uint32_t events)
{
	px_client_accept(the_loop);
}

static void drain_begin(struct px_loop *l, const char *why)
{
	if (l->lp_draining)
		return;
	px_info("%s: draining %u outstanding call(s) (up to %u s)", why,
		px_pending_total(l), l->lp_opts->o_drain_timeout);
	l->lp_draining = true;
	px_now(&l->lp_drain_deadline);
	l->lp_drain_deadline.tv_sec += l->lp_opts->o_drain_timeout;
	px_ev_del(l, &l->lp_listen);
	close(l->lp_listen.ev_fd);
	l->lp_listen.ev_fd = -1;
	px_client_update_read(l, NULL);
}

/* SIGHUP: new calls use the new map; calls in flight keep theirs.  A map
 * with an error is refused and the old one stays in force. */
static void engine_reload(struct px_loop *l)
{
	struct idmap *m;
	const char *ex = l->lp_opts->o_export_name;

	if (!l->lp_idmap) {
		px_info("SIGHUP: %s%s%sidentity mapping is off, nothing to "
			"reload", ex ? "export " : "", ex ? ex : "",
			ex ? ": " : "");
		return;
	}
	if (px_ident_load(l->lp_opts, &m) < 0) {
		px_err("SIGHUP: keeping the previous map");
		return;
	}
	idmap_slot_set(l->lp_idmap, m);
	px_info("SIGHUP: %s%s%smap %s reloaded", ex ? "export " : "",
		ex ? ex : "", ex ? ": " : "",
		l->lp_opts->o_map ? l->lp_opts->o_map : "(squash rules)");
}

/* ---------------------------------------------------------------------- */
/* SIGHUP: the whole configuration                                         */

static int loop_tls_setup(struct px_loop *l, const struct px_opts *o);

/* Settings a running daemon cannot change: opened, bound or sized at
 * start-up.  A new value is logged and kept for the next start. */
enum fkind { F_STR, F_BOOL, F_INT, F_UNS, F_U32, F_U64, F_I64, F_SIZE };
static const struct restart_field {
	const char *name;
	size_t off;
	enum fkind kind;
} restart_fields[] = {
#define RF(n, f, k) {n, offsetof(struct px_opts, f), k}
	RF("role", o_role, F_INT),
	RF("listen", o_listen, F_STR),
	RF("upstream", o_upstream, F_STR),
	RF("mount-upstream", o_mount_upstream, F_STR),
	RF("upstream-path", o_upstream_path, F_STR),
	RF("register", o_register, F_BOOL),
	RF("foreground", o_foreground, F_BOOL),
	RF("pidfile", o_pidfile, F_STR),
	RF("syslog", o_syslog, F_BOOL),
	RF("max-record", o_max_record, F_SIZE),
	RF("tls", o_tls, F_INT),
	RF("compress", o_compress, F_INT),
	RF("compress-below", o_compress_below, F_UNS),
	RF("cache-dir", o_cache_dir, F_STR),
	RF("cache-size", o_cache_size, F_U64),
	RF("cache-block", o_cache_block, F_U32),
	RF("consistency", o_consistency, F_INT),
	RF("immutable-ttl", o_immutable_ttl, F_UNS),
	RF("access-ttl", o_access_ttl, F_UNS),
	RF("stream-readahead", o_readahead, F_BOOL),
	RF("background-fetch", o_bg_fetch, F_BOOL),
	RF("background-share", o_bg_share, F_UNS),
	RF("write-policy", o_write_policy, F_INT),
	RF("dirty-max", o_dirty_max, F_U64),
	RF("learn-profiles", o_learn, F_INT),
	RF("control", o_control, F_STR),
	RF("busy-poll", o_busy_poll_us, F_UNS),
	RF("user", o_user, F_STR),
	RF("metrics", o_metrics, F_STR),
	RF("upstream-privport", o_upstream_privport, F_BOOL),
	RF("state-dir", o_state_dir, F_STR),
#undef RF
};

static size_t fsize(enum fkind k)
{
	switch (k) {
	case F_STR: return sizeof(char *);
	case F_BOOL: return sizeof(bool);
	case F_INT: return sizeof(int);
	case F_UNS: return sizeof(unsigned);
	case F_U32: return sizeof(uint32_t);
	case F_U64: return sizeof(uint64_t);
	case F_I64: return sizeof(int64_t);
	case F_SIZE: return sizeof(size_t);
	}
	return 0;
}

/* Keep old's value of every restart-only setting in nw, saying which ones
 * the file changed.  Returns how many. */
static unsigned keep_restart_fields(const struct px_opts *old,
				    struct px_opts *nw, const char *ex)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(restart_fields) / sizeof(restart_fields[0]);
	     i++) {
		const struct restart_field *f = &restart_fields[i];
		const char *po = (const char *)old + f->off;
		char *pn = (char *)nw + f->off;
		bool same;

		if (f->kind == F_STR) {
			const char *a = *(char *const *)po, *b = *(char **)pn;

			same = (!a && !b) || (a && b && !strcmp(a, b));
			if (!same) {
				free(*(char **)pn);
				*(char **)pn = a ? strdup(a) : NULL;
			}
		} else {
			same = !memcmp(po, pn, fsize(f->kind));
			memcpy(pn, po, fsize(f->kind));
		}
		if (!same) {
			px_warn("SIGHUP: %s%s%s%s changed: takes effect at the "
				"next start (kept as it was)",
				ex ? "export " : "", ex ? ex : "", ex ? ": " : "",
				f->name);
			n++;
		}
	}
	/* Mapping switched on or off needs a restart too (the pipeline
	 * decides at start-up whether calls are mapped). */
	if (px_opts_idmap_active(old) != px_opts_idmap_active(nw)) {
		px_warn("SIGHUP: %s%s%sidentity mapping switched %s: takes "
			"effect at the next start", ex ? "export " : "",
			ex ? ex : "", ex ? ": " : "",
			px_opts_idmap_active(nw) ? "on" : "off");
		n++;
	}
	return n;
}

/* New TLS contexts from the (maybe rotated) files; connections made
 * before keep theirs.  A failure keeps the old context. */
static void engine_reload_tls(struct px_loop *e)
{
	struct tls_ctx *osrv = e->lp_tls_srv, *ocli = e->lp_tls_cli;
	struct idmap_gridmap *ogm = e->lp_gridmap;

	if (e->lp_opts->o_tls == PX_TLS_OFF ||
	    (e->lp_opts->o_role == PX_ROLE_SERVER && e != e->lp_main))
		return;
	e->lp_tls_srv = e->lp_tls_cli = NULL;
	e->lp_gridmap = NULL;
	if (loop_tls_setup(e, e->lp_opts) < 0) {
		tls_ctx_free(e->lp_tls_srv);
		tls_ctx_free(e->lp_tls_cli);
		if (e->lp_gridmap)
			idmap_gridmap_unref(e->lp_gridmap);
		e->lp_tls_srv = osrv;
		e->lp_tls_cli = ocli;
		e->lp_gridmap = ogm;
		px_err("SIGHUP: keeping the previous TLS settings%s",
		       ogm ? " and grid-mapfile" : "");
		return;
	}
	tls_ctx_free(osrv);
	tls_ctx_free(ocli);
	if (ogm)
		idmap_gridmap_unref(ogm);
	px_info("SIGHUP: TLS certificate, key, CA and CRL reloaded%s",
		e->lp_gridmap ? ", grid-mapfile too" : "");
	/* Peers already in: the new CA bundle and CRL, then the new
	 * grid-mapfile, decide again. */
	if (e->lp_tls_srv)
		px_client_recheck_certs(e->lp_main);
	if (e->lp_gridmap)
		px_client_recheck_peers(e->lp_main);
}

static void loop_reload(struct px_loop *l)
{
	struct px_opts *nw[PX_EXPORTS_MAX];
	unsigned n, kept = 0;

	if (px_reload_opts(nw, &n) < 0) {
		px_err("SIGHUP: configuration refused: nothing changed; maps "
		       "reloaded as before");
		for (unsigned i = 0; i < l->lp_neng; i++)
			engine_reload(l->lp_eng[i]);
		return;
	}
	bool same_exports = n == l->lp_neng;

	for (unsigned i = 0; same_exports && i < n; i++) {
		const char *a = l->lp_eng[i]->lp_opts->o_export_name;
		const char *b = nw[i]->o_export_name;

		same_exports = (!a && !b) || (a && b && !strcmp(a, b) &&
					      !strcmp(l->lp_eng[i]->lp_opts
							      ->o_export_path,
						      nw[i]->o_export_path));
	}
	if (!same_exports) {
		px_warn("SIGHUP: the set of exports changed: takes effect at "
			"the next start; this daemon keeps its exports and "
			"reloads their maps only");
		px_opts_array_free(nw, n);
		for (unsigned i = 0; i < l->lp_neng; i++)
			engine_reload(l->lp_eng[i]);
		return;
	}
	if (l->lp_nretired + n > l->lp_maxretired) {
		unsigned cap = (l->lp_nretired + n) * 2;
		struct px_opts **r = realloc(l->lp_retired, cap * sizeof(*r));

		if (!r) {
			px_err("SIGHUP: out of memory: nothing changed");
			px_opts_array_free(nw, n);
			return;
		}
		l->lp_retired = r;
		l->lp_maxretired = cap;
	}
	for (unsigned i = 0; i < n; i++) {
		struct px_loop *e = l->lp_eng[i];

		kept += keep_restart_fields(e->lp_opts, nw[i],
					    nw[i]->o_export_name);
		/* The old options stay alive (modules may hold pointers into
		 * them) until the daemon exits. */
		l->lp_retired[l->lp_nretired++] = nw[i];
		e->lp_opts = nw[i];
		engine_reload(e);
		engine_reload_tls(e);
	}
	px_log_level = nw[0]->o_log_level;
	px_client_update_read(l, NULL); /* limits may have changed */
	px_info("SIGHUP: configuration reloaded%s", kept ? " (some settings "
		"wait for the next start, see above)" : "");
}

static void signal_event(struct px_ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	while (read(ev->ev_fd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
			drain_begin(the_loop, "SIGTERM");
			break;
		case SIGINT:
			drain_begin(the_loop, "SIGINT");
			break;
		case SIGHUP:
			loop_reload(the_loop);
			break;
		case SIGUSR1: /* a one-line pulse in the log */
			px_info("status: %u client(s), %u call(s) outstanding "
				"(nfs %u, mount %u), %llu replies, %llu local "
				"errors", the_loop->lp_nclients,
				px_pending_total(the_loop),
				the_loop->lp_nfs.ln_npending,
				the_loop->lp_mount.ln_npending,
				(unsigned long long)the_loop->lp_stats.s_replies,
				(unsigned long long)the_loop->lp_stats.s_errors_local);
			break;
		}
	}
}

/* Nothing pending and every reply written: safe to exit. */
static bool loop_quiet(struct px_loop *l)
{
	if (px_pending_total(l))
		return false;
	for (struct px_client *c = l->lp_clients; c; c = c->cl_next)
		if (c->cl_out.q_head ||
		    (c->cl_tls && tls_conn_wpending(c->cl_tls)))
			return false;
	return true;
}

static void drain_tick(struct px_loop *l, const struct timespec *now)
{
	bool late = now->tv_sec > l->lp_drain_deadline.tv_sec ||
		    (now->tv_sec == l->lp_drain_deadline.tv_sec &&
		     now->tv_nsec >= l->lp_drain_deadline.tv_nsec);

	if (late && px_pending_total(l)) {
		px_warn("drain timeout: failing %u call(s) with SYSTEM_ERR",
			px_pending_total(l));
		for (unsigned i = 0; i < l->lp_neng; i++) {
			struct px_loop *e = l->lp_eng[i];

			while (e->lp_nfs.ln_head)
				px_pipe_fail_call(e->lp_nfs.ln_head,
						  RPC_ACC_SYSTEM_ERR);
			while (e->lp_mount.ln_head)
				px_pipe_fail_call(e->lp_mount.ln_head,
						  RPC_ACC_SYSTEM_ERR);
		}
	}
	/* Give clients one more second after the deadline to take their
	 * replies, then stop regardless. */
	if (loop_quiet(l) || now->tv_sec > l->lp_drain_deadline.tv_sec + 1)
		l->lp_stop = true;
}

static void timer_event(struct px_ev *ev, uint64_t unused)
{
	struct px_loop *l = the_loop;
	static unsigned mem_ticks;
	struct timespec now;
	uint64_t ticks;

	if (read(ev->ev_fd, &ticks, sizeof(ticks)) < 0)
		return;
	if (++mem_ticks * TICK_MS >= 1000) {
		mem_ticks = 0;
		px_mem_tick();
	}
	px_now(&now);
	for (unsigned i = 0; i < l->lp_neng; i++) {
		struct px_loop *e = l->lp_eng[i];

		px_link_tick(&e->lp_nfs, &now);
		px_link_tick(&e->lp_mount, &now);
		px_pipe_tick(e, time(NULL));
		if (e->lp_wb)
			px_wb_tick(e);
		px_rcache_tick(e);
		if (e->lp_learn)
			px_learn_tick(e);
	}
	px_client_tick(l, px_now_ms());
	px_metrics_tick(l);
	if (l->lp_draining)
		drain_tick(l, &now);
}

static void timer_cb(struct px_ev *ev, uint32_t events)
{
	timer_event(ev, events);
}

static int listen_open(const struct px_opts *o)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (px_addr_parse(o->o_listen, 2049, &ss, &sl))
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 512) < 0) {
		int err = errno;

		px_err("cannot listen on %s: %s", o->o_listen, strerror(err));
		close(fd);
		return -err;
	}
	return fd;
}

static uint16_t listen_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET6
			     ? ((struct sockaddr_in6 *)&ss)->sin6_port
			     : ((struct sockaddr_in *)&ss)->sin_port);
}

/* The host part of HOST:PORT / [V6]:PORT, for certificate checks. */
static void upstream_host(const char *s, char *out, size_t len)
{
	const char *end;

	if (*s == '[') {
		s++;
		end = strchr(s, ']');
	} else {
		end = strrchr(s, ':');
	}
	if (!end)
		end = s + strlen(s);
	snprintf(out, len, "%.*s", (int)(end - s), s);
}

static int loop_tls_setup(struct px_loop *l, const struct px_opts *o)
{
	struct tls_config tc = {
		.tc_cert = o->o_tls_cert, .tc_key = o->o_tls_key,
		.tc_ca = o->o_tls_ca, .tc_crl = o->o_tls_crl,
		.tc_server = o->o_role == PX_ROLE_SERVER,
		.tc_zstd = o->o_compress != ZLINK_OFF,
	};
	char host[256], err[512];
	int rc;

	if (o->o_tls == PX_TLS_OFF)
		return 0;
	/* Error level: a downgrade an attacker on the path can force. */
	if (o->o_tls == PX_TLS_OPTIONAL && tc.tc_server)
		px_err("--tls optional: plaintext clients are accepted without "
		       "a certificate and act as %s; anyone on the network can "
		       "be such a client", o->o_plaintext_accounts
						? o->o_plaintext_accounts
						: "the anonymous id");
	else if (o->o_tls == PX_TLS_OPTIONAL)
		px_err("--tls optional: the upstream link goes plaintext when "
		       "the server does not answer the TLS probe; anyone on the "
		       "path can force that and read or change every call");
	if (!tc.tc_server) {
		if (o->o_tls_server_name)
			snprintf(host, sizeof(host), "%s", o->o_tls_server_name);
		else
			upstream_host(o->o_upstream, host, sizeof(host));
		tc.tc_server_name = host;
	}
	err[0] = '\0';
	rc = tls_ctx_new(&tc, tc.tc_server ? &l->lp_tls_srv : &l->lp_tls_cli,
			 err, sizeof(err));
	if (rc < 0) {
		px_err("TLS: %s", err[0] ? err : tls_strerror(rc));
		return -EINVAL;
	}
	if (!tc.tc_server)
		return 0;
	err[0] = '\0';
	if (idmap_gridmap_load(o->o_grid_mapfile, &l->lp_gridmap, err,
			       sizeof(err)) < 0) {
		px_err("grid-mapfile refused: %s", err);
		return -EINVAL;
	}
	px_info("TLS required=%s, grid-mapfile %s: %zu entries",
		o->o_tls == PX_TLS_REQUIRE ? "yes" : "no (optional)",
		o->o_grid_mapfile, idmap_gridmap_count(l->lp_gridmap));
	return 0;
}

/* One export's engine: its links, calls, map, TLS toward upstream, read
 * cache and write-back (on the daemon's epoll set). */
static int engine_setup(struct px_loop *e)
{
	const struct px_opts *o = e->lp_opts;
	struct idmap *m;
	int rc;

	e->lp_epfd = e->lp_main->lp_epfd;
	e->lp_ctl.ev_fd = e->lp_listen.ev_fd = -1;
	e->lp_sig.ev_fd = e->lp_timer.ev_fd = -1;
	px_link_init(e, &e->lp_nfs, "nfs", RPC_PROG_NFS, o->o_upstream);
	px_link_init(e, &e->lp_mount, "mount", RPC_PROG_MOUNT,
		     o->o_mount_upstream);
	if (px_pipe_init(e))
		return -ENOMEM;
	if ((rc = px_ident_load(o, &m)) < 0)
		return -EINVAL;
	if (m && idmap_slot_new(m, &e->lp_idmap) < 0) {
		idmap_unref(m);
		return -ENOMEM;
	}
	/* The server role's accept side belongs to the daemon. */
	if ((o->o_role == PX_ROLE_CLIENT || e == e->lp_main) &&
	    loop_tls_setup(e, o) < 0)
		return -EINVAL;
	if (px_rcache_open(e) < 0 || px_wb_open(e) < 0 || px_learn_open(e) < 0)
		return -EINVAL;
	if (o->o_export_name)
		px_info("export %s: clients mount %s, upstream %s%s%s", 
			o->o_export_name, o->o_export_path, o->o_upstream,
			o->o_upstream_path ? " path " : "",
			o->o_upstream_path ? o->o_upstream_path : "");
	return 0;
}

static void engine_teardown(struct px_loop *e)
{
	/* Calls left after the drain have no one to answer. */
	while (e->lp_nfs.ln_head)
		px_pipe_fail_call(e->lp_nfs.ln_head, RPC_ACC_SYSTEM_ERR);
	while (e->lp_mount.ln_head)
		px_pipe_fail_call(e->lp_mount.ln_head, RPC_ACC_SYSTEM_ERR);
	px_link_shutdown(&e->lp_nfs);
	px_link_shutdown(&e->lp_mount);
	px_pipe_free(e);
	px_wb_close(e);
	px_learn_close(e);
	px_rcache_close(e); /* drains the cache writer */
	if (e->lp_idmap)
		idmap_slot_free(e->lp_idmap);
	e->lp_idmap = NULL;
	if (e->lp_gridmap)
		idmap_gridmap_unref(e->lp_gridmap);
	e->lp_gridmap = NULL;
	tls_ctx_free(e->lp_tls_srv);
	tls_ctx_free(e->lp_tls_cli);
	e->lp_tls_srv = e->lp_tls_cli = NULL;
}

static int loop_setup(struct px_loop *l, const struct px_opts *o)
{
	sigset_t mask;
	int fd;
	struct itimerspec its = {
		.it_interval = {0, TICK_MS * 1000000L},
		.it_value = {0, TICK_MS * 1000000L},
	};

	/* Block the signals we take through signalfd before any thread (the
	 * cache writer) exists: threads inherit the mask, and an unblocked
	 * thread would take SIGTERM's default action. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	signal(SIGUSR2, SIG_IGN); /* a stray signal must not kill a daemon */
	l->lp_listen.ev_fd = l->lp_sig.ev_fd = l->lp_timer.ev_fd = -1;
	l->lp_ctl.ev_fd = -1;
	if ((l->lp_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	for (unsigned i = 0; i < l->lp_neng; i++) {
		int rc = engine_setup(l->lp_eng[i]);

		if (rc < 0)
			return rc;
	}
	if ((fd = listen_open(o)) < 0)
		return fd;
	l->lp_listen.ev_fd = fd;
	l->lp_listen.ev_fn = listen_event;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	l->lp_sig.ev_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	l->lp_sig.ev_fn = signal_event;
	l->lp_timer.ev_fd = timerfd_create(CLOCK_MONOTONIC,
					   TFD_NONBLOCK | TFD_CLOEXEC);
	l->lp_timer.ev_fn = timer_cb;
	if (l->lp_sig.ev_fd < 0 || l->lp_timer.ev_fd < 0 ||
	    timerfd_settime(l->lp_timer.ev_fd, 0, &its, NULL) < 0)
		return -errno;
	if (px_control_open(l) < 0 || px_metrics_open(l) < 0)
		return -EINVAL;
	if (px_ev_add(l, &l->lp_listen, EPOLLIN) ||
	    px_ev_add(l, &l->lp_sig, EPOLLIN) ||
	    px_ev_add(l, &l->lp_timer, EPOLLIN))
		return -errno;
	return 0;
}

static void loop_teardown(struct px_loop *l)
{
	while (l->lp_clients)
		px_client_close(l->lp_clients, NULL);
	for (unsigned i = l->lp_neng; i-- > 0;)
		engine_teardown(l->lp_eng[i]);
	px_client_reap(l);
	px_control_close(l);
	px_metrics_close(l);
	if (l->lp_listen.ev_fd >= 0)
		close(l->lp_listen.ev_fd);
	if (l->lp_sig.ev_fd >= 0)
		close(l->lp_sig.ev_fd);
	if (l->lp_timer.ev_fd >= 0)
		close(l->lp_timer.ev_fd);
	if (l->lp_epfd >= 0)
		close(l->lp_epfd);
}

static void notify(int *fd, char verdict)
{
	if (*fd < 0)
		return;
	if (verdict == 0)
		px_log_detached(); /* started: stderr is done with */
	if (write(*fd, &verdict, 1) != 1)
		px_debug("start-up notification lost");
	close(*fd);
	*fd = -1;
}

static void loop_free(struct px_loop *l)
{
	px_opts_array_free(l->lp_retired, l->lp_nretired);
	free(l->lp_retired);
	for (unsigned i = 1; i < l->lp_neng; i++)
		free(l->lp_eng[i]);
	free(l->lp_eng);
	free(l);
}

/* Engine 0 is the daemon; one engine per export. */
static struct px_loop *loop_alloc(struct px_opts *const *eo, unsigned n)
{
	struct px_loop *l = calloc(1, sizeof(*l));

	if (!l || !(l->lp_eng = calloc(n, sizeof(*l->lp_eng)))) {
		free(l);
		return NULL;
	}
	l->lp_eng[0] = l;
	l->lp_neng = 1;
	for (unsigned i = 1; i < n; i++) {
		if (!(l->lp_eng[i] = calloc(1, sizeof(*l))))
			break;
		l->lp_neng++;
	}
	if (l->lp_neng != n) {
		loop_free(l);
		return NULL;
	}
	for (unsigned i = 0; i < n; i++) {
		struct px_loop *e = l->lp_eng[i];

		e->lp_opts = eo[i];
		e->lp_main = l;
		e->lp_wrap = n > 1;
	}
	return l;
}

int px_run(struct px_opts *const *eo, unsigned neo, int notify_fd)
{
	const struct px_opts *o = eo[0];
	struct px_loop *l = loop_alloc(eo, neo);
	struct epoll_event evs[128];
	uint16_t port;
	int rc;

	if (!l)
		return -ENOMEM;
	the_loop = l;
	signal(SIGPIPE, SIG_IGN);
	/* Several exports: handle tags are keyed (exports.c). */
	if (neo > 1 && (rc = px_export_key_load(l, o->o_state_dir
							 ? o->o_state_dir
							 : PX_STATE_DIR)) < 0) {
		loop_free(l);
		notify(&notify_fd, 1);
		return rc;
	}
	if ((rc = loop_setup(l, o)) < 0) {
		if (rc != -EADDRINUSE && rc != -EACCES &&
		    rc != -EADDRNOTAVAIL && rc != -EINVAL)
			px_err("start-up failed: %s", strerror(-rc));
		loop_teardown(l);
		loop_free(l);
		notify(&notify_fd, 1);
		return rc;
	}
	if (px_privs_drop(o) < 0) {
		loop_teardown(l);
		loop_free(l);
		notify(&notify_fd, 1);
		return -EPERM;
	}
	notify(&notify_fd, 0);
	port = listen_port(l->lp_listen.ev_fd);
	for (unsigned i = 0; neo > 1 && i < l->lp_neng; i++)
		px_export_learn_root(l->lp_eng[i]);
	if (o->o_role == PX_ROLE_CLIENT && o->o_insecure)
		px_warn("--insecure: every AUTH_SYS credential is believed; any "
			"local user can act as any other at the store");
	if (o->o_register)
		px_rpcbind_register(true, port);
	if (neo > 1)
		px_info("%s role listening on %s (port %u), %u exports",
			o->o_role == PX_ROLE_CLIENT ? "client" : "server",
			o->o_listen, port, neo);
	else
		px_info("%s role listening on %s (port %u), upstream nfs %s, "
			"mount %s",
			o->o_role == PX_ROLE_CLIENT ? "client" : "server",
			o->o_listen, port, o->o_upstream,
			o->o_mount_upstream ? o->o_mount_upstream
					    : "via rpcbind");
	uint64_t spin_until = 0;

	while (!l->lp_stop) {
		int n, tmo = 1000;

		/* --busy-poll: while calls are out, poll without sleeping
		 * for a while; a reply then costs no wake-up (one core's
		 * worth of CPU traded for latency). */
		if (o->o_busy_poll_us && px_pending_total(l)) {
			struct timespec ts;
			uint64_t us;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			us = (uint64_t)ts.tv_sec * 1000000u +
			     (uint64_t)ts.tv_nsec / 1000u;
			if (!spin_until)
				spin_until = us + o->o_busy_poll_us;
			tmo = us < spin_until ? 0 : 1000;
		}
		n = epoll_wait(l->lp_epfd, evs, 128, tmo);
		if (n > 0)
			spin_until = 0;

		if (n < 0 && errno != EINTR) {
			px_err("epoll_wait: %s", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++) {
			struct px_ev *ev = evs[i].data.ptr;

			ev->ev_fn(ev, evs[i].events);
		}
		px_client_reap(l);
	}
	if (o->o_register)
		px_rpcbind_register(false, port);
	px_info("exiting: %llu calls forwarded, %llu answered locally, "
		"%llu client connections",
		(unsigned long long)l->lp_stats.s_replies,
		(unsigned long long)l->lp_stats.s_errors_local,
		(unsigned long long)l->lp_stats.s_conns_accepted);
	loop_teardown(l);
	loop_free(l);
	return 0;
}
