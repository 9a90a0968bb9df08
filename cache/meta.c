/*
 * cache/meta.c — the VM-image metadata format (docs/metadata.md): parsing
 * with every check a file from the network needs, encoding, and the view
 * in cache blocks that the client-role proxy uses (zero map, dedup keys,
 * per-block verification, prefetch profile).  Pure: no I/O.
 */
#define _GNU_SOURCE
#include "cache/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static const uint8_t meta_magic[8] = { 'G', 'V', 'F', 'S', 'M', 'E', 'T', 'A' };

#define META_BLOCK_MIN 512u
#define META_BLOCK_MAX (64u << 20)
#define META_SUM_OFF 64u

struct cache_meta {
	struct cache_meta_info m_info;
	uint8_t *m_hashes;     /* m_info.mi_nblocks * CACHE_HASH_SIZE; NULL
	                          with CACHE_META_F_NOHASH */
	uint32_t *m_profile;   /* m_info.mi_nprofile entries */
	/* cache-block view (cache_meta_view) */
	uint32_t m_vbs;
	uint64_t m_vn;
	uint8_t *m_vkind;      /* enum cache_meta_kind per cache block */
	uint8_t *m_vkeys;      /* m_vn keys when cache blocks span several
	                          metadata blocks; NULL: the hashes are keys */
	uint64_t *m_vprof;
	size_t m_vnprof;
};

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static void be32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void be64_put(uint8_t *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put(p + 4, (uint32_t)v);
}

static uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64_get(const uint8_t *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get(p + 4);
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

bool cache_meta_is_zero(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	size_t head = len < 16 ? len : 16;

	for (size_t i = 0; i < head; i++)
		if (p[i])
			return false;
	/* the first 16 bytes are zero: the rest is zero iff it equals its
	 * own copy shifted by 16 (memcmp runs at memory speed) */
	return len <= 16 || !memcmp(p, p + 16, len - 16);
}

/* The fetched SHA-256 implementation, once per process (OpenSSL 3 fetches
 * on every EVP_sha256() use otherwise). */
static EVP_MD *meta_md;
static pthread_once_t meta_md_once = PTHREAD_ONCE_INIT;

static void meta_md_fetch(void)
{
	meta_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static int meta_sha256(const void *data, size_t len, uint8_t *out)
{
	unsigned n = 0;

	pthread_once(&meta_md_once, meta_md_fetch);
	if (!EVP_Digest(data, len, out, &n, meta_md ? meta_md : EVP_sha256(),
	                NULL) || n != CACHE_HASH_SIZE)
		return -EIO;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Encoding                                                                */

static uint64_t nblocks_of(uint64_t size, uint32_t bs)
{
	return size / bs + (size % bs != 0);
}

int cache_meta_encode(const struct cache_meta_info *mi, const uint8_t *hashes,
                      const uint32_t *profile, uint8_t **out, size_t *outlen)
{
	uint64_t len;
	uint8_t *b, *p;

	bool nohash = mi && (mi->mi_flags & CACHE_META_F_NOHASH);

	if (!mi || !out || !outlen || (mi->mi_nblocks && !hashes && !nohash) ||
	    (mi->mi_flags & ~CACHE_META_F_ALL) ||
	    (mi->mi_boots != 0) != !!(mi->mi_flags & CACHE_META_F_LEARNED) ||
	    (mi->mi_nprofile && !profile) || !pow2(mi->mi_block) ||
	    mi->mi_block < META_BLOCK_MIN || mi->mi_block > META_BLOCK_MAX ||
	    mi->mi_mtime_nsec >= 1000000000u ||
	    mi->mi_nblocks != nblocks_of(mi->mi_size, mi->mi_block))
		return -EINVAL;
	len = CACHE_META_HDR + (nohash ? 0 : mi->mi_nblocks * CACHE_HASH_SIZE) +
	      (uint64_t)mi->mi_nprofile * 4u;
	if (len > CACHE_META_MAX)
		return -EINVAL;
	for (uint32_t i = 0; i < mi->mi_nprofile; i++)
		if (profile[i] >= mi->mi_nblocks)
			return -EINVAL;
	if (!(b = calloc(1, len)))
		return -ENOMEM;
	memcpy(b, meta_magic, sizeof(meta_magic));
	/* version 1 whenever it can say it all: older proxies read it */
	be32_put(b + 8, mi->mi_flags || mi->mi_boots ? CACHE_META_VERSION
	                                             : CACHE_META_VERSION_MIN);
	be32_put(b + 12, mi->mi_block);
	be64_put(b + 16, mi->mi_size);
	be64_put(b + 24, (uint64_t)mi->mi_mtime_sec);
	be32_put(b + 32, mi->mi_mtime_nsec);
	be64_put(b + 40, mi->mi_nblocks);
	be32_put(b + 36, mi->mi_flags);
	be32_put(b + 48, mi->mi_nprofile);
	be32_put(b + 52, mi->mi_boots);
	p = b + CACHE_META_HDR;
	if (mi->mi_nblocks && !nohash) {
		memcpy(p, hashes, mi->mi_nblocks * CACHE_HASH_SIZE);
		p += mi->mi_nblocks * CACHE_HASH_SIZE;
	}
	for (uint32_t i = 0; i < mi->mi_nprofile; i++, p += 4)
		be32_put(p, profile[i]);
	if (meta_sha256(b, len, b + META_SUM_OFF)) {
		free(b);
		return -EIO;
	}
	*out = b;
	*outlen = len;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Parsing                                                                 */

/* The header's fields, checked for range and consistency with len. */
static int parse_header(const uint8_t *b, size_t len, struct cache_meta_info *mi)
{
	uint64_t body, nhash;
	uint32_t ver;

	if (len < CACHE_META_HDR || memcmp(b, meta_magic, sizeof(meta_magic)))
		return -EBADMSG;
	ver = be32_get(b + 8);
	if (ver < CACHE_META_VERSION_MIN || ver > CACHE_META_VERSION)
		return -EPROTONOSUPPORT;
	mi->mi_block = be32_get(b + 12);
	mi->mi_size = be64_get(b + 16);
	mi->mi_mtime_sec = (int64_t)be64_get(b + 24);
	mi->mi_mtime_nsec = be32_get(b + 32);
	mi->mi_nblocks = be64_get(b + 40);
	mi->mi_nprofile = be32_get(b + 48);
	/* version 1 has flags and the boot count (reserved then) at 0 */
	mi->mi_flags = be32_get(b + 36);
	mi->mi_boots = be32_get(b + 52);
	if (!pow2(mi->mi_block) || mi->mi_block < META_BLOCK_MIN ||
	    mi->mi_block > META_BLOCK_MAX || mi->mi_mtime_nsec >= 1000000000u ||
	    (ver == 1 && (mi->mi_flags || mi->mi_boots)) ||
	    (ver == 2 && !mi->mi_flags) || /* one encoding per content */
	    (mi->mi_flags & ~CACHE_META_F_ALL) ||
	    (mi->mi_boots != 0) != !!(mi->mi_flags & CACHE_META_F_LEARNED) ||
	    be64_get(b + 56) != 0 ||
	    mi->mi_nblocks != nblocks_of(mi->mi_size, mi->mi_block))
		return -EBADMSG;
	/* sizes must add up exactly; divide first so nothing overflows */
	body = len - CACHE_META_HDR;
	nhash = mi->mi_flags & CACHE_META_F_NOHASH ? 0 : mi->mi_nblocks;
	if (nhash > body / CACHE_HASH_SIZE ||
	    body - nhash * CACHE_HASH_SIZE != (uint64_t)mi->mi_nprofile * 4u)
		return -EBADMSG;
	return 0;
}

int cache_meta_parse(const void *buf, size_t len, struct cache_meta **out)
{
	const uint8_t *b = buf;
	uint8_t sum[CACHE_HASH_SIZE], *copy = NULL;
	struct cache_meta *m;
	const uint8_t *p;
	int rc;

	if (!out || (!buf && len))
		return -EINVAL;
	*out = NULL;
	if (len > CACHE_META_MAX)
		return -EBADMSG;
	if (!(m = calloc(1, sizeof(*m))))
		return -ENOMEM;
	if ((rc = parse_header(b, len, &m->m_info)))
		goto fail;
	/* the checksum covers the whole file with its own field zeroed */
	rc = -ENOMEM;
	if (!(copy = malloc(len)))
		goto fail;
	memcpy(copy, b, len);
	memset(copy + META_SUM_OFF, 0, CACHE_HASH_SIZE);
	if ((rc = meta_sha256(copy, len, sum)))
		goto fail;
	rc = -EBADMSG;
	if (memcmp(sum, b + META_SUM_OFF, CACHE_HASH_SIZE))
		goto fail;
	rc = -ENOMEM;
	if (!(m->m_profile = malloc(m->m_info.mi_nprofile * 4u + 4u)))
		goto fail;
	p = b + CACHE_META_HDR;
	if (!(m->m_info.mi_flags & CACHE_META_F_NOHASH)) {
		if (!(m->m_hashes = malloc(m->m_info.mi_nblocks *
		                           CACHE_HASH_SIZE + 1)))
			goto fail;
		memcpy(m->m_hashes, p, m->m_info.mi_nblocks * CACHE_HASH_SIZE);
		p += m->m_info.mi_nblocks * CACHE_HASH_SIZE;
	}
	rc = -EBADMSG;
	for (uint32_t i = 0; i < m->m_info.mi_nprofile; i++, p += 4)
		if ((m->m_profile[i] = be32_get(p)) >= m->m_info.mi_nblocks)
			goto fail;
	free(copy);
	*out = m;
	return 0;
fail:
	free(copy);
	cache_meta_free(m);
	return rc;
}

void cache_meta_free(struct cache_meta *m)
{
	if (!m)
		return;
	free(m->m_hashes);
	free(m->m_profile);
	free(m->m_vkind);
	free(m->m_vkeys);
	free(m->m_vprof);
	free(m);
}

void cache_meta_get_info(const struct cache_meta *m, struct cache_meta_info *mi)
{
	*mi = m->m_info;
}

int cache_meta_check(const struct cache_meta *m, uint64_t size,
                     int64_t mtime_sec, uint32_t mtime_nsec)
{
	return m->m_info.mi_size == size && m->m_info.mi_mtime_sec == mtime_sec &&
	               m->m_info.mi_mtime_nsec == mtime_nsec
	       ? 0
	       : -ESTALE;
}

/* fattr3: size at 20, mtime {u32 seconds, u32 nseconds} at 68. */
int cache_meta_check_fattr(const struct cache_meta *m, const uint8_t *fattr3)
{
	return cache_meta_check(m, be64_get(fattr3 + 20),
	                        (int64_t)be32_get(fattr3 + 68),
	                        be32_get(fattr3 + 72));
}

/* fattr3: type at 0, mode 4, uid 12, ctime {seconds, nseconds} at 76. */
enum cache_meta_trust cache_meta_trust(const uint8_t *image_fattr3,
                                       const uint8_t *meta_fattr3)
{
	uint32_t uid = be32_get(meta_fattr3 + 12);
	uint64_t ic = be64_get(image_fattr3 + 76), mc = be64_get(meta_fattr3 + 76);

	if (be32_get(meta_fattr3) != 1)
		return CACHE_META_UNTRUSTED_TYPE;
	if (uid != 0 && uid != be32_get(image_fattr3 + 12))
		return CACHE_META_UNTRUSTED_OWNER;
	if (be32_get(meta_fattr3 + 4) & 022)
		return CACHE_META_UNTRUSTED_MODE;
	/* seconds then nanoseconds: the u64 compares as the pair does */
	if (mc < ic)
		return CACHE_META_UNTRUSTED_OLDER;
	return CACHE_META_TRUSTED;
}

const char *cache_meta_trust_str(enum cache_meta_trust t)
{
	switch (t) {
	case CACHE_META_TRUSTED:
		return "trusted";
	case CACHE_META_UNTRUSTED_TYPE:
		return "not a regular file";
	case CACHE_META_UNTRUSTED_OWNER:
		return "owned by neither the image's owner nor root";
	case CACHE_META_UNTRUSTED_MODE:
		return "writable by group or others";
	case CACHE_META_UNTRUSTED_OLDER:
		return "older than the image's last change (ctime); run "
		       "gridvfs meta scan again";
	}
	return "untrusted";
}

int cache_meta_dedup_key(uint32_t owner, const uint8_t hash[CACHE_HASH_SIZE],
                         uint8_t out[CACHE_HASH_SIZE])
{
	static const char dom[16] = "gridvfs dedup 1";
	uint8_t in[sizeof(dom) + 4 + CACHE_HASH_SIZE];

	memcpy(in, dom, sizeof(dom));
	be32_put(in + sizeof(dom), owner);
	memcpy(in + sizeof(dom) + 4, hash, CACHE_HASH_SIZE);
	return meta_sha256(in, sizeof(in), out);
}

const uint8_t *cache_meta_hash(const struct cache_meta *m, uint64_t mblk)
{
	if (mblk >= m->m_info.mi_nblocks || !m->m_hashes)
		return NULL;
	return m->m_hashes + mblk * CACHE_HASH_SIZE;
}

const uint32_t *cache_meta_profile(const struct cache_meta *m, uint32_t *n)
{
	*n = m->m_info.mi_nprofile;
	return m->m_profile;
}

/* ---------------------------------------------------------------------- */
/* The cache-block view                                                    */

/* Kinds and keys when each cache block covers r >= 1 metadata blocks. */
static int view_kinds_wide(struct cache_meta *m, uint64_t r)
{
	uint64_t nm = m->m_info.mi_nblocks;

	if (r > 1 && !(m->m_vkeys = malloc(m->m_vn * CACHE_HASH_SIZE + 1)))
		return -ENOMEM;
	for (uint64_t b = 0; b < m->m_vn; b++) {
		uint64_t first = b * r, n = nm - first < r ? nm - first : r;
		bool zero = true;

		for (uint64_t i = 0; i < n && zero; i++)
			zero = cache_meta_is_zero(cache_meta_hash(m, first + i),
			                          CACHE_HASH_SIZE);
		m->m_vkind[b] = zero ? CACHE_META_ZERO : CACHE_META_HASHED;
		/* a cache block's key is the digest of its metadata hashes:
		 * determined by its content, like a hash of the data */
		if (r > 1 && meta_sha256(cache_meta_hash(m, first),
		                         n * CACHE_HASH_SIZE,
		                         m->m_vkeys + b * CACHE_HASH_SIZE))
			return -EIO;
	}
	return 0;
}

/* The profile in cache blocks, first touches only. */
static int view_profile(struct cache_meta *m, uint64_t up, uint64_t down)
{
	/* first touches only: never more entries than cache blocks */
	uint64_t cap = (uint64_t)m->m_info.mi_nprofile * down < m->m_vn
	                       ? (uint64_t)m->m_info.mi_nprofile * down
	                       : m->m_vn;
	uint8_t *seen = calloc(m->m_vn / 8 + 1, 1);

	if (!seen || !(m->m_vprof = malloc(cap * sizeof(uint64_t) + 8))) {
		free(seen);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->m_info.mi_nprofile; i++)
		for (uint64_t j = 0; j < down; j++) {
			uint64_t b = m->m_profile[i] * down / up + j;

			if (b >= m->m_vn || (seen[b / 8] & (1u << (b % 8))))
				continue;
			seen[b / 8] |= (uint8_t)(1u << (b % 8));
			m->m_vprof[m->m_vnprof++] = b;
		}
	free(seen);
	return 0;
}

int cache_meta_view(struct cache_meta *m, uint32_t bs)
{
	uint32_t mbs = m->m_info.mi_block;
	int rc;

	if (!pow2(bs))
		return -EINVAL;
	free(m->m_vkind);
	free(m->m_vkeys);
	free(m->m_vprof);
	m->m_vkind = NULL;
	m->m_vkeys = NULL;
	m->m_vprof = NULL;
	m->m_vnprof = 0;
	m->m_vbs = bs;
	m->m_vn = nblocks_of(m->m_info.mi_size, bs);
	if (!(m->m_vkind = malloc(m->m_vn + 1)))
		return -ENOMEM;
	if (!m->m_hashes) {
		/* a profile only: nothing is known of any block */
		memset(m->m_vkind, CACHE_META_UNKNOWN, m->m_vn);
		return bs >= mbs ? view_profile(m, bs / mbs, 1)
		                 : view_profile(m, 1, mbs / bs);
	}
	if (bs >= mbs) {
		if ((rc = view_kinds_wide(m, bs / mbs)))
			return rc;
		return view_profile(m, bs / mbs, 1);
	}
	/* cache blocks smaller than metadata blocks: zero map only */
	for (uint64_t b = 0; b < m->m_vn; b++)
		m->m_vkind[b] = cache_meta_is_zero(
		                        cache_meta_hash(m, b / (mbs / bs)),
		                        CACHE_HASH_SIZE)
		                        ? CACHE_META_ZERO
		                        : CACHE_META_UNKNOWN;
	return view_profile(m, 1, mbs / bs);
}

uint64_t cache_meta_view_nblocks(const struct cache_meta *m)
{
	return m->m_vn;
}

enum cache_meta_kind cache_meta_kind(const struct cache_meta *m, uint64_t blk,
                                     uint8_t key[CACHE_HASH_SIZE])
{
	if (!m->m_vkind || blk >= m->m_vn)
		return CACHE_META_UNKNOWN;
	if (key && m->m_vkind[blk] == CACHE_META_HASHED)
		memcpy(key, m->m_vkeys ? m->m_vkeys + blk * CACHE_HASH_SIZE
		                       : cache_meta_hash(m, blk),
		       CACHE_HASH_SIZE);
	return (enum cache_meta_kind)m->m_vkind[blk];
}

int cache_meta_verify(const struct cache_meta *m, uint64_t blk,
                      const void *data, uint32_t len)
{
	uint32_t bs = m->m_vbs, mbs = m->m_info.mi_block;
	uint64_t size = m->m_info.mi_size, start = blk * bs;
	uint8_t sum[CACHE_HASH_SIZE];

	if (!m->m_vkind || blk >= m->m_vn ||
	    len != (size - start < bs ? size - start : bs))
		return -EILSEQ;
	switch (m->m_vkind[blk]) {
	case CACHE_META_ZERO:
		return cache_meta_is_zero(data, len) ? 0 : -EILSEQ;
	case CACHE_META_UNKNOWN:
		return 0;
	default:
		break;
	}
	for (uint32_t off = 0; off < len; off += mbs) {
		uint32_t n = len - off < mbs ? len - off : mbs;
		const uint8_t *want = cache_meta_hash(m, (start + off) / mbs);

		if (cache_meta_is_zero(want, CACHE_HASH_SIZE)) {
			if (!cache_meta_is_zero((const uint8_t *)data + off, n))
				return -EILSEQ;
			continue;
		}
		if (meta_sha256((const uint8_t *)data + off, n, sum) ||
		    memcmp(sum, want, CACHE_HASH_SIZE))
			return -EILSEQ;
	}
	return 0;
}

const uint64_t *cache_meta_view_profile(const struct cache_meta *m, size_t *n)
{
	*n = m->m_vnprof;
	return m->m_vprof;
}

/* ---------------------------------------------------------------------- */
/* Summary                                                                 */

static int hash_cmp(const void *a, const void *b)
{
	return memcmp(a, b, CACHE_HASH_SIZE);
}

int cache_meta_summarize(const struct cache_meta *m,
                         struct cache_meta_summary *sum)
{
	uint64_t n = 0, nb = m->m_info.mi_nblocks;
	uint8_t *v;

	memset(sum, 0, sizeof(*sum));
	if (!m->m_hashes)
		return 0; /* nothing known of the blocks */
	if (!(v = malloc(nb * CACHE_HASH_SIZE + 1)))
		return -ENOMEM;
	for (uint64_t i = 0; i < nb; i++) {
		const uint8_t *h = cache_meta_hash(m, i);

		if (cache_meta_is_zero(h, CACHE_HASH_SIZE))
			sum->ms_zero++;
		else
			memcpy(v + n++ * CACHE_HASH_SIZE, h, CACHE_HASH_SIZE);
	}
	qsort(v, n, CACHE_HASH_SIZE, hash_cmp);
	for (uint64_t i = 0; i < n; i++)
		if (i == 0 || hash_cmp(v + i * CACHE_HASH_SIZE,
		                       v + (i - 1) * CACHE_HASH_SIZE))
			sum->ms_unique++;
	sum->ms_dup = n - sum->ms_unique;
	free(v);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Profiles in another block size                                          */

int cache_meta_profile_rescale(const uint32_t *in, uint32_t n,
                               uint32_t from_bs, uint32_t to_bs,
                               uint64_t nblocks, uint32_t **out,
                               uint32_t *outn)
{
	uint64_t up = 1, down = 1, cap;
	uint32_t k = 0, *v;
	uint8_t *seen;

	*out = NULL;
	*outn = 0;
	if (!pow2(from_bs) || !pow2(to_bs) || (n && !in) || nblocks > UINT32_MAX)
		return -EINVAL;
	if (!n || !nblocks)
		return 0;
	if (to_bs > from_bs)
		up = to_bs / from_bs;   /* several entries share a block */
	else
		down = from_bs / to_bs; /* an entry covers several blocks */
	cap = (uint64_t)n * down < nblocks ? (uint64_t)n * down : nblocks;
	if (!(seen = calloc(nblocks / 8 + 1, 1)))
		return -ENOMEM;
	if (!(v = malloc(cap * 4u + 4u))) {
		free(seen);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		for (uint64_t j = 0; j < down; j++) {
			uint64_t b = (uint64_t)in[i] * down / up + j;

			if (b >= nblocks || (seen[b / 8] & (1u << (b % 8))))
				continue;
			seen[b / 8] |= (uint8_t)(1u << (b % 8));
			v[k++] = (uint32_t)b;
		}
	free(seen);
	if (!k) {
		free(v);
		v = NULL;
	}
	*out = v;
	*outn = k;
	return 0;
}
