/*
 * tests/fuzz/fuzz_call.c — libFuzzer target: one RPC call message (no
 * record mark) through rpc_call_parse, rpc_authsys_parse and the NFSv3 or
 * MOUNTv3 argument walker, the path every client request takes in gridvfsd,
 * and the proxy's request record (proxy/request.c) decoded from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "proxy/core.h"
#include "tests/fuzz/fuzz_visit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void call_check_offsets(const struct rpc_call *c, size_t len)
{
	if (c->c_cred_body + c->c_cred_len > len ||
	    c->c_verf_body + c->c_verf_len > len || c->c_args_off > len ||
	    c->c_cred_off >= c->c_cred_body || c->c_verf_off >= c->c_verf_body ||
	    c->c_verf_off < c->c_cred_body + c->c_cred_len ||
	    c->c_args_off < c->c_verf_body + c->c_verf_len ||
	    c->c_cred_len > RPC_AUTH_MAX_BODY ||
	    c->c_verf_len > RPC_AUTH_MAX_BODY) {
		fprintf(stderr, "fuzz_call: inconsistent header offsets\n");
		abort();
	}
}

static void call_authsys(const uint8_t *msg, const struct rpc_call *c)
{
	struct rpc_authsys a, b;
	uint8_t enc[RPC_AUTH_MAX_BODY];
	struct rpc_xdr x;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	if (rpc_authsys_parse(msg + c->c_cred_body, c->c_cred_len, &a))
		return;
	if (a.as_ngids > RPC_AUTHSYS_MAX_GIDS ||
	    a.as_machine_len > RPC_AUTHSYS_MAX_MACHINE)
		abort();
	/* The proxy rewrites AUTH_SYS by re-encoding it: a credential that
	 * parsed must re-encode to the same size and decode to the same
	 * values (padding bytes may differ: they are not checked). */
	rpc_xdr_init(&x, enc, sizeof(enc));
	if (rpc_authsys_encode(&x, &a) || x.x_pos != c->c_cred_len ||
	    rpc_authsys_size(&a) != c->c_cred_len ||
	    rpc_authsys_parse(enc, x.x_pos, &b) || memcmp(&a, &b, sizeof(a))) {
		fprintf(stderr, "fuzz_call: AUTH_SYS does not round-trip\n");
		abort();
	}
}

/* The request record points inside the message, and px_req_shift moves
 * exactly the offsets after the point of a change. */
static void call_request(uint8_t *msg, size_t size)
{
	struct px_req rq;
	size_t before;

	if (px_req_decode(&rq, msg, size) != RPC_CALL_OK)
		return;
	if (rq.rq_len != size || rq.rq_h.c_args_off > size)
		abort();
	for (unsigned i = 0; i < rq.rq_nfh && i < PX_REQ_FH; i++)
		if (rq.rq_fh_off[i] < rq.rq_h.c_args_off ||
		    rq.rq_fh_off[i] + rq.rq_fh_len[i] > size)
			abort();
	if (rq.rq_data_off && rq.rq_data_off + rq.rq_data_len > size)
		abort();
	if ((rq.rq_sattr_uid && rq.rq_sattr_uid + 4 > size) ||
	    (rq.rq_sattr_gid && rq.rq_sattr_gid + 4 > size))
		abort();
	if (rq.rq_args == 0 && rq.rq_sys &&
	    rq.rq_cred.as_ngids > RPC_AUTHSYS_MAX_GIDS)
		abort();
	before = rq.rq_fh_off[0];
	px_req_shift(&rq, rq.rq_h.c_args_off, 8);
	if (rq.rq_nfh && before > rq.rq_h.c_args_off &&
	    rq.rq_fh_off[0] != before + 8)
		abort();
	if (rq.rq_len != size + 8)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_call c;
	uint8_t *msg;

	/* An exact-size heap copy: ASan then catches any read past the end. */
	msg = malloc(size ? size : 1);
	if (!msg)
		return 0;
	memcpy(msg, data, size);
	memset(&c, 0, sizeof(c));
	call_request(msg, size);
	if (rpc_call_parse(msg, size, &c) != RPC_CALL_OK)
		goto out;
	call_check_offsets(&c, size);
	if (c.c_cred_flavor == RPC_AUTH_SYS)
		call_authsys(msg, &c);
	/* Every program gets walked so the walkers see mutated bodies even
	 * when the header's program number was mutated too. */
	if (c.c_prog == RPC_PROG_MOUNT)
		fz_walk_check(rpc_mnt3_walk_call, c.c_proc, msg + c.c_args_off,
			      size - c.c_args_off, 0);
	else
		fz_walk_check(rpc_nfs3_walk_call, c.c_proc, msg + c.c_args_off,
			      size - c.c_args_off, 0);
out:
	free(msg);
	return 0;
}
