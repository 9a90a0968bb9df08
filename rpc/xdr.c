/*
 * rpc/xdr.c — the zero-copy XDR cursor: decode, skip, and encode over a
 * caller's buffer.  Errors are sticky so walkers can test once at the end.
 */
#include "rpc/rpc.h"

#include <string.h>

static inline size_t pad4(size_t n)
{
	return (n + 3u) & ~(size_t)3u;
}

/* Reserve n bytes at the cursor or fail with err (sticky). */
static uint8_t *take(struct rpc_xdr *x, size_t n, int err)
{
	uint8_t *p;

	if (x->x_err)
		return NULL;
	if (n > x->x_len - x->x_pos) {
		x->x_err = err;
		return NULL;
	}
	p = x->x_base + x->x_pos;
	x->x_pos += n;
	return p;
}

int rpc_xdr_u32(struct rpc_xdr *x, uint32_t *v)
{
	uint8_t *p = take(x, 4, -EBADMSG);

	if (!p)
		return x->x_err;
	*v = rpc_get32(p);
	return 0;
}

int rpc_xdr_u64(struct rpc_xdr *x, uint64_t *v)
{
	uint8_t *p = take(x, 8, -EBADMSG);

	if (!p)
		return x->x_err;
	*v = rpc_get64(p);
	return 0;
}

int rpc_xdr_bool(struct rpc_xdr *x, bool *v)
{
	uint32_t u = 0;

	if (rpc_xdr_u32(x, &u))
		return x->x_err;
	if (u > 1) {
		x->x_err = -EBADMSG;
		return x->x_err;
	}
	*v = u;
	return 0;
}

int rpc_xdr_skip(struct rpc_xdr *x, size_t n)
{
	if (n > SIZE_MAX - 3) {
		x->x_err = x->x_err ? x->x_err : -EBADMSG;
		return x->x_err;
	}
	return take(x, pad4(n), -EBADMSG) ? 0 : x->x_err;
}

uint8_t *rpc_xdr_fixed(struct rpc_xdr *x, size_t n)
{
	uint8_t *p;

	if (n > SIZE_MAX - 3) {
		x->x_err = x->x_err ? x->x_err : -EBADMSG;
		return NULL;
	}
	p = take(x, pad4(n), -EBADMSG);
	return p;
}

uint8_t *rpc_xdr_opaque(struct rpc_xdr *x, uint32_t max, uint32_t *len)
{
	uint32_t n = 0;

	if (rpc_xdr_u32(x, &n))
		return NULL;
	if (n > max) {
		x->x_err = -EMSGSIZE;
		return NULL;
	}
	*len = n;
	return rpc_xdr_fixed(x, n);
}

int rpc_xdr_put_u32(struct rpc_xdr *x, uint32_t v)
{
	uint8_t *p = take(x, 4, -ENOSPC);

	if (!p)
		return x->x_err;
	rpc_put32(p, v);
	return 0;
}

int rpc_xdr_put_u64(struct rpc_xdr *x, uint64_t v)
{
	uint8_t *p = take(x, 8, -ENOSPC);

	if (!p)
		return x->x_err;
	rpc_put64(p, v);
	return 0;
}

int rpc_xdr_put_fixed(struct rpc_xdr *x, const void *src, size_t len)
{
	size_t padded = pad4(len);
	uint8_t *p = take(x, padded, -ENOSPC);

	if (!p)
		return x->x_err;
	if (len)
		memcpy(p, src, len);
	memset(p + len, 0, padded - len);
	return 0;
}

int rpc_xdr_put_bytes(struct rpc_xdr *x, const void *src, size_t len)
{
	uint8_t *p = take(x, len, -ENOSPC);

	if (!p)
		return x->x_err;
	if (len)
		memcpy(p, src, len);
	return 0;
}

int rpc_xdr_put_opaque(struct rpc_xdr *x, const void *src, uint32_t len)
{
	if (rpc_xdr_put_u32(x, len))
		return x->x_err;
	return rpc_xdr_put_fixed(x, src, len);
}
