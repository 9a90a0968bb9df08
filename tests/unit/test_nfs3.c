/*
 * tests/unit/test_nfs3.c — the NFSv3 / MOUNTv3 walkers against messages
 * built by an independent encoder (rpcgen from rpc/nfs3.x, see
 * nfs3/nfs3_enc.h), plus hand-made malformed messages.
 */
#include "rpc/rpc.h"
#include "nfs3/nfs3_enc.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#define BUFSZ 70000u
#define PATCH_FATTR 0xA0000000u
#define PATCH_SATTR 0xB0000000u
#define NF3CHR 4u

/* ---------------------------------------------------------------------- */
/* A visitor that records what it saw and checks the encoder's markers     */

struct col {
	const uint8_t *c_base;
	size_t c_len;
	uint32_t c_fattr_uid, c_sattr_uid; /* marker bases expected */
	bool c_sparse;                     /* sattr uid expected unset */
	bool c_patch;                      /* rewrite uids through pointers */
	char c_seq[256];                   /* event letters in order */
	unsigned c_nseq, c_nf, c_np, c_ns, c_nh;
	unsigned c_bad;                    /* marker or bounds mismatches */
	uint32_t c_status;
	uint64_t c_off;
	uint32_t c_count, c_stable, c_len_data;
	bool c_eof;
	uint8_t *c_data, *c_verf;
};

static void col_init(struct col *c, const uint8_t *base, size_t len)
{
	memset(c, 0, sizeof(*c));
	c->c_base = base;
	c->c_len = len;
	c->c_fattr_uid = 1000;
	c->c_sattr_uid = 3000;
}

static void col_ev(struct col *c, char k)
{
	if (c->c_nseq + 1 < sizeof(c->c_seq))
		c->c_seq[c->c_nseq++] = k;
}

/* p[0..n) must lie inside the message. */
static void col_in(struct col *c, const uint8_t *p, size_t n)
{
	if (!p || p < c->c_base || p + n > c->c_base + c->c_len)
		c->c_bad++;
}

static void cb_fattr(void *ctx, uint8_t *a)
{
	struct col *c = ctx;
	unsigned i = c->c_nf++;

	col_ev(c, 'F');
	col_in(c, a, NFS3_FATTR_SIZE);
	/* fattr3 offsets from RFC 1813: uid 12, gid 16, fileid 52 */
	if (rpc_get32(a + 12) != c->c_fattr_uid + i ||
	    rpc_get32(a + 16) != 2000 + i || rpc_get64(a + 52) != 0xF000 + i ||
	    rpc_get32(a) != 1 + i % 7)
		c->c_bad++;
	if (c->c_patch)
		rpc_put32(a + NFS3_FATTR_UID, PATCH_FATTR + i);
}

static void cb_wcc_pre(void *ctx, uint8_t *w)
{
	struct col *c = ctx;

	col_ev(c, 'P');
	col_in(c, w, NFS3_WCC_ATTR_SIZE);
	if (rpc_get64(w) != 0x5000 + c->c_np++)
		c->c_bad++;
}

static void cb_sattr(void *ctx, uint8_t *uid, uint8_t *gid)
{
	struct col *c = ctx;
	unsigned i = c->c_ns++;

	col_ev(c, 'A');
	if (c->c_sparse ? uid != NULL
			: !uid || rpc_get32(uid) != c->c_sattr_uid + i)
		c->c_bad++;
	if (!gid || rpc_get32(gid) != 4000 + i)
		c->c_bad++;
	if (uid)
		col_in(c, uid, 4);
	if (gid)
		col_in(c, gid, 4);
	if (c->c_patch && uid)
		rpc_put32(uid, PATCH_SATTR + i);
}

static void cb_fh(void *ctx, unsigned n, uint8_t *fh, uint32_t len)
{
	struct col *c = ctx;
	uint32_t j;

	col_ev(c, 'H');
	col_in(c, fh, len);
	if (n != c->c_nh++ || len != enc_fh_len(n))
		c->c_bad++;
	for (j = 0; j < len && n < 64; j++)
		if (fh[j] != enc_fh_byte(n, j))
			c->c_bad++;
}

static void cb_read_args(void *ctx, uint64_t off, uint32_t count)
{
	struct col *c = ctx;

	col_ev(c, 'r');
	c->c_off = off;
	c->c_count = count;
}

static void cb_write_args(void *ctx, uint64_t off, uint32_t count,
			  uint32_t stable, uint8_t *data, uint32_t len)
{
	struct col *c = ctx;

	col_ev(c, 'w');
	col_in(c, data, len);
	c->c_off = off;
	c->c_count = count;
	c->c_stable = stable;
	c->c_data = data;
	c->c_len_data = len;
}

static void cb_read_res(void *ctx, uint32_t count, bool eof, uint8_t *data,
			uint32_t len)
{
	struct col *c = ctx;

	col_ev(c, 'R');
	col_in(c, data, len);
	c->c_count = count;
	c->c_eof = eof;
	c->c_data = data;
	c->c_len_data = len;
}

static void cb_write_res(void *ctx, uint32_t count, uint32_t committed,
			 uint8_t *verf)
{
	struct col *c = ctx;

	col_ev(c, 'W');
	col_in(c, verf, 8);
	c->c_count = count;
	c->c_stable = committed;
	c->c_verf = verf;
}

static void cb_commit_args(void *ctx, uint64_t off, uint32_t count)
{
	struct col *c = ctx;

	col_ev(c, 'c');
	c->c_off = off;
	c->c_count = count;
}

static void cb_commit_res(void *ctx, uint8_t *verf)
{
	struct col *c = ctx;

	col_ev(c, 'C');
	col_in(c, verf, 8);
	c->c_verf = verf;
}

static void cb_status(void *ctx, uint32_t status)
{
	struct col *c = ctx;

	col_ev(c, 's');
	c->c_status = status;
}

static const struct rpc_nfs3_visit visit_all = {
	.v_fattr = cb_fattr,
	.v_wcc_pre = cb_wcc_pre,
	.v_sattr = cb_sattr,
	.v_fh = cb_fh,
	.v_read_args = cb_read_args,
	.v_write_args = cb_write_args,
	.v_read_res = cb_read_res,
	.v_write_res = cb_write_res,
	.v_commit_args = cb_commit_args,
	.v_commit_res = cb_commit_res,
	.v_status = cb_status,
};

/* ---------------------------------------------------------------------- */
/* Expected callback sequences, written from RFC 1813 section 3.3.         */
/* s status, F fattr3, P wcc before, A sattr3, H file handle, r/w READ/   */
/* WRITE args, R/W READ/WRITE resok, c/C COMMIT args/resok.               */
/* Full: every optional part present; sparse: every optional part absent. */
/* CREATE is UNCHECKED, MKNOD is NF3CHR, READDIRPLUS has 3 entries.       */

struct expect {
	const char *call;
	const char *ok, *ok_sparse;
	const char *fail, *fail_sparse;
};

static const struct expect nfs3_expect[NFS3_NPROC] = {
	[NFS3_NULL] = { "", "", "", "", "" },
	[NFS3_GETATTR] = { "H", "sF", "sF", "s", "s" },
	[NFS3_SETATTR] = { "HA", "sPF", "s", "sPF", "s" },
	[NFS3_LOOKUP] = { "H", "sHFF", "sH", "sF", "s" },
	[NFS3_ACCESS] = { "H", "sF", "s", "sF", "s" },
	[NFS3_READLINK] = { "H", "sF", "s", "sF", "s" },
	[NFS3_READ] = { "Hr", "sFR", "sR", "sF", "s" },
	[NFS3_WRITE] = { "Hw", "sPFW", "sW", "sPF", "s" },
	[NFS3_CREATE] = { "HA", "sHFPF", "s", "sPF", "s" },
	[NFS3_MKDIR] = { "HA", "sHFPF", "s", "sPF", "s" },
	[NFS3_SYMLINK] = { "HA", "sHFPF", "s", "sPF", "s" },
	[NFS3_MKNOD] = { "HA", "sHFPF", "s", "sPF", "s" },
	[NFS3_REMOVE] = { "H", "sPF", "s", "sPF", "s" },
	[NFS3_RMDIR] = { "H", "sPF", "s", "sPF", "s" },
	[NFS3_RENAME] = { "HH", "sPFPF", "s", "sPFPF", "s" },
	[NFS3_LINK] = { "HH", "sFPF", "s", "sFPF", "s" },
	[NFS3_READDIR] = { "H", "sF", "s", "sF", "s" },
	[NFS3_READDIRPLUS] = { "H", "sFFHFHFH", "s", "sF", "s" },
	[NFS3_FSSTAT] = { "H", "sF", "s", "sF", "s" },
	[NFS3_FSINFO] = { "H", "sF", "s", "sF", "s" },
	[NFS3_PATHCONF] = { "H", "sF", "s", "sF", "s" },
	[NFS3_COMMIT] = { "Hc", "sPFC", "sC", "sPF", "s" },
};

static const char *expect_seq(uint32_t proc, enum enc_kind k, bool sparse)
{
	const struct expect *e = &nfs3_expect[proc];

	if (k == ENC_CALL)
		return e->call;
	if (k == ENC_OK)
		return sparse ? e->ok_sparse : e->ok;
	return sparse ? e->fail_sparse : e->fail;
}

/* CREATE UNCHECKED, MKNOD NF3CHR, 3 directory entries, 13 data bytes. */
static struct enc_opts opts_for(uint32_t proc, bool sparse)
{
	struct enc_opts o = {
		.o_sparse = sparse, .o_nentries = 3, .o_datalen = 13,
		.o_sub = proc == NFS3_MKNOD ? NF3CHR : 0,
	};

	return o;
}

static ssize_t walk(uint32_t proc, enum enc_kind k, uint8_t *buf, size_t len,
		    const struct rpc_nfs3_visit *v, void *ctx)
{
	return k == ENC_CALL ? rpc_nfs3_walk_call(proc, buf, len, v, ctx)
			     : rpc_nfs3_walk_reply(proc, buf, len, v, ctx);
}

/* ---------------------------------------------------------------------- */
/* Well-formed messages, all 22 procedures                                 */

/* Sequence, markers, returned length, trailing bytes. */
static void check_one(uint32_t proc, enum enc_kind k, bool sparse)
{
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(proc, sparse);
	ssize_t len = enc_nfs3(proc, k, &o, buf, sizeof(buf) - 8);
	struct col c;
	ssize_t r;

	CU_ASSERT_FATAL(len >= 0);
	col_init(&c, buf, (size_t)len);
	c.c_sparse = sparse;
	r = walk(proc, k, buf, (size_t)len, &visit_all, &c);
	CU_ASSERT_EQUAL(r, len);
	CU_ASSERT_STRING_EQUAL(c.c_seq, expect_seq(proc, k, sparse));
	CU_ASSERT_EQUAL(c.c_bad, 0);
	if (k == ENC_FAIL && proc != NFS3_NULL)
		CU_ASSERT_EQUAL(c.c_status, ENC_FAIL_STATUS);
	/* trailing garbage is not part of the body */
	memset(buf + len, 0xEE, 8);
	CU_ASSERT_EQUAL(walk(proc, k, buf, (size_t)len + 8, NULL, NULL), len);
	if (r != len || strcmp(c.c_seq, expect_seq(proc, k, sparse)) || c.c_bad)
		fprintf(stderr, "\n  %s kind %d sparse %d: r=%zd len=%zd "
			"seq=\"%s\" bad=%u\n", rpc_nfs3_proc_name(proc), k,
			sparse, r, len, c.c_seq, c.c_bad);
}

static void test_all_procs(void)
{
	uint32_t p;
	int k, s;

	for (p = 0; p < NFS3_NPROC; p++)
		for (k = ENC_CALL; k <= ENC_FAIL; k++)
			for (s = 0; s <= 1; s++)
				check_one(p, (enum enc_kind)k, s);
}

/* Patch every uid through the callback pointers; the result must equal
 * what the independent encoder produces with the patched values. */
static void check_patch(uint32_t proc, enum enc_kind k, bool sparse)
{
	static uint8_t buf[BUFSZ], want[BUFSZ];
	struct enc_opts o = opts_for(proc, sparse);
	ssize_t len = enc_nfs3(proc, k, &o, buf, sizeof(buf));
	ssize_t wlen;
	struct col c;

	CU_ASSERT_FATAL(len >= 0);
	col_init(&c, buf, (size_t)len);
	c.c_sparse = sparse;
	c.c_patch = true;
	CU_ASSERT_EQUAL(walk(proc, k, buf, (size_t)len, &visit_all, &c), len);
	o.o_fattr_uid = PATCH_FATTR;
	o.o_sattr_uid = PATCH_SATTR;
	wlen = enc_nfs3(proc, k, &o, want, sizeof(want));
	CU_ASSERT_EQUAL_FATAL(wlen, len);
	CU_ASSERT(memcmp(buf, want, (size_t)len) == 0);
	if (memcmp(buf, want, (size_t)len))
		fprintf(stderr, "\n  patch %s kind %d sparse %d differs\n",
			rpc_nfs3_proc_name(proc), k, sparse);
	/* and the walker itself now reads the patched ids */
	col_init(&c, buf, (size_t)len);
	c.c_sparse = sparse;
	c.c_fattr_uid = PATCH_FATTR;
	c.c_sattr_uid = PATCH_SATTR;
	CU_ASSERT_EQUAL(walk(proc, k, buf, (size_t)len, &visit_all, &c), len);
	CU_ASSERT_EQUAL(c.c_bad, 0);
}

static void test_patch_all(void)
{
	uint32_t p;
	int k;

	for (p = 0; p < NFS3_NPROC; p++)
		for (k = ENC_CALL; k <= ENC_FAIL; k++) {
			check_patch(p, (enum enc_kind)k, false);
			check_patch(p, (enum enc_kind)k, true);
		}
}

static ssize_t mwalk(uint32_t proc, enum enc_kind k, uint8_t *buf, size_t len,
		     struct col *c)
{
	return k == ENC_CALL ? rpc_mnt3_walk_call(proc, buf, len, &visit_all, c)
			     : rpc_mnt3_walk_reply(proc, buf, len, &visit_all, c);
}

/* Every proper prefix is malformed; the walk must fail without reading
 * past it (ASan sees the exact-size heap copy) and without callbacks. */
static void check_truncations(const uint8_t *msg, size_t len, bool mount,
			      uint32_t proc, enum enc_kind k)
{
	size_t l;

	for (l = 0; l < len; l++) {
		uint8_t *cp = malloc(l ? l : 1);
		struct col c;
		ssize_t r;

		CU_ASSERT_FATAL(cp != NULL);
		memcpy(cp, msg, l);
		col_init(&c, cp, l);
		if (mount)
			r = mwalk(proc, k, cp, l, &c);
		else
			r = walk(proc, k, cp, l, &visit_all, &c);
		CU_ASSERT(r == -EBADMSG);
		CU_ASSERT_EQUAL(c.c_nseq, 0);
		free(cp);
	}
}

static void test_truncation_all(void)
{
	static uint8_t buf[BUFSZ];
	uint32_t p;
	int k, s;

	for (p = 0; p < NFS3_NPROC; p++)
		for (k = ENC_CALL; k <= ENC_FAIL; k++)
			for (s = 0; s <= 1; s++) {
				struct enc_opts o = opts_for(p, s);
				ssize_t len = enc_nfs3(p, (enum enc_kind)k, &o,
						       buf, sizeof(buf));

				CU_ASSERT_FATAL(len >= 0);
				check_truncations(buf, (size_t)len, false, p,
						  (enum enc_kind)k);
			}
}

/* ---------------------------------------------------------------------- */
/* Particular procedures                                                   */

static void test_readdirplus_entries(void)
{
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(0, false);
	char want[128] = "sF";
	uint32_t uids[ENC_MAX_ENTRIES];
	struct col c;
	ssize_t len;
	unsigned i;
	int n;

	o.o_nentries = 10;
	len = enc_nfs3(NFS3_READDIRPLUS, ENC_OK, &o, buf, sizeof(buf));
	CU_ASSERT_FATAL(len > 0);
	col_init(&c, buf, (size_t)len);
	c.c_patch = true;
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_READDIRPLUS, buf, (size_t)len,
					    &visit_all, &c), len);
	for (i = 0; i < 10; i++)
		strcat(want, "FH");
	CU_ASSERT_STRING_EQUAL(c.c_seq, want);
	CU_ASSERT_EQUAL(c.c_bad, 0);
	CU_ASSERT_EQUAL(c.c_nh, 10);
	/* rpcgen's decoder sees every entry's patched uid; the directory's
	 * own attributes are fattr 0, entry i carries fattr i + 1 */
	n = enc_readdirplus_uids(buf, (size_t)len, uids, ENC_MAX_ENTRIES);
	CU_ASSERT_EQUAL_FATAL(n, 10);
	for (i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(uids[i], PATCH_FATTR + i + 1);

	/* an empty list, and a long sparse one */
	o.o_nentries = 0;
	len = enc_nfs3(NFS3_READDIRPLUS, ENC_OK, &o, buf, sizeof(buf));
	col_init(&c, buf, (size_t)len);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_READDIRPLUS, buf, (size_t)len,
					    &visit_all, &c), len);
	CU_ASSERT_STRING_EQUAL(c.c_seq, "sF");
	o.o_nentries = ENC_MAX_ENTRIES;
	o.o_sparse = true;
	len = enc_nfs3(NFS3_READDIRPLUS, ENC_OK, &o, buf, sizeof(buf));
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_READDIRPLUS, buf, (size_t)len,
					    NULL, NULL), len);
	check_truncations(buf, (size_t)len, false, NFS3_READDIRPLUS, ENC_OK);
	o.o_sparse = false;
	len = enc_nfs3(NFS3_READDIR, ENC_OK, &o, buf, sizeof(buf));
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_READDIR, buf, (size_t)len,
					    NULL, NULL), len);
	check_truncations(buf, (size_t)len, false, NFS3_READDIR, ENC_OK);
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static void check_data(const struct col *c, uint32_t n)
{
	uint32_t j;
	unsigned bad = 0;

	CU_ASSERT_EQUAL(c->c_len_data, n);
	CU_ASSERT_EQUAL(c->c_count, n);
	for (j = 0; j < n; j++)
		bad += c->c_data[j] != enc_data_byte(j);
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_read_write_commit(void)
{
	static const uint32_t sizes[] = { 0, 1, 3, 4, 13, 4096, 65535 };
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(0, false);
	struct col c;
	ssize_t len;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		o.o_datalen = sizes[i];
		len = enc_nfs3(NFS3_WRITE, ENC_CALL, &o, buf, sizeof(buf));
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_WRITE, buf, (size_t)len,
						   &visit_all, &c), len);
		CU_ASSERT_EQUAL(c.c_off, 0x200000000ull + 4096);
		CU_ASSERT_EQUAL(c.c_stable, 2);
		/* data is the last field: it ends at the padded end */
		CU_ASSERT_PTR_EQUAL(c.c_data, buf + len - pad4(sizes[i]));
		check_data(&c, sizes[i]);

		len = enc_nfs3(NFS3_READ, ENC_OK, &o, buf, sizeof(buf));
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_READ, buf, (size_t)len,
						    &visit_all, &c), len);
		CU_ASSERT(c.c_eof);
		CU_ASSERT_PTR_EQUAL(c.c_data, buf + len - pad4(sizes[i]));
		check_data(&c, sizes[i]);

		len = enc_nfs3(NFS3_READ, ENC_CALL, &o, buf, sizeof(buf));
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_READ, buf, (size_t)len,
						   &visit_all, &c), len);
		CU_ASSERT_EQUAL(c.c_off, 0x100000000ull + 512);
		CU_ASSERT_EQUAL(c.c_count, sizes[i]);

		len = enc_nfs3(NFS3_WRITE, ENC_OK, &o, buf, sizeof(buf));
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_WRITE, buf, (size_t)len,
						    &visit_all, &c), len);
		CU_ASSERT_EQUAL(c.c_count, sizes[i]);
		CU_ASSERT_EQUAL(c.c_stable, 1);
		CU_ASSERT(c.c_verf && memcmp(c.c_verf, "WRITEVRF", 8) == 0);
	}
	len = enc_nfs3(NFS3_COMMIT, ENC_CALL, &o, buf, sizeof(buf));
	col_init(&c, buf, (size_t)len);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_COMMIT, buf, (size_t)len,
					   &visit_all, &c), len);
	CU_ASSERT_EQUAL(c.c_off, 0x300000000ull);
	CU_ASSERT_EQUAL(c.c_count, 65536);
	len = enc_nfs3(NFS3_COMMIT, ENC_OK, &o, buf, sizeof(buf));
	col_init(&c, buf, (size_t)len);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_COMMIT, buf, (size_t)len,
					    &visit_all, &c), len);
	CU_ASSERT(c.c_verf && memcmp(c.c_verf, "COMMITVF", 8) == 0);
	CU_ASSERT_PTR_EQUAL(c.c_verf, buf + len - 8);
}

/* CREATE's three modes and MKNOD's seven types decide whether a sattr3
 * is present. */
static void test_create_mknod_arms(void)
{
	static const char *const create_seq[] = { "HA", "HA", "H" };
	static const char *const mknod_seq[] = {
		NULL, "H", "H", "HA", "HA", "H", "HA", "HA",
	};
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(0, false);
	struct col c;
	ssize_t len;
	uint32_t s;

	for (s = 0; s <= 2; s++) {
		o.o_sub = s;
		len = enc_nfs3(NFS3_CREATE, ENC_CALL, &o, buf, sizeof(buf));
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_CREATE, buf, (size_t)len,
						   &visit_all, &c), len);
		CU_ASSERT_STRING_EQUAL(c.c_seq, create_seq[s]);
		CU_ASSERT_EQUAL(c.c_bad, 0);
		check_truncations(buf, (size_t)len, false, NFS3_CREATE, ENC_CALL);
	}
	for (s = 1; s <= 7; s++) {
		o.o_sub = s;
		len = enc_nfs3(NFS3_MKNOD, ENC_CALL, &o, buf, sizeof(buf));
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_MKNOD, buf, (size_t)len,
						   &visit_all, &c), len);
		CU_ASSERT_STRING_EQUAL(c.c_seq, mknod_seq[s]);
		CU_ASSERT_EQUAL(c.c_bad, 0);
		check_truncations(buf, (size_t)len, false, NFS3_MKNOD, ENC_CALL);
	}
}

static void test_setattr_patch_rpcgen(void)
{
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(0, false);
	ssize_t len = enc_nfs3(NFS3_SETATTR, ENC_CALL, &o, buf, sizeof(buf));
	struct col c;

	CU_ASSERT_EQUAL(enc_setattr_uid(buf, (size_t)len), 3000);
	col_init(&c, buf, (size_t)len);
	c.c_patch = true;
	CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_SETATTR, buf, (size_t)len,
					   &visit_all, &c), len);
	CU_ASSERT_EQUAL(enc_setattr_uid(buf, (size_t)len), PATCH_SATTR);
	o.o_sparse = true;	/* uid not set: no pointer, nothing patched */
	len = enc_nfs3(NFS3_SETATTR, ENC_CALL, &o, buf, sizeof(buf));
	col_init(&c, buf, (size_t)len);
	c.c_sparse = true;
	c.c_patch = true;
	CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_SETATTR, buf, (size_t)len,
					   &visit_all, &c), len);
	CU_ASSERT_EQUAL(c.c_bad, 0);
	CU_ASSERT_EQUAL(enc_setattr_uid(buf, (size_t)len), -1);
}

/* rpc.h's fattr3 offsets against an encoded fattr3 (GETATTR resok starts
 * after the 4-byte status). */
static void test_header_fattr_offsets(void)
{
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(0, false);
	ssize_t len = enc_nfs3(NFS3_GETATTR, ENC_OK, &o, buf, sizeof(buf));
	const uint8_t *a = buf + 4;

	CU_ASSERT_EQUAL_FATAL(len, 4 + NFS3_FATTR_SIZE);
	CU_ASSERT_EQUAL(rpc_get32(a + NFS3_FATTR_UID), 1000);
	CU_ASSERT_EQUAL(rpc_get32(a + NFS3_FATTR_GID), 2000);
	CU_ASSERT_EQUAL(rpc_get64(a + NFS3_FATTR_SIZE_OFF), 0x123456789ull);
	CU_ASSERT_EQUAL(rpc_get64(a + NFS3_FATTR_FSID), 0xFEEDull);
	CU_ASSERT_EQUAL(rpc_get64(a + NFS3_FATTR_FILEID), 0xF000ull);
	CU_ASSERT_EQUAL(rpc_get32(a + NFS3_FATTR_MTIME), 1700000000u);
	CU_ASSERT_EQUAL(rpc_get32(a + NFS3_FATTR_CTIME), 1600000000u);
}

/* ---------------------------------------------------------------------- */
/* Malformed, hand-built messages                                          */

struct hb {
	uint8_t b[8192];
	struct rpc_xdr x;
};

static void hb_init(struct hb *h)
{
	memset(h->b, 0, sizeof(h->b));
	rpc_xdr_init(&h->x, h->b, sizeof(h->b));
}

static void hb_u32(struct hb *h, uint32_t v)
{
	rpc_xdr_put_u32(&h->x, v);
}

static void hb_fh(struct hb *h, uint32_t len)
{
	static const uint8_t fh[NFS3_FHSIZE + 4];

	rpc_xdr_put_opaque(&h->x, fh, len);
}

static void hb_str(struct hb *h, uint32_t len)
{
	static uint8_t s[4100];

	memset(s, 'n', sizeof(s));
	rpc_xdr_put_opaque(&h->x, s, len);
}

/* A fattr3 with the given type; the rest zero. */
static void hb_fattr(struct hb *h, uint32_t type)
{
	uint8_t a[NFS3_FATTR_SIZE] = { 0 };

	rpc_put32(a, type);
	rpc_xdr_put_fixed(&h->x, a, sizeof(a));
}

/* sattr3 with the given set_atime discriminant, nothing else set. */
static void hb_sattr(struct hb *h, uint32_t atime_how)
{
	hb_u32(h, 0);
	hb_u32(h, 0);
	hb_u32(h, 0);
	hb_u32(h, 0);
	hb_u32(h, atime_how);
	if (atime_how == 2) {
		hb_u32(h, 1);
		hb_u32(h, 2);
	}
	hb_u32(h, 0);
}

static ssize_t hb_call(struct hb *h, uint32_t proc)
{
	CU_ASSERT_FATAL(h->x.x_err == 0);
	return rpc_nfs3_walk_call(proc, h->b, h->x.x_pos, NULL, NULL);
}

static ssize_t hb_reply(struct hb *h, uint32_t proc)
{
	CU_ASSERT_FATAL(h->x.x_err == 0);
	return rpc_nfs3_walk_reply(proc, h->b, h->x.x_pos, NULL, NULL);
}

static void test_bad_handles(void)
{
	struct hb h;

	hb_init(&h);
	hb_fh(&h, 64);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_GETATTR), 68);
	hb_init(&h);
	hb_fh(&h, 65);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_GETATTR), -EMSGSIZE);
	hb_init(&h);
	hb_u32(&h, 0xffffffffu);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_GETATTR), -EMSGSIZE);
	/* LOOKUP resok handle too long */
	hb_init(&h);
	hb_u32(&h, 0);
	hb_fh(&h, 65);
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_LOOKUP), -EMSGSIZE);
	/* second handle of LINK too long; the first was fine */
	hb_init(&h);
	hb_fh(&h, 8);
	hb_fh(&h, 65);
	hb_str(&h, 1);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_LINK), -EMSGSIZE);
}

static void test_bad_bools(void)
{
	struct hb h;

	hb_init(&h);		/* ACCESS resfail, attributes_follow 2 */
	hb_u32(&h, 13);
	hb_u32(&h, 2);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_ACCESS), -EBADMSG);
	hb_init(&h);		/* READ resok, eof = 2 */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 1);
	hb_u32(&h, 2);
	hb_str(&h, 1);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_READ), -EBADMSG);
	hb_init(&h);		/* READDIR entry value_follows = 0x100 */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0x100);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_READDIR), -EBADMSG);
	hb_init(&h);		/* PATHCONF case_preserving = 7 */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 32000);
	hb_u32(&h, 255);
	hb_u32(&h, 1);
	hb_u32(&h, 1);
	hb_u32(&h, 0);
	hb_u32(&h, 7);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_PATHCONF), -EBADMSG);
	hb_init(&h);		/* SETATTR guard check = 3 */
	hb_fh(&h, 8);
	hb_sattr(&h, 0);
	hb_u32(&h, 3);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_SETATTR), -EBADMSG);
	hb_init(&h);		/* wcc_data before follows = 0xffffffff */
	hb_u32(&h, 0);
	hb_u32(&h, 0xffffffffu);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_REMOVE), -EBADMSG);
}

static void test_bad_enums(void)
{
	static const uint32_t bad_types[] = { 0, 8, 0xffffffffu };
	struct hb h;
	size_t i;

	for (i = 0; i < 3; i++) {
		hb_init(&h);	/* fattr3.type */
		hb_u32(&h, 0);
		hb_fattr(&h, bad_types[i]);
		CU_ASSERT_EQUAL(hb_reply(&h, NFS3_GETATTR), -EBADMSG);
		hb_init(&h);	/* mknoddata3 type */
		hb_fh(&h, 8);
		hb_str(&h, 3);
		hb_u32(&h, bad_types[i]);
		CU_ASSERT_EQUAL(hb_call(&h, NFS3_MKNOD), -EBADMSG);
	}
	hb_init(&h);
	hb_u32(&h, 0);
	hb_fattr(&h, 7);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_GETATTR), 4 + NFS3_FATTR_SIZE);
	hb_init(&h);		/* WRITE stable_how 3 */
	hb_fh(&h, 8);
	rpc_xdr_put_u64(&h.x, 0);
	hb_u32(&h, 1);
	hb_u32(&h, 3);
	hb_str(&h, 1);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_WRITE), -EBADMSG);
	hb_init(&h);		/* WRITE resok committed 3 */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 1);
	hb_u32(&h, 3);
	hb_str(&h, 8);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_WRITE), -EBADMSG);
	hb_init(&h);		/* createmode3 3 */
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_u32(&h, 3);
	hb_str(&h, 8);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_CREATE), -EBADMSG);
	hb_init(&h);		/* time_how 3 in MKDIR's sattr3 */
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_sattr(&h, 3);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_MKDIR), -EBADMSG);
	hb_init(&h);		/* ... and 2 (client time) is fine */
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_sattr(&h, 2);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_MKDIR), (ssize_t)h.x.x_pos);
	hb_init(&h);		/* any nfsstat3 selects the failure arm */
	hb_u32(&h, 123456);
	hb_u32(&h, 0);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_READ), 8);
}

static void test_bad_lengths(void)
{
	struct hb h;

	hb_init(&h);
	hb_fh(&h, 8);
	hb_str(&h, 255);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_LOOKUP), 12 + 4 + 256);
	hb_init(&h);
	hb_fh(&h, 8);
	hb_str(&h, 256);	/* well formed, refused: NAMETOOLONG, not garbage */
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_LOOKUP), -ENAMETOOLONG);
	hb_init(&h);		/* a length past the message stays garbage */
	hb_fh(&h, 8);
	hb_u32(&h, 300);
	hb_u32(&h, 0);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_LOOKUP), -EMSGSIZE);
	hb_init(&h);
	hb_fh(&h, 8);
	hb_u32(&h, 0xffffffffu);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_REMOVE), -EMSGSIZE);
	hb_init(&h);		/* SYMLINK path 4096 (server PATH_MAX) ok, 4097 too long */
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_sattr(&h, 0);
	hb_str(&h, 4096);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_SYMLINK), (ssize_t)h.x.x_pos);
	hb_init(&h);
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_sattr(&h, 0);
	hb_str(&h, 4097);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_SYMLINK), -ENAMETOOLONG);
	hb_init(&h);		/* RENAME's second name too */
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_fh(&h, 8);
	hb_str(&h, 256);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_RENAME), -ENAMETOOLONG);
	hb_init(&h);		/* READLINK resok path 0xffffffff */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0xffffffffu);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_READLINK), -EMSGSIZE);
	hb_init(&h);		/* WRITE count 5, data 4 */
	hb_fh(&h, 8);
	rpc_xdr_put_u64(&h.x, 0);
	hb_u32(&h, 5);
	hb_u32(&h, 0);
	hb_str(&h, 4);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_WRITE), -EBADMSG);
	hb_init(&h);		/* WRITE data length 0xffffffff */
	hb_fh(&h, 8);
	rpc_xdr_put_u64(&h.x, 0);
	hb_u32(&h, 0xffffffffu);
	hb_u32(&h, 0);
	hb_u32(&h, 0xffffffffu);
	CU_ASSERT_EQUAL(hb_call(&h, NFS3_WRITE), -EBADMSG);
	hb_init(&h);		/* READ resok count 2, data 3 */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 2);
	hb_u32(&h, 1);
	hb_str(&h, 3);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_READ), -EBADMSG);
	hb_init(&h);		/* READDIR entry name 0xffffffff */
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 0);
	hb_u32(&h, 1);
	rpc_xdr_put_u64(&h.x, 5);
	hb_u32(&h, 0xffffffffu);
	CU_ASSERT_EQUAL(hb_reply(&h, NFS3_READDIR), -EMSGSIZE);
}

/* Callbacks only run once the whole body has been validated. */
static void test_no_callbacks_on_error(void)
{
	struct hb h;
	struct col c;

	hb_init(&h);
	hb_fh(&h, 8);
	hb_str(&h, 3);
	hb_fh(&h, 8);
	hb_str(&h, 300);
	col_init(&c, h.b, h.x.x_pos);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_RENAME, h.b, h.x.x_pos,
					   &visit_all, &c), -ENAMETOOLONG);
	CU_ASSERT_EQUAL(c.c_nseq, 0);
}

static void test_bad_proc(void)
{
	uint8_t b[8] = { 0 };

	CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_NPROC, b, 8, NULL, NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(22, b, 8, NULL, NULL), -EINVAL);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(0xffffffffu, b, 8, NULL, NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_call(MNT3_NPROC, b, 8, NULL, NULL),
			-EINVAL);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(6, b, 8, NULL, NULL), -EINVAL);
	/* NULL has an empty body both ways; the rest is trailing */
	CU_ASSERT_EQUAL(rpc_nfs3_walk_call(NFS3_NULL, b, 8, NULL, NULL), 0);
	CU_ASSERT_EQUAL(rpc_nfs3_walk_reply(NFS3_NULL, b, 0, NULL, NULL), 0);
}

static void test_names_idempotency(void)
{
	static const char *const names[NFS3_NPROC] = {
		"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK",
		"READ", "WRITE", "CREATE", "MKDIR", "SYMLINK", "MKNOD",
		"REMOVE", "RMDIR", "RENAME", "LINK", "READDIR", "READDIRPLUS",
		"FSSTAT", "FSINFO", "PATHCONF", "COMMIT",
	};
	static const char *const mnames[MNT3_NPROC] = {
		"NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT",
	};
	/* PROTOCOL.md: SETATTR WRITE CREATE MKDIR SYMLINK MKNOD REMOVE RMDIR
	 * RENAME LINK */
	const uint32_t nonidem = 1u << 2 | 1u << 7 | 1u << 8 | 1u << 9 |
				 1u << 10 | 1u << 11 | 1u << 12 | 1u << 13 |
				 1u << 14 | 1u << 15;
	uint32_t p;

	for (p = 0; p < NFS3_NPROC; p++) {
		CU_ASSERT_STRING_EQUAL(rpc_nfs3_proc_name(p), names[p]);
		CU_ASSERT_EQUAL(rpc_nfs3_proc_nonidempotent(p),
				!!(nonidem & 1u << p));
	}
	for (p = 0; p < MNT3_NPROC; p++)
		CU_ASSERT_STRING_EQUAL(rpc_mnt3_proc_name(p), mnames[p]);
	CU_ASSERT_PTR_NOT_NULL(rpc_nfs3_proc_name(NFS3_NPROC));
	CU_ASSERT_PTR_NOT_NULL(rpc_mnt3_proc_name(99));
	CU_ASSERT_FALSE(rpc_nfs3_proc_nonidempotent(NFS3_NPROC));
}

/* ---------------------------------------------------------------------- */
/* MOUNTv3                                                                 */


static void test_mount_messages(void)
{
	static uint8_t buf[BUFSZ];
	struct enc_opts o = opts_for(0, false);
	struct col c;
	ssize_t len;
	uint32_t p;
	unsigned n;

	for (p = 0; p < MNT3_NPROC; p++) {	/* calls */
		len = enc_mnt3(p, ENC_CALL, &o, buf, sizeof(buf));
		CU_ASSERT_FATAL(len >= 0);
		CU_ASSERT_EQUAL(len > 0, p == MNT3_MNT || p == MNT3_UMNT);
		col_init(&c, buf, (size_t)len);
		CU_ASSERT_EQUAL(mwalk(p, ENC_CALL, buf, (size_t)len, &c), len);
		CU_ASSERT_EQUAL(c.c_nseq, 0);
		check_truncations(buf, (size_t)len, true, p, ENC_CALL);
	}
	len = enc_mnt3(MNT3_MNT, ENC_OK, &o, buf, sizeof(buf));
	col_init(&c, buf, (size_t)len);
	CU_ASSERT_EQUAL(mwalk(MNT3_MNT, ENC_OK, buf, (size_t)len, &c), len);
	CU_ASSERT_STRING_EQUAL(c.c_seq, "sH");
	CU_ASSERT_EQUAL(c.c_status, 0);
	CU_ASSERT_EQUAL(c.c_bad, 0);
	check_truncations(buf, (size_t)len, true, MNT3_MNT, ENC_OK);
	len = enc_mnt3(MNT3_MNT, ENC_FAIL, &o, buf, sizeof(buf));
	col_init(&c, buf, (size_t)len);
	CU_ASSERT_EQUAL(len, 4);
	CU_ASSERT_EQUAL(mwalk(MNT3_MNT, ENC_FAIL, buf, (size_t)len, &c), 4);
	CU_ASSERT_STRING_EQUAL(c.c_seq, "s");
	CU_ASSERT_EQUAL(c.c_status, ENC_MNT_FAIL_STATUS);
	for (n = 0; n <= 9; n += 3) {		/* DUMP and EXPORT lists */
		o.o_nentries = n;
		for (p = MNT3_DUMP; p <= MNT3_EXPORT; p += 3) {
			len = enc_mnt3(p, ENC_OK, &o, buf, sizeof(buf));
			CU_ASSERT_FATAL(len > 0);
			col_init(&c, buf, (size_t)len);
			CU_ASSERT_EQUAL(mwalk(p, ENC_OK, buf, (size_t)len, &c),
					len);
			CU_ASSERT_EQUAL(c.c_nseq, 0);
			check_truncations(buf, (size_t)len, true, p, ENC_OK);
		}
	}
	for (p = MNT3_UMNT; p <= MNT3_UMNTALL; p++) {
		len = enc_mnt3(p, ENC_OK, &o, buf, sizeof(buf));
		CU_ASSERT_EQUAL(mwalk(p, ENC_OK, buf, 16, &c), 0);
	}
}

static void test_mount_malformed(void)
{
	struct hb h;
	unsigned i;

	hb_init(&h);		/* 64 flavors fine, 65 too many */
	hb_u32(&h, 0);
	hb_fh(&h, 64);
	hb_u32(&h, 64);
	for (i = 0; i < 64; i++)
		hb_u32(&h, 1);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(MNT3_MNT, h.b, h.x.x_pos, NULL,
					    NULL), (ssize_t)h.x.x_pos);
	rpc_put32(h.b + 4 + 68, 65);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(MNT3_MNT, h.b, sizeof(h.b), NULL,
					    NULL), -EMSGSIZE);
	hb_init(&h);		/* 65-byte handle */
	hb_u32(&h, 0);
	hb_fh(&h, 65);
	hb_u32(&h, 0);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(MNT3_MNT, h.b, h.x.x_pos, NULL,
					    NULL), -EMSGSIZE);
	hb_init(&h);		/* dirpath 1025 */
	hb_str(&h, 1025);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_call(MNT3_UMNT, h.b, h.x.x_pos, NULL,
					   NULL), -EMSGSIZE);
	hb_init(&h);		/* DUMP hostname 256 */
	hb_u32(&h, 1);
	hb_str(&h, 256);
	hb_str(&h, 1);
	hb_u32(&h, 0);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(MNT3_DUMP, h.b, h.x.x_pos, NULL,
					    NULL), -EMSGSIZE);
	hb_init(&h);		/* EXPORT group list bool 2 */
	hb_u32(&h, 1);
	hb_str(&h, 5);
	hb_u32(&h, 2);
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(MNT3_EXPORT, h.b, h.x.x_pos, NULL,
					    NULL), -EBADMSG);
	hb_init(&h);		/* a list without end fails at the end */
	for (i = 0; i < 200; i++) {
		hb_u32(&h, 1);
		hb_str(&h, 1);
		hb_u32(&h, 0);
	}
	CU_ASSERT_EQUAL(rpc_mnt3_walk_reply(MNT3_EXPORT, h.b, h.x.x_pos, NULL,
					    NULL), -EBADMSG);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("nfs3", NULL, NULL);
	CU_add_test(s, "all procedures, calls and both reply arms",
		    test_all_procs);
	CU_add_test(s, "uid patching matches the re-encoded message",
		    test_patch_all);
	CU_add_test(s, "every truncation fails cleanly", test_truncation_all);
	CU_add_test(s, "READDIRPLUS entries", test_readdirplus_entries);
	CU_add_test(s, "READ/WRITE/COMMIT data", test_read_write_commit);
	CU_add_test(s, "CREATE modes and MKNOD types", test_create_mknod_arms);
	CU_add_test(s, "SETATTR patch seen by rpcgen",
		    test_setattr_patch_rpcgen);
	CU_add_test(s, "rpc.h fattr3 offsets", test_header_fattr_offsets);
	CU_add_test(s, "bad handles", test_bad_handles);
	CU_add_test(s, "bad bools", test_bad_bools);
	CU_add_test(s, "bad enums", test_bad_enums);
	CU_add_test(s, "bad lengths", test_bad_lengths);
	CU_add_test(s, "no callbacks on error", test_no_callbacks_on_error);
	CU_add_test(s, "bad procedure numbers", test_bad_proc);
	CU_add_test(s, "names and idempotency", test_names_idempotency);
	s = CU_add_suite("mount3", NULL, NULL);
	CU_add_test(s, "MNT, DUMP, EXPORT, UMNT", test_mount_messages);
	CU_add_test(s, "malformed MOUNT bodies", test_mount_malformed);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return (int)fails;
}
