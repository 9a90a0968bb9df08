/*
 * cache/dedup.c — content-addressed fills for files with VM-image metadata
 * (issue 7): a block whose content the proxy verified against its SHA-256
 * is queued with that key, and the writer stores it once per key (chunks
 * DBI, refcounted; see store.c) however many images hold it.
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cache_fill_hashed(struct cache *c, const void *fh, size_t fhlen,
                      uint64_t blk, const void *data, uint32_t len,
                      const uint8_t key[CACHE_HASH_SIZE],
                      const uint8_t *fattr3, unsigned flags)
{
	struct cache_ident id;
	struct cver v;
	struct witem *wi;
	int rc;

	if (!c || !fh || fhlen == 0 || fhlen > CACHE_FH_MAX || !key ||
	    (len && !data))
		return -EINVAL;
	if (!fattr3 || get_be32(fattr3) != 1)
		return 0; /* no version for the data, or not a regular file */
	if ((rc = mem_note(c, fattr3, flags, fh, fhlen)))
		return rc;
	cache_ident_of_fattr(fattr3, &id);
	cver_of_fattr(fattr3, &v);
	if (len == 0 || len != cache_blk_len(blk, c->c_bs, v.v_size))
		return len ? -EINVAL : 0; /* only whole blocks are stored */
	if (!mem_current(c, &id, &v)) {
		atomic_fetch_add(&c->a_stale, 1);
		return 0;
	}
	if (atomic_load(&c->a_bypass) || atomic_load(&c->a_broken) ||
	    !c->c_st.s_have_chunks) {
		atomic_fetch_add(&c->a_dropped, 1);
		atomic_fetch_add(&c->a_dropped_bytes, len);
		return -ENOBUFS;
	}
	if (!(wi = fill_item_new(&id, &v, flags, fattr3, fh, fhlen, blk, 1, data,
				 len)))
		return -ENOMEM;
	wi->wi_hashed = true;
	memcpy(wi->wi_hash, key, CACHE_HASH_SIZE);
	return writer_enqueue_fill(c, wi);
}

void cache_dedup_stats(struct cache *c, struct cache_dedup_stats *st)
{
	memset(st, 0, sizeof(*st));
	if (!c)
		return;
	st->cd_chunks_new = atomic_load(&c->a_chunks_new);
	st->cd_chunks_shared = atomic_load(&c->a_chunks_shared);
}
