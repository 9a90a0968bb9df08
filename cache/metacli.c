/*
 * cache/metacli.c — `gridvfs meta scan|show|record|attach`: build the
 * metadata file of a VM image (parallel sequential reads, holes skipped,
 * SHA-256 per block), summarise one, turn a read trace into a prefetch
 * profile and store it in the metadata file.  Format: cache/meta.c.
 */
#define _GNU_SOURCE
#include "cache/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define SCAN_CHUNK (8u << 20) /* bytes per pread */
#define SCAN_THREADS 2u
#define PROFILE_TAG "# gridvfs-profile block="

static const char meta_usage[] =
"Usage: gridvfs meta scan IMAGE [--block BYTES] [-o FILE] [--quiet]\n"
"       gridvfs meta show FILE [--image IMAGE]\n"
"       gridvfs meta record TRACE [--block BYTES] [-o PROFILE]\n"
"       gridvfs meta attach FILE TRACE|PROFILE\n"
"\n"
"scan    write IMAGE.gvmeta (or FILE): the image's size and mtime, and per\n"
"        block (default 65536 bytes, a power of two) zero or a SHA-256.\n"
"        A profile already in the old metadata file is kept.\n"
"show    print a summary (zero %, unique blocks, profile length) and, when\n"
"        the image is found (FILE without .gvmeta, or --image), whether the\n"
"        metadata still matches it (exit 1 if not).\n"
"record  read a trace of 'OFFSET LENGTH' lines (tests/vm/boot.sh --trace)\n"
"        and write the blocks it touches, first touch first, as a profile.\n"
"attach  store a profile (or a trace) as FILE's prefetch profile.\n";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_block(const char *s, uint32_t *out)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v < 512 || v > (64u << 20) || (v & (v - 1))) {
		fprintf(stderr, "gridvfs meta: bad block size '%s' (a power of "
		                "two, 512 .. 64M)\n", s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* scan                                                                    */

struct scan {
	int sc_fd;
	uint64_t sc_size;
	uint32_t sc_bs;
	uint64_t sc_nchunks;
	uint8_t *sc_hashes;
	atomic_uint_fast64_t sc_next;  /* next chunk to take */
	atomic_uint_fast64_t sc_done;  /* bytes finished */
	atomic_uint_fast64_t sc_read;  /* bytes actually read (not holes) */
	atomic_int sc_err;
};

/* Hash the blocks of one chunk (zero blocks keep an all-zero hash). */
static int scan_chunk(struct scan *sc, uint64_t k, uint8_t *buf, EVP_MD_CTX *ctx)
{
	uint64_t off = k * SCAN_CHUNK, len = sc->sc_size - off;
	off_t data;
	size_t got = 0;

	if (len > SCAN_CHUNK)
		len = SCAN_CHUNK;
	/* a hole (sparse image) needs no reading: it is zeros */
	data = lseek(sc->sc_fd, (off_t)off, SEEK_DATA);
	if ((data < 0 && errno == ENXIO) ||
	    (data >= 0 && (uint64_t)data >= off + len))
		return 0;
	while (got < len) {
		ssize_t n = pread(sc->sc_fd, buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO; /* shrank under us */
		got += (size_t)n;
	}
	atomic_fetch_add(&sc->sc_read, len);
	for (uint64_t b = 0; b * sc->sc_bs < len; b++) {
		uint8_t *p = buf + b * sc->sc_bs;
		uint64_t n = len - b * sc->sc_bs < sc->sc_bs ? len - b * sc->sc_bs
		                                             : sc->sc_bs;
		uint8_t *h = sc->sc_hashes +
		             (off / sc->sc_bs + b) * CACHE_HASH_SIZE;
		unsigned hl = 0;

		if (cache_meta_is_zero(p, n))
			continue;
		if (!EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ||
		    !EVP_DigestUpdate(ctx, p, n) ||
		    !EVP_DigestFinal_ex(ctx, h, &hl))
			return -EIO;
	}
	return 0;
}

/* Each thread takes the next chunk: reads stay nearly sequential (two
 * streams, adjacent), hashing runs on both cores. */
static void *scan_thread(void *arg)
{
	struct scan *sc = arg;
	uint8_t *buf = malloc(SCAN_CHUNK);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t k;

	if (!buf || !ctx) {
		atomic_store(&sc->sc_err, -ENOMEM);
		goto out;
	}
	while (!atomic_load(&sc->sc_err) &&
	       (k = atomic_fetch_add(&sc->sc_next, 1)) < sc->sc_nchunks) {
		int rc = scan_chunk(sc, k, buf, ctx);
		uint64_t len = sc->sc_size - k * SCAN_CHUNK;

		if (rc) {
			atomic_store(&sc->sc_err, rc);
			break;
		}
		atomic_fetch_add(&sc->sc_done, len < SCAN_CHUNK ? len : SCAN_CHUNK);
	}
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return NULL;
}

static void scan_progress(struct scan *sc, double t0, bool last)
{
	uint64_t done = atomic_load(&sc->sc_done);
	double dt = now_s() - t0;

	fprintf(stderr, "\rscan: %llu / %llu MiB (%3.0f %%), %.0f MB/s read%s",
	        (unsigned long long)(done >> 20),
	        (unsigned long long)(sc->sc_size >> 20),
	        sc->sc_size ? 100.0 * done / sc->sc_size : 100.0,
	        dt > 0 ? atomic_load(&sc->sc_read) / dt / 1e6 : 0.0,
	        last ? "\n" : "   ");
}

/*
 * Who may read and write a metadata file made for the image `like`: its
 * hashes tell what the image holds, so it is readable by exactly those the
 * image is readable by, and writable by its owner only (the proxy refuses
 * metadata that group or others may write; docs/metadata.md "Trust").
 */
static mode_t meta_mode(const struct stat *like)
{
	return (like->st_mode & 0644) | 0600;
}

/* Write buf to path atomically (temp file, fsync, rename) with mode; as
 * root also with owner uid:gid (the image's: the proxy trusts metadata
 * of the image's owner or root only), when uid is not (uid_t)-1. */
static int write_file(const char *path, const uint8_t *buf, size_t len,
                      mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[4200];
	size_t off = 0;
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	/* O_EXCL and 0600 until the mode is set: nobody reads or swaps the
	 * temp file meanwhile, whatever the umask */
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	               0600)) < 0)
		return -errno;
	if ((uid != (uid_t)-1 && geteuid() == 0 && fchown(fd, uid, gid) < 0) ||
	    fchmod(fd, mode) < 0) {
		int e = -errno;
		close(fd);
		unlink(tmp);
		return e;
	}
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = -errno;
			close(fd);
			unlink(tmp);
			return e;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	return 0;
}

/* Read a whole (small) file. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	struct stat sb;
	uint8_t *b;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0 || (uint64_t)sb.st_size > CACHE_META_MAX) {
		e = fstat(fd, &sb) < 0 ? -errno : -EFBIG;
		close(fd);
		return e;
	}
	if (!(b = malloc((size_t)sb.st_size + 1))) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, b + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	b[got] = 0;
	*out = b;
	*len = got;
	return 0;
}

/* The profile of an older metadata file for the same block size: kept
 * across a rescan (the image changed; its boot order hardly does). */
static uint32_t *old_profile(const char *path, uint32_t bs, uint64_t nblocks,
                             uint32_t *n, uint32_t *boots)
{
	struct cache_meta *m = NULL;
	struct cache_meta_info mi;
	uint32_t *p = NULL, k = 0, cnt;
	const uint32_t *src;
	uint8_t *buf;
	size_t len;

	*n = 0;
	*boots = 0;
	if (read_file(path, &buf, &len))
		return NULL;
	if (cache_meta_parse(buf, len, &m) == 0) {
		cache_meta_get_info(m, &mi);
		src = cache_meta_profile(m, &cnt);
		if (mi.mi_block == bs && cnt && (p = malloc(cnt * 4u)))
			for (uint32_t i = 0; i < cnt; i++)
				if (src[i] < nblocks)
					p[k++] = src[i];
		/* a learned profile stays marked learned (issue 19) */
		if (p && (mi.mi_flags & CACHE_META_F_LEARNED))
			*boots = mi.mi_boots;
	}
	cache_meta_free(m);
	free(buf);
	*n = k;
	return p;
}

static int scan_run(struct scan *sc, bool quiet)
{
	pthread_t th[SCAN_THREADS];
	unsigned nth = 0;
	double t0 = now_s(), last = t0;

	for (unsigned i = 0; i < SCAN_THREADS; i++)
		if (pthread_create(&th[nth], NULL, scan_thread, sc) == 0)
			nth++;
	if (!nth)
		return -EAGAIN;
	/* progress while the workers run; they end on their own */
	while (atomic_load(&sc->sc_done) < sc->sc_size && !atomic_load(&sc->sc_err)) {
		usleep(50000);
		if (!quiet && now_s() - last >= 0.5) {
			scan_progress(sc, t0, false);
			last = now_s();
		}
	}
	for (unsigned i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	if (!quiet && sc->sc_size >= (64u << 20))
		scan_progress(sc, t0, true);
	return atomic_load(&sc->sc_err);
}

static int cli_scan(const char *image, const char *outp, uint32_t bs, bool quiet)
{
	struct cache_meta_info mi = { 0, 0, 0, bs, 0, 0, 0, 0 };
	struct scan sc;
	struct stat a, b;
	char out[4200];
	uint32_t *prof = NULL;
	uint8_t *enc = NULL;
	size_t enclen;
	double t0 = now_s();
	int rc, ret = 1;

	memset(&sc, 0, sizeof(sc));
	snprintf(out, sizeof(out), "%s%s", image, CACHE_META_SUFFIX);
	if (outp)
		snprintf(out, sizeof(out), "%s", outp);
	if ((sc.sc_fd = open(image, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(sc.sc_fd, &a) < 0 || !S_ISREG(a.st_mode)) {
		fprintf(stderr, "gridvfs meta scan: %s: %s\n", image,
		        sc.sc_fd < 0 ? strerror(errno) : "not a regular file");
		goto out;
	}
	posix_fadvise(sc.sc_fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	sc.sc_size = (uint64_t)a.st_size;
	sc.sc_bs = bs;
	sc.sc_nchunks = (sc.sc_size + SCAN_CHUNK - 1) / SCAN_CHUNK;
	mi.mi_size = sc.sc_size;
	mi.mi_nblocks = sc.sc_size / bs + (sc.sc_size % bs != 0);
	mi.mi_mtime_sec = a.st_mtim.tv_sec;
	mi.mi_mtime_nsec = (uint32_t)a.st_mtim.tv_nsec;
	if (mi.mi_nblocks * CACHE_HASH_SIZE + CACHE_META_HDR > CACHE_META_MAX) {
		fprintf(stderr, "gridvfs meta scan: %s: too many blocks; use a "
		                "larger --block\n", image);
		goto out;
	}
	if (!(sc.sc_hashes = calloc(mi.mi_nblocks + 1, CACHE_HASH_SIZE)))
		goto out;
	if ((rc = scan_run(&sc, quiet))) {
		fprintf(stderr, "\ngridvfs meta scan: %s: %s\n", image, strerror(-rc));
		goto out;
	}
	if (fstat(sc.sc_fd, &b) < 0 || b.st_size != a.st_size ||
	    b.st_mtim.tv_sec != a.st_mtim.tv_sec ||
	    b.st_mtim.tv_nsec != a.st_mtim.tv_nsec) {
		fprintf(stderr, "gridvfs meta scan: %s changed during the scan; "
		                "run it again\n", image);
		goto out;
	}
	prof = old_profile(out, bs, mi.mi_nblocks, &mi.mi_nprofile, &mi.mi_boots);
	if (mi.mi_boots)
		mi.mi_flags |= CACHE_META_F_LEARNED;
	if ((rc = cache_meta_encode(&mi, sc.sc_hashes, prof, &enc, &enclen)) ||
	    (rc = write_file(out, enc, enclen, meta_mode(&b), b.st_uid,
	                     b.st_gid))) {
		fprintf(stderr, "gridvfs meta scan: %s: %s\n", out, strerror(-rc));
		goto out;
	}
	if (geteuid() != 0 && geteuid() != b.st_uid)
		fprintf(stderr, "gridvfs meta scan: warning: %s is owned by you "
		        "(uid %u), not by the image's owner (uid %u): proxies "
		        "will not use it\n", out, (unsigned)geteuid(),
		        (unsigned)b.st_uid);
	{
		uint64_t z = 0;
		double dt = now_s() - t0;

		for (uint64_t i = 0; i < mi.mi_nblocks; i++)
			z += cache_meta_is_zero(sc.sc_hashes + i * CACHE_HASH_SIZE,
			                        CACHE_HASH_SIZE);
		printf("%s: %llu blocks of %u bytes, %llu zero (%.1f %%), "
		       "%.2f s (%.0f MB/s)%s\n", out,
		       (unsigned long long)mi.mi_nblocks, bs, (unsigned long long)z,
		       mi.mi_nblocks ? 100.0 * z / mi.mi_nblocks : 0.0, dt,
		       dt > 0 ? sc.sc_size / dt / 1e6 : 0.0,
		       mi.mi_nprofile ? ", profile kept" : "");
	}
	ret = 0;
out:
	if (sc.sc_fd >= 0)
		close(sc.sc_fd);
	free(sc.sc_hashes);
	free(prof);
	free(enc);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* show                                                                    */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The fattr3 fields cache_meta_trust reads (type, mode, uid, ctime), from
 * a local stat. */
static void fattr_of_stat(const struct stat *sb, uint8_t *f)
{
	memset(f, 0, 84);
	put_be32(f, S_ISREG(sb->st_mode) ? 1 : 2);
	put_be32(f + 4, (uint32_t)(sb->st_mode & 07777));
	put_be32(f + 12, (uint32_t)sb->st_uid);
	put_be32(f + 76, (uint32_t)sb->st_ctim.tv_sec);
	put_be32(f + 80, (uint32_t)sb->st_ctim.tv_nsec);
}

static int cli_show(const char *file, const char *image)
{
	struct cache_meta *m = NULL;
	struct cache_meta_info mi;
	struct cache_meta_summary sum;
	char img[4200];
	size_t len, sl = strlen(CACHE_META_SUFFIX), fl = strlen(file);
	uint8_t *buf;
	struct stat sb;
	int rc, ret = 0;

	if ((rc = read_file(file, &buf, &len))) {
		fprintf(stderr, "gridvfs meta show: %s: %s\n", file, strerror(-rc));
		return 1;
	}
	rc = cache_meta_parse(buf, len, &m);
	free(buf);
	if (rc) {
		fprintf(stderr, "gridvfs meta show: %s: %s\n", file,
		        rc == -EPROTONOSUPPORT ? "unsupported format version"
		                               : "malformed metadata file");
		return 1;
	}
	cache_meta_get_info(m, &mi);
	cache_meta_summarize(m, &sum);
	printf("file:         %s\n", file);
	printf("version:      %u\n", mi.mi_flags || mi.mi_boots
	                                   ? CACHE_META_VERSION
	                                   : CACHE_META_VERSION_MIN);
	printf("image_size:   %llu\n", (unsigned long long)mi.mi_size);
	printf("image_mtime:  %lld.%09u\n", (long long)mi.mi_mtime_sec,
	       mi.mi_mtime_nsec);
	printf("block_size:   %u\n", mi.mi_block);
	printf("blocks:       %llu\n", (unsigned long long)mi.mi_nblocks);
	if (mi.mi_flags & CACHE_META_F_NOHASH) {
		printf("hashes:       none (a profile only: no zero map, no "
		       "dedup, no verification)\n");
	} else {
		printf("zero_blocks:  %llu (%.1f %%)\n",
		       (unsigned long long)sum.ms_zero,
		       mi.mi_nblocks ? 100.0 * sum.ms_zero / mi.mi_nblocks : 0.0);
		printf("unique:       %llu\n", (unsigned long long)sum.ms_unique);
		printf("duplicates:   %llu\n", (unsigned long long)sum.ms_dup);
	}
	printf("profile:      %u blocks (%.1f MiB)\n", mi.mi_nprofile,
	       (double)mi.mi_nprofile * mi.mi_block / 1048576.0);
	if (mi.mi_flags & CACHE_META_F_LEARNED)
		printf("origin:       learned from %u boot%s\n", mi.mi_boots,
		       mi.mi_boots == 1 ? "" : "s");
	else
		printf("origin:       %s\n", mi.mi_nprofile ? "attached" : "none");
	if (!image && fl > sl && !strcmp(file + fl - sl, CACHE_META_SUFFIX)) {
		snprintf(img, sizeof(img), "%.*s", (int)(fl - sl), file);
		if (access(img, F_OK) == 0)
			image = img;
	}
	if (image) {
		if (stat(image, &sb) < 0) {
			printf("image:        %s: %s\n", image, strerror(errno));
			ret = 1;
		} else if (cache_meta_check(m, (uint64_t)sb.st_size,
		                            sb.st_mtim.tv_sec,
		                            (uint32_t)sb.st_mtim.tv_nsec)) {
			printf("image:        %s: STALE (size or mtime differ; "
			       "run meta scan again)\n", image);
			ret = 1;
		} else
			printf("image:        %s: matches\n", image);
		if (!ret) {
			/* what a proxy will make of it (docs/metadata.md "Trust") */
			struct stat ms;
			uint8_t fi[84], fm[84];
			enum cache_meta_trust t;

			if (stat(file, &ms) == 0) {
				fattr_of_stat(&sb, fi);
				fattr_of_stat(&ms, fm);
				t = cache_meta_trust(fi, fm);
				if (t == CACHE_META_TRUSTED) {
					printf("trust:        trusted\n");
				} else {
					printf("trust:        UNTRUSTED: %s (uid %u, "
					       "mode %04o; the image's owner is "
					       "uid %u)\n", cache_meta_trust_str(t),
					       (unsigned)ms.st_uid,
					       (unsigned)(ms.st_mode & 07777),
					       (unsigned)sb.st_uid);
					ret = 1;
				}
			}
		}
	}
	cache_meta_free(m);
	return ret;
}

/* ---------------------------------------------------------------------- */
/* record and attach                                                       */

struct blist {
	uint32_t *b_v;
	uint32_t b_n, b_cap;
	uint8_t *b_seen; /* bitmap over block numbers */
	uint64_t b_seen_bits;
};

static int blist_add(struct blist *l, uint64_t b)
{
	if (b > UINT32_MAX)
		return -ERANGE;
	if (b >= l->b_seen_bits) {
		uint64_t oldn = l->b_seen_bits / 8, nb = (b / 8 + 1) * 16;
		uint8_t *s = realloc(l->b_seen, nb / 8);

		if (!s)
			return -ENOMEM;
		memset(s + oldn, 0, nb / 8 - oldn);
		l->b_seen = s;
		l->b_seen_bits = nb;
	}
	if (l->b_seen[b / 8] & (1u << (b % 8)))
		return 0;
	l->b_seen[b / 8] |= (uint8_t)(1u << (b % 8));
	if (l->b_n == l->b_cap) {
		uint32_t nc = l->b_cap ? l->b_cap * 2 : 1024;
		uint32_t *v = realloc(l->b_v, nc * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->b_v = v;
		l->b_cap = nc;
	}
	l->b_v[l->b_n++] = (uint32_t)b;
	return 0;
}

/*
 * Blocks of size bs touched by a trace ("OFFSET LENGTH" lines) or a
 * profile ("# gridvfs-profile block=N" then one block per line), first
 * touch first.
 */
static int load_blocks(const char *path, uint32_t bs, struct blist *l)
{
	FILE *f = fopen(path, "r");
	char line[256];
	uint64_t pbs = 0;
	unsigned lineno = 0;
	int rc = 0;

	if (!f)
		return -errno;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		unsigned long long a, n = 1;
		uint64_t s, e;

		lineno++;
		if (!strncmp(line, PROFILE_TAG, strlen(PROFILE_TAG))) {
			pbs = strtoull(line + strlen(PROFILE_TAG), NULL, 10);
			continue;
		}
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (pbs ? sscanf(line, "%llu", &a) != 1
		        : sscanf(line, "%llu %llu", &a, &n) != 2) {
			fprintf(stderr, "gridvfs meta: %s:%u: not '%s'\n", path,
			        lineno, pbs ? "BLOCK" : "OFFSET LENGTH");
			rc = -EINVAL;
			break;
		}
		s = pbs ? a * pbs : a;
		e = pbs ? s + pbs : s + n;
		if (e <= s)
			continue;
		for (uint64_t b = s / bs; b <= (e - 1) / bs && rc == 0; b++)
			rc = blist_add(l, b);
	}
	fclose(f);
	return rc;
}

static int cli_record(const char *trace, const char *outp, uint32_t bs)
{
	struct blist l = { NULL, 0, 0, NULL, 0 };
	FILE *o = stdout;
	int rc = load_blocks(trace, bs, &l), ret = 1;

	if (rc) {
		fprintf(stderr, "gridvfs meta record: %s: %s\n", trace, strerror(-rc));
		goto out;
	}
	if (outp && !(o = fopen(outp, "w"))) {
		fprintf(stderr, "gridvfs meta record: %s: %s\n", outp, strerror(errno));
		goto out;
	}
	fprintf(o, "%s%u\n", PROFILE_TAG, bs);
	for (uint32_t i = 0; i < l.b_n; i++)
		fprintf(o, "%u\n", l.b_v[i]);
	if (o != stdout && fclose(o)) {
		fprintf(stderr, "gridvfs meta record: %s: %s\n", outp, strerror(errno));
		goto out;
	}
	fprintf(stderr, "recorded %u blocks of %u bytes (%.1f MiB)\n", l.b_n, bs,
	        (double)l.b_n * bs / 1048576.0);
	ret = 0;
out:
	free(l.b_v);
	free(l.b_seen);
	return ret;
}

static int cli_attach(const char *file, const char *input)
{
	struct blist l = { NULL, 0, 0, NULL, 0 };
	struct cache_meta *m = NULL;
	struct cache_meta_info mi;
	uint8_t *buf = NULL, *hashes = NULL, *enc = NULL;
	size_t len, enclen;
	uint32_t k = 0;
	struct stat ms;
	int rc, ret = 1;

	/* the rewritten file keeps the owner and read permissions it had */
	if (stat(file, &ms) < 0)
		rc = -errno;
	else if (!(rc = read_file(file, &buf, &len)))
		rc = cache_meta_parse(buf, len, &m);
	if (rc) {
		fprintf(stderr, "gridvfs meta attach: %s: %s\n", file,
		        rc == -EBADMSG ? "malformed metadata file" : strerror(-rc));
		goto out;
	}
	cache_meta_get_info(m, &mi);
	if ((rc = load_blocks(input, mi.mi_block, &l))) {
		fprintf(stderr, "gridvfs meta attach: %s: %s\n", input, strerror(-rc));
		goto out;
	}
	/* blocks past the image's end (a trace of another image) are dropped */
	for (uint32_t i = 0; i < l.b_n; i++)
		if (l.b_v[i] < mi.mi_nblocks)
			l.b_v[k++] = l.b_v[i];
	mi.mi_nprofile = k;
	/* an operator's profile: learning never replaces it (issue 19) */
	mi.mi_flags &= ~CACHE_META_F_LEARNED;
	mi.mi_boots = 0;
	if (!(hashes = malloc(mi.mi_nblocks * CACHE_HASH_SIZE + 1)))
		goto out;
	for (uint64_t i = 0; i < mi.mi_nblocks && cache_meta_hash(m, i); i++)
		memcpy(hashes + i * CACHE_HASH_SIZE, cache_meta_hash(m, i),
		       CACHE_HASH_SIZE);
	if ((rc = cache_meta_encode(&mi, hashes, l.b_v, &enc, &enclen)) ||
	    (rc = write_file(file, enc, enclen, meta_mode(&ms), ms.st_uid,
	                     ms.st_gid))) {
		fprintf(stderr, "gridvfs meta attach: %s: %s\n", file, strerror(-rc));
		goto out;
	}
	printf("%s: profile of %u blocks (%.1f MiB)%s\n", file, k,
	       (double)k * mi.mi_block / 1048576.0,
	       k < l.b_n ? " (blocks past the end dropped)" : "");
	ret = 0;
out:
	cache_meta_free(m);
	free(buf);
	free(hashes);
	free(enc);
	free(l.b_v);
	free(l.b_seen);
	return ret;
}

/* ---------------------------------------------------------------------- */

int cache_meta_cli_main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "", *pos[2] = { NULL, NULL };
	const char *outp = NULL, *image = NULL;
	uint32_t bs = CACHE_BLOCK_DEFAULT;
	bool quiet = false;
	int npos = 0;

	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		fputs(meta_usage, stdout);
		return 0;
	}
	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--block") && i + 1 < argc) {
			if (parse_block(argv[++i], &bs))
				return 2;
		} else if (!strcmp(argv[i], "-o") && i + 1 < argc) {
			outp = argv[++i];
		} else if (!strcmp(argv[i], "--image") && i + 1 < argc) {
			image = argv[++i];
		} else if (!strcmp(argv[i], "--quiet") || !strcmp(argv[i], "-q")) {
			quiet = true;
		} else if (argv[i][0] == '-' || npos == 2) {
			fprintf(stderr, "gridvfs meta: unexpected '%s'\n%s", argv[i],
			        meta_usage);
			return 2;
		} else
			pos[npos++] = argv[i];
	}
	if (!strcmp(cmd, "scan") && npos == 1)
		return cli_scan(pos[0], outp, bs, quiet || !isatty(2));
	if (!strcmp(cmd, "show") && npos == 1)
		return cli_show(pos[0], image);
	if (!strcmp(cmd, "record") && npos == 1)
		return cli_record(pos[0], outp, bs);
	if (!strcmp(cmd, "attach") && npos == 2)
		return cli_attach(pos[0], pos[1]);
	fputs(meta_usage, stderr);
	return 2;
}
