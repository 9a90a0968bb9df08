/*
 * rpc/mount3.c — MOUNTv3 (RFC 1813 section 5) argument and result walkers:
 * validate a body in place and show the caller the MNT reply's file
 * handle, so a proxy can replace the root handle it hands to clients.
 */
#include "rpc/rpc.h"

/* MNT's auth_flavors<> has no bound in the RFC; real servers list two or
 * three flavors, so 64 is generous and keeps the skip trivially sized. */
#define MNT3_MAX_FLAVORS 64u

/* The walk state; v is NULL on the validation pass. */
struct mnt3_walk {
	struct rpc_xdr m_x;
	const struct rpc_nfs3_visit *m_v;
	void *m_ctx;
};

static bool mnt3_bool(struct mnt3_walk *m)
{
	bool v;

	return rpc_xdr_bool(&m->m_x, &v) ? false : v;
}

static void mnt3_dirpath(struct mnt3_walk *m)
{
	uint32_t n;

	rpc_xdr_opaque(&m->m_x, MNT3_PATHLEN, &n);
}

static void mnt3_name(struct mnt3_walk *m)
{
	uint32_t n;

	rpc_xdr_opaque(&m->m_x, MNT3_NAMELEN, &n);
}

/* MNT, UMNT: a dirpath; NULL, DUMP, UMNTALL, EXPORT: void. */
static void mnt3_args(struct mnt3_walk *m, uint32_t proc)
{
	if (proc == MNT3_MNT || proc == MNT3_UMNT)
		mnt3_dirpath(m);
}

/* mountres3: a mountstat3 (any value; only MNT3_OK has a body), then the
 * fhandle3 and the auth flavor list. */
static void mnt3_res_mnt(struct mnt3_walk *m)
{
	uint32_t status, len, nflavors;
	uint8_t *fh;

	if (rpc_xdr_u32(&m->m_x, &status))
		return;
	if (m->m_v && m->m_v->v_status)
		m->m_v->v_status(m->m_ctx, status);
	if (status != 0)
		return;
	fh = rpc_xdr_opaque(&m->m_x, NFS3_FHSIZE, &len);
	if (fh && m->m_v && m->m_v->v_fh)
		m->m_v->v_fh(m->m_ctx, 0, fh, len);
	if (rpc_xdr_u32(&m->m_x, &nflavors))
		return;
	if (nflavors > MNT3_MAX_FLAVORS) {
		m->m_x.x_err = -EMSGSIZE;
		return;
	}
	rpc_xdr_skip(&m->m_x, (size_t)nflavors * 4);
}

/*
 * The linked lists: each node costs at least its value-follows word and
 * the cursor only moves forward, so the message bounds them; an error
 * ends every loop through the sticky cursor.
 */
static void mnt3_res_dump(struct mnt3_walk *m)
{
	while (mnt3_bool(m)) {
		mnt3_name(m);		/* ml_hostname */
		mnt3_dirpath(m);	/* ml_directory */
	}
}

static void mnt3_res_export(struct mnt3_walk *m)
{
	while (mnt3_bool(m)) {
		mnt3_dirpath(m);	/* ex_dir */
		while (mnt3_bool(m))
			mnt3_name(m);	/* gr_name */
	}
}

static void mnt3_res(struct mnt3_walk *m, uint32_t proc)
{
	switch (proc) {
	case MNT3_MNT:
		mnt3_res_mnt(m);
		break;
	case MNT3_DUMP:
		mnt3_res_dump(m);
		break;
	case MNT3_EXPORT:
		mnt3_res_export(m);
		break;
	default:		/* NULL, UMNT, UMNTALL: void */
		break;
	}
}

/* One pass; callbacks run only when v is set, i.e. after validation. */
static ssize_t mnt3_pass(bool reply, uint32_t proc, uint8_t *buf, size_t len,
			 const struct rpc_nfs3_visit *v, void *ctx)
{
	struct mnt3_walk m;

	rpc_xdr_init(&m.m_x, buf, len);
	m.m_v = v;
	m.m_ctx = ctx;
	if (reply)
		mnt3_res(&m, proc);
	else
		mnt3_args(&m, proc);
	return m.m_x.x_err ? m.m_x.x_err : (ssize_t)m.m_x.x_pos;
}

/* Validate, then visit: as in rpc/nfs3.c, callers never see callbacks
 * for a body that later turns out to be malformed. */
static ssize_t mnt3_walk(bool reply, uint32_t proc, uint8_t *buf, size_t len,
			 const struct rpc_nfs3_visit *v, void *ctx)
{
	ssize_t r;

	if (proc >= MNT3_NPROC)
		return -EINVAL;
	r = mnt3_pass(reply, proc, buf, len, NULL, NULL);
	if (r < 0 || !v)
		return r;
	return mnt3_pass(reply, proc, buf, len, v, ctx);
}

ssize_t rpc_mnt3_walk_call(uint32_t proc, uint8_t *buf, size_t len,
			   const struct rpc_nfs3_visit *v, void *ctx)
{
	return mnt3_walk(false, proc, buf, len, v, ctx);
}

ssize_t rpc_mnt3_walk_reply(uint32_t proc, uint8_t *buf, size_t len,
			    const struct rpc_nfs3_visit *v, void *ctx)
{
	return mnt3_walk(true, proc, buf, len, v, ctx);
}

const char *rpc_mnt3_proc_name(uint32_t proc)
{
	static const char *const names[MNT3_NPROC] = {
		[MNT3_NULL] = "NULL",	  [MNT3_MNT] = "MNT",
		[MNT3_DUMP] = "DUMP",	  [MNT3_UMNT] = "UMNT",
		[MNT3_UMNTALL] = "UMNTALL", [MNT3_EXPORT] = "EXPORT",
	};

	return proc < MNT3_NPROC ? names[proc] : "UNKNOWN";
}
