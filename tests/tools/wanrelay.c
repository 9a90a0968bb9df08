/*
 * tests/tools/wanrelay.c — a user-space WAN emulator for machines without
 * tc netem: a TCP relay adding one-way delay and a bandwidth cap per
 * direction, counting ONC RPC calls, and pausable from a control socket.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>		/* isfinite(): a macro, no -lm */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WR_READ_MAX	65536		/* bytes read per readiness event */
#define WR_IOV_MAX	64
#define WR_WRITE_ROUNDS	4		/* writev calls per direction per pass */
#define WR_HDR_MAX	24		/* xid msg_type rpcvers prog vers proc */
#define WR_XID_RING	256		/* outstanding NFS READ xids per conn */
#define WR_CALLKEYS	512		/* distinct (prog, proc) counters */
#define WR_CTL_LINE	512
#define WR_NS		1000000000ull
#define WR_NEVER	UINT64_MAX

#define NFS_PROGRAM	100003u
#define NFS_V3		3u
#define NFSPROC3_READ	6u

enum wr_tag {
	WR_T_LISTEN, WR_T_TIMER, WR_T_SIGNAL, WR_T_CTL_LISTEN, WR_T_CTL, WR_T_END
};

enum wr_reason {
	WR_R_EOF, WR_R_RESET, WR_R_CONNECT, WR_R_DROP, WR_R_NOMEM, WR_R_EXIT,
	WR_R_MAX
};

static const char *const wr_reason_names[WR_R_MAX] = {
	"eof", "reset", "connect_failed", "drop", "nomem", "exit"
};

/* Every epoll registration points at a struct starting with this tag. */
struct wr_tagged {
	enum wr_tag t_tag;
};

/*
 * A run of bytes read from one side at one instant.  Byte k of the chunk is
 * released at t0 + k * (t1 - t0) / len: the chunk drains onto the emulated
 * wire at the link rate and arrives one delay later (a fluid token bucket).
 * A zero-length chunk with ch_eof carries the FIN, delayed like data.
 */
struct wr_chunk {
	struct wr_chunk *ch_next;
	uint64_t ch_t0, ch_t1;
	uint32_t ch_len, ch_off;	/* ch_off: bytes already written */
	bool ch_eof;
	uint8_t ch_data[];
};

/* Incremental ONC RPC record-marking scanner (RFC 5531 §11). */
struct wr_scan {
	uint8_t sc_mark[4];
	uint8_t sc_markhave;
	bool sc_infrag, sc_last;
	uint32_t sc_fragleft;
	uint64_t sc_reclen;		/* payload bytes of the record so far */
	uint8_t sc_hdr[WR_HDR_MAX];
	uint8_t sc_hdrhave;
};

/* One direction of a relayed connection; index = source side. */
struct wr_dir {
	struct wr_chunk *d_head, *d_tail;
	size_t d_queued;
	bool d_eof_read;	/* source said FIN; marker queued */
	bool d_eof_sent;	/* FIN delivered to destination */
	bool d_blocked;		/* destination returned EAGAIN */
	struct wr_scan d_scan;
};

struct wr_conn;

struct wr_end {
	struct wr_tagged e_tag;
	struct wr_conn *e_conn;
	int e_side;		/* 0 client, 1 target */
	int e_fd;
	uint32_t e_events;	/* events currently registered */
};

struct wr_conn {
	struct wr_end c_end[2];
	struct wr_dir c_dir[2];	/* [0] up: client→target, [1] down */
	bool c_connecting, c_dead;
	uint64_t c_id;
	struct wr_conn *c_next;
	uint32_t c_xid[WR_XID_RING];
	bool c_xid_used[WR_XID_RING];
	unsigned c_xid_pos;
};

struct wr_ctl {
	struct wr_tagged cl_tag;
	int cl_fd;
	char cl_buf[WR_CTL_LINE];
	size_t cl_len;
	struct wr_ctl *cl_next;
};

struct wr_callkey {
	uint32_t ck_prog, ck_proc;
	uint64_t ck_n;
};

struct wr_stats {
	uint64_t st_bytes[2];		/* delivered: [0] up, [1] down */
	uint64_t st_conns, st_active;
	uint64_t st_close[WR_R_MAX];
	uint64_t st_calls, st_rpc_bad, st_replies;
	uint64_t st_read_replies, st_read_bytes;
	struct wr_callkey st_key[WR_CALLKEYS];
	unsigned st_nkeys;
	uint64_t st_calls_other;
	uint64_t st_gen;	/* bumped on change: idle seconds skip dumps */
};

struct wr_relay {
	/* configuration */
	struct sockaddr_storage r_target;
	socklen_t r_target_len;
	double r_delay_ms, r_rate_mbit, r_backlog_ms;
	size_t r_qmax;
	const char *r_stats_path, *r_ctl_path;
	bool r_rpc, r_verbose;
	/* runtime */
	int r_ep;
	struct wr_tagged r_listen_tag, r_timer_tag, r_signal_tag, r_ctl_tag;
	int r_listen_fd, r_timer_fd, r_signal_fd, r_ctl_fd;
	uint64_t r_timer_armed;
	uint64_t r_link_free[2];	/* when each direction's wire frees up */
	bool r_paused, r_quit;
	struct wr_conn *r_conns, *r_dead;
	struct wr_ctl *r_ctls;
	uint64_t r_next_id;
	uint64_t r_next_dump, r_dumped_gen;
	struct wr_stats r_st;
};

static uint8_t wr_readbuf[WR_READ_MAX];

static void wr_log(const struct wr_relay *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void wr_log(const struct wr_relay *r, const char *fmt, ...)
{
	va_list ap;

	if (!r->r_verbose)
		return;
	va_start(ap, fmt);
	fputs("wanrelay: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static uint64_t wr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * WR_NS + (uint64_t)ts.tv_nsec;
}

static uint32_t wr_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* ---- RPC accounting ------------------------------------------------- */

static void wr_stats_call(struct wr_stats *st, uint32_t prog, uint32_t proc)
{
	unsigned i;

	st->st_calls++;
	for (i = 0; i < st->st_nkeys; i++) {
		if (st->st_key[i].ck_prog == prog &&
		    st->st_key[i].ck_proc == proc) {
			st->st_key[i].ck_n++;
			return;
		}
	}
	if (st->st_nkeys == WR_CALLKEYS) {
		st->st_calls_other++;
		return;
	}
	st->st_key[i] = (struct wr_callkey){ prog, proc, 1 };
	st->st_nkeys++;
}

static void wr_xid_remember(struct wr_conn *c, uint32_t xid)
{
	/* A ring: when a client forgets more than 256 READs, oldest go. */
	c->c_xid[c->c_xid_pos] = xid;
	c->c_xid_used[c->c_xid_pos] = true;
	c->c_xid_pos = (c->c_xid_pos + 1) % WR_XID_RING;
}

static bool wr_xid_take(struct wr_conn *c, uint32_t xid)
{
	unsigned i;

	for (i = 0; i < WR_XID_RING; i++) {
		if (c->c_xid_used[i] && c->c_xid[i] == xid) {
			c->c_xid_used[i] = false;
			return true;
		}
	}
	return false;
}

/* A whole record crossed the relay in direction dir. */
static void wr_record_done(struct wr_relay *r, struct wr_conn *c, int dir,
			   const struct wr_scan *sc)
{
	const uint8_t *h = sc->sc_hdr;
	uint32_t xid;

	if (sc->sc_hdrhave < 8) {
		r->r_st.st_rpc_bad++;
		return;
	}
	xid = wr_get32(h);
	if (dir == 0) {
		if (sc->sc_hdrhave < WR_HDR_MAX || wr_get32(h + 4) != 0 ||
		    wr_get32(h + 8) != 2) {
			r->r_st.st_rpc_bad++;
			return;
		}
		wr_stats_call(&r->r_st, wr_get32(h + 12), wr_get32(h + 20));
		if (wr_get32(h + 12) == NFS_PROGRAM &&
		    wr_get32(h + 16) == NFS_V3 &&
		    wr_get32(h + 20) == NFSPROC3_READ)
			wr_xid_remember(c, xid);
		return;
	}
	if (wr_get32(h + 4) != 1) {
		r->r_st.st_rpc_bad++;
		return;
	}
	r->r_st.st_replies++;
	if (wr_xid_take(c, xid)) {
		r->r_st.st_read_replies++;
		r->r_st.st_read_bytes += sc->sc_reclen;
	}
}

/* Consume the fragment body bytes at p; returns how many were used. */
static size_t wr_scan_body(struct wr_scan *sc, const uint8_t *p, size_t n)
{
	size_t take = n < sc->sc_fragleft ? n : sc->sc_fragleft;
	size_t h = WR_HDR_MAX - sc->sc_hdrhave;

	if (h > take)
		h = take;
	memcpy(sc->sc_hdr + sc->sc_hdrhave, p, h);
	sc->sc_hdrhave += h;
	sc->sc_fragleft -= take;
	sc->sc_reclen += take;
	return take;
}

/*
 * Feed delivered bytes to the direction's scanner.  The header may straddle
 * reads and fragments, so the first WR_HDR_MAX payload bytes are collected
 * wherever they come from and judged when the record ends.
 */
static void wr_scan_feed(struct wr_relay *r, struct wr_conn *c, int dir,
			 const uint8_t *p, size_t n)
{
	struct wr_scan *sc = &c->c_dir[dir].d_scan;
	uint32_t mark;
	size_t used;

	while (n > 0 || (sc->sc_infrag && sc->sc_fragleft == 0)) {
		if (!sc->sc_infrag) {
			sc->sc_mark[sc->sc_markhave++] = *p++;
			n--;
			if (sc->sc_markhave < 4)
				continue;
			mark = wr_get32(sc->sc_mark);
			sc->sc_markhave = 0;
			sc->sc_infrag = true;
			sc->sc_last = mark >> 31;
			sc->sc_fragleft = mark & 0x7fffffffu;
			continue;
		}
		used = wr_scan_body(sc, p, n);
		p += used;
		n -= used;
		if (sc->sc_fragleft > 0)
			continue;
		sc->sc_infrag = false;
		if (!sc->sc_last)
			continue;
		wr_record_done(r, c, dir, sc);
		sc->sc_reclen = 0;
		sc->sc_hdrhave = 0;
	}
}

/* ---- connection lifetime -------------------------------------------- */

static void wr_dir_free(struct wr_dir *d)
{
	struct wr_chunk *ch, *next;

	for (ch = d->d_head; ch; ch = next) {
		next = ch->ch_next;
		free(ch);
	}
	d->d_head = d->d_tail = NULL;
	d->d_queued = 0;
}

static void wr_end_close(struct wr_end *e, bool reset)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (e->e_fd < 0)
		return;
	/* SO_LINGER 0 turns close() into an RST: a reset stays a reset. */
	if (reset)
		setsockopt(e->e_fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(e->e_fd);
	e->e_fd = -1;
}

/*
 * Every connection ends here.  The struct is only marked and moved to the
 * dead list: events later in the same epoll batch may still point at it.
 */
static void wr_conn_close(struct wr_relay *r, struct wr_conn *c,
			  enum wr_reason why)
{
	struct wr_conn **pp;

	if (c->c_dead)
		return;
	c->c_dead = true;
	wr_end_close(&c->c_end[0], why != WR_R_EOF && why != WR_R_EXIT);
	wr_end_close(&c->c_end[1], why != WR_R_EOF && why != WR_R_EXIT);
	wr_dir_free(&c->c_dir[0]);
	wr_dir_free(&c->c_dir[1]);
	for (pp = &r->r_conns; *pp; pp = &(*pp)->c_next) {
		if (*pp == c) {
			*pp = c->c_next;
			break;
		}
	}
	c->c_next = r->r_dead;
	r->r_dead = c;
	r->r_st.st_active--;
	r->r_st.st_close[why]++;
	r->r_st.st_gen++;
	wr_log(r, "conn %llu closed: %s", (unsigned long long)c->c_id,
	       wr_reason_names[why]);
}

static void wr_reap(struct wr_relay *r)
{
	struct wr_conn *c;

	while ((c = r->r_dead)) {
		r->r_dead = c->c_next;
		free(c);
	}
}

/* A side is finished once it said FIN and was sent one: close it early. */
static void wr_end_maybe_done(struct wr_conn *c, int side)
{
	if (c->c_dir[side].d_eof_read && c->c_dir[1 - side].d_eof_sent)
		wr_end_close(&c->c_end[side], false);
}

static void wr_sock_tune(int fd)
{
	int one = 1;

	/* RPC is request/response: Nagle would add its own latency. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int wr_conn_register(struct wr_relay *r, struct wr_conn *c)
{
	struct epoll_event ev;
	int s;

	for (s = 0; s < 2; s++) {
		ev.events = c->c_end[s].e_events;
		ev.data.ptr = &c->c_end[s];
		if (epoll_ctl(r->r_ep, EPOLL_CTL_ADD, c->c_end[s].e_fd, &ev))
			return -errno;
	}
	return 0;
}

static struct wr_conn *wr_conn_new(struct wr_relay *r, int cfd)
{
	struct wr_conn *c = calloc(1, sizeof(*c));
	int s, tfd;

	if (!c)
		return NULL;
	tfd = socket(r->r_target.ss_family,
		     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (tfd < 0) {
		free(c);
		return NULL;
	}
	for (s = 0; s < 2; s++) {
		c->c_end[s].e_tag.t_tag = WR_T_END;
		c->c_end[s].e_conn = c;
		c->c_end[s].e_side = s;
	}
	c->c_end[0].e_fd = cfd;
	c->c_end[1].e_fd = tfd;
	c->c_end[0].e_events = EPOLLIN;
	c->c_end[1].e_events = EPOLLOUT;
	c->c_id = ++r->r_next_id;
	wr_sock_tune(cfd);
	wr_sock_tune(tfd);
	c->c_connecting = true;
	if (connect(tfd, (struct sockaddr *)&r->r_target, r->r_target_len) == 0)
		c->c_connecting = false;
	else if (errno != EINPROGRESS)
		c->c_end[1].e_events = EPOLLOUT;	/* error shows as EPOLLERR */
	return c;
}

static void wr_accept(struct wr_relay *r)
{
	struct wr_conn *c;
	int i, cfd;

	for (i = 0; i < 64; i++) {
		cfd = accept4(r->r_listen_fd, NULL, NULL,
			      SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		c = wr_conn_new(r, cfd);
		if (!c) {
			close(cfd);
			r->r_st.st_close[WR_R_NOMEM]++;
			continue;
		}
		c->c_next = r->r_conns;
		r->r_conns = c;
		r->r_st.st_conns++;
		r->r_st.st_active++;
		r->r_st.st_gen++;
		wr_log(r, "conn %llu accepted", (unsigned long long)c->c_id);
		if (wr_conn_register(r, c))
			wr_conn_close(r, c, WR_R_NOMEM);
	}
}

/* ---- data path ------------------------------------------------------ */

static uint64_t wr_ser_ns(const struct wr_relay *r, size_t n)
{
	if (r->r_rate_mbit <= 0)
		return 0;
	/* n bytes at R Mbit/s take n * 8 / (R * 1e6) s = n * 8000 / R ns. */
	return (uint64_t)((double)n * 8000.0 / r->r_rate_mbit);
}

static uint64_t wr_delay_ns(const struct wr_relay *r)
{
	return (uint64_t)(r->r_delay_ms * 1e6);
}

static void wr_dir_append(struct wr_dir *d, struct wr_chunk *ch)
{
	if (d->d_tail)
		d->d_tail->ch_next = ch;
	else
		d->d_head = ch;
	d->d_tail = ch;
	d->d_queued += ch->ch_len;
}

/* Queue n bytes read from side s now; they share side s's wire. */
static int wr_dir_push(struct wr_relay *r, struct wr_conn *c, int s,
		       const uint8_t *p, size_t n, uint64_t now)
{
	struct wr_chunk *ch = malloc(sizeof(*ch) + n);
	uint64_t start = r->r_link_free[s] > now ? r->r_link_free[s] : now;
	uint64_t end = start + wr_ser_ns(r, n);

	if (!ch)
		return -ENOMEM;
	ch->ch_next = NULL;
	ch->ch_len = (uint32_t)n;
	ch->ch_off = 0;
	ch->ch_eof = (n == 0);
	memcpy(ch->ch_data, p, n);
	ch->ch_t0 = start + wr_delay_ns(r);
	ch->ch_t1 = end + wr_delay_ns(r);
	if (n > 0)
		r->r_link_free[s] = end;
	wr_dir_append(&c->c_dir[s], ch);
	return 0;
}

static void wr_end_read(struct wr_relay *r, struct wr_conn *c, int s,
			uint64_t now)
{
	struct wr_dir *d = &c->c_dir[s];
	ssize_t n;

	if (d->d_eof_read) {
		/* HUP after our FIN was read yet the peer did not finish. */
		wr_conn_close(r, c, WR_R_RESET);
		return;
	}
	n = read(c->c_end[s].e_fd, wr_readbuf, sizeof(wr_readbuf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		wr_conn_close(r, c, WR_R_RESET);
		return;
	}
	if (wr_dir_push(r, c, s, wr_readbuf, (size_t)n, now)) {
		wr_conn_close(r, c, WR_R_NOMEM);
		return;
	}
	if (n == 0) {
		d->d_eof_read = true;
		wr_end_maybe_done(c, s);
	}
}

static size_t wr_chunk_released(const struct wr_chunk *ch, uint64_t now)
{
	if (now >= ch->ch_t1)
		return ch->ch_len;
	if (now < ch->ch_t0)
		return 0;
	return (size_t)((double)ch->ch_len * (double)(now - ch->ch_t0) /
			(double)(ch->ch_t1 - ch->ch_t0));
}

/* Gather the released, unwritten bytes of direction d into iov. */
static int wr_dir_gather(struct wr_dir *d, uint64_t now, struct iovec *iov)
{
	struct wr_chunk *ch;
	size_t rel;
	int n = 0;

	for (ch = d->d_head; ch && n < WR_IOV_MAX && !ch->ch_eof;
	     ch = ch->ch_next) {
		rel = wr_chunk_released(ch, now);
		if (rel > ch->ch_off) {
			iov[n].iov_base = ch->ch_data + ch->ch_off;
			iov[n].iov_len = rel - ch->ch_off;
			n++;
		}
		if (rel < ch->ch_len)
			break;
	}
	return n;
}

/* Drop n written bytes from the head of direction s, scanning them. */
static void wr_dir_consume(struct wr_relay *r, struct wr_conn *c, int s,
			   size_t n)
{
	struct wr_dir *d = &c->c_dir[s];
	struct wr_chunk *ch;
	size_t take;

	r->r_st.st_bytes[s] += n;
	r->r_st.st_gen++;
	while (n > 0 && (ch = d->d_head)) {
		take = ch->ch_len - ch->ch_off;
		if (take > n)
			take = n;
		if (r->r_rpc)
			wr_scan_feed(r, c, s, ch->ch_data + ch->ch_off, take);
		ch->ch_off += take;
		d->d_queued -= take;
		n -= take;
		if (ch->ch_off < ch->ch_len)
			break;
		d->d_head = ch->ch_next;
		if (!d->d_head)
			d->d_tail = NULL;
		free(ch);
	}
}

/* Deliver the delayed FIN once everything before it was written. */
static void wr_dir_fin(struct wr_conn *c, int s, uint64_t now)
{
	struct wr_dir *d = &c->c_dir[s];
	struct wr_chunk *ch = d->d_head;

	if (!ch || !ch->ch_eof || now < ch->ch_t0)
		return;
	shutdown(c->c_end[1 - s].e_fd, SHUT_WR);
	d->d_head = d->d_tail = NULL;
	free(ch);
	d->d_eof_sent = true;
	wr_end_maybe_done(c, 1 - s);
	wr_end_maybe_done(c, s);
}

/* Write what direction s may release by now.  Returns -1 if c closed. */
static int wr_dir_flush(struct wr_relay *r, struct wr_conn *c, int s,
			uint64_t now)
{
	struct wr_dir *d = &c->c_dir[s];
	struct iovec iov[WR_IOV_MAX];
	int round, n;
	ssize_t w;

	if (r->r_paused || d->d_blocked || d->d_eof_sent ||
	    (s == 0 && c->c_connecting))
		return 0;
	for (round = 0; round < WR_WRITE_ROUNDS; round++) {
		n = wr_dir_gather(d, now, iov);
		if (n == 0)
			break;
		w = writev(c->c_end[1 - s].e_fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			d->d_blocked = true;
			return 0;
		}
		if (w < 0) {
			wr_conn_close(r, c, WR_R_RESET);
			return -1;
		}
		wr_dir_consume(r, c, s, (size_t)w);
	}
	wr_dir_fin(c, s, now);
	return 0;
}

/* ---- scheduling ----------------------------------------------------- */

static void wr_deadline_min(uint64_t *dl, uint64_t t)
{
	if (t < *dl)
		*dl = t;
}

/* May side s read now?  Else note when its wire's backlog shrinks. */
static bool wr_link_open(const struct wr_relay *r, int s, uint64_t now,
			 uint64_t *dl)
{
	uint64_t limit = (uint64_t)(r->r_backlog_ms * 1e6);

	if (r->r_rate_mbit <= 0 || r->r_backlog_ms <= 0 ||
	    r->r_link_free[s] <= now + limit)
		return true;
	wr_deadline_min(dl, r->r_link_free[s] - limit);
	return false;
}

static void wr_end_update(struct wr_relay *r, struct wr_conn *c, int s,
			  uint64_t now, uint64_t *dl)
{
	struct wr_end *e = &c->c_end[s];
	struct epoll_event ev;
	uint32_t want = 0;

	if (e->e_fd < 0)
		return;
	if (!c->c_dir[s].d_eof_read && !(s == 1 && c->c_connecting) &&
	    c->c_dir[s].d_queued < r->r_qmax && wr_link_open(r, s, now, dl))
		want |= EPOLLIN;
	if ((s == 1 && c->c_connecting) || c->c_dir[1 - s].d_blocked)
		want |= EPOLLOUT;
	if (want == e->e_events)
		return;
	ev.events = want;
	ev.data.ptr = e;
	if (epoll_ctl(r->r_ep, EPOLL_CTL_MOD, e->e_fd, &ev) == 0)
		e->e_events = want;
}

/* When does direction s next have something to write? */
static void wr_dir_deadline(const struct wr_relay *r, const struct wr_conn *c,
			    int s, uint64_t now, uint64_t *dl)
{
	const struct wr_dir *d = &c->c_dir[s];
	const struct wr_chunk *ch = d->d_head;
	double quantum, target;

	if (!ch || r->r_paused || d->d_blocked || (s == 0 && c->c_connecting))
		return;
	if (ch->ch_eof || ch->ch_t1 == ch->ch_t0) {
		wr_deadline_min(dl, ch->ch_t0 > now ? ch->ch_t0 : now);
		return;
	}
	if (wr_chunk_released(ch, now) > ch->ch_off) {
		wr_deadline_min(dl, now);	/* write cap hit: continue */
		return;
	}
	/* Wake for about 1 ms of wire time (at least one MSS): not per byte. */
	quantum = r->r_rate_mbit * 1e6 / 8 / 1000;
	if (quantum < 1448)
		quantum = 1448;
	target = ch->ch_off + quantum;
	if (target > ch->ch_len)
		target = ch->ch_len;
	/* +1 ns: round up so the wake-up never lands just short. */
	wr_deadline_min(dl, ch->ch_t0 + 1 + (uint64_t)(
		(double)(ch->ch_t1 - ch->ch_t0) * target / ch->ch_len));
}

static void wr_conn_service(struct wr_relay *r, struct wr_conn *c,
			    uint64_t now, uint64_t *dl)
{
	int s;

	for (s = 0; s < 2; s++)
		if (wr_dir_flush(r, c, s, now))
			return;
	if (c->c_end[0].e_fd < 0 && c->c_end[1].e_fd < 0) {
		wr_conn_close(r, c, WR_R_EOF);
		return;
	}
	for (s = 0; s < 2; s++) {
		wr_end_update(r, c, s, now, dl);
		wr_dir_deadline(r, c, s, now, dl);
	}
}

/* ---- stats ---------------------------------------------------------- */

static void wr_stats_print(const struct wr_relay *r, FILE *f)
{
	const struct wr_stats *st = &r->r_st;
	unsigned i;

	fprintf(f, "bytes_up %llu\nbytes_down %llu\nconns %llu\n"
		"conns_active %llu\n", (unsigned long long)st->st_bytes[0],
		(unsigned long long)st->st_bytes[1],
		(unsigned long long)st->st_conns,
		(unsigned long long)st->st_active);
	for (i = 0; i < WR_R_MAX; i++)
		fprintf(f, "close.%s %llu\n", wr_reason_names[i],
			(unsigned long long)st->st_close[i]);
	fprintf(f, "paused %d\ndelay_ms %g\nrate_mbit %g\n", r->r_paused,
		r->r_delay_ms, r->r_rate_mbit);
	if (!r->r_rpc)
		return;
	fprintf(f, "rpc_calls %llu\nrpc_replies %llu\nrpc_bad %llu\n"
		"read_replies %llu\nread_reply_bytes %llu\ncalls.other %llu\n",
		(unsigned long long)st->st_calls,
		(unsigned long long)st->st_replies,
		(unsigned long long)st->st_rpc_bad,
		(unsigned long long)st->st_read_replies,
		(unsigned long long)st->st_read_bytes,
		(unsigned long long)st->st_calls_other);
	for (i = 0; i < st->st_nkeys; i++)
		fprintf(f, "calls.%u.%u %llu\n", st->st_key[i].ck_prog,
			st->st_key[i].ck_proc,
			(unsigned long long)st->st_key[i].ck_n);
}

/* Write temp then rename, so readers never see a half-written file. */
static int wr_stats_dump(struct wr_relay *r)
{
	char tmp[PATH_MAX];
	FILE *f;
	int err = 0;

	if (!r->r_stats_path)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", r->r_stats_path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	wr_stats_print(r, f);
	if (ferror(f))
		err = -EIO;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, r->r_stats_path))
		err = -errno;
	if (err) {
		unlink(tmp);
		fprintf(stderr, "wanrelay: writing %s: %s\n", r->r_stats_path,
			strerror(-err));
	}
	r->r_dumped_gen = r->r_st.st_gen;
	return err;
}

static void wr_stats_tick(struct wr_relay *r, uint64_t now, uint64_t *dl)
{
	if (!r->r_stats_path)
		return;
	if (now >= r->r_next_dump) {
		if (r->r_st.st_gen != r->r_dumped_gen)
			wr_stats_dump(r);
		r->r_next_dump = now + WR_NS;
	}
	wr_deadline_min(dl, r->r_next_dump);
}

/* ---- control socket ------------------------------------------------- */

static void wr_ctl_reply(struct wr_ctl *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void wr_ctl_reply(struct wr_ctl *cl, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		send(cl->cl_fd, buf, (size_t)n < sizeof(buf) ? (size_t)n :
		     sizeof(buf) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void wr_ctl_stats(struct wr_relay *r, struct wr_ctl *cl)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		wr_ctl_reply(cl, "error out of memory\n");
		return;
	}
	wr_stats_print(r, f);
	fputs("ok\n", f);
	fclose(f);
	/* Small enough for a unix socket buffer; a slow reader loses it. */
	send(cl->cl_fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	free(text);
}

static bool wr_parse_num(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0)
		return false;
	*out = v;
	return true;
}

static void wr_ctl_drop(struct wr_relay *r, struct wr_ctl *cl)
{
	unsigned n = 0;

	while (r->r_conns) {
		wr_conn_close(r, r->r_conns, WR_R_DROP);
		n++;
	}
	wr_ctl_reply(cl, "ok dropped %u\n", n);
}

static void wr_ctl_command(struct wr_relay *r, struct wr_ctl *cl, char *line)
{
	char *arg = strchr(line, ' ');
	double v;

	if (arg)
		*arg++ = '\0';
	if (!strcmp(line, "pause")) {
		r->r_paused = true;
		wr_ctl_reply(cl, "ok paused\n");
	} else if (!strcmp(line, "resume")) {
		r->r_paused = false;
		wr_ctl_reply(cl, "ok resumed\n");
	} else if (!strcmp(line, "drop")) {
		wr_ctl_drop(r, cl);
	} else if (!strcmp(line, "stats")) {
		wr_ctl_stats(r, cl);
	} else if (!strcmp(line, "delay") && arg && wr_parse_num(arg, &v)) {
		r->r_delay_ms = v;
		wr_ctl_reply(cl, "ok delay %g\n", v);
	} else if (!strcmp(line, "rate") && arg && wr_parse_num(arg, &v)) {
		r->r_rate_mbit = v;
		wr_ctl_reply(cl, "ok rate %g\n", v);
	} else if (!strcmp(line, "help")) {
		wr_ctl_reply(cl, "commands: pause resume drop stats delay MS "
			     "rate MBIT help\nok\n");
	} else {
		wr_ctl_reply(cl, "error bad command '%s'\n", line);
		return;
	}
	r->r_st.st_gen++;
}

static void wr_ctl_free(struct wr_relay *r, struct wr_ctl *cl)
{
	struct wr_ctl **pp;

	for (pp = &r->r_ctls; *pp; pp = &(*pp)->cl_next) {
		if (*pp == cl) {
			*pp = cl->cl_next;
			break;
		}
	}
	close(cl->cl_fd);
	free(cl);
}

/* Handle one readable control client; an fd appears once per batch. */
static void wr_ctl_read(struct wr_relay *r, struct wr_ctl *cl)
{
	char *nl;
	ssize_t n;

	n = read(cl->cl_fd, cl->cl_buf + cl->cl_len,
		 sizeof(cl->cl_buf) - 1 - cl->cl_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		wr_ctl_free(r, cl);
		return;
	}
	cl->cl_len += (size_t)n;
	cl->cl_buf[cl->cl_len] = '\0';
	while ((nl = strchr(cl->cl_buf, '\n'))) {
		*nl = '\0';
		if (nl > cl->cl_buf && nl[-1] == '\r')
			nl[-1] = '\0';
		if (cl->cl_buf[0])
			wr_ctl_command(r, cl, cl->cl_buf);
		cl->cl_len -= (size_t)(nl + 1 - cl->cl_buf);
		memmove(cl->cl_buf, nl + 1, cl->cl_len + 1);
	}
	if (cl->cl_len == sizeof(cl->cl_buf) - 1) {
		wr_ctl_reply(cl, "error line too long\n");
		wr_ctl_free(r, cl);
	}
}

static void wr_ctl_accept(struct wr_relay *r)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct wr_ctl *cl;
	int fd;

	fd = accept4(r->r_ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->cl_tag.t_tag = WR_T_CTL;
	cl->cl_fd = fd;
	ev.data.ptr = cl;
	if (epoll_ctl(r->r_ep, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		free(cl);
		return;
	}
	cl->cl_next = r->r_ctls;
	r->r_ctls = cl;
}

/* ---- event loop ----------------------------------------------------- */

static void wr_signal(struct wr_relay *r)
{
	struct signalfd_siginfo si;

	while (read(r->r_signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			wr_stats_dump(r);
		} else if (si.ssi_signo == SIGUSR2) {
			r->r_paused = !r->r_paused;
			r->r_st.st_gen++;
			wr_log(r, "%s", r->r_paused ? "paused" : "resumed");
		} else {
			r->r_quit = true;
		}
	}
}

static void wr_end_event(struct wr_relay *r, struct wr_end *e, uint32_t ev,
			 uint64_t now)
{
	struct wr_conn *c = e->e_conn;
	int s = e->e_side, err = 0;
	socklen_t len = sizeof(err);

	if (c->c_dead || e->e_fd < 0)
		return;
	if (s == 1 && c->c_connecting) {
		getsockopt(e->e_fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			wr_log(r, "connect: %s", strerror(err ? err : EPIPE));
			wr_conn_close(r, c, WR_R_CONNECT);
		} else {
			c->c_connecting = false;
		}
		return;
	}
	if (ev & EPOLLERR) {
		wr_conn_close(r, c, WR_R_RESET);
		return;
	}
	if (ev & EPOLLOUT)
		c->c_dir[1 - s].d_blocked = false;
	/* HUP is reported even when reads are off: drain to reach the EOF. */
	if (ev & (EPOLLIN | EPOLLHUP))
		wr_end_read(r, c, s, now);
}

static void wr_dispatch(struct wr_relay *r, struct epoll_event *ev,
			uint64_t now)
{
	struct wr_tagged *t = ev->data.ptr;
	uint64_t expirations;

	switch (t->t_tag) {
	case WR_T_LISTEN:
		wr_accept(r);
		break;
	case WR_T_TIMER:
		if (read(r->r_timer_fd, &expirations, sizeof(expirations)) < 0)
			break;
		break;
	case WR_T_SIGNAL:
		wr_signal(r);
		break;
	case WR_T_CTL_LISTEN:
		wr_ctl_accept(r);
		break;
	case WR_T_CTL:
		wr_ctl_read(r, (struct wr_ctl *)t);
		break;
	case WR_T_END:
		wr_end_event(r, (struct wr_end *)t, ev->events, now);
		break;
	}
}

/* Arm the timer for dl; returns the epoll_wait timeout to use. */
static int wr_timer_arm(struct wr_relay *r, uint64_t dl, uint64_t now)
{
	struct itimerspec its = { 0 };

	if (dl <= now)
		return 0;
	if (dl == r->r_timer_armed)
		return -1;
	if (dl != WR_NEVER) {
		its.it_value.tv_sec = (time_t)(dl / WR_NS);
		its.it_value.tv_nsec = (long)(dl % WR_NS);
	}
	timerfd_settime(r->r_timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
	r->r_timer_armed = dl;
	return -1;
}

static int wr_run(struct wr_relay *r)
{
	struct epoll_event evs[128];
	struct wr_conn *c, *next;
	uint64_t now, dl = WR_NEVER;
	int i, n, timeout;

	while (!r->r_quit) {
		timeout = wr_timer_arm(r, dl, wr_now());
		n = epoll_wait(r->r_ep, evs, 128, timeout);
		if (n < 0 && errno != EINTR) {
			perror("wanrelay: epoll_wait");
			return -errno;
		}
		now = wr_now();
		for (i = 0; i < n; i++)
			wr_dispatch(r, &evs[i], now);
		dl = WR_NEVER;
		for (c = r->r_conns; c; c = next) {
			next = c->c_next;
			wr_conn_service(r, c, now, &dl);
		}
		wr_stats_tick(r, now, &dl);
		wr_reap(r);
	}
	return 0;
}

/* ---- setup ---------------------------------------------------------- */

/* Split "HOST:PORT" / "[V6]:PORT" / ":PORT" into host (NULL=any) and port. */
static int wr_addr_split(char *spec, char **host, char **port)
{
	char *colon;

	if (spec[0] == '[') {
		colon = strstr(spec, "]:");
		if (!colon)
			return -EINVAL;
		*colon = '\0';
		*host = spec + 1;
		*port = colon + 2;
	} else {
		colon = strrchr(spec, ':');
		if (!colon)
			return -EINVAL;
		*colon = '\0';
		*host = spec;
		*port = colon + 1;
	}
	if (!**port)
		return -EINVAL;
	if (!**host || !strcmp(*host, "*"))
		*host = NULL;
	return 0;
}

static int wr_addr_resolve(const char *spec, bool passive,
			   struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *ai;
	char *copy = strdup(spec), *host, *port;
	int rc;

	if (!copy)
		return -ENOMEM;
	hints.ai_flags = passive ? AI_PASSIVE : 0;
	hints.ai_family = passive ? AF_INET : AF_UNSPEC;
	rc = wr_addr_split(copy, &host, &port);
	if (rc)
		goto out;
	if (passive && host && strchr(host, ':'))
		hints.ai_family = AF_INET6;
	if (getaddrinfo(host, port, &hints, &ai)) {
		rc = -EHOSTUNREACH;
		goto out;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
out:
	free(copy);
	return rc;
}

static int wr_listen_tcp(const char *spec, const char *port_file)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1;
	FILE *f;

	if (wr_addr_resolve(spec, true, &ss, &len))
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128))
		goto fail;
	len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		goto fail;
	if (port_file) {
		/* Written after listen(): its presence means "ready". */
		f = fopen(port_file, "w");
		if (!f)
			goto fail;
		fprintf(f, "%u\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
		fclose(f);
	}
	return fd;
fail:
	close(fd);
	return -errno;
}

static int wr_listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat sb;
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	/* A socket left by a killed relay would make bind() fail. */
	if (stat(path, &sb) == 0 && S_ISSOCK(sb.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) || listen(fd, 16)) {
		close(fd);
		return -errno;
	}
	return fd;
}

static int wr_signals_open(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int wr_ep_add(struct wr_relay *r, int fd, struct wr_tagged *t,
		     enum wr_tag tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = t };

	t->t_tag = tag;
	return epoll_ctl(r->r_ep, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

static int wr_setup(struct wr_relay *r, const char *listen_spec,
		    const char *port_file)
{
	r->r_listen_fd = wr_listen_tcp(listen_spec, port_file);
	if (r->r_listen_fd < 0) {
		fprintf(stderr, "wanrelay: listen on %s: %s\n", listen_spec,
			strerror(-r->r_listen_fd));
		return -1;
	}
	if (r->r_ctl_path) {
		r->r_ctl_fd = wr_listen_unix(r->r_ctl_path);
		if (r->r_ctl_fd < 0) {
			fprintf(stderr, "wanrelay: control socket %s: %s\n",
				r->r_ctl_path, strerror(-r->r_ctl_fd));
			return -1;
		}
	}
	r->r_ep = epoll_create1(EPOLL_CLOEXEC);
	r->r_timer_fd = timerfd_create(CLOCK_MONOTONIC,
				       TFD_NONBLOCK | TFD_CLOEXEC);
	r->r_signal_fd = wr_signals_open();
	if (r->r_ep < 0 || r->r_timer_fd < 0 || r->r_signal_fd < 0 ||
	    wr_ep_add(r, r->r_listen_fd, &r->r_listen_tag, WR_T_LISTEN) ||
	    wr_ep_add(r, r->r_timer_fd, &r->r_timer_tag, WR_T_TIMER) ||
	    wr_ep_add(r, r->r_signal_fd, &r->r_signal_tag, WR_T_SIGNAL) ||
	    (r->r_ctl_fd >= 0 &&
	     wr_ep_add(r, r->r_ctl_fd, &r->r_ctl_tag, WR_T_CTL_LISTEN))) {
		perror("wanrelay: setup");
		return -1;
	}
	return 0;
}

static void wr_teardown(struct wr_relay *r)
{
	while (r->r_conns)
		wr_conn_close(r, r->r_conns, WR_R_EXIT);
	wr_reap(r);
	while (r->r_ctls)
		wr_ctl_free(r, r->r_ctls);
	wr_stats_dump(r);
	if (r->r_ctl_fd >= 0) {
		close(r->r_ctl_fd);
		unlink(r->r_ctl_path);
	}
}

/* ---- command line --------------------------------------------------- */

static const char wr_usage[] =
"NAME\n"
"    wanrelay - user-space WAN emulator: a delaying, rate-limiting TCP relay\n"
"\n"
"SYNOPSIS\n"
"    wanrelay --listen ADDR:PORT --target HOST:PORT [--delay-ms N]\n"
"             [--rate-mbit R] [--stats FILE] [--control PATH] [--rpc]\n"
"             [--queue-kb K] [--backlog-ms B] [--port-file FILE] [-v]\n"
"    wanrelay --ctl PATH COMMAND [ARG]\n"
"\n"
"DESCRIPTION\n"
"    Accepts TCP connections on ADDR:PORT; for each one opens its own\n"
"    connection to HOST:PORT and relays bytes both ways through an\n"
"    emulated link: every byte read at time t is written at\n"
"    t + serialization + delay, where serialization is the queueing behind\n"
"    earlier bytes on the same direction's link at the rate cap.  The link\n"
"    of each direction is shared by all connections.  Single-threaded,\n"
"    epoll-driven.  FIN is delayed like data; a reset or I/O error on\n"
"    either side resets both sides at once.\n"
"\n"
"OPTIONS\n"
"    -l, --listen ADDR:PORT   address to accept on; ADDR may be empty or\n"
"                             '*' (any IPv4), [V6ADDR] for IPv6; PORT 0\n"
"                             picks a free port (see --port-file).\n"
"    -t, --target HOST:PORT   upstream to connect to for each connection.\n"
"    -d, --delay-ms N         one-way delay per direction, milliseconds\n"
"                             (fractions allowed).  RTT = 2N.  Default 0.\n"
"    -r, --rate-mbit R        bandwidth cap per direction, Mbit/s (10^6\n"
"                             bits).  0 = unlimited (default).\n"
"    -s, --stats FILE         write counters as 'key value' lines to FILE\n"
"                             (atomically: temp file + rename) every second\n"
"                             when changed, on SIGUSR1, and at exit.\n"
"    -c, --control PATH       unix stream socket taking line commands:\n"
"                               pause       stop forwarding both ways; keep\n"
"                                           connections and keep reading up\n"
"                                           to the queue bounds\n"
"                               resume      forward again (queued data that\n"
"                                           is due leaves at once)\n"
"                               drop        reset all current connections\n"
"                               stats       print the counters, then 'ok'\n"
"                               delay MS    set the one-way delay\n"
"                               rate MBIT   set the rate cap (0 = none)\n"
"                               help        list commands\n"
"                             Each reply ends with a line starting 'ok' or\n"
"                             'error'.  New delay/rate apply to bytes read\n"
"                             from then on.\n"
"    -R, --rpc                parse ONC RPC record marking: count calls per\n"
"                             program and procedure (client->target) and\n"
"                             NFSv3 READ replies and their bytes.\n"
"    -q, --queue-kb K         per connection and direction, stop reading\n"
"                             the source while more than K KiB are queued\n"
"                             (backpressure).  Default 8192.\n"
"    -b, --backlog-ms B       with a rate cap, stop reading a direction's\n"
"                             sources while its link has more than B ms of\n"
"                             unsent data (a router queue).  0 = no limit.\n"
"                             Default 50.\n"
"    -p, --port-file FILE     write the bound port to FILE once listening.\n"
"    -v, --verbose            log connections to stderr.\n"
"        --ctl PATH CMD [ARG] client mode: send one control command to the\n"
"                             relay at PATH, print the reply; exit 0 on\n"
"                             'ok', 1 otherwise.\n"
"    -h, --help               this text.\n"
"\n"
"SIGNALS\n"
"    SIGUSR1 writes the stats file; SIGUSR2 toggles pause; SIGTERM, SIGINT\n"
"    and SIGHUP write the stats file and exit 0.\n"
"\n"
"STATS KEYS\n"
"    bytes_up bytes_down (delivered), conns, conns_active,\n"
"    close.{eof,reset,connect_failed,drop,nomem,exit}, paused, delay_ms,\n"
"    rate_mbit; with --rpc: rpc_calls, rpc_replies, rpc_bad, read_replies,\n"
"    read_reply_bytes (record payload of NFSv3 READ replies), calls.other,\n"
"    calls.PROG.PROC (e.g. calls.100003.6 = NFS READ).\n"
"\n"
"EXIT STATUS\n"
"    0 on signal-driven exit, 1 on runtime failure, 2 on bad arguments.\n";

static void wr_die_usage(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void wr_die_usage(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wanrelay: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\nTry 'wanrelay --help'.\n", stderr);
	va_end(ap);
	exit(2);
}

/* Client mode: one command, print the reply, succeed on "ok". */
static int wr_ctl_client(const char *path, int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char cmd[WR_CTL_LINE] = "", buf[4096], *last;
	size_t have = 0;
	ssize_t n;
	int fd, i;

	for (i = 0; i < argc; i++)
		snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s",
			 i ? " " : "", argv[i]);
	if (!argc || strlen(path) >= sizeof(sun.sun_path))
		wr_die_usage("--ctl needs a socket path and a command");
	strcpy(sun.sun_path, path);
	strcat(cmd, "\n");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		fprintf(stderr, "wanrelay: %s: %s\n", path, strerror(errno));
		return 1;
	}
	shutdown(fd, SHUT_WR);
	while ((n = read(fd, buf + have, sizeof(buf) - 1 - have)) > 0) {
		fwrite(buf + have, 1, (size_t)n, stdout);
		have += (size_t)n;
		if (have > sizeof(buf) / 2) {	/* keep only the tail */
			memmove(buf, buf + have - 64, 64);
			have = 64;
		}
	}
	close(fd);
	buf[have] = '\0';
	while (have && buf[have - 1] == '\n')
		buf[--have] = '\0';
	last = strrchr(buf, '\n');
	last = last ? last + 1 : buf;
	return strncmp(last, "ok", 2) ? 1 : 0;
}

static double wr_opt_num(const char *name, const char *s)
{
	double v;

	if (!wr_parse_num(s, &v))
		wr_die_usage("%s: '%s' is not a non-negative number", name, s);
	return v;
}

static const struct option wr_options[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "target", required_argument, NULL, 't' },
	{ "delay-ms", required_argument, NULL, 'd' },
	{ "rate-mbit", required_argument, NULL, 'r' },
	{ "stats", required_argument, NULL, 's' },
	{ "control", required_argument, NULL, 'c' },
	{ "rpc", no_argument, NULL, 'R' },
	{ "queue-kb", required_argument, NULL, 'q' },
	{ "backlog-ms", required_argument, NULL, 'b' },
	{ "port-file", required_argument, NULL, 'p' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "ctl", required_argument, NULL, 'C' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

struct wr_args {
	const char *a_listen, *a_target, *a_port_file;
};

static void wr_parse_args(struct wr_relay *r, struct wr_args *a, int argc,
			  char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int o;

	while ((o = getopt_long(argc, argv, "+l:t:d:r:s:c:Rq:b:p:vh",
				wr_options, NULL)) != -1) {
		switch (o) {
		case 'l': a->a_listen = optarg; break;
		case 't': a->a_target = optarg; break;
		case 'd': r->r_delay_ms = wr_opt_num("--delay-ms", optarg); break;
		case 'r': r->r_rate_mbit = wr_opt_num("--rate-mbit", optarg); break;
		case 's': r->r_stats_path = optarg; break;
		case 'c': r->r_ctl_path = optarg; break;
		case 'R': r->r_rpc = true; break;
		case 'q':
			r->r_qmax = (size_t)wr_opt_num("--queue-kb", optarg) * 1024;
			break;
		case 'b': r->r_backlog_ms = wr_opt_num("--backlog-ms", optarg); break;
		case 'p': a->a_port_file = optarg; break;
		case 'v': r->r_verbose = true; break;
		case 'C': exit(wr_ctl_client(optarg, argc - optind, argv + optind));
		case 'h': fputs(wr_usage, stdout); exit(0);
		default: wr_die_usage("bad option");
		}
	}
	if (optind < argc)
		wr_die_usage("unexpected argument '%s'", argv[optind]);
	if (!a->a_listen || !a->a_target)
		wr_die_usage("--listen and --target are required");
	if (wr_addr_resolve(a->a_listen, true, &ss, &len))
		wr_die_usage("--listen '%s': want ADDR:PORT", a->a_listen);
	if (r->r_qmax == 0)
		wr_die_usage("--queue-kb must be at least 1");
	if (wr_addr_resolve(a->a_target, false, &r->r_target,
			    &r->r_target_len))
		wr_die_usage("--target '%s': want HOST:PORT that resolves",
			     a->a_target);
}

int main(int argc, char **argv)
{
	static struct wr_relay relay;
	struct wr_relay *r = &relay;
	struct wr_args a = { 0 };
	int rc;

	r->r_qmax = 8u << 20;
	r->r_backlog_ms = 50;
	r->r_listen_fd = r->r_timer_fd = r->r_signal_fd = r->r_ctl_fd = -1;
	r->r_ep = -1;
	wr_parse_args(r, &a, argc, argv);
	if (wr_setup(r, a.a_listen, a.a_port_file))
		return 1;
	wr_log(r, "relaying %s -> %s, delay %g ms, rate %g Mbit/s", a.a_listen,
	       a.a_target, r->r_delay_ms, r->r_rate_mbit);
	rc = wr_run(r);
	wr_teardown(r);
	return rc ? 1 : 0;
}
