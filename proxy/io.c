/*
 * proxy/io.c — the byte-moving parts every connection shares: refcounted
 * messages, output queues flushed with writev, and the reassembling reader
 * that reads large fragments straight into their final buffer.
 */
#include "config.h"
#include "proxy/px.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crypto/tls.h"
#include "proxy/zlink.h"

#define STAGE_SIZE (64u * 1024u)
/* Below this much room left in a fragment, staging beats a direct read:
 * one read can then pick up several small messages at once. */
#define DIRECT_MIN (16u * 1024u)
#define IOV_MAX_BATCH 64

uint64_t px_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct zlink_stats px_zstats;

void px_zlink_start(const struct px_opts *o, struct px_outq *q,
		    struct zlink_out *z, struct px_reader *rd)
{
	zlink_out_init(z, (enum zlink_mode)o->o_compress,
		       (uint64_t)o->o_compress_below * 1000000u / 8u,
		       &px_zstats);
	q->q_z = z;
	rd->rd_rec.r_zok = true;
	rd->rd_zo = z;
}

/* Bytes of messages made since the last px_mem_tick (loop thread only). */
static uint64_t msg_made_bytes;

struct px_msg *px_msg_wrap(uint8_t *mem, size_t len)
{
	struct px_msg *m = calloc(1, sizeof(*m));

	msg_made_bytes += len;

	if (!m) {
		free(mem);
		return NULL;
	}
	m->m_mem = mem;
	m->m_len = len;
	m->m_refs = 1;
	return m;
}

struct px_msg *px_msg_new(size_t len)
{
	uint8_t *mem = malloc(RPC_REC_HEADROOM + (len ? len : 1));

	return mem ? px_msg_wrap(mem, len) : NULL;
}

/*
 * The heap is trimmed when the daemon is quiet, never during a burst.
 * glibc trims the heap's free top whenever it passes M_TRIM_THRESHOLD, and
 * a cold read holds up to the cache's queue of reply buffers (64 MiB)
 * before the writer lets them go: with a threshold below that, a burst
 * gave pages back and faulted them in again.  main() sets the threshold
 * out of reach; here, once a burst is over (under 1 MiB of messages a
 * second for ten seconds) and more than 16 MiB lie free, the free memory
 * of every arena goes back to the system, once per quiet spell.  Called
 * once a second from the loop's timer.
 */
void px_mem_tick(void)
{
	static unsigned quiet;
	static bool trimmed;
	uint64_t made = msg_made_bytes;

	msg_made_bytes = 0;
	if (made >= (1u << 20)) {
		quiet = 0;
		trimmed = false;
		return;
	}
	if (trimmed || ++quiet < 10)
		return;
	trimmed = true;
	if (mallinfo2().fordblks > (16u << 20))
		malloc_trim(0);
}

void px_msg_unref(struct px_msg *m)
{
	if (!m || --m->m_refs)
		return;
	free(m->m_mem);
	free(m);
}

/* A compressed copy of m for q's link, or NULL to send m itself. */
static struct px_msg *outq_pack(struct px_outq *q, struct px_msg *m)
{
	size_t cap = zlink_bound(m->m_len), n;
	struct px_msg *z;

	if (!(z = px_msg_new(cap)))
		return NULL;
	n = zlink_pack(q->q_z, px_msg_data(m), m->m_len, px_msg_data(z), cap);
	if (!n) {
		px_msg_unref(z);
		return NULL;
	}
	z->m_len = n;
	rpc_put32(z->m_mem, RPC_RM_LAST | RPC_RM_ZSTD |
				    zlink_mark_flags(q->q_z) | (uint32_t)n);
	return z;
}

void px_outq_push(struct px_outq *q, struct px_msg *m)
{
	struct px_msg *z = NULL;

	if (q->q_z && zlink_want(q->q_z, m->m_len))
		z = outq_pack(q, m);
	if (z) {
		m = z; /* the queue owns the copy's only ref */
	} else {
		m->m_refs++;
		rpc_put32(m->m_mem, RPC_RM_LAST | zlink_mark_flags(q->q_z) |
					    (uint32_t)m->m_len);
	}
	m->m_next = NULL;
	m->m_off = 0;
	if (q->q_tail)
		q->q_tail->m_next = m;
	else
		q->q_head = m;
	q->q_tail = m;
	q->q_bytes += RPC_REC_HEADROOM + m->m_len;
}

static void outq_pop(struct px_outq *q)
{
	struct px_msg *m = q->q_head;

	q->q_head = m->m_next;
	if (!q->q_head)
		q->q_tail = NULL;
	m->m_next = NULL;
	px_msg_unref(m);
}

/* writev through TLS when the connection has it. */
static ssize_t io_writev(int fd, struct tls_conn *tls, struct iovec *iov,
			 int n)
{
	ssize_t w;

	if (!tls)
		return writev(fd, iov, n);
	w = tls_conn_writev(tls, iov, n);
	if (w >= 0)
		return w;
	errno = tls_want(w) ? EAGAIN : (w > -4096 ? (int)-w : EPROTO);
	return -1;
}

static ssize_t io_read(int fd, struct tls_conn *tls, void *buf, size_t len)
{
	ssize_t n;

	if (!tls)
		return read(fd, buf, len);
	n = tls_conn_read(tls, buf, len);
	if (n >= 0)
		return n;
	/* TLS_E_EOF: the TCP stream ended without close_notify (a peer
	 * that died or was killed), not a protocol error. */
	errno = tls_want(n) ? EAGAIN
			    : n == TLS_E_EOF ? ECONNABORTED
					     : (n > -4096 ? (int)-n : EPROTO);
	return -1;
}

int px_outq_flush(struct px_outq *q, int fd, struct tls_conn *tls,
		  size_t budget)
{
	size_t done = 0;

	/* Records made earlier go before anything new (TLS). */
	if (tls && tls_conn_wpending(tls)) {
		int f = tls_conn_flush(tls);

		if (f == TLS_WANT_WRITE)
			return 1;
		if (f < 0)
			return f > -4096 ? f : -EPROTO;
	}
	while (q->q_head && done < budget) {
		struct iovec iov[IOV_MAX_BATCH];
		int n = 0;
		ssize_t w;

		for (struct px_msg *m = q->q_head; m && n < IOV_MAX_BATCH;
		     m = m->m_next, n++) {
			iov[n].iov_base = m->m_mem + m->m_off;
			iov[n].iov_len = RPC_REC_HEADROOM + m->m_len - m->m_off;
		}
		w = io_writev(fd, tls, iov, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		done += (size_t)w;
		q->q_bytes -= (size_t)w;
		q->q_sent += (size_t)w;
		while (w > 0) {
			struct px_msg *m = q->q_head;
			size_t left = RPC_REC_HEADROOM + m->m_len - m->m_off;

			if ((size_t)w < left) {
				m->m_off += (size_t)w;
				break;
			}
			w -= (ssize_t)left;
			outq_pop(q);
		}
	}
	return q->q_head || (tls && tls_conn_wpending(tls)) ? 1 : 0;
}

void px_outq_clear(struct px_outq *q)
{
	while (q->q_head)
		outq_pop(q);
	q->q_bytes = 0;
	q->q_z = NULL;
}

/* A reader for small records needs no 64 KiB stage (a connection that
 * has not authenticated yet should cost little). */
static size_t stage_size(size_t max_record)
{
	return max_record + 8 < STAGE_SIZE ? max_record + 8 : STAGE_SIZE;
}

int px_reader_init(struct px_reader *rd, size_t max_record)
{
	memset(rd, 0, sizeof(*rd));
	rpc_rec_init(&rd->rd_rec, max_record);
	rd->rd_stage_cap = stage_size(max_record);
	rd->rd_stage = malloc(rd->rd_stage_cap);
	return rd->rd_stage ? 0 : -ENOMEM;
}

int px_reader_set_max(struct px_reader *rd, size_t max_record)
{
	size_t want = stage_size(max_record);

	if (want > rd->rd_stage_cap) {
		/* Staged bytes keep their offsets. */
		uint8_t *n = realloc(rd->rd_stage, want);

		if (!n)
			return -ENOMEM;
		rd->rd_stage = n;
		rd->rd_stage_cap = want;
	}
	rd->rd_rec.r_max = max_record;
	return 0;
}

void px_reader_free(struct px_reader *rd)
{
	rpc_rec_free(&rd->rd_rec);
	free(rd->rd_stage);
	rd->rd_stage = NULL;
}

bool px_reader_has_staged(const struct px_reader *rd, struct tls_conn *tls)
{
	return rd->rd_pos < rd->rd_len || rpc_rec_ready(&rd->rd_rec) ||
	       (tls && tls_conn_pending(tls));
}

/* Hand a finished message over (decoded first when it came compressed):
 * 1 = go on, 0 = the consumer wants a pause, <0 = a bad compressed record
 * (the reason in rd_why). */
static int reader_deliver(struct px_reader *rd, px_msg_fn on_msg, void *ctx)
{
	bool zstd = rd->rd_rec.r_zstd;
	size_t max = rd->rd_rec.r_max, len;
	uint8_t *mem = rpc_rec_take(&rd->rd_rec, &len);

	rd->rd_partial_since = 0;
	if (rd->rd_zo)
		rd->rd_zo->zo_peer_asks = rd->rd_rec.r_zwant;
	if (zstd) {
		uint8_t *raw;
		size_t rlen;
		int rc = zlink_unpack(mem + RPC_REC_HEADROOM, len, max,
				      RPC_REC_HEADROOM, &raw, &rlen,
				      rd->rd_zo->zo_stats, rd->rd_why,
				      sizeof(rd->rd_why));

		free(mem);
		if (rc < 0)
			return rc;
		mem = raw;
		len = rlen;
	}
	return on_msg(ctx, mem, len) ? 1 : 0;
}

/* A framing fault of a compressed link, said in words. */
static int reader_fault(struct px_reader *rd, int rc)
{
	if (rc == -EBADMSG && rd->rd_rec.r_zok && !rd->rd_why[0])
		snprintf(rd->rd_why, sizeof(rd->rd_why),
			 "bad record on a compressed link (empty, or a "
			 "compressed record in more than one fragment)");
	return rc;
}

/* Feed staged bytes; 1 = keep going, 0 = consumer paused, <0 = error. */
static int reader_drain_stage(struct px_reader *rd, px_msg_fn on_msg,
			      void *ctx)
{
	while (rd->rd_pos < rd->rd_len) {
		ssize_t n = rpc_rec_feed(&rd->rd_rec, rd->rd_stage + rd->rd_pos,
					 rd->rd_len - rd->rd_pos);
		int d;

		if (n < 0)
			return reader_fault(rd, (int)n);
		rd->rd_pos += (size_t)n;
		if (rpc_rec_ready(&rd->rd_rec) &&
		    (d = reader_deliver(rd, on_msg, ctx)) <= 0)
			return d;
	}
	rd->rd_pos = rd->rd_len = 0;
	return 1;
}

int px_reader_run(struct px_reader *rd, int fd, struct tls_conn *tls,
		  size_t budget, px_msg_fn on_msg, void *ctx)
{
	size_t got = 0;
	int rc;

	if (rpc_rec_ready(&rd->rd_rec) &&
	    (rc = reader_deliver(rd, on_msg, ctx)) <= 0)
		return rc < 0 ? rc : 1;
	if ((rc = reader_drain_stage(rd, on_msg, ctx)) <= 0)
		return rc < 0 ? rc : 1;
	/* Bytes inside TLS are invisible to epoll: with TLS, read until the
	 * library has nothing left rather than stopping at the budget. */
	while (got < budget || tls) {
		size_t room;
		uint8_t *direct = rpc_rec_direct(&rd->rd_rec, &room);
		ssize_t n;
		bool drained;

		if (direct && room >= DIRECT_MIN) {
			n = io_read(fd, tls, direct, room);
		} else {
			direct = NULL;
			room = rd->rd_stage_cap;
			n = io_read(fd, tls, rd->rd_stage, room);
		}
		/* A short read of a plain socket took all there was: epoll
		 * is level-triggered and says when more comes, so the read
		 * that would only return EAGAIN is saved (two syscalls of
		 * the proxy's six per small call). */
		drained = !tls && n > 0 && (size_t)n < room;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		if (n == 0)
			return 0;
		got += (size_t)n;
		rd->rd_bytes += (uint64_t)n;
		if (!rd->rd_partial_since)
			rd->rd_partial_since = px_now_ms();
		if (direct) {
			rpc_rec_commit(&rd->rd_rec, (size_t)n);
			if (rpc_rec_ready(&rd->rd_rec) &&
			    (rc = reader_deliver(rd, on_msg, ctx)) <= 0)
				return rc < 0 ? rc : 1;
			if (drained)
				return 1;
			continue;
		}
		rd->rd_pos = 0;
		rd->rd_len = (size_t)n;
		if ((rc = reader_drain_stage(rd, on_msg, ctx)) <= 0)
			return rc < 0 ? rc : 1;
		if (rpc_rec_partial(&rd->rd_rec) && !rd->rd_partial_since)
			rd->rd_partial_since = px_now_ms();
		if (drained)
			return 1;
	}
	return 1;
}
