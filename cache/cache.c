/*
 * cache/cache.c — the public entry points: open/close/flush, noting
 * attributes and handles, fills and invalidations (handed to the writer),
 * statistics.  Reads are in read.c.
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint32_t cache_block_size(const struct cache *c)
{
	return c->c_bs;
}

void cache_ident_of_fattr(const uint8_t *fattr3, struct cache_ident *id)
{
	id->ci_fsid = get_be64(fattr3 + 44);
	id->ci_fileid = get_be64(fattr3 + 52);
}

bool cache_fattr_same_version(const uint8_t *a, const uint8_t *b)
{
	struct cache_ident ia, ib;
	struct cver va, vb;

	cache_ident_of_fattr(a, &ia);
	cache_ident_of_fattr(b, &ib);
	cver_of_fattr(a, &va);
	cver_of_fattr(b, &vb);
	return ia.ci_fsid == ib.ci_fsid && ia.ci_fileid == ib.ci_fileid &&
	       cver_eq(&va, &vb);
}

bool cache_fattr_same_access(const uint8_t *a, const uint8_t *b)
{
	/* mode at 4 (not nlink, which moves with links; not uid/gid, which
	 * identity mapping rewrites in some replies and not others: a chown
	 * moves ctime, part of the version) */
	return cache_fattr_same_version(a, b) && !memcmp(a + 4, b + 4, 4);
}

static int opts_check(const struct cache_opts *o, struct cache_opts *out)
{
	*out = *o;
	if (!o->co_dir || !*o->co_dir || o->co_max_bytes == 0)
		return -EINVAL;
	if (!out->co_block_size)
		out->co_block_size = CACHE_BLOCK_DEFAULT;
	if (out->co_block_size < CACHE_BLOCK_MIN ||
	    out->co_block_size > CACHE_BLOCK_MAX ||
	    (out->co_block_size & (out->co_block_size - 1)))
		return -EINVAL;
	if (!out->co_immutable_ttl)
		out->co_immutable_ttl = 3600;
	if (!out->co_queue_bytes)
		out->co_queue_bytes = 64ull << 20;
	if (!out->co_group_bytes)
		out->co_group_bytes = 32u << 20;
	if (!out->co_group_ms)
		out->co_group_ms = 5;
	if (!out->co_retry_ms)
		out->co_retry_ms = 30000;
	if (!out->co_low_pct || out->co_low_pct > 100)
		out->co_low_pct = 90;
	return 0;
}

int cache_open(const struct cache_opts *opts, struct cache **out)
{
	struct cache *c;
	struct witem *wi;
	int rc;

	*out = NULL;
	if (!(c = calloc(1, sizeof(*c))))
		return -ENOMEM;
	if ((rc = opts_check(opts, &c->c_opts))) {
		free(c);
		return rc;
	}
	pthread_mutex_init(&c->c_qlock, NULL);
	pthread_cond_init(&c->c_qcond, NULL);
	pthread_cond_init(&c->c_qdone, NULL);
	pthread_mutex_init(&c->c_rlock, NULL);
	if ((rc = mem_init(c)) || (rc = -pthread_key_create(&c->c_rkey, read_thread_exit)))
		goto fail_mem;
	c->c_st.s_log = c->c_opts.co_log;
	rc = store_open(&c->c_st, opts->co_dir, c->c_opts.co_block_size,
	                c->c_opts.co_max_bytes, c->c_opts.co_flags, false, true);
	if (rc)
		goto fail_key;
	c->c_bs = c->c_st.s_bs;
	atomic_store(&c->a_cap, c->c_opts.co_max_bytes);
	atomic_store(&c->a_bytes, c->c_st.s_tot.t_bytes);
	atomic_store(&c->a_data, c->c_st.s_tot.t_data);
	atomic_store(&c->a_blocks, c->c_st.s_tot.t_blocks);
	atomic_store(&c->a_files, c->c_st.s_tot.t_files);
	if ((rc = writer_start(c)))
		goto fail_store;
	/* a first group evicts at once if the cap shrank since last run */
	if ((wi = calloc(1, sizeof(*wi)))) {
		wi->wi_kind = WI_BARRIER;
		writer_enqueue(c, wi);
	}
	*out = c;
	return 0;
fail_store:
	store_close(&c->c_st);
fail_key:
	pthread_key_delete(c->c_rkey);
fail_mem:
	mem_free(c);
	free(c);
	return rc;
}

void cache_close(struct cache *c)
{
	if (!c)
		return;
	writer_stop(c);
	read_close_all(c);
	pthread_key_delete(c->c_rkey);
	store_close(&c->c_st);
	mem_free(c);
	pthread_mutex_destroy(&c->c_qlock);
	pthread_cond_destroy(&c->c_qcond);
	pthread_cond_destroy(&c->c_qdone);
	pthread_mutex_destroy(&c->c_rlock);
	free(c);
}

int cache_flush(struct cache *c)
{
	struct witem *wi = calloc(1, sizeof(*wi));
	uint64_t ticket;
	int rc = 0;

	if (!wi)
		return -ENOMEM;
	wi->wi_kind = WI_BARRIER;
	pthread_mutex_lock(&c->c_qlock);
	wi->wi_next = NULL;
	if (c->c_qtail)
		c->c_qtail->wi_next = wi;
	else
		c->c_qhead = wi;
	c->c_qtail = wi;
	ticket = ++c->c_qenq;
	pthread_cond_signal(&c->c_qcond);
	for (;;) {
		if (atomic_load(&c->a_broken)) {
			rc = -EIO;
			break;
		}
		if (c->c_qdone_n >= ticket)
			break;
		if (atomic_load(&c->a_bypass)) {
			rc = -EAGAIN;
			break;
		}
		pthread_cond_wait(&c->c_qdone, &c->c_qlock);
	}
	pthread_mutex_unlock(&c->c_qlock);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Noting                                                                  */

int cache_note_attr(struct cache *c, const uint8_t *fattr3, unsigned flags)
{
	if (!c || !fattr3)
		return -EINVAL;
	return mem_note(c, fattr3, flags, NULL, 0);
}

int cache_note_handle(struct cache *c, const void *fh, size_t fhlen,
                      const uint8_t *fattr3, unsigned flags)
{
	if (!c || !fattr3 || !fh || fhlen == 0 || fhlen > CACHE_FH_MAX)
		return -EINVAL;
	return mem_note(c, fattr3, flags, fh, fhlen);
}

int cache_ident_of_handle(struct cache *c, const void *fh, size_t fhlen,
                          struct cache_ident *id)
{
	if (!c || !fh || fhlen == 0 || fhlen > CACHE_FH_MAX)
		return -EINVAL;
	return mem_handle_get(c, fh, fhlen, id);
}

/* ---------------------------------------------------------------------- */
/* Filling and invalidating                                                */

/* cache_fill and cache_fill_ref: with release, the item refers to data
 * (the caller's buffer) instead of copying it, and release(arg) is called
 * once, now or from the writer, whatever happens to the fill. */
static int fill_common(struct cache *c, const void *fh, size_t fhlen,
		       uint64_t off, const void *data, uint32_t len,
		       const uint8_t *fattr3, unsigned flags,
		       void (*release)(void *), void *arg, bool *owned)
{
	struct cache_ident id;
	struct cver v;
	struct witem *wi;
	uint64_t first, n = 0, bytes = 0;
	const uint8_t *start;
	uint32_t bs;
	int rc;

	if (!c || !fh || fhlen == 0 || fhlen > CACHE_FH_MAX || (len && !data))
		return -EINVAL;
	if (!fattr3 || get_be32(fattr3) != 1)
		return 0; /* no version for the data, or not a regular file */
	if ((rc = mem_note(c, fattr3, flags, fh, fhlen)))
		return rc;
	cache_ident_of_fattr(fattr3, &id);
	cver_of_fattr(fattr3, &v);
	bs = c->c_bs;
	first = cache_blk_ceil(off, bs);
	for (uint64_t b = first;; b++) {
		uint32_t bl = cache_blk_len(b, bs, v.v_size);
		if (bl == 0 || b * bs + bl > off + len)
			break;
		n++;
		bytes += bl;
	}
	if (n == 0)
		return 0;
	/* an immutable file may be trusting another version: skip the copy */
	if (!mem_current(c, &id, &v)) {
		atomic_fetch_add(&c->a_stale, n);
		return 0;
	}
	if (atomic_load(&c->a_bypass) || atomic_load(&c->a_broken)) {
		atomic_fetch_add(&c->a_dropped, 1);
		atomic_fetch_add(&c->a_dropped_bytes, bytes);
		return -ENOBUFS;
	}
	start = (const uint8_t *)data + (first * bs - off);
	if (!(wi = fill_item_new(&id, &v, flags, fattr3, fh, fhlen, first,
				 (uint32_t)n, release ? NULL : start, bytes)))
		return -ENOMEM;
	if (release) {
		wi->wi_ext = start;
		wi->wi_release = release;
		wi->wi_release_arg = arg;
		*owned = true; /* the item's free gives the data back */
	}
	return writer_enqueue_fill(c, wi);
}

int cache_fill(struct cache *c, const void *fh, size_t fhlen, uint64_t off,
               const void *data, uint32_t len, bool eof,
               const uint8_t *fattr3, unsigned flags)
{
	(void)eof; /* block ends come from the attributes' size */
	return fill_common(c, fh, fhlen, off, data, len, fattr3, flags, NULL,
			   NULL, NULL);
}

int cache_fill_ref(struct cache *c, const void *fh, size_t fhlen,
		   uint64_t off, const void *data, uint32_t len, bool eof,
		   const uint8_t *fattr3, unsigned flags,
		   void (*release)(void *), void *arg)
{
	bool owned = false;
	int rc;

	(void)eof;
	if (!release)
		return -EINVAL;
	rc = fill_common(c, fh, fhlen, off, data, len, fattr3, flags, release,
			 arg, &owned);
	if (!owned) /* no item was made: nothing holds the data */
		release(arg);
	return rc;
}

struct witem *fill_item_new(const struct cache_ident *id, const struct cver *v,
			    unsigned flags, const uint8_t *fattr3, const void *fh,
			    size_t fhlen, uint64_t blk, uint32_t nblk,
			    const void *data, uint32_t bytes)
{
	struct witem *wi = malloc(sizeof(*wi) + (data ? bytes : 0));

	if (!wi)
		return NULL;
	memset(wi, 0, sizeof(*wi));
	wi->wi_kind = WI_FILL;
	wi->wi_id = *id;
	wi->wi_ver = *v;
	wi->wi_flags = flags;
	wi->wi_first_seen = now_wall();
	memcpy(wi->wi_fattr, fattr3, CACHE_FATTR_SIZE);
	wi->wi_fhlen = (uint8_t)fhlen;
	memcpy(wi->wi_fh, fh, fhlen);
	wi->wi_blk = blk;
	wi->wi_nblk = nblk;
	wi->wi_len = bytes;
	if (data)
		memcpy(wi->wi_data, data, bytes);
	return wi;
}

int cache_invalidate_ident(struct cache *c, const struct cache_ident *id)
{
	if (!c || !id)
		return -EINVAL;
	return mem_invalidate(c, id);
}

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */

void cache_stats(struct cache *c, struct cache_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->cs_hits = atomic_load(&c->a_hits);
	st->cs_misses = atomic_load(&c->a_misses);
	st->cs_hit_bytes = atomic_load(&c->a_hit_bytes);
	st->cs_fill_bytes = atomic_load(&c->a_fill_bytes);
	st->cs_fill_blocks = atomic_load(&c->a_fill_blocks);
	st->cs_evictions = atomic_load(&c->a_evictions);
	st->cs_stale_drops = atomic_load(&c->a_stale);
	st->cs_dropped_fills = atomic_load(&c->a_dropped);
	st->cs_dropped_bytes = atomic_load(&c->a_dropped_bytes);
	st->cs_bytes = atomic_load(&c->a_bytes);
	st->cs_data_bytes = atomic_load(&c->a_data);
	st->cs_blocks = atomic_load(&c->a_blocks);
	st->cs_files = atomic_load(&c->a_files);
	st->cs_max_bytes = atomic_load(&c->a_cap);
	st->cs_commits = atomic_load(&c->a_commits);
	st->cs_write_errors = atomic_load(&c->a_werrs);
	st->cs_block_size = c->c_bs;
	st->cs_bypass = atomic_load(&c->a_bypass);
	st->cs_broken = atomic_load(&c->a_broken);
	pthread_mutex_lock(&c->c_qlock);
	st->cs_queue_bytes = c->c_qbytes;
	pthread_mutex_unlock(&c->c_qlock);
}
