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
 *  - NFS: every file handle the daemon gives out carries an 8-byte tag in
 *    front of upstream's handle: the first 8 bytes of HMAC-SHA256 under
 *    the daemon's secret handle key (STATE-DIR/handle-key, made once and
 *    kept across restarts) over "gridvfs export " NAME, a NUL and the
 *    upstream handle.  A call's handles are checked (all of one export,
 *    else NFS3ERR_XDEV for RENAME/LINK, NFS3ERR_STALE otherwise), the tag
 *    is taken off, and the call goes to that export's upstream; the
 *    reply's handles get their tags.  Keyed and bound to the handle, a tag
 *    cannot be computed by a client: re-tagging one export's handle as
 *    another's (to be served under the other's policy) gives STALE.  It
 *    does not depend on the section's position, so handles stay valid
 *    across restarts and reordered configuration files; an export that is
 *    gone answers NFS3ERR_STALE, never another export's file.
 *  - An export's root is its ceiling: LOOKUP ".." there answers the root
 *    itself (as a server does at its own root), READDIRPLUS gives no
 *    handle for any ".." entry (the client looks it up), and MNT paths
 *    are normalised, with ".." refused.
 *  - MOUNT NULL, DUMP, EXPORT, UMNT, UMNTALL and NFS NULL are answered
 *    here: no single upstream owns them.
 *
 * Upstream handles of more than 56 bytes leave no room for the tag (NFSv3
 * handles are at most 64): such replies fail with NFS3ERR_SERVERFAULT and
 * a log line.  Tags cost READDIRPLUS 8 bytes per entry, so its maxcount is
 * lowered by a quarter on the way up (an entry with a handle is at least
 * 32 bytes), keeping the reply within what the client asked for.
 *
 * With a single export (no sections) none of this runs: handles and paths
 * pass unchanged, as they always did.
 */
#include "config.h"
#include "proxy/core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define TAG 8u
#define NFS3ERR_XDEV 18u
#define NFS3ERR_STALE 70u
#define NFS3ERR_BADHANDLE 10001u
#define NFS3ERR_SERVERFAULT 10006u
#define NFS3ERR_JUKEBOX 10008u
#define MNT3ERR_NOENT 2u
#define MNT3ERR_ACCES 13u

/* Read the handle key, or make it: 32 random bytes, mode 0600, created
 * by link() so that two daemons starting at once agree on one. */
int px_export_key_load(struct px_loop *main, const char *dir)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	uint8_t key[PX_HKEY_LEN];
	struct stat st;

	snprintf(path, sizeof(path), "%s/handle-key", dir);
	for (int attempt = 0; attempt < 3; attempt++) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		ssize_t n;

		if (fd >= 0) {
			if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
			    st.st_uid != geteuid() || (st.st_mode & 077)) {
				close(fd);
				px_err("handle key %s: must be a regular file "
				       "of ours with mode 0600 (others who read "
				       "it can forge export handles)", path);
				return -EPERM;
			}
			n = read(fd, main->lp_hkey, sizeof(main->lp_hkey));
			close(fd);
			if (n != (ssize_t)sizeof(main->lp_hkey)) {
				px_err("handle key %s: not %zu bytes", path,
				       sizeof(main->lp_hkey));
				return -EINVAL;
			}
			return 0;
		}
		if (errno != ENOENT) {
			px_err("handle key %s: %s (see --state-dir)", path,
			       strerror(errno));
			return -errno;
		}
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			px_err("state dir %s: %s (see --state-dir)", dir,
			       strerror(errno));
			return -errno;
		}
		if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
			px_err("handle key: no random bytes: %s",
			       strerror(errno));
			return -EIO;
		}
		snprintf(tmp, sizeof(tmp), "%s/.handle-key.%ld", dir,
			 (long)getpid());
		unlink(tmp);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
				       O_CLOEXEC, 0600);
		if (fd < 0) {
			px_err("handle key %s: %s (see --state-dir)", tmp,
			       strerror(errno));
			return -errno;
		}
		n = write(fd, key, sizeof(key));
		if (n != (ssize_t)sizeof(key) || fsync(fd) < 0) {
			close(fd);
			unlink(tmp);
			px_err("handle key %s: cannot write it", tmp);
			return -EIO;
		}
		close(fd);
		if (link(tmp, path) < 0 && errno != EEXIST) {
			int err = errno;

			unlink(tmp);
			px_err("handle key %s: %s", path, strerror(err));
			return -err;
		}
		unlink(tmp);
		/* Ours or a concurrent daemon's: read what is there. */
	}
	px_err("handle key %s: cannot settle on one", path);
	return -EIO;
}

/* The tag of upstream handle fh (len bytes) in export e.  false: the MAC
 * failed (then nothing matches and nothing is given out). */
static bool fh_tag(const struct px_loop *e, const uint8_t *fh, uint32_t len,
		   uint8_t tag[TAG])
{
	uint8_t in[PX_EXPORT_NAME_MAX + 32 + NFS3_FHSIZE];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	int n = snprintf((char *)in, sizeof(in) - NFS3_FHSIZE,
			 "gridvfs export %s", e->lp_opts->o_export_name);

	if (n < 0 || len > NFS3_FHSIZE ||
	    (size_t)n + 1 + len > sizeof(in))
		return false;
	in[n++] = '\0'; /* the name cannot run into the handle */
	memcpy(in + n, fh, len);
	if (!HMAC(EVP_sha256(), e->lp_main->lp_hkey,
		  (int)sizeof(e->lp_main->lp_hkey), in, (size_t)n + len, md,
		  &mdlen) || mdlen < TAG)
		return false;
	memcpy(tag, md, TAG);
	return true;
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

/* The handles of a reply (a call's come from its request record). */
static int fh_find(uint32_t prog, uint32_t proc, uint8_t *msg, size_t off,
		   size_t len, struct fhlist *f)
{
	struct rpc_nfs3_visit v = {.v_fh = fh_note};
	ssize_t used;

	memset(f, 0, sizeof(*f));
	f->base = msg;
	if (prog == RPC_PROG_NFS)
		used = rpc_nfs3_walk_reply(proc, msg + off, len - off, &v, f);
	else
		used = rpc_mnt3_walk_reply(proc, msg + off, len - off, &v, f);
	if (used < 0 || f->oom) {
		fh_free(f);
		return used < 0 ? (int)used : -ENOMEM;
	}
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Local answers                                                           */

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

/* The export whose tag the client's handle (tag + upstream handle)
 * carries, or NULL. */
static struct px_loop *engine_by_tag(struct px_loop *main, const uint8_t *fh,
				     uint32_t len)
{
	uint8_t t[TAG];

	for (unsigned i = 0; i < main->lp_neng; i++)
		if (fh_tag(main->lp_eng[i], fh + TAG, len - TAG, t) &&
		    !CRYPTO_memcmp(t, fh, TAG))
			return main->lp_eng[i];
	return NULL;
}

int px_mnt_path_norm(const char *in, size_t len, char *out, size_t *olen)
{
	size_t o = 0, i = 0;

	if (!len || in[0] != '/')
		return -EINVAL;
	while (i < len) {
		size_t j;

		while (i < len && in[i] == '/')
			i++;
		for (j = i; j < len && in[j] != '/'; j++)
			if (!in[j])
				return -EINVAL; /* NUL inside the path */
		if (j == i)
			break;
		if (j - i == 1 && in[i] == '.') {
			i = j;
			continue;
		}
		if (j - i == 2 && in[i] == '.' && in[i + 1] == '.')
			return -EACCES;
		if (o + 1 + (j - i) > MNT3_PATHLEN)
			return -EINVAL;
		out[o++] = '/';
		memcpy(out + o, in + i, j - i);
		o += j - i;
		i = j;
	}
	if (!o)
		out[o++] = '/';
	out[o] = '\0';
	*olen = o;
	return 0;
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

	char norm[MNT3_PATHLEN + 2];
	size_t normlen;
	int rc;

	/* call_args_ok() checked the string's bounds already.  Paths are
	 * matched and forwarded normalised: "/pub/../priv" must neither pick
	 * pub nor reach priv under pub's policy. */
	if ((rc = px_mnt_path_norm(dir, dlen, norm, &normlen)) < 0) {
		px_info_rl("client %s: MNT %.*s refused: %s", c->cl_name,
			   (int)(dlen > 200 ? 200 : dlen), dir,
			   rc == -EACCES ? "'..' in the path"
					 : "not an absolute path");
		px_client_status_reply(c, h, rc == -EACCES ? MNT3ERR_ACCES
						 : MNT3ERR_NOENT);
		return NULL;
	}
	dir = norm;
	dlen = (uint32_t)normlen;
	if (!(e = engine_by_path(main, dir, dlen, &plen))) {
		px_info_rl("client %s: MNT %.*s: no export has that path",
			   c->cl_name, (int)(dlen > 200 ? 200 : dlen), dir);
		px_client_status_reply(c, h, MNT3ERR_NOENT);
		return NULL;
	}
	up = e->lp_opts->o_upstream_path;
	if (!up) {
		up = e->lp_opts->o_export_path; /* the same path upstream */
		if (!strcmp(up, "/"))
			up = "";
	}
	if (!strcmp(up, "/") && plen < dlen)
		up = ""; /* "/" + "/rest" */
	nlen = strlen(up) + (dlen - plen);
	if (nlen > MNT3_PATHLEN || !(path = malloc(nlen + 1))) {
		px_client_status_reply(c, h, MNT3ERR_NOENT);
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

/* The export's root handle upstream, asked for with a MNT of its own. */
static void root_learnt(void *ctx, int err, uint8_t *res, size_t len)
{
	struct px_loop *e = ctx;
	uint32_t n;

	e->lp_root_asking = false;
	if (err || len < 8 || rpc_get32(res) != 0)
		return;
	n = rpc_get32(res + 4);
	if (n == 0 || n > NFS3_FHSIZE || 8 + (size_t)n > len)
		return;
	memcpy(e->lp_rootfh, res + 8, n);
	e->lp_rootfh_len = n;
}

void px_export_learn_root(struct px_loop *e)
{
	const char *p = e->lp_opts->o_upstream_path ? e->lp_opts->o_upstream_path
						    : e->lp_opts->o_export_path;
	uint8_t args[8 + MNT3_PATHLEN];
	struct rpc_xdr x;

	if (e->lp_root_asking || !p)
		return;
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, p, (uint32_t)strlen(p));
	if (!x.x_err && px_icall(e, RPC_PROG_MOUNT, MNT3_MNT, NULL, args,
				 x.x_pos, root_learnt, e) == 0)
		e->lp_root_asking = true;
}

/*
 * LOOKUP ".." in an export's root would climb into the upstream's parent
 * directory, where other exports (or unexported files) live, and hand out
 * their handles under this export's tag and policy.  Asked of the root it
 * becomes LOOKUP "." (the root itself, as a server answers at its own
 * root).  The arguments are already untagged: the handle, then the name.
 * false: answered here.
 */
static bool lookup_dotdot_at_root(struct px_loop *e, struct px_client *c,
				  const struct rpc_call *h, uint8_t *msg,
				  size_t len, uint32_t fhlen)
{
	size_t no = h->c_args_off + 4 + ((fhlen + 3u) & ~3u);
	uint8_t *fh = msg + h->c_args_off + 4;

	if (no + 8 > len || rpc_get32(msg + no) != 2 ||
	    memcmp(msg + no + 4, "..", 2))
		return true;
	if (!e->lp_rootfh_len) {
		/* Not known yet (upstream was down at start): have the
		 * client try again shortly rather than guess. */
		px_export_learn_root(e);
		px_client_status_reply(c, h, NFS3ERR_JUKEBOX);
		return false;
	}
	if (fhlen == e->lp_rootfh_len && !memcmp(fh, e->lp_rootfh, fhlen)) {
		rpc_put32(msg + no, 1);
		memcpy(msg + no + 4, ".\0\0\0", 4);
		px_debug("client %s: LOOKUP .. at export %s's root: the root",
			 c->cl_name, e->lp_opts->o_export_name);
	}
	return true;
}

struct px_loop *px_export_route(struct px_loop *main, struct px_client *c,
				uint8_t **memp, size_t *lenp,
				struct px_req *rq)
{
	const struct rpc_call *h = &rq->rq_h;
	uint8_t *msg = *memp + RPC_REC_HEADROOM;
	struct px_loop *e = NULL;
	struct fhlist f = {.n = rq->rq_nfh};
	uint32_t off[PX_REQ_FH], flen[PX_REQ_FH];
	size_t w, r, len = *lenp;
	bool ok = false;

	if (h->c_prog == RPC_PROG_MOUNT) {
		if (h->c_proc == MNT3_MNT) {
			struct px_loop *me = route_mnt(main, c, memp, lenp, h);

			rq->rq_len = *lenp;
			return me;
		}
		reply_mount_local(main, c, h);
		return NULL;
	}
	if (h->c_proc == NFS3_NULL) {
		reply_mount_local(main, c, h);
		return NULL;
	}
	/* The handles as the decode found them (at most two in a call). */
	if (f.n > PX_REQ_FH) {
		px_client_status_reply(c, h, NFS3ERR_SERVERFAULT);
		return NULL;
	}
	for (unsigned i = 0; i < f.n; i++) {
		off[i] = (uint32_t)rq->rq_fh_off[i];
		flen[i] = rq->rq_fh_len[i];
	}
	f.off = off;
	f.len = flen;
	for (unsigned i = 0; i < f.n; i++) {
		struct px_loop *ei;

		if (f.len[i] <= TAG) {
			px_client_status_reply(c, h, NFS3ERR_BADHANDLE);
			goto out;
		}
		if (!(ei = engine_by_tag(main, msg + f.off[i], f.len[i]))) {
			px_info_rl("client %s: %s with a handle of no export "
				   "here (an export removed?): STALE",
				   c->cl_name, rpc_nfs3_proc_name(h->c_proc));
			px_client_status_reply(c, h, NFS3ERR_STALE);
			goto out;
		}
		if (e && ei != e) {
			px_client_status_reply(c, h, h->c_proc == NFS3_RENAME ||
						   h->c_proc == NFS3_LINK
					       ? NFS3ERR_XDEV
					       : NFS3ERR_STALE);
			goto out;
		}
		e = ei;
	}
	if (!e) { /* every NFS procedure but NULL carries a handle */
		px_client_status_reply(c, h, NFS3ERR_BADHANDLE);
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
	/* The record follows: each handle lost TAG bytes at its start. */
	for (unsigned i = 0; i < f.n; i++) {
		size_t at = rq->rq_fh_off[i];

		rq->rq_fh_len[i] -= TAG;
		px_req_shift(rq, at, -(ptrdiff_t)TAG);
	}
	if (h->c_proc == NFS3_READDIRPLUS && f.n == 1) {
		/* fh, cookie 8, cookieverf 8, dircount 4, maxcount 4 */
		size_t mo = f.off[0] - 4 + 4 + ((f.len[0] - TAG + 3u) & ~3u) + 20;

		if (mo + 4 <= *lenp) {
			uint32_t mc = rpc_get32(msg + mo);

			rpc_put32(msg + mo, mc - mc / 4);
		}
	}
	if (h->c_proc == NFS3_LOOKUP && f.n == 1 &&
	    !lookup_dotdot_at_root(e, c, h, msg, *lenp, f.len[0] - TAG))
		goto out;
	ok = true;
out:
	return ok ? e : NULL;
}

/* ---------------------------------------------------------------------- */
/* Replies                                                                 */

/*
 * Offsets (in msg) of the handle data of READDIRPLUS entries named "..":
 * in an export's root that is the upstream's parent, outside the export,
 * so no ".." entry gets a handle (post_op_fh3 may always be absent; the
 * client then looks the name up, and LOOKUP ".." is guarded).  The reply
 * was checked by the walker already; this only reads.  Returns how many
 * (at most max).
 */
static unsigned rdp_dotdot(const uint8_t *msg, size_t off, size_t len,
			   uint32_t *offs, unsigned max)
{
	size_t p = off;
	unsigned n = 0;

#define NEED(k) do { if (p + (k) > len) return n; } while (0)
	NEED(4);
	if (rpc_get32(msg + p))
		return 0; /* a failure carries no entries */
	p += 4;
	NEED(4);
	if (rpc_get32(msg + p))
		p += 84;  /* dir_attributes */
	p += 4 + 8;       /* the bool, cookieverf */
	for (;;) {
		uint32_t nl, fl;
		bool dotdot;

		NEED(4);
		if (!rpc_get32(msg + p))
			break;
		p += 4 + 8;       /* value_follows, fileid */
		NEED(4);
		nl = rpc_get32(msg + p);
		NEED(4 + (size_t)((nl + 3u) & ~3u));
		dotdot = nl == 2 && !memcmp(msg + p + 4, "..", 2);
		p += 4 + ((nl + 3u) & ~3u) + 8; /* name, cookie */
		NEED(4);
		if (rpc_get32(msg + p))
			p += 84;
		p += 4;
		NEED(4);
		if (rpc_get32(msg + p)) {
			NEED(8);
			fl = rpc_get32(msg + p + 4);
			if (dotdot && n < max)
				offs[n++] = (uint32_t)(p + 8);
			p += 8 + ((fl + 3u) & ~3u);
		} else {
			p += 4;
		}
	}
#undef NEED
	return n;
}

struct px_msg *px_export_wrap_reply(struct px_loop *l, uint32_t prog,
				    uint32_t proc, struct px_msg *m,
				    size_t res_off)
{
	uint8_t *msg = px_msg_data(m);
	struct px_msg *out;
	struct fhlist f;
	uint32_t dd[4];
	unsigned ndd = 0;
	size_t r, w;

	if (fh_find(prog, proc, msg, res_off, m->m_len, &f))
		return NULL;
	if (!f.n) {
		fh_free(&f);
		m->m_refs++;
		return m;
	}
	if (prog == RPC_PROG_NFS && proc == NFS3_READDIRPLUS)
		ndd = rdp_dotdot(msg, res_off, m->m_len, dd, 4);
	for (unsigned i = 0; i < f.n; i++)
		if (f.len[i] + TAG > NFS3_FHSIZE) {
			px_warn_rl("export %s: upstream gave a %u-byte file "
				   "handle: no room for the %u-byte export tag "
				   "(NFSv3 allows 64); serve this export from "
				   "a gridvfsd of its own",
				   l->lp_opts->o_export_name, f.len[i], TAG);
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
		bool drop = false;

		for (unsigned k = 0; k < ndd; k++)
			drop |= dd[k] == o;
		memcpy(d + w, msg + r, o - 4 - r);
		w += o - 4 - r;
		if (drop) {
			/* The handle_follows word just copied becomes FALSE;
			 * its length and bytes are left out. */
			rpc_put32(d + w - 4, 0);
			r = o + padded;
			continue;
		}
		rpc_put32(d + w, f.len[i] + TAG);
		if (!fh_tag(l, msg + o, f.len[i], d + w + 4)) {
			px_msg_unref(out);
			fh_free(&f);
			return NULL;
		}
		memcpy(d + w + 4 + TAG, msg + o, padded);
		w += 4 + TAG + padded;
		r = o + padded;
	}
	memcpy(px_msg_data(out) + w, msg + r, m->m_len - r);
	out->m_len = w + m->m_len - r;
	fh_free(&f);
	return out;
}
