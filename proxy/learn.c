/*
 * proxy/learn.c — profiles learned where the reads are seen (issue 19;
 * docs/metadata.md "Learned profiles").  The proxy notes, per image, the
 * blocks that READs touch, first touch first; when the image has been
 * idle a while (the boot is over) it publishes that order as the image's
 * prefetch profile in NAME.gvmeta beside it, with calls of its own
 * upstream: CREATE a temporary name, WRITE (FILE_SYNC), SETATTR like the
 * image, RENAME over.  An operator's profile is never replaced; a scan's
 * hashes are kept.  On by default in the server role (it sees every
 * node's reads), --learn-profiles yes in the client role.  Files under
 * --learn-min-size (64 MiB) are not images: they get no NAME.gvmeta.
 */
#include "config.h"
#include "proxy/core.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"

#define LN_BS (64u << 10)          /* learned in blocks of this size */
#define LN_MAX_BLOCKS (8u << 20)   /* larger images (512 GiB): ignored */
#define LN_MAX_ACTIVE 64u          /* images learned at once */
#define LN_MAX_DONE 4096u          /* images remembered as done */
#define LN_NAME_MAX 200u           /* longer names: ignored */
#define LN_IO_CHUNK (256u << 10)   /* bytes per READ/WRITE of NAME.gvmeta */
#define LN_MAX_PUBLISH 4u          /* publishes at once: each may hold a
                                      metadata file (up to 256 MiB) twice */
#define LN_SESSION 10u             /* x --learn-idle without a new block
                                      after a publish: that boot is over */

enum ln_state {
	LN_WATCH,   /* noting first touches (and republishing them while
	               this boot goes on after a pause) */
	LN_PUBLISH, /* calls of our own under way */
	LN_DONE,    /* boot learned, or nothing to do for this version */
};

/* One image: where it lives, its version, and its first touches. */
struct px_lfile {
	uint8_t lf_fh[NFS3_FHSIZE], lf_dir[NFS3_FHSIZE];
	uint32_t lf_fhlen, lf_dirlen;
	char lf_name[LN_NAME_MAX + 1];
	uint8_t lf_fattr[NFS3_FATTR_SIZE]; /* upstream's terms */
	enum ln_state lf_state;
	uint64_t lf_nblocks;               /* of LN_BS */
	uint8_t *lf_seen;                  /* bitmap of touched blocks */
	uint32_t *lf_prof, lf_n, lf_cap;   /* first touches, in order */
	uint64_t lf_last_ms;               /* last new first touch, or the
	                                      LOOKUP that named it */
	/* A boot may pause longer than --learn-idle (a kernel booting from
	 * elsewhere, a slow host): what was published is updated when more
	 * of the same boot comes, in the file we wrote, without counting
	 * another boot. */
	bool lf_published;
	uint32_t lf_pub_n;                 /* entries the last publish had */
	uint8_t lf_pub_fileid[8];          /* fileid of the file we wrote */
	/* publishing */
	struct px_loop *lf_loop;
	struct rpc_authsys lf_cred;
	bool lf_as_root;                   /* owner's CREATE refused: root */
	bool lf_had_meta;                  /* NAME.gvmeta existed */
	uint8_t lf_mattr[NFS3_FATTR_SIZE]; /* ... with these attributes */
	uint8_t lf_mfh[NFS3_FHSIZE];
	uint32_t lf_mfhlen;
	uint8_t *lf_buf;                   /* its bytes, then ours */
	size_t lf_buflen, lf_pos;
	char lf_tmp[LN_NAME_MAX + 48];
	uint8_t lf_tfh[NFS3_FHSIZE];
	uint32_t lf_tfhlen;
	uint32_t lf_nout, lf_boots, lf_outbs; /* what is being published */
	uint32_t lf_snap_n;                /* lf_n when it was composed */
	uint8_t lf_tfileid[8];             /* fileid of the temporary file */
	struct px_lfile *lf_next;
};

struct px_learn {
	struct px_lfile *ln_files;
	unsigned ln_active, ln_done;
	unsigned ln_seq;                   /* temporary names */
	bool ln_full_logged;
	uint64_t ln_published, ln_skipped, ln_failed;
};

/* ---------------------------------------------------------------------- */
/* Bookkeeping                                                             */

static void lf_release(struct px_lfile *lf)
{
	free(lf->lf_seen);
	free(lf->lf_prof);
	free(lf->lf_buf);
	lf->lf_seen = NULL;
	lf->lf_prof = NULL;
	lf->lf_buf = NULL;
	lf->lf_n = lf->lf_cap = 0;
}

static struct px_lfile *lf_find(struct px_learn *ln, const uint8_t *fh,
				uint32_t fhlen)
{
	for (struct px_lfile *lf = ln->ln_files; lf; lf = lf->lf_next)
		if (lf->lf_fhlen == fhlen && !memcmp(lf->lf_fh, fh, fhlen))
			return lf;
	return NULL;
}

/* Done with this image version: only its handle and version are kept
 * (so that the next boot is not learned again), until ln_trim(). */
static void lf_done(struct px_learn *ln, struct px_lfile *lf)
{
	if (lf->lf_state != LN_DONE) {
		ln->ln_active--;
		ln->ln_done++;
	}
	lf->lf_state = LN_DONE;
	lf_release(lf);
}

/* Forget images named but never read for a boot's whole watch (a stat,
 * an ls -l), and the oldest done images past the bound (new ones are first
 * in the list).  Only from the tick, where no lfile is being walked. */
static void ln_trim(struct px_learn *ln, uint64_t now, uint64_t unread_ms)
{
	for (struct px_lfile **pp = &ln->ln_files; *pp;) {
		struct px_lfile *lf = *pp;

		if (lf->lf_state == LN_WATCH && !lf->lf_n &&
		    now - lf->lf_last_ms >= unread_ms) {
			*pp = lf->lf_next;
			lf_release(lf);
			free(lf);
			ln->ln_active--;
			ln->ln_full_logged = false;
			continue;
		}
		pp = &lf->lf_next;
	}
	while (ln->ln_done > LN_MAX_DONE) {
		struct px_lfile **pp = &ln->ln_files, **last = NULL, *old;

		for (; *pp; pp = &(*pp)->lf_next)
			if ((*pp)->lf_state == LN_DONE)
				last = pp;
		if (!last)
			return;
		old = *last;
		*last = old->lf_next;
		free(old);
		ln->ln_done--;
	}
}

static bool same_version(const uint8_t *a, const uint8_t *b)
{
	return !memcmp(a + NFS3_FATTR_SIZE_OFF, b + NFS3_FATTR_SIZE_OFF, 8) &&
	       !memcmp(a + NFS3_FATTR_MTIME, b + NFS3_FATTR_MTIME, 8);
}

/* ---------------------------------------------------------------------- */
/* Watching                                                                */

/* A LOOKUP reply (upstream's terms) named a regular file: where it lives. */
void px_learn_lookup(struct px_loop *l, const struct px_call *pc,
		     const uint8_t *res, size_t len)
{
	struct px_learn *ln = l->lp_learn;
	const uint8_t *msg = px_msg_data(pc->pc_req), *a, *fattr;
	size_t sl = strlen(CACHE_META_SUFFIX), p;
	uint32_t fhlen, dlen, nlen;
	uint64_t size;
	struct px_lfile *lf;
	struct rpc_call h;

	if (!ln || len < 8 || rpc_get32(res) != NFS3_OK)
		return;
	fhlen = rpc_get32(res + 4);
	p = 8 + ((fhlen + 3u) & ~3u);
	if (!fhlen || fhlen > NFS3_FHSIZE || len < p + 4 + NFS3_FATTR_SIZE ||
	    !rpc_get32(res + p))
		return;
	fattr = res + p + 4;
	size = rpc_get64(fattr + NFS3_FATTR_SIZE_OFF);
	if (rpc_get32(fattr) != 1 || size < l->lp_opts->o_learn_min_size ||
	    size / LN_BS + 1 > LN_MAX_BLOCKS ||
	    rpc_call_parse(msg, pc->pc_req->m_len, &h) != RPC_CALL_OK)
		return;
	a = msg + h.c_args_off;
	dlen = rpc_get32(a);
	if (!dlen || dlen > NFS3_FHSIZE ||
	    h.c_args_off + 8 + ((dlen + 3u) & ~3u) > pc->pc_req->m_len)
		return;
	nlen = rpc_get32(a + 4 + ((dlen + 3u) & ~3u));
	if (!nlen || nlen > LN_NAME_MAX ||
	    h.c_args_off + 8 + ((dlen + 3u) & ~3u) + nlen > pc->pc_req->m_len)
		return;
	a += 8 + ((dlen + 3u) & ~3u); /* the name */
	if ((nlen >= sl && !memcmp(a + nlen - sl, CACHE_META_SUFFIX, sl)) ||
	    memchr(a, '/', nlen) || memchr(a, '\0', nlen))
		return;
	if ((lf = lf_find(ln, res + 8, fhlen))) {
		if (lf->lf_state == LN_PUBLISH)
			return;
		if (!lf->lf_n)
			lf->lf_last_ms = px_now_ms(); /* named again: not stale */
		if (!same_version(lf->lf_fattr, fattr) &&
		    lf->lf_state == LN_DONE) {
			if (ln->ln_active >= LN_MAX_ACTIVE)
				return;
			/* a new version of the image: learn it again */
			ln->ln_done--;
			ln->ln_active++;
			lf->lf_state = LN_WATCH;
			lf->lf_published = false;
			lf->lf_pub_n = 0;
		} else if (!same_version(lf->lf_fattr, fattr)) {
			lf_release(lf); /* changed while we watched */
			lf->lf_published = false;
			lf->lf_pub_n = 0;
		}
	} else {
		if (ln->ln_active >= LN_MAX_ACTIVE) {
			if (!ln->ln_full_logged)
				px_warn("learning profiles of %u images at "
					"once already; %.*s and others are "
					"not learned", LN_MAX_ACTIVE,
					(int)nlen, (const char *)a);
			ln->ln_full_logged = true;
			return;
		}
		if (!(lf = calloc(1, sizeof(*lf))))
			return;
		lf->lf_loop = l;
		memcpy(lf->lf_fh, res + 8, fhlen);
		lf->lf_fhlen = fhlen;
		lf->lf_state = LN_WATCH;
		lf->lf_last_ms = px_now_ms();
		lf->lf_next = ln->ln_files;
		ln->ln_files = lf;
		ln->ln_active++;
	}
	memcpy(lf->lf_dir, msg + h.c_args_off + 4, dlen);
	lf->lf_dirlen = dlen;
	memcpy(lf->lf_name, a, nlen);
	lf->lf_name[nlen] = '\0';
	memcpy(lf->lf_fattr, fattr, NFS3_FATTR_SIZE);
	lf->lf_nblocks = size / LN_BS + (size % LN_BS != 0);
}

static bool lf_touch(struct px_lfile *lf, uint64_t b)
{
	if (lf->lf_seen[b / 8] & (1u << (b % 8)))
		return false;
	if (lf->lf_n == lf->lf_cap) {
		/* never more entries than the image has blocks */
		uint32_t cap = lf->lf_cap ? lf->lf_cap * 2 : 1024;
		uint32_t *v;

		if (cap > lf->lf_nblocks)
			cap = (uint32_t)lf->lf_nblocks;
		if (!(v = realloc(lf->lf_prof, cap * sizeof(*v))))
			return false;
		lf->lf_prof = v;
		lf->lf_cap = cap;
	}
	lf->lf_seen[b / 8] |= (uint8_t)(1u << (b % 8));
	lf->lf_prof[lf->lf_n++] = (uint32_t)b;
	return true;
}

/* A READ call (after routing and identity mapping): its first touches. */
void px_learn_read(struct px_loop *l, const uint8_t *msg,
		   const struct px_req *rq)
{
	struct px_learn *ln = l->lp_learn;
	const uint8_t *fh;
	uint32_t fhlen, count = rq->rq_count;
	uint64_t off = rq->rq_off, first, last, size;
	struct px_lfile *lf;
	bool fresh = false;

	/* The handle, offset and count as the request record has them. */
	if (!ln || !px_req_fh(rq, msg, &fh, &fhlen) ||
	    !(lf = lf_find(ln, fh, fhlen)) || lf->lf_state != LN_WATCH)
		return;
	size = rpc_get64(lf->lf_fattr + NFS3_FATTR_SIZE_OFF);
	if (!count || off >= size)
		return;
	if (!lf->lf_seen &&
	    !(lf->lf_seen = calloc(lf->lf_nblocks / 8 + 1, 1)))
		return;
	first = off / LN_BS;
	last = (off + count - 1 < size ? off + count - 1 : size - 1) / LN_BS;
	for (uint64_t b = first; b <= last; b++)
		fresh |= lf_touch(lf, b);
	if (fresh)
		lf->lf_last_ms = px_now_ms();
}

/* ---------------------------------------------------------------------- */
/* Publishing: a chain of calls, each callback starting the next step      */

static void pub_end(struct px_lfile *lf, const char *why, bool failed);
static void pub_lookup(struct px_lfile *lf, bool recheck);

static int pub_call(struct px_lfile *lf, uint32_t proc, const uint8_t *args,
		    size_t alen, px_icall_fn cb)
{
	static const struct rpc_authsys root = {
		.as_machine_len = 7, .as_machine = "gridvfs"};

	return px_icall_raw(lf->lf_loop, RPC_PROG_NFS, proc,
			    lf->lf_as_root ? &root : &lf->lf_cred, args, alen,
			    cb, lf);
}

static void put_dirop(struct rpc_xdr *x, const struct px_lfile *lf,
		      const char *name)
{
	rpc_xdr_put_opaque(x, lf->lf_dir, lf->lf_dirlen);
	rpc_xdr_put_opaque(x, name, (uint32_t)strlen(name));
}

static void meta_name(const struct px_lfile *lf, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", lf->lf_name, CACHE_META_SUFFIX);
}

/* Our temporary file goes; nothing waits for the answer. */
static void pub_remove_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	(void)ctx, (void)err, (void)res, (void)len;
}

static void pub_cleanup(struct px_lfile *lf)
{
	uint8_t args[4 + NFS3_FHSIZE + 4 + sizeof(lf->lf_tmp) + 4];
	struct rpc_xdr x;

	if (!lf->lf_tmp[0] || lf->lf_loop->lp_draining)
		return;
	rpc_xdr_init(&x, args, sizeof(args));
	put_dirop(&x, lf, lf->lf_tmp);
	if (!x.x_err)
		pub_call(lf, NFS3_REMOVE, args, x.x_pos, pub_remove_cb);
}

static void pub_end(struct px_lfile *lf, const char *why, bool failed)
{
	struct px_learn *ln = lf->lf_loop->lp_learn;

	if (why && failed)
		px_warn("profile of %s not published: %s", lf->lf_name, why);
	else if (why)
		px_info("profile of %s not published: %s", lf->lf_name, why);
	if (failed) {
		pub_cleanup(lf);
		ln->ln_failed++;
	} else if (why) {
		ln->ln_skipped++;
	}
	lf->lf_tmp[0] = '\0';
	lf_done(ln, lf);
}

/* The answer's status, or -1 when the call failed at the RPC level. */
static int nfs_status(int err, const uint8_t *res, size_t len)
{
	if (err < 0 || len < 4)
		return -1;
	return (int)rpc_get32(res);
}

static void pub_rename_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_lfile *lf = ctx;
	struct px_learn *ln = lf->lf_loop->lp_learn;
	int st = nfs_status(err, res, len);

	if (st != 0) {
		pub_end(lf, st < 0 ? "RENAME failed" : "RENAME refused", true);
		return;
	}
	px_info("profile of %s learned from %u boot%s: %u blocks of %u bytes "
		"published in %s%s%s", lf->lf_name, lf->lf_boots,
		lf->lf_boots == 1 ? "" : "s", lf->lf_nout,
		lf->lf_outbs,
		lf->lf_name, CACHE_META_SUFFIX,
		lf->lf_as_root ? " (as root)" : "");
	ln->ln_published++;
	lf->lf_tmp[0] = '\0';
	free(lf->lf_buf);
	lf->lf_buf = NULL;
	/* keep watching this boot: more of it after a pause updates it */
	lf->lf_published = true;
	lf->lf_pub_n = lf->lf_snap_n;
	memcpy(lf->lf_pub_fileid, lf->lf_tfileid, 8);
	lf->lf_state = LN_WATCH;
}

static void pub_rename(struct px_lfile *lf)
{
	uint8_t args[2 * (4 + NFS3_FHSIZE + 4 + sizeof(lf->lf_tmp) + 4)];
	char name[LN_NAME_MAX + 16];
	struct rpc_xdr x;

	meta_name(lf, name, sizeof(name));
	rpc_xdr_init(&x, args, sizeof(args));
	put_dirop(&x, lf, lf->lf_tmp);
	put_dirop(&x, lf, name);
	if (x.x_err || pub_call(lf, NFS3_RENAME, args, x.x_pos, pub_rename_cb))
		pub_end(lf, "out of memory", true);
}

static void pub_setattr_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_lfile *lf = ctx;
	int st = nfs_status(err, res, len);

	if (err == -ECANCELED) {
		pub_end(lf, NULL, false);
		return;
	}
	/* the group is a courtesy (like the image's); trust needs only the
	 * owner and the mode, which CREATE set */
	if (st != 0)
		px_info("%s: SETATTR of the group refused (%d); kept",
			lf->lf_tmp, st);
	/* Between our look at NAME.gvmeta and now, someone (an operator's
	 * attach, another server role) may have written it: look again. */
	pub_lookup(lf, true);
}

static void pub_setattr(struct px_lfile *lf)
{
	uint8_t args[4 + NFS3_FHSIZE + 64];
	struct rpc_xdr x;

	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, lf->lf_tfh, lf->lf_tfhlen);
	rpc_xdr_put_u32(&x, 1); /* mode */
	rpc_xdr_put_u32(&x, (rpc_get32(lf->lf_fattr + 4) & 0444) | 0200);
	rpc_xdr_put_u32(&x, 0); /* uid: CREATE made it the owner's (or root) */
	rpc_xdr_put_u32(&x, 1); /* gid: the image's */
	rpc_xdr_put_u32(&x, rpc_get32(lf->lf_fattr + NFS3_FATTR_GID));
	rpc_xdr_put_u32(&x, 0); /* size */
	rpc_xdr_put_u32(&x, 0); /* atime: don't change */
	rpc_xdr_put_u32(&x, 0); /* mtime: don't change */
	rpc_xdr_put_u32(&x, 0); /* no guard */
	if (x.x_err || pub_call(lf, NFS3_SETATTR, args, x.x_pos, pub_setattr_cb))
		pub_end(lf, "out of memory", true);
}

static void pub_write(struct px_lfile *lf);

static void pub_write_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_lfile *lf = ctx;
	int st = nfs_status(err, res, len);
	size_t p = 4;
	uint32_t n;

	if (err == -ECANCELED) {
		pub_end(lf, NULL, false);
		return;
	}
	if (st != 0) {
		pub_end(lf, st < 0 ? "WRITE failed" : "WRITE refused", true);
		return;
	}
	/* wcc_data: pre_op_attr, post_op_attr; then count, committed */
	if (len >= p + 4 && rpc_get32(res + p))
		p += 24;
	p += 4;
	if (len >= p + 4 && rpc_get32(res + p))
		p += NFS3_FATTR_SIZE;
	p += 4;
	if (len < p + 8 || !(n = rpc_get32(res + p)) ||
	    n > lf->lf_buflen - lf->lf_pos || rpc_get32(res + p + 4) != 2) {
		pub_end(lf, "WRITE answered without FILE_SYNC or a count",
			true);
		return;
	}
	lf->lf_pos += n;
	pub_write(lf);
}

static void pub_write(struct px_lfile *lf)
{
	uint32_t n = lf->lf_buflen - lf->lf_pos < LN_IO_CHUNK
			     ? (uint32_t)(lf->lf_buflen - lf->lf_pos)
			     : LN_IO_CHUNK;
	uint8_t *args;
	struct rpc_xdr x;
	size_t cap = 4 + NFS3_FHSIZE + 24 + n;

	if (!n) {
		pub_setattr(lf);
		return;
	}
	if (!(args = malloc(cap))) {
		pub_end(lf, "out of memory", true);
		return;
	}
	rpc_xdr_init(&x, args, cap);
	rpc_xdr_put_opaque(&x, lf->lf_tfh, lf->lf_tfhlen);
	rpc_xdr_put_u64(&x, lf->lf_pos);
	rpc_xdr_put_u32(&x, n);
	rpc_xdr_put_u32(&x, 2); /* FILE_SYNC: no COMMIT needed */
	rpc_xdr_put_opaque(&x, lf->lf_buf + lf->lf_pos, n);
	if (x.x_err || pub_call(lf, NFS3_WRITE, args, x.x_pos, pub_write_cb))
		pub_end(lf, "out of memory", true);
	free(args);
}

static void pub_create(struct px_lfile *lf);

static void pub_create_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_lfile *lf = ctx;
	int st = nfs_status(err, res, len);
	uint32_t fhlen;

	if (err == -ECANCELED) {
		lf->lf_tmp[0] = '\0';
		pub_end(lf, NULL, false);
		return;
	}
	if (st == 13 /* ACCES */ && !lf->lf_as_root) {
		/* the owner may not write the directory: root may (without
		 * root squashing); root-owned metadata is trusted too */
		lf->lf_as_root = true;
		pub_create(lf);
		return;
	}
	if (st != 0) {
		char why[96];

		lf->lf_tmp[0] = '\0';
		snprintf(why, sizeof(why), "CREATE in its directory %s (%d)",
			 st < 0 ? "failed" : "refused", st);
		pub_end(lf, why, st != 13);
		return;
	}
	if (len < 12 || !rpc_get32(res + 4) ||
	    !(fhlen = rpc_get32(res + 8)) || fhlen > NFS3_FHSIZE ||
	    len < 12 + fhlen) {
		pub_end(lf, "CREATE answered without a handle", true);
		return;
	}
	memcpy(lf->lf_tfh, res + 12, fhlen);
	lf->lf_tfhlen = fhlen;
	/* its fileid (post_op_attr after the handle): how this boot's next
	 * publish recognises the file as its own */
	{
		size_t p = 12 + ((fhlen + 3u) & ~3u);

		if (len < p + 4 + NFS3_FATTR_SIZE || !rpc_get32(res + p)) {
			pub_end(lf, "CREATE answered without attributes", true);
			return;
		}
		memcpy(lf->lf_tfileid, res + p + 4 + NFS3_FATTR_FILEID, 8);
	}
	lf->lf_pos = 0;
	pub_write(lf);
}

static void pub_create(struct px_lfile *lf)
{
	struct px_learn *ln = lf->lf_loop->lp_learn;
	uint8_t args[4 + NFS3_FHSIZE + 4 + sizeof(lf->lf_tmp) + 64];
	struct rpc_xdr x;

	/* hidden, and not NAME.gvmeta until it is whole */
	snprintf(lf->lf_tmp, sizeof(lf->lf_tmp), ".%s%s.learn-%d-%u",
		 lf->lf_name, CACHE_META_SUFFIX, (int)getpid(), ++ln->ln_seq);
	rpc_xdr_init(&x, args, sizeof(args));
	put_dirop(&x, lf, lf->lf_tmp);
	rpc_xdr_put_u32(&x, 1); /* GUARDED: never someone else's file */
	rpc_xdr_put_u32(&x, 1); /* mode: the owner's until it is whole */
	rpc_xdr_put_u32(&x, 0600);
	rpc_xdr_put_u32(&x, 0); /* uid */
	rpc_xdr_put_u32(&x, 0); /* gid */
	rpc_xdr_put_u32(&x, 0); /* size */
	rpc_xdr_put_u32(&x, 0); /* atime */
	rpc_xdr_put_u32(&x, 0); /* mtime */
	if (x.x_err || pub_call(lf, NFS3_CREATE, args, x.x_pos, pub_create_cb))
		pub_end(lf, "out of memory", true);
}

/*
 * What to write, from what NAME.gvmeta holds (lf_buf, or nothing): a
 * scan's hashes are kept and the profile added; a learned profile from
 * fewer than --learn-boots boots is extended by this boot's new blocks;
 * an operator's profile is never replaced.  false after pub_end().
 */
static bool pub_compose(struct px_lfile *lf)
{
	const struct px_opts *o = lf->lf_loop->lp_opts;
	struct cache_meta_info mi = {0};
	struct cache_meta *m = NULL;
	const uint32_t *old = NULL;
	uint32_t nold = 0, *prof = NULL, nprof = 0, *all = NULL, k = 0;
	const uint8_t *hashes = NULL;
	uint8_t *enc = NULL;
	size_t enclen;
	int rc;

	/* the file this boot published before its pause: updated in place */
	bool ours = lf->lf_had_meta && lf->lf_published &&
		    !memcmp(lf->lf_mattr + NFS3_FATTR_FILEID, lf->lf_pub_fileid, 8);

	if (lf->lf_had_meta) {
		rc = cache_meta_parse(lf->lf_buf, lf->lf_buflen, &m);
		if (rc) {
			pub_end(lf, rc == -EPROTONOSUPPORT
					    ? "its metadata file has an unknown "
					      "format version; left alone"
					    : "its metadata file is malformed; "
					      "left alone",
				false);
			return false;
		}
		cache_meta_get_info(m, &mi);
		if (cache_meta_check_fattr(m, lf->lf_fattr)) {
			if (!(mi.mi_flags & CACHE_META_F_LEARNED) ||
			    !(mi.mi_flags & CACHE_META_F_NOHASH)) {
				cache_meta_free(m);
				pub_end(lf, "its metadata file is stale (run "
					    "gridvfs meta scan); left alone",
					false);
				return false;
			}
			/* our own profile of an older version: replaced */
			cache_meta_free(m);
			m = NULL;
			memset(&mi, 0, sizeof(mi));
		} else if (mi.mi_nprofile &&
			   !(mi.mi_flags & CACHE_META_F_LEARNED)) {
			cache_meta_free(m);
			pub_end(lf, "it has an attached profile (an "
				    "operator's); never replaced", false);
			return false;
		} else if (!ours && mi.mi_boots >= o->o_learn_boots) {
			px_debug("profile of %s: learned from %u boots "
				 "already", lf->lf_name, mi.mi_boots);
			cache_meta_free(m);
			pub_end(lf, NULL, false);
			return false;
		}
	}
	if (!m) {
		/* no scan: a profile-only file (no hashes, no zero map) */
		uint64_t size = rpc_get64(lf->lf_fattr + NFS3_FATTR_SIZE_OFF);

		mi.mi_size = size;
		mi.mi_mtime_sec = rpc_get32(lf->lf_fattr + NFS3_FATTR_MTIME);
		mi.mi_mtime_nsec = rpc_get32(lf->lf_fattr + NFS3_FATTR_MTIME + 4);
		mi.mi_block = LN_BS;
		mi.mi_nblocks = lf->lf_nblocks;
		mi.mi_flags = CACHE_META_F_NOHASH;
	} else {
		old = cache_meta_profile(m, &nold);
		hashes = cache_meta_hash(m, 0);
	}
	rc = cache_meta_profile_rescale(lf->lf_prof, lf->lf_n, LN_BS,
					mi.mi_block, mi.mi_nblocks, &prof,
					&nprof);
	/* earlier boots first, then this boot's new blocks */
	if (!rc && !(all = malloc(((size_t)nold + nprof) * 4u + 4u)))
		rc = -ENOMEM;
	if (!rc) {
		if (nold) /* memcpy from NULL is undefined even for 0 */
			memcpy(all, old, (size_t)nold * 4u);
		k = nold;
		for (uint32_t i = 0; i < nprof; i++) {
			bool dup = false;

			/* profiles are short next to the hashes: the
			 * quadratic walk is bounded by --learn-boots tiny
			 * merges; keep it simple */
			for (uint32_t j = 0; j < nold && !dup; j++)
				dup = old[j] == prof[i];
			if (!dup)
				all[k++] = prof[i];
		}
		mi.mi_nprofile = k;
		mi.mi_flags |= CACHE_META_F_LEARNED;
		if (!ours || !mi.mi_boots)
			mi.mi_boots = mi.mi_boots + 1;
		rc = cache_meta_encode(&mi, hashes, all, &enc, &enclen);
	}
	cache_meta_free(m);
	free(prof);
	free(all);
	if (rc) {
		pub_end(lf, "cannot encode it", true);
		return false;
	}
	free(lf->lf_buf);
	lf->lf_buf = enc;
	lf->lf_buflen = enclen;
	lf->lf_nout = k;
	lf->lf_snap_n = lf->lf_n;
	lf->lf_boots = mi.mi_boots;
	lf->lf_outbs = mi.mi_block;
	return true;
}

static void pub_read(struct px_lfile *lf);

static void pub_read_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_lfile *lf = ctx;
	int st = nfs_status(err, res, len);
	size_t p = 8;
	uint32_t n;

	if (err == -ECANCELED) {
		pub_end(lf, NULL, false);
		return;
	}
	if (st != 0) {
		pub_end(lf, "its metadata file cannot be read", true);
		return;
	}
	if (rpc_get32(res + 4))
		p += NFS3_FATTR_SIZE;
	if (len < p + 12 || !(n = rpc_get32(res + p)) ||
	    n > lf->lf_buflen - lf->lf_pos || len - p - 12 < n) {
		pub_end(lf, "its metadata file cannot be read whole", true);
		return;
	}
	memcpy(lf->lf_buf + lf->lf_pos, res + p + 12, n);
	lf->lf_pos += n;
	pub_read(lf);
}

static void pub_read(struct px_lfile *lf)
{
	uint8_t args[4 + NFS3_FHSIZE + 12];
	struct rpc_xdr x;

	if (lf->lf_pos == lf->lf_buflen) {
		if (pub_compose(lf))
			pub_create(lf);
		return;
	}
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, lf->lf_mfh, lf->lf_mfhlen);
	rpc_xdr_put_u64(&x, lf->lf_pos);
	rpc_xdr_put_u32(&x, lf->lf_buflen - lf->lf_pos < LN_IO_CHUNK
				    ? (uint32_t)(lf->lf_buflen - lf->lf_pos)
				    : LN_IO_CHUNK);
	if (x.x_err || pub_call(lf, NFS3_READ, args, x.x_pos, pub_read_cb))
		pub_end(lf, "out of memory", true);
}

/* The LOOKUP of NAME.gvmeta: before reading it, and again before the
 * RENAME (recheck: it must be as we found it). */
static void pub_lookup_done(struct px_lfile *lf, bool recheck, int err,
			    const uint8_t *res, size_t len)
{
	int st = nfs_status(err, res, len);
	const uint8_t *fattr = NULL;
	uint32_t fhlen = 0;
	size_t p;

	if (err == -ECANCELED) {
		pub_end(lf, NULL, false);
		return;
	}
	if (st == 0) {
		fhlen = rpc_get32(res + 4);
		p = 8 + ((fhlen + 3u) & ~3u);
		if (fhlen && fhlen <= NFS3_FHSIZE &&
		    len >= p + 4 + NFS3_FATTR_SIZE && rpc_get32(res + p))
			fattr = res + p + 4;
		if (!fattr) {
			pub_end(lf, "its metadata file's LOOKUP reply has no "
				    "attributes", true);
			return;
		}
	} else if (st != 2 /* NOENT */) {
		pub_end(lf, "LOOKUP of its metadata file failed", true);
		return;
	}
	if (recheck) {
		/* unchanged: absent as it was, or the very same version */
		if (!fattr != !lf->lf_had_meta ||
		    (fattr && (memcmp(fattr + NFS3_FATTR_FILEID,
				      lf->lf_mattr + NFS3_FATTR_FILEID, 8) ||
			       memcmp(fattr + NFS3_FATTR_MTIME,
				      lf->lf_mattr + NFS3_FATTR_MTIME, 16)))) {
			pub_end(lf, "its metadata file changed meanwhile",
				true);
			return;
		}
		pub_rename(lf);
		return;
	}
	if (!fattr) {
		lf->lf_had_meta = false;
		if (pub_compose(lf))
			pub_create(lf);
		return;
	}
	lf->lf_had_meta = true;
	memcpy(lf->lf_mattr, fattr, NFS3_FATTR_SIZE);
	memcpy(lf->lf_mfh, res + 8, fhlen);
	lf->lf_mfhlen = fhlen;
	/* one we would not trust ourselves (planted by another user) is
	 * left alone: replacing it is not ours to do */
	if (cache_meta_trust(lf->lf_fattr, fattr) != CACHE_META_TRUSTED &&
	    cache_meta_trust(lf->lf_fattr, fattr) != CACHE_META_UNTRUSTED_OLDER) {
		char why[160];

		snprintf(why, sizeof(why), "its metadata file is untrusted "
			 "(%s); left alone",
			 cache_meta_trust_str(cache_meta_trust(lf->lf_fattr,
							       fattr)));
		pub_end(lf, why, false);
		return;
	}
	lf->lf_buflen = rpc_get64(fattr + NFS3_FATTR_SIZE_OFF);
	if (lf->lf_buflen < CACHE_META_HDR || lf->lf_buflen > CACHE_META_MAX ||
	    !(lf->lf_buf = malloc(lf->lf_buflen))) {
		pub_end(lf, "its metadata file has an impossible size; left "
			    "alone", false);
		return;
	}
	lf->lf_pos = 0;
	pub_read(lf);
}

static void pub_lookup_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	pub_lookup_done(ctx, false, err, res, len);
}

static void pub_recheck_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	pub_lookup_done(ctx, true, err, res, len);
}

static void pub_lookup(struct px_lfile *lf, bool recheck)
{
	uint8_t args[4 + NFS3_FHSIZE + 4 + LN_NAME_MAX + 16];
	char name[LN_NAME_MAX + 16];
	struct rpc_xdr x;

	meta_name(lf, name, sizeof(name));
	rpc_xdr_init(&x, args, sizeof(args));
	put_dirop(&x, lf, name);
	if (x.x_err || pub_call(lf, NFS3_LOOKUP, args, x.x_pos,
				recheck ? pub_recheck_cb : pub_lookup_cb))
		pub_end(lf, "out of memory", true);
}

/* The image's attributes now: the profile is for the version watched. */
static void pub_getattr_cb(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_lfile *lf = ctx;
	int st = nfs_status(err, res, len);

	if (err == -ECANCELED) {
		pub_end(lf, NULL, false);
		return;
	}
	if (st != 0 || len < 4 + NFS3_FATTR_SIZE) {
		pub_end(lf, "the image is gone", false);
		return;
	}
	if (!same_version(lf->lf_fattr, res + 4)) {
		pub_end(lf, "the image changed while it was read", false);
		return;
	}
	/* owner and ctime as they are now (trust is judged against them) */
	memcpy(lf->lf_fattr, res + 4, NFS3_FATTR_SIZE);
	lf->lf_cred.as_uid = rpc_get32(lf->lf_fattr + NFS3_FATTR_UID);
	lf->lf_cred.as_gid = rpc_get32(lf->lf_fattr + NFS3_FATTR_GID);
	lf->lf_cred.as_gids[0] = lf->lf_cred.as_gid;
	pub_lookup(lf, false);
}

static void pub_start(struct px_lfile *lf)
{
	uint8_t args[4 + NFS3_FHSIZE];
	struct rpc_xdr x;

	px_info("profile of %s: boot over (%u blocks touched, idle %u s); "
		"publishing", lf->lf_name, lf->lf_n,
		lf->lf_loop->lp_opts->o_learn_idle);
	lf->lf_state = LN_PUBLISH;
	/* The image's owner writes the metadata (so proxies trust it) and
	 * reads what is there; root only if the owner may not create. */
	memset(&lf->lf_cred, 0, sizeof(lf->lf_cred));
	lf->lf_cred.as_machine_len = 7;
	memcpy(lf->lf_cred.as_machine, "gridvfs", 8);
	lf->lf_cred.as_uid = rpc_get32(lf->lf_fattr + NFS3_FATTR_UID);
	lf->lf_cred.as_gid = rpc_get32(lf->lf_fattr + NFS3_FATTR_GID);
	lf->lf_cred.as_gids[0] = lf->lf_cred.as_gid;
	lf->lf_cred.as_ngids = 1;
	lf->lf_as_root = false;
	lf->lf_had_meta = false;
	lf->lf_tmp[0] = '\0';
	free(lf->lf_buf);
	lf->lf_buf = NULL;
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, lf->lf_fh, lf->lf_fhlen);
	if (x.x_err || pub_call(lf, NFS3_GETATTR, args, x.x_pos,
				pub_getattr_cb))
		pub_end(lf, "out of memory", true);
}

/* ---------------------------------------------------------------------- */
/* Life cycle                                                              */

int px_learn_open(struct px_loop *l)
{
	const struct px_opts *o = l->lp_opts;

	if (!o->o_learn)
		return 0;
	if (!(l->lp_learn = calloc(1, sizeof(*l->lp_learn))))
		return -ENOMEM;
	px_info("learning prefetch profiles: an image idle for %u s after "
		"its reads is published in NAME%s (first %u boot%s)",
		o->o_learn_idle, CACHE_META_SUFFIX, o->o_learn_boots,
		o->o_learn_boots == 1 ? "" : "s");
	return 0;
}

void px_learn_tick(struct px_loop *l)
{
	struct px_learn *ln = l->lp_learn;
	uint64_t now = px_now_ms(), idle;
	unsigned busy = 0;

	if (!ln || l->lp_draining)
		return;
	idle = (uint64_t)l->lp_opts->o_learn_idle * 1000u;
	ln_trim(ln, now, idle * LN_SESSION);
	for (struct px_lfile *lf = ln->ln_files; lf; lf = lf->lf_next)
		busy += lf->lf_state == LN_PUBLISH;
	for (struct px_lfile *lf = ln->ln_files; lf; lf = lf->lf_next) {
		if (lf->lf_state != LN_WATCH || now - lf->lf_last_ms < idle)
			continue;
		if (lf->lf_n > lf->lf_pub_n) {
			if (busy >= LN_MAX_PUBLISH)
				continue; /* at a later tick */
			pub_start(lf);
			busy += lf->lf_state == LN_PUBLISH;
		} else if (lf->lf_published &&
			 now - lf->lf_last_ms >= idle * LN_SESSION) {
			px_debug("profile of %s: boot over for good (%u blocks)",
				 lf->lf_name, lf->lf_n);
			lf_done(ln, lf);
		}
	}
}

void px_learn_stats(struct px_loop *l, uint64_t *watching,
		    uint64_t *published, uint64_t *skipped, uint64_t *failed)
{
	struct px_learn *ln = l->lp_learn;

	*watching = ln ? ln->ln_active : 0;
	*published = ln ? ln->ln_published : 0;
	*skipped = ln ? ln->ln_skipped : 0;
	*failed = ln ? ln->ln_failed : 0;
}

void px_learn_close(struct px_loop *l)
{
	struct px_learn *ln = l->lp_learn;

	if (!ln)
		return;
	if (ln->ln_published || ln->ln_failed)
		px_info("learned profiles: %llu published, %llu left alone, "
			"%llu failed", (unsigned long long)ln->ln_published,
			(unsigned long long)ln->ln_skipped,
			(unsigned long long)ln->ln_failed);
	while (ln->ln_files) {
		struct px_lfile *lf = ln->ln_files;

		ln->ln_files = lf->lf_next;
		lf_release(lf);
		free(lf);
	}
	free(ln);
	l->lp_learn = NULL;
}
