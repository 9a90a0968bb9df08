/*
 * rpc/record.c — TCP record marking (RFC 5531 §11): reassembles fragments
 * into one contiguous message buffer, bounded in size and fragment count,
 * with a direct-read path so large WRITE/READ payloads are read straight
 * into their final buffer.
 */
#include "rpc/rpc.h"

#include <stdlib.h>
#include <string.h>

#define REC_MIN_CAP 4096u

void rpc_rec_init(struct rpc_rec *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->r_max = max;
}

void rpc_rec_free(struct rpc_rec *r)
{
	free(r->r_buf);
	r->r_buf = NULL;
	r->r_len = r->r_cap = 0;
}

bool rpc_rec_partial(const struct rpc_rec *r)
{
	return r->r_hdr_have || r->r_in_frag || r->r_len || r->r_nfrags;
}

/* Make room for `need` message bytes in total. */
static int rec_reserve(struct rpc_rec *r, size_t need)
{
	size_t cap = r->r_cap ? r->r_cap : REC_MIN_CAP;
	uint8_t *nb;

	if (need <= r->r_cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > r->r_max)
		cap = r->r_max;
	nb = realloc(r->r_buf, RPC_REC_HEADROOM + cap);
	if (!nb)
		return -ENOMEM;
	r->r_buf = nb;
	r->r_cap = cap;
	return 0;
}

/* A fragment header is complete: check bounds and prepare the buffer. */
static int rec_start_frag(struct rpc_rec *r)
{
	uint32_t mark = rpc_get32(r->r_hdr);
	uint32_t flen = mark & RPC_RM_LENMASK;

	r->r_hdr_have = 0;
	r->r_last = (mark & RPC_RM_LAST) != 0;
	if (r->r_zok) {
		r->r_zwant = (mark & RPC_RM_ZWANT) != 0;
		flen &= ~RPC_RM_ZWANT;
	}
	if (r->r_zok && (mark & RPC_RM_ZSTD)) {
		/* A compressed record is a whole message in one fragment. */
		if (!r->r_last || r->r_nfrags)
			return -EBADMSG;
		flen &= ~RPC_RM_ZSTD;
		if (!flen)
			return -EBADMSG;
		r->r_zstd = true;
	}
	if (++r->r_nfrags > RPC_REC_MAX_FRAGS)
		return -EMSGSIZE;
	if (flen > r->r_max - r->r_len)
		return -EMSGSIZE;
	if (r->r_last && r->r_len + flen == 0)
		return -EBADMSG;
	/* Grow for what this fragment announces, in one step for the
	 * common single-fragment message. */
	if (rec_reserve(r, r->r_len + flen))
		return -ENOMEM;
	r->r_frag_left = flen;
	r->r_in_frag = true;
	return 0;
}

static void rec_end_frag_if_done(struct rpc_rec *r)
{
	if (r->r_frag_left)
		return;
	r->r_in_frag = false;
	if (r->r_last)
		r->r_done = true;
}

ssize_t rpc_rec_feed(struct rpc_rec *r, const uint8_t *p, size_t n)
{
	size_t used = 0;
	int err;

	while (used < n && !r->r_done) {
		if (!r->r_in_frag) {
			size_t k = 4u - r->r_hdr_have;

			if (k > n - used)
				k = n - used;
			memcpy(r->r_hdr + r->r_hdr_have, p + used, k);
			r->r_hdr_have += (uint8_t)k;
			used += k;
			if (r->r_hdr_have < 4)
				break;
			if ((err = rec_start_frag(r)) < 0)
				return err;
			rec_end_frag_if_done(r); /* empty fragment */
			continue;
		}
		size_t k = r->r_frag_left;

		if (k > n - used)
			k = n - used;
		memcpy(r->r_buf + RPC_REC_HEADROOM + r->r_len, p + used, k);
		r->r_len += k;
		r->r_frag_left -= (uint32_t)k;
		used += k;
		rec_end_frag_if_done(r);
	}
	return (ssize_t)used;
}

uint8_t *rpc_rec_direct(struct rpc_rec *r, size_t *room)
{
	if (r->r_done || !r->r_in_frag || !r->r_frag_left)
		return NULL;
	*room = r->r_frag_left;
	return r->r_buf + RPC_REC_HEADROOM + r->r_len;
}

int rpc_rec_commit(struct rpc_rec *r, size_t k)
{
	if (!r->r_in_frag || k > r->r_frag_left)
		return -EINVAL;
	r->r_len += k;
	r->r_frag_left -= (uint32_t)k;
	rec_end_frag_if_done(r);
	return 0;
}

uint8_t *rpc_rec_take(struct rpc_rec *r, size_t *len)
{
	uint8_t *buf = r->r_buf;

	if (!r->r_done)
		return NULL;
	*len = r->r_len;
	r->r_buf = NULL;
	r->r_len = r->r_cap = 0;
	r->r_nfrags = 0;
	r->r_done = false;
	r->r_zstd = false;
	r->r_in_frag = false;
	r->r_hdr_have = 0;
	return buf;
}
