/*
 * proxy/ident.c — applies idmap/ to the wire: the AUTH_SYS credential and
 * every sattr3 of a call go client→store, every fattr3 of a reply goes
 * store→client.  The message is patched in place; only a credential whose
 * length changes (AUTH_NONE made anonymous, gids dropped) is rebuilt.
 */
#include "config.h"
#include "proxy/core.h"

#include <stdlib.h>
#include <string.h>

#include "idmap/idmap.h"

struct sattr_ctx {
	const struct idmap *sc_map;
	const struct idmap_peer_ids *sc_peer;
	bool sc_denied;
};

static void sattr_map(void *ctx, uint8_t *uid, uint8_t *gid)
{
	struct sattr_ctx *sc = ctx;
	uint32_t id;

	/* Giving a file to an account the TLS peer does not hold would hand
	 * it to another tenant: refused, never squashed. */
	if (uid) {
		if (idmap_uid_to_store(sc->sc_map, rpc_get32(uid), &id) < 0 ||
		    (sc->sc_peer && !idmap_peer_ids_has_uid(sc->sc_peer, id)))
			sc->sc_denied = true;
		else
			rpc_put32(uid, id);
	}
	if (gid) {
		if (idmap_gid_to_store(sc->sc_map, rpc_get32(gid), &id) < 0 ||
		    (sc->sc_peer && !idmap_peer_ids_has_gid(sc->sc_peer, id)))
			sc->sc_denied = true;
		else
			rpc_put32(gid, id);
	}
}

static void fattr_map(void *ctx, uint8_t *fattr)
{
	const struct idmap *m = ctx;
	uint32_t id;

	if (idmap_uid_to_client(m, rpc_get32(fattr + NFS3_FATTR_UID), &id) >= 0)
		rpc_put32(fattr + NFS3_FATTR_UID, id);
	if (idmap_gid_to_client(m, rpc_get32(fattr + NFS3_FATTR_GID), &id) >= 0)
		rpc_put32(fattr + NFS3_FATTR_GID, id);
}

/*
 * Replace the credential [cred_off, verf_off) by an AUTH_SYS one encoding
 * a.  In place when the size is unchanged, else into a new buffer.
 */
static int cred_replace(uint8_t **memp, size_t *lenp, struct px_req *rq,
			const struct rpc_authsys *a)
{
	struct rpc_call *h = &rq->rq_h;
	uint8_t body[RPC_AUTH_MAX_BODY];
	struct rpc_xdr x;
	size_t old = h->c_verf_off - h->c_cred_off, nsize, tail;
	uint8_t *msg = *memp + RPC_REC_HEADROOM, *nmem;

	rpc_xdr_init(&x, body, sizeof(body));
	if (rpc_authsys_encode(&x, a))
		return -EMSGSIZE;
	nsize = 8 + x.x_pos;
	if (nsize == old) {
		rpc_put32(msg + h->c_cred_off, RPC_AUTH_SYS);
		rpc_put32(msg + h->c_cred_off + 4, (uint32_t)x.x_pos);
		memcpy(msg + h->c_cred_off + 8, body, x.x_pos);
		return 0;
	}
	tail = *lenp - h->c_verf_off;
	nmem = malloc(RPC_REC_HEADROOM + h->c_cred_off + nsize + tail);
	if (!nmem)
		return -ENOMEM;
	memcpy(nmem + RPC_REC_HEADROOM, msg, h->c_cred_off);
	rpc_put32(nmem + RPC_REC_HEADROOM + h->c_cred_off, RPC_AUTH_SYS);
	rpc_put32(nmem + RPC_REC_HEADROOM + h->c_cred_off + 4, (uint32_t)x.x_pos);
	memcpy(nmem + RPC_REC_HEADROOM + h->c_cred_off + 8, body, x.x_pos);
	memcpy(nmem + RPC_REC_HEADROOM + h->c_cred_off + nsize,
	       msg + h->c_verf_off, tail);
	free(*memp);
	*memp = nmem;
	*lenp = h->c_cred_off + nsize + tail;
	/* Everything after the credential moved by the same amount. */
	ssize_t delta = (ssize_t)nsize - (ssize_t)old;

	px_req_shift(rq, h->c_cred_off, delta);
	h->c_verf_off = (size_t)((ssize_t)h->c_verf_off + delta);
	h->c_verf_body = (size_t)((ssize_t)h->c_verf_body + delta);
	h->c_args_off = (size_t)((ssize_t)h->c_args_off + delta);
	h->c_cred_flavor = RPC_AUTH_SYS;
	h->c_cred_len = (uint32_t)x.x_pos;
	h->c_cred_body = h->c_cred_off + 8;
	return 0;
}

/*
 * A TLS peer may act only as the accounts its grid-mapfile entry grants:
 * other ids (already in store terms) become anonymous, or are refused
 * under --unmapped deny; supplementary gids it does not hold are dropped.
 */
static int peer_restrict(const struct idmap_opts *io,
			 const struct idmap_peer_ids *p, struct rpc_authsys *a)
{
	bool deny = io->io_unmapped == IDMAP_UNMAPPED_DENY;
	uint32_t n = 0;

	if (!idmap_peer_ids_has_uid(p, a->as_uid) && a->as_uid != io->io_anonuid) {
		if (deny)
			return -EACCES;
		a->as_uid = io->io_anonuid;
	}
	if (!idmap_peer_ids_has_gid(p, a->as_gid) && a->as_gid != io->io_anongid) {
		if (deny)
			return -EACCES;
		a->as_gid = io->io_anongid;
	}
	for (uint32_t i = 0; i < a->as_ngids; i++)
		if (idmap_peer_ids_has_gid(p, a->as_gids[i]))
			a->as_gids[n++] = a->as_gids[i];
	a->as_ngids = n;
	return 0;
}

/* A sattr3's uid/gid words, found by the decode (rq_sattr_*). */
static bool sattr_map_req(const struct idmap *m,
			  const struct idmap_peer_ids *peer, uint8_t *msg,
			  const struct px_req *rq)
{
	struct sattr_ctx sc = {m, peer, false};

	sattr_map(&sc, rq->rq_sattr_uid ? msg + rq->rq_sattr_uid : NULL,
		  rq->rq_sattr_gid ? msg + rq->rq_sattr_gid : NULL);
	return !sc.sc_denied;
}

int px_ident_call(const struct idmap *m, const struct idmap_peer_ids *peer,
		  uint8_t **memp, size_t *lenp, struct px_req *rq)
{
	const struct idmap_opts *io = idmap_opts_of(m);
	struct rpc_call *h = &rq->rq_h;
	struct rpc_authsys a;
	int rc;

	/* NULL carries no identity and must keep working for probes. */
	if (h->c_proc == 0)
		return 0;
	if (h->c_cred_flavor == RPC_AUTH_SYS) {
		if (!rq->rq_sys)
			return -EBADMSG;
		a = rq->rq_cred;
		rc = idmap_cred_to_store(m, &a.as_uid, &a.as_gid, a.as_gids,
					 &a.as_ngids);
		if (rc < 0)
			return rc;
	} else {
		/* AUTH_NONE: whoever it is acts as the anonymous account. */
		if (io->io_unmapped == IDMAP_UNMAPPED_DENY)
			return -EACCES;
		memset(&a, 0, sizeof(a));
		a.as_machine_len = 7;
		memcpy(a.as_machine, "gridvfs", 7);
		a.as_uid = io->io_anonuid;
		a.as_gid = io->io_anongid;
	}
	if (peer && (rc = peer_restrict(io, peer, &a)) < 0)
		return rc;
	if ((rc = cred_replace(memp, lenp, rq, &a)) < 0)
		return rc;
	/* The stages after this one see the store's identity. */
	rq->rq_sys = true;
	rq->rq_cred = a;
	if (h->c_prog == RPC_PROG_NFS &&
	    !sattr_map_req(m, peer, *memp + RPC_REC_HEADROOM, rq))
		return -EACCES;
	return 0;
}

void px_ident_reply(const struct idmap *m, uint32_t prog, uint32_t proc,
		    uint8_t *res, size_t len)
{
	struct rpc_nfs3_visit v = {.v_fattr = fattr_map};

	if (prog == RPC_PROG_NFS)
		rpc_nfs3_walk_reply(proc, res, len, &v, (void *)m);
}

/*
 * Number of zero words after the status in a failure reply of proc: the
 * failure arms are made of post_op_attr and wcc_data, each of which is
 * "nothing follows" when its leading bool is 0.
 */
static unsigned nfs3_fail_words(uint32_t proc)
{
	switch (proc) {
	case NFS3_GETATTR:
		return 0;
	case NFS3_LOOKUP: case NFS3_ACCESS: case NFS3_READLINK:
	case NFS3_READ: case NFS3_READDIR: case NFS3_READDIRPLUS:
	case NFS3_FSSTAT: case NFS3_FSINFO: case NFS3_PATHCONF:
		return 1;
	case NFS3_LINK:
		return 3; /* file attributes + linkdir wcc */
	case NFS3_RENAME:
		return 4; /* fromdir wcc + todir wcc */
	default:
		return 2; /* one wcc_data */
	}
}

int px_nfs3_error_reply(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
			uint32_t proc, uint32_t status)
{
	rpc_reply_accepted(x, xid, RPC_ACC_SUCCESS, 0, 0);
	rpc_xdr_put_u32(x, status);
	if (prog == RPC_PROG_NFS)
		for (unsigned i = nfs3_fail_words(proc); i; i--)
			rpc_xdr_put_u32(x, 0);
	return x->x_err;
}

int px_ident_load(const struct px_opts *o, struct idmap **out)
{
	struct idmap_opts io;
	char err[512];
	int rc;

	*out = NULL;
	if (!px_opts_idmap_active(o))
		return 0;
	idmap_opts_default(&io);
	if (o->o_squash >= 0)
		io.io_squash = (enum idmap_squash)o->o_squash;
	if (o->o_unmapped >= 0)
		io.io_unmapped = (enum idmap_unmapped)o->o_unmapped;
	if (o->o_anonuid >= 0)
		io.io_anonuid = (uint32_t)o->o_anonuid;
	if (o->o_anongid >= 0)
		io.io_anongid = (uint32_t)o->o_anongid;
	if (!o->o_map)
		return idmap_new_empty(&io, out);
	err[0] = '\0';
	rc = idmap_load(o->o_map, &io, out, err, sizeof(err));
	if (rc < 0)
		px_err("map %s refused: %s", o->o_map, err[0] ? err : strerror(-rc));
	return rc;
}
