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

#include "crypto/tls.h"
#include "idmap/idmap.h"

#define READ_BUDGET (4u << 20)
/* Before the probe and handshake are done a client is nobody: it may send
 * one record this big (the probe is 40 bytes, a plaintext call under
 * --tls optional rarely more), so a thousand of them cost little. */
#define PREAUTH_MAX_RECORD 4096u
#define WRITE_BUDGET (4u << 20)

static void client_event(struct px_ev *ev, uint32_t events);

static void client_free(struct px_client *c)
{
	if (c->cl_peer) {
		idmap_peer_ids_clear(c->cl_peer);
		free(c->cl_peer);
	}
	if (c->cl_own) {
		idmap_peer_ids_clear(c->cl_own);
		free(c->cl_own);
	}
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
	if (c->cl_tls) {
		if (c->cl_state == CL_READY)
			tls_conn_shutdown(c->cl_tls);
		tls_conn_free(c->cl_tls);
		c->cl_tls = NULL;
	}
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

	return !l->lp_draining && !l->lp_paused && c->cl_state != CL_HANDSHAKE &&
	       !c->cl_close_after_flush &&
	       c->cl_pending < o->o_max_client_calls &&
	       c->cl_out.q_bytes < o->o_max_client_out;
}

static void client_arm(struct px_client *c)
{
	uint32_t mask = 0;

	if (c->cl_closed)
		return;
	if (c->cl_state == CL_HANDSHAKE)
		mask = c->cl_tls_want == TLS_WANT_WRITE ? EPOLLOUT : EPOLLIN;
	else if (!c->cl_read_paused)
		mask |= EPOLLIN;
	if (c->cl_out.q_head ||
	    (c->cl_tls && c->cl_state != CL_HANDSHAKE &&
	     tls_conn_wpending(c->cl_tls)))
		mask |= EPOLLOUT;
	if (mask != c->cl_ev.ev_mask)
		px_ev_mod(c->cl_loop, &c->cl_ev, mask);
}

static void client_handshake(struct px_client *c);

/* Queue one locally built reply, and close once it is written. */
static void client_final_reply(struct px_client *c, struct rpc_xdr *x,
			       struct px_msg *m)
{
	m->m_len = x->x_pos;
	c->cl_close_after_flush = true;
	px_client_send(c, m);
	px_msg_unref(m);
}

/*
 * A plaintext client under --tls optional has no certificate to vouch for
 * it: it may act only as the --plaintext-accounts (none by default: every
 * id it claims becomes the anonymous one), just as a TLS peer may act only
 * as its grid-mapfile accounts.  Without this its AUTH_SYS would be
 * believed as it stands.
 */
static bool client_plaintext_admit(struct px_client *c)
{
	const char *list = c->cl_loop->lp_opts->o_plaintext_accounts;
	struct idmap_peer_ids *ids = calloc(1, sizeof(*ids));
	const char *accts[64];
	char buf[1024], *save = NULL, *t;
	size_t n = 0;
	int rc = 0;

	if (!ids) {
		px_client_close(c, "out of memory");
		return false;
	}
	if (list) {
		snprintf(buf, sizeof(buf), "%s", list);
		for (t = strtok_r(buf, ",", &save); t && n < 64;
		     t = strtok_r(NULL, ",", &save))
			accts[n++] = t;
		rc = idmap_accounts_ids(accts, n, ids);
	}
	if (rc < 0) {
		free(ids);
		px_err_rl("client %s: plaintext client refused: "
			  "--plaintext-accounts: %s", c->cl_name,
			  rc == -ESRCH ? "its first account does not exist "
					 "here" : strerror(-rc));
		px_client_close(c, "--plaintext-accounts cannot be resolved");
		return false;
	}
	c->cl_peer = ids;
	px_info_rl("client %s: plaintext client (--tls optional) acts as %s",
		   c->cl_name, list ? list : "the anonymous id");
	return true;
}

/*
 * The first message on a TLS-enabled server port: the RFC 9289 probe
 * starts the handshake; a plaintext call is refused with AUTH_TOOWEAK
 * under --tls require and served under --tls optional.  Returns true when
 * the message should go on to the pipeline.
 */
static bool client_probe(struct px_client *c, uint8_t *mem, size_t len)
{
	struct px_loop *l = c->cl_loop;
	struct rpc_call h;
	struct px_msg *m;
	struct rpc_xdr x;
	uint8_t buf[64];

	if (rpc_call_parse(mem + RPC_REC_HEADROOM, len, &h) == RPC_CALL_OK &&
	    rpc_tls_is_probe(&h)) {
		free(mem);
		if (px_reader_has_extra(&c->cl_rd)) {
			px_client_close(c, "sent bytes after the STARTTLS probe "
					   "before its reply");
			return false;
		}
		rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
		rpc_tls_probe_reply(&x, h.c_xid);
		rpc_rec_mark(buf, x.x_pos);
		/* Cleartext and tiny: the socket takes it whole. */
		if (write(c->cl_ev.ev_fd, buf, x.x_pos + 4) != (ssize_t)(x.x_pos + 4) ||
		    tls_conn_new(l->lp_tls_srv, c->cl_ev.ev_fd, &c->cl_tls)) {
			px_client_close(c, "cannot start TLS");
			return false;
		}
		c->cl_state = CL_HANDSHAKE;
		c->cl_hs_since = px_now_ms();
		c->cl_tls_want = TLS_WANT_READ;
		return false;
	}
	if (l->lp_opts->o_tls == PX_TLS_OPTIONAL) {
		if (!client_plaintext_admit(c) ||
		    px_reader_set_max(&c->cl_rd, l->lp_opts->o_max_record)) {
			free(mem);
			if (!c->cl_closed)
				px_client_close(c, "out of memory");
			return false;
		}
		c->cl_state = CL_READY;
		return true;
	}
	free(mem);
	px_warn_rl("client %s: plaintext call refused: TLS is required "
		   "(AUTH_TOOWEAK)", c->cl_name);
	if ((m = px_msg_new(64))) {
		rpc_xdr_init(&x, px_msg_data(m), 64);
		rpc_reply_auth_error(&x, h.c_xid, RPC_AUTH_TOOWEAK);
		client_final_reply(c, &x, m);
	} else {
		px_client_close(c, "plaintext call while TLS is required");
	}
	return false;
}

static bool client_on_msg(void *ctx, uint8_t *mem, size_t len)
{
	struct px_client *c = ctx;

	c->cl_loop->lp_stats.s_bytes_in += len + 4;
	if (c->cl_state == CL_PROBE && !client_probe(c, mem, len))
		return false;
	if (!px_pipe_call(c, mem, len))
		return false;
	return !c->cl_closed && client_may_read(c);
}

static void client_read(struct px_client *c)
{
	int rc = px_reader_run(&c->cl_rd, c->cl_ev.ev_fd, c->cl_tls,
			       READ_BUDGET, client_on_msg, c);

	if (c->cl_closed)
		return;
	if (c->cl_state == CL_HANDSHAKE) {
		client_handshake(c);
		return;
	}
	if (rc == 0 || rc == -ECONNRESET) {
		px_client_close(c, NULL); /* an ordinary goodbye */
	} else if (rc < 0 && c->cl_rd.rd_why[0]) {
		px_client_close(c, c->cl_rd.rd_why);
	} else if (rc == -ECONNABORTED) {
		px_client_close(c, "the peer closed without a TLS close_notify "
				   "(it died, or was killed)");
	} else if (rc == -EMSGSIZE && c->cl_state == CL_PROBE &&
		   c->cl_rd.rd_rec.r_max == PREAUTH_MAX_RECORD) {
		px_client_close(c, "record above 4 KiB before the TLS "
				   "handshake (pre-authentication limit)");
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
	if (px_reader_has_staged(&c->cl_rd, c->cl_tls))
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
	int rc = px_outq_flush(&c->cl_out, c->cl_ev.ev_fd, c->cl_tls,
			       WRITE_BUDGET);

	if (rc < 0) {
		char why[96];

		snprintf(why, sizeof(why), "write: %s", strerror(-rc));
		px_client_close(c, why);
		return;
	}
	if (rc == 0 && c->cl_close_after_flush) {
		px_client_close(c, "plaintext call while TLS is required");
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
	if (!c->cl_corked)
		client_flush(c);
}

void px_client_cork(struct px_client *c)
{
	c->cl_refs++;
	c->cl_corked++;
}

void px_client_uncork(struct px_client *c)
{
	if (--c->cl_corked == 0 && !c->cl_closed)
		client_flush(c);
	px_client_unref(c);
}

static void client_event(struct px_ev *ev, uint32_t events)
{
	struct px_client *c = (struct px_client *)ev;

	/* Closed and unreferenced earlier in this batch of events (a reply
	 * to it met EPIPE and its last call finished): it is on the
	 * graveyard already, and taking and dropping a reference here would
	 * put it there twice -- freed twice after the batch.  Its event was
	 * collected before the close. */
	if (c->cl_closed && !c->cl_refs)
		return;
	c->cl_refs++; /* keep c alive through the callbacks below */
	if (c->cl_state == CL_HANDSHAKE) {
		client_handshake(c);
		px_client_unref(c);
		return;
	}
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

/* Not (yet) vouched for: before the TLS handshake, plaintext under --tls
 * optional, or a client-role peer whose claims are restricted. */
static bool client_unauth(const struct px_client *c)
{
	return c->cl_state != CL_READY ||
	       (c->cl_loop->lp_tls_srv && !c->cl_tls) ||
	       c->cl_trust != CL_TRUST_ANY;
}

/* Do a and b count against the same --max-unauth-per-addr?  A non-root
 * local user by its uid (it has every loopback address), others by
 * address. */
static bool client_same_source(const struct px_client *a,
			       const struct px_client *b)
{
	if ((a->cl_trust == CL_TRUST_OWN) != (b->cl_trust == CL_TRUST_OWN))
		return false;
	if (a->cl_trust == CL_TRUST_OWN)
		return a->cl_uid == b->cl_uid;
	if (a->cl_addr.ss_family != b->cl_addr.ss_family)
		return false;
	if (a->cl_addr.ss_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)&a->cl_addr)->sin6_addr,
			       &((const struct sockaddr_in6 *)&b->cl_addr)->sin6_addr,
			       16);
	return ((const struct sockaddr_in *)&a->cl_addr)->sin_addr.s_addr ==
	       ((const struct sockaddr_in *)&b->cl_addr)->sin_addr.s_addr;
}

/* May c be closed to make room?  Before TLS is up always (nothing of it
 * is in flight, and a half-sent record must not make a socket keep its
 * slot); after, only when idle: nothing in flight either way, so closing
 * it loses no call. */
static bool client_sheddable(const struct px_client *c)
{
	if (!client_unauth(c))
		return false;
	return c->cl_state != CL_READY ||
	       (!c->cl_pending && !c->cl_out.q_head &&
		!rpc_rec_partial(&c->cl_rd.rd_rec));
}

/*
 * Room for newcomer c (not yet on the list): within --max-unauth-per-addr
 * for its source and --max-conns overall, by closing the oldest
 * sheddable connection (of the same source for the first limit) when
 * need be.  Authenticated connections are never shed: with none
 * to shed, the newcomer is refused.  Without this, a thousand idle
 * sockets locked every authenticated client out.
 */
static bool client_make_room(struct px_loop *l, struct px_client *nc)
{
	const struct px_opts *o = l->lp_opts;
	struct px_client *c, *oldest = NULL;
	unsigned same = 0;

	if (client_unauth(nc)) {
		for (c = l->lp_clients; c; c = c->cl_next)
			if (!c->cl_closed && client_unauth(c) &&
			    client_same_source(c, nc)) {
				same++;
				if (client_sheddable(c))
					oldest = c; /* the list is newest first */
			}
		if (same >= o->o_max_unauth_per_addr) {
			if (!oldest) {
				px_warn_rl("client %s refused: "
					   "--max-unauth-per-addr reached",
					   nc->cl_name);
				return false;
			}
			px_client_close(oldest, "shed: --max-unauth-per-addr "
						"reached for its source");
		}
	}
	if (l->lp_nclients < o->o_max_conns)
		return true;
	oldest = NULL;
	for (c = l->lp_clients; c; c = c->cl_next)
		if (!c->cl_closed && client_sheddable(c))
			oldest = c;
	if (!oldest) {
		px_warn_rl("client %s refused: --max-conns reached",
			   nc->cl_name);
		return false;
	}
	px_client_close(oldest, "shed: --max-conns reached, unauthenticated");
	return true;
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
		if (l->lp_draining) {
			l->lp_stats.s_conns_refused++;
			px_warn_rl("client %s refused: shutting down", name);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		/* Under --tls optional a plaintext client's first record is
		 * an ordinary call (a reconnecting client may well start with
		 * a 1 MiB WRITE): only 'require' can bound it before TLS. */
		if (!c || px_reader_init(&c->cl_rd,
					 l->lp_tls_srv && l->lp_opts->o_tls ==
								  PX_TLS_REQUIRE
						 ? PREAUTH_MAX_RECORD
						 : l->lp_opts->o_max_record)) {
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
		px_peer_classify(c);
		if (l->lp_tls_srv) {
			c->cl_state = CL_PROBE;
			c->cl_hs_since = px_now_ms();
		} else {
			c->cl_state = CL_READY;
		}
		if (!client_make_room(l, c)) {
			l->lp_stats.s_conns_refused++;
			client_free(c);
			close(fd);
			continue;
		}
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
	uint64_t hs_limit = (uint64_t)l->lp_opts->o_handshake_timeout * 1000u;

	for (c = l->lp_clients; c; c = next) {
		next = c->cl_next;
		/* A probe never sent holds a slot as surely as a stalled
		 * handshake: both end at --handshake-timeout. */
		if ((c->cl_state == CL_PROBE || c->cl_state == CL_HANDSHAKE) &&
		    now_ms - c->cl_hs_since >= hs_limit) {
			px_client_close(c, c->cl_state == CL_PROBE
						   ? "no TLS probe within "
						     "--handshake-timeout"
						   : "TLS handshake not done "
						     "within --handshake-timeout");
			continue;
		}
		if (c->cl_rd.rd_partial_since &&
		    rpc_rec_partial(&c->cl_rd.rd_rec) &&
		    now_ms - c->cl_rd.rd_partial_since >= limit)
			px_client_close(c, "half-sent record timed out "
					   "(--record-timeout)");
	}
}

/* The handshake is done: who is the peer, and may it in at all? */
static bool client_peer_admit(struct px_client *c)
{
	struct px_loop *l = c->cl_loop;
	struct tls_conn_info ti;
	struct idmap_peer_ids *ids;
	char why[400];
	int rc;

	if (tls_conn_peer_dn(c->cl_tls, c->cl_dn, sizeof(c->cl_dn)) < 0) {
		px_client_close(c, "TLS peer has no subject DN");
		return false;
	}
	if (!(ids = calloc(1, sizeof(*ids)))) {
		px_client_close(c, "out of memory");
		return false;
	}
	rc = idmap_gridmap_ids(l->lp_gridmap, c->cl_dn, ids);
	if (rc < 0) {
		free(ids);
		snprintf(why, sizeof(why), "TLS peer '%s' refused: %s", c->cl_dn,
			 rc == -ENOENT ? "not in the grid-mapfile"
				       : rc == -ESRCH ? "its default account does "
							"not exist here"
						      : strerror(-rc));
		px_client_close(c, why);
		return false;
	}
	c->cl_peer = ids;
	tls_conn_info(c->cl_tls, &ti);
	px_info("client %s: TLS peer '%s' (%s%s%s), uid %u", c->cl_name,
		c->cl_dn, ti.ti_cipher ? ti.ti_cipher : "?",
		ti.ti_resumed ? ", resumed" : "",
		tls_conn_zstd(c->cl_tls) ? ", zstd" : "", ids->pi_uid);
	return true;
}

void px_client_recheck_certs(struct px_loop *l)
{
	struct px_client *c, *next;
	char why[400], r[200];

	for (c = l->lp_clients; c; c = next) {
		next = c->cl_next;
		if (c->cl_closed || !c->cl_tls || c->cl_state != CL_READY)
			continue;
		r[0] = '\0';
		if (tls_conn_recheck(c->cl_tls, l->lp_tls_srv, r, sizeof(r)) !=
		    -EACCES)
			continue;
		/* A revoked certificate must not keep the door it opened
		 * before the new CRL came. */
		snprintf(why, sizeof(why), "TLS peer '%s' refused after the "
			 "reload: %s", c->cl_dn, r);
		px_client_close(c, why);
	}
}

void px_client_recheck_peers(struct px_loop *l)
{
	struct px_client *c, *next;
	char why[400];

	for (c = l->lp_clients; c; c = next) {
		struct idmap_peer_ids *ids;
		int rc;

		next = c->cl_next;
		/* Plaintext clients (--tls optional) have no DN to look up. */
		if (c->cl_closed || !c->cl_peer || !c->cl_tls)
			continue;
		if (!(ids = calloc(1, sizeof(*ids))))
			continue; /* keep the old accounts */
		rc = idmap_gridmap_ids(l->lp_gridmap, c->cl_dn, ids);
		if (rc < 0) {
			free(ids);
			snprintf(why, sizeof(why), "TLS peer '%s' refused after "
				 "the grid-mapfile reload: %s", c->cl_dn,
				 rc == -ENOENT ? "no longer in it"
					       : strerror(-rc));
			px_client_close(c, why);
			continue;
		}
		idmap_peer_ids_clear(c->cl_peer);
		free(c->cl_peer);
		c->cl_peer = ids;
	}
}

static void client_handshake(struct px_client *c)
{
	int rc = tls_conn_handshake(c->cl_tls);
	char why[320];

	if (tls_want(rc)) {
		c->cl_tls_want = rc;
		client_arm(c);
		return;
	}
	if (rc < 0) {
		snprintf(why, sizeof(why), "TLS handshake failed: %s",
			 tls_conn_error(c->cl_tls));
		px_client_close(c, why);
		return;
	}
	if (!client_peer_admit(c))
		return;
	if (px_reader_set_max(&c->cl_rd, c->cl_loop->lp_opts->o_max_record)) {
		px_client_close(c, "out of memory");
		return;
	}
	if (tls_conn_zstd(c->cl_tls))
		px_zlink_start(c->cl_loop->lp_opts, &c->cl_out, &c->cl_z,
			       &c->cl_rd);
	c->cl_state = CL_READY;
	c->cl_read_paused = false;
	client_arm(c);
	/* The first calls may already sit inside TLS. */
	if (px_reader_has_staged(&c->cl_rd, c->cl_tls)) {
		client_read(c);
		px_client_update_read(c->cl_loop, c);
	}
}

void px_client_rpc_error(struct px_client *c, uint32_t xid, uint32_t stat)
{
	struct px_msg *m;
	struct rpc_xdr x;

	if (c->cl_closed || !(m = px_msg_new(64)))
		return;
	rpc_xdr_init(&x, px_msg_data(m), 64);
	rpc_reply_accepted(&x, xid, stat, 0, 0);
	m->m_len = x.x_pos;
	px_client_send(c, m);
	px_msg_unref(m);
}

void px_client_status_reply(struct px_client *c, const struct rpc_call *h,
			    uint32_t status)
{
	struct px_msg *m;
	struct rpc_xdr x;

	if (c->cl_closed || !(m = px_msg_new(256)))
		return;
	rpc_xdr_init(&x, px_msg_data(m), 256);
	px_nfs3_error_reply(&x, h->c_xid, h->c_prog, h->c_proc, status);
	if (!x.x_err) {
		m->m_len = x.x_pos;
		c->cl_loop->lp_stats.s_errors_local++;
		px_client_send(c, m);
	}
	px_msg_unref(m);
}
