/*
 * tests/unit/test_zlink.c — CUnit tests of compressed records between the
 * roles (proxy/zlink.c, and the RPC_RM_ZSTD mark in rpc/record.c): round
 * trips, the choice auto makes from the measured link rate, the back-off
 * on incompressible data, and a decoder that refuses every frame it should
 * (garbage, trailing bytes, two frames, a size above the bound, no size,
 * a frame that states less or more than it holds).
 */
#include "config.h"
#include "proxy/zlink.h"
#include "rpc/rpc.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MAXREC (1u << 20)

static uint8_t *text(size_t len)
{
	static const char *const words[] = {"kernel", "block", "inode",
					    "ext4", "virtio", "grub", "initrd",
					    "systemd", "root", "vmlinuz"};
	uint8_t *p = malloc(len);
	size_t i = 0;
	unsigned k = 7;

	while (i < len) {
		const char *w = words[k % 10];
		size_t n = strlen(w);

		k = k * 1103515245u + 12345u;
		for (size_t j = 0; j < n && i < len; j++)
			p[i++] = (uint8_t)w[j];
		if (i < len)
			p[i++] = ' ';
	}
	return p;
}

static uint8_t *noise(size_t len)
{
	uint8_t *p = malloc(len);
	uint64_t x = 0x9e3779b97f4a7c15ull;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
	return p;
}

static void test_round_trip(void)
{
	struct zlink_stats st = {0};
	struct zlink_out z;
	size_t len = 256u << 10, cap = zlink_bound(len), n, olen = 0;
	uint8_t *src = text(len), *dst = malloc(cap), *out = NULL;

	zlink_out_init(&z, ZLINK_ON, 0, &st);
	CU_ASSERT_TRUE(zlink_want(&z, len));
	CU_ASSERT_FALSE(zlink_want(&z, ZLINK_MIN - 1));
	n = zlink_pack(&z, src, len, dst, cap);
	CU_ASSERT(n > 0 && n < len / 2);
	CU_ASSERT_EQUAL(st.zs_packed, 1);
	CU_ASSERT_EQUAL(st.zs_raw_bytes, len);
	CU_ASSERT_EQUAL(st.zs_wire_bytes, n);
	CU_ASSERT_EQUAL(zlink_unpack(dst, n, MAXREC, RPC_REC_HEADROOM, &out,
				     &olen, &st, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(olen, len);
	CU_ASSERT_EQUAL(memcmp(out + RPC_REC_HEADROOM, src, len), 0);
	CU_ASSERT_EQUAL(st.zs_unpacked, 1);
	CU_ASSERT_EQUAL(st.zs_unpacked_wire, n);
	CU_ASSERT_EQUAL(st.zs_unpacked_bytes, len);
	/* A bound below the record's size refuses it. */
	free(out);
	out = NULL;
	CU_ASSERT_EQUAL(zlink_unpack(dst, n, len - 1, 4, &out, &olen, NULL,
				     NULL, 0), -EMSGSIZE);
	CU_ASSERT_PTR_NULL(out);
	free(src);
	free(dst);
}

static void test_incompressible_backs_off(void)
{
	struct zlink_stats st = {0};
	struct zlink_out z;
	size_t len = 64u << 10, cap = zlink_bound(len);
	uint8_t *src = noise(len), *dst = malloc(cap);
	unsigned tries = 0;

	zlink_out_init(&z, ZLINK_ON, 0, &st);
	/* 200 records of noise: each failure doubles the records skipped,
	 * so only a handful are tried at all. */
	for (int i = 0; i < 200; i++) {
		if (!zlink_want(&z, len))
			continue;
		tries++;
		CU_ASSERT_EQUAL(zlink_pack(&z, src, len, dst, cap), 0);
	}
	CU_ASSERT(tries >= 3 && tries <= 10);
	CU_ASSERT_EQUAL(st.zs_incompressible, tries);
	CU_ASSERT_EQUAL(st.zs_packed, 0);
	/* Compressible data again: tried after the back-off, and it resets. */
	free(src);
	src = text(len);
	while (!zlink_want(&z, len))
		;
	CU_ASSERT(zlink_pack(&z, src, len, dst, cap) > 0);
	CU_ASSERT_TRUE(zlink_want(&z, len));
	free(src);
	free(dst);
}

/* auto: nothing until the link has been measured, then pack (and ask
 * the peer to) only while the goodput is below the threshold; a peer's
 * ask alone is enough. */
static void test_auto_follows_rate(void)
{
	const uint64_t ms = 1000000ull;
	struct zlink_out z;
	uint64_t t = 1000 * ms, bytes = 0;

	zlink_out_init(&z, ZLINK_AUTO, 125000000ull, NULL); /* 1 Gbit/s */
	CU_ASSERT_FALSE(zlink_want(&z, 65536));
	CU_ASSERT_FALSE(z.zo_ask);
	CU_ASSERT_EQUAL(zlink_mark_flags(&z), 0);
	/* One call at a time, 1 MiB each over 100 Mbit/s + 10 ms RTT (94 ms
	 * each), idle gaps between: the gaps do not count. */
	for (int i = 0; i < 4; i++) {
		zlink_meter(&z, true, bytes, t);
		bytes += 1u << 20;
		t += 94 * ms;
		zlink_meter(&z, false, bytes, t);
		t += 300 * ms; /* idle */
		bytes += 4096;  /* nothing outstanding: not counted either */
	}
	CU_ASSERT(z.zo_rate > 10500000 && z.zo_rate < 11500000);
	CU_ASSERT_TRUE(z.zo_ask);
	CU_ASSERT_EQUAL(zlink_mark_flags(&z), RPC_RM_ZWANT);
	CU_ASSERT_TRUE(zlink_want(&z, 65536));
	/* A long stretch of calls on a fast link (1 GB/s, replies every
	 * 10 ms): samples every 200 ms pull the estimate up, and both the
	 * packing and the ask stop. */
	zlink_meter(&z, true, bytes, t);
	for (int i = 0; i < 300; i++) {
		t += 10 * ms;
		bytes += 10000000;
		zlink_meter(&z, true, bytes, t);
	}
	CU_ASSERT(z.zo_rate > 900000000ull);
	CU_ASSERT_FALSE(z.zo_ask);
	CU_ASSERT_FALSE(zlink_want(&z, 65536));
	/* The server role's side: no meter of its own, the peer asks. */
	zlink_out_init(&z, ZLINK_AUTO, 125000000ull, NULL);
	CU_ASSERT_FALSE(zlink_want(&z, 65536));
	z.zo_peer_asks = true;
	CU_ASSERT_TRUE(zlink_want(&z, 65536));
	CU_ASSERT_FALSE(zlink_want(&z, ZLINK_MIN - 1));
	/* on: always, and asks from the start; off: never. */
	zlink_out_init(&z, ZLINK_ON, 125000000ull, NULL);
	CU_ASSERT_TRUE(z.zo_ask);
	CU_ASSERT_TRUE(zlink_want(&z, 65536));
	zlink_out_init(&z, ZLINK_OFF, 125000000ull, NULL);
	z.zo_rate = 1000;
	z.zo_peer_asks = true;
	CU_ASSERT_FALSE(zlink_want(&z, 65536));
}

/* A zstd frame by hand: magic, a single-segment header stating `size`
 * in 1 byte, then one block of `type` (0 raw, 1 RLE) of `bsize`. */
static size_t frame(uint8_t *p, unsigned size, unsigned type,
		    unsigned bsize, const uint8_t *data, size_t dlen)
{
	size_t n = 0;
	uint32_t bh = 1u | (type << 1) | (bsize << 3);

	p[n++] = 0x28; p[n++] = 0xb5; p[n++] = 0x2f; p[n++] = 0xfd;
	p[n++] = 0x20;               /* single segment, 1-byte size */
	p[n++] = (uint8_t)size;
	p[n++] = (uint8_t)bh;
	p[n++] = (uint8_t)(bh >> 8);
	p[n++] = (uint8_t)(bh >> 16);
	memcpy(p + n, data, dlen);
	return n + dlen;
}

static void test_unpack_refuses(void)
{
	uint8_t f[512], two[1024], *out = NULL, data[200];
	size_t n, olen;
	char why[160];

	memset(data, 'x', sizeof(data));
	/* The hand-made frame is good: 100 raw bytes. */
	n = frame(f, 100, 0, 100, data, 100);
	CU_ASSERT_EQUAL_FATAL(zlink_unpack(f, n, MAXREC, 4, &out, &olen, NULL,
					   why, sizeof(why)), 0);
	CU_ASSERT_EQUAL(olen, 100);
	free(out);
	out = NULL;
	/* garbage */
	CU_ASSERT_EQUAL(zlink_unpack(data, sizeof(data), MAXREC, 4, &out,
				     &olen, NULL, why, sizeof(why)), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "not a zstd frame"));
	/* bytes after the frame; two frames */
	f[n] = 0;
	CU_ASSERT_EQUAL(zlink_unpack(f, n + 1, MAXREC, 4, &out, &olen, NULL,
				     why, sizeof(why)), -EBADMSG);
	memcpy(two, f, n);
	memcpy(two + n, f, n);
	CU_ASSERT_EQUAL(zlink_unpack(two, 2 * n, MAXREC, 4, &out, &olen, NULL,
				     why, sizeof(why)), -EBADMSG);
	/* cut short */
	CU_ASSERT_EQUAL(zlink_unpack(f, n - 10, MAXREC, 4, &out, &olen, NULL,
				     why, sizeof(why)), -EBADMSG);
	/* states 200 bytes, holds 100 */
	n = frame(f, 200, 0, 100, data, 100);
	CU_ASSERT(zlink_unpack(f, n, MAXREC, 4, &out, &olen, NULL, why,
			       sizeof(why)) < 0);
	/* states 50, an RLE block makes 100 000 (a small bomb) */
	n = frame(f, 50, 1, 100000, data, 1);
	CU_ASSERT(zlink_unpack(f, n, MAXREC, 4, &out, &olen, NULL, why,
			       sizeof(why)) < 0);
	/* states more than the record bound */
	n = frame(f, 200, 0, 200, data, 200);
	CU_ASSERT_EQUAL(zlink_unpack(f, n, 199, 4, &out, &olen, NULL, why,
				     sizeof(why)), -EMSGSIZE);
	CU_ASSERT_PTR_NOT_NULL(strstr(why, "--max-record"));
	/* states no size at all (not single segment, no size field) */
	n = frame(f, 0, 0, 100, data, 100);
	f[4] = 0x00;      /* no single segment, no size: window byte next */
	f[5] = 0x00;      /* window 1 KiB */
	CU_ASSERT_EQUAL(zlink_unpack(f, n, MAXREC, 4, &out, &olen, NULL, why,
				     sizeof(why)), -EMSGSIZE);
	/* states zero bytes */
	n = frame(f, 0, 0, 0, data, 0);
	CU_ASSERT_EQUAL(zlink_unpack(f, n, MAXREC, 4, &out, &olen, NULL, why,
				     sizeof(why)), -EMSGSIZE);
	CU_ASSERT_PTR_NULL(out);
}

static size_t feed_all(struct rpc_rec *r, const uint8_t *p, size_t n,
		       int *err)
{
	ssize_t k = rpc_rec_feed(r, p, n);

	*err = k < 0 ? (int)k : 0;
	return k < 0 ? 0 : (size_t)k;
}

/* The mark's bit 30 means "compressed" only where it was agreed. */
static void test_record_mark(void)
{
	struct rpc_rec r;
	uint8_t buf[64], *m;
	size_t len;
	int err;

	/* Not agreed: the bits are part of a 1 GiB or 512 MiB length. */
	rpc_rec_init(&r, MAXREC);
	rpc_put32(buf, RPC_RM_LAST | RPC_RM_ZSTD | 8);
	feed_all(&r, buf, 4, &err);
	CU_ASSERT_EQUAL(err, -EMSGSIZE);
	rpc_rec_free(&r);
	rpc_rec_init(&r, MAXREC);
	rpc_put32(buf, RPC_RM_LAST | RPC_RM_ZWANT | 8);
	feed_all(&r, buf, 4, &err);
	CU_ASSERT_EQUAL(err, -EMSGSIZE);
	rpc_rec_free(&r);
	/* Agreed: a whole compressed message in one last fragment. */
	rpc_rec_init(&r, MAXREC);
	r.r_zok = true;
	rpc_put32(buf, RPC_RM_LAST | RPC_RM_ZSTD | 8);
	memset(buf + 4, 'a', 8);
	CU_ASSERT_EQUAL(feed_all(&r, buf, 12, &err), 12);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_TRUE(rpc_rec_ready(&r));
	CU_ASSERT_TRUE(r.r_zstd);
	m = rpc_rec_take(&r, &len);
	CU_ASSERT_EQUAL(len, 8);
	CU_ASSERT_FALSE(r.r_zstd);
	free(m);
	CU_ASSERT_FALSE(r.r_zwant);
	/* ... and plain records still work beside it, with the ask bit
	 * (not a length), which stays until a record says otherwise. */
	rpc_put32(buf, RPC_RM_LAST | RPC_RM_ZWANT | 4);
	CU_ASSERT_EQUAL(feed_all(&r, buf, 8, &err), 8);
	CU_ASSERT_TRUE(rpc_rec_ready(&r));
	CU_ASSERT_FALSE(r.r_zstd);
	free(rpc_rec_take(&r, &len));
	CU_ASSERT_EQUAL(len, 4);
	CU_ASSERT_TRUE(r.r_zwant);
	rpc_put32(buf, RPC_RM_LAST | 4);
	CU_ASSERT_EQUAL(feed_all(&r, buf, 8, &err), 8);
	free(rpc_rec_take(&r, &len));
	CU_ASSERT_FALSE(r.r_zwant);
	/* A compressed fragment that is not the last: refused. */
	rpc_put32(buf, RPC_RM_ZSTD | 8);
	feed_all(&r, buf, 4, &err);
	CU_ASSERT_EQUAL(err, -EBADMSG);
	rpc_rec_free(&r);
	/* ... or that follows a plain first fragment. */
	rpc_rec_init(&r, MAXREC);
	r.r_zok = true;
	rpc_put32(buf, 4);
	memset(buf + 4, 'b', 4);
	rpc_put32(buf + 8, RPC_RM_LAST | RPC_RM_ZSTD | 4);
	feed_all(&r, buf, 12, &err);
	CU_ASSERT_EQUAL(err, -EBADMSG);
	rpc_rec_free(&r);
	/* ... or is empty. */
	rpc_rec_init(&r, MAXREC);
	r.r_zok = true;
	rpc_put32(buf, RPC_RM_LAST | RPC_RM_ZSTD);
	feed_all(&r, buf, 4, &err);
	CU_ASSERT_EQUAL(err, -EBADMSG);
	rpc_rec_free(&r);
	/* The compressed length is bounded like any other. */
	rpc_rec_init(&r, 16);
	r.r_zok = true;
	rpc_put32(buf, RPC_RM_LAST | RPC_RM_ZSTD | 17);
	feed_all(&r, buf, 4, &err);
	CU_ASSERT_EQUAL(err, -EMSGSIZE);
	rpc_rec_free(&r);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("zlink", NULL, NULL);
	CU_add_test(s, "round trip", test_round_trip);
	CU_add_test(s, "incompressible data backs off",
		    test_incompressible_backs_off);
	CU_add_test(s, "auto follows the measured rate", test_auto_follows_rate);
	CU_add_test(s, "decoder refuses bad frames", test_unpack_refuses);
	CU_add_test(s, "record mark bit 30", test_record_mark);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	zlink_thread_done();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
