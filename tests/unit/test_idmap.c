/*
 * tests/unit/test_idmap.c — CUnit tests for idmap/: map files (ranges both
 * ways, squash modes, deny policy, names, overlaps, huge ranges, malformed
 * lines), credentials, refcounts and slots, grid-mapfiles, and the check CLI.
 * Fixture files are written to a fresh temporary directory.
 */
#define _GNU_SOURCE
#include "idmap/idmap.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/test_idmap.XXXXXX";
static char path[4096];  /* the last fixture written */
static char err[512];
static unsigned nfix;

/* ---------------------------------------------------------------------- */
/* Fixtures                                                                */

/* Write len bytes to a new fixture file; its name is left in path. */
static const char *write_fix_n(const char *data, size_t len)
{
	FILE *f;

	snprintf(path, sizeof(path), "%s/fix%u.map", tmpdir, ++nfix);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
	fclose(f);
	return path;
}

static const char *write_fix(const char *text)
{
	return write_fix_n(text, strlen(text));
}

static struct idmap *load_ok(const char *text, const struct idmap_opts *o)
{
	struct idmap *m = NULL;
	int rc = idmap_load(write_fix(text), o, &m, err, sizeof(err));

	if (rc)
		fprintf(stderr, "unexpected load error %d: %s\n", rc, err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	return m;
}

static struct idmap_opts opts_with(enum idmap_squash sq, enum idmap_unmapped un)
{
	struct idmap_opts o;

	idmap_opts_default(&o);
	o.io_squash = sq;
	o.io_unmapped = un;
	return o;
}

/* Expect -EINVAL with "PATH:LINE: ..." naming why. */
static void expect_bad_n(const char *data, size_t len, unsigned line,
			 const char *why)
{
	struct idmap *m = (struct idmap *)(uintptr_t)0x1;
	char prefix[4200];
	int rc;

	write_fix_n(data, len);
	err[0] = '\0';
	rc = idmap_load(path, NULL, &m, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_PTR_EQUAL(m, (struct idmap *)(uintptr_t)0x1); /* untouched */
	CU_ASSERT_EQUAL(strncmp(err, prefix, strlen(prefix)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
	if (rc != -EINVAL || strncmp(err, prefix, strlen(prefix)) ||
	    !strstr(err, why))
		fprintf(stderr, "\n  want line %u '%s', got %d '%s'\n", line,
			why, rc, err);
}

static void expect_bad(const char *text, unsigned line, const char *why)
{
	expect_bad_n(text, strlen(text), line, why);
}

static uint32_t to_store(const struct idmap *m, enum idmap_kind k,
			 uint32_t id, int want_rc)
{
	uint32_t out = 0xdeadbeef;

	CU_ASSERT_EQUAL(idmap_id_to_store(m, k, id, &out), want_rc);
	return out;
}

static uint32_t to_client(const struct idmap *m, enum idmap_kind k,
			  uint32_t id, int want_rc)
{
	uint32_t out = 0xdeadbeef;

	CU_ASSERT_EQUAL(idmap_id_to_client(m, k, id, &out), want_rc);
	return out;
}

/* ---------------------------------------------------------------------- */
/* Static maps                                                             */

static void test_range_both_ways(void)
{
	struct idmap *m = load_ok("# users\n"
				  "uid 1000-1999 5000\n"
				  "\n"
				  "gid 50-60 700-710   # store range written out\n"
				  "uid 42 4242\n", NULL);
	uint32_t v;

	CU_ASSERT_EQUAL(idmap_uid_to_store(m, 1000, &v), 0);
	CU_ASSERT_EQUAL(v, 5000);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1500, 0), 5500);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1999, 0), 5999);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 42, 0), 4242);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 2000, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 999, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 55, 0), 705);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 1000, IDMAP_SQUASHED), 65534);

	CU_ASSERT_EQUAL(idmap_uid_to_client(m, 5000, &v), 0);
	CU_ASSERT_EQUAL(v, 1000);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 5999, 0), 1999);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 4242, 0), 42);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 6000, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 4999, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 1000, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(idmap_gid_to_client(m, 710, &v), 0);
	CU_ASSERT_EQUAL(v, 60);
	CU_ASSERT_EQUAL(idmap_gid_to_store(m, 60, &v), 0);
	CU_ASSERT_EQUAL(v, 710);
	/* the store's anonymous id shows as the anonymous id */
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 65534, IDMAP_SQUASHED), 65534);

	CU_ASSERT_EQUAL(idmap_range_count(m, IDMAP_UID), 2);
	CU_ASSERT_EQUAL(idmap_range_count(m, IDMAP_GID), 1);
	idmap_free(m);
}

static void test_range_inspect(void)
{
	struct idmap *m = load_ok("uid 1000-1999 5000\nuid 10 -\nuid 7 8\n",
				  NULL);
	struct idmap_range r;

	/* ordered by client id, not by line */
	CU_ASSERT_EQUAL(idmap_range_get(m, IDMAP_UID, 0, &r), 0);
	CU_ASSERT_EQUAL(r.r_client_lo, 7);
	CU_ASSERT_EQUAL(r.r_store_lo, 8);
	CU_ASSERT_EQUAL(r.r_line, 3);
	CU_ASSERT_EQUAL(idmap_range_get(m, IDMAP_UID, 1, &r), 0);
	CU_ASSERT(r.r_squash);
	CU_ASSERT_EQUAL(r.r_line, 2);
	CU_ASSERT_EQUAL(idmap_range_get(m, IDMAP_UID, 2, &r), 0);
	CU_ASSERT_EQUAL(r.r_client_hi, 1999);
	CU_ASSERT_EQUAL(idmap_range_get(m, IDMAP_UID, 3, &r), -ERANGE);
	CU_ASSERT_EQUAL(idmap_range_get(m, IDMAP_GID, 0, &r), -ERANGE);
	idmap_free(m);
}

static void test_squash_line(void)
{
	struct idmap *m = load_ok("uid 0-99 -\nuid 100 100\ngid 5 -\n", NULL);

	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 50, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 99, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 100, 0), 100);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 5, IDMAP_SQUASHED), 65534);
	/* a "-" line maps nothing back */
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 50, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 100, 0), 100);
	idmap_free(m);
}

static void test_squash_modes(void)
{
	const char *text = "uid 0-10 0\ngid 0-10 0\nuid 20 3000\n";
	struct idmap_opts o = opts_with(IDMAP_SQUASH_ROOT, IDMAP_UNMAPPED_SQUASH);
	struct idmap *m;

	/* root: a line for 0 does not lift root squash */
	m = load_ok(text, &o);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 0, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1, 0), 1);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 0, 0), 0); /* replies keep it */
	idmap_free(m);

	o.io_squash = IDMAP_SQUASH_NONE;
	m = load_ok(text, &o);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, 0), 0);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 0, 0), 0);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 11, IDMAP_SQUASHED), 65534);
	idmap_free(m);

	o.io_squash = IDMAP_SQUASH_ALL;
	o.io_anonuid = 4000;
	o.io_anongid = 4001;
	m = load_ok(text, &o);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 20, IDMAP_SQUASHED), 4000);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 5, IDMAP_SQUASHED), 4000);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 5, IDMAP_SQUASHED), 4001);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 3000, 0), 20);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 3001, IDMAP_SQUASHED), 4000);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_GID, 3001, IDMAP_SQUASHED), 4001);
	CU_ASSERT_EQUAL(idmap_opts_of(m)->io_anonuid, 4000);
	idmap_free(m);
}

static void test_deny_policy(void)
{
	struct idmap_opts o = opts_with(IDMAP_SQUASH_ROOT, IDMAP_UNMAPPED_DENY);
	struct idmap *m = load_ok("uid 1000-1009 5000\nuid 50 -\ngid 0-100 0\n", &o);
	uint32_t v = 77;

	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1005, 0), 5005);
	CU_ASSERT_EQUAL(idmap_uid_to_store(m, 1010, &v), -EACCES);
	CU_ASSERT_EQUAL(v, 77); /* untouched */
	CU_ASSERT_EQUAL(idmap_gid_to_store(m, 101, &v), -EACCES);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 50, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 0, IDMAP_SQUASHED), 65534);
	/* replies never deny */
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 9, IDMAP_SQUASHED), 65534);
	idmap_free(m);
}

static void test_empty_map(void)
{
	struct idmap_opts o = opts_with(IDMAP_SQUASH_ROOT, IDMAP_UNMAPPED_DENY);
	struct idmap *m = NULL;

	CU_ASSERT_EQUAL_FATAL(idmap_new_empty(&o, &m), 0);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1234, 0), 1234);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 4294967294u, 0), 4294967294u);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 0, 0), 0);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_GID, 777, 0), 777);
	CU_ASSERT_EQUAL(idmap_range_count(m, IDMAP_UID), 0);
	idmap_free(m);

	o.io_squash = IDMAP_SQUASH_NONE;
	CU_ASSERT_EQUAL_FATAL(idmap_new_empty(&o, &m), 0);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, 0), 0);
	idmap_free(m);

	o.io_squash = IDMAP_SQUASH_ALL;
	CU_ASSERT_EQUAL_FATAL(idmap_new_empty(&o, &m), 0);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1234, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 1234, 0), 1234);
	idmap_free(m);

	CU_ASSERT_EQUAL_FATAL(idmap_new_empty(NULL, &m), 0);
	CU_ASSERT_EQUAL(idmap_opts_of(m)->io_squash, IDMAP_SQUASH_ROOT);
	CU_ASSERT_EQUAL(idmap_opts_of(m)->io_anongid, 65534);
	idmap_free(m);
}

static void test_opts_invalid(void)
{
	struct idmap_opts o;
	struct idmap *m = NULL;
	const char *p = write_fix("uid 1 2\n");

	idmap_opts_default(&o);
	o.io_anonuid = 0; /* squashed users would become root */
	CU_ASSERT_EQUAL(idmap_new_empty(&o, &m), -EINVAL);
	CU_ASSERT_EQUAL(idmap_load(p, &o, &m, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NULL(m);
	idmap_opts_default(&o);
	o.io_anongid = 4294967295u;
	CU_ASSERT_EQUAL(idmap_new_empty(&o, &m), -EINVAL);
	idmap_opts_default(&o);
	o.io_squash = (enum idmap_squash)7;
	CU_ASSERT_EQUAL(idmap_new_empty(&o, &m), -EINVAL);
	idmap_opts_default(&o);
	o.io_unmapped = (enum idmap_unmapped)2;
	CU_ASSERT_EQUAL(idmap_new_empty(&o, &m), -EINVAL);
	CU_ASSERT_PTR_NULL(m);
}

static void test_cred(void)
{
	struct idmap *m = load_ok("uid 1000 5000\n"
				  "gid 100-199 1100\n"
				  "gid 300 -\n", NULL);
	/* 16 gids: duplicates, root, a "-" line, unmapped, mapped */
	uint32_t gids[16] = { 100, 101, 100, 0, 300, 999, 102, 101,
			      0, 103, 300, 998, 104, 105, 105, 199 };
	const uint32_t want[] = { 1100, 1101, 65534, 1102, 1103, 1104, 1105, 1199 };
	uint32_t uid = 1000, gid = 150, n = 16;

	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n), 0);
	CU_ASSERT_EQUAL(uid, 5000);
	CU_ASSERT_EQUAL(gid, 1150);
	CU_ASSERT_EQUAL_FATAL(n, sizeof(want) / sizeof(want[0]));
	CU_ASSERT_EQUAL(memcmp(gids, want, sizeof(want)), 0);

	/* a squashed uid is reported */
	uid = 0;
	gid = 100;
	n = 0;
	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n),
			IDMAP_SQUASHED);
	CU_ASSERT_EQUAL(uid, 65534);
	CU_ASSERT_EQUAL(gid, 1100);
	idmap_free(m);
}

static void test_cred_limits(void)
{
	struct idmap_opts o = opts_with(IDMAP_SQUASH_ROOT, IDMAP_UNMAPPED_DENY);
	struct idmap *m = load_ok("uid 1000 5000\ngid 0-99 1000\n", &o);
	uint32_t gids[24], uid, gid, n;

	/* more than 16 distinct gids in: 16 out, first ones kept */
	for (uint32_t i = 0; i < 24; i++)
		gids[i] = 10 + i;
	uid = 1000, gid = 1, n = 24;
	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n), 0);
	CU_ASSERT_EQUAL(n, 16);
	CU_ASSERT_EQUAL(gids[0], 1010);
	CU_ASSERT_EQUAL(gids[15], 1025);

	/* deny: unmapped supplementary gids are dropped, not squashed */
	gids[0] = 5, gids[1] = 500, gids[2] = 6;
	uid = 1000, gid = 1, n = 3;
	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(gids[0], 1005);
	CU_ASSERT_EQUAL(gids[1], 1006);

	/* deny: an unmapped uid or primary gid refuses; nothing changes */
	uid = 1001, gid = 1, n = 1, gids[0] = 7;
	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n), -EACCES);
	CU_ASSERT(uid == 1001 && gid == 1 && n == 1 && gids[0] == 7);
	uid = 1000, gid = 100;
	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n), -EACCES);
	CU_ASSERT(uid == 1000 && gid == 100 && n == 1);
	idmap_free(m);

	/* all_squash leaves no supplementary groups */
	o.io_squash = IDMAP_SQUASH_ALL;
	m = load_ok("uid 1000 5000\ngid 0-99 1000\n", &o);
	uid = 1000, gid = 1, n = 2, gids[0] = 5, gids[1] = 6;
	CU_ASSERT_EQUAL(idmap_cred_to_store(m, &uid, &gid, gids, &n),
			IDMAP_SQUASHED);
	CU_ASSERT(uid == 65534 && gid == 65534 && n == 0);
	idmap_free(m);
}

static void test_names(void)
{
	struct idmap_opts o = opts_with(IDMAP_SQUASH_NONE, IDMAP_UNMAPPED_SQUASH);
	struct passwd *pw = getpwnam("daemon");
	struct group *gr = getgrnam("daemon");
	struct idmap *m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
	CU_ASSERT_PTR_NOT_NULL_FATAL(gr);
	m = load_ok("uid root 7000\nuid 5000 daemon\ngid daemon 800\n", &o);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, 0), 7000);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 5000, 0), pw->pw_uid);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, pw->pw_uid, 0), 5000);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, gr->gr_gid, 0), 800);
	idmap_free(m);

	expect_bad("uid 1 2\nuid no_such_user_gridvfs 5\n", 2, "unknown user name");
	expect_bad("gid 5 no_such_group_gridvfs\n", 1, "unknown group name");
	expect_bad("uid al!ce 5\n", 1, "not a number, range or valid name");
	expect_bad("uid 5 \xc3\xa9t\xc3\xa9\n", 1, "not a number, range or valid name");
}

static void test_overlaps(void)
{
	struct idmap *m;

	expect_bad("uid 1000-1999 5000\nuid 1 1\nuid 1500-2500 9000\n", 3,
		   "client uid range 1500-2500 overlaps line 1 (client 1000-1999)");
	/* the later line is blamed even when it sorts first */
	expect_bad("uid 1500-2500 9000\n#\nuid 1000-1500 5000\n", 3,
		   "overlaps line 1");
	/* a range swallowing later ones is found through the furthest end */
	expect_bad("uid 0-100 -\nuid 50 60\n", 2, "overlaps line 1");
	expect_bad("uid 10-1000 -\nuid 20 20\nuid 500 -\n", 2, "overlaps line 1");
	expect_bad("gid 7 7\ngid 7 8\n", 2, "client gid range 7-7 overlaps line 1");
	/* two lines onto the same store ids: replies would be ambiguous */
	expect_bad("uid 1000-1999 5000\nuid 3000 5500\n", 2,
		   "store uid range 5500-5500 overlaps line 1 (store 5000-5999)");
	expect_bad("gid 1 9\ngid 2 9\n", 2, "replies could not be mapped back");

	/* adjacent ranges, many "-" lines, and uid vs gid are all fine */
	m = load_ok("uid 1000-1999 5000\nuid 2000-2999 6000\n"
		    "uid 1 -\nuid 2 -\nuid 3-9 -\ngid 1000 5000\n", NULL);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 2000, 0), 6000);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 5999, 0), 1999);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 6000, 0), 2000);
	idmap_free(m);
}

static void test_huge_ranges(void)
{
	struct idmap_opts o = opts_with(IDMAP_SQUASH_NONE, IDMAP_UNMAPPED_DENY);
	struct idmap *m = load_ok("uid 0-4294967294 0\ngid 1-4294967294 0\n", &o);

	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 0, 0), 0);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 4294967294u, 0), 4294967294u);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_UID, 123456789, 0), 123456789);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 4294967294u, 0), 4294967293u);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 1, 0), 0);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_GID, 0, 0), 1);
	CU_ASSERT_EQUAL(to_client(m, IDMAP_GID, 4294967294u, IDMAP_SQUASHED), 65534);
	CU_ASSERT_EQUAL(idmap_gid_to_store(m, 0, &(uint32_t){ 0 }), -EACCES);
	idmap_free(m);

	expect_bad("uid 0-4294967294 1\n", 1, "runs past 4294967294");
	expect_bad("uid 1 1\ngid 10-20 4294967290\n", 2, "runs past 4294967294");
	expect_bad("uid 10-20 30-39\n", 1, "differ in length");
}

static void test_malformed(void)
{
	char longline[5000];
	char exact[4200];
	struct idmap *m;

	expect_bad("uid 1 2\nuid \x01 3\n", 2, "binary byte 0x01");
	expect_bad_n("uid 1 2\n\nuid 3\0 4\n", 16, 3, "binary byte 0x00");
	expect_bad("\x7f\x45LF\x02\x01", 1, "binary byte 0x7f");
	expect_bad("uid 12a 5\n", 1, "client uid '12a': trailing junk in number");
	expect_bad("uid 12 5x\n", 1, "store uid '5x': trailing junk");
	expect_bad("uid 1 1\nuid 1000-1999x 5\n", 2, "trailing junk");
	expect_bad("uid 1 1#comment\n", 1, "trailing junk");
	expect_bad("uid -5 3\n", 1, "negative number");
	expect_bad("gid 3 -5\n", 1, "negative number");
	expect_bad("uid 5--3 3\n", 1, "negative number");
	expect_bad("uid 4294967296 3\n", 1, "out of range");
	expect_bad("uid 3 99999999999999999999999\n", 1, "out of range");
	expect_bad("uid 4294967295 3\n", 1, "reserved");
	expect_bad("uid 010 3\n", 1, "leading zero");
	expect_bad("uid 20-10 3\n", 1, "range start is above its end");
	expect_bad("uid 10- 3\n", 1, "empty number");
	expect_bad("uid 5\n", 1, "missing store uid");
	expect_bad("# x\ngid\n", 2, "missing client gid");
	expect_bad("uid 1 2 3\n", 1, "extra field '3'");
	expect_bad("user 1 2\n", 1, "unknown kind 'user'");
	expect_bad("UID 1 2\n", 1, "unknown kind");
	expect_bad("uid - 2\n", 1, "only allowed on the store side");

	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "uid 1 2\n#", 9);
	expect_bad_n(longline, sizeof(longline), 2, "line longer than 4096 bytes");

	/* 4097 bytes (a CR aside) is one too many */
	memset(exact, 0, sizeof(exact));
	memcpy(exact, "uid 1 2 #", 9);
	memset(exact + 9, 'c', 4097 - 9);
	strcat(exact, "\n");
	expect_bad(exact, 1, "line longer than 4096 bytes");

	/* exactly 4096 bytes is fine; so are CRLF, tabs and a final line
	 * without newline */
	memset(exact, 0, sizeof(exact));
	memcpy(exact, "uid 1 2 #", 9);
	memset(exact + 9, 'c', 4096 - 9);
	strcat(exact, "\r\n\tgid\t3\t4\r\nuid 5 6");
	m = load_ok(exact, NULL);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1, 0), 2);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_GID, 3, 0), 4);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 5, 0), 6);
	idmap_free(m);
}

static void test_unreadable(void)
{
	struct idmap *m = NULL;
	struct idmap_gridmap *g = NULL;
	char p[4200];

	snprintf(p, sizeof(p), "%s/does-not-exist", tmpdir);
	CU_ASSERT_EQUAL(idmap_load(p, NULL, &m, err, sizeof(err)), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, p));
	CU_ASSERT_EQUAL(idmap_gridmap_load(p, &g, err, sizeof(err)), -ENOENT);
	CU_ASSERT_EQUAL(idmap_load(tmpdir, NULL, &m, err, sizeof(err)), -EISDIR);
	CU_ASSERT_PTR_NULL(m);
	CU_ASSERT_PTR_NULL(g);
	/* a NULL error buffer is allowed */
	CU_ASSERT_EQUAL(idmap_load(write_fix("uid x\n"), NULL, &m, NULL, 0),
			-EINVAL);
	/* an empty file is a valid map that squashes everything */
	m = load_ok("", NULL);
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1000, IDMAP_SQUASHED), 65534);
	idmap_free(m);
}

/* Deterministic pseudo-random numbers (no libc state shared with others). */
static uint32_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

static void test_big_map(void)
{
	enum { LINES = 10000, LOOKUPS = 1000000 };
	size_t cap = (size_t)LINES * 48;
	char *text = malloc(cap);
	uint32_t *perm = malloc(LINES * sizeof(*perm));
	uint64_t seed = 42;
	size_t len = 0;
	struct idmap *m;
	unsigned bad = 0;
	clock_t t0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(perm);
	/* line i maps client i*100 .. i*100+49 to 10000000 + i*50; written in
	 * shuffled order so loading must sort */
	for (uint32_t i = 0; i < LINES; i++)
		perm[i] = i;
	for (uint32_t i = LINES - 1; i > 0; i--) {
		uint32_t j = lcg(&seed) % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (uint32_t i = 0; i < LINES; i++) {
		uint32_t k = perm[i];

		len += (size_t)snprintf(text + len, cap - len, "uid %u-%u %u\n", k * 100,
					k * 100 + 49, 10000000 + k * 50);
	}
	t0 = clock();
	m = load_ok(text, NULL);
	CU_ASSERT_EQUAL(idmap_range_count(m, IDMAP_UID), LINES);
	for (uint32_t i = 0; i < LOOKUPS; i++) {
		uint32_t id = lcg(&seed) % (LINES * 100 + 100), out, want;
		int rc = idmap_uid_to_store(m, id, &out);

		if (id % 100 < 50 && id / 100 < LINES && id != 0)
			want = 10000000 + (id / 100) * 50 + id % 100;
		else
			want = 65534;
		bad += out != want || rc != (want == 65534 ? IDMAP_SQUASHED : 0);
		if (want != 65534) { /* and back */
			rc = idmap_uid_to_client(m, out, &want);
			bad += rc != 0 || want != id;
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	fprintf(stderr, "[10000-line load + 1e6 lookups: %.3f s] ",
		(double)(clock() - t0) / CLOCKS_PER_SEC);
	idmap_free(m);
	free(perm);
	free(text);
}

/* ---------------------------------------------------------------------- */
/* Lifetime: references and slots                                          */

static void test_refcount(void)
{
	struct idmap *m = load_ok("uid 1 2\n", NULL);

	CU_ASSERT_PTR_EQUAL(idmap_ref(m), m);
	CU_ASSERT_PTR_EQUAL(idmap_ref(m), m);
	idmap_unref(m);
	idmap_free(m); /* the loader's reference */
	/* one reference left: still usable (ASan/valgrind would catch a UAF) */
	CU_ASSERT_EQUAL(to_store(m, IDMAP_UID, 1, 0), 2);
	idmap_unref(m);
	CU_ASSERT_PTR_NULL(idmap_ref(NULL));
	idmap_unref(NULL);
	idmap_free(NULL);
}

struct slot_arg {
	struct idmap_slot *sa_slot;
	atomic_int *sa_stop;
	unsigned sa_bad;
	unsigned sa_iter;
};

/* Each generation maps client 1 to 100*g and client 2 to 100*g+1: a torn
 * or freed map shows as a mismatch (or as an ASan report). */
static void *slot_reader(void *p)
{
	struct slot_arg *a = p;

	while (!atomic_load(a->sa_stop) || a->sa_iter < 1000) {
		struct idmap *m = idmap_slot_get(a->sa_slot);
		uint32_t x = 0, y = 0;

		idmap_uid_to_store(m, 1, &x);
		idmap_uid_to_store(m, 2, &y);
		a->sa_bad += (y != x + 1 || x % 100 != 0);
		a->sa_iter++;
		idmap_unref(m);
	}
	return NULL;
}

static void test_slot(void)
{
	struct idmap_slot *s = NULL;
	struct idmap *m = load_ok("uid 1-2 100\n", NULL), *held;
	struct slot_arg args[3];
	pthread_t th[3];
	atomic_int stop = 0;
	uint32_t v;

	CU_ASSERT_EQUAL_FATAL(idmap_slot_new(m, &s), 0);
	held = idmap_slot_get(s);
	CU_ASSERT_PTR_EQUAL(held, m);
	for (int i = 0; i < 3; i++) {
		args[i] = (struct slot_arg){ s, &stop, 0, 0 };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, slot_reader,
						     &args[i]), 0);
	}
	for (uint32_t g = 2; g < 200; g++) {
		char text[64];

		snprintf(text, sizeof(text), "uid 1-2 %u\n", g * 100);
		idmap_slot_set(s, load_ok(text, NULL));
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(args[i].sa_bad, 0);
		CU_ASSERT(args[i].sa_iter >= 1000);
	}
	/* the first map outlived its replacement because we held it */
	CU_ASSERT_EQUAL(idmap_uid_to_store(held, 2, &v), 0);
	CU_ASSERT_EQUAL(v, 101);
	idmap_unref(held);
	m = idmap_slot_get(s);
	CU_ASSERT_EQUAL(idmap_uid_to_store(m, 1, &v), 0);
	CU_ASSERT_EQUAL(v, 19900);
	idmap_unref(m);
	idmap_slot_free(s);
}

/* ---------------------------------------------------------------------- */
/* Grid-mapfile                                                            */

static struct idmap_gridmap *gm_ok(const char *text)
{
	struct idmap_gridmap *g = NULL;
	int rc = idmap_gridmap_load(write_fix(text), &g, err, sizeof(err));

	if (rc)
		fprintf(stderr, "unexpected gridmap error %d: %s\n", rc, err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	return g;
}

static void gm_bad(const char *text, unsigned line, const char *why)
{
	struct idmap_gridmap *g = (struct idmap_gridmap *)(uintptr_t)0x1;
	char prefix[4200];
	int rc;

	write_fix(text);
	err[0] = '\0';
	rc = idmap_gridmap_load(path, &g, err, sizeof(err));
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	CU_ASSERT_EQUAL(rc, -EINVAL);
	CU_ASSERT_PTR_EQUAL(g, (struct idmap_gridmap *)(uintptr_t)0x1);
	CU_ASSERT_EQUAL(strncmp(err, prefix, strlen(prefix)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, why));
	if (rc != -EINVAL || strncmp(err, prefix, strlen(prefix)) ||
	    !strstr(err, why))
		fprintf(stderr, "\n  want line %u '%s', got %d '%s'\n", line,
			why, rc, err);
}

static void test_gridmap_escapes(void)
{
	struct idmap_gridmap *g = gm_ok(
		"# grid-mapfile\n"
		"\n"
		"\"/C=US/O=Grid/CN=Alice \\\"Al\\\" Smith\" alice,bob\n"
		"  \"/CN=back\\\\slash\"\tcarol   # trailing comment\n"
		"\"/CN=\\x41\\x62c/O=\\xc3\\xa9t\\xC3\\xA9\" dave\n"
		"\"/CN=raw \xc3\xa9\" eve\r\n");
	const char *const *acc;
	size_t n;

	CU_ASSERT_EQUAL(idmap_gridmap_count(g), 4);
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/C=US/O=Grid/CN=Alice \"Al\" Smith",
					     &acc, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(acc[0], "alice");
	CU_ASSERT_STRING_EQUAL(acc[1], "bob");
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/CN=back\\slash", &acc, &n), 0);
	CU_ASSERT(n == 1 && !strcmp(acc[0], "carol"));
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/CN=Abc/O=\xc3\xa9t\xc3\xa9",
					     &acc, &n), 0);
	CU_ASSERT(n == 1 && !strcmp(acc[0], "dave"));
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/CN=raw \xc3\xa9", &acc, &n), 0);
	CU_ASSERT(n == 1 && !strcmp(acc[0], "eve"));
	/* exact match only */
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/cn=abc/O=\xc3\xa9t\xc3\xa9",
					     &acc, &n), -ENOENT);
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/CN=back", &acc, &n), -ENOENT);
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "", &acc, &n), -ENOENT);

	/* references */
	CU_ASSERT_PTR_EQUAL(idmap_gridmap_ref(g), g);
	idmap_gridmap_free(g);
	CU_ASSERT_EQUAL(idmap_gridmap_lookup(g, "/CN=back\\slash", &acc, &n), 0);
	idmap_gridmap_unref(g);
	idmap_gridmap_unref(NULL);
}

static void test_gridmap_malformed(void)
{
	gm_bad("/CN=x alice\n", 1, "DN must be in double quotes");
	gm_bad("\"/CN=x\" a\n\"/CN=y alice\n", 2, "unterminated DN");
	gm_bad("\"/CN=y\\", 1, "unterminated DN");
	gm_bad("\"/CN=\\q\" alice\n", 1, "unknown escape");
	gm_bad("\"/CN=\\x4\" alice\n", 1, "two hex digits");
	gm_bad("\"/CN=\\x\" alice\n", 1, "two hex digits");
	gm_bad("\"/CN=\\x00\" alice\n", 1, "\\x00 is not allowed");
	gm_bad("\"/CN=x\"\n", 1, "missing account list");
	gm_bad("\"/CN=x\"   # c\n", 1, "missing account list");
	gm_bad("\"/CN=x\"alice\n", 1, "missing blank after the closing quote");
	gm_bad("\"/CN=x\" alice, bob\n", 1, "extra field");
	gm_bad("\"/CN=x\" alice bob\n", 1, "extra field");
	gm_bad("\"/CN=x\" alice,,bob\n", 1, "empty account name in 'alice,,bob'");
	gm_bad("\"/CN=x\" alice,\n", 1, "empty account name");
	gm_bad("\"/CN=x\" ,alice\n", 1, "empty account name");
	gm_bad("\"/CN=x\" al/ce\n", 1, "invalid account name");
	gm_bad("\"/CN=x\" bob,alice,bob\n", 1, "account listed twice");
	gm_bad("\"\" alice\n", 1, "empty DN");
	gm_bad("\"CN=x,O=y\" alice\n", 1, "not in slash form");
	gm_bad("\"/CN=x\" a\n#\n\"/CN=y\" b\n\"/CN=x\" c\n", 4,
	       "duplicate DN (already on line 1)");
	gm_bad("\"/CN=x\" a\n\"/CN=\x02\" b\n", 2, "binary byte 0x02");
}

static void test_gridmap_big(void)
{
	enum { N = 2000 };
	char *text = malloc((size_t)N * 64);
	size_t len = 0;
	struct idmap_gridmap *g;
	const char *const *acc;
	unsigned bad = 0;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	for (unsigned i = 0; i < N; i++)
		len += (size_t)sprintf(text + len, "\"/O=Grid/CN=user%u\" u%u,g%u\n",
				       (i * 7919) % N, (i * 7919) % N, i);
	g = gm_ok(text);
	CU_ASSERT_EQUAL(idmap_gridmap_count(g), N);
	for (unsigned i = 0; i < N; i++) {
		char dn[64], want[16];

		snprintf(dn, sizeof(dn), "/O=Grid/CN=user%u", i);
		snprintf(want, sizeof(want), "u%u", i);
		bad += idmap_gridmap_lookup(g, dn, &acc, &n) != 0 || n != 2 ||
		       strcmp(acc[0], want) != 0;
	}
	CU_ASSERT_EQUAL(bad, 0);
	idmap_gridmap_unref(g);
	free(text);
}

static void test_gridmap_ids(void)
{
	struct idmap_gridmap *g = gm_ok(
		"\"/CN=admin\" root,no_such_user_gridvfs,daemon\n"
		"\"/CN=ghost\" no_such_user_gridvfs,root\n");
	struct passwd *pw = getpwnam("daemon");
	struct idmap_peer_ids p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(pw);
	CU_ASSERT_EQUAL_FATAL(idmap_gridmap_ids(g, "/CN=admin", &p), 0);
	CU_ASSERT_EQUAL(p.pi_uid, 0);
	CU_ASSERT_EQUAL(p.pi_gid, 0);
	CU_ASSERT_EQUAL(p.pi_nuids, 2);
	CU_ASSERT(idmap_peer_ids_has_uid(&p, 0));
	CU_ASSERT(idmap_peer_ids_has_uid(&p, pw->pw_uid));
	CU_ASSERT(!idmap_peer_ids_has_uid(&p, 65534));
	CU_ASSERT(idmap_peer_ids_has_gid(&p, 0));
	CU_ASSERT(idmap_peer_ids_has_gid(&p, pw->pw_gid));
	CU_ASSERT(!idmap_peer_ids_has_gid(&p, 65534));
	for (size_t i = 1; i < p.pi_ngids; i++)
		CU_ASSERT(p.pi_gids[i - 1] < p.pi_gids[i]); /* sorted, unique */
	idmap_peer_ids_clear(&p);
	CU_ASSERT_PTR_NULL(p.pi_uids);
	CU_ASSERT(!idmap_peer_ids_has_uid(&p, 0));

	CU_ASSERT_EQUAL(idmap_gridmap_ids(g, "/CN=ghost", &p), -ESRCH);
	CU_ASSERT_EQUAL(idmap_gridmap_ids(g, "/CN=nobody", &p), -ENOENT);
	idmap_gridmap_unref(g);
}

/* ---------------------------------------------------------------------- */
/* gridvfs idmap check                                                     */

/* Run the check CLI; its stdout and stderr land in out/errs (malloc'd). */
static int run_check(char **out, char **errs, int argc, ...)
{
	char *argv[16];
	size_t ol, el;
	FILE *fo = open_memstream(out, &ol), *fe = open_memstream(errs, &el);
	va_list ap;
	int rc;

	va_start(ap, argc);
	for (int i = 0; i < argc && i < 15; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	rc = idmap_check(argc, argv, fo, fe);
	fclose(fo);
	fclose(fe);
	return rc;
}

static void test_check_cli(void)
{
	char *out, *errs, file[4200], bad[4200], want[4300];

	snprintf(file, sizeof(file), "%s", write_fix(
		"uid 1000-1999 5000\nuid 2000 -\ngid 100 600\n"));
	CU_ASSERT_EQUAL(run_check(&out, &errs, 2, "check", file), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "valid"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "uid: 2 lines, 1 ranges, 1 squashing"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "gid: 1 lines"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "uid:0 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> store 65534 (squashed: squash=root)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> store 5000 (line 1)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> store 5999 (line 1)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "<- client 1999 (line 1)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "(squashed: line 2)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "uid:1 ")); /* lowest unmapped */
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> store 600 (line 3)"));
	CU_ASSERT_EQUAL(errs[0], '\0');
	free(out);
	free(errs);

	CU_ASSERT_EQUAL(run_check(&out, &errs, 8, "check", "--squash=none",
				  file, "--anonuid", "77", "--unmapped", "deny",
				  "uid:1500"), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "squash=none unmapped=deny anonuid=77"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> store 5500 (line 1)"));
	CU_ASSERT_PTR_NULL(strstr(out, "uid:0 ")); /* only the ids asked for */
	free(out);
	free(errs);

	CU_ASSERT_EQUAL(run_check(&out, &errs, 5, "check", file, "uid:7",
				  "gid:100", "--anonuid=77"), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "uid:7 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "-> store 77 (squashed: unmapped)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "gid:100 "));
	free(out);
	free(errs);

	/* the unmapped sample is the lowest id above 0 past covering lines */
	snprintf(bad, sizeof(bad), "%s", write_fix("uid 10-19 100\nuid 0-9 0\n"));
	CU_ASSERT_EQUAL(run_check(&out, &errs, 2, "check", bad), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "uid:20 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "(squashed: unmapped)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "gid:1 ")); /* gid has no lines */
	CU_ASSERT_PTR_NULL(strstr(out, "uid:5 "));
	free(out);
	free(errs);

	snprintf(bad, sizeof(bad), "%s", write_fix("uid 1 1\n\nuid 5x 6\n"));
	CU_ASSERT_EQUAL(run_check(&out, &errs, 2, "check", bad), 1);
	snprintf(want, sizeof(want), "%s:3: client uid '5x'", bad);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs, want));
	free(out);
	free(errs);

	CU_ASSERT_EQUAL(run_check(&out, &errs, 3, "check", "--help", file), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "usage: gridvfs idmap check FILE"));
	free(out);
	free(errs);

	CU_ASSERT_EQUAL(run_check(&out, &errs, 1, "check"), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs, "missing FILE"));
	free(out);
	free(errs);
	CU_ASSERT_EQUAL(run_check(&out, &errs, 4, "check", file, "--squash", "some"), 2);
	free(out);
	free(errs);
	CU_ASSERT_EQUAL(run_check(&out, &errs, 3, "check", file, "--anonuid=0"), 2);
	free(out);
	free(errs);
	CU_ASSERT_EQUAL(run_check(&out, &errs, 3, "check", file, "--anongid"), 2);
	free(out);
	free(errs);
	CU_ASSERT_EQUAL(run_check(&out, &errs, 3, "check", file, "user:5"), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(errs, "bad id 'user:5'"));
	free(out);
	free(errs);
	CU_ASSERT_EQUAL(run_check(&out, &errs, 3, "check", file, "uid:-1"), 2);
	free(out);
	free(errs);
}

/* ---------------------------------------------------------------------- */

static int rm_entry(const char *p, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

static int suite_init(void)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int suite_clean(void)
{
	return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	static const struct {
		const char *name;
		void (*fn)(void);
	} tests[] = {
		{ "ranges both ways", test_range_both_ways },
		{ "range inspection", test_range_inspect },
		{ "squash lines", test_squash_line },
		{ "squash modes", test_squash_modes },
		{ "deny policy", test_deny_policy },
		{ "empty map", test_empty_map },
		{ "invalid options", test_opts_invalid },
		{ "credential", test_cred },
		{ "credential limits and policies", test_cred_limits },
		{ "names", test_names },
		{ "overlaps", test_overlaps },
		{ "huge ranges", test_huge_ranges },
		{ "malformed lines", test_malformed },
		{ "unreadable and empty files", test_unreadable },
		{ "10000-line map", test_big_map },
		{ "refcount", test_refcount },
		{ "slot reload under readers", test_slot },
		{ "gridmap escapes and lookup", test_gridmap_escapes },
		{ "gridmap malformed lines", test_gridmap_malformed },
		{ "gridmap 2000 DNs", test_gridmap_big },
		{ "gridmap peer ids", test_gridmap_ids },
		{ "check CLI", test_check_cli },
	};
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("idmap", suite_init, suite_clean);
	if (!s)
		goto fail;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(s, tests[i].name, tests[i].fn))
			goto fail;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return (int)(fails > 255 ? 255 : fails);
fail:
	CU_cleanup_registry();
	return 1;
}
