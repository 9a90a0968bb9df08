/*
 * proxy/cachepath.c — the client role's read cache on the wire: READs
 * wholly covered by cached blocks of the file's current version are
 * answered here; misses go upstream widened to whole blocks, and identical
 * misses in flight share one upstream fetch.  Every reply's attributes
 * keep the cache's idea of each file's version current (cache/ does the
 * storing, in its own writer thread).
 *
 * A cached block is served to a credential only after upstream let that
 * credential read the file (a READ or an ACCESS with the READ bit), for
 * --access-ttl seconds: cache hits never widen who may read what.
 */
#include "config.h"
#include "proxy/core.h"

#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

#define ACC_BUCKETS 4096u
#define ACCESS3_READ 0x1u
#define NFS3ERR_ACCES 13u
#define LOOK_SLOTS 16u
#define LOOK_MS 200u

struct px_grant {
	struct cache_ident g_id;
	uint64_t g_cred;
	uint64_t g_until;   /* ms */
	struct px_grant *g_next;
};

/* A recent upstream READ result: fills reach LMDB a few ms later, and a
 * client reading small pieces of one block must not refetch meanwhile. */
struct px_look {
	struct px_msg *lk_msg;   /* the reply (a ref), data inside */
	const uint8_t *lk_data;
	uint8_t lk_fh[NFS3_FHSIZE];
	uint32_t lk_fhlen;
	uint64_t lk_off;
	uint32_t lk_len;
	bool lk_eof;
	uint8_t lk_fattr[NFS3_FATTR_SIZE];
	uint64_t lk_until;
};

/* A client READ parked on an identical fetch already in flight. */
struct px_waiter {
	struct px_client *w_client; /* a ref */
	uint32_t w_xid;
	uint64_t w_off;
	uint32_t w_count;
	struct px_waiter *w_next;
};

struct px_rcache {
	struct cache *rc_cache;
	unsigned rc_flags;       /* CACHE_F_STRICT / CACHE_F_IMMUTABLE */
	uint64_t rc_access_ms;
	struct px_grant *rc_grants[ACC_BUCKETS];
	struct px_look rc_look[LOOK_SLOTS];
	unsigned rc_look_next;
	uint64_t rc_local_hits, rc_local_bytes, rc_coalesced, rc_fetches;
};

/* What a READ call forwarded through the cache remembers. */
struct px_cread {
	uint8_t cr_fh[NFS3_FHSIZE];
	uint32_t cr_fhlen;
	uint64_t cr_cl_off;      /* what the client asked for */
	uint32_t cr_cl_count;
	uint64_t cr_up_off;      /* what went upstream (whole blocks) */
	uint32_t cr_up_count;
	uint64_t cr_cred;
	struct px_waiter *cr_waiters;
};

/* ---------------------------------------------------------------------- */

static void cache_log(int prio, const char *msg)
{
	px_logf(prio, "cache", "%s", msg);
}

int px_rcache_open(struct px_loop *l)
{
	const struct px_opts *o = l->lp_opts;
	struct cache_opts co = {
		.co_dir = o->o_cache_dir,
		.co_max_bytes = o->o_cache_size,
		.co_block_size = o->o_cache_block,
		.co_immutable_ttl = o->o_immutable_ttl,
		/* Room for a loopback-speed burst (~400 MB/s in, the writer
		 * commits ~200 MB/s): fills beyond it would be dropped.  Held
		 * only while a burst lasts. */
		.co_queue_bytes = 256u << 20,
		.co_log = cache_log,
	};
	struct px_rcache *rc;
	int rc_err;

	if (!o->o_cache_dir)
		return 0;
	if (!(rc = calloc(1, sizeof(*rc))))
		return -ENOMEM;
	rc_err = cache_open(&co, &rc->rc_cache);
	if (rc_err < 0) {
		px_err("cache %s: cannot open: %s", o->o_cache_dir,
		       strerror(-rc_err));
		free(rc);
		return rc_err;
	}
	rc->rc_flags = o->o_consistency == PX_CONS_IMMUTABLE ? CACHE_F_IMMUTABLE
							      : CACHE_F_STRICT;
	rc->rc_access_ms = (uint64_t)o->o_access_ttl * 1000u;
	l->lp_rcache = rc;
	px_info("cache %s: %llu MiB cap, %u KiB blocks, %s", o->o_cache_dir,
		(unsigned long long)(o->o_cache_size >> 20),
		cache_block_size(rc->rc_cache) >> 10,
		rc->rc_flags == CACHE_F_IMMUTABLE ? "immutable" : "strict");
	return 0;
}

void px_rcache_close(struct px_loop *l)
{
	struct px_rcache *rc = l->lp_rcache;

	if (!rc)
		return;
	for (unsigned i = 0; i < ACC_BUCKETS; i++)
		while (rc->rc_grants[i]) {
			struct px_grant *g = rc->rc_grants[i];

			rc->rc_grants[i] = g->g_next;
			free(g);
		}
	for (unsigned i = 0; i < LOOK_SLOTS; i++)
		px_msg_unref(rc->rc_look[i].lk_msg);
	cache_close(rc->rc_cache);
	free(rc);
	l->lp_rcache = NULL;
}

struct cache *px_rcache_cache(struct px_loop *l)
{
	return l->lp_rcache ? l->lp_rcache->rc_cache : NULL;
}

/* ---------------------------------------------------------------------- */
/* Credentials and grants                                                  */

/* A key for "this user with these groups" (the credential upstream sees). */
static uint64_t cred_key(const uint8_t *msg, const struct rpc_call *h)
{
	struct rpc_authsys a;
	uint64_t k = 1469598103934665603ull;
	uint32_t v[2 + RPC_AUTHSYS_MAX_GIDS];
	uint32_t n = 0;

	if (h->c_cred_flavor != RPC_AUTH_SYS ||
	    rpc_authsys_parse(msg + h->c_cred_body, h->c_cred_len, &a))
		return 0;
	v[n++] = a.as_uid;
	v[n++] = a.as_gid;
	/* Group order does not change permissions: sort a copy. */
	for (uint32_t i = 0; i < a.as_ngids; i++) {
		uint32_t g = a.as_gids[i], j = n;

		while (j > 2 && v[j - 1] > g) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = g;
		n++;
	}
	for (uint32_t i = 0; i < n; i++)
		k = (k ^ v[i]) * 1099511628211ull;
	return k ? k : 1;
}

static unsigned grant_bucket(const struct cache_ident *id, uint64_t cred)
{
	uint64_t h = id->ci_fileid * 0x9e3779b97f4a7c15ull ^ id->ci_fsid ^ cred;

	return (unsigned)(h ^ h >> 29) & (ACC_BUCKETS - 1);
}

static struct px_grant **grant_find(struct px_rcache *rc,
				    const struct cache_ident *id, uint64_t cred)
{
	struct px_grant **pp = &rc->rc_grants[grant_bucket(id, cred)];

	for (; *pp; pp = &(*pp)->g_next)
		if ((*pp)->g_cred == cred && (*pp)->g_id.ci_fileid == id->ci_fileid &&
		    (*pp)->g_id.ci_fsid == id->ci_fsid)
			break;
	return pp;
}

static void grant_set(struct px_rcache *rc, const uint8_t *fattr,
		      uint64_t cred, bool allowed)
{
	struct cache_ident id;
	struct px_grant **pp, *g;

	if (!cred)
		return;
	cache_ident_of_fattr(fattr, &id);
	pp = grant_find(rc, &id, cred);
	if (!allowed) {
		if ((g = *pp)) {
			*pp = g->g_next;
			free(g);
		}
		return;
	}
	if (!(g = *pp)) {
		if (!(g = calloc(1, sizeof(*g))))
			return;
		g->g_id = id;
		g->g_cred = cred;
		g->g_next = NULL;
		*pp = g;
	}
	g->g_until = px_now_ms() + rc->rc_access_ms;
}

static bool grant_ok(struct px_rcache *rc, const uint8_t *fattr, uint64_t cred)
{
	struct cache_ident id;
	struct px_grant *g;

	if (!cred)
		return false;
	cache_ident_of_fattr(fattr, &id);
	g = *grant_find(rc, &id, cred);
	return g && g->g_until > px_now_ms();
}

/* ---------------------------------------------------------------------- */
/* Replies built here                                                      */

/* A complete READ3resok reply with data[0..len). */
static struct px_msg *read_reply(uint32_t xid, const uint8_t *fattr,
				 const uint8_t *data, uint32_t len, bool eof)
{
	size_t size = 32 + 4 + 4 + NFS3_FATTR_SIZE + 12 + ((len + 3u) & ~3u);
	struct px_msg *m = px_msg_new(size);
	struct rpc_xdr x;

	if (!m)
		return NULL;
	rpc_xdr_init(&x, px_msg_data(m), size);
	rpc_reply_accepted(&x, xid, RPC_ACC_SUCCESS, 0, 0);
	rpc_xdr_put_u32(&x, 0);            /* NFS3_OK */
	rpc_xdr_put_u32(&x, 1);            /* post_op_attr follows */
	rpc_xdr_put_fixed(&x, fattr, NFS3_FATTR_SIZE);
	rpc_xdr_put_u32(&x, len);
	rpc_xdr_put_u32(&x, eof);
	rpc_xdr_put_opaque(&x, data, len);
	m->m_len = x.x_pos;
	return x.x_err ? (px_msg_unref(m), NULL) : m;
}

static void send_read(struct px_client *c, uint32_t xid, const uint8_t *fattr,
		      const uint8_t *data, uint32_t len, bool eof)
{
	struct px_msg *m = read_reply(xid, fattr, data, len, eof);

	if (!m)
		return;
	px_client_send(c, m);
	px_msg_unref(m);
}

/*
 * Does [roff, roff+rlen) (reof: it ends at EOF) hold the client's
 * [off, off+count), clipped at the file size?  Used for hits from recent
 * fetches, where anything less must go upstream.
 */
static bool range_covers(uint64_t off, uint32_t count, uint64_t roff,
			 uint32_t rlen, bool reof, const uint8_t *fattr)
{
	uint64_t size = rpc_get64(fattr + NFS3_FATTR_SIZE_OFF);
	uint64_t end = off + count;

	if (end > size)
		end = size > off ? size : off;
	return off >= roff && (end <= roff + rlen || (reof && roff + rlen >= size));
}

/*
 * Answer the client's [off, off+count) from a fetched range that starts at
 * or before off.  Upstream may return less than asked (a short read is
 * legal): the client then gets what there is from its own offset on, never
 * bytes from another offset.
 */
static void serve_range(struct px_client *c, uint32_t xid, uint64_t off,
			uint32_t count, uint64_t roff, const uint8_t *data,
			uint32_t rlen, const uint8_t *fattr)
{
	uint64_t size = rpc_get64(fattr + NFS3_FATTR_SIZE_OFF);
	uint64_t end = off + count;

	if (end > size)
		end = size;
	if (end > roff + rlen)
		end = roff + rlen;
	if (off < roff || end < off)
		end = off; /* nothing of it here: an empty, honest answer */
	send_read(c, xid, fattr, off >= roff ? data + (off - roff) : data,
		  (uint32_t)(end - off), end >= size);
}

/* ---------------------------------------------------------------------- */
/* READ calls                                                              */

static bool look_serve(struct px_rcache *rc, struct px_client *c,
		       const struct rpc_call *h, const uint8_t *fh,
		       uint32_t fhlen, uint64_t off, uint32_t count,
		       uint64_t cred)
{
	uint64_t now = px_now_ms();

	for (unsigned i = 0; i < LOOK_SLOTS; i++) {
		struct px_look *lk = &rc->rc_look[i];

		if (!lk->lk_msg || lk->lk_until < now || lk->lk_fhlen != fhlen ||
		    memcmp(lk->lk_fh, fh, fhlen))
			continue;
		if (!grant_ok(rc, lk->lk_fattr, cred) ||
		    !range_covers(off, count, lk->lk_off, lk->lk_len,
				  lk->lk_eof, lk->lk_fattr))
			continue;
		serve_range(c, h->c_xid, off, count, lk->lk_off, lk->lk_data,
			    lk->lk_len, lk->lk_fattr);
		rc->rc_local_hits++;
		return true;
	}
	return false;
}

/* A fetch in flight for the same credential that covers this READ: wait
 * for it instead of asking upstream again. */
static bool fetch_join(struct px_loop *l, struct px_client *c,
		       const struct rpc_call *h, const struct px_cread *want)
{
	for (struct px_call *pc = l->lp_nfs.ln_head; pc; pc = pc->pc_next) {
		struct px_cread *cr = pc->pc_cread;
		struct px_waiter *w;

		if (!cr || cr->cr_cred != want->cr_cred ||
		    cr->cr_up_off > want->cr_cl_off ||
		    cr->cr_up_off + cr->cr_up_count <
			    want->cr_cl_off + want->cr_cl_count ||
		    cr->cr_fhlen != want->cr_fhlen ||
		    memcmp(cr->cr_fh, want->cr_fh, want->cr_fhlen))
			continue;
		if (!(w = calloc(1, sizeof(*w))))
			return false;
		w->w_client = c;
		c->cl_refs++;
		w->w_xid = h->c_xid;
		w->w_off = want->cr_cl_off;
		w->w_count = want->cr_cl_count;
		w->w_next = cr->cr_waiters;
		cr->cr_waiters = w;
		l->lp_rcache->rc_coalesced++;
		return true;
	}
	return false;
}

int px_rcache_read_call(struct px_loop *l, struct px_client *c, uint8_t *msg,
			size_t len, const struct rpc_call *h,
			struct px_cread **crp)
{
	struct px_rcache *rc = l->lp_rcache;
	uint8_t *args = msg + h->c_args_off;
	uint32_t fhlen = rpc_get32(args), count, bs;
	uint8_t fattr[NFS3_FATTR_SIZE];
	struct px_cread want, *cr;
	uint64_t off, aoff, alen;
	uint8_t *fh = args + 4, *out;
	uint32_t got;
	bool eof;

	*crp = NULL;
	if (fhlen > NFS3_FHSIZE)
		return 0;
	off = rpc_get64(args + 4 + ((fhlen + 3u) & ~3u));
	count = rpc_get32(args + 4 + ((fhlen + 3u) & ~3u) + 8);
	memset(&want, 0, sizeof(want));
	want.cr_cred = cred_key(msg, h);
	/* Hit: wholly cached, current version, and this credential may read. */
	if ((out = malloc(count ? count : 1)) &&
	    cache_read(rc->rc_cache, fh, fhlen, off, count, out, &got, &eof,
		       fattr) == 0 &&
	    grant_ok(rc, fattr, want.cr_cred)) {
		send_read(c, h->c_xid, fattr, out, got, eof);
		rc->rc_local_hits++;
		rc->rc_local_bytes += got;
		free(out);
		return 1;
	}
	free(out);
	if (look_serve(rc, c, h, fh, fhlen, off, count, want.cr_cred))
		return 1;
	/* Miss: fetch whole blocks, so the next small read hits. */
	bs = cache_block_size(rc->rc_cache);
	cache_blk_align(off, count, bs, UINT64_MAX, &aoff, &alen);
	if (alen > l->lp_opts->o_max_record - 4096 || alen > UINT32_MAX)
		alen = count, aoff = off; /* widening would overflow a record */
	memcpy(want.cr_fh, fh, fhlen);
	want.cr_fhlen = fhlen;
	want.cr_cl_off = off;
	want.cr_cl_count = count;
	want.cr_up_off = aoff;
	want.cr_up_count = (uint32_t)alen;
	if (fetch_join(l, c, h, &want))
		return 1;
	if (!(cr = malloc(sizeof(*cr))))
		return 0;
	*cr = want;
	rpc_put64(args + 4 + ((fhlen + 3u) & ~3u), aoff);
	rpc_put32(args + 4 + ((fhlen + 3u) & ~3u) + 8, (uint32_t)alen);
	rc->rc_fetches++;
	*crp = cr;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Replies                                                                 */

struct note_ctx {
	struct px_rcache *nc_rc;
	struct px_call *nc_pc;
	unsigned nc_nfattr;
	uint8_t *nc_first_fattr;
	uint8_t *nc_last_fattr;  /* READDIRPLUS: attributes before a handle */
	uint8_t *nc_last_fh;     /* LOOKUP etc.: a handle before attributes */
	uint32_t nc_last_fhlen;
	uint32_t nc_status;
	uint8_t *nc_data;
	uint32_t nc_count;
	bool nc_eof;
	uint32_t nc_access;
};

/* A new version of a file retires the recent fetches of the old one. */
static void look_retire(struct px_rcache *rc, const uint8_t *fattr)
{
	for (unsigned i = 0; i < LOOK_SLOTS; i++) {
		struct px_look *lk = &rc->rc_look[i];

		if (lk->lk_msg &&
		    !memcmp(lk->lk_fattr + NFS3_FATTR_FSID, fattr + NFS3_FATTR_FSID,
			    16) &&
		    !cache_fattr_same_version(lk->lk_fattr, fattr)) {
			px_msg_unref(lk->lk_msg);
			lk->lk_msg = NULL;
		}
	}
}

static void note_fattr(void *ctx, uint8_t *fattr)
{
	struct note_ctx *nc = ctx;

	cache_note_attr(nc->nc_rc->rc_cache, fattr, nc->nc_rc->rc_flags);
	look_retire(nc->nc_rc, fattr);
	if (!nc->nc_nfattr++)
		nc->nc_first_fattr = fattr;
	if (nc->nc_last_fh) {
		cache_note_handle(nc->nc_rc->rc_cache, nc->nc_last_fh,
				  nc->nc_last_fhlen, fattr, nc->nc_rc->rc_flags);
		nc->nc_last_fh = NULL;
	}
	nc->nc_last_fattr = fattr;
}

static void note_fh(void *ctx, unsigned n, uint8_t *fh, uint32_t len)
{
	struct note_ctx *nc = ctx;

	if (nc->nc_pc->pc_proc == NFS3_READDIRPLUS) {
		if (nc->nc_last_fattr && nc->nc_nfattr > 1)
			cache_note_handle(nc->nc_rc->rc_cache, fh, len,
					  nc->nc_last_fattr, nc->nc_rc->rc_flags);
		nc->nc_last_fattr = NULL;
		return;
	}
	nc->nc_last_fh = fh;
	nc->nc_last_fhlen = len;
}

static void note_status(void *ctx, uint32_t st)
{
	((struct note_ctx *)ctx)->nc_status = st;
}

static void note_read(void *ctx, uint32_t count, bool eof, uint8_t *data,
		      uint32_t len)
{
	struct note_ctx *nc = ctx;

	nc->nc_data = data;
	nc->nc_count = len;
	nc->nc_eof = eof;
}

/* The call's first handle: the object of most procedures. */
static bool call_fh(const struct px_call *pc, const uint8_t **fh,
		    uint32_t *len)
{
	const uint8_t *msg = px_msg_data(pc->pc_req);
	struct rpc_call h;

	if (rpc_call_parse(msg, pc->pc_req->m_len, &h) != RPC_CALL_OK ||
	    h.c_args_off + 4 > pc->pc_req->m_len)
		return false;
	*len = rpc_get32(msg + h.c_args_off);
	*fh = msg + h.c_args_off + 4;
	return *len <= NFS3_FHSIZE && h.c_args_off + 4 + *len <= pc->pc_req->m_len;
}

static void look_put(struct px_rcache *rc, struct px_msg *m,
		     const struct px_cread *cr, const uint8_t *data,
		     uint32_t len, bool eof, const uint8_t *fattr)
{
	struct px_look *lk = &rc->rc_look[rc->rc_look_next++ % LOOK_SLOTS];

	px_msg_unref(lk->lk_msg);
	m->m_refs++;
	lk->lk_msg = m;
	lk->lk_data = data;
	memcpy(lk->lk_fh, cr->cr_fh, cr->cr_fhlen);
	lk->lk_fhlen = cr->cr_fhlen;
	lk->lk_off = cr->cr_up_off;
	lk->lk_len = len;
	lk->lk_eof = eof;
	memcpy(lk->lk_fattr, fattr, NFS3_FATTR_SIZE);
	lk->lk_until = px_now_ms() + LOOK_MS;
}

/* Answer the client and the waiters of a widened READ from its reply. */
static void read_answer(struct px_rcache *rc, struct px_call *pc,
			struct note_ctx *nc, struct px_msg *m)
{
	struct px_cread *cr = pc->pc_cread;
	bool ok = nc->nc_status == 0 && nc->nc_first_fattr;
	struct px_waiter *w;

	if (ok) {
		cache_fill(rc->rc_cache, cr->cr_fh, cr->cr_fhlen, cr->cr_up_off,
			   nc->nc_data, nc->nc_count, nc->nc_eof,
			   nc->nc_first_fattr, rc->rc_flags);
		look_put(rc, m, cr, nc->nc_data, nc->nc_count, nc->nc_eof,
			 nc->nc_first_fattr);
	}
	if (pc->pc_client && !pc->pc_client->cl_closed) {
		if (ok)
			serve_range(pc->pc_client, pc->pc_cl_xid, cr->cr_cl_off,
				    cr->cr_cl_count, cr->cr_up_off, nc->nc_data,
				    nc->nc_count, nc->nc_first_fattr);
		else /* an error carries no data: it goes back as it came */
			px_client_send(pc->pc_client, m);
	}
	while ((w = cr->cr_waiters)) {
		cr->cr_waiters = w->w_next;
		if (!w->w_client->cl_closed) {
			if (ok) {
				serve_range(w->w_client, w->w_xid, w->w_off,
					    w->w_count, cr->cr_up_off, nc->nc_data,
					    nc->nc_count, nc->nc_first_fattr);
			} else {
				/* Same credential, same answer. */
				struct px_msg *copy = px_msg_new(m->m_len);

				if (copy) {
					memcpy(px_msg_data(copy), px_msg_data(m),
					       m->m_len);
					rpc_put32(px_msg_data(copy), w->w_xid);
					px_client_send(w->w_client, copy);
					px_msg_unref(copy);
				}
			}
		}
		px_client_unref(w->w_client);
		free(w);
	}
}

bool px_rcache_reply(struct px_loop *l, struct px_call *pc, struct px_msg *m,
		     size_t res_off)
{
	struct px_rcache *rc = l->lp_rcache;
	struct note_ctx nc = {.nc_rc = rc, .nc_pc = pc};
	struct rpc_nfs3_visit v = {
		.v_fattr = note_fattr, .v_fh = note_fh,
		.v_status = note_status, .v_read_res = note_read,
	};
	uint8_t *res = px_msg_data(m) + res_off;
	size_t rlen = m->m_len - res_off;
	const uint8_t *fh;
	uint32_t fhlen;

	if (rpc_nfs3_walk_reply(pc->pc_proc, res, rlen, &v, &nc) < 0)
		return false;
	switch (pc->pc_proc) {
	case NFS3_GETATTR: case NFS3_SETATTR: case NFS3_ACCESS:
	case NFS3_READLINK: case NFS3_READ: case NFS3_WRITE: case NFS3_COMMIT:
		if (nc.nc_first_fattr && call_fh(pc, &fh, &fhlen))
			cache_note_handle(rc->rc_cache, fh, fhlen,
					  nc.nc_first_fattr, rc->rc_flags);
		break;
	default:
		break;
	}
	/* Who may read what, as upstream just said. */
	if (pc->pc_proc == NFS3_READ || pc->pc_proc == NFS3_ACCESS) {
		const uint8_t *msg = px_msg_data(pc->pc_req);
		struct rpc_call h;
		uint64_t cred = 0;

		if (rpc_call_parse(msg, pc->pc_req->m_len, &h) == RPC_CALL_OK)
			cred = cred_key(msg, &h);
		if (nc.nc_first_fattr && pc->pc_proc == NFS3_READ)
			grant_set(rc, nc.nc_first_fattr, cred, nc.nc_status == 0);
		if (nc.nc_first_fattr && pc->pc_proc == NFS3_ACCESS &&
		    nc.nc_status == 0) {
			/* ACCESS3resok: obj_attributes, then the access bits. */
			uint32_t bits = rpc_get32(nc.nc_first_fattr +
						  NFS3_FATTR_SIZE);

			grant_set(rc, nc.nc_first_fattr, cred,
				  bits & ACCESS3_READ);
		} else if (nc.nc_first_fattr && nc.nc_status == NFS3ERR_ACCES) {
			grant_set(rc, nc.nc_first_fattr, cred, false);
		}
	}
	/* Writes make cached blocks of the file suspect even when the
	 * timestamps did not move (coarse mtime). */
	if ((pc->pc_proc == NFS3_WRITE || pc->pc_proc == NFS3_SETATTR) &&
	    call_fh(pc, &fh, &fhlen))
		cache_invalidate(rc->rc_cache, fh, fhlen);
	if (!pc->pc_cread)
		return false;
	read_answer(rc, pc, &nc, m);
	return true;
}

void px_rcache_call_free(struct px_cread *cr)
{
	struct px_waiter *w;

	if (!cr)
		return;
	while ((w = cr->cr_waiters)) {
		cr->cr_waiters = w->w_next;
		px_client_unref(w->w_client);
		free(w);
	}
	free(cr);
}

void px_rcache_stats(struct px_loop *l, uint64_t *hits, uint64_t *bytes,
		     uint64_t *fetches, uint64_t *coalesced)
{
	struct px_rcache *rc = l->lp_rcache;

	*hits = rc ? rc->rc_local_hits : 0;
	*bytes = rc ? rc->rc_local_bytes : 0;
	*fetches = rc ? rc->rc_fetches : 0;
	*coalesced = rc ? rc->rc_coalesced : 0;
}

/* The fetch failed locally (upstream gone, drain): its waiters get the
 * same RPC error as the call they were waiting on. */
void px_rcache_fail_waiters(struct px_cread *cr, uint32_t accept_stat)
{
	struct px_waiter *w;

	if (!cr)
		return;
	while ((w = cr->cr_waiters)) {
		struct px_msg *m = px_msg_new(64);
		struct rpc_xdr x;

		cr->cr_waiters = w->w_next;
		if (m && !w->w_client->cl_closed) {
			rpc_xdr_init(&x, px_msg_data(m), 64);
			rpc_reply_accepted(&x, w->w_xid, accept_stat, 0, 0);
			m->m_len = x.x_pos;
			px_client_send(w->w_client, m);
		}
		px_msg_unref(m);
		px_client_unref(w->w_client);
		free(w);
	}
}
