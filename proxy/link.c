/*
 * proxy/link.c — upstream links: one TCP connection per RPC program,
 * connected lazily, reconnected with exponential backoff from the same
 * local port (so the server's duplicate request cache still recognises
 * resent calls), resending every pending call with its original XID and
 * bytes, in submission order.
 */
#include "config.h"
#include "proxy/core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "crypto/tls.h"

#define BACKOFF_MIN_MS 100u
#define BACKOFF_MAX_MS 5000u
#define READ_BUDGET (8u << 20)
#define WRITE_BUDGET (8u << 20)

static void link_event(struct px_ev *ev, uint32_t events);
static void link_connect(struct px_link *ln);

void px_link_init(struct px_loop *l, struct px_link *ln, const char *name,
		  uint32_t prog, const char *addr)
{
	memset(ln, 0, sizeof(*ln));
	ln->ln_ev.ev_fd = -1;
	ln->ln_ev.ev_fn = link_event;
	ln->ln_loop = l;
	ln->ln_name = name;
	ln->ln_prog = prog;
	ln->ln_state = LINK_IDLE;
	ln->ln_backoff_ms = BACKOFF_MIN_MS;
	if (addr && !px_addr_parse(addr, 2049, &ln->ln_addr, &ln->ln_addrlen))
		ln->ln_have_addr = true;
}

/*
 * Ask the upstream host's rpcbind where MOUNT v3/TCP lives.  This blocks
 * for at most a second, and only when a mount link (re)connects without
 * --mount-upstream: MOUNT calls are rare, so a short stall beats the
 * complexity of an asynchronous portmapper client.
 */
static int link_resolve_mount(struct px_link *ln)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint16_t port;

	if (px_addr_parse(ln->ln_loop->lp_opts->o_upstream, 2049, &ss, &sl) ||
	    px_rpcbind_getport(&ss, RPC_PROG_MOUNT, MOUNT3_VERS, &port))
		return -EHOSTUNREACH;
	if (ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&ss)->sin_port = htons(port);
	ln->ln_addr = ss;
	ln->ln_addrlen = sl;
	return 0;
}

static void link_schedule_retry(struct px_link *ln)
{
	px_now(&ln->ln_retry_at);
	ln->ln_retry_at.tv_sec += ln->ln_backoff_ms / 1000;
	ln->ln_retry_at.tv_nsec += (long)(ln->ln_backoff_ms % 1000) * 1000000;
	if (ln->ln_retry_at.tv_nsec >= 1000000000) {
		ln->ln_retry_at.tv_sec++;
		ln->ln_retry_at.tv_nsec -= 1000000000;
	}
	ln->ln_backoff_ms *= 2;
	if (ln->ln_backoff_ms > BACKOFF_MAX_MS)
		ln->ln_backoff_ms = BACKOFF_MAX_MS;
	ln->ln_state = LINK_BACKOFF;
}

/* Tear down the socket; pending calls stay and are resent later. */
static void link_down(struct px_link *ln, const char *why)
{
	struct px_loop *l = ln->ln_loop;

	if (ln->ln_tls) {
		tls_conn_free(ln->ln_tls);
		ln->ln_tls = NULL;
	}
	if (ln->ln_ev.ev_fd >= 0) {
		px_ev_del(l, &ln->ln_ev);
		close(ln->ln_ev.ev_fd);
		ln->ln_ev.ev_fd = -1;
	}
	if (ln->ln_fails == 0)
		px_warn("upstream %s: %s; %u call(s) will be resent", ln->ln_name,
			why, ln->ln_npending);
	else if (ln->ln_state == LINK_UP)
		px_warn_rl("upstream %s: %s again after reconnecting (%u "
			   "failures in a row); %u call(s) wait", ln->ln_name,
			   why, ln->ln_fails + 1, ln->ln_npending);
	else
		px_debug("upstream %s: %s", ln->ln_name, why);
	l->lp_stats.s_upstream_failures++;
	ln->ln_fails++;
	if (!ln->ln_down_since)
		ln->ln_down_since = px_now_ms();
	px_outq_clear(&ln->ln_out);
	/* A half-read reply belongs to the dead connection. */
	px_reader_free(&ln->ln_rd);
	link_schedule_retry(ln);
}

static void link_arm(struct px_link *ln)
{
	uint32_t mask = EPOLLIN;

	if (ln->ln_state == LINK_HANDSHAKE)
		mask = ln->ln_tls_want == TLS_WANT_WRITE ? EPOLLOUT : EPOLLIN;
	else if (ln->ln_state == LINK_CONNECTING || ln->ln_out.q_head ||
		 (ln->ln_tls && tls_conn_wpending(ln->ln_tls)))
		mask |= EPOLLOUT;
	if (ln->ln_ev.ev_fd >= 0 && mask != ln->ln_ev.ev_mask)
		px_ev_mod(ln->ln_loop, &ln->ln_ev, mask);
}

static void link_flush(struct px_link *ln)
{
	int rc = px_outq_flush(&ln->ln_out, ln->ln_ev.ev_fd, ln->ln_tls,
			       WRITE_BUDGET);

	if (rc < 0) {
		char why[96];

		snprintf(why, sizeof(why), "write: %s", strerror(-rc));
		link_down(ln, why);
		return;
	}
	link_arm(ln);
}

/* A reply came: the upstream works. */
static void link_proven(struct px_link *ln)
{
	if (!ln->ln_down_since && !ln->ln_fails)
		return;
	ln->ln_down_since = 0;
	ln->ln_fails = 0;
	ln->ln_backoff_ms = BACKOFF_MIN_MS;
}

/* The link carries calls: resend what waited for it. */
static void link_ready(struct px_link *ln)
{
	if (ln->ln_down_since)
		px_info("upstream %s: connected after %ld s; resending %u "
			"call(s)", ln->ln_name,
			(long)((px_now_ms() - ln->ln_down_since) / 1000),
			ln->ln_npending);
	else
		px_debug("upstream %s: connected", ln->ln_name);
	bool again = ln->ln_down_since != 0;

	/* Connected is not yet healthy: an upstream that accepts and then
	 * drops us (a peer refused after the handshake, a server that dies
	 * at each request) must not reset the backoff or the clock of
	 * --upstream-timeout.  The first reply does (link_proven). */
	ln->ln_state = LINK_UP;
	if (!again) {
		ln->ln_fails = 0;
		ln->ln_backoff_ms = BACKOFF_MIN_MS;
	}
	ln->ln_loop->lp_stats.s_upstream_connects++;
	/* Same XIDs, same bytes, same order as the first time. */
	for (struct px_call *pc = ln->ln_head; pc; pc = pc->pc_next) {
		px_outq_push(&ln->ln_out, pc->pc_req);
		if (again)
			ln->ln_loop->lp_stats.s_resent++;
	}
	link_flush(ln);
}

/* RFC 9289: probe with AUTH_TLS before anything else goes out. */
static void link_probe(struct px_link *ln)
{
	uint8_t buf[64];
	struct rpc_xdr x;

	ln->ln_probe_xid = ln->ln_loop->lp_next_xid++;
	rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
	rpc_tls_probe_build(&x, ln->ln_probe_xid, ln->ln_prog,
			    ln->ln_prog == RPC_PROG_NFS ? NFS3_VERS : MOUNT3_VERS);
	rpc_rec_mark(buf, x.x_pos);
	ln->ln_state = LINK_PROBE;
	ln->ln_setup_since = px_now_ms();
	if (write(ln->ln_ev.ev_fd, buf, x.x_pos + 4) != (ssize_t)(x.x_pos + 4)) {
		link_down(ln, "cannot send the STARTTLS probe");
		return;
	}
	link_arm(ln);
}

static void link_handshake(struct px_link *ln)
{
	int rc = tls_conn_handshake(ln->ln_tls);
	char why[320];

	if (tls_want(rc)) {
		ln->ln_tls_want = rc;
		link_arm(ln);
		return;
	}
	if (rc < 0) {
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 tls_conn_error(ln->ln_tls));
		link_down(ln, why);
		return;
	}
	struct tls_conn_info ti;

	tls_conn_info(ln->ln_tls, &ti);
	if (tls_conn_zstd(ln->ln_tls))
		px_zlink_start(ln->ln_loop->lp_opts, &ln->ln_out, &ln->ln_z,
			       &ln->ln_rd);
	px_info("upstream %s: TLS up (%s%s%s)", ln->ln_name,
		ti.ti_cipher ? ti.ti_cipher : "?",
		ti.ti_resumed ? ", resumed" : "",
		tls_conn_zstd(ln->ln_tls) ? ", zstd" : "");
	link_ready(ln);
	/* TLS may already hold the first replies (or a session ticket). */
	if (ln->ln_state == LINK_UP && tls_conn_pending(ln->ln_tls))
		link_event(&ln->ln_ev, EPOLLIN);
}

/* The probe's answer: start TLS, or (with --tls optional) go plaintext. */
static bool link_probe_answer(struct px_link *ln, uint8_t *mem, size_t len)
{
	int rc = rpc_tls_probe_check(mem + RPC_REC_HEADROOM, len,
				     ln->ln_probe_xid);

	free(mem);
	if (rc == 0) {
		if (px_reader_has_extra(&ln->ln_rd)) {
			ln->ln_fail = "upstream sent bytes after STARTTLS";
			return false;
		}
		if (tls_conn_new(ln->ln_loop->lp_tls_cli, ln->ln_ev.ev_fd,
				 &ln->ln_tls)) {
			ln->ln_fail = "cannot start TLS";
			return false;
		}
		ln->ln_state = LINK_HANDSHAKE;
		ln->ln_tls_want = TLS_WANT_WRITE;
		return false;
	}
	if (rc == -EPROTONOSUPPORT &&
	    ln->ln_loop->lp_opts->o_tls == PX_TLS_OPTIONAL) {
		px_warn("upstream %s: no RPC-with-TLS there; continuing in "
			"plaintext (--tls optional)", ln->ln_name);
		link_ready(ln);
		return false;
	}
	ln->ln_fail = rc == -EPROTONOSUPPORT
			      ? "upstream refused STARTTLS (--tls require)"
			      : "garbage answer to the STARTTLS probe";
	return false;
}

/* TCP is up: remember the local port, then TLS or straight to work. */
static void link_up(struct px_link *ln)
{
	struct sockaddr_storage local;
	socklen_t sl = sizeof(local);

	if (getsockname(ln->ln_ev.ev_fd, (struct sockaddr *)&local, &sl) == 0)
		ln->ln_local_port = ntohs(local.ss_family == AF_INET6
			? ((struct sockaddr_in6 *)&local)->sin6_port
			: ((struct sockaddr_in *)&local)->sin_port);
	if (ln->ln_loop->lp_tls_cli)
		link_probe(ln);
	else
		link_ready(ln);
}

static int link_socket(struct px_link *ln)
{
	int fd = socket(ln->ln_addr.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;

	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	if (ln->ln_local_port) {
		/* Reconnect from the port we used before: servers key their
		 * duplicate request cache on the client's address and port. */
		struct sockaddr_storage local;

		memset(&local, 0, sizeof(local));
		local.ss_family = ln->ln_addr.ss_family;
		if (local.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&local)->sin6_port =
				htons(ln->ln_local_port);
		else
			((struct sockaddr_in *)&local)->sin_port =
				htons(ln->ln_local_port);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&local, ln->ln_addrlen) < 0)
			px_debug("upstream %s: cannot reuse local port %u: %s",
				 ln->ln_name, ln->ln_local_port,
				 strerror(errno));
		else
			return fd;
	}
	if (ln->ln_loop->lp_opts->o_upstream_privport) {
		int port = px_privs_bind_reserved(fd, ln->ln_addr.ss_family);

		if (port < 0) {
			px_warn_rl("upstream %s: no reserved port to connect "
				   "from: %s", ln->ln_name, strerror(-port));
			close(fd);
			return port;
		}
	}
	return fd;
}

static void link_connect(struct px_link *ln)
{
	struct px_loop *l = ln->ln_loop;
	int fd;

	if (!ln->ln_have_addr && link_resolve_mount(ln)) {
		if (!ln->ln_down_since)
			ln->ln_down_since = px_now_ms();
		if (ln->ln_fails++ == 0)
			px_warn("upstream %s: rpcbind on the upstream host does "
				"not know MOUNT v3/TCP (use --mount-upstream)",
				ln->ln_name);
		link_schedule_retry(ln);
		return;
	}
	if ((fd = link_socket(ln)) < 0 ||
	    px_reader_init(&ln->ln_rd, l->lp_opts->o_max_record)) {
		if (fd >= 0)
			close(fd);
		link_schedule_retry(ln);
		return;
	}
	ln->ln_ev.ev_fd = fd;
	ln->ln_state = LINK_CONNECTING;
	if (px_ev_add(l, &ln->ln_ev, EPOLLIN | EPOLLOUT)) {
		link_down(ln, "epoll_ctl failed");
		return;
	}
	if (connect(fd, (struct sockaddr *)&ln->ln_addr, ln->ln_addrlen) == 0) {
		link_up(ln);
	} else if (errno != EINPROGRESS) {
		char why[96];

		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		link_down(ln, why);
	}
}

/* A compressed link's goodput meter (zlink.h): calls out or not, and
 * every byte both ways so far. */
static void link_zmeter(struct px_link *ln)
{
	struct timespec ts;

	if (!ln->ln_out.q_z)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	zlink_meter(&ln->ln_z, ln->ln_npending > 0,
		    ln->ln_rd.rd_bytes + ln->ln_out.q_sent,
		    (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
}

void px_link_submit(struct px_link *ln, struct px_call *pc)
{
	pc->pc_link = ln;
	pc->pc_next = NULL;
	pc->pc_prev = ln->ln_tail;
	if (ln->ln_tail)
		ln->ln_tail->pc_next = pc;
	else
		ln->ln_head = pc;
	ln->ln_tail = pc;
	ln->ln_npending++;
	switch (ln->ln_state) {
	case LINK_UP:
		if (ln->ln_npending == 1)
			link_zmeter(ln);
		px_outq_push(&ln->ln_out, pc->pc_req);
		link_flush(ln);
		break;
	case LINK_IDLE:
		link_connect(ln);
		break;
	default:
		break; /* sent when the connection comes up */
	}
}

void px_link_unlink_call(struct px_link *ln, struct px_call *pc)
{
	if (pc->pc_prev)
		pc->pc_prev->pc_next = pc->pc_next;
	else
		ln->ln_head = pc->pc_next;
	if (pc->pc_next)
		pc->pc_next->pc_prev = pc->pc_prev;
	else
		ln->ln_tail = pc->pc_prev;
	pc->pc_next = pc->pc_prev = NULL;
	ln->ln_npending--;
	link_zmeter(ln);
}

static bool link_on_msg(void *ctx, uint8_t *mem, size_t len)
{
	struct px_link *ln = ctx;

	/* Never tear the link down from inside the reader: it still owns
	 * its buffers.  link_read() acts on ln_fail. */
	if (ln->ln_state == LINK_PROBE)
		return link_probe_answer(ln, mem, len);
	if (!px_pipe_reply(ln, mem, len)) {
		ln->ln_fail = "garbage reply from upstream";
		return false;
	}
	link_proven(ln);
	return true;
}

static void link_read(struct px_link *ln)
{
	int fd = ln->ln_ev.ev_fd;
	int rc = px_reader_run(&ln->ln_rd, fd, ln->ln_tls, READ_BUDGET,
			       link_on_msg, ln);

	if (ln->ln_fail) {
		const char *why = ln->ln_fail;

		ln->ln_fail = NULL;
		link_down(ln, why);
	} else if (ln->ln_ev.ev_fd != fd) {
		return;
	} else if (ln->ln_state == LINK_HANDSHAKE) {
		link_handshake(ln);
	} else if (rc == 0)
		link_down(ln, "connection closed by upstream");
	else if (rc < 0 && ln->ln_rd.rd_why[0])
		link_down(ln, ln->ln_rd.rd_why);
	else if (rc == -ECONNABORTED)
		link_down(ln, "upstream closed without a TLS close_notify");
	else if (rc == -EMSGSIZE)
		link_down(ln, "reply record larger than --max-record");
	else if (rc == -EBADMSG)
		link_down(ln, "zero-length record from upstream");
	else if (rc < 0) {
		char why[96];

		snprintf(why, sizeof(why), "read: %s", strerror(-rc));
		link_down(ln, why);
	}
}

static void link_event(struct px_ev *ev, uint32_t events)
{
	struct px_link *ln = (struct px_link *)ev;

	if (ln->ln_state == LINK_CONNECTING) {
		int err = 0;
		socklen_t el = sizeof(err);

		if (getsockopt(ev->ev_fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err) {
			char why[96];

			snprintf(why, sizeof(why), "connect: %s", strerror(err));
			link_down(ln, why);
			return;
		}
		if (!(events & (EPOLLOUT | EPOLLIN)))
			return;
		link_up(ln);
		if (ln->ln_state != LINK_UP)
			return;
	}
	if (ln->ln_state == LINK_HANDSHAKE) {
		link_handshake(ln);
		return;
	}
	if (events & EPOLLIN)
		link_read(ln);
	if (ln->ln_state == LINK_UP && (events & EPOLLOUT))
		link_flush(ln);
	if (ln->ln_state == LINK_UP && (events & (EPOLLERR | EPOLLHUP)) &&
	    !(events & EPOLLIN))
		link_down(ln, "socket error");
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

void px_link_tick(struct px_link *ln, const struct timespec *now)
{
	unsigned tmo = ln->ln_loop->lp_opts->o_upstream_timeout;

	if ((ln->ln_state == LINK_PROBE || ln->ln_state == LINK_HANDSHAKE) &&
	    px_now_ms() - ln->ln_setup_since >= 10000)
		link_down(ln, ln->ln_state == LINK_PROBE
				      ? "no answer to the STARTTLS probe in 10 s"
				      : "TLS handshake timed out (10 s)");
	if (ln->ln_state == LINK_BACKOFF && !ts_before(now, &ln->ln_retry_at)) {
		if (ln->ln_npending) {
			link_connect(ln);
		} else {
			/* Connect on the next call, whose wait starts then. */
			ln->ln_state = LINK_IDLE;
			ln->ln_down_since = 0;
		}
	}
	/* Calls must not wait forever on a dead upstream: fail them with a
	 * clear error once --upstream-timeout has passed. */
	if (ln->ln_down_since && tmo && ln->ln_head &&
	    px_now_ms() - ln->ln_down_since >= (uint64_t)tmo * 1000u) {
		px_err("upstream %s unreachable for %u s: failing %u call(s) "
		       "with SYSTEM_ERR", ln->ln_name, tmo, ln->ln_npending);
		while (ln->ln_head)
			px_pipe_fail_call(ln->ln_head, RPC_ACC_SYSTEM_ERR);
		/* Later calls get their own --upstream-timeout. */
		ln->ln_down_since = px_now_ms();
	}
}

void px_link_shutdown(struct px_link *ln)
{
	if (ln->ln_tls) {
		/* Say goodbye (best effort: one non-blocking try), so the
		 * server role logs an ordinary close. */
		if (ln->ln_state == LINK_UP)
			tls_conn_shutdown(ln->ln_tls);
		tls_conn_free(ln->ln_tls);
		ln->ln_tls = NULL;
	}
	if (ln->ln_ev.ev_fd >= 0) {
		px_ev_del(ln->ln_loop, &ln->ln_ev);
		close(ln->ln_ev.ev_fd);
		ln->ln_ev.ev_fd = -1;
	}
	px_outq_clear(&ln->ln_out);
	px_reader_free(&ln->ln_rd);
	ln->ln_state = LINK_IDLE;
}
