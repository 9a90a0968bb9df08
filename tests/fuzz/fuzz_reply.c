/*
 * tests/fuzz/fuzz_reply.c — libFuzzer target: an upstream reply through
 * rpc_reply_parse and the NFSv3 or MOUNTv3 result walker.  The first input
 * byte names the procedure the reply answers (what the proxy knows from
 * the pending call): below 0x80 NFSv3 proc b % 22, else MOUNTv3 (b & 0x7f) % 6.
 * The rest is the reply message without its record mark.  Every reply but
 * NULL's (void) must report its nfsstat3 first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"
#include "tests/fuzz/fuzz_visit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_reply r;
	uint8_t *msg;
	size_t len;
	bool mount;
	uint32_t proc;

	if (size < 1)
		return 0;
	mount = data[0] & 0x80;
	proc = mount ? (data[0] & 0x7fu) % MNT3_NPROC : data[0] % NFS3_NPROC;
	len = size - 1;
	msg = malloc(len ? len : 1);
	if (!msg)
		return 0;
	memcpy(msg, data + 1, len);
	memset(&r, 0, sizeof(r));
	if (rpc_reply_parse(msg, len, &r) ||
	    r.r_stat != RPC_MSG_ACCEPTED || r.r_accept_stat != RPC_ACC_SUCCESS)
		goto out;
	if (r.r_res_off > len || r.r_verf_off > r.r_res_off) {
		fprintf(stderr, "fuzz_reply: results offset out of range\n");
		abort();
	}
	if (mount)
		fz_walk_check(rpc_mnt3_walk_reply, proc, msg + r.r_res_off,
			      len - r.r_res_off, 0);
	else
		fz_walk_check(rpc_nfs3_walk_reply, proc, msg + r.r_res_off,
			      len - r.r_res_off, proc != NFS3_NULL);
out:
	free(msg);
	return 0;
}
