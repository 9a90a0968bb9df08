/*
 * tests/fuzz/fuzz_zlink.c — libFuzzer target: a compressed record as a
 * certified peer could send it on a gridvfs-z1 link (proxy/zlink.c).
 * Byte 0 picks the record bound (--max-record); the rest is the record.
 *
 * Oracle: zlink_unpack either refuses with -EBADMSG / -EMSGSIZE / -ENOMEM
 * and hands nothing out, or returns exactly the size the frame states, no
 * more than the bound and not zero, with the headroom in front; what it
 * decoded packs and unpacks again to the same bytes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "proxy/zlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_fail(const char *why)
{
	fprintf(stderr, "fuzz_zlink: %s\n", why);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t bounds[] = {1, 100, 4096, 65536, 1052672,
					64u << 20};
	struct zlink_stats st = {0};
	struct zlink_out z;
	uint8_t *out = (uint8_t *)1, *again = NULL, *packed;
	size_t max, olen = 0, alen = 0, cap, n;
	unsigned long long stated;
	char why[160];
	int rc;

	if (size < 1)
		return 0;
	max = bounds[data[0] % (sizeof(bounds) / sizeof(bounds[0]))];
	data++;
	size--;
	stated = ZSTD_getFrameContentSize(data, size);
	rc = zlink_unpack(data, size, max, 4, &out, &olen, &st, why,
			  sizeof(why));
	if (rc < 0) {
		if (rc != -EBADMSG && rc != -EMSGSIZE && rc != -ENOMEM)
			fz_fail("unexpected error code");
		if (out != (uint8_t *)1)
			fz_fail("a refusal handed a buffer out");
		if (!why[0] && rc != -ENOMEM)
			fz_fail("a refusal without a reason");
		return 0;
	}
	if (olen == 0 || olen > max || olen != stated)
		fz_fail("decoded size is not the stated size within the bound");
	if (st.zs_unpacked != 1 || st.zs_unpacked_bytes != olen)
		fz_fail("counters wrong");
	memset(out, 0xAA, 4); /* the headroom is ours to write */
	zlink_out_init(&z, ZLINK_ON, 0, NULL);
	cap = zlink_bound(olen);
	if (!(packed = malloc(cap)))
		fz_fail("out of memory");
	n = zlink_pack(&z, out + 4, olen, packed, cap);
	if (n) {
		if (zlink_unpack(packed, n, olen, 0, &again, &alen, NULL, NULL,
				 0) != 0 || alen != olen ||
		    memcmp(again, out + 4, olen))
			fz_fail("a packed record does not unpack to itself");
		free(again);
	}
	free(packed);
	free(out);
	return 0;
}
