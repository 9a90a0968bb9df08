/*
 * tests/unit/test_rpc.c — CUnit tests of rpc/: the XDR cursor, record
 * marking (multi-fragment, oversized, empty, endless fragments, byte-by-
 * byte feeding, the direct-read path), call and reply headers, AUTH_SYS.
 */
#include "rpc/rpc.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------- */
/* XDR cursor                                                              */

static void test_xdr_roundtrip(void)
{
	uint8_t buf[64];
	struct rpc_xdr x;
	uint32_t u;
	uint64_t v;
	uint32_t len;
	uint8_t *p;
	bool b;

	rpc_xdr_init(&x, buf, sizeof(buf));
	CU_ASSERT_EQUAL(rpc_xdr_put_u32(&x, 0xdeadbeef), 0);
	CU_ASSERT_EQUAL(rpc_xdr_put_u64(&x, 0x0102030405060708ull), 0);
	CU_ASSERT_EQUAL(rpc_xdr_put_opaque(&x, "abcde", 5), 0);
	CU_ASSERT_EQUAL(rpc_xdr_put_u32(&x, 1), 0);
	CU_ASSERT_EQUAL(x.x_pos, 4 + 8 + 4 + 8 + 4);
	/* padding bytes are zero */
	CU_ASSERT_EQUAL(buf[16 + 5], 0);
	CU_ASSERT_EQUAL(buf[16 + 7], 0);

	rpc_xdr_init(&x, buf, x.x_pos);
	CU_ASSERT_EQUAL(rpc_xdr_u32(&x, &u), 0);
	CU_ASSERT_EQUAL(u, 0xdeadbeef);
	CU_ASSERT_EQUAL(rpc_xdr_u64(&x, &v), 0);
	CU_ASSERT_EQUAL(v, 0x0102030405060708ull);
	p = rpc_xdr_opaque(&x, 16, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_EQUAL(memcmp(p, "abcde", 5), 0);
	CU_ASSERT_EQUAL(rpc_xdr_bool(&x, &b), 0);
	CU_ASSERT_TRUE(b);
	CU_ASSERT_EQUAL(rpc_xdr_left(&x), 0);
	/* reading past the end fails, and the failure sticks */
	CU_ASSERT_EQUAL(rpc_xdr_u32(&x, &u), -EBADMSG);
	CU_ASSERT_EQUAL(x.x_err, -EBADMSG);
}

static void test_xdr_patch_in_place(void)
{
	uint8_t buf[8] = {0, 0, 0, 7, 0, 0, 0, 9};
	struct rpc_xdr x;
	uint8_t *p;
	uint32_t u;

	rpc_xdr_init(&x, buf, sizeof(buf));
	p = rpc_xdr_fixed(&x, 4);
	CU_ASSERT_PTR_EQUAL(p, buf);
	rpc_put32(p, 1234);
	rpc_xdr_init(&x, buf, sizeof(buf));
	rpc_xdr_u32(&x, &u);
	CU_ASSERT_EQUAL(u, 1234);
	rpc_xdr_u32(&x, &u);
	CU_ASSERT_EQUAL(u, 9);
}

/* An opaque built from pieces of odd lengths (the write-back flusher
 * coalesces records): bytes back to back, one padding at the end, and a
 * reader gets exactly the concatenation. */
static void test_xdr_put_bytes_pieces(void)
{
	const char *pieces[] = {"a", "bc", "defgh", "ijklmnopqrstu"};
	uint8_t buf[64], *p;
	struct rpc_xdr x;
	uint32_t len;

	rpc_xdr_init(&x, buf, sizeof(buf));
	CU_ASSERT_EQUAL(rpc_xdr_put_u32(&x, 21), 0);
	for (unsigned i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(rpc_xdr_put_bytes(&x, pieces[i],
						  strlen(pieces[i])), 0);
	CU_ASSERT_EQUAL(rpc_xdr_put_bytes(&x, "\0\0\0", 3), 0);
	CU_ASSERT_EQUAL(x.x_pos, 4u + 24u);
	rpc_xdr_init(&x, buf, x.x_pos);
	p = rpc_xdr_opaque(&x, 64, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(len, 21u);
	CU_ASSERT_EQUAL(memcmp(p, "abcdefghijklmnopqrstu", 21), 0);
	CU_ASSERT_EQUAL(x.x_pos, x.x_len); /* nothing left over */
	/* Past the end: -ENOSPC, sticky. */
	rpc_xdr_init(&x, buf, 6);
	CU_ASSERT_EQUAL(rpc_xdr_put_bytes(&x, "abcd", 4), 0);
	CU_ASSERT_EQUAL(rpc_xdr_put_bytes(&x, "efg", 3), -ENOSPC);
	CU_ASSERT_EQUAL(rpc_xdr_put_bytes(&x, "e", 1), -ENOSPC);
}

static void test_xdr_bad(void)
{
	uint8_t buf[12];
	struct rpc_xdr x;
	uint32_t len;
	bool b;

	/* bool other than 0/1 */
	rpc_put32(buf, 2);
	rpc_xdr_init(&x, buf, 4);
	CU_ASSERT_EQUAL(rpc_xdr_bool(&x, &b), -EBADMSG);
	/* opaque length above its bound */
	rpc_put32(buf, 17);
	rpc_xdr_init(&x, buf, sizeof(buf));
	CU_ASSERT_PTR_NULL(rpc_xdr_opaque(&x, 16, &len));
	CU_ASSERT_EQUAL(x.x_err, -EMSGSIZE);
	/* opaque longer than the buffer */
	rpc_put32(buf, 9);
	rpc_xdr_init(&x, buf, sizeof(buf));
	CU_ASSERT_PTR_NULL(rpc_xdr_opaque(&x, 100, &len));
	CU_ASSERT_EQUAL(x.x_err, -EBADMSG);
	/* huge length must not wrap */
	rpc_put32(buf, 0xffffffffu);
	rpc_xdr_init(&x, buf, sizeof(buf));
	CU_ASSERT_PTR_NULL(rpc_xdr_opaque(&x, 0xffffffffu, &len));
	/* encoder overflow */
	rpc_xdr_init(&x, buf, 6);
	CU_ASSERT_EQUAL(rpc_xdr_put_u32(&x, 1), 0);
	CU_ASSERT_EQUAL(rpc_xdr_put_u32(&x, 1), -ENOSPC);
	CU_ASSERT_EQUAL(rpc_xdr_put_u32(&x, 1), -ENOSPC);
}

/* ---------------------------------------------------------------------- */
/* Record marking                                                          */

/* Build a stream of one message split into the given fragment sizes. */
static size_t make_stream(uint8_t *out, const uint8_t *msg,
			  const size_t *frags, int nfrags)
{
	size_t o = 0, m = 0;

	for (int i = 0; i < nfrags; i++) {
		uint32_t mark = (uint32_t)frags[i];

		if (i == nfrags - 1)
			mark |= RPC_RM_LAST;
		rpc_put32(out + o, mark);
		o += 4;
		memcpy(out + o, msg + m, frags[i]);
		o += frags[i];
		m += frags[i];
	}
	return o;
}

static void test_rec_fragments_bytewise(void)
{
	uint8_t msg[300], stream[400];
	size_t frags[] = {100, 0, 150, 50};
	size_t n, got = 0, len;
	struct rpc_rec r;
	uint8_t *buf;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	n = make_stream(stream, msg, frags, 4);
	rpc_rec_init(&r, 1024);
	/* one byte at a time: every split point of headers and bodies */
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_FALSE(rpc_rec_ready(&r));
		CU_ASSERT_EQUAL(rpc_rec_feed(&r, stream + i, 1), 1);
		got++;
	}
	CU_ASSERT_TRUE_FATAL(rpc_rec_ready(&r));
	buf = rpc_rec_take(&r, &len);
	CU_ASSERT_EQUAL(len, sizeof(msg));
	CU_ASSERT_EQUAL(memcmp(buf + RPC_REC_HEADROOM, msg, len), 0);
	CU_ASSERT_FALSE(rpc_rec_partial(&r));
	free(buf);
	rpc_rec_free(&r);
}

static void test_rec_two_messages_one_feed(void)
{
	uint8_t stream[64];
	size_t frags1[] = {8}, frags2[] = {12};
	uint8_t m1[8] = "AAAAAAA", m2[12] = "BBBBBBBBBBB";
	size_t n = make_stream(stream, m1, frags1, 1), len;
	struct rpc_rec r;
	ssize_t k;
	uint8_t *buf;

	n += make_stream(stream + n, m2, frags2, 1);
	rpc_rec_init(&r, 1024);
	k = rpc_rec_feed(&r, stream, n);
	/* stops after the first message so the caller can take it */
	CU_ASSERT_EQUAL(k, 12);
	buf = rpc_rec_take(&r, &len);
	CU_ASSERT_EQUAL(len, 8);
	CU_ASSERT_EQUAL(memcmp(buf + 4, m1, 8), 0);
	free(buf);
	CU_ASSERT_EQUAL(rpc_rec_feed(&r, stream + k, n - (size_t)k),
			(ssize_t)(n - (size_t)k));
	buf = rpc_rec_take(&r, &len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	CU_ASSERT_EQUAL(len, 12);
	CU_ASSERT_EQUAL(memcmp(buf + 4, m2, 12), 0);
	free(buf);
	rpc_rec_free(&r);
}

static void test_rec_oversized(void)
{
	uint8_t hdr[4];
	struct rpc_rec r;

	rpc_rec_init(&r, 1000);
	rpc_put32(hdr, RPC_RM_LAST | 1001);
	CU_ASSERT_EQUAL(rpc_rec_feed(&r, hdr, 4), -EMSGSIZE);
	rpc_rec_free(&r);

	/* fragments that only together exceed the bound */
	uint8_t stream[1300], msg[1200] = {0};
	size_t frags[] = {600, 600};
	size_t n = make_stream(stream, msg, frags, 2);
	ssize_t k;

	rpc_rec_init(&r, 1000);
	k = rpc_rec_feed(&r, stream, n);
	CU_ASSERT_EQUAL(k, -EMSGSIZE);
	rpc_rec_free(&r);
}

static void test_rec_zero_length(void)
{
	uint8_t hdr[4];
	struct rpc_rec r;

	rpc_rec_init(&r, 1000);
	rpc_put32(hdr, RPC_RM_LAST | 0);
	CU_ASSERT_EQUAL(rpc_rec_feed(&r, hdr, 4), -EBADMSG);
	rpc_rec_free(&r);
}

static void test_rec_endless_fragments(void)
{
	uint8_t frag[8];
	struct rpc_rec r;
	ssize_t k = 0;
	unsigned i;

	/* non-final 4-byte fragments: bounded by RPC_REC_MAX_FRAGS long
	 * before r_max, so memory stays small */
	rpc_rec_init(&r, 1 << 20);
	rpc_put32(frag, 4);
	memset(frag + 4, 'x', 4);
	for (i = 0; i < 100000; i++) {
		k = rpc_rec_feed(&r, frag, sizeof(frag));
		if (k < 0)
			break;
	}
	CU_ASSERT_EQUAL(k, -EMSGSIZE);
	CU_ASSERT_EQUAL(i, RPC_REC_MAX_FRAGS);
	CU_ASSERT_TRUE(r.r_cap <= 8192);
	rpc_rec_free(&r);

	/* empty non-final fragments: no memory at all, still bounded */
	rpc_rec_init(&r, 1 << 20);
	rpc_put32(frag, 0);
	for (i = 0; i < 100000; i++)
		if ((k = rpc_rec_feed(&r, frag, 4)) < 0)
			break;
	CU_ASSERT_EQUAL(k, -EMSGSIZE);
	rpc_rec_free(&r);
}

static void test_rec_direct(void)
{
	uint8_t msg[100000], hdr[4];
	struct rpc_rec r;
	size_t room, len;
	uint8_t *p, *buf;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i ^ (i >> 8));
	rpc_rec_init(&r, 200000);
	CU_ASSERT_PTR_NULL(rpc_rec_direct(&r, &room)); /* no header yet */
	rpc_put32(hdr, RPC_RM_LAST | sizeof(msg));
	CU_ASSERT_EQUAL(rpc_rec_feed(&r, hdr, 4), 4);
	CU_ASSERT_EQUAL(rpc_rec_feed(&r, msg, 1000), 1000);
	p = rpc_rec_direct(&r, &room);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(room, sizeof(msg) - 1000);
	memcpy(p, msg + 1000, room);
	CU_ASSERT_EQUAL(rpc_rec_commit(&r, room), 0);
	CU_ASSERT_TRUE(rpc_rec_ready(&r));
	CU_ASSERT_EQUAL(rpc_rec_commit(&r, 1), -EINVAL);
	buf = rpc_rec_take(&r, &len);
	CU_ASSERT_EQUAL(len, sizeof(msg));
	CU_ASSERT_EQUAL(memcmp(buf + RPC_REC_HEADROOM, msg, len), 0);
	free(buf);
	rpc_rec_free(&r);
}

/* ---------------------------------------------------------------------- */
/* Calls and replies                                                       */

static size_t build_authsys_call(uint8_t *out, size_t cap, uint32_t ngids,
				 uint32_t machlen)
{
	uint8_t cred[512];
	struct rpc_xdr cx, x;
	char mach[300];

	memset(mach, 'm', sizeof(mach));
	rpc_xdr_init(&cx, cred, sizeof(cred));
	rpc_xdr_put_u32(&cx, 12345);
	rpc_xdr_put_opaque(&cx, mach, machlen);
	rpc_xdr_put_u32(&cx, 1001);
	rpc_xdr_put_u32(&cx, 100);
	rpc_xdr_put_u32(&cx, ngids);
	for (uint32_t i = 0; i < ngids; i++)
		rpc_xdr_put_u32(&cx, 200 + i);
	rpc_xdr_init(&x, out, cap);
	/* build by hand: rpc_call_build refuses bodies over 400 bytes */
	rpc_xdr_put_u32(&x, 0x11223344);
	rpc_xdr_put_u32(&x, RPC_CALL);
	rpc_xdr_put_u32(&x, RPC_VERS);
	rpc_xdr_put_u32(&x, RPC_PROG_NFS);
	rpc_xdr_put_u32(&x, 3);
	rpc_xdr_put_u32(&x, NFS3_GETATTR);
	rpc_xdr_put_u32(&x, RPC_AUTH_SYS);
	rpc_xdr_put_opaque(&x, cred, (uint32_t)cx.x_pos);
	rpc_xdr_put_u32(&x, RPC_AUTH_NONE);
	rpc_xdr_put_u32(&x, 0);
	rpc_xdr_put_opaque(&x, "fh", 2);
	return x.x_pos;
}

static void test_call_authsys(void)
{
	uint8_t msg[1024];
	size_t n = build_authsys_call(msg, sizeof(msg), 16, 255);
	struct rpc_call c;
	struct rpc_authsys a;

	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_OK);
	CU_ASSERT_EQUAL(c.c_xid, 0x11223344);
	CU_ASSERT_EQUAL(c.c_prog, RPC_PROG_NFS);
	CU_ASSERT_EQUAL(c.c_vers, 3);
	CU_ASSERT_EQUAL(c.c_proc, NFS3_GETATTR);
	CU_ASSERT_EQUAL(c.c_cred_flavor, RPC_AUTH_SYS);
	CU_ASSERT_EQUAL(c.c_args_off, n - 8);
	CU_ASSERT_EQUAL(rpc_authsys_parse(msg + c.c_cred_body, c.c_cred_len, &a),
			0);
	CU_ASSERT_EQUAL(a.as_uid, 1001);
	CU_ASSERT_EQUAL(a.as_gid, 100);
	CU_ASSERT_EQUAL(a.as_ngids, 16);
	CU_ASSERT_EQUAL(a.as_gids[15], 215);
	CU_ASSERT_EQUAL(a.as_machine_len, 255);
	CU_ASSERT_EQUAL(rpc_authsys_size(&a), c.c_cred_len);

	/* encode gives the same bytes back */
	uint8_t out[512];
	struct rpc_xdr x;

	rpc_xdr_init(&x, out, sizeof(out));
	CU_ASSERT_EQUAL(rpc_authsys_encode(&x, &a), 0);
	CU_ASSERT_EQUAL(x.x_pos, c.c_cred_len);
	CU_ASSERT_EQUAL(memcmp(out, msg + c.c_cred_body, x.x_pos), 0);
}

static void test_call_17_gids(void)
{
	uint8_t msg[1024];
	size_t n = build_authsys_call(msg, sizeof(msg), 17, 8);
	struct rpc_call c;

	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_BADCRED);
	CU_ASSERT_EQUAL(c.c_xid, 0x11223344);
}

static void test_call_long_machine(void)
{
	uint8_t msg[1024];
	size_t n = build_authsys_call(msg, sizeof(msg), 0, 256);
	struct rpc_call c;

	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_BADCRED);
	/* a 300-byte name makes the body exceed nothing but its own bound */
	n = build_authsys_call(msg, sizeof(msg), 0, 300);
	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_BADCRED);
}

static void test_call_truncated(void)
{
	uint8_t msg[1024];
	size_t n = build_authsys_call(msg, sizeof(msg), 4, 10);
	struct rpc_call c;

	/* every prefix is refused, none crashes; the verdict depends on
	 * where the cut falls */
	for (size_t i = 0; i < n - 8; i++) {
		enum rpc_call_verdict v = rpc_call_parse(msg, i, &c);

		CU_ASSERT_NOT_EQUAL(v, RPC_CALL_OK);
		if (i < 8)
			CU_ASSERT_EQUAL(v, RPC_CALL_DROP);
	}
	/* cut inside the AUTH_SYS body but with a consistent length word:
	 * the body is malformed */
	struct rpc_authsys a;

	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_OK);
	CU_ASSERT_NOT_EQUAL(rpc_authsys_parse(msg + c.c_cred_body,
					      c.c_cred_len - 4, &a), 0);
	/* trailing bytes inside the credential are garbage as well */
	uint8_t body[128];

	memcpy(body, msg + c.c_cred_body, c.c_cred_len);
	memset(body + c.c_cred_len, 0, 4);
	CU_ASSERT_EQUAL(rpc_authsys_parse(body, c.c_cred_len + 4, &a), -EBADMSG);
}

static void test_call_bad_rpcvers_and_type(void)
{
	uint8_t msg[1024];
	size_t n = build_authsys_call(msg, sizeof(msg), 0, 4);
	struct rpc_call c;

	rpc_put32(msg + 8, 3);
	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_RPCVERS);
	CU_ASSERT_EQUAL(c.c_xid, 0x11223344);
	rpc_put32(msg + 8, 2);
	rpc_put32(msg + 4, RPC_REPLY);
	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_DROP);
	rpc_put32(msg + 4, 7);
	CU_ASSERT_EQUAL(rpc_call_parse(msg, n, &c), RPC_CALL_DROP);
}

static void test_call_auth_tls_probe(void)
{
	uint8_t msg[128];
	struct rpc_xdr x;
	struct rpc_call c;

	rpc_xdr_init(&x, msg, sizeof(msg));
	CU_ASSERT_EQUAL(rpc_call_build(&x, 9, RPC_PROG_NFS, 3, 0, RPC_AUTH_TLS,
				       NULL, 0, RPC_AUTH_NONE, NULL, 0), 0);
	CU_ASSERT_EQUAL(rpc_call_parse(msg, x.x_pos, &c), RPC_CALL_OK);
	CU_ASSERT_EQUAL(c.c_cred_flavor, RPC_AUTH_TLS);
	CU_ASSERT_EQUAL(c.c_args_off, x.x_pos);
	/* an AUTH_TLS credential with a body is malformed */
	rpc_xdr_init(&x, msg, sizeof(msg));
	rpc_call_build(&x, 9, RPC_PROG_NFS, 3, 0, RPC_AUTH_TLS, "zz", 2,
		       RPC_AUTH_NONE, NULL, 0);
	CU_ASSERT_EQUAL(rpc_call_parse(msg, x.x_pos, &c), RPC_CALL_BADCRED);
	/* oversized verifier */
	CU_ASSERT_EQUAL(rpc_call_build(&x, 9, 1, 1, 0, 0, NULL, 0, 0, msg, 401),
			-EMSGSIZE);
}

static void test_reply_builders(void)
{
	uint8_t buf[64];
	struct rpc_xdr x;
	struct rpc_reply r;

	for (uint32_t st = RPC_ACC_SUCCESS; st <= RPC_ACC_SYSTEM_ERR; st++) {
		rpc_xdr_init(&x, buf, sizeof(buf));
		CU_ASSERT_EQUAL(rpc_reply_accepted(&x, 77, st, 3, 3), 0);
		CU_ASSERT_EQUAL(rpc_reply_parse(buf, x.x_pos, &r), 0);
		CU_ASSERT_EQUAL(r.r_xid, 77);
		CU_ASSERT_EQUAL(r.r_stat, RPC_MSG_ACCEPTED);
		CU_ASSERT_EQUAL(r.r_accept_stat, st);
		CU_ASSERT_EQUAL(r.r_res_off, x.x_pos);
		if (st == RPC_ACC_PROG_MISMATCH) {
			CU_ASSERT_EQUAL(r.r_low, 3);
			CU_ASSERT_EQUAL(r.r_high, 3);
		}
	}
	rpc_xdr_init(&x, buf, sizeof(buf));
	CU_ASSERT_EQUAL(rpc_reply_rpc_mismatch(&x, 5), 0);
	CU_ASSERT_EQUAL(rpc_reply_parse(buf, x.x_pos, &r), 0);
	CU_ASSERT_EQUAL(r.r_stat, RPC_MSG_DENIED);
	CU_ASSERT_EQUAL(r.r_reject_stat, RPC_REJ_MISMATCH);
	CU_ASSERT_EQUAL(r.r_low, 2);
	for (uint32_t why = RPC_AUTH_BADCRED; why <= RPC_AUTH_FAILED; why++) {
		rpc_xdr_init(&x, buf, sizeof(buf));
		CU_ASSERT_EQUAL(rpc_reply_auth_error(&x, 6, why), 0);
		CU_ASSERT_EQUAL(rpc_reply_parse(buf, x.x_pos, &r), 0);
		CU_ASSERT_EQUAL(r.r_reject_stat, RPC_REJ_AUTH_ERROR);
		CU_ASSERT_EQUAL(r.r_auth_stat, why);
	}
	/* truncated replies and unknown statuses are errors */
	rpc_xdr_init(&x, buf, sizeof(buf));
	rpc_reply_accepted(&x, 77, RPC_ACC_PROG_MISMATCH, 3, 3);
	for (size_t i = 0; i < x.x_pos; i++)
		CU_ASSERT_EQUAL(rpc_reply_parse(buf, i, &r), -EBADMSG);
	rpc_put32(buf + 20, 6);
	CU_ASSERT_EQUAL(rpc_reply_parse(buf, x.x_pos, &r), -EBADMSG);
	CU_ASSERT_STRING_EQUAL(rpc_accept_stat_name(RPC_ACC_GARBAGE_ARGS),
			       "GARBAGE_ARGS");
	CU_ASSERT_STRING_EQUAL(rpc_auth_stat_name(RPC_AUTH_TOOWEAK),
			       "AUTH_TOOWEAK");
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("rpc", NULL, NULL);
	CU_add_test(s, "xdr round trip", test_xdr_roundtrip);
	CU_add_test(s, "xdr patch in place", test_xdr_patch_in_place);
	CU_add_test(s, "xdr bad input", test_xdr_bad);
	CU_add_test(s, "xdr opaque from odd pieces", test_xdr_put_bytes_pieces);
	CU_add_test(s, "record fragments fed bytewise", test_rec_fragments_bytewise);
	CU_add_test(s, "record two messages one feed", test_rec_two_messages_one_feed);
	CU_add_test(s, "record oversized", test_rec_oversized);
	CU_add_test(s, "record zero length", test_rec_zero_length);
	CU_add_test(s, "record endless fragments", test_rec_endless_fragments);
	CU_add_test(s, "record direct read path", test_rec_direct);
	CU_add_test(s, "call AUTH_SYS 16 gids 255-byte name", test_call_authsys);
	CU_add_test(s, "call AUTH_SYS 17 gids", test_call_17_gids);
	CU_add_test(s, "call AUTH_SYS long machine name", test_call_long_machine);
	CU_add_test(s, "call truncated", test_call_truncated);
	CU_add_test(s, "call bad rpcvers / type", test_call_bad_rpcvers_and_type);
	CU_add_test(s, "call AUTH_TLS probe", test_call_auth_tls_probe);
	CU_add_test(s, "reply builders and parser", test_reply_builders);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
