/*
 * proxy/zlink.c — zstd records between the roles: the per-record choice,
 * the link rate meter behind --compress auto, and a decoder that trusts
 * nothing it is sent.  See zlink.h.
 */
#include "config.h"
#include "proxy/zlink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

/* zstd level 1: it packs the test VM image's non-zero data 3.05x at
 * 380 MB/s on one core of the test machine (zstd -b, 1 MiB blocks), far
 * above any WAN it is meant for; level 3 gains 3 % at 230 MB/s, level 5
 * 6 % at 120 MB/s (docs/tls.md). */
#define ZLINK_LEVEL 1
/* The goodput meter samples after this much time with calls out. */
#define SAMPLE_NS (200ull * 1000000ull)
/* Back-off after incompressible records: skip 2^fails records, up to. */
#define SKIP_MAX 64u

static _Thread_local ZSTD_CCtx *t_cctx;
static _Thread_local ZSTD_DCtx *t_dctx;

void zlink_thread_done(void)
{
	ZSTD_freeCCtx(t_cctx);
	ZSTD_freeDCtx(t_dctx);
	t_cctx = NULL;
	t_dctx = NULL;
}

void zlink_out_init(struct zlink_out *z, enum zlink_mode mode,
		    uint64_t below_bytes_per_s, struct zlink_stats *stats)
{
	memset(z, 0, sizeof(*z));
	z->zo_mode = mode;
	z->zo_below = below_bytes_per_s;
	z->zo_stats = stats;
	z->zo_ask = mode == ZLINK_ON;
}

bool zlink_want(struct zlink_out *z, size_t len)
{
	if (z->zo_mode == ZLINK_OFF || len < ZLINK_MIN)
		return false;
	if (z->zo_mode == ZLINK_AUTO && !z->zo_peer_asks &&
	    (!z->zo_rate || z->zo_rate >= z->zo_below))
		return false;
	if (z->zo_skip) {
		z->zo_skip--;
		return false;
	}
	return true;
}

size_t zlink_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

size_t zlink_pack(struct zlink_out *z, const uint8_t *src, size_t len,
		  uint8_t *dst, size_t cap)
{
	size_t n;

	if (!t_cctx && !(t_cctx = ZSTD_createCCtx()))
		return 0;
	/* One frame that states its size (the receiver checks it first). */
	n = ZSTD_compressCCtx(t_cctx, dst, cap, src, len, ZLINK_LEVEL);
	if (ZSTD_isError(n) || n > len - len / 8) {
		if (z->zo_fails < 6)
			z->zo_fails++;
		z->zo_skip = 1u << z->zo_fails;
		if (z->zo_skip > SKIP_MAX)
			z->zo_skip = SKIP_MAX;
		if (z->zo_stats)
			z->zo_stats->zs_incompressible++;
		return 0;
	}
	z->zo_fails = 0;
	if (z->zo_stats) {
		z->zo_stats->zs_packed++;
		z->zo_stats->zs_raw_bytes += len;
		z->zo_stats->zs_wire_bytes += n;
	}
	return n;
}

void zlink_meter(struct zlink_out *z, bool busy, uint64_t bytes,
		 uint64_t now_ns)
{
	if (z->zo_busy_since) {
		uint64_t dt = now_ns - z->zo_busy_since;

		/* Fold the busy stretch in when it ends, or when it alone
		 * would complete a sample. */
		if (!busy || z->zo_acc_ns + dt >= SAMPLE_NS) {
			z->zo_acc_ns += dt;
			z->zo_acc_bytes += bytes - z->zo_busy_base;
			z->zo_busy_since = busy ? now_ns : 0;
			z->zo_busy_base = bytes;
		}
	} else if (busy) {
		z->zo_busy_since = now_ns ? now_ns : 1;
		z->zo_busy_base = bytes;
	}
	if (z->zo_acc_ns < SAMPLE_NS)
		return;
	{
		uint64_t r = z->zo_acc_bytes * 1000000000ull / z->zo_acc_ns;

		z->zo_rate = z->zo_rate ? (z->zo_rate * 3 + r) / 4 : r;
	}
	z->zo_acc_ns = z->zo_acc_bytes = 0;
	if (z->zo_mode == ZLINK_AUTO)
		z->zo_ask = z->zo_rate < z->zo_below;
}

static int why_set(char *why, size_t whylen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int why_set(char *why, size_t whylen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* The smallest window (zstd's minimum is 2^10) that covers max, at most
 * 2^30 (zstd's limit on 32-bit builds). */
static unsigned window_log_for(size_t max)
{
	unsigned lg = 10;

	while (lg < 30 && ((size_t)1 << lg) < max)
		lg++;
	return lg;
}

int zlink_unpack(const uint8_t *src, size_t len, size_t max, size_t headroom,
		 uint8_t **out, size_t *outlen, struct zlink_stats *stats,
		 char *why, size_t whylen)
{
	unsigned long long size = ZSTD_getFrameContentSize(src, len);
	size_t flen, n;
	uint8_t *buf;

	if (size == ZSTD_CONTENTSIZE_ERROR)
		return why_set(why, whylen, -EBADMSG,
			       "compressed record is not a zstd frame");
	if (size == ZSTD_CONTENTSIZE_UNKNOWN)
		return why_set(why, whylen, -EMSGSIZE,
			       "compressed record states no size");
	if (size == 0 || size > max)
		return why_set(why, whylen, -EMSGSIZE,
			       "compressed record states %llu bytes (allowed "
			       "1..%zu, --max-record)", size, max);
	flen = ZSTD_findFrameCompressedSize(src, len);
	if (ZSTD_isError(flen) || flen != len)
		return why_set(why, whylen, -EBADMSG,
			       "compressed record is not exactly one zstd "
			       "frame (%s)", ZSTD_isError(flen)
				       ? ZSTD_getErrorName(flen)
				       : "bytes after the frame");
	if (!t_dctx) {
		if (!(t_dctx = ZSTD_createDCtx()))
			return -ENOMEM;
	}
	/* A frame may ask for a window larger than what it states; never
	 * let one make the decoder allocate beyond the record bound. */
	ZSTD_DCtx_reset(t_dctx, ZSTD_reset_session_and_parameters);
	ZSTD_DCtx_setParameter(t_dctx, ZSTD_d_windowLogMax,
			       (int)window_log_for(max));
	if (!(buf = malloc(headroom + (size_t)size)))
		return -ENOMEM;
	n = ZSTD_decompressDCtx(t_dctx, buf + headroom, (size_t)size, src, len);
	if (ZSTD_isError(n) || n != size) {
		free(buf);
		return why_set(why, whylen, -EBADMSG,
			       "compressed record does not decode: %s",
			       ZSTD_isError(n) ? ZSTD_getErrorName(n)
					       : "shorter than it states");
	}
	if (stats) {
		stats->zs_unpacked++;
		stats->zs_unpacked_wire += len;
		stats->zs_unpacked_bytes += n;
	}
	*out = buf;
	*outlen = n;
	return 0;
}
