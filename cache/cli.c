/*
 * cache/cli.c — `gridvfs cache stat|verify|evict DIR`: offline
 * administration of a cache directory.  stat only reads (safe beside a
 * running proxy); verify and evict take the directory's lock, so they
 * refuse to run while a proxy uses it.
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void cli_log(int prio, const char *msg)
{
	(void)prio;
	fprintf(stderr, "gridvfs cache: %s\n", msg);
}

static void cli_usage(FILE *f)
{
	fprintf(f,
	        "usage: gridvfs cache stat DIR\n"
	        "       gridvfs cache verify DIR\n"
	        "       gridvfs cache evict DIR --all | --bytes N[K|M|G]\n"
	        "\n"
	        "Offline administration of a gridvfsd block cache directory\n"
	        "(--cache-dir).  stat prints sizes and counts (safe while a\n"
	        "proxy runs); verify walks every block and checks lengths,\n"
	        "checksums, versions and the indexes; evict removes blocks in\n"
	        "LRU order down to N bytes, or all of them.  verify and evict\n"
	        "refuse a directory a running proxy holds.\n"
	        "Exit status: 0 ok, 1 error or verify found problems, 2 usage.\n");
}

static int cli_open(struct store *s, const char *dir, bool rdonly, bool lock)
{
	struct stat sb;
	char p[4200];
	int rc;

	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	if (stat(p, &sb) < 0) {
		fprintf(stderr, "gridvfs cache: %s: no cache here\n", dir);
		return -ENOENT;
	}
	memset(s, 0, sizeof(*s));
	s->s_log = cli_log;
	rc = store_open(s, dir, 0, 0, 0, rdonly, lock);
	if (rc == -EBUSY)
		fprintf(stderr, "gridvfs cache: %s is in use by a running proxy\n",
		        dir);
	else if (rc)
		fprintf(stderr, "gridvfs cache: %s: %s\n", dir, strerror(-rc));
	return rc;
}

static uint64_t dbi_pages(MDB_txn *t, MDB_dbi d, uint64_t *entries)
{
	MDB_stat ms;

	if (mdb_stat(t, d, &ms))
		return 0;
	if (entries)
		*entries = ms.ms_entries;
	return ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
}

static int cli_stat(const char *dir)
{
	struct store s;
	MDB_txn *t;
	MDB_envinfo ei;
	uint64_t pages = 0, nfiles = 0, nhandles = 0, nchunks = 0;
	struct stat sb;
	char p[4200];

	if (cli_open(&s, dir, true, false))
		return 1;
	if (mdb_txn_begin(s.s_env, NULL, MDB_RDONLY, &t)) {
		store_close(&s);
		return 1;
	}
	store_get_totals(&s, t, &s.s_tot);
	pages += dbi_pages(t, s.s_files, &nfiles);
	pages += dbi_pages(t, s.s_handles, &nhandles);
	pages += dbi_pages(t, s.s_blocks, NULL) + dbi_pages(t, s.s_atime, NULL) +
	         dbi_pages(t, s.s_lru, NULL) + dbi_pages(t, s.s_meta, NULL);
	if (s.s_have_chunks)
		pages += dbi_pages(t, s.s_chunks, &nchunks) +
		         dbi_pages(t, s.s_crefs, NULL);
	mdb_txn_abort(t);
	mdb_env_info(s.s_env, &ei);
	snprintf(p, sizeof(p), "%s/data.mdb", dir);
	if (stat(p, &sb) < 0)
		sb.st_size = 0;
	printf("dir:          %s\n", dir);
	printf("format:       %u\n", CACHE_FORMAT);
	printf("block_size:   %u\n", s.s_bs);
	printf("bytes:        %llu\n", (unsigned long long)s.s_tot.t_bytes);
	printf("data_bytes:   %llu\n", (unsigned long long)s.s_tot.t_data);
	printf("blocks:       %llu\n", (unsigned long long)s.s_tot.t_blocks);
	printf("files:        %llu\n", (unsigned long long)s.s_tot.t_files);
	printf("handles:      %llu\n", (unsigned long long)nhandles);
	printf("chunks:       %llu\n", (unsigned long long)nchunks);
	printf("pages_used:   %llu (%llu bytes)\n", (unsigned long long)pages,
	       (unsigned long long)(pages * s.s_psize));
	printf("file_size:    %llu\n", (unsigned long long)sb.st_size);
	printf("map_size:     %llu\n", (unsigned long long)ei.me_mapsize);
	store_close(&s);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* verify                                                                  */

struct vstate {
	struct store *v_s;
	MDB_txn *v_t;
	unsigned long long v_errors, v_warnings;
	struct totals v_tot;
	/* the file whose blocks are being walked */
	struct cache_ident v_id;
	bool v_have, v_rec_ok;
	struct filerec v_rec;
	uint64_t v_nblk, v_bytes, v_data;
	uint64_t v_nrefs, v_crefs; /* dedup: reference blocks, counted refs */
};

static void verr(struct vstate *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void verr(struct vstate *v, const char *fmt, ...)
{
	va_list ap;

	if (++v->v_errors <= 50) {
		va_start(ap, fmt);
		fputs("error: ", stdout);
		vprintf(fmt, ap);
		putchar('\n');
		va_end(ap);
	}
}

/* The file's blocks are all seen: its record must count them. */
static void vfile_end(struct vstate *v)
{
	if (!v->v_have || !v->v_rec_ok)
		return;
	if (v->v_rec.fr_nblocks != v->v_nblk || v->v_rec.fr_bytes != v->v_bytes ||
	    v->v_rec.fr_data != v->v_data)
		verr(v, "file %llx:%llx: record counts %llu blocks %llu bytes, "
		        "found %llu blocks %llu bytes",
		     (unsigned long long)v->v_id.ci_fsid,
		     (unsigned long long)v->v_id.ci_fileid,
		     (unsigned long long)v->v_rec.fr_nblocks,
		     (unsigned long long)v->v_rec.fr_data,
		     (unsigned long long)v->v_nblk, (unsigned long long)v->v_data);
}

static void vfile_begin(struct vstate *v, const struct cache_ident *id)
{
	uint8_t k[CACHE_IDENT_KEY];
	MDB_val key = { sizeof(k), k }, val;

	vfile_end(v);
	v->v_id = *id;
	v->v_have = true;
	v->v_nblk = v->v_bytes = v->v_data = 0;
	key_ident(k, id);
	v->v_rec_ok = mdb_get(v->v_t, v->v_s->s_files, &key, &val) == 0 &&
	              val.mv_size == sizeof(v->v_rec);
	if (v->v_rec_ok)
		memcpy(&v->v_rec, val.mv_data, sizeof(v->v_rec));
	else
		verr(v, "file %llx:%llx has blocks but no record",
		     (unsigned long long)id->ci_fsid,
		     (unsigned long long)id->ci_fileid);
	v->v_tot.t_files++;
}

/* A block stored by content: its chunk must exist with its length. */
static void vref(struct vstate *v, const struct blkhdr *h, const MDB_val *val,
                 uint64_t blk, const struct cache_ident *id)
{
	struct store *s = v->v_s;
	MDB_val ck, cv;
	struct chunkhdr ch;

	v->v_nrefs++;
	if (val->mv_size != sizeof(*h) + CACHE_HASH_SIZE || !s->s_have_chunks ||
	    BLK_LEN(h) != cache_blk_len(blk, s->s_bs, h->bh_ver.v_size)) {
		verr(v, "block %llu of %llx: bad reference",
		     (unsigned long long)blk, (unsigned long long)id->ci_fileid);
		return;
	}
	ck.mv_size = CACHE_HASH_SIZE;
	ck.mv_data = (uint8_t *)val->mv_data + sizeof(*h);
	if (mdb_get(v->v_t, s->s_chunks, &ck, &cv) || cv.mv_size < sizeof(ch)) {
		verr(v, "block %llu of %llx: its chunk is missing",
		     (unsigned long long)blk, (unsigned long long)id->ci_fileid);
		return;
	}
	memcpy(&ch, cv.mv_data, sizeof(ch));
	if (ch.ch_len != BLK_LEN(h))
		verr(v, "block %llu of %llx: chunk length %u, block %u",
		     (unsigned long long)blk, (unsigned long long)id->ci_fileid,
		     ch.ch_len, BLK_LEN(h));
}

static void vblock(struct vstate *v, const MDB_val *key, const MDB_val *val)
{
	struct store *s = v->v_s;
	struct cache_ident id;
	struct blkhdr h;
	uint64_t blk;
	uint8_t lk[CACHE_LRU_KEY];
	MDB_val ak = *key, av, lkey = { sizeof(lk), lk }, lv;

	if (key->mv_size != CACHE_BLK_KEY || val->mv_size < sizeof(h)) {
		verr(v, "block entry with a bad key or value size");
		return;
	}
	key_unblk(key->mv_data, &id, &blk);
	if (!v->v_have || id.ci_fsid != v->v_id.ci_fsid ||
	    id.ci_fileid != v->v_id.ci_fileid)
		vfile_begin(v, &id);
	memcpy(&h, val->mv_data, sizeof(h));
	if (h.bh_len & BLK_REF)
		vref(v, &h, val, blk, &id);
	else if (val->mv_size != sizeof(h) + h.bh_len || h.bh_len == 0 ||
	    h.bh_len != cache_blk_len(blk, s->s_bs, h.bh_ver.v_size))
		verr(v, "block %llu of %llx: length %u wrong for size %llu",
		     (unsigned long long)blk, (unsigned long long)id.ci_fileid,
		     h.bh_len, (unsigned long long)h.bh_ver.v_size);
	else if (cache_crc32c(0, (uint8_t *)val->mv_data + sizeof(h),
	                      h.bh_len) != h.bh_crc)
		verr(v, "block %llu of %llx: checksum mismatch",
		     (unsigned long long)blk, (unsigned long long)id.ci_fileid);
	if (v->v_rec_ok && !cver_eq(&v->v_rec.fr_ver, &h.bh_ver))
		verr(v, "block %llu of %llx: version differs from the file's",
		     (unsigned long long)blk, (unsigned long long)id.ci_fileid);
	if (mdb_get(v->v_t, s->s_atime, &ak, &av) || av.mv_size != 8) {
		verr(v, "block %llu of %llx: no access time",
		     (unsigned long long)blk, (unsigned long long)id.ci_fileid);
	} else {
		memcpy(lk, av.mv_data, 8);
		memcpy(lk + 8, key->mv_data, CACHE_BLK_KEY);
		if (mdb_get(v->v_t, s->s_lru, &lkey, &lv))
			verr(v, "block %llu of %llx: not in the LRU order",
			     (unsigned long long)blk,
			     (unsigned long long)id.ci_fileid);
	}
	v->v_nblk++;
	v->v_bytes += store_entry_charge(s, &h);
	v->v_data += BLK_LEN(&h);
	v->v_tot.t_blocks++;
	v->v_tot.t_bytes += store_entry_charge(s, &h);
	v->v_tot.t_data += h.bh_len & BLK_REF ? 0 : h.bh_len;
}

/* Dedup chunks: each counted once in the totals; CRC checked. */
static void vchunk(struct vstate *v, const MDB_val *key, const MDB_val *val)
{
	struct chunkhdr ch;

	if (key->mv_size != CACHE_HASH_SIZE || val->mv_size < sizeof(ch)) {
		verr(v, "chunk entry with a bad key or value size");
		return;
	}
	memcpy(&ch, val->mv_data, sizeof(ch));
	if (val->mv_size != sizeof(ch) + ch.ch_len)
		verr(v, "chunk of %u bytes in a value of %zu", ch.ch_len,
		     val->mv_size);
	else if (cache_crc32c(0, (uint8_t *)val->mv_data + sizeof(ch),
	                      ch.ch_len) != ch.ch_crc)
		verr(v, "chunk: checksum mismatch");
	v->v_tot.t_bytes += store_charge(v->v_s, ch.ch_len);
	v->v_tot.t_data += ch.ch_len;
}

static void vcref(struct vstate *v, const MDB_val *key, const MDB_val *val)
{
	uint32_t n;

	if (key->mv_size != CACHE_HASH_SIZE || val->mv_size != sizeof(n)) {
		verr(v, "chunk count with a bad key or value size");
		return;
	}
	memcpy(&n, val->mv_data, sizeof(n));
	v->v_crefs += n;
}

/* Walk a DBI calling fn on every entry. */
static int vwalk(struct vstate *v, MDB_dbi d,
                 void (*fn)(struct vstate *, const MDB_val *, const MDB_val *),
                 uint64_t *n)
{
	MDB_cursor *cur;
	MDB_val key, val;
	int rc, op = MDB_FIRST;

	*n = 0;
	if ((rc = mdb_cursor_open(v->v_t, d, &cur)))
		return rc;
	while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		(*n)++;
		if (fn)
			fn(v, &key, &val);
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static void vrecord(struct vstate *v, const MDB_val *key, const MDB_val *val)
{
	struct filerec fr;
	MDB_val hk, hv;

	if (key->mv_size != CACHE_IDENT_KEY || val->mv_size != sizeof(fr)) {
		verr(v, "file record with a bad key or value size");
		return;
	}
	memcpy(&fr, val->mv_data, sizeof(fr));
	if (fr.fr_fhlen == 0 || fr.fr_fhlen > CACHE_FH_MAX) {
		verr(v, "file record without a handle");
		return;
	}
	hk.mv_size = fr.fr_fhlen;
	hk.mv_data = fr.fr_fh;
	if (mdb_get(v->v_t, v->v_s->s_handles, &hk, &hv) ||
	    hv.mv_size != CACHE_IDENT_KEY ||
	    memcmp(hv.mv_data, key->mv_data, CACHE_IDENT_KEY))
		verr(v, "file record's handle does not map back to it");
}

static void vhandle(struct vstate *v, const MDB_val *key, const MDB_val *val)
{
	MDB_val fv;

	if (key->mv_size == 0 || key->mv_size > CACHE_FH_MAX ||
	    val->mv_size != CACHE_IDENT_KEY) {
		verr(v, "handle entry with a bad key or value size");
		return;
	}
	/* a file's older handle outlives its record: harmless, counted */
	if (mdb_get(v->v_t, v->v_s->s_files, (MDB_val *)val, &fv))
		v->v_warnings++;
}

static int cli_verify(const char *dir)
{
	struct store s;
	struct vstate v;
	uint64_t nblocks, nfiles, nhandles, natime, nlru;
	int rc;

	if (cli_open(&s, dir, true, true))
		return 1;
	memset(&v, 0, sizeof(v));
	v.v_s = &s;
	if ((rc = mdb_txn_begin(s.s_env, NULL, MDB_RDONLY, &v.v_t)))
		goto out;
	store_get_totals(&s, v.v_t, &s.s_tot);
	if ((rc = vwalk(&v, s.s_blocks, vblock, &nblocks)))
		goto out;
	vfile_end(&v);
	if ((rc = vwalk(&v, s.s_files, vrecord, &nfiles)) ||
	    (rc = vwalk(&v, s.s_handles, vhandle, &nhandles)) ||
	    (rc = vwalk(&v, s.s_atime, NULL, &natime)) ||
	    (rc = vwalk(&v, s.s_lru, NULL, &nlru)))
		goto out;
	if (s.s_have_chunks) {
		uint64_t nchunks, ncrefs;

		if ((rc = vwalk(&v, s.s_chunks, vchunk, &nchunks)) ||
		    (rc = vwalk(&v, s.s_crefs, vcref, &ncrefs)))
			goto out;
		if (nchunks != ncrefs || v.v_crefs != v.v_nrefs)
			verr(&v, "%llu chunks with %llu counts summing to %llu, "
			         "%llu reference blocks",
			     (unsigned long long)nchunks,
			     (unsigned long long)ncrefs,
			     (unsigned long long)v.v_crefs,
			     (unsigned long long)v.v_nrefs);
	}
	if (nfiles != v.v_tot.t_files)
		verr(&v, "%llu file records, %llu files with blocks",
		     (unsigned long long)nfiles,
		     (unsigned long long)v.v_tot.t_files);
	if (natime != nblocks || nlru != nblocks)
		verr(&v, "%llu blocks but %llu access times, %llu LRU entries",
		     (unsigned long long)nblocks, (unsigned long long)natime,
		     (unsigned long long)nlru);
	if (s.s_tot.t_blocks != v.v_tot.t_blocks ||
	    s.s_tot.t_bytes != v.v_tot.t_bytes ||
	    s.s_tot.t_data != v.v_tot.t_data || s.s_tot.t_files != v.v_tot.t_files)
		verr(&v, "totals say %llu blocks %llu bytes %llu files, found "
		         "%llu blocks %llu bytes %llu files",
		     (unsigned long long)s.s_tot.t_blocks,
		     (unsigned long long)s.s_tot.t_data,
		     (unsigned long long)s.s_tot.t_files,
		     (unsigned long long)v.v_tot.t_blocks,
		     (unsigned long long)v.v_tot.t_data,
		     (unsigned long long)v.v_tot.t_files);
	printf("verified %llu blocks of %llu files, %llu handles "
	       "(%llu without a file): %llu errors\n",
	       (unsigned long long)nblocks, (unsigned long long)nfiles,
	       (unsigned long long)nhandles, v.v_warnings, v.v_errors);
out:
	if (v.v_t)
		mdb_txn_abort(v.v_t);
	store_close(&s);
	if (rc) {
		fprintf(stderr, "gridvfs cache verify: %s\n", mdb_strerror(rc));
		return 1;
	}
	return v.v_errors ? 1 : 0;
}

/* ---------------------------------------------------------------------- */
/* evict                                                                   */

static int parse_bytes(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int cli_evict(const char *dir, bool all, uint64_t target)
{
	struct store s;
	struct wstat ws = { 0, 0, 0, 0 };
	uint64_t before;
	MDB_txn *t;
	int rc;

	if (cli_open(&s, dir, false, true))
		return 1;
	before = s.s_tot.t_bytes;
	if ((rc = mdb_txn_begin(s.s_env, NULL, 0, &t)))
		goto out;
	if (all)
		rc = store_drop_all(&s, t);
	else if ((rc = store_evict(&s, t, target, &ws)) == 0)
		rc = store_put_totals(&s, t);
	if (rc)
		mdb_txn_abort(t);
	else
		rc = mdb_txn_commit(t);
out:
	if (rc == 0)
		printf("evicted: %llu -> %llu bytes\n",
		       (unsigned long long)before,
		       (unsigned long long)s.s_tot.t_bytes);
	else
		fprintf(stderr, "gridvfs cache evict: %s\n", mdb_strerror(rc));
	store_close(&s);
	return rc ? 1 : 0;
}

int cache_cli_main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool all = false, have_bytes = false;
	uint64_t target = 0;
	const char *cmd;
	int o;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		cli_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	optind = 2;
	while ((o = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (o) {
		case 'a':
			all = true;
			break;
		case 'b':
			if (parse_bytes(optarg, &target)) {
				fprintf(stderr, "gridvfs cache: bad --bytes %s\n",
				        optarg);
				return 2;
			}
			have_bytes = true;
			break;
		case 'h':
			cli_usage(stdout);
			return 0;
		default:
			cli_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		cli_usage(stderr);
		return 2;
	}
	if (!strcmp(cmd, "stat") && !all && !have_bytes)
		return cli_stat(argv[optind]);
	if (!strcmp(cmd, "verify") && !all && !have_bytes)
		return cli_verify(argv[optind]);
	if (!strcmp(cmd, "evict") && all != have_bytes)
		return cli_evict(argv[optind], all, target);
	cli_usage(stderr);
	return 2;
}
