/*
 * tests/unit/test_cache.c — CUnit tests for cache/: fill/read round trips,
 * versions (strict and immutable), restart warmth, LRU eviction under the
 * cap, queue-full drops, corrupt-file rebuild, a full tmpfs, concurrent
 * readers against the writer, the offline CLI; plus measurements printed
 * for the report (read GB/s, fill MB/s, cache_note_attr ns).
 */
#define _GNU_SOURCE
#include "cache/cache.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KB 1024u
#define MB (1024u * 1024u)
#define BS (64u * KB)

static char tmpdir[] = "/tmp/test_cache.XXXXXX";
static char dir[4200];
static unsigned ndir;

/* ---------------------------------------------------------------------- */
/* Fixtures                                                                */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_buf[16384];
static unsigned log_warnings;

static void test_log(int prio, const char *msg)
{
	pthread_mutex_lock(&log_lock);
	if (prio <= 4) /* LOG_WARNING */
		log_warnings++;
	if (strlen(log_buf) + strlen(msg) + 2 < sizeof(log_buf)) {
		strcat(log_buf, msg);
		strcat(log_buf, "\n");
	}
	pthread_mutex_unlock(&log_lock);
}

static bool log_has(const char *s)
{
	bool r;

	pthread_mutex_lock(&log_lock);
	r = strstr(log_buf, s) != NULL;
	pthread_mutex_unlock(&log_lock);
	return r;
}

static void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	log_buf[0] = 0;
	log_warnings = 0;
	pthread_mutex_unlock(&log_lock);
}

static const char *new_dir(void)
{
	snprintf(dir, sizeof(dir), "%s/c%u", tmpdir, ++ndir);
	return dir;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* An fattr3 of a regular file; mtime/ctime {mt, 0}; nlink as a marker of
 * the bytes that are not part of the version. */
static void mkattr(uint8_t *a, uint64_t fileid, uint64_t size, uint32_t mt,
                   uint32_t nlink)
{
	memset(a, 0, CACHE_FATTR_SIZE);
	put32(a, 1);
	put32(a + 4, 0644);
	put32(a + 8, nlink);
	put64(a + 20, size);
	put64(a + 28, size);
	put64(a + 44, 7);
	put64(a + 52, fileid);
	put32(a + 68, mt);
	put32(a + 76, mt);
}

static size_t mkfh(uint8_t *fh, uint64_t fileid)
{
	memset(fh, 0xa5, 32);
	put64(fh + 8, fileid);
	return 32;
}

/* Content of byte o of file f, version v. */
static uint8_t content(uint64_t f, uint32_t v, uint64_t o)
{
	uint64_t x = (o >> 3) * 0x9e3779b97f4a7c15ull ^ f * 0xff51afd7ed558ccdull ^ v;
	x ^= x >> 29;
	return (uint8_t)(x >> (8 * (o & 7)));
}

static uint8_t *mkdata(uint64_t f, uint32_t v, uint64_t off, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	for (size_t i = 0; i < len; i++)
		p[i] = content(f, v, off + i);
	return p;
}

static bool check_data(const uint8_t *p, uint64_t f, uint32_t v, uint64_t off,
                       size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != content(f, v, off + i))
			return false;
	return true;
}

static struct cache *open_cache(const char *d, uint64_t max, uint32_t bs,
                                unsigned ttl)
{
	struct cache_opts o;
	struct cache *c = NULL;

	memset(&o, 0, sizeof(o));
	o.co_dir = d;
	o.co_max_bytes = max;
	o.co_block_size = bs;
	o.co_immutable_ttl = ttl;
	o.co_flags = CACHE_OPEN_NOSYNC;
	o.co_log = test_log;
	CU_ASSERT_EQUAL_FATAL(cache_open(&o, &c), 0);
	return c;
}

/* Fill a whole file (fileid f, version v) in chunks of chunk bytes. */
static void fill_file(struct cache *c, uint64_t f, uint32_t v, uint64_t size,
                      uint32_t chunk, unsigned flags)
{
	uint8_t a[CACHE_FATTR_SIZE], fh[64];
	size_t fhlen = mkfh(fh, f);

	mkattr(a, f, size, v, 1);
	for (uint64_t off = 0; off < size; off += chunk) {
		uint32_t n = size - off < chunk ? (uint32_t)(size - off) : chunk;
		uint8_t *d = mkdata(f, v, off, n);
		int rc = cache_fill(c, fh, fhlen, off, d, n, off + n == size, a,
		                    flags);
		/* -ENOBUFS: dropped (bypass, full queue); callers check counts */
		CU_ASSERT(rc == 0 || rc == -ENOBUFS);
		free(d);
	}
}

/* Read [off, off+count) of file f; true if hit with the right bytes. */
static int read_check(struct cache *c, uint64_t f, uint32_t v, uint64_t size,
                      uint64_t off, uint32_t count)
{
	uint8_t fh[64], a[CACHE_FATTR_SIZE];
	size_t fhlen = mkfh(fh, f);
	uint8_t *buf = malloc(count ? count : 1);
	uint32_t got = 0;
	bool eof = false;
	uint64_t want = off >= size ? 0 : (size - off < count ? size - off : count);
	int rc = cache_read(c, fh, fhlen, off, count, buf, &got, &eof, a);

	if (rc == 0) {
		CU_ASSERT_EQUAL(got, want);
		CU_ASSERT_EQUAL(eof, off + got >= size);
		CU_ASSERT(check_data(buf, f, v, off, got));
	}
	free(buf);
	return rc;
}

static int rm_cb(const char *p, const struct stat *sb, int flag,
                 struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

/* ---------------------------------------------------------------------- */
/* Round trips                                                             */

static void test_roundtrip(void)
{
	struct cache *c = open_cache(new_dir(), 256 * MB, 0, 0);
	uint64_t size = MB + 1000; /* 16 whole blocks and a partial one */
	uint8_t a[CACHE_FATTR_SIZE], a2[CACHE_FATTR_SIZE], fh[64];
	size_t fhlen = mkfh(fh, 1);
	uint8_t buf[300000];
	uint32_t got;
	bool eof;

	CU_ASSERT_EQUAL(cache_block_size(c), BS);
	fill_file(c, 1, 1, size, 256 * KB, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, 0, BS), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, 1000, 100000), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, 3 * BS + 17, 2 * BS + 5), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, size - 500, 4096), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, size, 4096), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, size + 12345, 4096), 0);
	CU_ASSERT_EQUAL(read_check(c, 1, 1, size, 0, (uint32_t)size + 10), 0);
	/* post_op_attr: the bytes last noted, nlink included */
	mkattr(a, 1, size, 1, 5);
	CU_ASSERT_EQUAL(cache_note_attr(c, a, 0), 0);
	CU_ASSERT_EQUAL(cache_read(c, fh, fhlen, 0, 10, buf, &got, &eof, a2), 0);
	CU_ASSERT_EQUAL(memcmp(a, a2, CACHE_FATTR_SIZE), 0);
	/* unaligned fill: only the whole blocks inside are kept */
	fill_file(c, 2, 1, 0, BS, 0); /* size 0: nothing */
	mkattr(a, 3, 4 * BS, 1, 1);
	{
		uint8_t *d = mkdata(3, 1, 1000, 200000);
		CU_ASSERT_EQUAL(cache_fill(c, fh, mkfh(fh, 3), 1000, d, 200000,
		                           false, a, 0), 0);
		free(d);
	}
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 3, 1, 4 * BS, BS, 2 * BS), 0);
	CU_ASSERT_EQUAL(read_check(c, 3, 1, 4 * BS, 0, 10), -ENOENT);
	CU_ASSERT_EQUAL(read_check(c, 3, 1, 4 * BS, 3 * BS, 10), -ENOENT);
	/* unknown handle */
	CU_ASSERT_EQUAL(read_check(c, 99, 1, 10, 0, 10), -ENOENT);
	/* a reply without attributes stores nothing */
	CU_ASSERT_EQUAL(cache_fill(c, fh, fhlen, 0, buf, BS, false, NULL, 0), 0);
	{
		struct cache_stats st;
		cache_stats(c, &st);
		CU_ASSERT_EQUAL(st.cs_blocks, 17 + 2);
		CU_ASSERT_EQUAL(st.cs_data_bytes, size + 2 * BS);
		CU_ASSERT_EQUAL(st.cs_files, 2);
		CU_ASSERT(st.cs_hits >= 8);
		CU_ASSERT(st.cs_misses >= 3);
		CU_ASSERT(st.cs_fill_bytes == size + 2 * BS);
	}
	cache_close(c);
}

/* cache_fill_ref: the blocks are stored from the caller's buffer, and the
 * release comes exactly once whatever happens to the fill. */
static _Atomic int released;
static void count_release(void *arg)
{
	(void)arg;
	released++;
}

static void test_fill_ref(void)
{
	struct cache *c = open_cache(new_dir(), 256 * MB, 0, 0);
	uint64_t size = 2 * MB;
	uint8_t a[CACHE_FATTR_SIZE], fh[64];
	size_t fhlen = mkfh(fh, 40);
	uint8_t *d = mkdata(40, 1, 0, size), *u = mkdata(41, 1, 1000, 200000);
	struct cache_stats st;

	released = 0;
	mkattr(a, 40, size, 1, 1);
	CU_ASSERT_EQUAL(cache_fill_ref(c, fh, fhlen, 0, d, (uint32_t)size, true,
	                               a, 0, count_release, d), 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(released, 1);
	CU_ASSERT_EQUAL(read_check(c, 40, 1, size, 0, (uint32_t)size), 0);
	CU_ASSERT_EQUAL(read_check(c, 40, 1, size, BS + 7, 3 * BS), 0);
	/* unaligned: the whole blocks inside, from the right bytes */
	mkattr(a, 41, 4 * BS, 1, 1);
	CU_ASSERT_EQUAL(cache_fill_ref(c, fh, mkfh(fh, 41), 1000, u, 200000,
	                               false, a, 0, count_release, u), 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(released, 2);
	CU_ASSERT_EQUAL(read_check(c, 41, 1, 4 * BS, BS, 2 * BS), 0);
	/* nothing to store (no attributes, less than a block): released now */
	CU_ASSERT_EQUAL(cache_fill_ref(c, fh, fhlen, 0, d, BS, false, NULL, 0,
	                               count_release, d), 0);
	CU_ASSERT_EQUAL(released, 3);
	mkattr(a, 42, 4 * BS, 1, 1);
	CU_ASSERT_EQUAL(cache_fill_ref(c, fh, mkfh(fh, 42), 10, d, 100, false, a,
	                               0, count_release, d), 0);
	CU_ASSERT_EQUAL(released, 4);
	CU_ASSERT_EQUAL(cache_fill_ref(c, fh, fhlen, 0, d, BS, false, a, 0, NULL,
	                               NULL), -EINVAL);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_fill_bytes, size + 2 * BS);
	cache_close(c);
	CU_ASSERT_EQUAL(released, 4);
	free(d);
	free(u);
}

static void test_partial(void)
{
	struct cache *c = open_cache(new_dir(), 256 * MB, 0, 0);
	uint64_t size = 4 * BS + 100;
	uint8_t a[CACHE_FATTR_SIZE], fh[64], *buf = calloc(1, size);
	size_t fhlen = mkfh(fh, 5);
	struct cache_range m[4];
	unsigned nm = 0;
	uint32_t got;
	bool eof;

	mkattr(a, 5, size, 1, 1);
	for (uint64_t b = 0; b < 5; b++) {
		uint64_t off = b * BS;
		uint32_t n = b == 4 ? 100 : BS;
		uint8_t *d;
		if (b == 2 || b == 4)
			continue;
		d = mkdata(5, 1, off, n);
		CU_ASSERT_EQUAL(cache_fill(c, fh, fhlen, off, d, n, b == 4, a, 0), 0);
		free(d);
	}
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(cache_read_partial(c, fh, fhlen, 10, (uint32_t)size, buf,
	                                   &got, &eof, NULL, m, 4, &nm), 0);
	CU_ASSERT_EQUAL(got, size - 10);
	CU_ASSERT(eof);
	CU_ASSERT_EQUAL(nm, 2);
	CU_ASSERT_EQUAL(m[0].cr_off, 2 * BS);
	CU_ASSERT_EQUAL(m[0].cr_len, BS);
	CU_ASSERT_EQUAL(m[1].cr_off, 4 * BS);
	CU_ASSERT_EQUAL(m[1].cr_len, 100);
	CU_ASSERT(check_data(buf, 5, 1, 10, 2 * BS - 10));
	CU_ASSERT(check_data(buf + 3 * BS - 10, 5, 1, 3 * BS, BS));
	CU_ASSERT_EQUAL(cache_read_partial(c, fh, fhlen, 0, (uint32_t)size, buf,
	                                   &got, &eof, NULL, m, 1, &nm), -E2BIG);
	CU_ASSERT_EQUAL(read_check(c, 5, 1, size, 0, (uint32_t)size), -ENOENT);
	/* block helpers */
	{
		uint64_t ao, al;
		cache_blk_align(10, 100, BS, size, &ao, &al);
		CU_ASSERT(ao == 0 && al == BS);
		cache_blk_align(4 * BS + 5, BS, BS, size, &ao, &al);
		CU_ASSERT(ao == 4 * BS && al == 100);
		CU_ASSERT_EQUAL(cache_blk_len(4, BS, size), 100);
		CU_ASSERT_EQUAL(cache_blk_len(5, BS, size), 0);
		CU_ASSERT_EQUAL(cache_blk_ceil(1, BS), 1);
		CU_ASSERT_EQUAL(cache_blk_of(BS - 1, BS), 0);
	}
	free(buf);
	cache_close(c);
}

/* ---------------------------------------------------------------------- */
/* Versions                                                                */

static void test_version_change(void)
{
	struct cache *c = open_cache(new_dir(), 256 * MB, 0, 0);
	uint8_t a[CACHE_FATTR_SIZE];
	struct cache_stats st;

	fill_file(c, 10, 1, 8 * BS, BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 10, 1, 8 * BS, 0, 8 * BS), 0);
	/* a reply elsewhere shows a new mtime: old blocks never served again */
	mkattr(a, 10, 8 * BS, 2, 1);
	CU_ASSERT_EQUAL(cache_note_attr(c, a, 0), 0);
	CU_ASSERT_EQUAL(read_check(c, 10, 2, 8 * BS, 0, BS), -ENOENT);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 0);
	CU_ASSERT_EQUAL(st.cs_stale_drops, 8);
	CU_ASSERT_EQUAL(st.cs_files, 0);
	/* a late fill of the old version is not stored */
	fill_file(c, 10, 1, 8 * BS, BS, 0); /* notes v1 again: v1 current */
	mkattr(a, 10, 8 * BS, 3, 1);
	CU_ASSERT_EQUAL(cache_note_attr(c, a, 0), 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 10, 1, 8 * BS, 0, BS), -ENOENT);
	/* the new version fills and serves; a size change is a new version */
	fill_file(c, 10, 3, 8 * BS, BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 10, 3, 8 * BS, 100, 3 * BS), 0);
	mkattr(a, 10, 8 * BS + 1, 3, 1);
	CU_ASSERT_EQUAL(cache_note_attr(c, a, 0), 0);
	CU_ASSERT_EQUAL(read_check(c, 10, 3, 8 * BS + 1, 100, 3 * BS), -ENOENT);
	cache_close(c);
}

static void test_immutable(void)
{
	/* A 3 s trust window: the fill, flush and first read below must fit
	 * in it even under ASan on a loaded machine (1 s did not, once). */
	struct cache *c = open_cache(new_dir(), 256 * MB, 0, 3);
	uint8_t a[CACHE_FATTR_SIZE], a2[CACHE_FATTR_SIZE], fh[64], buf[16];
	size_t fhlen = mkfh(fh, 20);
	uint32_t got;
	bool eof;

	fill_file(c, 20, 1, 4 * BS, BS, CACHE_F_IMMUTABLE);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	/* another version within the trust window is ignored */
	mkattr(a, 20, 4 * BS, 2, 1);
	CU_ASSERT_EQUAL(cache_note_attr(c, a, CACHE_F_IMMUTABLE), 0);
	CU_ASSERT_EQUAL(read_check(c, 20, 1, 4 * BS, 0, 4 * BS), 0);
	CU_ASSERT_EQUAL(cache_read(c, fh, fhlen, 0, 16, buf, &got, &eof, a2), 0);
	CU_ASSERT_EQUAL(a2[71], 1); /* mtime seconds of version 1 */
	/* the same call in strict mode adopts it at once */
	CU_ASSERT_EQUAL(cache_note_attr(c, a, 0), 0);
	CU_ASSERT_EQUAL(read_check(c, 20, 1, 4 * BS, 0, BS), -ENOENT);
	/* trust expires after the ttl (3 s): the next version is adopted */
	fill_file(c, 21, 1, 2 * BS, BS, CACHE_F_IMMUTABLE);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 21, 1, 2 * BS, 0, 2 * BS), 0);
	sleep(4);
	CU_ASSERT_EQUAL(read_check(c, 21, 1, 2 * BS, 0, 2 * BS), -ENOENT);
	mkattr(a, 21, 2 * BS, 1, 1); /* same version seen again: trusted again */
	CU_ASSERT_EQUAL(cache_note_attr(c, a, CACHE_F_IMMUTABLE), 0);
	CU_ASSERT_EQUAL(read_check(c, 21, 1, 2 * BS, 0, 2 * BS), 0);
	cache_close(c);
}

static void test_invalidate(void)
{
	struct cache *c = open_cache(new_dir(), 256 * MB, 0, 0);
	uint8_t fh[64];
	size_t fhlen = mkfh(fh, 30);
	struct cache_stats st;

	fill_file(c, 30, 1, 4 * BS, BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 30, 1, 4 * BS, 0, BS), 0);
	CU_ASSERT_EQUAL(cache_invalidate(c, fh, fhlen), 0);
	CU_ASSERT_EQUAL(read_check(c, 30, 1, 4 * BS, 0, BS), -ENOENT);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 0);
	fill_file(c, 30, 1, 4 * BS, BS, 0); /* after the write */
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 30, 1, 4 * BS, 0, 4 * BS), 0);
	CU_ASSERT_EQUAL(cache_invalidate(c, fh, 3), -ENOENT);
	cache_close(c);
}

/* ---------------------------------------------------------------------- */
/* Restart                                                                 */

static void test_restart(void)
{
	const char *d = new_dir();
	struct cache *c = open_cache(d, 256 * MB, 0, 3600);
	uint8_t a[CACHE_FATTR_SIZE], fh[64];
	struct cache_stats st, st2;

	fill_file(c, 40, 1, 10 * BS + 7, 3 * BS, CACHE_F_IMMUTABLE);
	fill_file(c, 41, 1, 5 * BS, BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	cache_close(c);

	c = open_cache(d, 256 * MB, 0, 3600);
	cache_stats(c, &st2);
	CU_ASSERT_EQUAL(st2.cs_blocks, st.cs_blocks);
	CU_ASSERT_EQUAL(st2.cs_bytes, st.cs_bytes);
	CU_ASSERT_EQUAL(st2.cs_files, 2);
	/* immutable: served by handle alone, from the persisted map */
	CU_ASSERT_EQUAL(read_check(c, 40, 1, 10 * BS + 7, 0, 11 * BS), 0);
	/* strict: needs the version confirmed by a reply of this run */
	CU_ASSERT_EQUAL(read_check(c, 41, 1, 5 * BS, 0, BS), -ENOENT);
	mkattr(a, 41, 5 * BS, 1, 1);
	CU_ASSERT_EQUAL(cache_note_handle(c, fh, mkfh(fh, 41), a, 0), 0);
	CU_ASSERT_EQUAL(read_check(c, 41, 1, 5 * BS, 0, 5 * BS), 0);
	/* a changed file after restart: old blocks are not served */
	mkattr(a, 40, 10 * BS + 7, 9, 1);
	CU_ASSERT_EQUAL(cache_note_attr(c, a, 0), 0);
	CU_ASSERT_EQUAL(read_check(c, 40, 1, 10 * BS + 7, 0, BS), -ENOENT);
	cache_close(c);
	/* the same dir with another block size is rebuilt */
	log_reset();
	c = open_cache(d, 256 * MB, 256 * KB, 0);
	cache_stats(c, &st2);
	CU_ASSERT_EQUAL(st2.cs_blocks, 0);
	CU_ASSERT(log_has("incompatible"));
	cache_close(c);
}

/* ---------------------------------------------------------------------- */
/* Eviction                                                                */

/* Pages LMDB uses for all databases of the cache in d. */
static uint64_t lmdb_used(const char *d)
{
	MDB_env *env;
	MDB_txn *t;
	MDB_dbi dbi;
	MDB_stat ms;
	uint64_t pages = 0, psize;
	const char *names[] = { "meta", "files", "handles", "blocks", "atime", "lru" };

	CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
	mdb_env_set_maxdbs(env, 8);
	CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, d, MDB_RDONLY | MDB_NOTLS, 0600), 0);
	mdb_env_stat(env, &ms);
	psize = ms.ms_psize;
	CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, MDB_RDONLY, &t), 0);
	for (unsigned i = 0; i < 6; i++) {
		CU_ASSERT_EQUAL(mdb_dbi_open(t, names[i], 0, &dbi), 0);
		mdb_stat(t, dbi, &ms);
		pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	}
	mdb_stat(t, 1 /* MAIN_DBI */, &ms);
	pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
	mdb_txn_abort(t);
	mdb_env_close(env);
	return pages * psize;
}

static void test_eviction(void)
{
	const char *d = new_dir();
	uint64_t cap = 4 * MB, blk_charge = 17 * 4096 + 192;
	struct cache *c = open_cache(d, cap, 0, 0);
	struct cache_stats st;
	char ds[4200];

	strcpy(ds, d);
	/* file 50 is hot: read after every fill of another file */
	fill_file(c, 50, 1, 8 * BS, BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	for (uint64_t f = 100; f < 120; f++) {
		fill_file(c, f, 1, 8 * BS, 4 * BS, 0);
		CU_ASSERT_EQUAL(read_check(c, 50, 1, 8 * BS, 0, 8 * BS), 0);
		CU_ASSERT_EQUAL(cache_flush(c), 0);
		cache_stats(c, &st);
		CU_ASSERT(st.cs_bytes <= cap + blk_charge);
	}
	cache_stats(c, &st);
	CU_ASSERT(st.cs_evictions > 0);
	CU_ASSERT(st.cs_bytes <= cap + blk_charge);
	CU_ASSERT(st.cs_bytes >= cap / 2);
	/* LRU: the hot file survived, the oldest cold ones went */
	CU_ASSERT_EQUAL(read_check(c, 50, 1, 8 * BS, 0, 8 * BS), 0);
	CU_ASSERT_EQUAL(read_check(c, 100, 1, 8 * BS, 0, BS), -ENOENT);
	CU_ASSERT_EQUAL(read_check(c, 119, 1, 8 * BS, 0, 8 * BS), 0);
	cache_close(c);
	{
		uint64_t used = lmdb_used(ds);
		printf("\n  eviction: cap %llu, footprint %llu, LMDB pages in use "
		       "%llu bytes ", (unsigned long long)cap,
		       (unsigned long long)st.cs_bytes, (unsigned long long)used);
		CU_ASSERT(used <= cap + blk_charge);
	}
	/* the cap applies at open too */
	c = open_cache(ds, cap / 2, 0, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	CU_ASSERT(st.cs_bytes <= cap / 2 + blk_charge);
	cache_close(c);
}

/* ---------------------------------------------------------------------- */
/* Queue full: the writer is held up by a write transaction of another    */
/* process; fills are dropped and counted, never waited for.              */

static void test_queue_full(void)
{
	const char *d = new_dir();
	struct cache_opts o;
	struct cache *c = NULL;
	struct cache_stats st;
	int to_child[2], to_parent[2];
	unsigned drops = 0;
	double worst = 0;
	char ch;
	pid_t pid;

	memset(&o, 0, sizeof(o));
	o.co_dir = d;
	o.co_max_bytes = 256 * MB;
	o.co_queue_bytes = 2 * MB;
	o.co_flags = CACHE_OPEN_NOSYNC;
	o.co_log = test_log;
	CU_ASSERT_EQUAL_FATAL(cache_open(&o, &c), 0);
	fill_file(c, 60, 1, 2 * BS, BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_FATAL(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		MDB_env *env;
		MDB_txn *t;
		if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) ||
		    mdb_env_open(env, d, MDB_NOTLS, 0600) ||
		    mdb_txn_begin(env, NULL, 0, &t))
			_exit(1);
		if (write(to_parent[1], "x", 1) != 1 ||
		    read(to_child[0], &ch, 1) != 1)
			_exit(1);
		mdb_txn_abort(t);
		mdb_env_close(env);
		_exit(0);
	}
	CU_ASSERT_EQUAL(read(to_parent[0], &ch, 1), 1);
	for (uint64_t f = 0; f < 32; f++) {
		uint8_t a[CACHE_FATTR_SIZE], fh[64], *dd = mkdata(70 + f, 1, 0, MB);
		struct timespec t0, t1;
		double ms;
		int rc;
		mkattr(a, 70 + f, MB, 1, 1);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		rc = cache_fill(c, fh, mkfh(fh, 70 + f), 0, dd, MB, true, a, 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
		worst = ms > worst ? ms : worst;
		CU_ASSERT(rc == 0 || rc == -ENOBUFS);
		drops += rc == -ENOBUFS;
		free(dd);
	}
	/* reads go on while the writer is stuck */
	CU_ASSERT_EQUAL(read_check(c, 60, 1, 2 * BS, 0, 2 * BS), 0);
	cache_stats(c, &st);
	CU_ASSERT(drops >= 29);
	CU_ASSERT_EQUAL(st.cs_dropped_fills, drops);
	CU_ASSERT(st.cs_queue_bytes <= 2 * MB);
	CU_ASSERT(worst < 100.0);
	printf("\n  queue full: %u of 32 fills dropped, slowest fill call %.2f ms ",
	       drops, worst);
	CU_ASSERT_EQUAL(write(to_child[1], "x", 1), 1);
	{
		int status;
		waitpid(pid, &status, 0);
		CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 2 + (32 - drops) * 16);
	close(to_child[0]);
	close(to_child[1]);
	close(to_parent[0]);
	close(to_parent[1]);
	cache_close(c);
}

/* ---------------------------------------------------------------------- */
/* Corrupt caches                                                          */

static bool aside_exists(const char *d)
{
	char cmd[4400];

	snprintf(cmd, sizeof(cmd), "ls %s/data.mdb.bad-* >/dev/null 2>&1", d);
	return system(cmd) == 0;
}

static void corrupt_case(bool truncate_it)
{
	const char *d = new_dir();
	struct cache *c = open_cache(d, 256 * MB, 0, 0);
	struct cache_stats st;
	char p[4300];
	int fd;

	fill_file(c, 80, 1, 64 * BS, 8 * BS, CACHE_F_IMMUTABLE);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_close(c);
	snprintf(p, sizeof(p), "%s/data.mdb", d);
	if (truncate_it) {
		struct stat sb;
		CU_ASSERT_EQUAL(stat(p, &sb), 0);
		CU_ASSERT_EQUAL(truncate(p, sb.st_size / 2), 0);
	} else {
		uint8_t *r = malloc(MB);
		for (unsigned i = 0; i < MB; i++)
			r[i] = (uint8_t)(rand() >> 7);
		fd = open(p, O_WRONLY | O_TRUNC);
		CU_ASSERT(fd >= 0);
		CU_ASSERT_EQUAL(write(fd, r, MB), (ssize_t)MB);
		close(fd);
		free(r);
	}
	log_reset();
	c = open_cache(d, 256 * MB, 0, 0);
	CU_ASSERT(log_has("moved aside"));
	CU_ASSERT(aside_exists(d));
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 0);
	CU_ASSERT_EQUAL(read_check(c, 80, 1, 64 * BS, 0, BS), -ENOENT);
	fill_file(c, 80, 1, 64 * BS, 8 * BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(read_check(c, 80, 1, 64 * BS, 0, 64 * BS), 0);
	cache_close(c);
}

static void test_corrupt_truncated(void)
{
	corrupt_case(true);
}

static void test_corrupt_random(void)
{
	corrupt_case(false);
}

/* ---------------------------------------------------------------------- */
/* A tmpfs of 4 MiB that fills up: bypass with a warning, then recovery   */

static void test_full_disk(void)
{
	char mnt[4200];
	struct cache_opts o;
	struct cache *c = NULL;
	struct cache_stats st;
	unsigned served = 0;

	snprintf(mnt, sizeof(mnt), "%s/tmpfs", tmpdir);
	CU_ASSERT_EQUAL_FATAL(mkdir(mnt, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(mount("tmpfs", mnt, "tmpfs", 0, "size=4m"), 0);
	memset(&o, 0, sizeof(o));
	o.co_dir = mnt;
	o.co_max_bytes = 64 * MB;
	o.co_retry_ms = 200;
	o.co_log = test_log;
	log_reset();
	CU_ASSERT_EQUAL_FATAL(cache_open(&o, &c), 0);
	for (uint64_t f = 0; f < 24; f++) {
		fill_file(c, 200 + f, 1, MB, 256 * KB, 0);
		cache_flush(c); /* -EAGAIN while in bypass */
		cache_stats(c, &st);
		if (st.cs_bypass)
			usleep(250000);
	}
	cache_flush(c);
	cache_stats(c, &st);
	CU_ASSERT(st.cs_write_errors > 0);
	CU_ASSERT(log_warnings > 0);
	CU_ASSERT(log_has("bypassing"));
	CU_ASSERT(st.cs_max_bytes < 64 * MB);
	if (getenv("CACHE_TEST_LOG"))
		fputs(log_buf, stdout);
	CU_ASSERT(!st.cs_broken);
	/* what is held is served, and correct */
	for (uint64_t f = 0; f < 24; f++)
		served += read_check(c, 200 + f, 1, MB, 0, MB) == 0;
	CU_ASSERT(served > 0);
	/* after the retry, writes resumed under the lowered cap */
	CU_ASSERT(log_has("writes resumed"));
	printf("\n  full tmpfs: %llu write errors, cap lowered to %llu, "
	       "%u files served ", (unsigned long long)st.cs_write_errors,
	       (unsigned long long)st.cs_max_bytes, served);
	cache_close(c);
	CU_ASSERT_EQUAL(umount(mnt), 0);
	rmdir(mnt);
}

/* ---------------------------------------------------------------------- */
/* Readers on several threads while the writer fills                      */

static atomic_bool stop_readers;
static atomic_uint reader_hits, reader_bad;
static struct cache *shared;

static void *reader_main(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	uint8_t *buf = malloc(MB);

	while (!atomic_load(&stop_readers)) {
		uint64_t f = 300 + rand_r(&seed) % 8;
		uint64_t off = rand_r(&seed) % (4 * MB);
		uint32_t n = 1 + rand_r(&seed) % (256 * KB);
		uint8_t fh[64];
		uint32_t got;
		bool eof;
		if (cache_read(shared, fh, mkfh(fh, f), off, n, buf, &got, &eof,
		               NULL) == 0) {
			atomic_fetch_add(&reader_hits, 1);
			if (!check_data(buf, f, 1, off, got))
				atomic_fetch_add(&reader_bad, 1);
		}
	}
	free(buf);
	return NULL;
}

static void test_concurrent(void)
{
	pthread_t th[4];

	shared = open_cache(new_dir(), 16 * MB, 0, 0);
	atomic_store(&stop_readers, false);
	for (unsigned i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, reader_main, (void *)(uintptr_t)(i + 1));
	for (int round = 0; round < 3; round++)
		for (uint64_t f = 300; f < 308; f++) {
			fill_file(shared, f, 1, 4 * MB, 512 * KB, 0);
			usleep(2000);
		}
	cache_flush(shared);
	usleep(100000);
	atomic_store(&stop_readers, true);
	for (unsigned i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT(atomic_load(&reader_hits) > 0);
	CU_ASSERT_EQUAL(atomic_load(&reader_bad), 0);
	printf("\n  concurrent: %u hits, %u bad ", atomic_load(&reader_hits),
	       atomic_load(&reader_bad));
	cache_close(shared);
}

/* ---------------------------------------------------------------------- */
/* CLI                                                                     */

static int cli(const char *a1, const char *a2, const char *a3, const char *a4)
{
	char *argv[6] = { "cache", (char *)a1, (char *)a2, (char *)a3,
	                  (char *)a4, NULL };
	int argc = 2 + (a2 != NULL) + (a3 != NULL) + (a4 != NULL);
	int rc;

	fflush(stdout);
	rc = cache_cli_main(argc, argv);
	fflush(stdout);
	return rc;
}

/* Flip one byte of a block's data inside data.mdb. */
static bool flip_block_byte(const char *d, uint64_t f)
{
	char p[4300];
	uint8_t pat[64], *map;
	struct stat sb;
	bool done = false;
	int fd;

	for (unsigned i = 0; i < sizeof(pat); i++)
		pat[i] = content(f, 1, BS + i);
	snprintf(p, sizeof(p), "%s/data.mdb", d);
	fd = open(p, O_RDWR);
	if (fd < 0 || fstat(fd, &sb) < 0)
		return false;
	map = malloc(sb.st_size);
	if (pread(fd, map, sb.st_size, 0) == sb.st_size) {
		uint8_t *hit = memmem(map, sb.st_size, pat, sizeof(pat));
		if (hit) {
			uint8_t b = hit[10] ^ 0xff;
			done = pwrite(fd, &b, 1, hit + 10 - map) == 1;
		}
	}
	free(map);
	close(fd);
	return done;
}

static void test_cli(void)
{
	const char *d = new_dir();
	struct cache *c = open_cache(d, 256 * MB, 0, 0);
	char ds[4200];
	struct cache_stats st;

	strcpy(ds, d);
	for (uint64_t f = 400; f < 404; f++)
		fill_file(c, f, 1, 16 * BS + 5, 4 * BS, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	CU_ASSERT_EQUAL(cli("stat", ds, NULL, NULL), 0); /* beside the proxy */
	CU_ASSERT_EQUAL(cli("verify", ds, NULL, NULL), 1); /* busy */
	CU_ASSERT_EQUAL(cli("evict", ds, "--all", NULL), 1);
	cache_close(c);
	CU_ASSERT_EQUAL(cli("--help", NULL, NULL, NULL), 0);
	CU_ASSERT_EQUAL(cli("frob", ds, NULL, NULL), 2);
	CU_ASSERT_EQUAL(cli("evict", ds, NULL, NULL), 2);
	CU_ASSERT_EQUAL(cli("evict", ds, "--bytes", "12x"), 2);
	CU_ASSERT_EQUAL(cli("stat", "/nonexistent/dir", NULL, NULL), 1);
	CU_ASSERT_EQUAL(cli("verify", ds, NULL, NULL), 0);
	CU_ASSERT_EQUAL(cli("evict", ds, "--bytes", "1M"), 0);
	CU_ASSERT_EQUAL(cli("verify", ds, NULL, NULL), 0);
	c = open_cache(ds, 256 * MB, 0, 0);
	cache_stats(c, &st);
	CU_ASSERT(st.cs_bytes <= MB);
	CU_ASSERT(st.cs_blocks > 0);
	cache_close(c);
	/* damage one block's data: verify finds the checksum mismatch */
	CU_ASSERT_FATAL(flip_block_byte(ds, 403));
	CU_ASSERT_EQUAL(cli("verify", ds, NULL, NULL), 1);
	CU_ASSERT_EQUAL(cli("evict", ds, "--all", NULL), 0);
	CU_ASSERT_EQUAL(cli("verify", ds, NULL, NULL), 0);
	c = open_cache(ds, 256 * MB, 0, 0);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 0);
	CU_ASSERT_EQUAL(st.cs_files, 0);
	cache_close(c);
}

/* ---------------------------------------------------------------------- */
/* Measurements (printed; only correctness is asserted)                   */

static double secs(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) + (b->tv_nsec - a->tv_nsec) / 1e9;
}

static void bench_bs(const char *shm, uint32_t bs)
{
	char d[4200];
	struct cache_opts o;
	struct cache *c = NULL;
	struct timespec t0, t1;
	uint64_t size = 256 * MB, total = 0;
	uint8_t fh[64], a[CACHE_FATTR_SIZE], *buf = malloc(MB);
	size_t fhlen = mkfh(fh, 500);
	struct cache_stats st;
	double fill_s, read_s;

	snprintf(d, sizeof(d), "%s/bench-%u", shm, bs);
	memset(&o, 0, sizeof(o));
	o.co_dir = d;
	o.co_max_bytes = 1024ull * MB;
	o.co_block_size = bs;
	o.co_log = test_log;
	o.co_queue_bytes = 512 * MB; /* measure the writer, not drops */
	CU_ASSERT_EQUAL_FATAL(cache_open(&o, &c), 0);
	mkattr(a, 500, size, 1, 1);
	{
		uint8_t *d1 = mkdata(500, 1, 0, MB);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (uint64_t off = 0; off < size; off += MB)
			CU_ASSERT_EQUAL(cache_fill(c, fh, fhlen, off, d1, MB, false,
			                           a, 0), 0);
		CU_ASSERT_EQUAL(cache_flush(c), 0);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		free(d1);
	}
	fill_s = secs(&t0, &t1);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_data_bytes, size);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int pass = 0; pass < 4; pass++)
		for (uint64_t off = 0; off < size; off += MB) {
			uint32_t got;
			bool eof;
			CU_ASSERT_EQUAL(cache_read(c, fh, fhlen, off, MB, buf, &got,
			                           &eof, NULL), 0);
			total += got;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	read_s = secs(&t0, &t1);
	printf("\n  bs %4u KiB: fill %.0f MB/s (%llu commits, NOMETASYNC on "
	       "/dev/shm), warm 1 MiB reads %.2f GB/s, footprint %.2f%% over "
	       "data ",
	       bs / 1024, size / fill_s / 1e6, (unsigned long long)st.cs_commits,
	       total / read_s / 1e9,
	       100.0 * ((double)st.cs_bytes - (double)st.cs_data_bytes) /
	               (double)st.cs_data_bytes);
	cache_close(c);
	free(buf);
	{
		char cmd[4300];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", d);
		CU_ASSERT_EQUAL(system(cmd), 0);
	}
}

static void test_bench(void)
{
	char shm[] = "/dev/shm/test_cache.XXXXXX";
	struct cache *c;
	struct timespec t0, t1;
	uint8_t a[CACHE_FATTR_SIZE];
	const unsigned n = 2000000;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(shm));
	bench_bs(shm, 64 * KB);
	bench_bs(shm, 256 * KB);
	c = open_cache(new_dir(), 64 * MB, 0, 0);
	/* a working set of 1000 files, attributes unchanged (the common case) */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < n; i++) {
		mkattr(a, 1000 + i % 1000, 4096, 1, 1);
		cache_note_attr(c, a, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("\n  cache_note_attr: %.0f ns per call (incl. building the "
	       "fattr3) ", secs(&t0, &t1) / n * 1e9);
	cache_close(c);
	rmdir(shm);
}


/* ---------------------------------------------------------------------- */
/* Content-hash dedup (issue 7): blocks stored by key share one chunk;    */
/* references go with invalidation and eviction, the chunk with the last. */

/* Fill block b of file f (size bytes, version v) by content key k: the
 * data is content(1000 + k), so equal keys mean equal bytes. */
static void fill_hashed(struct cache *c, uint64_t f, uint64_t size, uint64_t b,
                        unsigned k)
{
	uint8_t a[CACHE_FATTR_SIZE], fh[64], key[CACHE_HASH_SIZE];
	size_t fhlen = mkfh(fh, f);
	uint32_t len = cache_blk_len(b, BS, size);
	uint8_t *d = mkdata(1000 + k, 1, 0, len);

	mkattr(a, f, size, 1, 1);
	memset(key, 0, sizeof(key));
	put32(key, k + 1);
	CU_ASSERT_EQUAL(cache_fill_hashed(c, fh, fhlen, b, d, len, key, a, 0), 0);
	free(d);
}

static bool read_hashed(struct cache *c, uint64_t f, uint64_t size, uint64_t b,
                        unsigned k)
{
	uint8_t fh[64], a[CACHE_FATTR_SIZE];
	size_t fhlen = mkfh(fh, f);
	uint32_t len = cache_blk_len(b, BS, size), got;
	uint8_t *buf = malloc(BS);
	bool eof, ok;

	ok = cache_read(c, fh, fhlen, b * BS, len, buf, &got, &eof, a) == 0;
	if (ok)
		CU_ASSERT(got == len && check_data(buf, 1000 + k, 1, 0, len));
	free(buf);
	return ok;
}

static void test_dedup(void)
{
	const char *d = new_dir();
	uint64_t size = 8 * BS - 1000; /* a short last block */
	struct cache *c = open_cache(d, 64 * MB, 0, 0);
	struct cache_stats st;
	struct cache_dedup_stats ds;
	uint8_t key[CACHE_HASH_SIZE], fh[64], *buf = malloc(BS);
	char dd[4200];

	strcpy(dd, d);
	/* files 1 and 2: the same 8 blocks; file 3: block 0 shared too */
	for (uint64_t b = 0; b < 8; b++) {
		fill_hashed(c, 1, size, b, (unsigned)b);
		fill_hashed(c, 2, size, b, (unsigned)b);
	}
	fill_hashed(c, 3, size, 0, 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	cache_dedup_stats(c, &ds);
	CU_ASSERT_EQUAL(st.cs_blocks, 17);
	CU_ASSERT_EQUAL(st.cs_data_bytes, size); /* stored once */
	CU_ASSERT_EQUAL(ds.cd_chunks_new, 8);
	CU_ASSERT_EQUAL(ds.cd_chunks_shared, 9);
	CU_ASSERT(st.cs_bytes < size + size / 4);
	for (uint64_t b = 0; b < 8; b++) {
		CU_ASSERT(read_hashed(c, 1, size, b, (unsigned)b));
		CU_ASSERT(read_hashed(c, 2, size, b, (unsigned)b));
	}
	CU_ASSERT(read_hashed(c, 3, size, 0, 0));
	memset(key, 0, sizeof(key));
	put32(key, 3);
	CU_ASSERT_EQUAL(cache_read_chunk(c, key, buf, BS), 0);
	CU_ASSERT(check_data(buf, 1002, 1, 0, BS));
	CU_ASSERT_EQUAL(cache_read_chunk(c, key, buf, BS - 1), -ENOENT);
	/* file 1 goes: its references drop, file 2 still reads */
	mkfh(fh, 1);
	CU_ASSERT_EQUAL(cache_invalidate(c, fh, 32), 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 9);
	CU_ASSERT_EQUAL(st.cs_data_bytes, size);
	for (uint64_t b = 0; b < 8; b++)
		CU_ASSERT(read_hashed(c, 2, size, b, (unsigned)b));
	/* file 2 goes: every chunk but block 0's (file 3 holds it) goes */
	mkfh(fh, 2);
	CU_ASSERT_EQUAL(cache_invalidate(c, fh, 32), 0);
	CU_ASSERT_EQUAL(cache_flush(c), 0);
	cache_stats(c, &st);
	CU_ASSERT_EQUAL(st.cs_blocks, 1);
	CU_ASSERT_EQUAL(st.cs_data_bytes, BS);
	CU_ASSERT(read_hashed(c, 3, size, 0, 0));
	CU_ASSERT_EQUAL(cache_read_chunk(c, key, buf, BS), -ENOENT);
	cache_close(c);
	CU_ASSERT_EQUAL(cli("verify", dd, NULL, NULL), 0);

	/* eviction under a 4 MiB cap: 40 files, each 8 blocks of which 4 are
	 * shared by all; whatever survives reads right, the counts stay
	 * consistent (verify), the cap holds */
	c = open_cache(dd, 4 * MB, 0, 0);
	for (uint64_t f = 10; f < 50; f++) {
		for (uint64_t b = 0; b < 8; b++)
			fill_hashed(c, f, 8 * BS, b,
			            b < 4 ? (unsigned)b : (unsigned)(f * 8 + b));
		CU_ASSERT_EQUAL(cache_flush(c), 0);
	}
	cache_stats(c, &st);
	CU_ASSERT(st.cs_evictions > 0);
	CU_ASSERT(st.cs_bytes <= 4 * MB + 17 * 4096 + 192);
	for (uint64_t f = 10; f < 50; f++)
		for (uint64_t b = 0; b < 8; b++)
			(void)read_hashed(c, f, 8 * BS, b,
			                  b < 4 ? (unsigned)b : (unsigned)(f * 8 + b));
	CU_ASSERT(read_hashed(c, 49, 8 * BS, 0, 0)); /* newest survives */
	cache_close(c);
	CU_ASSERT_EQUAL(cli("verify", dd, NULL, NULL), 0);
	free(buf);
}

/* issue 16 item 9: an access grant holds for one version of the file as
 * far as permissions go: a chmod is a new one even when the ctime clock
 * did not move; a chown/chgrp moves ctime; atime, nlink are not part. */
static void test_same_access(void)
{
	uint8_t a[CACHE_FATTR_SIZE], b[CACHE_FATTR_SIZE];

	mkattr(a, 10, 8 * BS, 5, 1);
	mkattr(b, 10, 8 * BS, 5, 2); /* another nlink */
	put32(b + 60, 99);           /* another atime */
	CU_ASSERT_TRUE(cache_fattr_same_access(a, b));
	put32(b + 4, 0600);          /* chmod, same ctime */
	CU_ASSERT_FALSE(cache_fattr_same_access(a, b));
	CU_ASSERT_TRUE(cache_fattr_same_version(a, b)); /* the data did not move */
	mkattr(b, 10, 8 * BS, 5, 1);
	put32(b + 12, 2002);         /* another uid as a mapping shows it */
	CU_ASSERT_TRUE(cache_fattr_same_access(a, b));
	put32(b + 80, 1);            /* chown: ctime moved (1 ns) */
	CU_ASSERT_FALSE(cache_fattr_same_access(a, b));
	mkattr(b, 11, 8 * BS, 5, 1); /* another file */
	CU_ASSERT_FALSE(cache_fattr_same_access(a, b));
}

int main(void)
{
	CU_pSuite s;
	int failures;

	if (!mkdtemp(tmpdir))
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("cache", NULL, NULL);
	CU_add_test(s, "fill/read round trips", test_roundtrip);
	CU_add_test(s, "fill by reference: stored, released once", test_fill_ref);
	CU_add_test(s, "partial reads list missing blocks", test_partial);
	CU_add_test(s, "version change invalidates", test_version_change);
	CU_add_test(s, "access versions: chmod, ctime", test_same_access);
	CU_add_test(s, "immutable mode", test_immutable);
	CU_add_test(s, "invalidate (write-through)", test_invalidate);
	CU_add_test(s, "warm after restart", test_restart);
	CU_add_test(s, "eviction: cap and LRU order", test_eviction);
	CU_add_test(s, "queue full: drops counted, never blocks", test_queue_full);
	CU_add_test(s, "truncated cache rebuilt", test_corrupt_truncated);
	CU_add_test(s, "random-bytes cache rebuilt", test_corrupt_random);
	CU_add_test(s, "full tmpfs: bypass, no crash", test_full_disk);
	CU_add_test(s, "concurrent readers and writer", test_concurrent);
	CU_add_test(s, "CLI stat/verify/evict", test_cli);
	CU_add_test(s, "dedup: shared chunks through invalidation and eviction",
	            test_dedup);
	CU_add_test(s, "measurements", test_bench);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return failures ? 1 : 0;
}
