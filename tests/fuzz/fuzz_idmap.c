/*
 * tests/fuzz/fuzz_idmap.c — libFuzzer target: the input is a uid/gid map
 * file.  Options come from a hash of the input.  A map that loads must be
 * self-consistent (sorted, non-overlapping ranges) and every lookup must
 * agree with its ranges as docs/idmap.md describes: requests through the
 * squash rules, lines and unmapped policy, replies through the lines only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idmap/idmap.h"
#include "tests/fuzz/fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID_MAX 4294967294u
#define MAX_RANGES 64u /* lookups are checked around this many lines */

static void im_fail(const char *why, unsigned kind, uint32_t id)
{
	fprintf(stderr, "fuzz_idmap: %s (kind %u id %u)\n", why, kind, id);
	abort();
}

/* The range of kind k covering client id (or store id when store), or -1. */
static long im_find(const struct idmap *m, enum idmap_kind k, uint32_t id,
		    bool store, struct idmap_range *out)
{
	size_t n = idmap_range_count(m, k);

	for (size_t i = 0; i < n; i++) {
		struct idmap_range r;

		idmap_range_get(m, k, i, &r);
		if (store && r.r_squash)
			continue;
		uint32_t lo = store ? r.r_store_lo : r.r_client_lo;
		uint32_t hi = lo + (r.r_client_hi - r.r_client_lo);

		if (id >= lo && id <= hi) {
			*out = r;
			return (long)i;
		}
	}
	return -1;
}

/* One request lookup and one reply lookup of id, against the ranges. */
static void im_check_id(const struct idmap *m, enum idmap_kind k, uint32_t id)
{
	const struct idmap_opts *o = idmap_opts_of(m);
	uint32_t anon = k == IDMAP_UID ? o->io_anonuid : o->io_anongid;
	uint32_t got = 12345, want;
	int rc = idmap_id_to_store(m, k, id, &got), want_rc;
	struct idmap_range r;

	if (o->io_squash == IDMAP_SQUASH_ALL ||
	    (o->io_squash == IDMAP_SQUASH_ROOT && id == 0)) {
		want_rc = IDMAP_SQUASHED, want = anon;
	} else if (im_find(m, k, id, false, &r) >= 0) {
		want_rc = r.r_squash ? IDMAP_SQUASHED : 0;
		want = r.r_squash ? anon : r.r_store_lo + (id - r.r_client_lo);
	} else if (o->io_unmapped == IDMAP_UNMAPPED_DENY) {
		want_rc = -EACCES, want = 12345;
	} else {
		want_rc = IDMAP_SQUASHED, want = anon;
	}
	if (rc != want_rc || got != want)
		im_fail("request lookup disagrees with the ranges", k, id);
	got = 12345;
	rc = idmap_id_to_client(m, k, id, &got);
	if (im_find(m, k, id, true, &r) >= 0)
		want_rc = 0, want = r.r_client_lo + (id - r.r_store_lo);
	else
		want_rc = IDMAP_SQUASHED, want = anon;
	if (rc != want_rc || got != want)
		im_fail("reply lookup disagrees with the ranges", k, id);
}

/* Ranges sorted by client id, disjoint on both sides, within bounds. */
static void im_check_ranges(const struct idmap *m, enum idmap_kind k)
{
	size_t n = idmap_range_count(m, k);
	struct idmap_range prev = { 0 }, r, other;

	for (size_t i = 0; i < n; i++) {
		if (idmap_range_get(m, k, i, &r))
			im_fail("range_get failed inside the count", k, (uint32_t)i);
		if (r.r_client_hi < r.r_client_lo || r.r_client_hi > ID_MAX ||
		    (!r.r_squash &&
		     r.r_store_lo > ID_MAX - (r.r_client_hi - r.r_client_lo)))
			im_fail("range out of bounds", k, r.r_client_lo);
		if (i && prev.r_client_hi >= r.r_client_lo)
			im_fail("ranges unsorted or overlapping", k, r.r_client_lo);
		if (!r.r_squash && im_find(m, k, r.r_store_lo, true, &other) !=
					   (long)i)
			im_fail("store sides overlap", k, r.r_store_lo);
		prev = r;
	}
	if (idmap_range_get(m, k, n, &r) != -ERANGE)
		im_fail("range_get past the count", k, (uint32_t)n);
}

static void im_check_map(const struct idmap *m, uint64_t h)
{
	static const uint32_t fixed[] = { 0, 1, 65534, ID_MAX, 4294967295u };
	uint32_t gids[24], ngids = 0, uid = (uint32_t)h, gid = (uint32_t)(h >> 32);

	for (unsigned k = IDMAP_UID; k <= IDMAP_GID; k++) {
		size_t n = idmap_range_count(m, k);

		im_check_ranges(m, k);
		for (size_t i = 0; i < 5; i++)
			im_check_id(m, k, fixed[i]);
		for (size_t i = 0; i < n && i < MAX_RANGES; i++) {
			struct idmap_range r;
			uint32_t ids[5];

			idmap_range_get(m, k, i, &r);
			ids[0] = r.r_client_lo, ids[1] = r.r_client_hi;
			ids[2] = r.r_client_lo - 1, ids[3] = r.r_client_hi + 1;
			ids[4] = r.r_store_lo;
			for (size_t j = 0; j < 5; j++)
				im_check_id(m, k, ids[j]);
			if (ngids < 24)
				gids[ngids++] = k == IDMAP_GID ? r.r_client_lo : 0;
		}
	}
	/* A credential made of the ids above, with duplicates and more than
	 * 16 gids: at most 16 unique ones may come out. */
	for (; ngids < 20; ngids++)
		gids[ngids] = ngids % 3;
	if (idmap_cred_to_store(m, &uid, &gid, gids, &ngids) >= 0) {
		if (ngids > IDMAP_MAX_GIDS)
			im_fail("more than 16 gids after mapping", 1, ngids);
		for (uint32_t i = 0; i < ngids; i++)
			for (uint32_t j = 0; j < i; j++)
				if (gids[i] == gids[j])
					im_fail("duplicate gid after mapping", 1,
						gids[i]);
		if (idmap_opts_of(m)->io_squash == IDMAP_SQUASH_ALL && ngids)
			im_fail("squash-all left supplementary gids", 1, ngids);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t h = fz_hash(data, size);
	struct idmap_opts o;
	struct idmap *m = NULL;
	char path[64], err[256];
	int fd, rc;

	idmap_opts_default(&o);
	o.io_squash = (enum idmap_squash)(h % 3);
	o.io_unmapped = (enum idmap_unmapped)((h >> 2) & 1);
	if ((h >> 3) & 1)
		o.io_anonuid = (uint32_t)(h >> 8) % 100000u; /* 0 is refused */
	fd = fz_file_make(data, size, path, sizeof(path));
	if (fd < 0)
		return 0;
	err[0] = '\0';
	rc = idmap_load(path, &o, &m, err, sizeof(err));
	close(fd);
	if (rc == -EINVAL && !err[0] && o.io_anonuid)
		im_fail("EINVAL without a message", 0, 0);
	if (rc)
		return 0;
	if (!m)
		im_fail("load succeeded without a map", 0, 0);
	im_check_map(m, h);
	idmap_ref(m);
	idmap_unref(m);
	idmap_free(m);
	return 0;
}
