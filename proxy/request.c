/*
 * proxy/request.c — the request record: a call decoded once at intake
 * (header, credential, the handles and the READ/WRITE/COMMIT fields of its
 * arguments, with their offsets in the message), read by every stage of
 * the pipeline after it.  A stage that changes the message's length
 * (export tags taken off the handles, a mapped credential of another
 * length) moves the recorded offsets with px_req_shift() instead of having
 * the next stage parse the bytes again.  See docs/design.md, "A call's
 * way through".
 */
#include "config.h"
#include "proxy/core.h"

#include <string.h>

struct decode_ctx {
	struct px_req *dc_rq;
	const uint8_t *dc_msg;
};

static void dc_fh(void *ctx, unsigned n, uint8_t *fh, uint32_t len)
{
	struct decode_ctx *dc = ctx;
	struct px_req *rq = dc->dc_rq;

	if (n < PX_REQ_FH) {
		rq->rq_fh_off[n] = (size_t)(fh - dc->dc_msg);
		rq->rq_fh_len[n] = len;
	}
	if (n + 1 > rq->rq_nfh)
		rq->rq_nfh = n + 1;
}

static void dc_read(void *ctx, uint64_t off, uint32_t count)
{
	struct px_req *rq = ((struct decode_ctx *)ctx)->dc_rq;

	rq->rq_off = off;
	rq->rq_count = count;
}

static void dc_write(void *ctx, uint64_t off, uint32_t count, uint32_t stable,
		     uint8_t *data, uint32_t len)
{
	struct decode_ctx *dc = ctx;
	struct px_req *rq = dc->dc_rq;

	rq->rq_off = off;
	rq->rq_count = count;
	rq->rq_stable = stable;
	rq->rq_data_off = (size_t)(data - dc->dc_msg);
	rq->rq_data_len = len;
}

static void dc_sattr(void *ctx, uint8_t *uid, uint8_t *gid)
{
	struct decode_ctx *dc = ctx;
	struct px_req *rq = dc->dc_rq;

	/* One sattr3 per call (SETATTR, CREATE, MKDIR, SYMLINK, MKNOD). */
	rq->rq_sattr_uid = uid ? (size_t)(uid - dc->dc_msg) : 0;
	rq->rq_sattr_gid = gid ? (size_t)(gid - dc->dc_msg) : 0;
}

enum rpc_call_verdict px_req_decode(struct px_req *rq, uint8_t *msg,
				    size_t len)
{
	struct decode_ctx dc = {.dc_rq = rq, .dc_msg = msg};
	struct rpc_nfs3_visit v = {.v_fh = dc_fh, .v_read_args = dc_read,
				   .v_write_args = dc_write,
				   .v_commit_args = dc_read,
				   .v_sattr = dc_sattr};
	struct rpc_call *h = &rq->rq_h;
	enum rpc_call_verdict verdict;
	uint8_t *args;
	size_t alen;
	ssize_t used;

	memset(rq, 0, offsetof(struct px_req, rq_cred));
	verdict = rpc_call_parse_cred(msg, len, h, &rq->rq_cred);
	if (verdict != RPC_CALL_OK)
		return verdict;
	rq->rq_sys = h->c_cred_flavor == RPC_AUTH_SYS;
	rq->rq_len = len;
	args = msg + h->c_args_off;
	alen = len - h->c_args_off;
	/* Arguments must be exactly what the procedure takes: a server
	 * answers a name over its bound NFS3ERR_NAMETOOLONG, anything else
	 * that does not parse is GARBAGE_ARGS.  Other programs are refused
	 * by the pipeline before their arguments matter. */
	if (h->c_prog == RPC_PROG_NFS && h->c_vers == 3 &&
	    h->c_proc < NFS3_NPROC)
		used = rpc_nfs3_walk_call(h->c_proc, args, alen, &v, &dc);
	else if (h->c_prog == RPC_PROG_MOUNT && h->c_vers == 3 &&
		 h->c_proc < MNT3_NPROC)
		used = rpc_mnt3_walk_call(h->c_proc, args, alen, &v, &dc);
	else
		used = (ssize_t)alen;
	if (used == -ENAMETOOLONG && h->c_prog == RPC_PROG_NFS)
		rq->rq_args = -ENAMETOOLONG;
	else if (used < 0 || (size_t)used != alen)
		rq->rq_args = -EBADMSG;
	return RPC_CALL_OK;
}

static void shift(size_t *off, size_t at, ptrdiff_t delta)
{
	if (*off && *off > at)
		*off = (size_t)((ptrdiff_t)*off + delta);
}

void px_req_shift(struct px_req *rq, size_t at, ptrdiff_t delta)
{
	for (unsigned i = 0; i < rq->rq_nfh && i < PX_REQ_FH; i++)
		shift(&rq->rq_fh_off[i], at, delta);
	shift(&rq->rq_data_off, at, delta);
	shift(&rq->rq_sattr_uid, at, delta);
	shift(&rq->rq_sattr_gid, at, delta);
	rq->rq_len = (size_t)((ptrdiff_t)rq->rq_len + delta);
}

bool px_req_fh(const struct px_req *rq, const uint8_t *msg,
	       const uint8_t **fh, uint32_t *len)
{
	if (!rq->rq_nfh || rq->rq_fh_len[0] > NFS3_FHSIZE ||
	    !rq->rq_fh_len[0])
		return false;
	*fh = msg + rq->rq_fh_off[0];
	*len = rq->rq_fh_len[0];
	return true;
}
