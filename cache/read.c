/*
 * cache/read.c — the read path: any thread serves READs from the LMDB mmap
 * in its own short read transaction (kept reset between calls, renewed per
 * call), checking every block's version tag against the file's current
 * version.  Accesses are recorded in memory for the writer's LRU order.
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Thread exit: give the reader slot back. */
void read_thread_exit(void *p)
{
	struct rtxn *r = p, **pp;
	struct cache *c = r->r_cache;

	pthread_mutex_lock(&c->c_rlock);
	for (pp = &c->c_readers; *pp; pp = &(*pp)->r_next)
		if (*pp == r) {
			*pp = r->r_next;
			break;
		}
	pthread_mutex_unlock(&c->c_rlock);
	mdb_txn_abort(r->r_txn);
	free(r);
}

/* cache_close: every thread's read transaction (no reader may be active). */
void read_close_all(struct cache *c)
{
	pthread_mutex_lock(&c->c_rlock);
	while (c->c_readers) {
		struct rtxn *r = c->c_readers;
		c->c_readers = r->r_next;
		mdb_txn_abort(r->r_txn);
		free(r);
	}
	pthread_mutex_unlock(&c->c_rlock);
}

/* This thread's read transaction, renewed: a fresh snapshot. */
static MDB_txn *rtxn_get(struct cache *c, int *rcp)
{
	struct rtxn *r = pthread_getspecific(c->c_rkey);
	int rc;

	if (r) {
		if ((rc = mdb_txn_renew(r->r_txn)) == 0)
			return r->r_txn;
		*rcp = rc;
		return NULL;
	}
	if (!(r = calloc(1, sizeof(*r)))) {
		*rcp = ENOMEM;
		return NULL;
	}
	if ((rc = mdb_txn_begin(c->c_st.s_env, NULL, MDB_RDONLY, &r->r_txn))) {
		free(r);
		*rcp = rc;
		return NULL;
	}
	r->r_cache = c;
	pthread_mutex_lock(&c->c_rlock);
	r->r_next = c->c_readers;
	c->c_readers = r;
	pthread_mutex_unlock(&c->c_rlock);
	pthread_setspecific(c->c_rkey, r);
	return r->r_txn;
}

/* LMDB errors on the read path: damage disables the cache, the rest is a
 * miss. */
static int read_err(struct cache *c, int rc)
{
	if (store_fatal(rc))
		cache_set_broken(c, rc, "reading");
	return -ENOENT;
}

/* Handle → identity → what is current, consulting the persisted maps when
 * memory does not know them (first access after a restart). */
static int resolve(struct cache *c, MDB_txn *t, const void *fh, size_t fhlen,
                   struct cache_ident *id, struct fview *fv)
{
	struct store *s = &c->c_st;
	uint8_t k[CACHE_IDENT_KEY];
	MDB_val key, val;
	struct filerec fr;
	bool isnew;
	int rc;

	if (mem_handle_get(c, fh, fhlen, id)) {
		key.mv_size = fhlen;
		key.mv_data = (void *)fh;
		if ((rc = mdb_get(t, s->s_handles, &key, &val)))
			return read_err(c, rc);
		if (val.mv_size != CACHE_IDENT_KEY)
			return -ENOENT;
		id->ci_fsid = get_be64(val.mv_data);
		id->ci_fileid = get_be64((uint8_t *)val.mv_data + 8);
		mem_handle_put(c, fh, fhlen, id, &isnew);
	}
	if (mem_view(c, id, fv))
		return 0;
	key_ident(k, id);
	key.mv_size = sizeof(k);
	key.mv_data = k;
	if ((rc = mdb_get(t, s->s_files, &key, &val)))
		return read_err(c, rc);
	if (val.mv_size != sizeof(fr))
		return -ENOENT;
	memcpy(&fr, val.mv_data, sizeof(fr));
	mem_load(c, id, &fr);
	return mem_view(c, id, fv) ? 0 : -ENOENT;
}

struct rreq {
	uint64_t off, end;        /* clipped range */
	uint8_t *out;
	struct cache_range *miss; /* NULL: stop at the first missing block */
	unsigned maxmiss, nmiss;
	bool partial;             /* list misses instead of stopping */
	bool toomany;
	uint64_t copied;
};

static void miss_add(struct rreq *q, uint64_t s, uint64_t len)
{
	struct cache_range *m = q->nmiss ? &q->miss[q->nmiss - 1] : NULL;

	if (m && m->cr_off + m->cr_len == s) {
		m->cr_len += len;
		return;
	}
	if (q->nmiss == q->maxmiss) {
		q->toomany = true;
		return;
	}
	q->miss[q->nmiss].cr_off = s;
	q->miss[q->nmiss++].cr_len = len;
}

/* Point val at the data of a block value (its chunk's for a reference).
 * MDB_KEYEXIST (an internal "no") when the value is not usable as len
 * data bytes: a reference whose chunk is gone reads as a miss. */
static int block_data(struct cache *c, MDB_txn *t, const struct blkhdr *h,
                      MDB_val *val, uint32_t len)
{
	MDB_val ck, cv;
	struct chunkhdr ch;
	int rc;

	if (!(h->bh_len & BLK_REF)) {
		if (val->mv_size != sizeof(*h) + len)
			return MDB_KEYEXIST;
		val->mv_data = (uint8_t *)val->mv_data + sizeof(*h);
		val->mv_size = len;
		return 0;
	}
	if (val->mv_size != sizeof(*h) + CACHE_HASH_SIZE ||
	    !c->c_st.s_have_chunks)
		return MDB_KEYEXIST;
	ck.mv_size = CACHE_HASH_SIZE;
	ck.mv_data = (uint8_t *)val->mv_data + sizeof(*h);
	rc = mdb_get(t, c->c_st.s_chunks, &ck, &cv);
	if (rc)
		return rc == MDB_NOTFOUND ? MDB_KEYEXIST : rc;
	if (cv.mv_size != sizeof(ch) + len)
		return MDB_KEYEXIST;
	memcpy(&ch, cv.mv_data, sizeof(ch));
	if (ch.ch_len != len)
		return MDB_KEYEXIST;
	val->mv_data = (uint8_t *)cv.mv_data + sizeof(ch);
	val->mv_size = len;
	return 0;
}

/* Copy the blocks of the current version; returns 0, -ENOENT (first miss
 * when stopping at one) or an LMDB code. */
static int copy_blocks(struct cache *c, MDB_txn *t,
                       const struct cache_ident *id, const struct cver *v,
                       struct rreq *q)
{
	uint32_t bs = c->c_bs;
	uint64_t b0 = q->off / bs, b1 = (q->end - 1) / bs, run = b0;
	uint8_t k[CACHE_BLK_KEY];
	MDB_val key = { sizeof(k), k }, val;
	int rc = 0;

	for (uint64_t b = b0; b <= b1; b++) {
		uint32_t len = cache_blk_len(b, bs, v->v_size);
		uint64_t s = b * bs, from, to;
		struct blkhdr h;

		key_blk(k, id, b);
		rc = mdb_get(t, c->c_st.s_blocks, &key, &val);
		if (rc == 0 && val.mv_size >= sizeof(h)) {
			memcpy(&h, val.mv_data, sizeof(h));
			if (BLK_LEN(&h) == len && cver_eq(&h.bh_ver, v) &&
			    (rc = block_data(c, t, &h, &val, len)) == 0) {
				from = s > q->off ? s : q->off;
				to = s + len < q->end ? s + len : q->end;
				memcpy(q->out + (from - q->off),
				       (uint8_t *)val.mv_data + (from - s),
				       to - from);
				q->copied += to - from;
				continue;
			}
		}
		if (rc && rc != MDB_NOTFOUND && rc != MDB_KEYEXIST)
			return rc;
		rc = 0;
		if (b > run)
			writer_touch(c, id, run, (uint32_t)(b - run));
		run = b + 1;
		if (!q->partial)
			return -ENOENT;
		miss_add(q, s, len);
	}
	if (b1 + 1 > run)
		writer_touch(c, id, run, (uint32_t)(b1 + 1 - run));
	return 0;
}

static int read_common(struct cache *c, const void *fh, size_t fhlen,
                       uint64_t off, uint32_t count, void *out,
                       uint32_t *got, bool *eof, uint8_t *fattr_out,
                       struct rreq *q)
{
	struct cache_ident id;
	struct fview fv;
	MDB_txn *t;
	int rc = 0;

	if (atomic_load(&c->a_broken) || !(t = rtxn_get(c, &rc)))
		return rc ? read_err(c, rc) : -ENOENT;
	rc = resolve(c, t, fh, fhlen, &id, &fv);
	if (rc == 0 && !fv.fv_usable)
		rc = -ENOENT;
	if (rc == 0 && off < fv.fv_ver.v_size) {
		q->off = off;
		q->end = off + count < fv.fv_ver.v_size ? off + count
		                                        : fv.fv_ver.v_size;
		q->out = out;
		if (count)
			rc = copy_blocks(c, t, &id, &fv.fv_ver, q);
		if (rc > 0)
			rc = read_err(c, rc);
		*got = (uint32_t)(q->end - off);
		*eof = q->end == fv.fv_ver.v_size;
	} else if (rc == 0) {
		*got = 0;
		*eof = true;
	}
	mdb_txn_reset(t);
	if (rc == 0 && fattr_out)
		memcpy(fattr_out, fv.fv_fattr, CACHE_FATTR_SIZE);
	return rc;
}

static bool read_args_ok(const struct cache *c, const void *fh, size_t fhlen,
                         const void *out, const uint32_t *got, const bool *eof)
{
	return c && fh && fhlen && fhlen <= CACHE_FH_MAX && out && got && eof;
}

int cache_read(struct cache *c, const void *fh, size_t fhlen, uint64_t off,
               uint32_t count, void *out, uint32_t *got, bool *eof,
               uint8_t *fattr_out)
{
	struct rreq q = { 0, 0, NULL, NULL, 0, 0, false, false, 0 };
	int rc;

	if (!read_args_ok(c, fh, fhlen, out, got, eof))
		return -EINVAL;
	rc = read_common(c, fh, fhlen, off, count, out, got, eof, fattr_out, &q);
	if (rc == 0) {
		atomic_fetch_add(&c->a_hits, 1);
		atomic_fetch_add(&c->a_hit_bytes, *got);
	} else
		atomic_fetch_add(&c->a_misses, 1);
	return rc;
}

int cache_read_partial(struct cache *c, const void *fh, size_t fhlen,
                       uint64_t off, uint32_t count, void *out, uint32_t *got,
                       bool *eof, uint8_t *fattr_out,
                       struct cache_range *missing, unsigned maxmissing,
                       unsigned *nmissing)
{
	struct rreq q = { 0, 0, NULL, missing, maxmissing, 0, true, false, 0 };
	int rc;

	if (!read_args_ok(c, fh, fhlen, out, got, eof) || !nmissing ||
	    (maxmissing && !missing))
		return -EINVAL;
	*nmissing = 0;
	rc = read_common(c, fh, fhlen, off, count, out, got, eof, fattr_out, &q);
	if (rc == 0 && q.toomany)
		rc = -E2BIG;
	if (rc == 0 && q.nmiss == 0)
		atomic_fetch_add(&c->a_hits, 1);
	else
		atomic_fetch_add(&c->a_misses, 1);
	atomic_fetch_add(&c->a_hit_bytes, q.copied);
	if (rc == 0)
		*nmissing = q.nmiss;
	return rc;
}

int cache_invalidate(struct cache *c, const void *fh, size_t fhlen)
{
	struct cache_ident id;
	MDB_txn *t;
	MDB_val key = { fhlen, (void *)fh }, val;
	int rc = 0;

	if (!c || !fh || fhlen == 0 || fhlen > CACHE_FH_MAX)
		return -EINVAL;
	if (mem_handle_get(c, fh, fhlen, &id) == 0)
		return mem_invalidate(c, &id);
	if (atomic_load(&c->a_broken) || !(t = rtxn_get(c, &rc)))
		return -ENOENT;
	rc = mdb_get(t, c->c_st.s_handles, &key, &val);
	if (rc == 0 && val.mv_size == CACHE_IDENT_KEY) {
		id.ci_fsid = get_be64(val.mv_data);
		id.ci_fileid = get_be64((uint8_t *)val.mv_data + 8);
	} else
		rc = rc ? rc : MDB_NOTFOUND;
	mdb_txn_reset(t);
	if (rc)
		return read_err(c, rc);
	return mem_invalidate(c, &id);
}

int cache_read_chunk(struct cache *c, const uint8_t key[CACHE_HASH_SIZE],
                     void *out, uint32_t len)
{
	MDB_val k = { CACHE_HASH_SIZE, (void *)key }, v;
	struct chunkhdr ch;
	MDB_txn *t;
	int rc = 0;

	if (!c || !key || (len && !out))
		return -EINVAL;
	if (atomic_load(&c->a_broken) || !c->c_st.s_have_chunks ||
	    !(t = rtxn_get(c, &rc)))
		return rc ? read_err(c, rc) : -ENOENT;
	rc = mdb_get(t, c->c_st.s_chunks, &k, &v);
	if (rc == 0 && v.mv_size == sizeof(ch) + len) {
		memcpy(&ch, v.mv_data, sizeof(ch));
		if (ch.ch_len == len)
			memcpy(out, (uint8_t *)v.mv_data + sizeof(ch), len);
		else
			rc = MDB_NOTFOUND;
	} else if (rc == 0)
		rc = MDB_NOTFOUND;
	mdb_txn_reset(t);
	if (rc)
		return read_err(c, rc);
	atomic_fetch_add(&c->a_hit_bytes, len);
	return 0;
}
