/*
 * tests/fuzz/fuzz_probe.c — libFuzzer target: RFC 9289's STARTTLS probe
 * as both roles see it.  Byte 0 chooses the side; the rest is one message.
 *
 *  - even: a call, as the server role's first record on a connection.
 *    rpc_call_parse() and rpc_tls_is_probe() decide; a probe must be a
 *    NULL call with AUTH_TLS, and the answer the proxy would build for it
 *    must be accepted by the client side's check.
 *  - odd: a reply to our probe, as the client role's link reads it (the
 *    xid it waits for is the message's first word, or that plus one to
 *    reach the mismatch arm).  rpc_tls_probe_check() accepting it must
 *    mean the independent decoding below: MSG_ACCEPTED, an AUTH_NONE
 *    verifier of exactly "STARTTLS", SUCCESS; the canonical 32-byte answer
 *    must always be accepted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fp_fail(const char *why)
{
	fprintf(stderr, "fuzz_probe: %s\n", why);
	abort();
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void call_side(uint8_t *msg, size_t len)
{
	struct rpc_call c;
	uint8_t out[64];
	struct rpc_xdr x;

	if (rpc_call_parse(msg, len, &c) != RPC_CALL_OK)
		return;
	if (c.c_args_off > len || c.c_cred_off > len)
		fp_fail("call offsets outside the message");
	if (!rpc_tls_is_probe(&c))
		return;
	if (c.c_proc != 0 || c.c_cred_flavor != RPC_AUTH_TLS)
		fp_fail("a probe that is not a NULL call with AUTH_TLS");
	rpc_xdr_init(&x, out, sizeof(out));
	if (rpc_tls_probe_reply(&x, c.c_xid) || x.x_pos != 32)
		fp_fail("probe reply not built");
	if (rpc_tls_probe_check(out, x.x_pos, c.c_xid) != 0)
		fp_fail("our own STARTTLS answer is refused by our check");
	if (rpc_tls_probe_check(out, x.x_pos, c.c_xid + 1) != -EBADMSG)
		fp_fail("an answer to another xid was not refused");
}

static void reply_side(const uint8_t *msg, size_t len, bool other_xid)
{
	uint32_t xid = len >= 4 ? be32(msg) + (other_xid ? 1u : 0u) : 0;
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	if (!copy)
		return;
	memcpy(copy, msg, len);
	rc = rpc_tls_probe_check(copy, len, xid);
	if (memcmp(copy, msg, len))
		fp_fail("the check wrote into the message");
	if (rc != 0 && rc != -EBADMSG && rc != -EPROTONOSUPPORT)
		fp_fail("unexpected return value");
	if (rc == 0) {
		if (len < 32 || be32(msg) != xid || be32(msg + 4) != 1 ||
		    be32(msg + 8) != 0 || be32(msg + 12) != RPC_AUTH_NONE ||
		    be32(msg + 16) != 8 || memcmp(msg + 20, "STARTTLS", 8) ||
		    be32(msg + 28) != RPC_ACC_SUCCESS)
			fp_fail("accepted something that is not STARTTLS");
	}
	if (len >= 4) { /* the canonical answer to this xid */
		uint8_t ok[32];
		struct rpc_xdr x;

		rpc_xdr_init(&x, ok, sizeof(ok));
		rpc_tls_probe_reply(&x, xid);
		if (rpc_tls_probe_check(ok, sizeof(ok), xid) != 0)
			fp_fail("the canonical STARTTLS answer was refused");
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *msg;

	if (size < 1)
		return 0;
	/* An exact-size heap copy: any read past it is an ASan report. */
	msg = malloc(size - 1 ? size - 1 : 1);
	if (!msg)
		return 0;
	memcpy(msg, data + 1, size - 1);
	if (data[0] % 2 == 0)
		call_side(msg, size - 1);
	else
		reply_side(msg, size - 1, data[0] & 2);
	free(msg);
	return 0;
}
