/*
 * cache/writer.c — the writer thread: the only owner of LMDB write
 * transactions.  It takes queued fills, version changes, handle mappings
 * and invalidations, applies them in groups (one commit per group_bytes
 * or group_ms), turns recorded accesses into LRU order, evicts down to the
 * low watermark, and switches the cache to bypass when the disk or map is
 * full — the event loop never waits for any of it.
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

/* ---------------------------------------------------------------------- */
/* Queue (called from any thread)                                          */

static void q_append(struct cache *c, struct witem *wi)
{
	wi->wi_next = NULL;
	if (c->c_qtail)
		c->c_qtail->wi_next = wi;
	else
		c->c_qhead = wi;
	c->c_qtail = wi;
	c->c_qenq++;
	if (c->c_qwaiting)
		pthread_cond_signal(&c->c_qcond);
}

void writer_enqueue(struct cache *c, struct witem *wi)
{
	pthread_mutex_lock(&c->c_qlock);
	q_append(c, wi);
	pthread_mutex_unlock(&c->c_qlock);
}

static void count_drop(struct cache *c, uint64_t len)
{
	atomic_fetch_add(&c->a_dropped, 1);
	atomic_fetch_add(&c->a_dropped_bytes, len);
}

void witem_free(struct witem *wi)
{
	if (wi->wi_release)
		wi->wi_release(wi->wi_release_arg);
	free(wi);
}

int writer_enqueue_fill(struct cache *c, struct witem *wi)
{
	bool ok = false;

	if (!atomic_load(&c->a_bypass) && !atomic_load(&c->a_broken)) {
		pthread_mutex_lock(&c->c_qlock);
		if (c->c_qbytes + wi->wi_len <= c->c_opts.co_queue_bytes) {
			c->c_qbytes += wi->wi_len;
			q_append(c, wi);
			ok = true;
		}
		pthread_mutex_unlock(&c->c_qlock);
	}
	if (ok)
		return 0;
	count_drop(c, wi->wi_len);
	witem_free(wi);
	return -ENOBUFS;
}

void writer_touch(struct cache *c, const struct cache_ident *id, uint64_t blk,
                  uint32_t n)
{
	struct touch *t;

	pthread_mutex_lock(&c->c_qlock);
	t = c->c_ntouch ? &c->c_touch[c->c_ntouch - 1] : NULL;
	if (t && t->t_id.ci_fileid == id->ci_fileid &&
	    t->t_id.ci_fsid == id->ci_fsid && t->t_blk + t->t_n == blk &&
	    t->t_n < (1u << 20))
		t->t_n += n; /* sequential reads merge into one record */
	else if (c->c_ntouch < TOUCH_RING) {
		t = &c->c_touch[c->c_ntouch++];
		t->t_id = *id;
		t->t_blk = blk;
		t->t_n = n;
	} /* else: the ring is full; LRU order is approximate anyway */
	pthread_mutex_unlock(&c->c_qlock);
}

void cache_set_broken(struct cache *c, int rc, const char *where)
{
	if (atomic_exchange(&c->a_broken, true))
		return;
	cache_logf(c->c_opts.co_log, LOG_ERR,
	           "cache %s: %s: %s; cache disabled until restart%s",
	           c->c_st.s_dir, where, mdb_strerror(rc),
	           rc == MDB_PANIC ? "" : " (it will be rebuilt then)");
	if (rc != MDB_PANIC)
		store_mark_corrupt(&c->c_st);
}

/* ---------------------------------------------------------------------- */
/* Applying items (writer thread, inside its write transaction)            */

static int rec_get(struct store *s, MDB_txn *t, const struct cache_ident *id,
                   struct filerec *fr)
{
	uint8_t k[CACHE_IDENT_KEY];
	MDB_val key = { sizeof(k), k }, val;
	int rc;

	key_ident(k, id);
	if ((rc = mdb_get(t, s->s_files, &key, &val)))
		return rc;
	if (val.mv_size != sizeof(*fr))
		return MDB_CORRUPTED;
	memcpy(fr, val.mv_data, sizeof(*fr));
	return 0;
}

static int rec_put(struct store *s, MDB_txn *t, const struct cache_ident *id,
                   const struct filerec *fr)
{
	uint8_t k[CACHE_IDENT_KEY];
	MDB_val key = { sizeof(k), k }, val = { sizeof(*fr), (void *)fr };

	key_ident(k, id);
	return mdb_put(t, s->s_files, &key, &val, 0);
}

static int handle_put(struct store *s, MDB_txn *t, const struct witem *wi)
{
	uint8_t k[CACHE_IDENT_KEY];
	MDB_val key = { wi->wi_fhlen, (void *)wi->wi_fh }, val = { sizeof(k), k };

	key_ident(k, &wi->wi_id);
	return mdb_put(t, s->s_handles, &key, &val, 0);
}

/* A new version: the blocks of others go (their record too, if none is
 * left), and the record takes the new version. */
static int apply_version(struct cache *c, MDB_txn *t, const struct witem *wi,
                         struct wstat *ws)
{
	struct store *s = &c->c_st;
	struct filerec fr;
	int rc = rec_get(s, t, &wi->wi_id, &fr);

	if (rc == MDB_NOTFOUND)
		return 0; /* nothing stored for it: nothing to persist */
	if (rc)
		return rc;
	if (!cver_eq(&fr.fr_ver, &wi->wi_ver)) {
		rc = store_del_file_blocks(s, t, &wi->wi_id, &wi->wi_ver, ws);
		if (rc || (rc = rec_get(s, t, &wi->wi_id, &fr)))
			return rc == MDB_NOTFOUND ? 0 : rc;
	}
	fr.fr_ver = wi->wi_ver;
	fr.fr_flags = wi->wi_flags;
	fr.fr_first_seen = wi->wi_first_seen;
	memcpy(fr.fr_fattr, wi->wi_fattr, CACHE_FATTR_SIZE);
	return rec_put(s, t, &wi->wi_id, &fr);
}

static int apply_handle(struct cache *c, MDB_txn *t, const struct witem *wi)
{
	struct store *s = &c->c_st;
	struct filerec fr;
	int rc = rec_get(s, t, &wi->wi_id, &fr);

	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if ((rc = handle_put(s, t, wi)))
		return rc;
	fr.fr_fhlen = wi->wi_fhlen;
	memcpy(fr.fr_fh, wi->wi_fh, wi->wi_fhlen);
	return rec_put(s, t, &wi->wi_id, &fr);
}

/* The record a fill's blocks are counted in: created with the first block,
 * moved to the fill's version (dropping others) if it was older. */
static int fill_rec(struct cache *c, MDB_txn *t, const struct witem *wi,
                    struct filerec *fr, struct wstat *ws)
{
	struct store *s = &c->c_st;
	int rc = rec_get(s, t, &wi->wi_id, fr);

	if (rc == 0 && !cver_eq(&fr->fr_ver, &wi->wi_ver)) {
		rc = store_del_file_blocks(s, t, &wi->wi_id, &wi->wi_ver, ws);
		if (rc == 0)
			rc = rec_get(s, t, &wi->wi_id, fr);
	}
	if (rc == MDB_NOTFOUND) {
		memset(fr, 0, sizeof(*fr));
		s->s_tot.t_files++;
		rc = 0;
	}
	if (rc)
		return rc;
	fr->fr_ver = wi->wi_ver;
	fr->fr_flags = wi->wi_flags;
	fr->fr_first_seen = wi->wi_first_seen;
	memcpy(fr->fr_fattr, wi->wi_fattr, CACHE_FATTR_SIZE);
	fr->fr_fhlen = wi->wi_fhlen;
	memcpy(fr->fr_fh, wi->wi_fh, wi->wi_fhlen);
	return 0;
}

/* Is the stored block (head h, value val) already what this fill would
 * write: same version and length, and by content the same chunk? */
static bool block_same(const struct witem *wi, const struct blkhdr *h,
                       const MDB_val *val, uint32_t len)
{
	if (BLK_LEN(h) != len || !cver_eq(&h->bh_ver, &wi->wi_ver))
		return false;
	if (!(h->bh_len & BLK_REF))
		return !wi->wi_hashed && val->mv_size == sizeof(*h) + len;
	return wi->wi_hashed && val->mv_size == sizeof(*h) + CACHE_HASH_SIZE &&
	       !memcmp((const uint8_t *)val->mv_data + sizeof(*h), wi->wi_hash,
	               CACHE_HASH_SIZE);
}

/* Store one block; an existing copy of the same version stays. */
static int fill_block(struct cache *c, MDB_txn *t, const struct witem *wi,
                      uint64_t blk, const uint8_t *data, uint32_t len,
                      struct filerec *fr, uint64_t seq, struct wstat *ws)
{
	struct store *s = &c->c_st;
	uint8_t k[CACHE_BLK_KEY], lk[CACHE_LRU_KEY], sq[8];
	MDB_val key = { sizeof(k), k }, val;
	MDB_val lkey = { sizeof(lk), lk }, empty = { 0, NULL }, sv = { 8, sq };
	struct blkhdr h;
	uint64_t ch = store_charge(s, len);
	int rc;

	key_blk(k, &wi->wi_id, blk);
	rc = mdb_get(t, s->s_blocks, &key, &val);
	if (rc == 0) {
		uint32_t olen;
		uint64_t och;
		memset(&h, 0, sizeof(h));
		memcpy(&h, val.mv_data, val.mv_size < sizeof(h) ? 0 : sizeof(h));
		if (block_same(wi, &h, &val, len))
			return 0;
		if ((rc = store_del_block(s, t, k, &olen, &och)))
			return rc;
		fr->fr_nblocks--;
		fr->fr_bytes -= och < fr->fr_bytes ? och : fr->fr_bytes;
		fr->fr_data -= olen < fr->fr_data ? olen : fr->fr_data;
	} else if (rc != MDB_NOTFOUND)
		return rc;
	h.bh_len = len;
	h.bh_crc = cache_crc32c(0, data, len);
	h.bh_ver = wi->wi_ver;
	if (wi->wi_hashed) {
		bool created;

		if ((rc = store_chunk_ref(s, t, wi->wi_hash, data, len,
		                          &created)))
			return rc;
		atomic_fetch_add(created ? &c->a_chunks_new
		                         : &c->a_chunks_shared, 1);
		h.bh_len |= BLK_REF;
		ch = store_entry_charge(s, &h);
		val.mv_size = sizeof(h) + CACHE_HASH_SIZE;
	} else
		val.mv_size = sizeof(h) + len;
	if ((rc = mdb_put(t, s->s_blocks, &key, &val, MDB_RESERVE)))
		return rc;
	memcpy(val.mv_data, &h, sizeof(h));
	if (wi->wi_hashed)
		memcpy((uint8_t *)val.mv_data + sizeof(h), wi->wi_hash,
		       CACHE_HASH_SIZE);
	else
		memcpy((uint8_t *)val.mv_data + sizeof(h), data, len);
	put_be64(sq, seq);
	memcpy(lk, sq, 8);
	memcpy(lk + 8, k, CACHE_BLK_KEY);
	if ((rc = mdb_put(t, s->s_atime, &key, &sv, 0)) ||
	    (rc = mdb_put(t, s->s_lru, &lkey, &empty, 0)))
		return rc;
	fr->fr_nblocks++;
	fr->fr_bytes += ch;
	fr->fr_data += len;
	s->s_tot.t_blocks++;
	s->s_tot.t_bytes += ch;
	s->s_tot.t_data += wi->wi_hashed ? 0 : len; /* chunks count once */
	ws->w_fill_blocks++;
	ws->w_fill_bytes += len;
	return 0;
}

static int apply_fill(struct cache *c, MDB_txn *t, const struct witem *wi,
                      uint64_t seq, struct wstat *ws)
{
	struct store *s = &c->c_st;
	const uint8_t *p = witem_bytes(wi);
	uint64_t left = wi->wi_len;
	struct filerec fr;
	int rc;

	/* the file moved on while this waited in the queue: not worth a byte */
	if (!mem_current(c, &wi->wi_id, &wi->wi_ver)) {
		ws->w_stale += wi->wi_nblk;
		return 0;
	}
	if ((rc = fill_rec(c, t, wi, &fr, ws)))
		return rc;
	for (uint32_t i = 0; i < wi->wi_nblk && rc == 0; i++) {
		uint32_t len = cache_blk_len(wi->wi_blk + i, s->s_bs,
		                             wi->wi_ver.v_size);
		if (len == 0 || len > left)
			break;
		rc = fill_block(c, t, wi, wi->wi_blk + i, p, len, &fr, seq, ws);
		p += len;
		left -= len;
	}
	if (rc == 0 && fr.fr_nblocks == 0) {
		s->s_tot.t_files--; /* nothing stored after all */
		return 0;
	}
	if (rc || (rc = rec_put(s, t, &wi->wi_id, &fr)))
		return rc;
	return handle_put(s, t, wi);
}

static int apply_item(struct cache *c, MDB_txn *t, const struct witem *wi,
                      uint64_t seq, struct wstat *ws)
{
	switch (wi->wi_kind) {
	case WI_VERSION:
		return apply_version(c, t, wi, ws);
	case WI_HANDLE:
		return apply_handle(c, t, wi);
	case WI_FILL:
		return apply_fill(c, t, wi, seq, ws);
	case WI_INVAL:
		return store_del_file_blocks(&c->c_st, t, &wi->wi_id, NULL, ws);
	case WI_BARRIER:
		break;
	}
	return 0;
}

/* Move touched blocks to the head of the access order (once per group). */
static int apply_touches(struct cache *c, MDB_txn *t, const struct touch *tv,
                         unsigned n, uint64_t seq)
{
	struct store *s = &c->c_st;
	uint8_t k[CACHE_BLK_KEY], lk[CACHE_LRU_KEY], sq[8];
	MDB_val key = { sizeof(k), k }, val, lkey = { sizeof(lk), lk };
	MDB_val empty = { 0, NULL }, sv = { 8, sq };
	int rc = 0;

	put_be64(sq, seq);
	for (unsigned i = 0; i < n && rc == 0; i++)
		for (uint32_t b = 0; b < tv[i].t_n && rc == 0; b++) {
			key_blk(k, &tv[i].t_id, tv[i].t_blk + b);
			rc = mdb_get(t, s->s_atime, &key, &val);
			if (rc == MDB_NOTFOUND) {
				rc = 0; /* evicted or replaced meanwhile */
				continue;
			}
			if (rc || val.mv_size != 8 || !memcmp(val.mv_data, sq, 8))
				continue;
			memcpy(lk, val.mv_data, 8);
			memcpy(lk + 8, k, CACHE_BLK_KEY);
			rc = mdb_del(t, s->s_lru, &lkey, NULL);
			if (rc && rc != MDB_NOTFOUND)
				break;
			memcpy(lk, sq, 8);
			if ((rc = mdb_put(t, s->s_lru, &lkey, &empty, 0)))
				break;
			rc = mdb_put(t, s->s_atime, &key, &sv, 0);
		}
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Groups                                                                  */

static void publish(struct cache *c, const struct wstat *ws)
{
	const struct totals *t = &c->c_st.s_tot;

	atomic_store(&c->a_bytes, t->t_bytes);
	atomic_store(&c->a_data, t->t_data);
	atomic_store(&c->a_blocks, t->t_blocks);
	atomic_store(&c->a_files, t->t_files);
	if (ws) {
		atomic_fetch_add(&c->a_fill_bytes, ws->w_fill_bytes);
		atomic_fetch_add(&c->a_fill_blocks, ws->w_fill_blocks);
		atomic_fetch_add(&c->a_evictions, ws->w_evicted);
		atomic_fetch_add(&c->a_stale, ws->w_stale);
		atomic_fetch_add(&c->a_commits, 1);
	}
}

/* LMDB reports a short write (a file system that filled up mid-write) as
 * EIO; a file system with less free space than two groups is full too. */
static bool disk_full(struct cache *c, int rc)
{
	struct statvfs sv;

	if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT)
		return true;
	if (rc != EIO || statvfs(c->c_st.s_dir, &sv) < 0)
		return false;
	return (uint64_t)sv.f_bavail * sv.f_frsize <
	       2ull * c->c_opts.co_group_bytes;
}

/* A reader that died holding a snapshot (a killed mdb_dump or `gridvfs
 * cache stat`, say) keeps every page freed since from reuse until its
 * slot is cleared, and LMDB clears dead readers' slots only when asked:
 * without this the map fills and stays full, every retry fails again and
 * lowers the cap once more, until a restart. */
static void clear_dead_readers(struct cache *c)
{
	int dead = 0;

	if (mdb_reader_check(c->c_st.s_env, &dead) == 0 && dead > 0)
		cache_logf(c->c_opts.co_log, LOG_NOTICE,
		           "cache %s: cleared %d reader slot(s) of dead "
		           "processes (their old snapshots kept freed pages "
		           "from reuse)", c->c_st.s_dir, dead);
}

/* A write failed: disk or map full → bypass (and a lower cap, so that
 * eviction makes room inside the file that exists); anything that means
 * LMDB is damaged → broken. */
static void writer_fail(struct cache *c, int rc, const char *where)
{
	uint64_t cap, ncap;

	if (store_fatal(rc)) {
		cache_set_broken(c, rc, where);
		return;
	}
	atomic_fetch_add(&c->a_werrs, 1);
	c->c_retry_at_ms = now_ms() + c->c_opts.co_retry_ms;
	cap = atomic_load(&c->a_cap);
	ncap = c->c_st.s_tot.t_bytes / 100u * c->c_opts.co_low_pct;
	if (disk_full(c, rc) && ncap < cap)
		atomic_store(&c->a_cap, ncap);
	else
		ncap = cap;
	if (rc == MDB_MAP_FULL)
		clear_dead_readers(c);
	if (!atomic_exchange(&c->a_bypass, true))
		cache_logf(c->c_opts.co_log, LOG_WARNING,
		           "cache %s: %s: %s (%s); bypassing the cache (fills "
		           "dropped, reads served from what it holds), "
		           "retrying in %u ms with cap %llu bytes",
		           c->c_st.s_dir, where, mdb_strerror(rc),
		           rc == MDB_MAP_FULL ? "LMDB map full"
		           : disk_full(c, rc) ? "cache file system full"
		                              : "write error",
		           c->c_opts.co_retry_ms, (unsigned long long)ncap);
}

/* Items of a failed group: control items go back to the queue's front
 * (invalidations must not be lost), fills are dropped. */
static void group_undo(struct cache *c, struct witem *done)
{
	struct witem *keep = NULL, *last = NULL, *n;
	uint64_t dropped = 0;

	for (; done; done = n) {
		n = done->wi_next;
		if (done->wi_kind == WI_FILL || done->wi_kind == WI_BARRIER) {
			if (done->wi_kind == WI_FILL)
				count_drop(c, done->wi_len);
			witem_free(done);
			dropped++;
			continue;
		}
		done->wi_next = NULL;
		if (last)
			last->wi_next = done;
		else
			keep = done;
		last = done;
	}
	pthread_mutex_lock(&c->c_qlock);
	if (keep) {
		last->wi_next = c->c_qhead;
		if (!c->c_qhead)
			c->c_qtail = last;
		c->c_qhead = keep;
	}
	c->c_qdone_n += dropped;
	pthread_cond_broadcast(&c->c_qdone);
	pthread_mutex_unlock(&c->c_qlock);
}

static void group_done(struct cache *c, struct witem *done)
{
	uint64_t n = 0;

	for (struct witem *wi = done, *nx; wi; wi = nx) {
		nx = wi->wi_next;
		if (wi->wi_kind == WI_INVAL)
			mem_inval_done(c, &wi->wi_id);
		witem_free(wi);
		n++;
	}
	pthread_mutex_lock(&c->c_qlock);
	c->c_qdone_n += n;
	pthread_cond_broadcast(&c->c_qdone);
	pthread_mutex_unlock(&c->c_qlock);
}

/* Take what is queued, waiting up to the group deadline for more while
 * under group_bytes, but no more fill data than room (at least one item):
 * a backlog longer than a group (the queue holds up to co_queue_bytes)
 * must not become one transaction, or a small cache's map (2 x cap +
 * 64 MiB) fills before eviction runs at the group's end.  Returns the
 * detached list (NULL: nothing came). */
static struct witem *group_take(struct cache *c, uint64_t deadline,
                                uint64_t have, uint64_t room)
{
	struct witem *l, *last = NULL;
	uint64_t taken = 0;

	pthread_mutex_lock(&c->c_qlock);
	while (!c->c_qhead && !c->c_stop && have > 0) {
		uint64_t now = now_ms();
		struct timespec ts;
		if (now >= deadline)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(deadline - now) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		c->c_qwaiting = true;
		pthread_cond_timedwait(&c->c_qcond, &c->c_qlock, &ts);
		c->c_qwaiting = false;
	}
	l = c->c_qhead;
	for (struct witem *wi = l; wi && (!last || taken < room);
	     wi = wi->wi_next) {
		if (wi->wi_kind == WI_FILL) {
			taken += wi->wi_len;
			c->c_qbytes -= wi->wi_len;
		}
		last = wi;
	}
	if (last) {
		c->c_qhead = last->wi_next;
		if (!c->c_qhead)
			c->c_qtail = NULL;
		last->wi_next = NULL;
	}
	pthread_mutex_unlock(&c->c_qlock);
	return l;
}

/* Apply items, touches and eviction, then put totals; -1 with *rc set on
 * failure.  Items applied are appended to *done. */
static int group_body(struct cache *c, MDB_txn *t, struct witem ***dt,
                      struct wstat *ws, const char **where)
{
	struct store *s = &c->c_st;
	uint64_t start = now_ms(), bytes = 0, seq = s->s_tot.t_seq;
	uint64_t cap = atomic_load(&c->a_cap);
	struct touch *tv = NULL;
	unsigned nt = 0;
	int rc = 0;

	for (;;) {
		struct witem *l = group_take(
			c, start + c->c_opts.co_group_ms, bytes + 1,
			c->c_opts.co_group_bytes - bytes);
		if (!l)
			break;
		for (struct witem *wi = l; wi; wi = wi->wi_next) {
			if (rc == 0)
				rc = apply_item(c, t, wi, seq, ws);
			/* A fill by reference is in LMDB's own pages now (or
			 * will be dropped if the group fails): give the reply
			 * buffer back at once, not after the commit, so the
			 * loop reuses it instead of growing the heap by a
			 * group's worth of buffers (docs/benchmarks.md). */
			if (wi->wi_release) {
				wi->wi_release(wi->wi_release_arg);
				wi->wi_release = NULL;
				wi->wi_ext = NULL;
			}
			bytes += wi->wi_kind == WI_FILL ? wi->wi_len : 0;
			**dt = wi;
			*dt = &wi->wi_next;
		}
		**dt = NULL;
		if (rc) {
			*where = "storing blocks";
			return rc;
		}
		if (bytes >= c->c_opts.co_group_bytes ||
		    now_ms() >= start + c->c_opts.co_group_ms)
			break;
	}
	pthread_mutex_lock(&c->c_qlock);
	if (c->c_ntouch && (tv = malloc(c->c_ntouch * sizeof(*tv)))) {
		nt = c->c_ntouch;
		memcpy(tv, c->c_touch, nt * sizeof(*tv));
	}
	c->c_ntouch = 0;
	pthread_mutex_unlock(&c->c_qlock);
	rc = apply_touches(c, t, tv, nt, seq);
	free(tv);
	if (rc == 0 && s->s_tot.t_bytes > cap) {
		*where = "evicting";
		rc = store_evict(s, t, cap / 100u * c->c_opts.co_low_pct, ws);
	}
	if (rc == 0 && (rc = store_put_totals(s, t)))
		*where = "storing totals";
	return rc;
}

/* Writes work again: give back what the failure took from the cap, as far
 * as the file system's free space allows (keeping two groups spare, the
 * margin disk_full uses), so that a disk someone else filled for a while
 * does not shrink the cache until the next restart. */
static uint64_t cap_restore(struct cache *c)
{
	uint64_t cap = atomic_load(&c->a_cap), want = c->c_opts.co_max_bytes;
	uint64_t spare = 2ull * c->c_opts.co_group_bytes, room;
	struct statvfs sv;

	if (cap >= want || statvfs(c->c_st.s_dir, &sv) < 0)
		return cap;
	room = (uint64_t)sv.f_bavail * sv.f_frsize;
	room = (room > spare ? room - spare : 0) + c->c_st.s_tot.t_bytes;
	if (room < want)
		want = room;
	if (want > cap) {
		atomic_store(&c->a_cap, want);
		cap = want;
	}
	return cap;
}

static void writer_group(struct cache *c)
{
	struct store *s = &c->c_st;
	struct totals saved = s->s_tot;
	struct witem *done = NULL, **dt = &done;
	struct wstat ws = { 0, 0, 0, 0 };
	const char *where = "beginning a write transaction";
	MDB_txn *t;
	int rc;

	if (atomic_load(&c->a_bypass))
		clear_dead_readers(c); /* before a retry */
	rc = mdb_txn_begin(s->s_env, NULL, 0, &t);
	if (rc == 0) {
		s->s_tot.t_seq++;
		rc = group_body(c, t, &dt, &ws, &where);
		if (rc)
			mdb_txn_abort(t);
		else if ((rc = mdb_txn_commit(t)))
			where = "committing";
	}
	if (rc) {
		s->s_tot = saved;
		writer_fail(c, rc, where);
		group_undo(c, done);
		return;
	}
	store_cover_pages(s);
	publish(c, &ws);
	if (atomic_exchange(&c->a_bypass, false))
		cache_logf(c->c_opts.co_log, LOG_NOTICE,
		           "cache %s: writes resumed (cap %llu bytes)", s->s_dir,
		           (unsigned long long)cap_restore(c));
	group_done(c, done);
}

/* Broken cache: everything queued is discarded. */
static void writer_discard(struct cache *c)
{
	struct witem *l = group_take(c, 0, 0, UINT64_MAX);

	for (struct witem *wi = l; wi; wi = wi->wi_next)
		if (wi->wi_kind == WI_FILL)
			count_drop(c, wi->wi_len);
	group_done(c, l);
	pthread_mutex_lock(&c->c_qlock);
	c->c_ntouch = 0;
	pthread_mutex_unlock(&c->c_qlock);
}

/* Wait for work; true when a group should run now, false to exit. */
static bool writer_wait(struct cache *c)
{
	uint64_t last = now_ms();

	pthread_mutex_lock(&c->c_qlock);
	for (;;) {
		uint64_t now = now_ms(), until = now + 1000;
		bool bypass = atomic_load(&c->a_bypass);
		bool work = c->c_qhead || (c->c_ntouch && now >= last + 1000);
		struct timespec ts;

		if (atomic_load(&c->a_broken)) {
			if (c->c_stop)
				break;
			if (c->c_qhead || c->c_ntouch) {
				pthread_mutex_unlock(&c->c_qlock);
				writer_discard(c);
				pthread_mutex_lock(&c->c_qlock);
				continue;
			}
		} else if (c->c_stop) {
			/* one last try even in bypass, then leave */
			bool go = c->c_qhead || c->c_ntouch;
			pthread_mutex_unlock(&c->c_qlock);
			return go;
		} else if (bypass && now < c->c_retry_at_ms) {
			until = c->c_retry_at_ms;
		} else if (work || (bypass && now >= c->c_retry_at_ms)) {
			pthread_mutex_unlock(&c->c_qlock);
			return true;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(until - now) * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		c->c_qwaiting = true;
		pthread_cond_timedwait(&c->c_qcond, &c->c_qlock, &ts);
		c->c_qwaiting = false;
	}
	pthread_mutex_unlock(&c->c_qlock);
	return false;
}

static void *writer_main(void *arg)
{
	struct cache *c = arg;

	/* Linux applies nice per thread: the foreground (the proxy's loop,
	 * whose clients wait) goes first when the CPUs are busy, and the
	 * queue (co_queue_bytes) absorbs the burst until they are not. */
	if (c->c_opts.co_writer_nice > 0 &&
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
			c->c_opts.co_writer_nice) < 0)
		cache_logf(c->c_opts.co_log, LOG_INFO,
		           "cache: writer priority not lowered: %s",
		           strerror(errno));
	while (writer_wait(c)) {
		bool stop;
		writer_group(c);
		pthread_mutex_lock(&c->c_qlock);
		stop = c->c_stop;
		pthread_mutex_unlock(&c->c_qlock);
		if (stop && atomic_load(&c->a_bypass)) {
			writer_discard(c);
			break;
		}
	}
	return NULL;
}

int writer_start(struct cache *c)
{
	int rc = pthread_create(&c->c_writer, NULL, writer_main, c);

	if (rc)
		return -rc;
	c->c_writer_up = true;
	return 0;
}

void writer_stop(struct cache *c)
{
	if (!c->c_writer_up)
		return;
	pthread_mutex_lock(&c->c_qlock);
	c->c_stop = true;
	pthread_cond_signal(&c->c_qcond);
	pthread_mutex_unlock(&c->c_qlock);
	pthread_join(c->c_writer, NULL);
	c->c_writer_up = false;
	writer_discard(c); /* anything left (broken cache) */
}
