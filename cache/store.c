/*
 * cache/store.c — the LMDB side of the cache: opening with corruption and
 * compatibility checks (a bad cache is moved aside and rebuilt), the
 * schema's keys and records, and the write-side operations the writer
 * thread and the offline CLI share (delete a file's blocks, evict).
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Per-block bytes charged for its entries in the blocks, atime and lru
 * B-trees (three small nodes in pages that are 2/3 full on average). */
#define INDEX_CHARGE 192u

void cache_logf(void (*log)(int, const char *), int prio, const char *fmt,
                ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log)
		log(prio, msg);
	else
		fprintf(stderr, "cache: %s\n", msg);
}

void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

void key_ident(uint8_t *k, const struct cache_ident *id)
{
	put_be64(k, id->ci_fsid);
	put_be64(k + 8, id->ci_fileid);
}

void key_blk(uint8_t *k, const struct cache_ident *id, uint64_t blk)
{
	key_ident(k, id);
	put_be64(k + 16, blk);
}

void key_unblk(const uint8_t *k, struct cache_ident *id, uint64_t *blk)
{
	id->ci_fsid = get_be64(k);
	id->ci_fileid = get_be64(k + 8);
	*blk = get_be64(k + 16);
}

void cver_of_fattr(const uint8_t *fattr, struct cver *v)
{
	v->v_size = get_be64(fattr + 20);
	v->v_mtime = get_be64(fattr + 68);
	v->v_ctime = get_be64(fattr + 76);
}

bool cver_eq(const struct cver *a, const struct cver *b)
{
	return a->v_size == b->v_size && a->v_mtime == b->v_mtime &&
	       a->v_ctime == b->v_ctime;
}

/* LMDB's own codes become -EIO (logged by the caller with mdb_strerror). */
int store_mdb_err(int rc)
{
	if (rc == 0)
		return 0;
	return rc > 0 && rc < MDB_KEYEXIST ? -rc : -EIO;
}

/* Errors after which the environment cannot be trusted any more. */
bool store_fatal(int rc)
{
	return rc == MDB_PANIC || rc == MDB_CORRUPTED ||
	       rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID ||
	       rc == MDB_VERSION_MISMATCH || rc == MDB_BAD_TXN;
}

/*
 * Bytes a block of len data bytes really takes: a value that does not fit
 * a leaf node goes to overflow pages, and LMDB puts a 16-byte page header
 * before it, so 64 KiB of data takes 17 pages of 4 KiB (the last one
 * holds our 32-byte header for free).
 */
uint64_t store_charge(const struct store *s, uint32_t len)
{
	uint64_t d = sizeof(struct blkhdr) + (uint64_t)len;
	uint64_t nodemax = ((s->s_psize - 16u) / 2u & ~1u) - 2u;

	if (8u + CACHE_BLK_KEY + d > nodemax)
		return ((16u - 1u + d) / s->s_psize + 1u) * s->s_psize +
		       INDEX_CHARGE;
	return d + INDEX_CHARGE;
}

/* ---------------------------------------------------------------------- */
/* Opening                                                                 */

static int dir_make(const char *dir)
{
	char buf[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, dir, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static void path_in(char *buf, size_t n, const char *dir, const char *name)
{
	snprintf(buf, n, "%s/%s", dir, name);
}

/* Rename data.mdb aside with a timestamp; keep only the newest such file
 * so a cache that keeps breaking cannot fill the disk. */
static void store_move_aside(struct store *s, const char *why)
{
	char from[4200], to[4300], stamp[32], p[4400];
	time_t now = time(NULL);
	struct dirent *de;
	struct tm tm;
	DIR *d;

	if ((d = opendir(s->s_dir))) {
		while ((de = readdir(d)))
			if (!strncmp(de->d_name, "data.mdb.bad-", 13)) {
				snprintf(p, sizeof(p), "%s/%s", s->s_dir, de->d_name);
				unlink(p);
			}
		closedir(d);
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	path_in(from, sizeof(from), s->s_dir, "data.mdb");
	snprintf(to, sizeof(to), "%s/data.mdb.bad-%s", s->s_dir, stamp);
	if (rename(from, to) < 0)
		unlink(from);
	path_in(from, sizeof(from), s->s_dir, "lock.mdb");
	unlink(from);
	path_in(from, sizeof(from), s->s_dir, "CORRUPT");
	unlink(from);
	cache_logf(s->s_log, LOG_WARNING,
	           "cache %s: %s; moved aside to %s, rebuilding empty",
	           s->s_dir, why, to);
}

void store_mark_corrupt(struct store *s)
{
	char marker[4200];
	int fd;

	path_in(marker, sizeof(marker), s->s_dir, "CORRUPT");
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

static int store_read_u32(MDB_txn *t, MDB_dbi d, const char *k, uint32_t *v)
{
	MDB_val key = { strlen(k), (void *)k }, val;
	int rc = mdb_get(t, d, &key, &val);

	if (rc)
		return rc;
	if (val.mv_size != 4)
		return MDB_CORRUPTED;
	memcpy(v, val.mv_data, 4);
	return 0;
}

static int store_put_u32(MDB_txn *t, MDB_dbi d, const char *k, uint32_t v)
{
	MDB_val key = { strlen(k), (void *)k }, val = { 4, &v };

	return mdb_put(t, d, &key, &val, 0);
}

int store_get_totals(struct store *s, MDB_txn *t, struct totals *out)
{
	MDB_val key = { 6, (void *)"totals" }, val;
	int rc = mdb_get(t, s->s_meta, &key, &val);

	if (rc == MDB_NOTFOUND) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (rc)
		return rc;
	if (val.mv_size != sizeof(*out))
		return MDB_CORRUPTED;
	memcpy(out, val.mv_data, sizeof(*out));
	return 0;
}

int store_put_totals(struct store *s, MDB_txn *t)
{
	MDB_val key = { 6, (void *)"totals" };
	MDB_val val = { sizeof(s->s_tot), &s->s_tot };

	return mdb_put(t, s->s_meta, &key, &val, 0);
}

/* Open the DBIs, create or check the meta keys.  Returns an MDB code;
 * MDB_INCOMPATIBLE for a cache of another format or block size. */
static int store_schema(struct store *s, bool rdonly)
{
	MDB_txn *t;
	unsigned f = rdonly ? 0 : MDB_CREATE;
	uint32_t fmt = 0, bs = 0;
	int rc;

	rc = mdb_txn_begin(s->s_env, NULL, rdonly ? MDB_RDONLY : 0, &t);
	if (rc)
		return rc;
	if ((rc = mdb_dbi_open(t, "meta", f, &s->s_meta)) ||
	    (rc = mdb_dbi_open(t, "files", f, &s->s_files)) ||
	    (rc = mdb_dbi_open(t, "handles", f, &s->s_handles)) ||
	    (rc = mdb_dbi_open(t, "blocks", f, &s->s_blocks)) ||
	    (rc = mdb_dbi_open(t, "atime", f, &s->s_atime)) ||
	    (rc = mdb_dbi_open(t, "lru", f, &s->s_lru)))
		goto fail;
	/* chunks came with dedup: a read-only look at an older cache has none */
	rc = mdb_dbi_open(t, "chunks", f, &s->s_chunks);
	if (rc == 0)
		rc = mdb_dbi_open(t, "crefs", f, &s->s_crefs);
	if (rc && !(rdonly && rc == MDB_NOTFOUND))
		goto fail;
	s->s_have_chunks = rc == 0;
	rc = store_read_u32(t, s->s_meta, "format", &fmt);
	if (rc == MDB_NOTFOUND && !rdonly) {
		MDB_stat ms;
		if ((rc = mdb_stat(t, s->s_blocks, &ms)))
			goto fail;
		if (ms.ms_entries) {
			rc = MDB_INCOMPATIBLE;
			goto fail;
		}
		memset(&s->s_tot, 0, sizeof(s->s_tot));
		if ((rc = store_put_u32(t, s->s_meta, "format", CACHE_FORMAT)) ||
		    (rc = store_put_u32(t, s->s_meta, "block", s->s_bs)) ||
		    (rc = store_put_totals(s, t)))
			goto fail;
		return mdb_txn_commit(t);
	}
	if (rc)
		goto fail;
	if ((rc = store_read_u32(t, s->s_meta, "block", &bs)))
		goto fail;
	if (fmt != CACHE_FORMAT || (s->s_bs && bs != s->s_bs)) {
		rc = MDB_INCOMPATIBLE;
		goto fail;
	}
	s->s_bs = bs;
	if ((rc = store_get_totals(s, t, &s->s_tot)))
		goto fail;
	return mdb_txn_commit(t);
fail:
	mdb_txn_abort(t);
	return rc;
}

/* A truncated data.mdb would SIGBUS us on first touch: check that the
 * file holds every page the last meta page claims. */
static int store_check_size(struct store *s)
{
	MDB_envinfo ei;
	MDB_stat st;
	struct stat sb;
	char p[4200];

	if (mdb_env_info(s->s_env, &ei) || mdb_env_stat(s->s_env, &st))
		return MDB_INVALID;
	s->s_psize = st.ms_psize;
	path_in(p, sizeof(p), s->s_dir, "data.mdb");
	if (stat(p, &sb) < 0)
		return MDB_INVALID;
	if ((uint64_t)sb.st_size < ((uint64_t)ei.me_last_pgno + 1) * st.ms_psize)
		return MDB_CORRUPTED;
	return 0;
}

/* LMDB counts pages that a transaction allocated and freed again without
 * ever writing them (a group that evicts blocks it filled itself, as a
 * cache smaller than a group does) in the meta page's last page number,
 * so data.mdb can end before it.  Extend the file (sparse) after each
 * commit, so that store_check_size at the next open still means "cut
 * short" rather than throwing away a sound cache. */
void store_cover_pages(struct store *s)
{
	MDB_envinfo ei;
	mdb_filehandle_t fd;
	struct stat sb;
	off_t want;

	if (mdb_env_info(s->s_env, &ei) || mdb_env_get_fd(s->s_env, &fd) ||
	    fstat(fd, &sb) < 0)
		return;
	want = (off_t)(ei.me_last_pgno + 1) * s->s_psize;
	if (sb.st_size < want && ftruncate(fd, want) < 0)
		cache_logf(s->s_log, LOG_WARNING,
		           "cache %s: cannot extend data.mdb to %lld bytes: %s",
		           s->s_dir, (long long)want, strerror(errno));
}

static int store_try_open(struct store *s, uint64_t mapsize, unsigned flags,
                          bool rdonly)
{
	unsigned ef = MDB_NOTLS | MDB_NOMETASYNC;
	int rc, dead = 0;

	if (flags & CACHE_OPEN_NOSYNC)
		ef |= MDB_NOSYNC;
	if (rdonly)
		ef = MDB_NOTLS | MDB_RDONLY;
	if ((rc = mdb_env_create(&s->s_env)))
		return rc;
	mdb_env_set_maxdbs(s->s_env, 12); /* 8 used; room for dirty, dirtyq */
	mdb_env_set_maxreaders(s->s_env, 512);
	if (mapsize)
		mdb_env_set_mapsize(s->s_env, mapsize);
	if ((rc = mdb_env_open(s->s_env, s->s_dir, ef, 0600)))
		goto fail;
	if ((rc = store_check_size(s)))
		goto fail;
	mdb_reader_check(s->s_env, &dead);
	if (dead)
		cache_logf(s->s_log, LOG_INFO,
		           "cache %s: cleared %d stale reader slots", s->s_dir,
		           dead);
	if ((rc = store_schema(s, rdonly)))
		goto fail;
	return 0;
fail:
	mdb_env_close(s->s_env);
	s->s_env = NULL;
	return rc;
}

static bool store_has_data(const char *dir)
{
	char p[4200];
	struct stat sb;

	path_in(p, sizeof(p), dir, "data.mdb");
	return stat(p, &sb) == 0 && sb.st_size > 0;
}

/*
 * Open the store in dir.  lock: take the dir's exclusive flock (a running
 * proxy, or an offline evict/verify) — -EBUSY if someone holds it.
 * rdonly: no creation, no repair (stat beside a running proxy).
 */
int store_open(struct store *s, const char *dir, uint32_t bs,
               uint64_t max_bytes, unsigned flags, bool rdonly, bool lock)
{
	char p[4200];
	uint64_t mapsize = max_bytes ? 2 * max_bytes + (64ull << 20) : 0;
	struct stat sb;
	int rc;

	/* the CLI passes no cap: room for what exists, plus some */
	path_in(p, sizeof(p), dir, "data.mdb");
	if (!max_bytes && stat(p, &sb) == 0)
		mapsize = (uint64_t)sb.st_size + (64ull << 20);

	s->s_lockfd = -1;
	s->s_bs = bs;
	if (!(s->s_dir = strdup(dir)))
		return -ENOMEM;
	if (!rdonly && (rc = dir_make(dir)))
		goto fail;
	if (lock) {
		path_in(p, sizeof(p), dir, "gridvfs.lock");
		s->s_lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (s->s_lockfd < 0) {
			rc = -errno;
			goto fail;
		}
		if (flock(s->s_lockfd, LOCK_EX | LOCK_NB) < 0) {
			rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
			goto fail;
		}
	}
	if (rdonly) {
		if (!store_has_data(dir)) {
			rc = -ENOENT;
			goto fail;
		}
		rc = store_try_open(s, 0, flags, true);
		if (rc) {
			cache_logf(s->s_log, LOG_ERR, "cache %s: %s", dir,
			           mdb_strerror(rc));
			rc = store_mdb_err(rc);
			goto fail;
		}
		return 0;
	}
	path_in(p, sizeof(p), dir, "CORRUPT");
	if (access(p, F_OK) == 0)
		store_move_aside(s, "marked corrupt by an earlier run");
	rc = store_try_open(s, mapsize, flags, false);
	if (rc && rc != ENOMEM && rc != EACCES && rc != ENOSPC &&
	    store_has_data(dir)) {
		store_move_aside(s, rc == MDB_INCOMPATIBLE
		                        ? "incompatible format or block size"
		                        : mdb_strerror(rc));
		rc = store_try_open(s, mapsize, flags, false);
	}
	if (rc) {
		cache_logf(s->s_log, LOG_ERR, "cache %s: cannot open: %s", dir,
		           mdb_strerror(rc));
		rc = store_mdb_err(rc);
		goto fail;
	}
	return 0;
fail:
	if (s->s_lockfd >= 0)
		close(s->s_lockfd);
	s->s_lockfd = -1;
	free(s->s_dir);
	s->s_dir = NULL;
	return rc;
}

void store_close(struct store *s)
{
	if (s->s_env)
		mdb_env_close(s->s_env);
	s->s_env = NULL;
	if (s->s_lockfd >= 0)
		close(s->s_lockfd);
	s->s_lockfd = -1;
	free(s->s_dir);
	s->s_dir = NULL;
}

/* ---------------------------------------------------------------------- */
/* Write-side operations (inside the caller's write transaction)           */

/* Update a file's record after blocks were removed; drop it (and its
 * handle) with its last block. */
static int store_file_sub(struct store *s, MDB_txn *t,
                          const struct cache_ident *id, uint64_t nblk,
                          uint64_t bytes, uint64_t data)
{
	uint8_t k[CACHE_IDENT_KEY];
	MDB_val key = { sizeof(k), k }, val;
	struct filerec fr;
	int rc;

	key_ident(k, id);
	rc = mdb_get(t, s->s_files, &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (val.mv_size != sizeof(fr))
		return MDB_CORRUPTED;
	memcpy(&fr, val.mv_data, sizeof(fr));
	fr.fr_nblocks -= nblk < fr.fr_nblocks ? nblk : fr.fr_nblocks;
	fr.fr_bytes -= bytes < fr.fr_bytes ? bytes : fr.fr_bytes;
	fr.fr_data -= data < fr.fr_data ? data : fr.fr_data;
	if (fr.fr_nblocks == 0) {
		if (fr.fr_fhlen && fr.fr_fhlen <= CACHE_FH_MAX) {
			MDB_val hk = { fr.fr_fhlen, fr.fr_fh };
			rc = mdb_del(t, s->s_handles, &hk, NULL);
			if (rc && rc != MDB_NOTFOUND)
				return rc;
		}
		if (s->s_tot.t_files)
			s->s_tot.t_files--;
		return mdb_del(t, s->s_files, &key, NULL);
	}
	val.mv_size = sizeof(fr);
	val.mv_data = &fr;
	return mdb_put(t, s->s_files, &key, &val, 0);
}

uint64_t store_entry_charge(const struct store *s, const struct blkhdr *h)
{
	if (h->bh_len & BLK_REF)
		return sizeof(*h) + CACHE_HASH_SIZE + INDEX_CHARGE;
	return store_charge(s, h->bh_len);
}

/* ---------------------------------------------------------------------- */
/* Dedup chunks: key = content digest, value = {refs, len, crc} + data.    */
/* A chunk's footprint is charged when it is created and freed with its    */
/* last reference; the blocks pointing at it are charged for themselves.   */

static int chunk_refs_get(struct store *s, MDB_txn *t, MDB_val *k,
                          uint32_t *refs)
{
	MDB_val v;
	int rc = mdb_get(t, s->s_crefs, k, &v);

	if (rc)
		return rc;
	if (v.mv_size != sizeof(*refs))
		return MDB_CORRUPTED;
	memcpy(refs, v.mv_data, sizeof(*refs));
	return 0;
}

static int chunk_refs_put(struct store *s, MDB_txn *t, MDB_val *k,
                          uint32_t refs)
{
	MDB_val v = { sizeof(refs), &refs };

	return mdb_put(t, s->s_crefs, k, &v, 0);
}

/* Drop chunk k (value v) and its count; uncharge it. */
static int chunk_drop(struct store *s, MDB_txn *t, MDB_val *k,
                      const MDB_val *v)
{
	struct chunkhdr ch;
	uint64_t c;
	int rc;

	memcpy(&ch, v->mv_data, sizeof(ch));
	if ((rc = mdb_del(t, s->s_chunks, k, NULL)))
		return rc;
	rc = mdb_del(t, s->s_crefs, k, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	c = store_charge(s, ch.ch_len);
	s->s_tot.t_bytes -= c < s->s_tot.t_bytes ? c : s->s_tot.t_bytes;
	s->s_tot.t_data -= ch.ch_len < s->s_tot.t_data ? ch.ch_len
	                                               : s->s_tot.t_data;
	return 0;
}

/* The count lives in its own DBI (crefs): taking a reference rewrites
 * 4 bytes, not the chunk's 64 KiB of overflow pages. */
int store_chunk_ref(struct store *s, MDB_txn *t, const uint8_t *key,
                    const uint8_t *data, uint32_t len, bool *created)
{
	MDB_val k = { CACHE_HASH_SIZE, (void *)key }, v;
	struct chunkhdr ch;
	uint32_t refs = 0;
	int rc;

	*created = false;
	if (!s->s_have_chunks)
		return EINVAL;
	rc = mdb_get(t, s->s_chunks, &k, &v);
	if (rc == 0) {
		if (v.mv_size < sizeof(ch))
			return MDB_CORRUPTED;
		memcpy(&ch, v.mv_data, sizeof(ch));
		if (ch.ch_len == len && v.mv_size == sizeof(ch) + len &&
		    (rc = chunk_refs_get(s, t, &k, &refs)) == 0)
			return chunk_refs_put(s, t, &k, refs + 1);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		/* another length under the same key (or a lost count): replace
		 * it; blocks that pointed at the old one then read as misses */
		if ((rc = chunk_drop(s, t, &k, &v)))
			return rc;
	} else if (rc != MDB_NOTFOUND)
		return rc;
	ch.ch_len = len;
	ch.ch_crc = cache_crc32c(0, data, len);
	ch.ch_pad[0] = ch.ch_pad[1] = 0;
	v.mv_size = sizeof(ch) + len;
	if ((rc = mdb_put(t, s->s_chunks, &k, &v, MDB_RESERVE)))
		return rc;
	memcpy(v.mv_data, &ch, sizeof(ch));
	memcpy((uint8_t *)v.mv_data + sizeof(ch), data, len);
	if ((rc = chunk_refs_put(s, t, &k, 1)))
		return rc;
	s->s_tot.t_bytes += store_charge(s, len);
	s->s_tot.t_data += len;
	*created = true;
	return 0;
}

int store_chunk_unref(struct store *s, MDB_txn *t, const uint8_t *key)
{
	MDB_val k = { CACHE_HASH_SIZE, (void *)key }, v;
	uint32_t refs = 0;
	int rc;

	if (!s->s_have_chunks)
		return 0;
	rc = mdb_get(t, s->s_chunks, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0; /* replaced after a collision: nothing to drop */
	if (rc)
		return rc;
	if (v.mv_size < sizeof(struct chunkhdr))
		return MDB_CORRUPTED;
	rc = chunk_refs_get(s, t, &k, &refs);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (refs > 1)
		return chunk_refs_put(s, t, &k, refs - 1);
	return chunk_drop(s, t, &k, &v);
}

/* Remove one block (key k) and its access-order entries; *len gets its
 * data length.  A reference drops its chunk's count.  The file record is
 * the caller's. */
int store_del_block(struct store *s, MDB_txn *t, const uint8_t *k,
                           uint32_t *len, uint64_t *charge)
{
	MDB_val key = { CACHE_BLK_KEY, (void *)k }, val;
	uint8_t lk[CACHE_LRU_KEY];
	MDB_val lkey = { sizeof(lk), lk };
	struct blkhdr h;
	int rc;

	rc = mdb_get(t, s->s_blocks, &key, &val);
	if (rc)
		return rc;
	if (val.mv_size < sizeof(h))
		return MDB_CORRUPTED;
	memcpy(&h, val.mv_data, sizeof(h));
	*len = BLK_LEN(&h);
	if (charge)
		*charge = store_entry_charge(s, &h);
	if (h.bh_len & BLK_REF) {
		uint8_t hash[CACHE_HASH_SIZE];

		if (val.mv_size != sizeof(h) + CACHE_HASH_SIZE)
			return MDB_CORRUPTED;
		memcpy(hash, (uint8_t *)val.mv_data + sizeof(h), sizeof(hash));
		if ((rc = store_chunk_unref(s, t, hash)))
			return rc;
	}
	if ((rc = mdb_del(t, s->s_blocks, &key, NULL)))
		return rc;
	rc = mdb_get(t, s->s_atime, &key, &val);
	if (rc == 0 && val.mv_size == 8) {
		memcpy(lk, val.mv_data, 8);
		memcpy(lk + 8, k, CACHE_BLK_KEY);
		rc = mdb_del(t, s->s_lru, &lkey, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		rc = mdb_del(t, s->s_atime, &key, NULL);
	}
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	s->s_tot.t_blocks -= s->s_tot.t_blocks ? 1 : 0;
	{
		uint64_t ch = store_entry_charge(s, &h);
		uint32_t d = h.bh_len & BLK_REF ? 0 : h.bh_len;

		s->s_tot.t_bytes -= ch < s->s_tot.t_bytes ? ch : s->s_tot.t_bytes;
		s->s_tot.t_data -= d < s->s_tot.t_data ? d : s->s_tot.t_data;
	}
	return 0;
}

/*
 * Delete the blocks of file id whose version is not *keep (every block
 * when keep is NULL).  Keys are collected in batches and deleted after
 * the cursor is done with them, so no cursor walks a page being changed.
 */
int store_del_file_blocks(struct store *s, MDB_txn *t,
                          const struct cache_ident *id,
                          const struct cver *keep, struct wstat *ws)
{
	enum { BATCH = 256 };
	uint8_t keys[BATCH][CACHE_BLK_KEY], start[CACHE_BLK_KEY];
	uint64_t nblk = 0, bytes = 0, data = 0;
	bool more = true;
	int rc = 0;

	key_blk(start, id, 0);
	while (more && rc == 0) {
		MDB_cursor *cur;
		MDB_val key = { sizeof(start), start }, val;
		unsigned n = 0;
		int op = MDB_SET_RANGE;

		if ((rc = mdb_cursor_open(t, s->s_blocks, &cur)))
			break;
		more = false;
		while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
			struct blkhdr h;
			op = MDB_NEXT;
			if (key.mv_size != CACHE_BLK_KEY ||
			    memcmp(key.mv_data, start, CACHE_IDENT_KEY))
				break;
			if (val.mv_size >= sizeof(h)) {
				memcpy(&h, val.mv_data, sizeof(h));
				if (keep && cver_eq(&h.bh_ver, keep) &&
				    val.mv_size == sizeof(h) + h.bh_len)
					continue;
			}
			memcpy(keys[n++], key.mv_data, CACHE_BLK_KEY);
			if (n == BATCH) {
				more = true;
				break;
			}
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND || rc == 0)
			rc = 0;
		for (unsigned i = 0; i < n && rc == 0; i++) {
			uint32_t len;
			uint64_t ch = 0;
			rc = store_del_block(s, t, keys[i], &len, &ch);
			nblk++;
			bytes += ch;
			data += len;
		}
		/* continue after the last deleted key (kept ones stay) */
		if (more)
			put_be64(start + 16, get_be64(keys[n - 1] + 16) + 1);
	}
	if (rc == 0 && nblk)
		rc = store_file_sub(s, t, id, nblk, bytes, data);
	if (ws)
		ws->w_stale += nblk;
	return rc;
}

/* Evict blocks in access order (oldest seq first) until the footprint is
 * at most target. */
int store_evict(struct store *s, MDB_txn *t, uint64_t target,
                struct wstat *ws)
{
	enum { BATCH = 256 };
	uint8_t keys[BATCH][CACHE_LRU_KEY];
	int rc = 0;

	while (rc == 0 && s->s_tot.t_bytes > target) {
		MDB_cursor *cur;
		MDB_val key, val;
		uint64_t want = s->s_tot.t_bytes - target, got = 0;
		unsigned n = 0;
		int op = MDB_FIRST;

		if ((rc = mdb_cursor_open(t, s->s_lru, &cur)))
			break;
		while (n < BATCH && got < want &&
		       (rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
			MDB_val bk = { CACHE_BLK_KEY, NULL }, bv;
			op = MDB_NEXT;
			if (key.mv_size != CACHE_LRU_KEY) {
				rc = MDB_CORRUPTED;
				break;
			}
			memcpy(keys[n], key.mv_data, CACHE_LRU_KEY);
			bk.mv_data = keys[n] + 8;
			if (mdb_get(t, s->s_blocks, &bk, &bv) == 0 &&
			    bv.mv_size >= sizeof(struct blkhdr)) {
				struct blkhdr h; /* small values are unaligned */
				memcpy(&h, bv.mv_data, sizeof(h));
				got += store_entry_charge(s, &h);
			}
			n++;
		}
		mdb_cursor_close(cur);
		if (rc == MDB_NOTFOUND)
			rc = 0;
		if (n == 0)
			break; /* totals claim more than the lru holds */
		for (unsigned i = 0; i < n && rc == 0; i++) {
			struct cache_ident id;
			uint64_t blk;
			uint32_t len = 0;
			uint64_t ch = 0;

			key_unblk(keys[i] + 8, &id, &blk);
			rc = store_del_block(s, t, keys[i] + 8, &len, &ch);
			if (rc == MDB_NOTFOUND) {
				/* an lru entry without its block: drop it */
				MDB_val lk = { CACHE_LRU_KEY, keys[i] };
				MDB_val ak = { CACHE_BLK_KEY, keys[i] + 8 };
				rc = mdb_del(t, s->s_lru, &lk, NULL);
				if (rc == 0 || rc == MDB_NOTFOUND)
					rc = mdb_del(t, s->s_atime, &ak, NULL);
				if (rc == MDB_NOTFOUND)
					rc = 0;
				continue;
			}
			if (rc == 0)
				rc = store_file_sub(s, t, &id, 1, ch, len);
			if (ws && rc == 0)
				ws->w_evicted++;
		}
	}
	return rc;
}

int store_drop_all(struct store *s, MDB_txn *t)
{
	int rc;

	if ((rc = mdb_drop(t, s->s_files, 0)) ||
	    (rc = mdb_drop(t, s->s_handles, 0)) ||
	    (rc = mdb_drop(t, s->s_blocks, 0)) ||
	    (rc = mdb_drop(t, s->s_atime, 0)) || (rc = mdb_drop(t, s->s_lru, 0)) ||
	    (s->s_have_chunks && ((rc = mdb_drop(t, s->s_chunks, 0)) ||
	                          (rc = mdb_drop(t, s->s_crefs, 0)))))
		return rc;
	memset(&s->s_tot, 0, sizeof(s->s_tot) - sizeof(s->s_tot.t_seq));
	return store_put_totals(s, t);
}
