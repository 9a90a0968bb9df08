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
		l->lp_npending, l->lp_opts->o_drain_timeout);
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
static void loop_reload(struct px_loop *l)
{
	struct idmap *m;

	if (!l->lp_idmap) {
		px_info("SIGHUP: identity mapping is off, nothing to reload");
		return;
	}
	if (px_ident_load(l->lp_opts, &m) < 0) {
		px_err("SIGHUP: keeping the previous map");
		return;
	}
	idmap_slot_set(l->lp_idmap, m);
	px_info("SIGHUP: map %s reloaded", l->lp_opts->o_map ? l->lp_opts->o_map
							      : "(squash rules)");
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
				the_loop->lp_npending,
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
	if (l->lp_npending)
		return false;
	for (struct px_client *c = l->lp_clients; c; c = c->cl_next)
		if (c->cl_out.q_head)
			return false;
	return true;
}

static void drain_tick(struct px_loop *l, const struct timespec *now)
{
	bool late = now->tv_sec > l->lp_drain_deadline.tv_sec ||
		    (now->tv_sec == l->lp_drain_deadline.tv_sec &&
		     now->tv_nsec >= l->lp_drain_deadline.tv_nsec);

	if (late && l->lp_npending) {
		px_warn("drain timeout: failing %u call(s) with SYSTEM_ERR",
			l->lp_npending);
		while (l->lp_nfs.ln_head)
			px_pipe_fail_call(l->lp_nfs.ln_head, RPC_ACC_SYSTEM_ERR);
		while (l->lp_mount.ln_head)
			px_pipe_fail_call(l->lp_mount.ln_head, RPC_ACC_SYSTEM_ERR);
	}
	/* Give clients one more second after the deadline to take their
	 * replies, then stop regardless. */
	if (loop_quiet(l) || now->tv_sec > l->lp_drain_deadline.tv_sec + 1)
		l->lp_stop = true;
}

static void timer_event(struct px_ev *ev, uint64_t unused)
{
	struct px_loop *l = the_loop;
	struct timespec now;
	uint64_t ticks;

	if (read(ev->ev_fd, &ticks, sizeof(ticks)) < 0)
		return;
	px_now(&now);
	px_link_tick(&l->lp_nfs, &now);
	px_link_tick(&l->lp_mount, &now);
	px_client_tick(l, px_now_ms());
	px_pipe_tick(l, time(NULL));
	if (l->lp_wb)
		px_wb_tick(l);
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
	};
	char host[256], err[512];
	int rc;

	if (o->o_tls == PX_TLS_OFF)
		return 0;
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
	memset(l, 0, sizeof(*l));
	l->lp_opts = o;
	l->lp_listen.ev_fd = l->lp_sig.ev_fd = l->lp_timer.ev_fd = -1;
	px_link_init(l, &l->lp_nfs, "nfs", RPC_PROG_NFS, o->o_upstream);
	px_link_init(l, &l->lp_mount, "mount", RPC_PROG_MOUNT,
		     o->o_mount_upstream);
	if ((l->lp_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -errno;
	if (px_pipe_init(l))
		return -ENOMEM;
	{
		struct idmap *m;
		int rc = px_ident_load(o, &m);

		if (rc < 0)
			return -EINVAL;
		if (m && idmap_slot_new(m, &l->lp_idmap) < 0) {
			idmap_unref(m);
			return -ENOMEM;
		}
	}
	l->lp_ctl.ev_fd = -1;
	if (loop_tls_setup(l, o) < 0 || px_rcache_open(l) < 0 ||
	    px_wb_open(l) < 0)
		return -EINVAL;
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
	if (px_control_open(l) < 0)
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
	/* Calls left after the drain have no one to answer. */
	while (l->lp_nfs.ln_head)
		px_pipe_fail_call(l->lp_nfs.ln_head, RPC_ACC_SYSTEM_ERR);
	while (l->lp_mount.ln_head)
		px_pipe_fail_call(l->lp_mount.ln_head, RPC_ACC_SYSTEM_ERR);
	px_link_shutdown(&l->lp_nfs);
	px_link_shutdown(&l->lp_mount);
	px_pipe_free(l);
	px_client_reap(l);
	px_control_close(l);
	px_wb_close(l);
	px_rcache_close(l); /* drains the cache writer */
	if (l->lp_idmap)
		idmap_slot_free(l->lp_idmap);
	if (l->lp_gridmap)
		idmap_gridmap_unref(l->lp_gridmap);
	tls_ctx_free(l->lp_tls_srv);
	tls_ctx_free(l->lp_tls_cli);
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
	if (write(*fd, &verdict, 1) != 1)
		px_debug("start-up notification lost");
	close(*fd);
	*fd = -1;
}

int px_run(const struct px_opts *o, int notify_fd)
{
	struct px_loop *l = calloc(1, sizeof(*l));
	struct epoll_event evs[128];
	uint16_t port;
	int rc;

	if (!l)
		return -ENOMEM;
	the_loop = l;
	signal(SIGPIPE, SIG_IGN);
	if ((rc = loop_setup(l, o)) < 0) {
		if (rc != -EADDRINUSE && rc != -EACCES &&
		    rc != -EADDRNOTAVAIL && rc != -EINVAL)
			px_err("start-up failed: %s", strerror(-rc));
		loop_teardown(l);
		free(l);
		notify(&notify_fd, 1);
		return rc;
	}
	if (px_privs_drop(o) < 0) {
		loop_teardown(l);
		free(l);
		notify(&notify_fd, 1);
		return -EPERM;
	}
	notify(&notify_fd, 0);
	port = listen_port(l->lp_listen.ev_fd);
	if (o->o_register)
		px_rpcbind_register(true, port);
	px_info("%s role listening on %s (port %u), upstream nfs %s, mount %s",
		o->o_role == PX_ROLE_CLIENT ? "client" : "server", o->o_listen,
		port, o->o_upstream,
		o->o_mount_upstream ? o->o_mount_upstream : "via rpcbind");
	uint64_t spin_until = 0;

	while (!l->lp_stop) {
		int n, tmo = 1000;

		/* --busy-poll: while calls are out, poll without sleeping
		 * for a while; a reply then costs no wake-up (one core's
		 * worth of CPU traded for latency). */
		if (o->o_busy_poll_us && l->lp_npending) {
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
	free(l);
	return 0;
}
