/*
 * proxy/exports.c — several exports in one daemon ([export NAME] sections).
 *
 * Each export is an engine (a struct px_loop of its own: upstream links,
 * pending calls, read cache, write-back, identity map, options); engine 0
 * also owns the listener, the clients, signals and the timer, and every
 * engine runs on the one loop thread.  Which engine a call belongs to:
 *
 *  - MOUNT MNT: the export whose path is the longest prefix of the path
 *    the client mounts (at a '/' boundary); the path is rewritten to the
 *    export's upstream-path before it goes upstream.
 *  - NFS: every file handle the daemon gives out carries a 4-byte tag in
 *    front of upstream's handle: the first 4 bytes of SHA-256("gridvfs
 *    export " NAME).  A call's handles are checked (all of one export,
 *    else NFS3ERR_XDEV for RENAME/LINK, NFS3ERR_STALE otherwise), the tag
 *    is taken off, and the call goes to that export's upstream; the
 *    reply's handles get the tag back.  The tag is derived from the name,
 *    not from the section's position, so handles stay valid across
 *    restarts and reordered configuration files; an export that is gone
 *    answers NFS3ERR_STALE, never another export's file.
 *  - MOUNT NULL, DUMP, EXPORT, UMNT, UMNTALL and NFS NULL are answered
 *    here: no single upstream owns them.
 *
 * Upstream handles of more than 60 bytes leave no room for the tag (NFSv3
 * handles are at most 64): such replies fail with NFS3ERR_SERVERFAULT and
 * a log line.  Tags cost READDIRPLUS 4 bytes per entry, so its maxcount is
 * lowered by an eighth on the way up (an entry with a handle is at least
 * 32 bytes), keeping the reply within what the client asked for.
 *
 * With a single export (no sections) none of this runs: handles and paths
 * pass unchanged, as they always did.
 */
#include "config.h"
#include "proxy/core.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define TAG 4u
#define NFS3ERR_XDEV 18u
#define NFS3ERR_STALE 70u
#define NFS3ERR_BADHANDLE 10001u
#define NFS3ERR_SERVERFAULT 10006u
#define MNT3ERR_NOENT 2u

void px_export_tag(const char *name, uint8_t tag[4])
{
	uint8_t md[32];
	unsigned mdlen = sizeof(md);
	char buf[PX_EXPORT_NAME_MAX + 32];
	int n = snprintf(buf, sizeof(buf), "gridvfs export %s", name);

	if (EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1)
		memset(md, 0, sizeof(md)); /* checked for collisions at start */
	memcpy(tag, md, TAG);
}

/* ---------------------------------------------------------------------- */
/* Where the handles are                                                   */

struct fhlist {
	unsigned n, cap;
	uint32_t *off; /* offset of each handle's data in the message */
	uint32_t *len;
	uint8_t *base;
	bool oom;
};

static void fh_note(void *ctx, unsigned n, uint8_t *fh, uint32_t len)
{
	struct fhlist *f = ctx;

	(void)n;
	if (f->n == f->cap) {
		unsigned cap = f->cap ? f->cap * 2 : 8;
		uint32_t *o = realloc(f->off, cap * sizeof(*o));
		uint32_t *l;

		if (!o) {
			f->oom = true;
			return;
		}
		f->off = o;
		if (!(l = realloc(f->len, cap * sizeof(*l)))) {
			f->oom = true;
			return;
		}
		f->len = l;
		f->cap = cap;
	}
	f->off[f->n] = (uint32_t)(fh - f->base);
	f->len[f->n++] = len;
}

static void fh_free(struct fhlist *f)
{
	free(f->off);
	free(f->len);
}

static int fh_find(uint32_t prog, uint32_t proc, bool call, uint8_t *msg,
		   size_t off, size_t len, struct fhlist *f)
{
	struct rpc_nfs3_visit v = {.v_fh = fh_note};
	ssize_t used;

	memset(f, 0, sizeof(*f));
	f->base = msg;
	if (prog == RPC_PROG_NFS)
		used = call ? rpc_nfs3_walk_call(proc, msg + off, len - off, &v, f)
			    : rpc_nfs3_walk_reply(proc, msg + off, len - off, &v, f);
	else
		used = call ? rpc_mnt3_walk_call(proc, msg + off, len - off, &v, f)
			    : rpc_mnt3_walk_reply(proc, msg + off, len - off, &v, f);
	if (used < 0 || f->oom) {
		fh_free(f);
		return used < 0 ? (int)used : -ENOMEM;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Local answers                                                           */

static void send_built(struct px_client *c, struct px_msg *m,
		       struct rpc_xdr *x)
{
	if (!x->x_err) {
		m->m_len = x->x_pos;
		c->cl_loop->lp_stats.s_errors_local++;
		px_client_send(c, m);
	}
	px_msg_unref(m);
}

static void reply_status(struct px_client *c, const struct rpc_call *h,
			 uint32_t status)
{
	struct px_msg *m = px_msg_new(256);
	struct rpc_xdr x;

	if (!m)
		return;
	rpc_xdr_init(&x, px_msg_data(m), 256);
	px_nfs3_error_reply(&x, h->c_xid, h->c_prog, h->c_proc, status);
	send_built(c, m, &x);
}

/* NULL, UMNT, UMNTALL (void), DUMP (an empty list), EXPORT (ours). */
static void reply_mount_local(struct px_loop *main, struct px_client *c,
			      const struct rpc_call *h)
{
	size_t cap = 64;
	struct px_msg *m;
	struct rpc_xdr x;

	for (unsigned i = 0; i < main->lp_neng; i++)
		cap += 16 + strlen(main->lp_eng[i]->lp_opts->o_export_path);
	if (!(m = px_msg_new(cap)))
		return;
	rpc_xdr_init(&x, px_msg_data(m), cap);
	rpc_reply_accepted(&x, h->c_xid, RPC_ACC_SUCCESS, 0, 0);
	if (h->c_prog == RPC_PROG_MOUNT && h->c_proc == MNT3_DUMP) {
		rpc_xdr_put_u32(&x, 0);
	} else if (h->c_prog == RPC_PROG_MOUNT && h->c_proc == MNT3_EXPORT) {
		for (unsigned i = 0; i < main->lp_neng; i++) {
			const char *p = main->lp_eng[i]->lp_opts->o_export_path;

			rpc_xdr_put_u32(&x, 1);
			rpc_xdr_put_opaque(&x, p, (uint32_t)strlen(p));
			rpc_xdr_put_u32(&x, 0); /* no group list: everyone */
		}
		rpc_xdr_put_u32(&x, 0);
	}
	if (!x.x_err)
		m->m_len = x.x_pos;
	if (!x.x_err)
		px_client_send(c, m);
	px_msg_unref(m);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                   */

static struct px_loop *engine_by_tag(struct px_loop *main, const uint8_t *t)
{
	for (unsigned i = 0; i < main->lp_neng; i++)
		if (!memcmp(main->lp_eng[i]->lp_fhtag, t, TAG))
			return main->lp_eng[i];
	return NULL;
}

/* The export whose path is the longest prefix of dir (at a '/'). */
static struct px_loop *engine_by_path(struct px_loop *main, const char *dir,
				      size_t dlen, size_t *plen)
{
	struct px_loop *best = NULL;

	*plen = 0;
	for (unsigned i = 0; i < main->lp_neng; i++) {
		const char *p = main->lp_eng[i]->lp_opts->o_export_path;
		size_t n = strlen(p);

		if (!strcmp(p, "/"))
			n = 0; /* the root export matches everything */
		if (n > dlen || memcmp(dir, p, n) ||
		    (n < dlen && dir[n] != '/'))
			continue;
		if (!best || n > *plen) {
			best = main->lp_eng[i];
			*plen = n;
		}
	}
	return best;
}

/* MNT: pick the export by path and rewrite the path for its upstream. */
static struct px_loop *route_mnt(struct px_loop *main, struct px_client *c,
				 uint8_t **memp, size_t *lenp,
				 const struct rpc_call *h)
{
	uint8_t *msg = *memp + RPC_REC_HEADROOM;
	size_t off = h->c_args_off, plen, nlen;
	uint32_t dlen = rpc_get32(msg + off);
	const char *dir = (const char *)msg + off + 4;
	const char *up;
	struct px_loop *e;
	uint8_t *mem;
	struct rpc_xdr x;
	char *path;

	/* call_args_ok() checked the string's bounds already. */
	if (!(e = engine_by_path(main, dir, dlen, &plen))) {
		px_info_rl("client %s: MNT %.*s: no export has that path",
			   c->cl_name, (int)(dlen > 200 ? 200 : dlen), dir);
		reply_status(c, h, MNT3ERR_NOENT);
		return NULL;
	}
	up = e->lp_opts->o_upstream_path;
	if (!up)
		return e; /* same path upstream */
	if (!strcmp(up, "/") && plen < dlen)
		up = ""; /* "/" + "/rest" */
	nlen = strlen(up) + (dlen - plen);
	if (nlen > MNT3_PATHLEN || !(path = malloc(nlen + 1))) {
		reply_status(c, h, MNT3ERR_NOENT);
		return NULL;
	}
	memcpy(path, up, strlen(up));
	memcpy(path + strlen(up), dir + plen, dlen - plen);
	path[nlen] = '\0';
	if (!(mem = malloc(RPC_REC_HEADROOM + off + 8 + nlen))) {
		free(path);
		return NULL;
	}
	memcpy(mem + RPC_REC_HEADROOM, msg, off);
	rpc_xdr_init(&x, mem + RPC_REC_HEADROOM + off, 8 + nlen);
	rpc_xdr_put_opaque(&x, path, (uint32_t)nlen);
	px_debug("client %s: MNT %.*s -> export %s, upstream %s", c->cl_name,
		 (int)dlen, dir, e->lp_opts->o_export_name, path);
	free(path);
	free(*memp);
	*memp = mem;
	*lenp = off + x.x_pos;
	return e;
}

struct px_loop *px_export_route(struct px_loop *main, struct px_client *c,
				uint8_t **memp, size_t *lenp,
				const struct rpc_call *h)
{
	uint8_t *msg = *memp + RPC_REC_HEADROOM;
	struct px_loop *e = NULL;
	struct fhlist f;
	size_t w, r, len = *lenp;
	bool ok = false;

	if (h->c_prog == RPC_PROG_MOUNT) {
		if (h->c_proc == MNT3_MNT)
			return route_mnt(main, c, memp, lenp, h);
		reply_mount_local(main, c, h);
		return NULL;
	}
	if (h->c_proc == NFS3_NULL) {
		reply_mount_local(main, c, h);
		return NULL;
	}
	if (fh_find(h->c_prog, h->c_proc, true, msg, h->c_args_off, len, &f)) {
		reply_status(c, h, NFS3ERR_SERVERFAULT);
		return NULL;
	}
	for (unsigned i = 0; i < f.n; i++) {
		struct px_loop *ei;

		if (f.len[i] <= TAG) {
			reply_status(c, h, NFS3ERR_BADHANDLE);
			goto out;
		}
		if (!(ei = engine_by_tag(main, msg + f.off[i]))) {
			px_info_rl("client %s: %s with a handle of no export "
				   "here (an export removed?): STALE",
				   c->cl_name, rpc_nfs3_proc_name(h->c_proc));
			reply_status(c, h, NFS3ERR_STALE);
			goto out;
		}
		if (e && ei != e) {
			reply_status(c, h, h->c_proc == NFS3_RENAME ||
						   h->c_proc == NFS3_LINK
					       ? NFS3ERR_XDEV
					       : NFS3ERR_STALE);
			goto out;
		}
		e = ei;
	}
	if (!e) { /* every NFS procedure but NULL carries a handle */
		reply_status(c, h, NFS3ERR_BADHANDLE);
		goto out;
	}
	/* Take the tags off in place: each handle shrinks by 4 bytes and its
	 * XDR padding stays what it was. */
	w = r = 0;
	for (unsigned i = 0; i < f.n; i++) {
		size_t o = f.off[i], padded = (f.len[i] + 3u) & ~3u;

		memmove(msg + w, msg + r, o - 4 - r);
		w += o - 4 - r;
		rpc_put32(msg + w, f.len[i] - TAG);
		memmove(msg + w + 4, msg + o + TAG, padded - TAG);
		w += 4 + padded - TAG;
		r = o + padded;
	}
	memmove(msg + w, msg + r, len - r);
	*lenp = w + (len - r);
	if (h->c_proc == NFS3_READDIRPLUS && f.n == 1) {
		/* fh, cookie 8, cookieverf 8, dircount 4, maxcount 4 */
		size_t mo = f.off[0] - 4 + 4 + ((f.len[0] - TAG + 3u) & ~3u) + 20;

		if (mo + 4 <= *lenp) {
			uint32_t mc = rpc_get32(msg + mo);

			rpc_put32(msg + mo, mc - mc / 8);
		}
	}
	ok = true;
out:
	fh_free(&f);
	return ok ? e : NULL;
}

/* ---------------------------------------------------------------------- */
/* Replies                                                                 */

struct px_msg *px_export_wrap_reply(struct px_loop *l, uint32_t prog,
				    uint32_t proc, struct px_msg *m,
				    size_t res_off)
{
	uint8_t *msg = px_msg_data(m);
	struct px_msg *out;
	struct fhlist f;
	size_t r, w;

	if (fh_find(prog, proc, false, msg, res_off, m->m_len, &f))
		return NULL;
	if (!f.n) {
		fh_free(&f);
		m->m_refs++;
		return m;
	}
	for (unsigned i = 0; i < f.n; i++)
		if (f.len[i] + TAG > NFS3_FHSIZE) {
			px_warn_rl("export %s: upstream gave a %u-byte file "
				   "handle: no room for the 4-byte export tag "
				   "(NFSv3 allows 64); serve this export from "
				   "a gridvfsd of its own",
				   l->lp_opts->o_export_name, f.len[i]);
			fh_free(&f);
			return NULL;
		}
	if (!(out = px_msg_new(m->m_len + TAG * f.n))) {
		fh_free(&f);
		return NULL;
	}
	w = r = 0;
	for (unsigned i = 0; i < f.n; i++) {
		size_t o = f.off[i], padded = (f.len[i] + 3u) & ~3u;
		uint8_t *d = px_msg_data(out);

		memcpy(d + w, msg + r, o - 4 - r);
		w += o - 4 - r;
		rpc_put32(d + w, f.len[i] + TAG);
		memcpy(d + w + 4, l->lp_fhtag, TAG);
		memcpy(d + w + 4 + TAG, msg + o, padded);
		w += 4 + TAG + padded;
		r = o + padded;
	}
	memcpy(px_msg_data(out) + w, msg + r, m->m_len - r);
	out->m_len = w + m->m_len - r;
	fh_free(&f);
	return out;
}
