/*
 * tests/unit/test_meta.c — the VM-image metadata format (cache/meta.c):
 * encode/parse round trips, every malformed input the parser must refuse
 * (truncated, bad magic, checksum, version, sizes, profile), the size and
 * mtime check, zero detection, and the cache-block view for equal,
 * larger and smaller cache blocks (kinds, keys, verification, profile),
 * the trust rules for a metadata file and the per-owner sharing keys.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <openssl/evp.h>

#include "cache/cache.h"

#define KB 1024u

static void sha(const void *d, size_t n, uint8_t *out)
{
	unsigned l;

	EVP_Digest(d, n, out, &l, EVP_sha256(), NULL);
}

/* An image of nblk blocks of bs bytes (the last one short by `short_by`):
 * block b is zero when b % 3 == 0, else filled with (b & 0xff) ^ 0x5a.
 * Hashes (and the image) for cache_meta_encode. */
static uint8_t *mkimage(uint32_t bs, uint64_t nblk, uint32_t short_by,
                        uint8_t **hashes, uint64_t *size)
{
	uint8_t *img;

	*size = nblk * bs - short_by;
	img = calloc(1, *size + 1);
	*hashes = calloc(nblk, CACHE_HASH_SIZE);
	for (uint64_t b = 0; b < nblk; b++) {
		uint64_t len = *size - b * bs < bs ? *size - b * bs : bs;

		if (b % 3 == 0)
			continue;
		memset(img + b * bs, (int)((b & 0xff) ^ 0x5a), len);
		sha(img + b * bs, len, *hashes + b * CACHE_HASH_SIZE);
	}
	return img;
}

static void encode(uint32_t bs, uint64_t size, const uint8_t *hashes,
                   const uint32_t *prof, uint32_t nprof, uint8_t **out,
                   size_t *len)
{
	struct cache_meta_info mi = { size, 1700000000, 123456789, bs,
	                              size / bs + (size % bs != 0), nprof, 0, 0 };

	CU_ASSERT_EQUAL_FATAL(cache_meta_encode(&mi, hashes, prof, out, len), 0);
}

/* Recompute the checksum after editing a file (to reach later checks). */
static void reseal(uint8_t *b, size_t len)
{
	memset(b + 64, 0, CACHE_HASH_SIZE);
	sha(b, len, b + 64);
}

static void test_roundtrip(void)
{
	uint8_t *hashes, *img, *enc;
	uint64_t size;
	size_t len;
	uint32_t prof[] = { 5, 1, 7 }, n;
	struct cache_meta *m;
	struct cache_meta_info mi;
	struct cache_meta_summary sum;

	img = mkimage(64 * KB, 10, 100, &hashes, &size);
	encode(64 * KB, size, hashes, prof, 3, &enc, &len);
	CU_ASSERT_EQUAL(len, CACHE_META_HDR + 10 * CACHE_HASH_SIZE + 3 * 4);
	CU_ASSERT_EQUAL_FATAL(cache_meta_parse(enc, len, &m), 0);
	cache_meta_get_info(m, &mi);
	CU_ASSERT_EQUAL(mi.mi_size, size);
	CU_ASSERT_EQUAL(mi.mi_block, 64 * KB);
	CU_ASSERT_EQUAL(mi.mi_nblocks, 10);
	CU_ASSERT_EQUAL(mi.mi_mtime_sec, 1700000000);
	CU_ASSERT_EQUAL(mi.mi_mtime_nsec, 123456789);
	CU_ASSERT(!memcmp(cache_meta_hash(m, 4), hashes + 4 * CACHE_HASH_SIZE,
	                  CACHE_HASH_SIZE));
	CU_ASSERT_PTR_NULL(cache_meta_hash(m, 10));
	CU_ASSERT(!memcmp(cache_meta_profile(m, &n), prof, sizeof(prof)));
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(cache_meta_summarize(m, &sum), 0);
	CU_ASSERT_EQUAL(sum.ms_zero, 4);   /* blocks 0 3 6 9 */
	CU_ASSERT_EQUAL(sum.ms_unique, 6);
	CU_ASSERT_EQUAL(sum.ms_dup, 0);
	/* the version check: size and mtime (seconds and nanoseconds) */
	CU_ASSERT_EQUAL(cache_meta_check(m, size, 1700000000, 123456789), 0);
	CU_ASSERT_EQUAL(cache_meta_check(m, size + 1, 1700000000, 123456789), -ESTALE);
	CU_ASSERT_EQUAL(cache_meta_check(m, size, 1700000001, 123456789), -ESTALE);
	CU_ASSERT_EQUAL(cache_meta_check(m, size, 1700000000, 123456788), -ESTALE);
	{
		uint8_t fa[CACHE_FATTR_SIZE] = { 0 };

		for (int i = 0; i < 8; i++)
			fa[20 + i] = (uint8_t)(size >> (56 - 8 * i));
		fa[68] = 1700000000u >> 24; fa[69] = (1700000000u >> 16) & 0xff;
		fa[70] = (1700000000u >> 8) & 0xff; fa[71] = 1700000000u & 0xff;
		fa[72] = 123456789u >> 24; fa[73] = (123456789u >> 16) & 0xff;
		fa[74] = (123456789u >> 8) & 0xff; fa[75] = 123456789u & 0xff;
		CU_ASSERT_EQUAL(cache_meta_check_fattr(m, fa), 0);
		fa[75] ^= 1;
		CU_ASSERT_EQUAL(cache_meta_check_fattr(m, fa), -ESTALE);
	}
	cache_meta_free(m);
	free(enc);
	free(img);
	free(hashes);
}

static void test_malformed(void)
{
	uint8_t *hashes, *img, *enc, *b;
	uint64_t size;
	size_t len;
	uint32_t prof[] = { 2 };
	struct cache_meta *m = (struct cache_meta *)1;

	img = mkimage(4 * KB, 6, 0, &hashes, &size);
	encode(4 * KB, size, hashes, prof, 1, &enc, &len);
	b = malloc(len + 8);
	/* every truncation, and a byte too many */
	for (size_t n = 0; n < len; n++)
		CU_ASSERT_EQUAL(cache_meta_parse(enc, n, &m), -EBADMSG);
	CU_ASSERT_PTR_NULL(m);
	memcpy(b, enc, len);
	b[len] = 0;
	CU_ASSERT_EQUAL(cache_meta_parse(b, len + 1, &m), -EBADMSG);
	/* any flipped byte outside the version word fails (checksum at least) */
	for (size_t i = 0; i < len; i++) {
		memcpy(b, enc, len);
		b[i] ^= 0x40;
		CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m),
		                i >= 8 && i < 12 ? -EPROTONOSUPPORT : -EBADMSG);
	}
	/* sealed again, each bad field is still refused */
	memcpy(b, enc, len); b[8 + 3] = 3; reseal(b, len); /* version 3 */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EPROTONOSUPPORT);
	memcpy(b, enc, len); b[8 + 3] = 2; reseal(b, len); /* v2 without */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG); /* its fields */
	memcpy(b, enc, len); b[8 + 3] = 0; reseal(b, len); /* version 0 */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EPROTONOSUPPORT);
	memcpy(b, enc, len); b[52 + 3] = 1; reseal(b, len); /* v1 with boots */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[0] = 'X'; reseal(b, len);   /* magic */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[12 + 2] = 0x30; reseal(b, len); /* bs 12 KiB */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[12 + 2] = 0; b[12 + 3] = 0x80; reseal(b, len);
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG); /* 128 B */
	memcpy(b, enc, len); b[16 + 7] ^= 1; reseal(b, len); /* size: nblocks */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[32] = 0xff; reseal(b, len);   /* nsec >= 1e9 */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[40 + 7] = 7; reseal(b, len);  /* nblocks */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[48 + 3] = 2; reseal(b, len);  /* nprofile */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[48] = 0x40; reseal(b, len);   /* huge nprofile */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[len - 1] = 6; reseal(b, len); /* profile past end */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[36] = 1; reseal(b, len);      /* flags */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[40] = 0x10; reseal(b, len);   /* nblocks * 32 wraps */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	/* the untouched file still parses */
	CU_ASSERT_EQUAL(cache_meta_parse(enc, len, &m), 0);
	cache_meta_free(m);
	CU_ASSERT_EQUAL(cache_meta_parse(NULL, 0, &m), -EBADMSG);
	/* encode refuses what parse would */
	{
		struct cache_meta_info mi = { size, 0, 0, 3000, 2, 0, 0, 0 };

		CU_ASSERT_EQUAL(cache_meta_encode(&mi, hashes, NULL, &b, &len), -EINVAL);
		mi.mi_block = 4 * KB;
		CU_ASSERT_EQUAL(cache_meta_encode(&mi, hashes, NULL, &b, &len), -EINVAL);
	}
	free(b);
	free(enc);
	free(img);
	free(hashes);
}

/* Format version 2 (issue 19): learned profiles, profile-only files. */
static void test_v2(void)
{
	uint8_t *hashes, *img, *enc, *b;
	uint64_t size;
	size_t len, vn;
	uint32_t prof[] = { 5, 1, 7 }, n;
	const uint64_t *vp;
	struct cache_meta *m;
	struct cache_meta_info mi;
	struct cache_meta_summary sum;

	img = mkimage(64 * KB, 10, 100, &hashes, &size);
	/* flags 0: still version 1, for older proxies */
	encode(64 * KB, size, hashes, prof, 3, &enc, &len);
	CU_ASSERT_EQUAL(enc[11], 1);
	free(enc);
	/* a learned profile beside a scan's hashes */
	mi = (struct cache_meta_info){ size, 1700000000, 5, 64 * KB, 10, 3,
	                               CACHE_META_F_LEARNED, 3 };
	CU_ASSERT_EQUAL_FATAL(cache_meta_encode(&mi, hashes, prof, &enc, &len), 0);
	CU_ASSERT_EQUAL(enc[11], 2);
	CU_ASSERT_EQUAL(len, CACHE_META_HDR + 10 * CACHE_HASH_SIZE + 3 * 4);
	CU_ASSERT_EQUAL_FATAL(cache_meta_parse(enc, len, &m), 0);
	cache_meta_get_info(m, &mi);
	CU_ASSERT_EQUAL(mi.mi_flags, CACHE_META_F_LEARNED);
	CU_ASSERT_EQUAL(mi.mi_boots, 3);
	CU_ASSERT(!memcmp(cache_meta_hash(m, 4), hashes + 4 * CACHE_HASH_SIZE,
	                  CACHE_HASH_SIZE));
	cache_meta_free(m);
	b = malloc(len);
	/* a boot count without the learned flag, and the reverse */
	memcpy(b, enc, len); b[39] = 0; reseal(b, len);
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[55] = 0; reseal(b, len);
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[39] |= 4; reseal(b, len);  /* unknown flag */
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG);
	memcpy(b, enc, len); b[39] |= CACHE_META_F_NOHASH; reseal(b, len);
	CU_ASSERT_EQUAL(cache_meta_parse(b, len, &m), -EBADMSG); /* sizes */
	free(b);
	free(enc);
	/* encode refuses the same */
	mi = (struct cache_meta_info){ size, 0, 0, 64 * KB, 10, 0,
	                               CACHE_META_F_LEARNED, 0 };
	CU_ASSERT_EQUAL(cache_meta_encode(&mi, hashes, NULL, &enc, &len), -EINVAL);
	mi.mi_flags = 8;
	mi.mi_boots = 0;
	CU_ASSERT_EQUAL(cache_meta_encode(&mi, hashes, NULL, &enc, &len), -EINVAL);
	/* a profile only: no hashes at all, every block unknown */
	mi = (struct cache_meta_info){ size, 1700000000, 5, 64 * KB, 10, 3,
	                               CACHE_META_F_LEARNED | CACHE_META_F_NOHASH,
	                               1 };
	CU_ASSERT_EQUAL_FATAL(cache_meta_encode(&mi, NULL, prof, &enc, &len), 0);
	CU_ASSERT_EQUAL(len, CACHE_META_HDR + 3 * 4);
	CU_ASSERT_EQUAL_FATAL(cache_meta_parse(enc, len, &m), 0);
	CU_ASSERT_PTR_NULL(cache_meta_hash(m, 0));
	CU_ASSERT(!memcmp(cache_meta_profile(m, &n), prof, sizeof(prof)));
	CU_ASSERT_EQUAL(cache_meta_summarize(m, &sum), 0);
	CU_ASSERT_EQUAL(sum.ms_zero + sum.ms_unique + sum.ms_dup, 0);
	CU_ASSERT_EQUAL_FATAL(cache_meta_view(m, 16 * KB), 0);
	for (uint64_t i = 0; i < cache_meta_view_nblocks(m); i++)
		CU_ASSERT_EQUAL(cache_meta_kind(m, i, NULL), CACHE_META_UNKNOWN);
	/* block 0 of the image is zero: unknown, so never answered as zeros */
	CU_ASSERT_EQUAL(cache_meta_verify(m, 0, img, 16 * KB), 0);
	vp = cache_meta_view_profile(m, &vn);
	CU_ASSERT_EQUAL_FATAL(vn, 12);
	CU_ASSERT_EQUAL(vp[0], 20);
	CU_ASSERT_EQUAL(vp[4], 4);
	CU_ASSERT_EQUAL_FATAL(cache_meta_view(m, 128 * KB), 0);
	vp = cache_meta_view_profile(m, &vn);
	CU_ASSERT_EQUAL_FATAL(vn, 3);
	CU_ASSERT(vp[0] == 2 && vp[1] == 0 && vp[2] == 3);
	cache_meta_free(m);
	/* one byte of hashes too many for a profile-only file */
	b = calloc(1, len + 32);
	memcpy(b, enc, CACHE_META_HDR);
	memcpy(b + CACHE_META_HDR + 32, enc + CACHE_META_HDR, 12);
	reseal(b, len + 32);
	CU_ASSERT_EQUAL(cache_meta_parse(b, len + 32, &m), -EBADMSG);
	free(b);
	free(enc);
	free(img);
	free(hashes);
}

/* Profiles moved between block sizes: first touches, bounded. */
static void test_rescale(void)
{
	uint32_t in[] = { 2, 0, 2 }, in2[] = { 17, 16, 40, 3, 900 }, *out, n;

	CU_ASSERT_EQUAL(cache_meta_profile_rescale(in, 3, 64 * KB, 4 * KB,
	                                           1000, &out, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 32);
	CU_ASSERT(out[0] == 32 && out[15] == 47 && out[16] == 0 && out[31] == 15);
	free(out);
	CU_ASSERT_EQUAL(cache_meta_profile_rescale(in2, 5, 4 * KB, 64 * KB,
	                                           10, &out, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3); /* 900 / 16 = 56 is past the end */
	CU_ASSERT(out[0] == 1 && out[1] == 2 && out[2] == 0);
	free(out);
	/* never more entries than the image has blocks */
	CU_ASSERT_EQUAL(cache_meta_profile_rescale(in, 3, 64 * KB, 4 * KB,
	                                           20, &out, &n), 0);
	CU_ASSERT_EQUAL(n, 16); /* block 2 (32..47) is past the end */
	free(out);
	CU_ASSERT_EQUAL(cache_meta_profile_rescale(in, 3, 3000, 4 * KB, 20,
	                                           &out, &n), -EINVAL);
}

static void test_zero(void)
{
	uint8_t *buf = calloc(1, 64 * KB + 1);

	CU_ASSERT(cache_meta_is_zero(buf, 0));
	for (size_t n = 1; n <= 40; n++) {
		CU_ASSERT(cache_meta_is_zero(buf, n));
		for (size_t i = 0; i < n; i++) {
			buf[i] = 1;
			CU_ASSERT(!cache_meta_is_zero(buf, n));
			buf[i] = 0;
		}
	}
	CU_ASSERT(cache_meta_is_zero(buf, 64 * KB));
	buf[64 * KB - 1] = 0x80;
	CU_ASSERT(!cache_meta_is_zero(buf, 64 * KB));
	CU_ASSERT(cache_meta_is_zero(buf, 64 * KB - 1));
	buf[64 * KB - 1] = 0;
	buf[32 * KB + 17] = 1;
	CU_ASSERT(!cache_meta_is_zero(buf, 64 * KB));
	free(buf);
}

/* View with cache blocks of bs over metadata of mbs. */
static void check_view(uint32_t mbs, uint32_t bs)
{
	uint8_t *hashes, *img, *enc, key[CACHE_HASH_SIZE];
	uint64_t size, nb, nmeta = 12;
	size_t len, np;
	uint32_t prof[] = { 4, 5, 1, 4, 11 };
	struct cache_meta *m;
	const uint64_t *vp;

	img = mkimage(mbs, nmeta, mbs / 2, &hashes, &size);
	encode(mbs, size, hashes, prof, 5, &enc, &len);
	CU_ASSERT_EQUAL_FATAL(cache_meta_parse(enc, len, &m), 0);
	CU_ASSERT_EQUAL_FATAL(cache_meta_view(m, bs), 0);
	nb = cache_meta_view_nblocks(m);
	CU_ASSERT_EQUAL(nb, size / bs + (size % bs != 0));
	for (uint64_t b = 0; b < nb; b++) {
		uint64_t s = b * bs, blen = size - s < bs ? size - s : bs;
		enum cache_meta_kind k = cache_meta_kind(m, b, key);
		bool zero = true;

		for (uint64_t i = s; i < s + blen; i++)
			zero = zero && !img[i];
		if (zero)
			CU_ASSERT_EQUAL(k, CACHE_META_ZERO);
		if (bs >= mbs && !zero)
			CU_ASSERT_EQUAL(k, CACHE_META_HASHED);
		if (bs < mbs && !zero)
			CU_ASSERT_EQUAL(k, CACHE_META_UNKNOWN);
		if (bs == mbs && k == CACHE_META_HASHED)
			CU_ASSERT(!memcmp(key, hashes + b * CACHE_HASH_SIZE,
			                  CACHE_HASH_SIZE));
		/* right data passes, a flipped byte fails (unless unknown) */
		CU_ASSERT_EQUAL(cache_meta_verify(m, b, img + s, (uint32_t)blen), 0);
		img[s + blen / 2] ^= 1;
		CU_ASSERT_EQUAL(cache_meta_verify(m, b, img + s, (uint32_t)blen),
		                k == CACHE_META_UNKNOWN ? 0 : -EILSEQ);
		img[s + blen / 2] ^= 1;
		CU_ASSERT_EQUAL(cache_meta_verify(m, b, img + s, (uint32_t)blen - 1),
		                -EILSEQ);
	}
	CU_ASSERT_EQUAL(cache_meta_kind(m, nb, key), CACHE_META_UNKNOWN);
	CU_ASSERT_EQUAL(cache_meta_verify(m, nb, img, 1), -EILSEQ);
	/* profile: metadata blocks 4 5 1 4 11 in cache blocks, first touch */
	vp = cache_meta_view_profile(m, &np);
	if (bs == mbs) {
		CU_ASSERT_EQUAL(np, 4);
		CU_ASSERT(np == 4 && vp[0] == 4 && vp[1] == 5 && vp[2] == 1 &&
		          vp[3] == 11);
	} else if (bs == 2 * mbs) {
		CU_ASSERT_EQUAL(np, 3);
		CU_ASSERT(np == 3 && vp[0] == 2 && vp[1] == 0 && vp[2] == 5);
	} else if (bs * 4 == mbs) { /* 4 cache blocks per metadata block */
		CU_ASSERT_EQUAL(np, 16 - 2); /* block 11's last half is past EOF */
		CU_ASSERT(vp[0] == 16 && vp[3] == 19 && vp[4] == 20 && vp[8] == 4);
	}
	cache_meta_free(m);
	free(enc);
	free(img);
	free(hashes);
}

static void test_view(void)
{
	check_view(64 * KB, 64 * KB);
	check_view(32 * KB, 64 * KB);
	check_view(64 * KB, 16 * KB);
	check_view(4 * KB, 1024 * KB); /* one cache block holds it all */
}

/* Two cache-block keys are equal exactly when the content is. */
static void test_keys(void)
{
	uint8_t *h1, *h2, *i1, *i2, *e1, *e2, k1[CACHE_HASH_SIZE], k2[CACHE_HASH_SIZE];
	uint64_t s1, s2;
	size_t l1, l2;
	struct cache_meta *m1, *m2;

	i1 = mkimage(16 * KB, 8, 0, &h1, &s1);
	i2 = mkimage(16 * KB, 8, 0, &h2, &s2);
	memset(h2 + 5 * CACHE_HASH_SIZE, 0x11, CACHE_HASH_SIZE); /* block 5 differs */
	encode(16 * KB, s1, h1, NULL, 0, &e1, &l1);
	encode(16 * KB, s2, h2, NULL, 0, &e2, &l2);
	CU_ASSERT_EQUAL_FATAL(cache_meta_parse(e1, l1, &m1), 0);
	CU_ASSERT_EQUAL_FATAL(cache_meta_parse(e2, l2, &m2), 0);
	CU_ASSERT_EQUAL(cache_meta_view(m1, 32 * KB), 0);
	CU_ASSERT_EQUAL(cache_meta_view(m2, 32 * KB), 0);
	for (uint64_t b = 0; b < 4; b++) {
		CU_ASSERT_EQUAL(cache_meta_kind(m1, b, k1), CACHE_META_HASHED);
		CU_ASSERT_EQUAL(cache_meta_kind(m2, b, k2), CACHE_META_HASHED);
		CU_ASSERT_EQUAL(!memcmp(k1, k2, sizeof(k1)), b != 2);
	}
	CU_ASSERT_EQUAL(cache_meta_view(m1, 3000), -EINVAL);
	cache_meta_free(m1);
	cache_meta_free(m2);
	free(e1);
	free(e2);
	free(i1);
	free(i2);
	free(h1);
	free(h2);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An encoded fattr3 with what the trust rules read: type (offset 0), mode
 * (4), uid (12), ctime (76). */
static void mkattr(uint8_t *f, uint32_t type, uint32_t mode, uint32_t uid,
                   uint32_t csec, uint32_t cnsec)
{
	memset(f, 0, 84);
	put32(f, type);
	put32(f + 4, mode);
	put32(f + 12, uid);
	put32(f + 76, csec);
	put32(f + 80, cnsec);
}

/* issue 16 items 1-2: metadata counts only from the image's owner or
 * root, not writable by group/others, not older than the image's change */
static void test_trust(void)
{
	uint8_t img[84], meta[84];

	mkattr(img, 1, 0600, 2001, 1000, 500);
	mkattr(meta, 1, 0600, 2001, 1000, 500); /* same instant: trusted */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_TRUSTED);
	mkattr(meta, 1, 0644, 0, 1001, 0); /* root's, readable by all */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_TRUSTED);
	mkattr(meta, 1, 0644, 2002, 1001, 0); /* another user planted it */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_OWNER);
	mkattr(meta, 1, 0620, 2001, 1001, 0); /* group may write it */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_MODE);
	mkattr(meta, 1, 0602, 2001, 1001, 0); /* others may write it */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_MODE);
	mkattr(meta, 1, 01666, 0, 1001, 0); /* root's but world-writable */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_MODE);
	mkattr(meta, 2, 0600, 2001, 1001, 0); /* a directory */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_TYPE);
	mkattr(meta, 1, 0600, 2001, 1000, 499); /* 1 ns before the image's change */
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_OLDER);
	mkattr(meta, 1, 0600, 2001, 999, 999999999);
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_OLDER);
	mkattr(img, 1, 0600, 0, 1000, 500); /* root's image: only root's metadata */
	mkattr(meta, 1, 0600, 2001, 1001, 0);
	CU_ASSERT_EQUAL(cache_meta_trust(img, meta), CACHE_META_UNTRUSTED_OWNER);
	CU_ASSERT_PTR_NOT_NULL(strstr(cache_meta_trust_str(CACHE_META_UNTRUSTED_OWNER),
	                              "owner"));
}

/* issue 16 item 1: a block is shared only between images of one owner */
static void test_share_domain(void)
{
	uint8_t h[CACHE_HASH_SIZE], h2[CACHE_HASH_SIZE], a[CACHE_HASH_SIZE],
		a2[CACHE_HASH_SIZE], b[CACHE_HASH_SIZE], c[CACHE_HASH_SIZE];

	memset(h, 0x42, sizeof(h));
	memcpy(h2, h, sizeof(h));
	h2[31] ^= 1;
	CU_ASSERT_EQUAL(cache_meta_dedup_key(2001, h, a), 0);
	CU_ASSERT_EQUAL(cache_meta_dedup_key(2001, h, a2), 0);
	CU_ASSERT_EQUAL(memcmp(a, a2, sizeof(a)), 0);   /* stable */
	CU_ASSERT_EQUAL(cache_meta_dedup_key(2002, h, b), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof(a)), 0); /* owner is in it */
	CU_ASSERT_EQUAL(cache_meta_dedup_key(2001, h2, c), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, sizeof(a)), 0); /* content is in it */
	CU_ASSERT_NOT_EQUAL(memcmp(a, h, sizeof(a)), 0); /* not the bare hash */
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("meta", NULL, NULL);
	CU_add_test(s, "encode/parse round trip, version check", test_roundtrip);
	CU_add_test(s, "malformed, truncated, wrong version", test_malformed);
	CU_add_test(s, "zero detection", test_zero);
	CU_add_test(s, "format 2: learned, profile only", test_v2);
	CU_add_test(s, "profiles rescaled", test_rescale);
	CU_add_test(s, "cache-block view: kinds, verify, profile", test_view);
	CU_add_test(s, "dedup keys follow content", test_keys);
	CU_add_test(s, "trust: owner, mode, type, ctime", test_trust);
	CU_add_test(s, "sharing keys per owner", test_share_domain);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
