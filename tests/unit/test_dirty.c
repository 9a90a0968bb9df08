/*
 * tests/unit/test_dirty.c — the write-back dirty log (cache/dirty.c):
 * durability across close/reopen, order, replay, the write verifier
 * (kept across reopen, new on rebuild), byte accounting and completions.
 */
#define _GNU_SOURCE
#include "config.h"
#include "cache/cache.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char g_base[256];
static int g_n;

static void mkbase(char *dir, size_t len)
{
	snprintf(dir, len, "%s/d%d", g_base, g_n++);
}

static void quiet(int prio, const char *msg)
{
	(void)prio;
	(void)msg;
}

static struct cache_dirty *open_ok(const char *dir)
{
	struct cache_dirty_opts o = {.do_dir = dir, .do_map_bytes = 64u << 20,
				     .do_log = quiet};
	struct cache_dirty *d = NULL;

	CU_ASSERT_EQUAL_FATAL(cache_dirty_open(&o, &d), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	return d;
}

static void rec_make(struct cache_dirty_rec *r, uint64_t seq, uint8_t fh,
		     uint64_t off, const void *data, uint32_t len)
{
	memset(r, 0, sizeof(*r));
	r->dr_seq = seq;
	r->dr_off = off;
	r->dr_len = len;
	r->dr_data = data;
	r->dr_time_ms = 1000 + seq;
	r->dr_uid = 1000 + fh;
	r->dr_gid = 100;
	r->dr_ngids = 2;
	r->dr_gids[0] = 7;
	r->dr_gids[1] = 8;
	r->dr_fhlen = 8;
	memset(r->dr_fh, fh, 8);
}

/* Wait (bounded) for n completions through the eventfd, all successful. */
static void reap_n(struct cache_dirty *d, size_t n, void **tokens)
{
	struct pollfd p = {.fd = cache_dirty_event_fd(d), .events = POLLIN};
	size_t got = 0;

	while (got < n) {
		struct cache_dirty_done done[16];
		size_t k;

		CU_ASSERT_FATAL(poll(&p, 1, 5000) == 1);
		k = cache_dirty_reap(d, done, 16);
		for (size_t i = 0; i < k; i++) {
			CU_ASSERT_EQUAL(done[i].dd_err, 0);
			if (tokens && got + i < n)
				tokens[got + i] = done[i].dd_token;
		}
		got += k;
	}
	CU_ASSERT_EQUAL(got, n);
}

struct seen {
	uint64_t seq[64];
	uint64_t off[64];
	uint32_t len[64];
	uint8_t first[64];
	unsigned n;
};

static int collect(void *ctx, const struct cache_dirty_rec *r)
{
	struct seen *s = ctx;

	if (s->n >= 64)
		return -E2BIG;
	s->seq[s->n] = r->dr_seq;
	s->off[s->n] = r->dr_off;
	s->len[s->n] = r->dr_len;
	s->first[s->n] = r->dr_len ? ((const uint8_t *)r->dr_data)[0] : 0;
	CU_ASSERT_EQUAL(r->dr_uid, 1000u + r->dr_fh[0]);
	CU_ASSERT_EQUAL(r->dr_ngids, 2u);
	CU_ASSERT_EQUAL(r->dr_gids[1], 8u);
	s->n++;
	return 0;
}

static void test_durable_reopen_order(void)
{
	char dir[300];
	uint8_t buf[3][5000], v1[8], v2[8];
	struct cache_dirty_rec r;
	struct cache_dirty *d;
	struct seen s = {0};
	void *tok[3];

	mkbase(dir, sizeof(dir));
	d = open_ok(dir);
	CU_ASSERT_TRUE(cache_dirty_fresh(d));
	CU_ASSERT_EQUAL(cache_dirty_last_seq(d), 0);
	cache_dirty_verifier(d, v1);
	/* Out of submission order on purpose: replay is by sequence. */
	for (int i = 0; i < 3; i++)
		memset(buf[i], 'a' + i, sizeof(buf[i]));
	rec_make(&r, 30, 1, 0, buf[2], 5000);
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, (void *)3), 0);
	rec_make(&r, 10, 1, 4096, buf[0], 100);
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, (void *)1), 0);
	rec_make(&r, 20, 2, 1 << 20, buf[1], 4096);
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, (void *)2), 0);
	memset(buf, 0, sizeof(buf)); /* put copied the data */
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 5000u + 100 + 4096);
	/* Completions come in queue order. */
	reap_n(d, 3, tok);
	CU_ASSERT_PTR_EQUAL(tok[0], (void *)3);
	CU_ASSERT_PTR_EQUAL(tok[2], (void *)2);
	cache_dirty_close(d);

	d = open_ok(dir);
	CU_ASSERT_FALSE(cache_dirty_fresh(d));
	cache_dirty_verifier(d, v2);
	CU_ASSERT_EQUAL(memcmp(v1, v2, 8), 0);
	CU_ASSERT_EQUAL(cache_dirty_last_seq(d), 30);
	CU_ASSERT_EQUAL(cache_dirty_replay(d, collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 3);
	CU_ASSERT_EQUAL(s.seq[0], 10);
	CU_ASSERT_EQUAL(s.off[0], 4096);
	CU_ASSERT_EQUAL(s.first[0], 'a');
	CU_ASSERT_EQUAL(s.seq[1], 20);
	CU_ASSERT_EQUAL(s.off[1], 1u << 20);
	CU_ASSERT_EQUAL(s.first[1], 'b');
	CU_ASSERT_EQUAL(s.seq[2], 30);
	CU_ASSERT_EQUAL(s.len[2], 5000);
	CU_ASSERT_EQUAL(s.first[2], 'c');
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 5000u + 100 + 4096);
	cache_dirty_close(d);
}

static void test_delete_and_accounting(void)
{
	char dir[300];
	uint8_t data[8192];
	struct cache_dirty_rec r;
	struct cache_dirty_stat st;
	struct cache_dirty *d;
	struct seen s = {0};
	uint8_t v[8];

	mkbase(dir, sizeof(dir));
	d = open_ok(dir);
	memset(data, 'x', sizeof(data));
	for (uint64_t i = 1; i <= 10; i++) {
		rec_make(&r, i, (uint8_t)(i % 3), i * 8192, data, 8192);
		CU_ASSERT_EQUAL(cache_dirty_put(d, &r, NULL), 0);
	}
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 10u * 8192);
	reap_n(d, 10, NULL);
	/* A delete counts only once durable. */
	for (uint64_t i = 1; i <= 4; i++)
		CU_ASSERT_EQUAL(cache_dirty_del(d, i, 8192, (void *)i), 0);
	CU_ASSERT_EQUAL(cache_dirty_sync(d), 0);
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 6u * 8192);
	reap_n(d, 4, NULL);
	/* Figures from beside the open log (another env handle). */
	CU_ASSERT_EQUAL(cache_dirty_stat_dir(dir, &st), 0);
	CU_ASSERT_EQUAL(st.ds_records, 6);
	CU_ASSERT_EQUAL(st.ds_bytes, 6u * 8192);
	CU_ASSERT_EQUAL(st.ds_files, 3);
	CU_ASSERT_EQUAL(st.ds_oldest_ms, 1005);
	cache_dirty_verifier(d, v);
	CU_ASSERT_EQUAL(memcmp(v, st.ds_verf, 8), 0);
	cache_dirty_close(d);
	d = open_ok(dir);
	CU_ASSERT_EQUAL(cache_dirty_replay(d, collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 6);
	CU_ASSERT_EQUAL(s.seq[0], 5);
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 6u * 8192);
	cache_dirty_close(d);
}

static void test_busy_and_invalid(void)
{
	struct cache_dirty_opts o = {.do_log = quiet};
	struct cache_dirty *d, *d2 = NULL;
	struct cache_dirty_rec r;
	char dir[300];

	CU_ASSERT_EQUAL(cache_dirty_open(&o, &d2), -EINVAL);
	mkbase(dir, sizeof(dir));
	d = open_ok(dir);
	o.do_dir = dir;
	CU_ASSERT_EQUAL(cache_dirty_open(&o, &d2), -EBUSY);
	CU_ASSERT_PTR_NULL(d2);
	rec_make(&r, 0, 1, 0, "x", 1);
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, NULL), -EINVAL); /* seq 0 */
	rec_make(&r, 1, 1, 0, "x", 1);
	r.dr_fhlen = 65;
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, NULL), -EINVAL);
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 0);
	cache_dirty_close(d);
}

/* A damaged log is moved aside (kept) and rebuilt with a new verifier. */
static void test_rebuild_new_verifier(void)
{
	char dir[300], path[400], cmd[700];
	struct cache_dirty_rec r;
	struct cache_dirty *d;
	uint8_t v1[8], v2[8];
	struct seen s = {0};
	int fd;

	mkbase(dir, sizeof(dir));
	d = open_ok(dir);
	cache_dirty_verifier(d, v1);
	rec_make(&r, 1, 1, 0, "hello", 5);
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, NULL), 0);
	cache_dirty_sync(d);
	cache_dirty_close(d);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	fd = open(path, O_WRONLY | O_TRUNC);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, "garbage, not an LMDB file at all.......", 39),
			39);
	close(fd);
	d = open_ok(dir);
	CU_ASSERT_TRUE(cache_dirty_fresh(d));
	cache_dirty_verifier(d, v2);
	CU_ASSERT_NOT_EQUAL(memcmp(v1, v2, 8), 0);
	CU_ASSERT_EQUAL(cache_dirty_replay(d, collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 0);
	cache_dirty_close(d);
	/* The damaged one is kept beside. */
	snprintf(cmd, sizeof(cmd), "ls -d %s.bad-* >/dev/null 2>&1", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	/* Deleting the log is also a loss: a new verifier. */
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	d = open_ok(dir);
	cache_dirty_verifier(d, v1);
	CU_ASSERT_NOT_EQUAL(memcmp(v1, v2, 8), 0);
	cache_dirty_close(d);
}

/* Many small puts from a burst become few fsync'ed groups, all durable. */
static void test_group_commit_many(void)
{
	char dir[300];
	uint8_t data[4096];
	struct cache_dirty_rec r;
	struct cache_dirty *d;
	struct cache_dirty_stat st;

	mkbase(dir, sizeof(dir));
	d = open_ok(dir);
	for (uint64_t i = 1; i <= 2000; i++) {
		memset(data, (int)i, sizeof(data));
		rec_make(&r, i, (uint8_t)(i % 5), (i % 97) * 4096, data, 4096);
		CU_ASSERT_EQUAL_FATAL(cache_dirty_put(d, &r, NULL), 0);
	}
	reap_n(d, 2000, NULL);
	CU_ASSERT_EQUAL(cache_dirty_bytes(d), 2000u * 4096);
	cache_dirty_close(d);
	CU_ASSERT_EQUAL(cache_dirty_stat_dir(dir, &st), 0);
	CU_ASSERT_EQUAL(st.ds_records, 2000);
	CU_ASSERT_EQUAL(st.ds_files, 5);
}

/* put_ref: the data is read from the caller's buffer by the writer (kept
 * until the completion), and what is stored equals a copied put.  The
 * counts say how many groups (fsyncs) held the records. */
static void test_put_ref_and_counts(void)
{
	char dir[300];
	static uint8_t data[40][4096];
	struct cache_dirty_rec r;
	struct cache_dirty_counts dc;
	struct cache_dirty *d;
	struct seen s = {0};

	mkbase(dir, sizeof(dir));
	d = open_ok(dir);
	for (uint64_t i = 1; i <= 40; i++) {
		memset(data[i - 1], (int)(0x40 + i), sizeof(data[0]));
		rec_make(&r, i, 1, i * 4096, data[i - 1], 4096);
		CU_ASSERT_EQUAL_FATAL(i % 2 ? cache_dirty_put_ref(d, &r, NULL)
					    : cache_dirty_put(d, &r, NULL), 0);
	}
	reap_n(d, 40, NULL);
	cache_dirty_counts(d, &dc);
	CU_ASSERT_EQUAL(dc.dc_puts, 40);
	CU_ASSERT_EQUAL(dc.dc_dels, 0);
	CU_ASSERT(dc.dc_groups >= 1 && dc.dc_groups <= 40);
	cache_dirty_close(d);
	d = open_ok(dir);
	CU_ASSERT_EQUAL(cache_dirty_replay(d, collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 40);
	for (unsigned i = 0; i < s.n; i++) {
		CU_ASSERT_EQUAL(s.len[i], 4096u);
		CU_ASSERT_EQUAL(s.first[i], 0x40 + s.seq[i]);
	}
	cache_dirty_close(d);
}

static struct cache_dirty *open_boot(const char *dir, const char *boot)
{
	struct cache_dirty_opts o = {.do_dir = dir, .do_map_bytes = 64u << 20,
				     .do_log = quiet, .do_boot_id = boot};
	struct cache_dirty *d = NULL;

	CU_ASSERT_EQUAL_FATAL(cache_dirty_open(&o, &d), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	return d;
}

/* Open dir in boot `boot`: the verifier is v0 (kept) or not (redrawn,
 * and the log says it was rebooted).  The caller closes. */
static struct cache_dirty *reopen_expect(const char *dir, const char *boot,
					 const uint8_t v0[8], bool kept)
{
	struct cache_dirty *d = open_boot(dir, boot);
	uint8_t v1[8];

	cache_dirty_verifier(d, v1);
	CU_ASSERT_EQUAL(memcmp(v0, v1, 8) == 0, kept);
	CU_ASSERT_EQUAL(cache_dirty_rebooted(d), !kept);
	return d;
}

/* A process that puts one record (seq) and dies without closing, as with
 * kill -9: the log was open in boot `boot` and is not clean. */
static void crash_after_put(const char *dir, const char *boot, uint64_t seq)
{
	int st = -1;
	pid_t p = fork();

	CU_ASSERT_FATAL(p >= 0);
	if (p == 0) {
		struct cache_dirty_opts o = {.do_dir = dir,
					     .do_map_bytes = 64u << 20,
					     .do_log = quiet,
					     .do_boot_id = boot};
		struct cache_dirty_done dd;
		struct cache_dirty_rec r;
		struct cache_dirty *d = NULL;
		struct pollfd pf;
		uint8_t b[100];

		memset(b, 'x', sizeof(b));
		if (cache_dirty_open(&o, &d))
			_exit(2);
		rec_make(&r, seq, 1, 0, b, sizeof(b));
		if (cache_dirty_put(d, &r, NULL))
			_exit(3);
		pf.fd = cache_dirty_event_fd(d);
		pf.events = POLLIN;
		if (poll(&pf, 1, 5000) != 1 || cache_dirty_reap(d, &dd, 1) != 1 ||
		    dd.dd_err)
			_exit(4);
		_exit(0);
	}
	CU_ASSERT_EQUAL(waitpid(p, &st, 0), p);
	CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Groups are flushed once (MDB_NOMETASYNC), so a machine crash may undo
 * the last one: the verifier survives a crash of the process (same boot)
 * and a reboot after a clean close, and is redrawn after a reboot that
 * followed an unclean end.  Stable puts and deletions are flushed twice
 * (dc_syncs), plain puts once; what completed is always there to replay. */
static void test_reboot_verifier_and_syncs(void)
{
	char dir[300];
	uint8_t v0[8], v1[8], b[64];
	struct cache_dirty_counts dc;
	struct cache_dirty_rec r;
	struct cache_dirty *d;
	struct seen s = {0};

	mkbase(dir, sizeof(dir));
	memset(b, 'y', sizeof(b));
	d = open_boot(dir, "boot-a");
	cache_dirty_verifier(d, v0);
	rec_make(&r, 1, 1, 0, b, sizeof(b));
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, NULL), 0);
	reap_n(d, 1, NULL);
	rec_make(&r, 2, 1, 64, b, sizeof(b));
	r.dr_sync = true;
	CU_ASSERT_EQUAL(cache_dirty_put(d, &r, NULL), 0);
	reap_n(d, 1, NULL);
	CU_ASSERT_EQUAL(cache_dirty_del(d, 1, sizeof(b), NULL), 0);
	reap_n(d, 1, NULL);
	cache_dirty_counts(d, &dc);
	CU_ASSERT_EQUAL(dc.dc_groups, 3);
	CU_ASSERT_EQUAL(dc.dc_syncs, 2); /* the stable put, the deletion */
	cache_dirty_close(d);

	/* Clean close, then a reboot: kept. */
	cache_dirty_close(reopen_expect(dir, "boot-b", v0, true));

	/* The process dies; same boot: the page cache had it all: kept. */
	crash_after_put(dir, "boot-b", 3);
	d = reopen_expect(dir, "boot-b", v0, true);
	CU_ASSERT_EQUAL(cache_dirty_last_seq(d), 3);
	cache_dirty_close(d);

	/* The process dies, then the machine restarts: redrawn, and what
	 * the log holds is still replayed. */
	crash_after_put(dir, "boot-b", 4);
	d = reopen_expect(dir, "boot-c", v0, false);
	cache_dirty_verifier(d, v1);
	CU_ASSERT_FALSE(cache_dirty_fresh(d));
	CU_ASSERT_EQUAL(cache_dirty_replay(d, collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 3); /* 2, 3, 4 */
	CU_ASSERT_EQUAL(s.seq[0], 2);
	CU_ASSERT_EQUAL(s.seq[2], 4);
	memcpy(v0, v1, 8);
	cache_dirty_close(d);

	/* The new verifier is itself kept from then on. */
	cache_dirty_close(reopen_expect(dir, "boot-c", v0, true));
}

int main(void)
{
	CU_pSuite s;
	const char *tmp = getenv("TMPDIR");
	unsigned fails;
	char cmd[300];

	snprintf(g_base, sizeof(g_base), "%s/test_dirty.XXXXXX",
		 tmp ? tmp : "/tmp");
	if (!mkdtemp(g_base))
		return 1;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("dirty", NULL, NULL);
	CU_add_test(s, "durable across reopen, replay order", test_durable_reopen_order);
	CU_add_test(s, "delete and byte accounting", test_delete_and_accounting);
	CU_add_test(s, "busy and invalid", test_busy_and_invalid);
	CU_add_test(s, "rebuild draws a new verifier", test_rebuild_new_verifier);
	CU_add_test(s, "group commit of a burst", test_group_commit_many);
	CU_add_test(s, "put_ref and group counts", test_put_ref_and_counts);
	CU_add_test(s, "reboot verifier, synced groups",
		    test_reboot_verifier_and_syncs);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_base);
	if (system(cmd) != 0)
		fails++;
	return fails ? 1 : 0;
}
