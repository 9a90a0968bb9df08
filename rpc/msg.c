/*
 * rpc/msg.c — ONC RPC call and reply headers (RFC 5531 §9): parsing into
 * small structs of offsets, AUTH_SYS bodies, and the reply builders that
 * let the proxy answer every accept/reject status itself.
 */
#include "rpc/rpc.h"

#include <string.h>

/* Read an opaque_auth; record where it starts and where its body is. */
static int auth_parse(struct rpc_xdr *x, uint32_t *flavor, uint32_t *len,
		      size_t *off, size_t *body)
{
	*off = x->x_pos;
	if (rpc_xdr_u32(x, flavor))
		return x->x_err;
	*body = x->x_pos + 4;
	if (!rpc_xdr_opaque(x, RPC_AUTH_MAX_BODY, len))
		return x->x_err;
	return 0;
}

enum rpc_call_verdict rpc_call_parse(const uint8_t *msg, size_t len,
				     struct rpc_call *c)
{
	struct rpc_authsys as;

	return rpc_call_parse_cred(msg, len, c, &as);
}

enum rpc_call_verdict rpc_call_parse_cred(const uint8_t *msg, size_t len,
					  struct rpc_call *c,
					  struct rpc_authsys *as_out)
{
	struct rpc_xdr x;
	uint32_t mtype, rpcvers;
	struct rpc_authsys local, *as = as_out ? as_out : &local;

	memset(c, 0, sizeof(*c));
	rpc_xdr_init(&x, (uint8_t *)msg, len);
	if (rpc_xdr_u32(&x, &c->c_xid) || rpc_xdr_u32(&x, &mtype) ||
	    mtype != RPC_CALL)
		return RPC_CALL_DROP;
	if (rpc_xdr_u32(&x, &rpcvers))
		return RPC_CALL_GARBAGE;
	if (rpcvers != RPC_VERS)
		return RPC_CALL_RPCVERS;
	if (rpc_xdr_u32(&x, &c->c_prog) || rpc_xdr_u32(&x, &c->c_vers) ||
	    rpc_xdr_u32(&x, &c->c_proc))
		return RPC_CALL_GARBAGE;
	if (auth_parse(&x, &c->c_cred_flavor, &c->c_cred_len, &c->c_cred_off,
		       &c->c_cred_body))
		return RPC_CALL_BADCRED;
	if (auth_parse(&x, &c->c_verf_flavor, &c->c_verf_len, &c->c_verf_off,
		       &c->c_verf_body))
		return RPC_CALL_BADVERF;
	c->c_args_off = x.x_pos;

	switch (c->c_cred_flavor) {
	case RPC_AUTH_SYS:
		if (rpc_authsys_parse(msg + c->c_cred_body, c->c_cred_len, as))
			return RPC_CALL_BADCRED;
		break;
	case RPC_AUTH_NONE:
	case RPC_AUTH_TLS:
		/* RFC 9289 §4.1: the AUTH_TLS probe has an empty body. */
		if (c->c_cred_len != 0)
			return RPC_CALL_BADCRED;
		break;
	default:
		break; /* the proxy decides what to do with other flavors */
	}
	return RPC_CALL_OK;
}

int rpc_authsys_parse(const uint8_t *body, size_t len, struct rpc_authsys *a)
{
	struct rpc_xdr x;
	uint8_t *name;

	rpc_xdr_init(&x, (uint8_t *)body, len);
	if (rpc_xdr_u32(&x, &a->as_stamp))
		return x.x_err;
	name = rpc_xdr_opaque(&x, RPC_AUTHSYS_MAX_MACHINE, &a->as_machine_len);
	if (!name)
		return x.x_err;
	memcpy(a->as_machine, name, a->as_machine_len);
	a->as_machine[a->as_machine_len] = '\0';
	if (rpc_xdr_u32(&x, &a->as_uid) || rpc_xdr_u32(&x, &a->as_gid) ||
	    rpc_xdr_u32(&x, &a->as_ngids))
		return x.x_err;
	if (a->as_ngids > RPC_AUTHSYS_MAX_GIDS)
		return -EMSGSIZE;
	for (uint32_t i = 0; i < a->as_ngids; i++)
		if (rpc_xdr_u32(&x, &a->as_gids[i]))
			return x.x_err;
	/* The body must be exactly the credential: bytes left over mean the
	 * lengths disagree, which is garbage, not padding. */
	if (x.x_pos != len)
		return -EBADMSG;
	return 0;
}

size_t rpc_authsys_size(const struct rpc_authsys *a)
{
	return 4 + 4 + ((a->as_machine_len + 3u) & ~3u) + 4 + 4 + 4 +
	       4u * a->as_ngids;
}

int rpc_authsys_encode(struct rpc_xdr *x, const struct rpc_authsys *a)
{
	if (a->as_ngids > RPC_AUTHSYS_MAX_GIDS ||
	    a->as_machine_len > RPC_AUTHSYS_MAX_MACHINE)
		return -EMSGSIZE;
	rpc_xdr_put_u32(x, a->as_stamp);
	rpc_xdr_put_opaque(x, a->as_machine, a->as_machine_len);
	rpc_xdr_put_u32(x, a->as_uid);
	rpc_xdr_put_u32(x, a->as_gid);
	rpc_xdr_put_u32(x, a->as_ngids);
	for (uint32_t i = 0; i < a->as_ngids; i++)
		rpc_xdr_put_u32(x, a->as_gids[i]);
	return x->x_err;
}

int rpc_reply_parse(const uint8_t *msg, size_t len, struct rpc_reply *r)
{
	struct rpc_xdr x;
	uint32_t mtype;

	memset(r, 0, sizeof(*r));
	rpc_xdr_init(&x, (uint8_t *)msg, len);
	if (rpc_xdr_u32(&x, &r->r_xid) || rpc_xdr_u32(&x, &mtype) ||
	    mtype != RPC_REPLY || rpc_xdr_u32(&x, &r->r_stat))
		return -EBADMSG;
	if (r->r_stat == RPC_MSG_ACCEPTED) {
		size_t body;

		if (auth_parse(&x, &r->r_verf_flavor, &r->r_verf_len,
			       &r->r_verf_off, &body) ||
		    rpc_xdr_u32(&x, &r->r_accept_stat))
			return -EBADMSG;
		if (r->r_accept_stat == RPC_ACC_PROG_MISMATCH &&
		    (rpc_xdr_u32(&x, &r->r_low) || rpc_xdr_u32(&x, &r->r_high)))
			return -EBADMSG;
		if (r->r_accept_stat > RPC_ACC_SYSTEM_ERR)
			return -EBADMSG;
		r->r_res_off = x.x_pos;
		return 0;
	}
	if (r->r_stat != RPC_MSG_DENIED || rpc_xdr_u32(&x, &r->r_reject_stat))
		return -EBADMSG;
	if (r->r_reject_stat == RPC_REJ_MISMATCH)
		return rpc_xdr_u32(&x, &r->r_low) || rpc_xdr_u32(&x, &r->r_high)
			       ? -EBADMSG
			       : 0;
	if (r->r_reject_stat == RPC_REJ_AUTH_ERROR)
		return rpc_xdr_u32(&x, &r->r_auth_stat) ? -EBADMSG : 0;
	return -EBADMSG;
}

int rpc_reply_accepted(struct rpc_xdr *x, uint32_t xid, uint32_t stat,
		       uint32_t low, uint32_t high)
{
	rpc_xdr_put_u32(x, xid);
	rpc_xdr_put_u32(x, RPC_REPLY);
	rpc_xdr_put_u32(x, RPC_MSG_ACCEPTED);
	rpc_xdr_put_u32(x, RPC_AUTH_NONE);
	rpc_xdr_put_u32(x, 0);
	rpc_xdr_put_u32(x, stat);
	if (stat == RPC_ACC_PROG_MISMATCH) {
		rpc_xdr_put_u32(x, low);
		rpc_xdr_put_u32(x, high);
	}
	return x->x_err;
}

int rpc_reply_rpc_mismatch(struct rpc_xdr *x, uint32_t xid)
{
	rpc_xdr_put_u32(x, xid);
	rpc_xdr_put_u32(x, RPC_REPLY);
	rpc_xdr_put_u32(x, RPC_MSG_DENIED);
	rpc_xdr_put_u32(x, RPC_REJ_MISMATCH);
	rpc_xdr_put_u32(x, RPC_VERS);
	rpc_xdr_put_u32(x, RPC_VERS);
	return x->x_err;
}

int rpc_reply_auth_error(struct rpc_xdr *x, uint32_t xid, uint32_t why)
{
	rpc_xdr_put_u32(x, xid);
	rpc_xdr_put_u32(x, RPC_REPLY);
	rpc_xdr_put_u32(x, RPC_MSG_DENIED);
	rpc_xdr_put_u32(x, RPC_REJ_AUTH_ERROR);
	rpc_xdr_put_u32(x, why);
	return x->x_err;
}

int rpc_call_build(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
		   uint32_t vers, uint32_t proc, uint32_t cred_flavor,
		   const void *cred, uint32_t cred_len, uint32_t verf_flavor,
		   const void *verf, uint32_t verf_len)
{
	if (cred_len > RPC_AUTH_MAX_BODY || verf_len > RPC_AUTH_MAX_BODY)
		return -EMSGSIZE;
	rpc_xdr_put_u32(x, xid);
	rpc_xdr_put_u32(x, RPC_CALL);
	rpc_xdr_put_u32(x, RPC_VERS);
	rpc_xdr_put_u32(x, prog);
	rpc_xdr_put_u32(x, vers);
	rpc_xdr_put_u32(x, proc);
	rpc_xdr_put_u32(x, cred_flavor);
	rpc_xdr_put_opaque(x, cred, cred_len);
	rpc_xdr_put_u32(x, verf_flavor);
	rpc_xdr_put_opaque(x, verf, verf_len);
	return x->x_err;
}

const char *rpc_accept_stat_name(uint32_t stat)
{
	static const char *const names[] = {
		"SUCCESS", "PROG_UNAVAIL", "PROG_MISMATCH",
		"PROC_UNAVAIL", "GARBAGE_ARGS", "SYSTEM_ERR",
	};
	return stat < sizeof(names) / sizeof(names[0]) ? names[stat] : "?";
}

const char *rpc_auth_stat_name(uint32_t stat)
{
	static const char *const names[] = {
		"AUTH_OK", "AUTH_BADCRED", "AUTH_REJECTEDCRED",
		"AUTH_BADVERF", "AUTH_REJECTEDVERF", "AUTH_TOOWEAK",
		"AUTH_INVALIDRESP", "AUTH_FAILED",
	};
	return stat < sizeof(names) / sizeof(names[0]) ? names[stat] : "?";
}

/* ---------------------------------------------------------------------- */
/* RFC 9289 STARTTLS probe                                                 */

static const char starttls_verf[8] = {'S', 'T', 'A', 'R', 'T', 'T', 'L', 'S'};

bool rpc_tls_is_probe(const struct rpc_call *c)
{
	return c->c_cred_flavor == RPC_AUTH_TLS && c->c_proc == 0;
}

int rpc_tls_probe_build(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
			uint32_t vers)
{
	return rpc_call_build(x, xid, prog, vers, 0, RPC_AUTH_TLS, NULL, 0,
			      RPC_AUTH_NONE, NULL, 0);
}

int rpc_tls_probe_reply(struct rpc_xdr *x, uint32_t xid)
{
	rpc_xdr_put_u32(x, xid);
	rpc_xdr_put_u32(x, RPC_REPLY);
	rpc_xdr_put_u32(x, RPC_MSG_ACCEPTED);
	rpc_xdr_put_u32(x, RPC_AUTH_NONE);
	rpc_xdr_put_opaque(x, starttls_verf, sizeof(starttls_verf));
	rpc_xdr_put_u32(x, RPC_ACC_SUCCESS);
	return x->x_err;
}

int rpc_tls_probe_check(const uint8_t *msg, size_t len, uint32_t xid)
{
	struct rpc_reply r;

	if (rpc_reply_parse(msg, len, &r) || r.r_xid != xid)
		return -EBADMSG;
	if (r.r_stat == RPC_MSG_ACCEPTED && r.r_accept_stat == RPC_ACC_SUCCESS &&
	    r.r_verf_flavor == RPC_AUTH_NONE && r.r_verf_len == 8 &&
	    !memcmp(msg + r.r_verf_off + 8, starttls_verf, 8))
		return 0;
	return -EPROTONOSUPPORT;
}
