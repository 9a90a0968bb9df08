/*
 * rpc/nfs3.c — NFSv3 (RFC 1813) argument and result walkers: validate a
 * message body in place and hand the caller pointers to every attribute,
 * identity and file handle in it, so a proxy can inspect or patch them.
 */
#include "rpc/rpc.h"

/* ---------------------------------------------------------------------- */
/* The walk: a cursor, the visitor (NULL on the validation pass), and the  */
/* running file handle count.  Decoding errors are sticky in the cursor.   */

struct nfs3_walk {
	struct rpc_xdr w_x;
	const struct rpc_nfs3_visit *w_v;
	void *w_ctx;
	unsigned w_nfh;
};

/* Call a visitor callback if it is set and the walk is still clean. */
#define NFS3_VISIT(w, cb, ...)                                              \
	do {                                                                 \
		if ((w)->w_v && (w)->w_v->cb && !(w)->w_x.x_err)             \
			(w)->w_v->cb((w)->w_ctx, __VA_ARGS__);               \
	} while (0)

typedef ssize_t (*nfs3_pass_fn)(uint32_t proc, uint8_t *buf, size_t len,
				const struct rpc_nfs3_visit *v, void *ctx);

static void nfs3_walk_fail(struct nfs3_walk *w, int err)
{
	if (!w->w_x.x_err)
		w->w_x.x_err = err;
}

/* Decoders that yield 0 / false once the walk has failed. */
static uint32_t nfs3_walk_u32(struct nfs3_walk *w)
{
	uint32_t v;

	return rpc_xdr_u32(&w->w_x, &v) ? 0 : v;
}

static uint64_t nfs3_walk_u64(struct nfs3_walk *w)
{
	uint64_t v;

	return rpc_xdr_u64(&w->w_x, &v) ? 0 : v;
}

static bool nfs3_walk_bool(struct nfs3_walk *w)
{
	bool v;

	return rpc_xdr_bool(&w->w_x, &v) ? false : v;
}

/* An enum that must lie in [lo, hi]; UINT32_MAX once the walk failed. */
static uint32_t nfs3_walk_enum(struct nfs3_walk *w, uint32_t lo, uint32_t hi)
{
	uint32_t v;

	if (rpc_xdr_u32(&w->w_x, &v))
		return UINT32_MAX;
	if (v < lo || v > hi) {
		nfs3_walk_fail(w, -EBADMSG);
		return UINT32_MAX;
	}
	return v;
}

/* An nfs_fh3 (opaque data<NFS3_FHSIZE>), numbered in message order. */
static void nfs3_walk_fh(struct nfs3_walk *w)
{
	unsigned n = w->w_nfh++;
	uint32_t len;
	uint8_t *fh = rpc_xdr_opaque(&w->w_x, NFS3_FHSIZE, &len);

	if (fh)
		NFS3_VISIT(w, v_fh, n, fh, len);
}

/*
 * Validate first, then visit: callbacks run only on a body that parsed
 * completely, so a caller never acts on, or half-patches, a message that
 * turns out to be malformed.  Data is skipped, not read, so the extra pass
 * costs a few dozen word reads even for a large READ or WRITE.
 */
static ssize_t nfs3_walk_twice(nfs3_pass_fn pass, uint32_t proc,
			       uint8_t *buf, size_t len,
			       const struct rpc_nfs3_visit *v, void *ctx)
{
	ssize_t r = pass(proc, buf, len, NULL, NULL);

	if (r < 0 || !v)
		return r;
	return pass(proc, buf, len, v, ctx);
}

static void nfs3_walk_init(struct nfs3_walk *w, uint8_t *buf, size_t len,
			   const struct rpc_nfs3_visit *v, void *ctx)
{
	rpc_xdr_init(&w->w_x, buf, len);
	w->w_v = v;
	w->w_ctx = ctx;
	w->w_nfh = 0;
}

/* Bytes consumed, or the walk's error. */
static ssize_t nfs3_walk_end(const struct nfs3_walk *w)
{
	return w->w_x.x_err ? w->w_x.x_err : (ssize_t)w->w_x.x_pos;
}

/*
 * Bounds the RFC leaves open (filename3 and nfspath3 are string<>): a
 * name component as on every Linux file system (NAME_MAX), a symlink
 * target as the servers' PATH_MAX (4096 on Linux: knfsd and ganesha
 * pass it to symlink(2), which takes up to 4095 bytes).
 * In a call, a well-formed string above its bound is a legal request the
 * server answers with NFS3ERR_NAMETOOLONG, so the walk says -ENAMETOOLONG
 * for it and the proxy answers that, not GARBAGE_ARGS (which a client
 * reports as EIO/EFAULT instead of ENAMETOOLONG).
 */
#define NFS3_NAME_MAX 255u
#define NFS3_PATH_MAX 4096u

enum { NF3REG = 1, NF3BLK = 3, NF3CHR = 4, NF3SOCK = 6, NF3FIFO = 7 };
enum { SET_TO_CLIENT_TIME = 2, EXCLUSIVE = 2, FILE_SYNC = 2 };

/* ---------------------------------------------------------------------- */
/* Shared XDR pieces (RFC 1813 section 2.6)                                */

static void nfs3_name(struct nfs3_walk *w)
{
	uint32_t n;

	rpc_xdr_opaque(&w->w_x, NFS3_NAME_MAX, &n);
}

static void nfs3_path(struct nfs3_walk *w)
{
	uint32_t n;

	rpc_xdr_opaque(&w->w_x, NFS3_PATH_MAX, &n);
}

/* A name or path in a call: above max but inside the message is
 * -ENAMETOOLONG (the request is well formed, only refused); a length
 * the message cannot hold stays -EMSGSIZE (garbage). */
static void nfs3_arg_string(struct nfs3_walk *w, uint32_t max)
{
	uint32_t n;

	if (rpc_xdr_u32(&w->w_x, &n))
		return;
	if (n > max) {
		nfs3_walk_fail(w, n <= w->w_x.x_len - w->w_x.x_pos
					  ? -ENAMETOOLONG : -EMSGSIZE);
		return;
	}
	rpc_xdr_fixed(&w->w_x, n);
}

static void nfs3_diropargs(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
	nfs3_arg_string(w, NFS3_NAME_MAX);
}

/* An fattr3; its ftype3 must be one of the seven file types. */
static void nfs3_fattr(struct nfs3_walk *w)
{
	uint8_t *p = rpc_xdr_fixed(&w->w_x, NFS3_FATTR_SIZE);
	uint32_t type;

	if (!p)
		return;
	type = rpc_get32(p);
	if (type < NF3REG || type > NF3FIFO) {
		nfs3_walk_fail(w, -EBADMSG);
		return;
	}
	NFS3_VISIT(w, v_fattr, p);
}

static void nfs3_post_op_attr(struct nfs3_walk *w)
{
	if (nfs3_walk_bool(w))
		nfs3_fattr(w);
}

static void nfs3_wcc_data(struct nfs3_walk *w)
{
	uint8_t *pre;

	if (nfs3_walk_bool(w)) {
		pre = rpc_xdr_fixed(&w->w_x, NFS3_WCC_ATTR_SIZE);
		if (pre)
			NFS3_VISIT(w, v_wcc_pre, pre);
	}
	nfs3_post_op_attr(w);
}

static void nfs3_post_op_fh(struct nfs3_walk *w)
{
	if (nfs3_walk_bool(w))
		nfs3_walk_fh(w);
}

/* set_atime / set_mtime: a time_how, with an nfstime3 for client time. */
static void nfs3_set_time(struct nfs3_walk *w)
{
	if (nfs3_walk_enum(w, 0, SET_TO_CLIENT_TIME) == SET_TO_CLIENT_TIME)
		rpc_xdr_skip(&w->w_x, 8);
}

/* A set_uid3 / set_gid3: pointer to the id word when set, else NULL. */
static uint8_t *nfs3_set_id(struct nfs3_walk *w)
{
	return nfs3_walk_bool(w) ? rpc_xdr_fixed(&w->w_x, 4) : NULL;
}

static void nfs3_sattr(struct nfs3_walk *w)
{
	uint8_t *uid, *gid;

	if (nfs3_walk_bool(w))		/* set_mode3 */
		rpc_xdr_skip(&w->w_x, 4);
	uid = nfs3_set_id(w);
	gid = nfs3_set_id(w);
	if (nfs3_walk_bool(w))		/* set_size3 */
		rpc_xdr_skip(&w->w_x, 8);
	nfs3_set_time(w);
	nfs3_set_time(w);
	NFS3_VISIT(w, v_sattr, uid, gid);
}

/* ---------------------------------------------------------------------- */
/* Arguments (RFC 1813 section 3.3)                                        */

static void nfs3_args_void(struct nfs3_walk *w)
{
	(void)w;
}

/* GETATTR, READLINK, FSSTAT, FSINFO, PATHCONF: a bare nfs_fh3. */
static void nfs3_args_fh(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
}

static void nfs3_args_setattr(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
	nfs3_sattr(w);
	if (nfs3_walk_bool(w))		/* sattrguard3 obj_ctime */
		rpc_xdr_skip(&w->w_x, 8);
}

static void nfs3_args_access(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
	nfs3_walk_u32(w);
}

static void nfs3_args_read(struct nfs3_walk *w)
{
	uint64_t off;
	uint32_t count;

	nfs3_walk_fh(w);
	off = nfs3_walk_u64(w);
	count = nfs3_walk_u32(w);
	NFS3_VISIT(w, v_read_args, off, count);
}

/*
 * WRITE: the data's length must equal count.  RFC 1813 says count is "the
 * number of bytes of data to be written" and data is that data, so a
 * mismatch has no meaning; Linux nfsd refuses it as garbage too.  Refusing
 * keeps a proxy from caching or forwarding a length nobody agreed on.
 */
static void nfs3_args_write(struct nfs3_walk *w)
{
	uint64_t off;
	uint32_t count, stable, len;
	uint8_t *data;

	nfs3_walk_fh(w);
	off = nfs3_walk_u64(w);
	count = nfs3_walk_u32(w);
	stable = nfs3_walk_enum(w, 0, FILE_SYNC);
	data = rpc_xdr_opaque(&w->w_x, UINT32_MAX, &len);
	if (!data)
		return;
	if (len != count) {
		nfs3_walk_fail(w, -EBADMSG);
		return;
	}
	NFS3_VISIT(w, v_write_args, off, count, stable, data, len);
}

/* CREATE: UNCHECKED and GUARDED carry a sattr3, EXCLUSIVE a verifier. */
static void nfs3_args_create(struct nfs3_walk *w)
{
	nfs3_diropargs(w);
	if (nfs3_walk_enum(w, 0, EXCLUSIVE) == EXCLUSIVE)
		rpc_xdr_skip(&w->w_x, NFS3_CREATEVERFSIZE);
	else
		nfs3_sattr(w);
}

static void nfs3_args_mkdir(struct nfs3_walk *w)
{
	nfs3_diropargs(w);
	nfs3_sattr(w);
}

static void nfs3_args_symlink(struct nfs3_walk *w)
{
	nfs3_diropargs(w);
	nfs3_sattr(w);
	nfs3_arg_string(w, NFS3_PATH_MAX);
}

/* MKNOD: devices carry sattr3 + specdata3, sockets and fifos a sattr3,
 * the other file types nothing (the server answers NFS3ERR_BADTYPE). */
static void nfs3_args_mknod(struct nfs3_walk *w)
{
	nfs3_diropargs(w);
	switch (nfs3_walk_enum(w, NF3REG, NF3FIFO)) {
	case NF3CHR:
	case NF3BLK:
		nfs3_sattr(w);
		rpc_xdr_skip(&w->w_x, 8);
		break;
	case NF3SOCK:
	case NF3FIFO:
		nfs3_sattr(w);
		break;
	default:
		break;
	}
}

/* LOOKUP, REMOVE, RMDIR: a diropargs3. */
static void nfs3_args_dirop(struct nfs3_walk *w)
{
	nfs3_diropargs(w);
}

static void nfs3_args_rename(struct nfs3_walk *w)
{
	nfs3_diropargs(w);
	nfs3_diropargs(w);
}

static void nfs3_args_link(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
	nfs3_diropargs(w);
}

static void nfs3_args_readdir(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
	rpc_xdr_skip(&w->w_x, 8 + NFS3_COOKIEVERFSIZE + 4);
}

static void nfs3_args_readdirplus(struct nfs3_walk *w)
{
	nfs3_walk_fh(w);
	rpc_xdr_skip(&w->w_x, 8 + NFS3_COOKIEVERFSIZE + 4 + 4);
}

static void nfs3_args_commit(struct nfs3_walk *w)
{
	uint64_t off;
	uint32_t count;

	nfs3_walk_fh(w);
	off = nfs3_walk_u64(w);
	count = nfs3_walk_u32(w);
	NFS3_VISIT(w, v_commit_args, off, count);
}

/* ---------------------------------------------------------------------- */
/* Results: ok says whether the resok arm follows (status NFS3_OK)         */

static void nfs3_res_void(struct nfs3_walk *w, bool ok)
{
	(void)w;
	(void)ok;
}

static void nfs3_res_getattr(struct nfs3_walk *w, bool ok)
{
	if (ok)
		nfs3_fattr(w);
}

/* SETATTR, REMOVE, RMDIR: a wcc_data in both arms. */
static void nfs3_res_wcc(struct nfs3_walk *w, bool ok)
{
	(void)ok;
	nfs3_wcc_data(w);
}

static void nfs3_res_lookup(struct nfs3_walk *w, bool ok)
{
	if (ok) {
		nfs3_walk_fh(w);
		nfs3_post_op_attr(w);	/* object */
	}
	nfs3_post_op_attr(w);		/* directory */
}

static void nfs3_res_access(struct nfs3_walk *w, bool ok)
{
	nfs3_post_op_attr(w);
	if (ok)
		nfs3_walk_u32(w);
}

static void nfs3_res_readlink(struct nfs3_walk *w, bool ok)
{
	nfs3_post_op_attr(w);
	if (ok)
		nfs3_path(w);
}

/*
 * READ resok: the data's length must equal count, for the same reason as
 * WRITE; the Linux client refuses a mismatch (-EIO).  That count is at most
 * the call's count is the caller's check: this walker never sees the call.
 */
static void nfs3_res_read(struct nfs3_walk *w, bool ok)
{
	uint32_t count, len;
	uint8_t *data;
	bool eof;

	nfs3_post_op_attr(w);
	if (!ok)
		return;
	count = nfs3_walk_u32(w);
	eof = nfs3_walk_bool(w);
	data = rpc_xdr_opaque(&w->w_x, UINT32_MAX, &len);
	if (!data)
		return;
	if (len != count) {
		nfs3_walk_fail(w, -EBADMSG);
		return;
	}
	NFS3_VISIT(w, v_read_res, count, eof, data, len);
}

static void nfs3_res_write(struct nfs3_walk *w, bool ok)
{
	uint32_t count, committed;
	uint8_t *verf;

	nfs3_wcc_data(w);
	if (!ok)
		return;
	count = nfs3_walk_u32(w);
	committed = nfs3_walk_enum(w, 0, FILE_SYNC);
	verf = rpc_xdr_fixed(&w->w_x, NFS3_WRITEVERFSIZE);
	if (verf)
		NFS3_VISIT(w, v_write_res, count, committed, verf);
}

/* CREATE, MKDIR, SYMLINK, MKNOD. */
static void nfs3_res_create(struct nfs3_walk *w, bool ok)
{
	if (ok) {
		nfs3_post_op_fh(w);
		nfs3_post_op_attr(w);
	}
	nfs3_wcc_data(w);
}

static void nfs3_res_rename(struct nfs3_walk *w, bool ok)
{
	(void)ok;
	nfs3_wcc_data(w);		/* fromdir */
	nfs3_wcc_data(w);		/* todir */
}

static void nfs3_res_link(struct nfs3_walk *w, bool ok)
{
	(void)ok;
	nfs3_post_op_attr(w);		/* file */
	nfs3_wcc_data(w);		/* linkdir */
}

/*
 * READDIR / READDIRPLUS entry lists.  Each entry costs at least its
 * value-follows word, and the cursor never moves backwards, so the loop is
 * bounded by the message; an error ends it through the sticky cursor.
 */
static void nfs3_res_readdir(struct nfs3_walk *w, bool ok)
{
	nfs3_post_op_attr(w);
	if (!ok)
		return;
	rpc_xdr_skip(&w->w_x, NFS3_COOKIEVERFSIZE);
	while (nfs3_walk_bool(w)) {
		rpc_xdr_skip(&w->w_x, 8);	/* fileid */
		nfs3_name(w);
		rpc_xdr_skip(&w->w_x, 8);	/* cookie */
	}
	nfs3_walk_bool(w);			/* eof */
}

static void nfs3_res_readdirplus(struct nfs3_walk *w, bool ok)
{
	nfs3_post_op_attr(w);
	if (!ok)
		return;
	rpc_xdr_skip(&w->w_x, NFS3_COOKIEVERFSIZE);
	while (nfs3_walk_bool(w)) {
		rpc_xdr_skip(&w->w_x, 8);	/* fileid */
		nfs3_name(w);
		rpc_xdr_skip(&w->w_x, 8);	/* cookie */
		nfs3_post_op_attr(w);
		nfs3_post_op_fh(w);
	}
	nfs3_walk_bool(w);			/* eof */
}

static void nfs3_res_fsstat(struct nfs3_walk *w, bool ok)
{
	nfs3_post_op_attr(w);
	if (ok)		/* six size3 counters, invarsec */
		rpc_xdr_skip(&w->w_x, 6 * 8 + 4);
}

static void nfs3_res_fsinfo(struct nfs3_walk *w, bool ok)
{
	nfs3_post_op_attr(w);
	if (ok)		/* seven uint32, maxfilesize, time_delta, properties */
		rpc_xdr_skip(&w->w_x, 7 * 4 + 8 + 8 + 4);
}

static void nfs3_res_pathconf(struct nfs3_walk *w, bool ok)
{
	int i;

	nfs3_post_op_attr(w);
	if (!ok)
		return;
	rpc_xdr_skip(&w->w_x, 4 + 4);	/* linkmax, name_max */
	for (i = 0; i < 4; i++)		/* no_trunc .. case_preserving */
		nfs3_walk_bool(w);
}

static void nfs3_res_commit(struct nfs3_walk *w, bool ok)
{
	uint8_t *verf;

	nfs3_wcc_data(w);
	if (!ok)
		return;
	verf = rpc_xdr_fixed(&w->w_x, NFS3_WRITEVERFSIZE);
	if (verf)
		NFS3_VISIT(w, v_commit_res, verf);
}

/* ---------------------------------------------------------------------- */
/* Procedure table                                                         */

struct nfs3_proc_desc {
	const char *pd_name;
	bool pd_nonidempotent;
	void (*pd_args)(struct nfs3_walk *w);
	void (*pd_res)(struct nfs3_walk *w, bool ok);
};

static const struct nfs3_proc_desc nfs3_procs[NFS3_NPROC] = {
	[NFS3_NULL] = { "NULL", false, nfs3_args_void, nfs3_res_void },
	[NFS3_GETATTR] = { "GETATTR", false, nfs3_args_fh, nfs3_res_getattr },
	[NFS3_SETATTR] = { "SETATTR", true, nfs3_args_setattr, nfs3_res_wcc },
	[NFS3_LOOKUP] = { "LOOKUP", false, nfs3_args_dirop, nfs3_res_lookup },
	[NFS3_ACCESS] = { "ACCESS", false, nfs3_args_access, nfs3_res_access },
	[NFS3_READLINK] = { "READLINK", false, nfs3_args_fh,
			    nfs3_res_readlink },
	[NFS3_READ] = { "READ", false, nfs3_args_read, nfs3_res_read },
	[NFS3_WRITE] = { "WRITE", true, nfs3_args_write, nfs3_res_write },
	[NFS3_CREATE] = { "CREATE", true, nfs3_args_create, nfs3_res_create },
	[NFS3_MKDIR] = { "MKDIR", true, nfs3_args_mkdir, nfs3_res_create },
	[NFS3_SYMLINK] = { "SYMLINK", true, nfs3_args_symlink,
			   nfs3_res_create },
	[NFS3_MKNOD] = { "MKNOD", true, nfs3_args_mknod, nfs3_res_create },
	[NFS3_REMOVE] = { "REMOVE", true, nfs3_args_dirop, nfs3_res_wcc },
	[NFS3_RMDIR] = { "RMDIR", true, nfs3_args_dirop, nfs3_res_wcc },
	[NFS3_RENAME] = { "RENAME", true, nfs3_args_rename, nfs3_res_rename },
	[NFS3_LINK] = { "LINK", true, nfs3_args_link, nfs3_res_link },
	[NFS3_READDIR] = { "READDIR", false, nfs3_args_readdir,
			   nfs3_res_readdir },
	[NFS3_READDIRPLUS] = { "READDIRPLUS", false, nfs3_args_readdirplus,
			       nfs3_res_readdirplus },
	[NFS3_FSSTAT] = { "FSSTAT", false, nfs3_args_fh, nfs3_res_fsstat },
	[NFS3_FSINFO] = { "FSINFO", false, nfs3_args_fh, nfs3_res_fsinfo },
	[NFS3_PATHCONF] = { "PATHCONF", false, nfs3_args_fh,
			    nfs3_res_pathconf },
	[NFS3_COMMIT] = { "COMMIT", false, nfs3_args_commit,
			  nfs3_res_commit },
};

/* One pass over a call body; v == NULL validates only. */
static ssize_t nfs3_pass_call(uint32_t proc, uint8_t *buf, size_t len,
			      const struct rpc_nfs3_visit *v, void *ctx)
{
	struct nfs3_walk w;

	nfs3_walk_init(&w, buf, len, v, ctx);
	nfs3_procs[proc].pd_args(&w);
	return nfs3_walk_end(&w);
}

/* One pass over a reply body: the nfsstat3, then the arm it selects. */
static ssize_t nfs3_pass_reply(uint32_t proc, uint8_t *buf, size_t len,
			       const struct rpc_nfs3_visit *v, void *ctx)
{
	struct nfs3_walk w;
	uint32_t status;

	nfs3_walk_init(&w, buf, len, v, ctx);
	if (proc != NFS3_NULL) {
		status = nfs3_walk_u32(&w);
		NFS3_VISIT(&w, v_status, status);
		nfs3_procs[proc].pd_res(&w, status == NFS3_OK);
	}
	return nfs3_walk_end(&w);
}

ssize_t rpc_nfs3_walk_call(uint32_t proc, uint8_t *buf, size_t len,
			   const struct rpc_nfs3_visit *v, void *ctx)
{
	if (proc >= NFS3_NPROC)
		return -EINVAL;
	return nfs3_walk_twice(nfs3_pass_call, proc, buf, len, v, ctx);
}

ssize_t rpc_nfs3_walk_reply(uint32_t proc, uint8_t *buf, size_t len,
			    const struct rpc_nfs3_visit *v, void *ctx)
{
	if (proc >= NFS3_NPROC)
		return -EINVAL;
	return nfs3_walk_twice(nfs3_pass_reply, proc, buf, len, v, ctx);
}

const char *rpc_nfs3_proc_name(uint32_t proc)
{
	return proc < NFS3_NPROC ? nfs3_procs[proc].pd_name : "UNKNOWN";
}

bool rpc_nfs3_proc_nonidempotent(uint32_t proc)
{
	return proc < NFS3_NPROC && nfs3_procs[proc].pd_nonidempotent;
}
