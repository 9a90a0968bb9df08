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
 * --access-ttl seconds and for that version of the file only (its ctime,
 * mode and owners): cache hits never widen who may read what, and a chmod
 * takes effect at once.
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
#define MOD_SLOTS 4096u           /* last modification of a file, by handle hash */
#define LOOK_MS 200u

/* VM-image metadata (see the section below) */
#define MF_BUCKETS 256u
#define MF_MAX 4096u              /* files tracked by name */
#define MF_MIN_SIZE (1u << 20)    /* smaller files are not worth a LOOKUP */
#define MF_RETRY_MS 30000u        /* no metadata: look again after */
#define MF_NAME_MAX 255u
#define META_READ_CHUNK (256u << 10)
#define FETCH_MAX_BYTES (1u << 20)  /* one upstream READ of ours */
#define PF_FETCHES 8u             /* prefetch READs in flight per file */
#define PF_FETCH_BYTES (128u << 10) /* bytes per prefetch READ */
#define PF_MAX_PENDING 64u        /* no prefetch while the link is this busy */
#define RING_BYTES (16u << 20)    /* recently fetched blocks, by content */
#define RING_MAX 256u
#define NFS3ERR_IO 5u
/* Readahead without a profile (issue 19): per-file stream detection */
#define RA_STREAMS 4u             /* streams tracked per file */
#define RA_MIN (128u << 10)       /* first window */
#define RA_MAX (4u << 20)         /* the window doubles up to this */
#define RA_GAP (64u << 10)        /* a read this far past a stream's end continues it */
#define RA_SKIP (256u << 10)      /* ... and this far, once it is sequential */
#define RA_MAX_STRIDE (16u << 20)
#define RA_FETCHES 8u             /* readahead READs in flight per file */
#define RA_FETCH_BYTES (512u << 10)
/* ... and the background fetch of an image's non-zero blocks */
#define BG_FETCHES 2u             /* its READs in flight per file */
#define BG_FETCH_BYTES (128u << 10) /* a client miss queues behind 2 of these at most */
#define BG_HINT_BYTES (4u << 20)  /* fetched first after a client's miss */
#define BG_SCAN 4096u             /* blocks looked at per pump */
#define RT_BUCKETS 5u             /* fetch sizes bs .. 16 bs, for the rate */

struct px_ring {
	uint8_t rg_key[CACHE_HASH_SIZE];
	uint32_t rg_len;               /* 0: empty */
	uint8_t *rg_data;
};

struct px_grant {
	struct cache_ident g_id;
	uint64_t g_cred;
	uint64_t g_until;   /* ms */
	/* the version upstream answered for: a grant holds for it only, so a
	 * chmod/chown (new ctime, mode, owner) revokes it at once (issue 16) */
	uint8_t g_fattr[NFS3_FATTR_SIZE];
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
	/* lp_seq of the last WRITE/SETATTR sent or answered per handle hash
	 * (collisions only drop a fill): a READ sent before it must not
	 * fill the cache, since a version (size, mtime, ctime) need not
	 * change within one timestamp tick. */
	uint64_t rc_modseq[MOD_SLOTS];
	uint64_t rc_local_hits, rc_local_bytes, rc_coalesced, rc_fetches;
	/* VM-image metadata (issue 7) */
	bool rc_meta, rc_prefetch;     /* look for metadata; follow profiles */
	struct px_mfile *rc_mf[MF_BUCKETS]; /* by identity */
	unsigned rc_nmf;
	struct px_ring *rc_ring;       /* recently fetched blocks by content */
	unsigned rc_ring_n, rc_ring_next;
	uint8_t *rc_scratch;           /* one block */
	uint64_t rc_meta_files, rc_meta_bytes, rc_zero_bytes, rc_dedup_hits,
		rc_mismatch, rc_pf_blocks;
	/* readahead and background fetch (issue 19) */
	bool rc_readahead, rc_bg;
	unsigned rc_bg_share;          /* % of rc_link_rate */
	unsigned rc_fg;                /* client and readahead fetches in flight */
	unsigned rc_bg_active;         /* files whose background fetch runs */
	int64_t rc_bg_tokens;          /* bytes the background may still send */
	uint64_t rc_bg_refill_us;
	/* the upstream rate: the quickest fetch seen per size class; the
	 * slope between the smallest and largest class is bytes per second
	 * without the round trip (queueing only makes fetches slower) */
	uint64_t rc_rt_us[RT_BUCKETS], rc_rt_bytes[RT_BUCKETS];
	uint64_t rc_link_rate;         /* bytes/s, 0: not known yet */
	uint64_t rc_waits, rc_misses, rc_ra_blocks, rc_bg_blocks, rc_bg_bytes,
		rc_bg_yields;
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

struct px_mfile;
struct px_ring;
static void mf_free_all(struct px_rcache *rc);

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
		/* Filling is background work: on a busy machine the loop
		 * answering clients runs first (docs/benchmarks.md). */
		.co_writer_nice = 10,
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
	rc->rc_meta = rc->rc_prefetch = true;
	rc->rc_readahead = o->o_readahead;
	rc->rc_bg = o->o_bg_fetch;
	rc->rc_bg_share = o->o_bg_share ? o->o_bg_share : 50;
	rc->rc_ring_n = RING_BYTES / cache_block_size(rc->rc_cache);
	if (rc->rc_ring_n > RING_MAX)
		rc->rc_ring_n = RING_MAX;
	if (!(rc->rc_ring = calloc(rc->rc_ring_n, sizeof(*rc->rc_ring))) ||
	    !(rc->rc_scratch = malloc(cache_block_size(rc->rc_cache)))) {
		cache_close(rc->rc_cache);
		free(rc->rc_ring);
		free(rc);
		return -ENOMEM;
	}
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
	mf_free_all(rc);
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
static uint64_t authsys_key(const struct rpc_authsys *a)
{
	uint64_t k = 1469598103934665603ull;
	uint32_t v[2 + RPC_AUTHSYS_MAX_GIDS];
	uint32_t n = 0;

	v[n++] = a->as_uid;
	v[n++] = a->as_gid;
	/* Group order does not change permissions: sort a copy. */
	for (uint32_t i = 0; i < a->as_ngids && i < RPC_AUTHSYS_MAX_GIDS; i++) {
		uint32_t g = a->as_gids[i], j = n;

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

/* The key of the credential the call goes upstream with (the request
 * record's, identity mapping applied); 0 for AUTH_NONE. */
static uint64_t rq_cred_key(const struct px_req *rq)
{
	return rq->rq_sys ? authsys_key(&rq->rq_cred) : 0;
}

/* By file only: grant_revoke walks every credential's grant of a file. */
static unsigned grant_bucket(const struct cache_ident *id)
{
	uint64_t h = id->ci_fileid * 0x9e3779b97f4a7c15ull ^ id->ci_fsid;

	return (unsigned)(h ^ h >> 29) & (ACC_BUCKETS - 1);
}

static struct px_grant **grant_find(struct px_rcache *rc,
				    const struct cache_ident *id, uint64_t cred)
{
	struct px_grant **pp = &rc->rc_grants[grant_bucket(id)];

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
	memcpy(g->g_fattr, fattr, NFS3_FATTR_SIZE);
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
	if (!g || g->g_until <= px_now_ms())
		return false;
	/* strict: what is served is the latest version seen, and the grant
	 * must be for it.  immutable: the cache serves the version it trusts
	 * whatever upstream shows meanwhile, so only the mode is compared
	 * here and grant_revoke drops grants when a new mode is seen. */
	return rc->rc_flags == CACHE_F_IMMUTABLE
		       ? !memcmp(g->g_fattr + 4, fattr + 4, 4)
		       : cache_fattr_same_access(g->g_fattr, fattr);
}

/* Attributes of a file seen in any reply: grants given under another mode
 * go at once (a chmod seen through any client revokes, in either policy). */
static void grant_revoke(struct px_rcache *rc, const uint8_t *fattr)
{
	struct cache_ident id;
	struct px_grant **pp, *g;

	if (rpc_get32(fattr) != 1)
		return;
	cache_ident_of_fattr(fattr, &id);
	pp = &rc->rc_grants[grant_bucket(&id)];
	while ((g = *pp)) {
		if (g->g_id.ci_fileid == id.ci_fileid &&
		    g->g_id.ci_fsid == id.ci_fsid &&
		    memcmp(g->g_fattr + 4, fattr + 4, 4)) {
			*pp = g->g_next;
			free(g);
		} else
			pp = &g->g_next;
	}
}

/* ---------------------------------------------------------------------- */
/* Replies built here                                                      */

/* A READ3resok reply's bytes before its data: RPC header (24), status,
 * post_op_attr (4 + fattr3), count, eof, data length. */
#define READ_REPLY_HDR (24u + 4u + 4u + NFS3_FATTR_SIZE + 12u)

/*
 * A reply message with room for count data bytes at px_msg_data(m) +
 * READ_REPLY_HDR, so a cache hit is copied from LMDB once, straight into
 * the reply; read_reply_finish() writes the header around it.
 */
static struct px_msg *read_reply_room(uint32_t count)
{
	return px_msg_new(READ_REPLY_HDR + ((count + 3u) & ~3u));
}

static void read_reply_finish(struct px_msg *m, uint32_t xid,
			      const uint8_t *fattr, uint32_t len, bool eof)
{
	struct rpc_xdr x;
	uint32_t pad = ((len + 3u) & ~3u) - len;

	rpc_xdr_init(&x, px_msg_data(m), READ_REPLY_HDR);
	rpc_reply_accepted(&x, xid, RPC_ACC_SUCCESS, 0, 0);
	rpc_xdr_put_u32(&x, 0);            /* NFS3_OK */
	rpc_xdr_put_u32(&x, 1);            /* post_op_attr follows */
	rpc_xdr_put_fixed(&x, fattr, NFS3_FATTR_SIZE);
	rpc_xdr_put_u32(&x, len);
	rpc_xdr_put_u32(&x, eof);
	rpc_xdr_put_u32(&x, len);
	memset(px_msg_data(m) + READ_REPLY_HDR + len, 0, pad);
	m->m_len = READ_REPLY_HDR + len + pad;
}

/* A complete READ3resok reply with data[0..len). */
static struct px_msg *read_reply(uint32_t xid, const uint8_t *fattr,
				 const uint8_t *data, uint32_t len, bool eof)
{
	struct px_msg *m = read_reply_room(len);

	if (!m)
		return NULL;
	memcpy(px_msg_data(m) + READ_REPLY_HDR, data, len);
	read_reply_finish(m, xid, fattr, len, eof);
	return m;
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
/* VM-image metadata (issue 7, docs/metadata.md)                           */
/*                                                                          */
/* A regular file of at least MF_MIN_SIZE looked up by name gets a LOOKUP   */
/* of NAME.gvmeta in its directory (a call of our own); a metadata file    */
/* that parses and matches the image's size and mtime is kept in memory.   */
/* READs of such a file are served here: zero blocks from nothing, other   */
/* blocks from the cache (stored by content hash, shared between clones)   */
/* or from upstream through READs of our own, each block checked against   */
/* its SHA-256 before anyone sees or stores it.  A profile in the metadata */
/* drives a background prefetch, a few fetches at a time.                  */


enum mf_state {
	MF_NAMED,   /* name known, metadata not looked for (yet, or again) */
	MF_LOOKING, /* LOOKUP/READ of NAME.gvmeta in flight */
	MF_READY,   /* valid metadata held */
	MF_NONE,    /* none, stale or malformed: plain cache until mf_retry_at */
};

/* Parsed metadata with the image version it was checked against; fetches
 * in flight keep a reference, so a version change can drop it at once. */
struct px_meta {
	struct cache_meta *pm_m;
	unsigned pm_refs;
	uint32_t pm_owner;  /* the image's owner: the domain blocks are shared in */
};

struct px_mreq;

/* One stream of reads in a file (a guest reads many files of its disk
 * at once, so a few per image): where it stands, its step and window. */
struct px_stream {
	uint64_t st_last;              /* offset of its last read */
	uint64_t st_next;              /* where a sequential read goes on */
	int64_t st_stride;             /* 0: none (yet) */
	uint32_t st_hits;              /* reads that followed the pattern */
	uint32_t st_win;               /* readahead window, bytes */
	uint64_t st_ra;                /* readahead issued up to here */
	unsigned st_used;              /* LRU clock, 0: free */
};

enum mf_bg_state { BG_IDLE, BG_RUN, BG_DONE };

struct px_mfile {
	struct px_mfile *mf_next;      /* hash chain by identity */
	struct cache_ident mf_id;
	uint8_t mf_fh[NFS3_FHSIZE];
	uint32_t mf_fhlen;
	uint8_t mf_dir[NFS3_FHSIZE];
	uint32_t mf_dirlen;
	char mf_name[MF_NAME_MAX + 1];
	uint8_t mf_fattr[NFS3_FATTR_SIZE]; /* latest attributes seen */
	enum mf_state mf_state;
	uint64_t mf_retry_at;
	struct rpc_authsys mf_cred;    /* of the LOOKUP that named it */
	/* discovery */
	uint8_t mf_mattr[NFS3_FATTR_SIZE]; /* of NAME.gvmeta, from its LOOKUP */
	uint8_t mf_bad[16];            /* mtime+ctime of metadata that failed a */
	bool mf_bad_set;               /* ... hash check: not loaded again */
	uint8_t *mf_buf;
	uint32_t mf_buflen, mf_reads;  /* metadata bytes; READs outstanding */
	bool mf_readfail;
	struct px_mreq *mf_parked;     /* READs waiting for discovery */
	/* MF_READY */
	struct px_meta *mf_meta;
	struct px_mfetch *mf_fetches;  /* our READs in flight for it */
	unsigned mf_npf;               /* ... of which prefetch */
	size_t mf_pf_next;             /* profile position */
	bool mf_pf_stop;
	struct px_loop *mf_loop;
	/* readahead (issue 19) */
	struct px_stream mf_st[RA_STREAMS];
	unsigned mf_st_clock, mf_nra;
	bool mf_ra_stop;
	/* background fetch of the non-zero blocks, in offset order, blocks
	 * after a client's last miss first */
	enum mf_bg_state mf_bg;
	unsigned mf_nbg;
	uint64_t mf_bg_next, mf_bg_hint;
	uint32_t mf_bg_hint_left;
	uint64_t mf_bg_t0, mf_bg_nblocks, mf_bg_bytes;
};

/* A client READ answered here. */
struct px_mreq {
	struct px_mreq *mr_next;       /* mf_parked */
	struct px_mfile *mr_mf;
	struct px_client *mr_client;   /* a ref */
	uint32_t mr_xid;
	uint8_t mr_fh[NFS3_FHSIZE];
	uint32_t mr_fhlen;
	uint64_t mr_off;
	uint32_t mr_count;             /* as asked */
	uint32_t mr_len;               /* after clipping at EOF */
	struct rpc_authsys mr_cred;
	uint64_t mr_credkey;
	uint8_t mr_fattr[NFS3_FATTR_SIZE];
	unsigned mr_pending;           /* fetches it waits for */
	bool mr_missed;                /* it sent a fetch of its own */
	uint32_t mr_status;            /* NFS3 error to answer, 0 */
	uint32_t mr_rpcerr;            /* RPC accept_stat to answer, 0 */
	uint8_t *mr_buf;
};

struct px_mwait {
	struct px_mwait *mw_next;
	struct px_mreq *mw_req;
};

/* Why a READ of ours was sent: for a client waiting (demand), along a
 * profile, ahead of a stream, or in the background. */
enum mt_kind { MT_DEMAND, MT_PROFILE, MT_AHEAD, MT_BG };

/* One upstream READ of ours: blocks [mt_blk, mt_blk + mt_n). */
struct px_mfetch {
	struct px_mfetch *mt_next;     /* mf_fetches */
	struct px_mfile *mt_mf;
	struct px_meta *mt_meta;       /* a ref, or NULL */
	uint8_t mt_fh[NFS3_FHSIZE];
	uint32_t mt_fhlen;
	uint64_t mt_blk;
	uint32_t mt_n;                 /* 0: an access probe of one byte */
	uint64_t mt_probe_off;
	struct rpc_authsys mt_cred;
	uint64_t mt_credkey;
	enum mt_kind mt_kind;
	bool mt_retry;
	uint64_t mt_sent_us;
	struct px_mwait *mt_waiters;
};


static struct px_mfile **mf_slot(struct px_rcache *rc,
				 const struct cache_ident *id)
{
	struct px_mfile **pp =
		&rc->rc_mf[(id->ci_fileid * 31u + id->ci_fsid) % MF_BUCKETS];

	for (; *pp; pp = &(*pp)->mf_next)
		if ((*pp)->mf_id.ci_fileid == id->ci_fileid &&
		    (*pp)->mf_id.ci_fsid == id->ci_fsid)
			break;
	return pp;
}

static void meta_unref(struct px_meta *pm)
{
	if (pm && !--pm->pm_refs) {
		cache_meta_free(pm->pm_m);
		free(pm);
	}
}

static uint64_t now_us(void)
{
	struct timespec ts;

	px_now(&ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The background fetch of mf ends (logged when it was running). */
static void bg_stop(struct px_mfile *mf, const char *why)
{
	struct px_rcache *rc = mf->mf_loop->lp_rcache;

	if (mf->mf_bg != BG_RUN)
		return;
	mf->mf_bg = BG_IDLE;
	rc->rc_bg_active--;
	px_info("background fetch of %s stopped (%s): %llu blocks, %.1f MiB "
		"fetched in %.1f s", mf->mf_name, why,
		(unsigned long long)mf->mf_bg_nblocks,
		(double)mf->mf_bg_bytes / 1048576.0,
		(double)(px_now_ms() - mf->mf_bg_t0) / 1000.0);
}

/* The image's version moved (or discovery failed): metadata is dropped;
 * the next READ looks again.  Fetches in flight keep their reference. */
static void mf_drop_meta(struct px_mfile *mf, enum mf_state st)
{
	meta_unref(mf->mf_meta);
	mf->mf_meta = NULL;
	mf->mf_state = st;
	mf->mf_pf_stop = true;
	bg_stop(mf, "metadata set aside");
	if (st == MF_NONE)
		mf->mf_retry_at = px_now_ms() + MF_RETRY_MS;
}

/* note_fattr: keep each tracked image's attributes current. */
static void mf_note_fattr(struct px_rcache *rc, const uint8_t *fattr)
{
	struct cache_ident id;
	struct px_mfile *mf;

	if (rc->rc_nmf == 0 || rpc_get32(fattr) != 1)
		return;
	cache_ident_of_fattr(fattr, &id);
	if (!(mf = *mf_slot(rc, &id)))
		return;
	/* mtime and ctime are adjacent: ctime moves with a chmod or chown,
	 * which the metadata's trust depends on (its owner, docs/metadata.md) */
	if (!memcmp(mf->mf_fattr + NFS3_FATTR_SIZE_OFF,
		    fattr + NFS3_FATTR_SIZE_OFF, 8) &&
	    !memcmp(mf->mf_fattr + NFS3_FATTR_MTIME, fattr + NFS3_FATTR_MTIME,
		    16)) {
		memcpy(mf->mf_fattr, fattr, NFS3_FATTR_SIZE);
		return;
	}
	memcpy(mf->mf_fattr, fattr, NFS3_FATTR_SIZE);
	if (mf->mf_state == MF_READY) {
		px_info("metadata of %s: the image changed (size, mtime or "
			"ctime); metadata set aside until looked up again",
			mf->mf_name);
		mf_drop_meta(mf, MF_NAMED);
	} else if (mf->mf_state == MF_NONE) {
		mf->mf_state = MF_NAMED; /* its metadata may be new too */
	}
}

static void mf_free_all(struct px_rcache *rc)
{
	if (rc->rc_meta_files || rc->rc_nmf)
		px_info("metadata: %llu files with metadata; %llu bytes served "
			"by them (%llu zero, never fetched), %llu blocks from "
			"other images' chunks, %llu prefetched, %llu read ahead, "
			"%llu fetched in the background, %llu failed their "
			"hash", (unsigned long long)rc->rc_meta_files,
			(unsigned long long)rc->rc_meta_bytes,
			(unsigned long long)rc->rc_zero_bytes,
			(unsigned long long)rc->rc_dedup_hits,
			(unsigned long long)rc->rc_pf_blocks,
			(unsigned long long)rc->rc_ra_blocks,
			(unsigned long long)rc->rc_bg_blocks,
			(unsigned long long)rc->rc_mismatch);
	for (unsigned i = 0; i < MF_BUCKETS; i++)
		while (rc->rc_mf[i]) {
			struct px_mfile *mf = rc->rc_mf[i];

			rc->rc_mf[i] = mf->mf_next;
			meta_unref(mf->mf_meta);
			free(mf->mf_buf);
			free(mf);
		}
	for (unsigned i = 0; i < rc->rc_ring_n; i++)
		free(rc->rc_ring[i].rg_data);
	free(rc->rc_ring);
	free(rc->rc_scratch);
}

/* ---------------------------------------------------------------------- */
/* Recently fetched blocks by content: fills reach LMDB a few ms later, and
 * a prefetched block must not be fetched again meanwhile. */

static struct px_ring *ring_find(struct px_rcache *rc, const uint8_t *key,
				 uint32_t len)
{
	for (unsigned i = 0; i < rc->rc_ring_n; i++)
		if (rc->rc_ring[i].rg_len == len &&
		    !memcmp(rc->rc_ring[i].rg_key, key, CACHE_HASH_SIZE))
			return &rc->rc_ring[i];
	return NULL;
}

static void ring_put(struct px_rcache *rc, const uint8_t *key,
		     const uint8_t *data, uint32_t len)
{
	struct px_ring *r;

	if (!rc->rc_ring_n || ring_find(rc, key, len))
		return;
	r = &rc->rc_ring[rc->rc_ring_next++ % rc->rc_ring_n];
	if (!r->rg_data && !(r->rg_data = malloc(cache_block_size(rc->rc_cache))))
		return;
	memcpy(r->rg_key, key, CACHE_HASH_SIZE);
	memcpy(r->rg_data, data, len);
	r->rg_len = len;
}

/* The key a hashed block is shared under (ring, chunks): its hash in the
 * domain of the image's owner.  false: share nothing for it. */
static bool share_key(const struct px_meta *pm, const uint8_t *hash,
		      uint8_t *out)
{
	return pm && cache_meta_dedup_key(pm->pm_owner, hash, out) == 0;
}

/* ---------------------------------------------------------------------- */
/* Answering                                                               */

static void mreq_free(struct px_mreq *mr)
{
	px_client_unref(mr->mr_client);
	free(mr->mr_buf);
	free(mr);
}

static void mreq_finish(struct px_rcache *rc, struct px_mreq *mr)
{
	struct px_client *c = mr->mr_client;

	if (c->cl_closed) {
		/* nobody to answer */
	} else if (mr->mr_rpcerr) {
		px_client_rpc_error(c, mr->mr_xid, mr->mr_rpcerr);
	} else if (mr->mr_status) {
		struct px_msg *m = px_msg_new(64);
		struct rpc_xdr x;

		if (m) {
			rpc_xdr_init(&x, px_msg_data(m), 64);
			px_nfs3_error_reply(&x, mr->mr_xid, RPC_PROG_NFS, NFS3_READ,
					    mr->mr_status);
			m->m_len = x.x_pos;
			px_client_send(c, m);
			px_msg_unref(m);
		}
	} else {
		uint64_t size = rpc_get64(mr->mr_fattr + NFS3_FATTR_SIZE_OFF);

		send_read(c, mr->mr_xid, mr->mr_fattr, mr->mr_buf, mr->mr_len,
			  mr->mr_off + mr->mr_len >= size);
		rc->rc_meta_bytes += mr->mr_len;
	}
	mreq_free(mr);
}

/* ---------------------------------------------------------------------- */
/* Our own READs                                                           */

static void fetch_cb(void *ctx, int err, uint8_t *res, size_t len);

static bool fetch_has(const struct px_mfetch *mt, const struct px_mreq *mr)
{
	for (const struct px_mwait *w = mt->mt_waiters; w; w = w->mw_next)
		if (w->mw_req == mr)
			return true;
	return false;
}

static int fetch_wait(struct px_mfetch *mt, struct px_mreq *mr)
{
	struct px_mwait *w;

	if (fetch_has(mt, mr))
		return 0;
	if (!(w = malloc(sizeof(*w))))
		return -ENOMEM;
	w->mw_req = mr;
	w->mw_next = mt->mt_waiters;
	mt->mt_waiters = w;
	mr->mr_pending++;
	return 0;
}

/* The fetch in flight that holds block blk, or NULL. */
static struct px_mfetch *fetch_find(struct px_mfile *mf, uint64_t blk)
{
	for (struct px_mfetch *mt = mf->mf_fetches; mt; mt = mt->mt_next)
		if (mt->mt_n && blk >= mt->mt_blk && blk < mt->mt_blk + mt->mt_n)
			return mt;
	return NULL;
}

/* The fetch in flight that mr may wait on for block blk: any one once
 * upstream let mr's credential read this version (auth); before that only
 * one sent with mr's own credential, since its answer, bytes or refusal,
 * is then mr's answer too.  Nodes of a herd booting one image at once miss
 * the same first blocks before any of them holds a grant (issue 19). */
static struct px_mfetch *fetch_joinable(struct px_mfile *mf, uint64_t blk,
					const struct px_mreq *mr, bool auth)
{
	for (struct px_mfetch *mt = mf->mf_fetches; mt; mt = mt->mt_next)
		if (mt->mt_n && blk >= mt->mt_blk && blk < mt->mt_blk + mt->mt_n &&
		    (auth || mt->mt_credkey == mr->mr_credkey))
			return mt;
	return NULL;
}

/* Send READ(fh, off, count) of our own for mt.  On failure mt is freed
 * and its waiters (none yet: callers attach after) are untouched. */
static struct px_mfetch *fetch_new(struct px_loop *l, struct px_mfile *mf,
				   const uint8_t *fh, uint32_t fhlen,
				   uint64_t blk, uint32_t n,
				   const struct rpc_authsys *cred,
				   enum mt_kind kind, uint64_t probe_off)
{
	struct px_rcache *rc = l->lp_rcache;
	uint32_t bs = cache_block_size(rc->rc_cache);
	uint8_t args[4 + NFS3_FHSIZE + 12];
	struct px_mfetch *mt = calloc(1, sizeof(*mt));
	struct rpc_xdr x;
	uint64_t off = n ? blk * bs : probe_off, cnt = n ? (uint64_t)n * bs : 1;

	if (!mt)
		return NULL;
	mt->mt_mf = mf;
	memcpy(mt->mt_fh, fh, fhlen);
	mt->mt_fhlen = fhlen;
	mt->mt_blk = blk;
	mt->mt_n = n;
	mt->mt_cred = *cred;
	mt->mt_credkey = authsys_key(cred);
	mt->mt_kind = kind;
	mt->mt_sent_us = now_us();
	if (mf->mf_meta) {
		mt->mt_meta = mf->mf_meta;
		mf->mf_meta->pm_refs++;
	}
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, fh, fhlen);
	rpc_xdr_put_u64(&x, off);
	rpc_xdr_put_u32(&x, (uint32_t)cnt);
	if (x.x_err || px_icall(l, RPC_PROG_NFS, NFS3_READ, cred, args, x.x_pos,
				fetch_cb, mt)) {
		meta_unref(mt->mt_meta);
		free(mt);
		return NULL;
	}
	mt->mt_next = mf->mf_fetches;
	mf->mf_fetches = mt;
	switch (kind) {
	case MT_DEMAND:
		rc->rc_fg++;
		if (n) { /* the background fetch goes on from here first */
			mf->mf_bg_hint = blk + n;
			mf->mf_bg_hint_left = BG_HINT_BYTES / bs;
		}
		break;
	case MT_AHEAD: rc->rc_fg++; mf->mf_nra++; break;
	case MT_PROFILE: mf->mf_npf++; break;
	case MT_BG: mf->mf_nbg++; break;
	}
	rc->rc_fetches++;
	return mt;
}

/* A one-byte READ at off with mr's credential: upstream says whether mr
 * may read the file (the reply hook records the grant). */
static int fetch_probe(struct px_loop *l, struct px_mreq *mr)
{
	struct px_mfetch *mt = fetch_new(l, mr->mr_mf, mr->mr_fh, mr->mr_fhlen,
					 0, 0, &mr->mr_cred, MT_DEMAND, mr->mr_off);

	if (!mt)
		return -ENOMEM;
	mt->mt_probe_off = mr->mr_off;
	return fetch_wait(mt, mr);
}

/* Copy the part of block data [bstart, bstart+blen) that mr wants. */
static void mreq_copy(struct px_mreq *mr, uint64_t bstart, const uint8_t *data,
		      uint32_t blen)
{
	uint64_t s = bstart > mr->mr_off ? bstart : mr->mr_off;
	uint64_t e = bstart + blen < mr->mr_off + mr->mr_len
			     ? bstart + blen
			     : mr->mr_off + mr->mr_len;

	if (s < e)
		memcpy(mr->mr_buf + (s - mr->mr_off), data + (s - bstart), e - s);
}

static bool mreq_wants(const struct px_mreq *mr, uint64_t bstart, uint32_t blen)
{
	return bstart < mr->mr_off + mr->mr_len && bstart + blen > mr->mr_off;
}

/* Retry: one READ per block that failed its check, marked as the last
 * try; the waiters that want the block follow it. */
static void fetch_retry(struct px_loop *l, struct px_mfetch *mt, uint64_t b,
			uint32_t blen)
{
	struct px_mfile *mf = mt->mt_mf;
	struct px_mfetch *rt = fetch_new(l, mf, mt->mt_fh, mt->mt_fhlen, b, 1,
					 &mt->mt_cred, MT_DEMAND, 0);

	if (rt) {
		rt->mt_retry = true;
		if (mt->mt_meta && rt->mt_meta != mt->mt_meta) {
			/* verify against what the first try was checked with */
			meta_unref(rt->mt_meta);
			rt->mt_meta = mt->mt_meta;
			mt->mt_meta->pm_refs++;
		}
	}
	for (struct px_mwait *w = mt->mt_waiters; w; w = w->mw_next) {
		if (!mreq_wants(w->mw_req, b * cache_block_size(
						       l->lp_rcache->rc_cache),
				blen))
			continue;
		if (!rt || fetch_wait(rt, w->mw_req))
			w->mw_req->mr_status = NFS3ERR_IO;
	}
}

/* A block of a successful reply: check it, store it, hand it out. */
static void fetch_block(struct px_loop *l, struct px_mfetch *mt, uint64_t b,
			const uint8_t *data, uint32_t blen, bool have,
			const uint8_t *fattr, bool eof)
{
	struct px_rcache *rc = l->lp_rcache;
	struct px_mfile *mf = mt->mt_mf;
	uint32_t bs = cache_block_size(rc->rc_cache);
	struct cache_meta *m = mt->mt_meta ? mt->mt_meta->pm_m : NULL;
	uint8_t key[CACHE_HASH_SIZE], skey[CACHE_HASH_SIZE];
	enum cache_meta_kind kind = CACHE_META_UNKNOWN;

	/* metadata of another version than the data is ignored */
	if (m && cache_meta_check_fattr(m, fattr))
		m = NULL;
	if (m)
		kind = cache_meta_kind(m, b, key);
	if (!have) {
		/* upstream's own doing, not the metadata's: once more, then
		 * the error (there are no bytes to serve) */
		px_warn_rl("%s block %llu (offset %llu): short read from "
			   "upstream; %s", mf->mf_name, (unsigned long long)b,
			   (unsigned long long)(b * bs),
			   mt->mt_retry ? "answering NFS3ERR_IO"
					: "fetching it again");
		if (!mt->mt_retry && !l->lp_draining) {
			fetch_retry(l, mt, b, blen);
			return;
		}
		for (struct px_mwait *w = mt->mt_waiters; w; w = w->mw_next)
			if (mreq_wants(w->mw_req, b * bs, blen))
				w->mw_req->mr_status = NFS3ERR_IO;
		return;
	}
	if (m && cache_meta_verify(m, b, data, blen)) {
		/* Upstream is the authority on the file's bytes; metadata is
		 * a hint that proved wrong (forged for a file of one's own,
		 * or changed with its times put back): serve upstream's bytes
		 * as a plain read, share nothing, and drop this metadata for
		 * good (until NAME.gvmeta itself changes).  Never NFS3ERR_IO
		 * for it (issue 16). */
		rc->rc_mismatch++;
		px_warn_rl("%s block %llu (offset %llu): hash mismatch with its "
			   "metadata; metadata %s%s set aside, serving the bytes "
			   "upstream sent", mf->mf_name, (unsigned long long)b,
			   (unsigned long long)(b * bs), mf->mf_name,
			   CACHE_META_SUFFIX);
		if (mf->mf_meta && mf->mf_meta == mt->mt_meta) {
			memcpy(mf->mf_bad, mf->mf_mattr + NFS3_FATTR_MTIME, 16);
			mf->mf_bad_set = true;
			mf_drop_meta(mf, MF_NONE);
		}
		kind = CACHE_META_UNKNOWN;
	}
	if (kind == CACHE_META_HASHED && share_key(mt->mt_meta, key, skey)) {
		cache_fill_hashed(rc->rc_cache, mt->mt_fh, mt->mt_fhlen, b, data,
				  blen, skey, fattr, rc->rc_flags);
		ring_put(rc, skey, data, blen);
	} else if (kind != CACHE_META_ZERO) {
		cache_fill(rc->rc_cache, mt->mt_fh, mt->mt_fhlen, b * bs, data,
			   blen, eof, fattr, rc->rc_flags);
	}
	switch (mt->mt_kind) {
	case MT_PROFILE: rc->rc_pf_blocks++; break;
	case MT_AHEAD: rc->rc_ra_blocks++; break;
	case MT_BG:
		rc->rc_bg_blocks++;
		rc->rc_bg_bytes += blen;
		mf->mf_bg_nblocks++;
		mf->mf_bg_bytes += blen;
		break;
	case MT_DEMAND: break;
	}
	for (struct px_mwait *w = mt->mt_waiters; w; w = w->mw_next)
		if (mreq_wants(w->mw_req, b * bs, blen))
			mreq_copy(w->mw_req, b * bs, data, blen);
}

/* Upstream refused the READ (status): a waiter that asked with the same
 * credential gets the same answer; one that had joined with another
 * credential asks again with its own. */
static void fetch_refused(struct px_loop *l, struct px_mfetch *mt,
			  uint32_t status)
{
	uint32_t bs = cache_block_size(l->lp_rcache->rc_cache);

	if (mt->mt_kind != MT_DEMAND) {
		struct px_mfile *mf = mt->mt_mf;
		char why[48];

		/* speculation with this credential is refused: all of it stops */
		mf->mf_pf_stop = mf->mf_ra_stop = true;
		snprintf(why, sizeof(why), "upstream answered %u", status);
		bg_stop(mf, why);
		px_info_rl("prefetch of %s stopped: upstream answered %u",
			   mf->mf_name, status);
	}
	for (struct px_mwait *w = mt->mt_waiters; w; w = w->mw_next) {
		struct px_mreq *mr = w->mw_req;
		struct px_mfetch *nt;

		if (mr->mr_credkey == mt->mt_credkey || !mt->mt_n ||
		    l->lp_draining) {
			mr->mr_status = status;
			continue;
		}
		nt = fetch_new(l, mt->mt_mf, mr->mr_fh, mr->mr_fhlen, mt->mt_blk,
			       mt->mt_n, &mr->mr_cred, MT_DEMAND, 0);
		if (!nt || fetch_wait(nt, mr))
			mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
		(void)bs;
	}
}

static void pf_pump(struct px_loop *l, struct px_mfile *mf);
static void bg_pump_all(struct px_loop *l);

static void fetch_unlink(struct px_mfetch *mt)
{
	struct px_mfile *mf = mt->mt_mf;
	struct px_mfetch **pp = &mf->mf_fetches;
	struct px_rcache *rc = mf->mf_loop->lp_rcache;

	while (*pp && *pp != mt)
		pp = &(*pp)->mt_next;
	if (*pp)
		*pp = mt->mt_next;
	switch (mt->mt_kind) {
	case MT_DEMAND: rc->rc_fg--; break;
	case MT_AHEAD: rc->rc_fg--; mf->mf_nra--; break;
	case MT_PROFILE: mf->mf_npf--; break;
	case MT_BG: mf->mf_nbg--; break;
	}
}

/* A fetch of bytes took us microseconds: keep the quickest per size
 * class and fit the upstream rate between the classes. */
static void rate_sample(struct px_rcache *rc, uint64_t bytes, uint64_t us)
{
	uint32_t bs = cache_block_size(rc->rc_cache);
	unsigned i = 0, lo, hi;

	while (i + 1 < RT_BUCKETS && ((uint64_t)bs << i) < bytes)
		i++;
	if (!us || (rc->rc_rt_us[i] && rc->rc_rt_us[i] <= us))
		return;
	rc->rc_rt_us[i] = us;
	rc->rc_rt_bytes[i] = bytes;
	for (lo = 0; lo < RT_BUCKETS && !rc->rc_rt_us[lo]; lo++)
		;
	for (hi = RT_BUCKETS - 1; hi > lo && !rc->rc_rt_us[hi]; hi--)
		;
	if (hi <= lo || rc->rc_rt_bytes[hi] < 2 * rc->rc_rt_bytes[lo] ||
	    rc->rc_rt_us[hi] <= rc->rc_rt_us[lo])
		return;
	rc->rc_link_rate = (rc->rc_rt_bytes[hi] - rc->rc_rt_bytes[lo]) *
			   1000000u / (rc->rc_rt_us[hi] - rc->rc_rt_us[lo]);
}

static void fetch_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_mfetch *mt = ctx;
	struct px_mfile *mf = mt->mt_mf;
	struct px_loop *l = mf->mf_loop;
	struct px_rcache *rc = l->lp_rcache;
	uint32_t bs = cache_block_size(rc->rc_cache);
	const uint8_t *fattr = NULL, *data = NULL;
	uint32_t status = 0, dlen = 0;
	bool eof = false;
	struct px_mwait *w;

	fetch_unlink(mt);
	if (err == 0 && len >= 8) {
		size_t p = 8;

		status = rpc_get32(res);
		if (rpc_get32(res + 4) && len >= 8 + NFS3_FATTR_SIZE) {
			fattr = res + 8;
			p += NFS3_FATTR_SIZE;
		}
		if (status == 0 && len >= p + 12) {
			eof = rpc_get32(res + p + 4) != 0;
			dlen = rpc_get32(res + p + 8);
			data = res + p + 12;
			if (dlen > len - p - 12)
				err = -EBADMSG;
		} else if (status == 0)
			err = -EBADMSG;
	} else if (err == 0)
		err = -EBADMSG;
	if (err < 0) {
		mf->mf_pf_stop = mf->mf_pf_stop || mt->mt_kind == MT_PROFILE;
		if (mt->mt_kind == MT_BG)
			bg_stop(mf, strerror(-err));
		for (w = mt->mt_waiters; w; w = w->mw_next)
			w->mw_req->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
	} else if (status) {
		fetch_refused(l, mt, status);
	} else if (!fattr) {
		/* data without a version cannot be checked or stored */
		for (w = mt->mt_waiters; w; w = w->mw_next)
			w->mw_req->mr_status = NFS3ERR_IO;
	} else {
		uint64_t size = rpc_get64(fattr + NFS3_FATTR_SIZE_OFF);

		if (mt->mt_n && dlen >= (uint64_t)mt->mt_n * bs)
			rate_sample(rc, dlen, now_us() - mt->mt_sent_us);
		for (uint32_t i = 0; i < mt->mt_n; i++) {
			uint64_t b = mt->mt_blk + i;
			uint32_t blen = cache_blk_len(b, bs, size);

			if (!blen)
				break;
			fetch_block(l, mt, b, data + (uint64_t)i * bs, blen,
				    (uint64_t)i * bs + blen <= dlen, fattr, eof);
		}
	}
	while ((w = mt->mt_waiters)) {
		mt->mt_waiters = w->mw_next;
		if (!--w->mw_req->mr_pending)
			mreq_finish(rc, w->mw_req);
		free(w);
	}
	meta_unref(mt->mt_meta);
	free(mt);
	if (err >= 0 && !l->lp_draining) {
		pf_pump(l, mf);
		if (!rc->rc_fg)
			bg_pump_all(l);
		else if (rc->rc_bg_active)
			rc->rc_bg_yields++; /* it would have gone on */
	}
}

/* ---------------------------------------------------------------------- */
/* Serving a READ of a file with metadata                                  */

/*
 * A block held under this file's sharing key (the ring of recent fetches,
 * or another image's chunk in the cache): copied to data only when its
 * bytes match the hash this file's own trusted metadata gives for block b.
 * The key puts the owner in (share_key), so another user's blocks are
 * never found; the check makes sure what is served is what the metadata
 * says, whoever stored the chunk.
 */
static bool shared_block(struct px_rcache *rc, const struct px_meta *pm,
			 uint64_t b, const uint8_t *key, uint32_t blen,
			 uint8_t *skey, const uint8_t **data)
{
	struct px_ring *rg;

	if (!share_key(pm, key, skey))
		return false;
	if ((rg = ring_find(rc, skey, blen))) {
		*data = rg->rg_data; /* verified when fetched, a moment ago */
		return true;
	}
	if (cache_read_chunk(rc->rc_cache, skey, rc->rc_scratch, blen) ||
	    cache_meta_verify(pm->pm_m, b, rc->rc_scratch, blen))
		return false;
	*data = rc->rc_scratch;
	return true;
}

/* One block of the request that the cache did not have: zero, a chunk
 * another image holds, a fetch in flight, or part of a new fetch run. */
static void mreq_block(struct px_loop *l, struct px_mreq *mr,
		       const struct px_meta *pm, bool auth, uint64_t b,
		       uint64_t *run, uint32_t *nrun)
{
	struct px_rcache *rc = l->lp_rcache;
	struct cache_meta *m = pm ? pm->pm_m : NULL;
	uint32_t bs = cache_block_size(rc->rc_cache);
	uint64_t size = rpc_get64(mr->mr_fattr + NFS3_FATTR_SIZE_OFF);
	uint32_t blen = cache_blk_len(b, bs, size);
	uint8_t key[CACHE_HASH_SIZE], skey[CACHE_HASH_SIZE];
	const uint8_t *data;
	enum cache_meta_kind kind =
		m ? cache_meta_kind(m, b, key) : CACHE_META_UNKNOWN;
	struct px_mfetch *mt;

	if (!blen)
		return;
	if (kind == CACHE_META_ZERO) {
		uint64_t s = b * bs > mr->mr_off ? b * bs : mr->mr_off;
		uint64_t e = b * bs + blen < mr->mr_off + mr->mr_len
				     ? b * bs + blen
				     : mr->mr_off + mr->mr_len;

		memset(mr->mr_buf + (s - mr->mr_off), 0, e - s);
		rc->rc_zero_bytes += e - s;
		return;
	}
	if (auth && kind == CACHE_META_HASHED &&
	    shared_block(rc, pm, b, key, blen, skey, &data)) {
		mreq_copy(mr, b * bs, data, blen);
		if (data == rc->rc_scratch) {
			/* another image's identical block: link it to this one */
			cache_fill_hashed(rc->rc_cache, mr->mr_fh, mr->mr_fhlen, b,
					  data, blen, skey, mr->mr_fattr,
					  rc->rc_flags);
			ring_put(rc, skey, data, blen);
			rc->rc_dedup_hits++;
		}
		return;
	}
	if ((mt = fetch_joinable(mr->mr_mf, b, mr, auth))) {
		if (!fetch_has(mt, mr))
			rc->rc_coalesced++; /* a READ in flight serves this one */
		if (fetch_wait(mt, mr))
			mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
		return;
	}
	if (*nrun && *run + *nrun == b && (uint64_t)(*nrun + 1) * bs <= FETCH_MAX_BYTES) {
		(*nrun)++;
		return;
	}
	if (*nrun && (!(mt = fetch_new(l, mr->mr_mf, mr->mr_fh, mr->mr_fhlen,
				       *run, *nrun, &mr->mr_cred, MT_DEMAND, 0)) ||
		      fetch_wait(mt, mr)))
		mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
	mr->mr_missed |= *nrun != 0;
	*run = b;
	*nrun = 1;
}

#define MREQ_MAXMISS 64u

static bool pf_needed(struct px_loop *l, struct px_mfile *mf,
		      const struct px_meta *pm, uint64_t b, uint64_t size);
static void ra_note(struct px_loop *l, struct px_mreq *mr,
		    const struct px_meta *pm);

static void mreq_start(struct px_loop *l, struct px_mreq *mr)
{
	struct px_rcache *rc = l->lp_rcache;
	struct px_mfile *mf = mr->mr_mf;
	uint32_t bs = cache_block_size(rc->rc_cache), got, nmiss = 0, nrun = 0;
	const struct px_meta *pm = mf->mf_state == MF_READY ? mf->mf_meta : NULL;
	struct cache_range miss[MREQ_MAXMISS];
	uint8_t fa[NFS3_FATTR_SIZE];
	uint64_t size, run = 0;
	bool auth, eof, all = true;

	memcpy(mr->mr_fattr, mf->mf_fattr, NFS3_FATTR_SIZE);
	size = rpc_get64(mr->mr_fattr + NFS3_FATTR_SIZE_OFF);
	mr->mr_len = mr->mr_off >= size ? 0
		     : size - mr->mr_off < mr->mr_count ? (uint32_t)(size - mr->mr_off)
							: mr->mr_count;
	if (!(mr->mr_buf = malloc(mr->mr_len ? mr->mr_len : 1))) {
		mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
		mreq_finish(rc, mr);
		return;
	}
	auth = grant_ok(rc, mr->mr_fattr, mr->mr_credkey);
	if (auth && mr->mr_len &&
	    cache_read_partial(rc->rc_cache, mr->mr_fh, mr->mr_fhlen, mr->mr_off,
			       mr->mr_len, mr->mr_buf, &got, &eof, fa, miss,
			       MREQ_MAXMISS, &nmiss) == 0 &&
	    cache_fattr_same_version(fa, mr->mr_fattr))
		all = false;
	if (all && mr->mr_len) {
		uint64_t s = mr->mr_off / bs * bs;

		miss[0].cr_off = s;
		miss[0].cr_len = mr->mr_off + mr->mr_len - s;
		nmiss = 1;
	} else if (all)
		nmiss = 0;
	mr->mr_pending++; /* held while the blocks are dispatched */
	for (unsigned i = 0; i < nmiss; i++)
		for (uint64_t b = miss[i].cr_off / bs;
		     b * bs < miss[i].cr_off + miss[i].cr_len; b++)
			mreq_block(l, mr, pm, auth, b, &run, &nrun);
	if (nrun) {
		struct px_mfetch *mt = fetch_new(l, mf, mr->mr_fh, mr->mr_fhlen,
						 run, nrun, &mr->mr_cred, MT_DEMAND, 0);

		if (!mt || fetch_wait(mt, mr))
			mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
		mr->mr_missed = true;
	}
	/* nothing went upstream for a credential without a grant: ask */
	if (!auth && mr->mr_pending == 1 && !mr->mr_rpcerr &&
	    fetch_probe(l, mr))
		mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
	if (mr->mr_pending > 1)
		rc->rc_waits++;
	rc->rc_misses += mr->mr_missed;
	/* after the client's own fetches, so that those go first */
	if (pm && auth && rc->rc_readahead && !mf->mf_ra_stop &&
	    !l->lp_draining)
		ra_note(l, mr, pm);
	if (!--mr->mr_pending)
		mreq_finish(rc, mr);
}

/* ---------------------------------------------------------------------- */
/* Prefetch along the profile                                              */

static bool pf_needed(struct px_loop *l, struct px_mfile *mf,
		      const struct px_meta *pm, uint64_t b, uint64_t size)
{
	struct px_rcache *rc = l->lp_rcache;
	uint32_t bs = cache_block_size(rc->rc_cache), blen = cache_blk_len(b, bs, size);
	uint8_t key[CACHE_HASH_SIZE], skey[CACHE_HASH_SIZE];
	enum cache_meta_kind kind = cache_meta_kind(pm->pm_m, b, key);
	const uint8_t *data;
	uint32_t got;
	bool eof;

	if (!blen || kind == CACHE_META_ZERO || fetch_find(mf, b))
		return false;
	if (cache_read(rc->rc_cache, mf->mf_fh, mf->mf_fhlen, b * bs, blen,
		       rc->rc_scratch, &got, &eof, NULL) == 0)
		return false;
	if (kind == CACHE_META_HASHED &&
	    shared_block(rc, pm, b, key, blen, skey, &data)) {
		if (data == rc->rc_scratch) {
			cache_fill_hashed(rc->rc_cache, mf->mf_fh, mf->mf_fhlen,
					  b, data, blen, skey, mf->mf_fattr,
					  rc->rc_flags);
			ring_put(rc, skey, data, blen);
			rc->rc_dedup_hits++;
		}
		return false;
	}
	return true;
}

/* Keep up to PF_FETCHES READs of the profile in flight (half while the
 * file has reads of clients waiting upstream: those come first). */
static void pf_pump(struct px_loop *l, struct px_mfile *mf)
{
	struct px_rcache *rc = l->lp_rcache;
	uint32_t bs = cache_block_size(rc->rc_cache);
	const struct px_meta *pm;
	const uint64_t *prof;
	unsigned fg = 0, limit;
	uint64_t size;
	size_t n;

	if (mf->mf_state != MF_READY || !mf->mf_meta || mf->mf_pf_stop ||
	    !rc->rc_prefetch)
		return;
	pm = mf->mf_meta;
	prof = cache_meta_view_profile(pm->pm_m, &n);
	size = rpc_get64(mf->mf_fattr + NFS3_FATTR_SIZE_OFF);
	for (struct px_mfetch *mt = mf->mf_fetches; mt; mt = mt->mt_next)
		fg += mt->mt_kind == MT_DEMAND;
	limit = fg ? PF_FETCHES / 2 : PF_FETCHES;
	while (mf->mf_npf < limit && mf->mf_pf_next < n &&
	       l->lp_npending < PF_MAX_PENDING) {
		uint64_t b = prof[mf->mf_pf_next++];
		uint32_t nb = 1;

		if (!pf_needed(l, mf, pm, b, size))
			continue;
		while (mf->mf_pf_next < n && prof[mf->mf_pf_next] == b + nb &&
		       (uint64_t)(nb + 1) * bs <= PF_FETCH_BYTES &&
		       pf_needed(l, mf, pm, b + nb, size)) {
			nb++;
			mf->mf_pf_next++;
		}
		if (!fetch_new(l, mf, mf->mf_fh, mf->mf_fhlen, b, nb,
			       &mf->mf_cred, MT_PROFILE, 0)) {
			mf->mf_pf_stop = true;
			break;
		}
	}
	if (mf->mf_pf_next >= n && !mf->mf_npf && n && !mf->mf_pf_stop) {
		mf->mf_pf_stop = true;
		px_info("prefetch of %s done: profile of %zu blocks walked",
			mf->mf_name, n);
	}
}

/* ---------------------------------------------------------------------- */
/* Readahead without a profile (issue 19, docs/cache.md "Readahead")       */
/*                                                                          */
/* Each image keeps a few streams of reads.  A read that goes on where a   */
/* stream ended (within RA_GAP), or one stride after its last read, is a   */
/* hit: the stream's window opens at RA_MIN and doubles per hit up to      */
/* RA_MAX, and the blocks in it that are not zero, cached, shared or in    */
/* flight are fetched with READs of the reader's credential.  A client     */
/* READ of such a block joins the fetch (fetch_find).                      */

/* Fetch the needed blocks of [from, to) ahead of a stream; returns how
 * far it got (less than to when RA_FETCHES READs are in flight). */
static uint64_t ra_fetch(struct px_loop *l, struct px_mreq *mr,
			 const struct px_meta *pm, uint64_t from, uint64_t to)
{
	struct px_rcache *rc = l->lp_rcache;
	struct px_mfile *mf = mr->mr_mf;
	uint32_t bs = cache_block_size(rc->rc_cache), nrun = 0;
	uint64_t size = rpc_get64(mr->mr_fattr + NFS3_FATTR_SIZE_OFF), b, run = 0;

	if (to > size)
		to = size;
	for (b = from / bs; b * bs < to; b++) {
		bool need = pf_needed(l, mf, pm, b, size);

		if (need && nrun && run + nrun == b &&
		    (uint64_t)(nrun + 1) * bs <= RA_FETCH_BYTES) {
			nrun++;
			continue;
		}
		if (nrun && !fetch_new(l, mf, mr->mr_fh, mr->mr_fhlen, run, nrun,
				       &mr->mr_cred, MT_AHEAD, 0))
			return run * bs;
		nrun = 0;
		if (!need)
			continue;
		if (mf->mf_nra >= RA_FETCHES)
			return b * bs;
		run = b;
		nrun = 1;
	}
	if (nrun && !fetch_new(l, mf, mr->mr_fh, mr->mr_fhlen, run, nrun,
			       &mr->mr_cred, MT_AHEAD, 0))
		return run * bs;
	return to;
}

static void ra_grow(struct px_stream *st)
{
	st->st_hits++;
	st->st_win = st->st_hits == 1 ? RA_MIN
		     : st->st_win >= RA_MAX / 2 ? RA_MAX : st->st_win * 2;
}

/*
 * Readahead and the background fetch are for images without a profile: a
 * profile says what a boot reads and its prefetch brings that, and blocks
 * guessed beside it only compete with the boot's own misses for the link
 * (bench/demo.sh: a profiled cold replay went from 1.28x faster than
 * direct to 0.83x, 95 -> 147 MiB over the WAN, with both on).
 */
static bool meta_profiled(const struct px_meta *pm)
{
	size_t n = 0;

	return cache_meta_view_profile(pm->pm_m, &n) && n;
}

static void ra_note(struct px_loop *l, struct px_mreq *mr,
		    const struct px_meta *pm)
{
	struct px_mfile *mf = mr->mr_mf;
	uint64_t off = mr->mr_off, end = mr->mr_off + mr->mr_len;
	struct px_stream *st = NULL, *lru = &mf->mf_st[0];

	if (!mr->mr_len || meta_profiled(pm))
		return;
	mf->mf_st_clock++;
	for (unsigned i = 0; i < RA_STREAMS; i++) {
		struct px_stream *s = &mf->mf_st[i];

		if (s->st_used < lru->st_used)
			lru = s;
		if (!s->st_used)
			continue;
		if (off > s->st_last && off <= s->st_next + RA_GAP) {
			st = s; /* sequential */
			st->st_stride = 0;
			break;
		}
		if (s->st_stride && (int64_t)(off - s->st_last) == s->st_stride) {
			st = s; /* the same step again */
			break;
		}
		/* A sequential stream that skips ahead by uneven steps is a
		 * forward scan (a file system reading the inode table or a
		 * directory's blocks): reading the span ahead serves it.  An
		 * even step was taken as a stride above. */
		if (!s->st_stride && s->st_hits && off > s->st_last &&
		    off <= s->st_next + RA_SKIP) {
			st = s;
			break;
		}
	}
	if (!st) {
		/* a second read not far after a lone one gives a step to try */
		for (unsigned i = 0; i < RA_STREAMS && !st; i++) {
			struct px_stream *s = &mf->mf_st[i];

			if (s->st_used && !s->st_hits && off > s->st_next &&
			    off - s->st_last <= RA_MAX_STRIDE)
				st = &mf->mf_st[i];
		}
		if (st) {
			st->st_stride = (int64_t)(off - st->st_last);
		} else {
			st = lru;
			st->st_stride = 0;
		}
		st->st_hits = st->st_win = 0;
		st->st_last = off;
		st->st_next = st->st_ra = end;
		st->st_used = mf->mf_st_clock;
		return;
	}
	st->st_used = mf->mf_st_clock;
	ra_grow(st);
	if (!st->st_stride) {
		uint64_t from;

		st->st_last = off;
		if (end > st->st_next)
			st->st_next = end;
		from = st->st_ra > st->st_next ? st->st_ra : st->st_next;
		if (st->st_next + st->st_win > from)
			st->st_ra = ra_fetch(l, mr, pm, from,
					     st->st_next + st->st_win);
		return;
	}
	/* strided: the next reads of the same length, a window's worth */
	st->st_last = off;
	st->st_next = end;
	for (uint64_t k = 1, n = st->st_win / mr->mr_len; k <= n && k <= 64; k++) {
		uint64_t p = off + k * (uint64_t)st->st_stride, got;

		if (p + mr->mr_len <= st->st_ra)
			continue;
		got = ra_fetch(l, mr, pm, p, p + mr->mr_len);
		st->st_ra = got;
		if (got < p + mr->mr_len)
			break;
	}
}

/* ---------------------------------------------------------------------- */
/* Background fetch of the non-zero blocks (issue 19)                      */
/*                                                                          */
/* Once an image with trusted metadata is opened (and its profile, if any, */
/* walked), its non-zero blocks that no cache level holds are fetched in   */
/* offset order, BG_FETCHES READs at a time, starting with the blocks      */
/* after a client's latest miss (the guest's next files are likely near). */
/* Strict priority: no background READ is sent while a client READ or a    */
/* readahead waits upstream, and the rate is capped to --background-share  */
/* of the measured upstream rate (one READ at a time until it is known).   */

static void bg_start(struct px_rcache *rc, struct px_mfile *mf)
{
	uint32_t bs = cache_block_size(rc->rc_cache);
	uint64_t size = rpc_get64(mf->mf_fattr + NFS3_FATTR_SIZE_OFF);
	uint64_t nblk = (size + bs - 1) / bs, nz = 0;
	uint8_t key[CACHE_HASH_SIZE];
	struct cache_stats cs;

	if (!rc->rc_bg || mf->mf_bg == BG_RUN)
		return;
	if (meta_profiled(mf->mf_meta)) {
		mf->mf_bg = BG_DONE;
		return;
	}
	for (uint64_t b = 0; b < nblk; b++)
		nz += cache_meta_kind(mf->mf_meta->pm_m, b, key) != CACHE_META_ZERO;
	cache_stats(rc->rc_cache, &cs);
	if (nz * bs > cs.cs_max_bytes / 2) {
		/* it would evict what clients read to make room for guesses */
		px_info("background fetch of %s skipped: %.1f MiB non-zero, more "
			"than half of --cache-size", mf->mf_name,
			(double)nz * bs / 1048576.0);
		mf->mf_bg = BG_DONE;
		return;
	}
	mf->mf_bg = BG_RUN;
	mf->mf_bg_next = mf->mf_bg_hint = 0;
	mf->mf_bg_hint_left = 0;
	mf->mf_bg_t0 = px_now_ms();
	mf->mf_bg_nblocks = mf->mf_bg_bytes = 0;
	rc->rc_bg_active++;
	px_info("background fetch of %s started: %llu non-zero blocks of %u "
		"bytes (%.1f MiB), up to %u%% of the upstream rate",
		mf->mf_name, (unsigned long long)nz, bs,
		(double)nz * bs / 1048576.0, rc->rc_bg_share);
}

static void bg_refill(struct px_rcache *rc)
{
	uint64_t now = now_us(), dt = now - rc->rc_bg_refill_us;
	int64_t cap = (int64_t)BG_FETCH_BYTES * BG_FETCHES;

	rc->rc_bg_refill_us = now;
	if (!rc->rc_link_rate || dt > 10000000u)
		dt = 0;
	rc->rc_bg_tokens += (int64_t)(rc->rc_link_rate * rc->rc_bg_share / 100u *
				      dt / 1000000u);
	if (rc->rc_bg_tokens > cap)
		rc->rc_bg_tokens = cap;
}

/* The next block the background fetch wants, from the hint after a
 * client's miss first, then the sweep; nblk when the sweep is done. */
static uint64_t bg_next(struct px_loop *l, struct px_mfile *mf,
			const struct px_meta *pm, uint64_t size, uint64_t nblk,
			unsigned *budget, bool *hint)
{
	while (mf->mf_bg_hint_left && mf->mf_bg_hint < nblk && *budget) {
		uint64_t b = mf->mf_bg_hint++;

		mf->mf_bg_hint_left--;
		--*budget;
		if (pf_needed(l, mf, pm, b, size)) {
			*hint = true;
			return b;
		}
	}
	*hint = false;
	while (mf->mf_bg_next < nblk && *budget) {
		uint64_t b = mf->mf_bg_next++;

		--*budget;
		if (pf_needed(l, mf, pm, b, size))
			return b;
	}
	return mf->mf_bg_next < nblk ? UINT64_MAX : nblk;
}

static void bg_pump(struct px_loop *l, struct px_mfile *mf)
{
	struct px_rcache *rc = l->lp_rcache;
	uint32_t bs = cache_block_size(rc->rc_cache);
	const struct px_meta *pm = mf->mf_meta;
	uint64_t size, nblk;
	unsigned budget = BG_SCAN;
	size_t nprof;

	if (mf->mf_bg != BG_RUN || mf->mf_state != MF_READY || !pm ||
	    l->lp_draining)
		return;
	cache_meta_view_profile(pm->pm_m, &nprof);
	if (mf->mf_npf || (nprof && !mf->mf_pf_stop))
		return; /* the profile first */
	size = rpc_get64(mf->mf_fattr + NFS3_FATTR_SIZE_OFF);
	nblk = (size + bs - 1) / bs;
	bg_refill(rc);
	while (mf->mf_nbg < (rc->rc_link_rate ? BG_FETCHES : 1u) &&
	       l->lp_npending < PF_MAX_PENDING) {
		uint64_t b;
		uint32_t nb = 1;
		bool hint;

		if (rc->rc_fg) {
			rc->rc_bg_yields++; /* clients first */
			return;
		}
		if (rc->rc_link_rate && rc->rc_bg_share < 100 &&
		    rc->rc_bg_tokens <= 0)
			return; /* the tick refills */
		b = bg_next(l, mf, pm, size, nblk, &budget, &hint);
		if (b == UINT64_MAX)
			return; /* looked at enough for now */
		if (b >= nblk)
			break;
		while ((uint64_t)(nb + 1) * bs <= BG_FETCH_BYTES && b + nb < nblk &&
		       pf_needed(l, mf, pm, b + nb, size))
			nb++;
		if (hint) {
			mf->mf_bg_hint = b + nb;
			mf->mf_bg_hint_left = mf->mf_bg_hint_left > nb - 1
						      ? mf->mf_bg_hint_left - (nb - 1)
						      : 0;
		} else {
			mf->mf_bg_next = b + nb;
		}
		if (!fetch_new(l, mf, mf->mf_fh, mf->mf_fhlen, b, nb,
			       &mf->mf_cred, MT_BG, 0)) {
			bg_stop(mf, "cannot send");
			return;
		}
		rc->rc_bg_tokens -= (int64_t)nb * bs;
	}
	if (mf->mf_bg_next >= nblk && !mf->mf_nbg &&
	    (!mf->mf_bg_hint_left || mf->mf_bg_hint >= nblk)) {
		mf->mf_bg = BG_DONE;
		rc->rc_bg_active--;
		px_info("background fetch of %s done: %llu blocks, %.1f MiB "
			"fetched in %.1f s; %llu times it gave way to clients",
			mf->mf_name, (unsigned long long)mf->mf_bg_nblocks,
			(double)mf->mf_bg_bytes / 1048576.0,
			(double)(px_now_ms() - mf->mf_bg_t0) / 1000.0,
			(unsigned long long)rc->rc_bg_yields);
	}
}

static void bg_pump_all(struct px_loop *l)
{
	struct px_rcache *rc = l->lp_rcache;

	if (!rc->rc_bg_active)
		return;
	for (unsigned i = 0; i < MF_BUCKETS; i++)
		for (struct px_mfile *mf = rc->rc_mf[i]; mf; mf = mf->mf_next)
			if (mf->mf_bg == BG_RUN)
				bg_pump(l, mf);
}

void px_rcache_tick(struct px_loop *l)
{
	struct px_rcache *rc = l->lp_rcache;

	if (!rc || !rc->rc_bg_active || l->lp_draining)
		return;
	if (rc->rc_fg)
		rc->rc_bg_yields++;
	else
		bg_pump_all(l);
}

void px_rcache_ra_stats(struct px_loop *l, struct px_ra_stats *rs)
{
	struct px_rcache *rc = l->lp_rcache;

	memset(rs, 0, sizeof(*rs));
	if (!rc)
		return;
	rs->rs_waits = rc->rc_waits;
	rs->rs_misses = rc->rc_misses;
	rs->rs_ra_blocks = rc->rc_ra_blocks;
	rs->rs_bg_blocks = rc->rc_bg_blocks;
	rs->rs_bg_bytes = rc->rc_bg_bytes;
	rs->rs_bg_yields = rc->rc_bg_yields;
	rs->rs_link_rate = rc->rc_link_rate;
}

/* ---------------------------------------------------------------------- */
/* Discovery: LOOKUP NAME.gvmeta in the image's directory, READ, check     */

struct disc_read {
	struct px_mfile *dr_mf;
	uint32_t dr_off, dr_len;
};

static void disc_done(struct px_loop *l, struct px_mfile *mf,
		      struct cache_meta *m, bool cancel)
{
	struct px_rcache *rc = l->lp_rcache;
	struct px_mreq *mr;

	free(mf->mf_buf);
	mf->mf_buf = NULL;
	if (m) {
		struct px_meta *pm = calloc(1, sizeof(*pm));

		if (!pm) {
			cache_meta_free(m);
			m = NULL;
		} else {
			pm->pm_m = m;
			pm->pm_refs = 1;
			pm->pm_owner = rpc_get32(mf->mf_fattr + NFS3_FATTR_UID);
			mf->mf_meta = pm;
			mf->mf_state = MF_READY;
			mf->mf_pf_next = 0;
			mf->mf_pf_stop = false;
			mf->mf_ra_stop = false;
			memset(mf->mf_st, 0, sizeof(mf->mf_st));
			bg_start(rc, mf);
		}
	}
	if (!m)
		mf_drop_meta(mf, MF_NONE);
	while ((mr = mf->mf_parked)) {
		mf->mf_parked = mr->mr_next;
		if (cancel) {
			mr->mr_rpcerr = RPC_ACC_SYSTEM_ERR;
			mreq_finish(rc, mr);
		} else
			mreq_start(l, mr);
	}
	if (m && !cancel) {
		pf_pump(l, mf);
		bg_pump(l, mf);
	}
}

/*
 * Metadata decides what readers of the image are served: it counts only
 * when written by the image's owner or root, not writable by others, and
 * not older than the image's last change (issue 16; docs/metadata.md).
 * true (logged) when it must be ignored.  early: before the file is read,
 * when its age is left for after parsing, so that a stale file (size or
 * mtime) is called stale.
 */
static bool disc_untrusted(struct px_mfile *mf, bool early)
{
	enum cache_meta_trust t = cache_meta_trust(mf->mf_fattr, mf->mf_mattr);

	if (t == CACHE_META_TRUSTED || (early && t == CACHE_META_UNTRUSTED_OLDER))
		return false;
	if (t == CACHE_META_UNTRUSTED_OLDER)
		px_warn("metadata %s%s ignored: untrusted: %s", mf->mf_name,
			CACHE_META_SUFFIX, cache_meta_trust_str(t));
	else
		px_warn("metadata %s%s ignored: untrusted: %s (uid %u, mode "
			"%04o; the image's owner is uid %u)", mf->mf_name,
			CACHE_META_SUFFIX, cache_meta_trust_str(t),
			rpc_get32(mf->mf_mattr + NFS3_FATTR_UID),
			rpc_get32(mf->mf_mattr + 4) & 07777,
			rpc_get32(mf->mf_fattr + NFS3_FATTR_UID));
	return true;
}

static void disc_check(struct px_loop *l, struct px_mfile *mf)
{
	struct px_rcache *rc = l->lp_rcache;
	struct cache_meta *m = NULL;
	struct cache_meta_info mi;
	struct cache_meta_summary sum;
	int err;

	if (mf->mf_readfail) {
		px_warn("metadata %s%s ignored: could not be read whole",
			mf->mf_name, CACHE_META_SUFFIX);
		disc_done(l, mf, NULL, false);
		return;
	}
	if ((err = cache_meta_parse(mf->mf_buf, mf->mf_buflen, &m))) {
		px_warn("metadata %s%s ignored: %s", mf->mf_name,
			CACHE_META_SUFFIX,
			err == -EPROTONOSUPPORT ? "unsupported format version"
						: "malformed");
		disc_done(l, mf, NULL, false);
		return;
	}
	cache_meta_get_info(m, &mi);
	if (cache_meta_check_fattr(m, mf->mf_fattr)) {
		px_warn("metadata %s%s ignored: stale (it describes size %llu "
			"mtime %lld.%09u; the image has size %llu mtime "
			"%u.%09u)", mf->mf_name, CACHE_META_SUFFIX,
			(unsigned long long)mi.mi_size,
			(long long)mi.mi_mtime_sec, mi.mi_mtime_nsec,
			(unsigned long long)rpc_get64(mf->mf_fattr +
						      NFS3_FATTR_SIZE_OFF),
			rpc_get32(mf->mf_fattr + NFS3_FATTR_MTIME),
			rpc_get32(mf->mf_fattr + NFS3_FATTR_MTIME + 4));
		cache_meta_free(m);
		disc_done(l, mf, NULL, false);
		return;
	}
	/* again in full: the image's attributes may have moved meanwhile
	 * (a chown), and its age was left for here */
	if (disc_untrusted(mf, false)) {
		cache_meta_free(m);
		disc_done(l, mf, NULL, false);
		return;
	}
	if (cache_meta_view(m, cache_block_size(rc->rc_cache))) {
		cache_meta_free(m);
		disc_done(l, mf, NULL, false);
		return;
	}
	cache_meta_summarize(m, &sum);
	if (mi.mi_flags & CACHE_META_F_NOHASH)
		px_info("metadata %s%s: %llu blocks of %u bytes, no hashes, "
			"profile %u learned from %u boot(s)", mf->mf_name,
			CACHE_META_SUFFIX, (unsigned long long)mi.mi_nblocks,
			mi.mi_block, mi.mi_nprofile, mi.mi_boots);
	else
		px_info("metadata %s%s: %llu blocks of %u bytes, %llu zero, "
			"%llu unique, profile %u%s", mf->mf_name,
			CACHE_META_SUFFIX, (unsigned long long)mi.mi_nblocks,
			mi.mi_block, (unsigned long long)sum.ms_zero,
			(unsigned long long)sum.ms_unique, mi.mi_nprofile,
			mi.mi_flags & CACHE_META_F_LEARNED ? " (learned)" : "");
	rc->rc_meta_files++;
	disc_done(l, mf, m, false);
}

static void disc_read_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct disc_read *dr = ctx;
	struct px_mfile *mf = dr->dr_mf;
	struct px_loop *l = mf->mf_loop;
	size_t p = 8;

	if (err < 0 || len < 8 || rpc_get32(res)) {
		mf->mf_readfail = true;
	} else {
		if (rpc_get32(res + 4))
			p += NFS3_FATTR_SIZE;
		if (len < p + 12 || rpc_get32(res + p + 8) != dr->dr_len ||
		    len - p - 12 < dr->dr_len)
			mf->mf_readfail = true; /* short: give up, cheap to retry */
		else
			memcpy(mf->mf_buf + dr->dr_off, res + p + 12, dr->dr_len);
	}
	free(dr);
	if (--mf->mf_reads)
		return;
	if (err == -ECANCELED || l->lp_draining)
		disc_done(l, mf, NULL, true);
	else
		disc_check(l, mf);
}

static void disc_lookup_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_mfile *mf = ctx;
	struct px_loop *l = mf->mf_loop;
	uint32_t fhlen;
	uint64_t size;
	size_t p;

	if (err < 0) {
		disc_done(l, mf, NULL, true);
		return;
	}
	if (len < 8 || rpc_get32(res) != 0) {
		px_debug("no metadata for %s", mf->mf_name);
		disc_done(l, mf, NULL, false);
		return;
	}
	fhlen = rpc_get32(res + 4);
	p = 8 + ((fhlen + 3u) & ~3u);
	if (fhlen == 0 || fhlen > NFS3_FHSIZE || len < p + 4 ||
	    !rpc_get32(res + p) || len < p + 4 + NFS3_FATTR_SIZE) {
		/* no attributes: who wrote it cannot be told */
		px_warn("metadata %s%s ignored: no attributes in its LOOKUP "
			"reply", mf->mf_name, CACHE_META_SUFFIX);
		disc_done(l, mf, NULL, false);
		return;
	}
	memcpy(mf->mf_mattr, res + p + 4, NFS3_FATTR_SIZE);
	/* who wrote it, before a byte of it is read */
	if (disc_untrusted(mf, true)) {
		disc_done(l, mf, NULL, false);
		return;
	}
	if (mf->mf_bad_set &&
	    !memcmp(mf->mf_bad, mf->mf_mattr + NFS3_FATTR_MTIME, 16)) {
		px_debug("metadata %s%s: the version that failed a hash check; "
			 "not used", mf->mf_name, CACHE_META_SUFFIX);
		disc_done(l, mf, NULL, false);
		return;
	}
	size = rpc_get64(res + p + 4 + NFS3_FATTR_SIZE_OFF);
	if (size < CACHE_META_HDR || size > CACHE_META_MAX ||
	    !(mf->mf_buf = malloc(size))) {
		px_warn("metadata %s%s ignored: %llu bytes", mf->mf_name,
			CACHE_META_SUFFIX, (unsigned long long)size);
		disc_done(l, mf, NULL, false);
		return;
	}
	mf->mf_buflen = (uint32_t)size;
	mf->mf_readfail = false;
	mf->mf_reads = 1; /* held while the READs go out */
	for (uint32_t off = 0; off < size; off += META_READ_CHUNK) {
		uint8_t args[4 + NFS3_FHSIZE + 12];
		struct disc_read *dr = malloc(sizeof(*dr));
		struct rpc_xdr x;

		if (!dr) {
			mf->mf_readfail = true;
			break;
		}
		dr->dr_mf = mf;
		dr->dr_off = off;
		dr->dr_len = size - off < META_READ_CHUNK ? (uint32_t)(size - off)
							  : META_READ_CHUNK;
		rpc_xdr_init(&x, args, sizeof(args));
		rpc_xdr_put_opaque(&x, res + 8, fhlen);
		rpc_xdr_put_u64(&x, off);
		rpc_xdr_put_u32(&x, dr->dr_len);
		if (px_icall(l, RPC_PROG_NFS, NFS3_READ, &mf->mf_cred, args,
			     x.x_pos, disc_read_cb, dr)) {
			free(dr);
			mf->mf_readfail = true;
			break;
		}
		mf->mf_reads++;
	}
	if (!--mf->mf_reads)
		disc_check(l, mf);
}

static void mf_discover(struct px_loop *l, struct px_mfile *mf)
{
	uint8_t args[4 + NFS3_FHSIZE + 4 + MF_NAME_MAX + 8];
	char name[MF_NAME_MAX + 16];
	struct rpc_xdr x;

	/* mf_named keeps names short enough for the suffix */
	snprintf(name, sizeof(name), "%s%s", mf->mf_name, CACHE_META_SUFFIX);
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, mf->mf_dir, mf->mf_dirlen);
	rpc_xdr_put_opaque(&x, name, (uint32_t)strlen(name));
	mf->mf_state = MF_LOOKING;
	if (x.x_err || px_icall(l, RPC_PROG_NFS, NFS3_LOOKUP, &mf->mf_cred, args,
				x.x_pos, disc_lookup_cb, mf))
		mf_drop_meta(mf, MF_NONE);
}

/* A LOOKUP reply named a regular file: remember where it lives and, for a
 * large one, look for its metadata. */
static void mf_named(struct px_loop *l, struct px_call *pc, const uint8_t *fh,
		     uint32_t fhlen, const uint8_t *fattr)
{
	struct px_rcache *rc = l->lp_rcache;
	const uint8_t *msg = px_msg_data(pc->pc_req), *a;
	const struct px_req *rq = &pc->pc_rq;
	size_t sl = strlen(CACHE_META_SUFFIX);
	uint32_t dlen, nlen;
	const struct rpc_authsys *cred = &rq->rq_cred;
	struct cache_ident id;
	struct px_mfile **pp, *mf;

	/* LOOKUP3args: the directory's handle, then the name (checked by the
	 * decode at intake). */
	if (!rc->rc_meta || rpc_get32(fattr) != 1 ||
	    rpc_get64(fattr + NFS3_FATTR_SIZE_OFF) < MF_MIN_SIZE ||
	    fhlen > NFS3_FHSIZE || !rq->rq_sys || rq->rq_nfh != 1)
		return;
	dlen = rq->rq_fh_len[0];
	a = msg + rq->rq_fh_off[0] + ((dlen + 3u) & ~3u);
	nlen = rpc_get32(a);
	if (!nlen || nlen + sl > MF_NAME_MAX)
		return;
	a += 4; /* the name */
	if (nlen >= sl && !memcmp(a + nlen - sl, CACHE_META_SUFFIX, sl))
		return;
	cache_ident_of_fattr(fattr, &id);
	pp = mf_slot(rc, &id);
	if (!(mf = *pp)) {
		if (rc->rc_nmf >= MF_MAX || !(mf = calloc(1, sizeof(*mf))))
			return;
		mf->mf_id = id;
		mf->mf_loop = l;
		mf->mf_state = MF_NAMED;
		*pp = mf;
		rc->rc_nmf++;
	}
	memcpy(mf->mf_fh, fh, fhlen);
	mf->mf_fhlen = fhlen;
	memcpy(mf->mf_dir, msg + rq->rq_fh_off[0], dlen);
	mf->mf_dirlen = dlen;
	memcpy(mf->mf_name, a, nlen);
	mf->mf_name[nlen] = '\0';
	memcpy(mf->mf_fattr, fattr, NFS3_FATTR_SIZE);
	mf->mf_cred = *cred;
	if (mf->mf_state == MF_NAMED ||
	    (mf->mf_state == MF_NONE && px_now_ms() >= mf->mf_retry_at))
		mf_discover(l, mf);
}

/* A READ call of a tracked file: 1 when handled here (served, fetched or
 * parked until its metadata is known), 0 for the plain cache path. */
static int mf_read_call(struct px_loop *l, struct px_client *c,
			const struct px_req *rq, const uint8_t *fh,
			uint32_t fhlen, uint64_t off, uint32_t count)
{
	const struct rpc_call *h = &rq->rq_h;
	struct px_rcache *rc = l->lp_rcache;
	struct cache_ident id;
	struct px_mfile *mf;
	struct px_mreq *mr;

	if (!rc->rc_nmf || cache_ident_of_handle(rc->rc_cache, fh, fhlen, &id) ||
	    !(mf = *mf_slot(rc, &id)))
		return 0;
	if (mf->mf_state == MF_NONE && px_now_ms() < mf->mf_retry_at)
		return 0;
	if (!rq->rq_sys || count > l->lp_opts->o_max_record ||
	    !(mr = calloc(1, sizeof(*mr))))
		return 0;
	mr->mr_cred = rq->rq_cred;
	mr->mr_mf = mf;
	mr->mr_client = c;
	c->cl_refs++;
	mr->mr_xid = h->c_xid;
	memcpy(mr->mr_fh, fh, fhlen);
	mr->mr_fhlen = fhlen;
	mr->mr_off = off;
	mr->mr_count = count;
	mr->mr_credkey = authsys_key(&mr->mr_cred);
	if (mf->mf_state == MF_NAMED || mf->mf_state == MF_NONE)
		mf_discover(l, mf);
	if (mf->mf_state == MF_LOOKING) {
		struct px_mreq **pp = &mf->mf_parked;

		while (*pp) /* in arrival order */
			pp = &(*pp)->mr_next;
		*pp = mr;
		return 1;
	}
	mreq_start(l, mr);
	return 1;
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

static uint64_t *modseq_slot(struct px_rcache *rc, const uint8_t *fh,
			     uint32_t len)
{
	uint32_t h = 2166136261u;

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ fh[i]) * 16777619u;
	return &rc->rc_modseq[h & (MOD_SLOTS - 1)];
}

void px_rcache_modified(struct px_loop *l, const uint8_t *fh, uint32_t len)
{
	struct px_rcache *rc = l->lp_rcache;

	if (!rc || !len || len > NFS3_FHSIZE)
		return;
	*modseq_slot(rc, fh, len) = ++l->lp_seq;
	for (unsigned i = 0; i < LOOK_SLOTS; i++) {
		struct px_look *lk = &rc->rc_look[i];

		if (lk->lk_msg && lk->lk_fhlen == len &&
		    !memcmp(lk->lk_fh, fh, len)) {
			px_msg_unref(lk->lk_msg);
			lk->lk_msg = NULL;
		}
	}
	cache_invalidate(rc->rc_cache, fh, len);
}

/* Was the file modified (or may it have been) after a call sent at seq? */
static bool modified_since(struct px_rcache *rc, const uint8_t *fh,
			   uint32_t len, uint64_t seq)
{
	return *modseq_slot(rc, fh, len) > seq;
}

/* A fetch in flight for the same credential that covers this READ: wait
 * for it instead of asking upstream again (unless the file was written
 * after that fetch was sent: its bytes may predate the write). */
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
		    memcmp(cr->cr_fh, want->cr_fh, want->cr_fhlen) ||
		    modified_since(l->lp_rcache, cr->cr_fh, cr->cr_fhlen,
				   pc->pc_seq))
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
			size_t len, struct px_req *rq,
			struct px_cread **crp)
{
	struct px_rcache *rc = l->lp_rcache;
	const struct rpc_call *h = &rq->rq_h;
	uint32_t fhlen, count = rq->rq_count, bs;
	uint8_t fattr[NFS3_FATTR_SIZE];
	struct px_cread want, *cr;
	uint64_t off = rq->rq_off, aoff, alen;
	const uint8_t *fh;
	struct px_msg *m;
	uint32_t got;
	bool eof;

	*crp = NULL;
	if (!px_req_fh(rq, msg, &fh, &fhlen))
		return 0;
	if (mf_read_call(l, c, rq, fh, fhlen, off, count))
		return 1;
	memset(&want, 0, sizeof(want));
	want.cr_cred = rq_cred_key(rq);
	/* Hit: wholly cached, current version, and this credential may read.
	 * The blocks are copied once, straight into the reply. */
	if ((m = read_reply_room(count)) &&
	    cache_read(rc->rc_cache, fh, fhlen, off, count,
		       px_msg_data(m) + READ_REPLY_HDR, &got, &eof, fattr) == 0 &&
	    got <= count && grant_ok(rc, fattr, want.cr_cred)) {
		read_reply_finish(m, h->c_xid, fattr, got, eof);
		px_client_send(c, m);
		px_msg_unref(m);
		rc->rc_local_hits++;
		rc->rc_local_bytes += got;
		return 1;
	}
	px_msg_unref(m);
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
	rc->rc_waits++;
	if (fetch_join(l, c, h, &want))
		return 1;
	rc->rc_misses++;
	if (!(cr = malloc(sizeof(*cr))))
		return 0;
	*cr = want;
	/* READ3args: the handle, offset, count. */
	rpc_put64(msg + rq->rq_fh_off[0] + ((fhlen + 3u) & ~3u), aoff);
	rpc_put32(msg + rq->rq_fh_off[0] + ((fhlen + 3u) & ~3u) + 8,
		  (uint32_t)alen);
	rq->rq_off = aoff;
	rq->rq_count = (uint32_t)alen;
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
	uint8_t *nc_obj_fh;      /* the first (handle, attributes) pair */
	uint32_t nc_obj_fhlen;
	uint8_t *nc_obj_fattr;
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
	grant_revoke(nc->nc_rc, fattr);
	look_retire(nc->nc_rc, fattr);
	mf_note_fattr(nc->nc_rc, fattr);
	if (!nc->nc_nfattr++)
		nc->nc_first_fattr = fattr;
	if (nc->nc_last_fh) {
		cache_note_handle(nc->nc_rc->rc_cache, nc->nc_last_fh,
				  nc->nc_last_fhlen, fattr, nc->nc_rc->rc_flags);
		if (!nc->nc_obj_fh) {
			nc->nc_obj_fh = nc->nc_last_fh;
			nc->nc_obj_fhlen = nc->nc_last_fhlen;
			nc->nc_obj_fattr = fattr;
		}
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
	return px_req_fh(&pc->pc_rq, px_msg_data(pc->pc_req), fh, len);
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

static void msg_release(void *m)
{
	px_msg_unref(m);
}

/*
 * The asking client's answer made of upstream's reply itself when the
 * client's range starts where the fetched one does (a widened READ that
 * needed no widening at the front: every aligned read): the header
 * before the data has the layout read_reply_finish() writes, so only
 * count, eof and length change, and the message goes out as it came in.
 * Saves a copy of every byte on the cold path.  The bytes after a shorter
 * slice stay (the fill and the lookaside still read them) and are not
 * sent; a slice that would need new padding is left to serve_range().
 * Only for the one client whose xid the reply already carries.
 */
static bool serve_in_place(struct px_client *c, const struct px_cread *cr,
			   struct px_msg *m, const struct note_ctx *nc)
{
	uint8_t *msg = px_msg_data(m);
	const uint8_t *fattr = nc->nc_first_fattr;
	uint64_t size = rpc_get64(fattr + NFS3_FATTR_SIZE_OFF);
	uint64_t off = cr->cr_cl_off, end = off + cr->cr_cl_count;
	uint32_t slen;

	if (off != cr->cr_up_off || nc->nc_data != msg + READ_REPLY_HDR ||
	    fattr != msg + 32 || m->m_next)
		return false;
	if (end > size)
		end = size;
	if (end > off + nc->nc_count)
		end = off + nc->nc_count;
	if (end < off)
		end = off;
	slen = (uint32_t)(end - off);
	if (slen != nc->nc_count && slen % 4)
		return false;
	rpc_put32(msg + 12, RPC_AUTH_NONE); /* verifier: AUTH_NONE, empty */
	rpc_put32(nc->nc_data - 12, slen);
	rpc_put32(nc->nc_data - 8, end >= size);
	rpc_put32(nc->nc_data - 4, slen);
	if (slen != nc->nc_count)
		m->m_len = READ_REPLY_HDR + slen;
	px_client_send(c, m);
	return true;
}

/* Answer the client and the waiters of a widened READ from its reply. */
static void read_answer(struct px_rcache *rc, struct px_call *pc,
			struct note_ctx *nc, struct px_msg *m)
{
	struct px_cread *cr = pc->pc_cread;
	bool ok = nc->nc_status == 0 && nc->nc_first_fattr;
	struct px_waiter *w;

	/* Bytes read before a write to the file was sent may be older than
	 * it: they answer this READ (they raced the write) but are not kept. */
	if (ok && !modified_since(rc, cr->cr_fh, cr->cr_fhlen, pc->pc_seq)) {
		/* The writer stores straight from the reply: no copy. */
		m->m_refs++;
		cache_fill_ref(rc->rc_cache, cr->cr_fh, cr->cr_fhlen,
			       cr->cr_up_off, nc->nc_data, nc->nc_count,
			       nc->nc_eof, nc->nc_first_fattr, rc->rc_flags,
			       msg_release, m);
		look_put(rc, m, cr, nc->nc_data, nc->nc_count, nc->nc_eof,
			 nc->nc_first_fattr);
	}
	if (pc->pc_client && !pc->pc_client->cl_closed) {
		if (ok && serve_in_place(pc->pc_client, cr, m, nc))
			;
		else if (ok)
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
	if (pc->pc_proc == NFS3_LOOKUP && nc.nc_status == 0 && nc.nc_obj_fh)
		mf_named(l, pc, nc.nc_obj_fh, nc.nc_obj_fhlen, nc.nc_obj_fattr);
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
		uint64_t cred = rq_cred_key(&pc->pc_rq);
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
		px_rcache_modified(l, fh, fhlen);
	if (!pc->pc_cread)
		return false;
	read_answer(rc, pc, &nc, m);
	return true;
}

void px_rcache_call_sent(struct px_loop *l, const struct px_call *pc)
{
	const uint8_t *fh;
	uint32_t fhlen;

	if (l->lp_rcache && pc->pc_prog == RPC_PROG_NFS &&
	    (pc->pc_proc == NFS3_WRITE || pc->pc_proc == NFS3_SETATTR) &&
	    call_fh(pc, &fh, &fhlen))
		px_rcache_modified(l, fh, fhlen);
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

void px_rcache_meta_stats(struct px_loop *l, uint64_t *files,
			  uint64_t *prefetched)
{
	struct px_rcache *rc = l->lp_rcache;

	*files = rc ? rc->rc_meta_files : 0;
	*prefetched = rc ? rc->rc_pf_blocks : 0;
}

/* The fetch failed locally (upstream gone, drain): its waiters get the
 * same RPC error as the call they were waiting on. */
void px_rcache_fail_waiters(struct px_cread *cr, uint32_t accept_stat)
{
	struct px_waiter *w;

	if (!cr)
		return;
	while ((w = cr->cr_waiters)) {
		cr->cr_waiters = w->w_next;
		px_client_rpc_error(w->w_client, w->w_xid, accept_stat);
		px_client_unref(w->w_client);
		free(w);
	}
}
