/*
 * tests/fuzz/fuzz_visit.c — bounds-checking, patching walker visitors for
 * the call and reply fuzz targets.  A walker bug that reports a pointer
 * past its body shows up as an abort here or as an ASan report on the
 * write, instead of as silent corruption in the proxy.
 */
#include "tests/fuzz/fuzz_visit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum fz_kind {
	FZ_FATTR = 1, FZ_WCC, FZ_SATTR, FZ_FH, FZ_READA, FZ_WRITEA, FZ_READR,
	FZ_WRITER, FZ_COMMITA, FZ_COMMITR, FZ_STATUS
};

static void fz_fail(const char *why, enum fz_kind k)
{
	fprintf(stderr, "fuzz_visit: %s (callback kind %d)\n", why, (int)k);
	abort();
}

/* Record a callback of kind k, reporting n bytes at p (p may be NULL). */
static void fz_touch(struct fz_walk *w, enum fz_kind k, uint8_t *p, size_t n)
{
	volatile uint8_t *q = p;
	size_t i;

	if (!w->fw_first)
		w->fw_first = (unsigned)k;
	w->fw_calls++;
	w->fw_sum = w->fw_sum * 31u + (uint32_t)k * 7u + (uint32_t)n;
	if (!p)
		return;
	if (p < w->fw_base || n > w->fw_len ||
	    (size_t)(p - w->fw_base) > w->fw_len - n)
		fz_fail("pointer outside the body", k);
	/* The write is what lets ASan see a pointer that escaped the
	 * buffer allocation altogether. */
	for (i = 0; i < n; i++)
		q[i] = w->fw_patch ? (uint8_t)(q[i] ^ 0xa5u) : q[i];
}

static void fz_fattr(void *ctx, uint8_t *fattr)
{
	/* The ftype3 word is structure (the walker validates it), the
	 * rest is what the proxy rewrites. */
	fz_touch(ctx, FZ_FATTR, fattr + 4, NFS3_FATTR_SIZE - 4);
}

static void fz_wcc_pre(void *ctx, uint8_t *a)
{
	fz_touch(ctx, FZ_WCC, a, NFS3_WCC_ATTR_SIZE);
}

static void fz_sattr(void *ctx, uint8_t *uid, uint8_t *gid)
{
	fz_touch(ctx, FZ_SATTR, uid, uid ? 4 : 0);
	fz_touch(ctx, FZ_SATTR, gid, gid ? 4 : 0);
}

static void fz_fh(void *ctx, unsigned n, uint8_t *fh, uint32_t len)
{
	(void)n;
	if (len > NFS3_FHSIZE)
		fz_fail("file handle longer than NFS3_FHSIZE", FZ_FH);
	fz_touch(ctx, FZ_FH, fh, len);
}

static void fz_read_args(void *ctx, uint64_t off, uint32_t count)
{
	(void)off;
	(void)count;
	fz_touch(ctx, FZ_READA, NULL, 0);
}

static void fz_write_args(void *ctx, uint64_t off, uint32_t count,
			  uint32_t stable, uint8_t *data, uint32_t len)
{
	(void)off;
	(void)count;
	if (stable > 2)
		fz_fail("stable_how out of range", FZ_WRITEA);
	fz_touch(ctx, FZ_WRITEA, data, len);
}

static void fz_read_res(void *ctx, uint32_t count, bool eof, uint8_t *data,
			uint32_t len)
{
	(void)count;
	(void)eof;
	fz_touch(ctx, FZ_READR, data, len);
}

static void fz_write_res(void *ctx, uint32_t count, uint32_t committed,
			 uint8_t *verf)
{
	(void)count;
	(void)committed;
	fz_touch(ctx, FZ_WRITER, verf, NFS3_WRITEVERFSIZE);
}

static void fz_commit_args(void *ctx, uint64_t off, uint32_t count)
{
	(void)off;
	(void)count;
	fz_touch(ctx, FZ_COMMITA, NULL, 0);
}

static void fz_commit_res(void *ctx, uint8_t *verf)
{
	fz_touch(ctx, FZ_COMMITR, verf, NFS3_WRITEVERFSIZE);
}

static void fz_status(void *ctx, uint32_t status)
{
	struct fz_walk *w = ctx;

	(void)status;
	w->fw_status++;
	fz_touch(ctx, FZ_STATUS, NULL, 0);
}

const struct rpc_nfs3_visit fz_visit = {
	.v_fattr = fz_fattr,
	.v_wcc_pre = fz_wcc_pre,
	.v_sattr = fz_sattr,
	.v_fh = fz_fh,
	.v_read_args = fz_read_args,
	.v_write_args = fz_write_args,
	.v_read_res = fz_read_res,
	.v_write_res = fz_write_res,
	.v_commit_args = fz_commit_args,
	.v_commit_res = fz_commit_res,
	.v_status = fz_status,
};

static ssize_t fz_walk_once(fz_walk_fn walk, uint32_t proc, uint8_t *buf,
			    size_t len, int patch, struct fz_walk *w)
{
	memset(w, 0, sizeof(*w));
	w->fw_base = buf;
	w->fw_len = len;
	w->fw_patch = patch;
	return walk(proc, buf, len, &fz_visit, w);
}

void fz_walk_check(fz_walk_fn walk, uint32_t proc, uint8_t *buf, size_t len,
		   int nfs3_reply)
{
	struct fz_walk a, b, c;
	ssize_t r0, ra, rb, rc;
	uint8_t *orig = malloc(len ? len : 1);

	if (!orig)
		return;
	memcpy(orig, buf, len);
	r0 = walk(proc, buf, len, NULL, NULL);
	ra = fz_walk_once(walk, proc, buf, len, 0, &a);
	if (ra != r0)
		fz_fail("visited walk differs from the validation walk", 0);
	if (ra > (ssize_t)len)
		fz_fail("walk claims more bytes than it was given", 0);
	if (ra < 0 && a.fw_calls)
		fz_fail("callbacks on a body that failed to parse", a.fw_first);
	if (ra >= 0 && nfs3_reply &&
	    (a.fw_status != 1 || a.fw_first != FZ_STATUS))
		fz_fail("reply status not reported exactly once, first", 0);
	if (memcmp(orig, buf, len))
		fz_fail("a walk changed the message by itself", 0);
	/* Changing every reported byte must not change the structure, and
	 * doing it twice must restore the message exactly. */
	rb = fz_walk_once(walk, proc, buf, len, 1, &b);
	rc = fz_walk_once(walk, proc, buf, len, 1, &c);
	if (rb != ra || rc != ra || b.fw_sum != a.fw_sum ||
	    c.fw_sum != a.fw_sum || b.fw_calls != a.fw_calls)
		fz_fail("patching reported bytes changed the walk", 0);
	if (memcmp(orig, buf, len))
		fz_fail("patch + unpatch did not restore the message", 0);
	free(orig);
}
