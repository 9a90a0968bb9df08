/*
 * tests/fuzz/fuzz_meta.c — libFuzzer target: the input is a VM-image
 * metadata file (docs/metadata.md), parsed as is and once more with its
 * checksum recomputed (so the fuzzer reaches the field checks behind it).
 * A file that parses must encode back to the same bytes, and its views in
 * a few cache block sizes must answer every block consistently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cache/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fm_fail(const char *why)
{
	fprintf(stderr, "fuzz_meta: %s\n", why);
	abort();
}

/* Views in block sizes around the metadata's own. */
static void fm_views(struct cache_meta *m, const struct cache_meta_info *mi)
{
	static uint8_t zero[1u << 20];
	uint32_t sizes[3] = { mi->mi_block, mi->mi_block * 2, mi->mi_block / 2 };

	for (unsigned i = 0; i < 3; i++) {
		uint32_t bs = sizes[i];
		uint64_t nb, n0 = 0, nh = 0;
		const uint64_t *p;
		size_t np;

		if (bs < 512 || bs > sizeof(zero) ||
		    mi->mi_size / bs > (1u << 16))
			continue;
		if (cache_meta_view(m, bs))
			fm_fail("view refused a valid block size");
		nb = cache_meta_view_nblocks(m);
		for (uint64_t b = 0; b < nb; b++) {
			uint64_t s = b * bs;
			uint32_t len = (uint32_t)(mi->mi_size - s < bs ? mi->mi_size - s : bs);
			uint8_t key[CACHE_HASH_SIZE];
			enum cache_meta_kind k = cache_meta_kind(m, b, key);
			int v = cache_meta_verify(m, b, zero, len);

			/* zeros verify for zero and unknown blocks (a hashed one
			 * may carry the SHA-256 of zeros: it verifies too) */
			if ((k == CACHE_META_ZERO || k == CACHE_META_UNKNOWN) && v)
				fm_fail("zero data refused for a zero block");
			if (v && v != -EILSEQ)
				fm_fail("verify returned an unknown error");
			n0 += k == CACHE_META_ZERO;
			nh += k == CACHE_META_HASHED;
		}
		if (n0 + nh > nb)
			fm_fail("more kinds than blocks");
		p = cache_meta_view_profile(m, &np);
		if (np > nb)
			fm_fail("profile view longer than the blocks");
		for (size_t j = 0; j < np; j++)
			if (p[j] >= nb)
				fm_fail("profile view past the end");
	}
}

static void fm_one(const uint8_t *data, size_t size)
{
	struct cache_meta *m = NULL;
	struct cache_meta_info mi;
	struct cache_meta_summary sum;
	uint8_t *hashes, *enc = NULL;
	const uint32_t *prof;
	uint32_t np;
	size_t len;

	if (cache_meta_parse(data, size, &m))
		return;
	cache_meta_get_info(m, &mi);
	if (!(hashes = malloc(mi.mi_nblocks * CACHE_HASH_SIZE + 1)))
		fm_fail("out of memory");
	for (uint64_t b = 0; b < mi.mi_nblocks && cache_meta_hash(m, b); b++)
		memcpy(hashes + b * CACHE_HASH_SIZE, cache_meta_hash(m, b),
		       CACHE_HASH_SIZE);
	prof = cache_meta_profile(m, &np);
	if (np != mi.mi_nprofile ||
	    cache_meta_encode(&mi, hashes, prof, &enc, &len) || len != size ||
	    memcmp(enc, data, size))
		fm_fail("a parsed file does not encode back to itself");
	if (cache_meta_summarize(m, &sum) ||
	    sum.ms_zero + sum.ms_unique + sum.ms_dup !=
	            (mi.mi_flags & CACHE_META_F_NOHASH ? 0 : mi.mi_nblocks))
		fm_fail("summary does not add up");
	fm_views(m, &mi);
	free(enc);
	free(hashes);
	cache_meta_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;
	unsigned l;

	fm_one(data, size);
	if (size < CACHE_META_HDR || !(copy = malloc(size)))
		return 0;
	memcpy(copy, data, size);
	memset(copy + 64, 0, CACHE_HASH_SIZE);
	EVP_Digest(copy, size, copy + 64, &l, EVP_sha256(), NULL);
	fm_one(copy, size);
	free(copy);
	return 0;
}
