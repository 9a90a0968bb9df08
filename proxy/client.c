/*
 * proxy/client.c — client connections: accepting within --max-conns,
 * reading calls under backpressure, writing replies, and the single close
 * path that logs why a connection ended.
 */
#include "config.h"
#include "proxy/core.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define READ_BUDGET (4u << 20)
#define WRITE_BUDGET (4u << 20)

static void client_event(struct px_ev *ev, uint32_t events);

static void client_free(struct px_client *c)
{
	px_reader_free(&c->cl_rd);
	px_outq_clear(&c->cl_out);
	free(c);
}

/*
 * The last reference parks the client on the loop's graveyard; the loop
 * frees it after the current batch of events, which may still name it.
 */
void px_client_unref(struct px_client *c)
{
	if (--c->cl_refs)
		return;
	c->cl_next = c->cl_loop->lp_graveyard;
	c->cl_loop->lp_graveyard = c;
}

void px_client_reap(struct px_loop *l)
{
	while (l->lp_graveyard) {
		struct px_client *c = l->lp_graveyard;

		l->lp_graveyard = c->cl_next;
		client_free(c);
	}
}

void px_client_close(struct px_client *c, const char *reason)
{
	struct px_loop *l = c->cl_loop;

	if (c->cl_closed)
		return;
	c->cl_closed = true;
	if (reason)
		px_info("client %s closed: %s", c->cl_name, reason);
	else
		px_debug("client %s closed", c->cl_name);
	px_ev_del(l, &c->cl_ev);
	close(c->cl_ev.ev_fd);
	c->cl_ev.ev_fd = -1;
	px_outq_clear(&c->cl_out);
	if (c->cl_prev)
		c->cl_prev->cl_next = c->cl_next;
	else
		l->lp_clients = c->cl_next;
	if (c->cl_next)
		c->cl_next->cl_prev = c->cl_prev;
	l->lp_nclients--;
	l->lp_stats.s_conns_closed++;
	px_client_unref(c);
}

static bool client_may_read(const struct px_client *c)
{
	const struct px_loop *l = c->cl_loop;
	const struct px_opts *o = l->lp_opts;

	return !l->lp_draining && !l->lp_paused &&
	       c->cl_pending < o->o_max_client_calls &&
	       c->cl_out.q_bytes < o->o_max_client_out;
}

static void client_arm(struct px_client *c)
{
	uint32_t mask = 0;

	if (c->cl_closed)
		return;
	if (!c->cl_read_paused)
		mask |= EPOLLIN;
	if (c->cl_out.q_head)
		mask |= EPOLLOUT;
	if (mask != c->cl_ev.ev_mask)
		px_ev_mod(c->cl_loop, &c->cl_ev, mask);
}

static bool client_on_msg(void *ctx, uint8_t *mem, size_t len)
{
	struct px_client *c = ctx;

	c->cl_loop->lp_stats.s_bytes_in += len + 4;
	if (!px_pipe_call(c, mem, len))
		return false;
	return !c->cl_closed && client_may_read(c);
}

static void client_read(struct px_client *c)
{
	int rc = px_reader_run(&c->cl_rd, c->cl_ev.ev_fd, READ_BUDGET,
			       client_on_msg, c);

	if (c->cl_closed)
		return;
	if (rc == 0 || rc == -ECONNRESET) {
		px_client_close(c, NULL); /* an ordinary goodbye */
	} else if (rc == -EMSGSIZE) {
		px_client_close(c, "record larger than --max-record or too "
				   "many fragments");
	} else if (rc == -EBADMSG) {
		px_client_close(c, "zero-length record");
	} else if (rc < 0) {
		char why[96];

		snprintf(why, sizeof(why), "read: %s", strerror(-rc));
		px_client_close(c, why);
	}
}

/* Deliver what is already staged after a pause ends. */
void px_client_resume_reading(struct px_client *c)
{
	if (c->cl_closed || !client_may_read(c))
		return;
	c->cl_read_paused = false;
	if (px_reader_has_staged(&c->cl_rd))
		client_read(c);
	client_arm(c);
}

void px_client_update_read(struct px_loop *l, struct px_client *c)
{
	if (!c) {
		struct px_client *next;

		for (c = l->lp_clients; c; c = next) {
			next = c->cl_next;
			px_client_update_read(l, c);
		}
		return;
	}
	if (c->cl_closed)
		return;
	if (client_may_read(c)) {
		if (c->cl_read_paused)
			px_client_resume_reading(c);
	} else {
		c->cl_read_paused = true;
	}
	client_arm(c);
}

static void client_flush(struct px_client *c)
{
	int rc = px_outq_flush(&c->cl_out, c->cl_ev.ev_fd, WRITE_BUDGET);

	if (rc < 0) {
		char why[96];

		snprintf(why, sizeof(why), "write: %s", strerror(-rc));
		px_client_close(c, why);
		return;
	}
	px_client_update_read(c->cl_loop, c);
}

void px_client_send(struct px_client *c, struct px_msg *m)
{
	if (c->cl_closed)
		return;
	c->cl_loop->lp_stats.s_bytes_out += m->m_len + 4;
	px_outq_push(&c->cl_out, m);
	/* Try at once: most replies fit in the socket buffer, which saves
	 * an epoll round trip per reply. */
	client_flush(c);
}

static void client_event(struct px_ev *ev, uint32_t events)
{
	struct px_client *c = (struct px_client *)ev;

	c->cl_refs++; /* keep c alive through the callbacks below */
	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN))
		px_client_close(c, events & EPOLLERR ? "socket error" : NULL);
	if (!c->cl_closed && (events & EPOLLOUT))
		client_flush(c);
	if (!c->cl_closed && (events & EPOLLIN) && !c->cl_read_paused) {
		client_read(c);
		px_client_update_read(c->cl_loop, c);
	}
	px_client_unref(c);
}

static void set_sockopts(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

void px_client_accept(struct px_loop *l)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(l->lp_listen.ev_fd, (struct sockaddr *)&ss,
				 &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct px_client *c;
		char name[64];

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				px_warn_rl("accept: %s", strerror(errno));
			else if (errno != EAGAIN && errno != EINTR &&
				 errno != ECONNABORTED)
				px_warn_rl("accept: %s", strerror(errno));
			return;
		}
		px_addr_str(&ss, name, sizeof(name));
		if (l->lp_draining || l->lp_nclients >= l->lp_opts->o_max_conns) {
			l->lp_stats.s_conns_refused++;
			px_warn_rl("client %s refused: %s", name,
				   l->lp_draining ? "shutting down"
						  : "--max-conns reached");
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c || px_reader_init(&c->cl_rd, l->lp_opts->o_max_record)) {
			px_warn_rl("client %s refused: out of memory", name);
			if (c)
				px_reader_free(&c->cl_rd);
			free(c);
			close(fd);
			continue;
		}
		set_sockopts(fd);
		c->cl_ev.ev_fd = fd;
		c->cl_ev.ev_fn = client_event;
		c->cl_loop = l;
		c->cl_id = ++l->lp_next_client_id;
		c->cl_addr = ss;
		c->cl_refs = 1;
		memcpy(c->cl_name, name, sizeof(c->cl_name));
		if (px_ev_add(l, &c->cl_ev, EPOLLIN)) {
			px_warn_rl("client %s refused: epoll: %s", name,
				   strerror(errno));
			client_free(c);
			close(fd);
			continue;
		}
		c->cl_next = l->lp_clients;
		if (c->cl_next)
			c->cl_next->cl_prev = c;
		l->lp_clients = c;
		l->lp_nclients++;
		l->lp_stats.s_conns_accepted++;
		px_debug("client %s connected", name);
		px_client_update_read(l, c);
	}
}

void px_client_tick(struct px_loop *l, uint64_t now_ms)
{
	struct px_client *c, *next;
	uint64_t limit = (uint64_t)l->lp_opts->o_record_timeout * 1000u;

	for (c = l->lp_clients; c; c = next) {
		next = c->cl_next;
		if (c->cl_rd.rd_partial_since &&
		    rpc_rec_partial(&c->cl_rd.rd_rec) &&
		    now_ms - c->cl_rd.rd_partial_since >= limit)
			px_client_close(c, "half-sent record timed out "
					   "(--record-timeout)");
	}
}
