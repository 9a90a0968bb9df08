/*
 * tests/unit/test_config.c — gridvfsd's configuration file parser
 * (proxy/config.c): the argv it builds, every error class with its
 * FILE:LINE, flags, and the command line winning over the file.
 */
#include "config.h"
#include "proxy/px.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A table shaped like gridvfsd's (proxy/opts.c longopts). */
static const struct option known[] = {
	{"role", required_argument, NULL, 256},
	{"listen", required_argument, NULL, 257},
	{"upstream", required_argument, NULL, 258},
	{"register", no_argument, NULL, 259},
	{"foreground", no_argument, NULL, 'F'},
	{"syslog", no_argument, NULL, 260},
	{"tls-cert", required_argument, NULL, 261},
	{"cache-size", required_argument, NULL, 262},
	{"config", required_argument, NULL, 'c'},
	{"check-config", no_argument, NULL, 263},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static char dir[] = "/tmp/test_config.XXXXXX";
static char path[256];
static char err[512];

/* Write text (len bytes; -1: strlen) to the test file. */
static void put(const char *text, long len)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_FATAL(f != NULL);
	fwrite(text, 1, len < 0 ? strlen(text) : (size_t)len, f);
	fclose(f);
}

/* Parse text; returns rc, leaves items in *av (joined with '|' in out). */
static int parse(const char *text, long len, char *out, size_t outlen)
{
	int ac = -1, rc;
	char **av = NULL;

	put(text, len);
	err[0] = '\0';
	rc = px_config_argv(path, true, known, &ac, &av, err, sizeof(err));
	if (out) {
		out[0] = '\0';
		for (int i = 0; !rc && i < ac; i++) {
			if (i)
				strncat(out, "|", outlen - strlen(out) - 1);
			strncat(out, av[i], outlen - strlen(out) - 1);
		}
	}
	if (!rc) {
		CU_ASSERT_PTR_NOT_NULL(av);
		CU_ASSERT_PTR_NULL(av[ac]);
		px_config_argv_free(ac, av);
	}
	return rc;
}

/* The error must be exactly "PATH:LINE: rest". */
static void expect_err(const char *text, long len, int want_rc,
		       unsigned line, const char *rest)
{
	char want[512];

	CU_ASSERT_EQUAL(parse(text, len, NULL, 0), want_rc);
	snprintf(want, sizeof(want), "%s:%u: %s", path, line, rest);
	if (strncmp(err, want, strlen(want)))
		fprintf(stderr, "\n  got  '%s'\n  want '%s...'\n", err, want);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
}

static void test_items(void)
{
	char out[1024];

	CU_ASSERT_EQUAL(parse("# gridvfsd\n"
			      "\n"
			      "role = client\n"
			      "  upstream=store.example.org:2050   \n"
			      "\tlisten\t=\t127.0.0.1:2049 # our side\n"
			      "tls-cert = /etc/gridvfs/a#b.crt\n"
			      "cache-size = \"20G\"  # quoted\n",
			      -1, out, sizeof(out)),
			0);
	CU_ASSERT_STRING_EQUAL(out, "--role|client|--upstream|"
				    "store.example.org:2050|--listen|"
				    "127.0.0.1:2049|--tls-cert|"
				    "/etc/gridvfs/a#b.crt|--cache-size|20G");
	/* Quotes keep spaces, '#' and escaped quotes; CRLF and a BOM pass. */
	CU_ASSERT_EQUAL(parse("\xef\xbb\xbftls-cert = \" /my certs/#1 \\\"x\\\\\"\r\n",
			      -1, out, sizeof(out)),
			0);
	CU_ASSERT_STRING_EQUAL(out, "--tls-cert| /my certs/#1 \"x\\");
	/* An empty file and a comment-only one give no items. */
	CU_ASSERT_EQUAL(parse("", 0, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	CU_ASSERT_EQUAL(parse("# nothing\n   \n", -1, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
	/* No newline at the end of the last line. */
	CU_ASSERT_EQUAL(parse("role = server", -1, out, sizeof(out)), 0);
	CU_ASSERT_STRING_EQUAL(out, "--role|server");
}

static void test_flags(void)
{
	char out[256];

	CU_ASSERT_EQUAL(parse("foreground = yes\nregister = TRUE\n"
			      "syslog = 1\n",
			      -1, out, sizeof(out)),
			0);
	CU_ASSERT_STRING_EQUAL(out, "--foreground|--register|--syslog");
	CU_ASSERT_EQUAL(parse("foreground = no\nregister = false\n"
			      "syslog = off\n",
			      -1, out, sizeof(out)),
			0);
	CU_ASSERT_STRING_EQUAL(out, "");
	expect_err("role = client\nforeground = maybe\n", -1, -EINVAL, 2,
		   "foreground: a flag takes yes or no");
	expect_err("\n\n\nregister\n", -1, -EINVAL, 4,
		   "register: expected KEY = VALUE (flags too: KEY = yes)");
}

static void test_errors(void)
{
	char big[PX_CONFIG_MAX_LINE + 64];

	expect_err("role = client\n# x\nupstrem = h:1\n", -1, -EINVAL, 3,
		   "upstrem: unknown key");
	expect_err("upstream =   \n", -1, -EINVAL, 1,
		   "upstream: missing value");
	expect_err("upstream = \"\"\n", -1, -EINVAL, 1,
		   "upstream: missing value");
	expect_err("role = client\nrole = server\n", -1, -EINVAL, 2,
		   "role: set twice (first at line 1)");
	expect_err("config = /etc/other.conf\n", -1, -EINVAL, 1,
		   "config: not allowed in a configuration file");
	expect_err("help = yes\n", -1, -EINVAL, 1, "help: not allowed");
	expect_err("check-config = yes\n", -1, -EINVAL, 1,
		   "check-config: not allowed");
	expect_err("\nthis is garbage\n", -1, -EINVAL, 2,
		   "this: expected KEY = VALUE (keys are lower-case");
	expect_err("Upstream = h\n", -1, -EINVAL, 1, "expected KEY = VALUE");
	expect_err("= h\n", -1, -EINVAL, 1, "expected KEY = VALUE");
	expect_err("role = client\nupstream = h\0:2049\n", 29, -EINVAL, 2,
		   "NUL byte");
	expect_err("role = \x01\x02\x7f\n", -1, -EINVAL, 1,
		   "control character");
	expect_err("tls-cert = \"/a/b\n", -1, -EINVAL, 1,
		   "tls-cert: unterminated quoted value");
	expect_err("tls-cert = \"/a/b\" c\n", -1, -EINVAL, 1,
		   "tls-cert: text after the closing quote");
	/* Sections are for gridvfsd's own file (px_config_load). */
	expect_err("role = client\n[export images]\nupstream = h\n", -1,
		   -EINVAL, 2, "[export NAME] sections belong in gridvfsd's "
			       "own configuration file");
	expect_err("[global]\n", -1, -EINVAL, 1, "unknown section");

	/* Overlong: PX_CONFIG_MAX_LINE - 1 bytes pass, one more fails. */
	memset(big, 0, sizeof(big));
	strcpy(big, "role = client\ntls-cert = /");
	memset(big + strlen(big), 'a', PX_CONFIG_MAX_LINE - 1 - 12);
	strcat(big, "\n");
	CU_ASSERT_EQUAL(parse(big, -1, NULL, 0), 0);
	big[strlen(big) - 1] = 'b';
	strcat(big, "\n");
	expect_err(big, -1, -EINVAL, 2, "line longer than 4095 bytes");
}

static void test_files(void)
{
	int ac = 5, rc;
	char **av = NULL, other[300];
	FILE *f;

	snprintf(other, sizeof(other), "%s/absent.conf", dir);
	rc = px_config_argv(other, false, known, &ac, &av, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(ac, 0);
	px_config_argv_free(ac, av);
	rc = px_config_argv(other, true, known, &ac, &av, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "absent.conf: No such file"));
	rc = px_config_argv(dir, true, known, &ac, &av, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, -EISDIR);
	/* Over PX_CONFIG_MAX_SIZE of comments: refused, not read forever. */
	f = fopen(path, "w");
	CU_ASSERT_FATAL(f != NULL);
	for (unsigned i = 0; i < PX_CONFIG_MAX_SIZE / 64 + 1; i++)
		fprintf(f, "# %061u\n", i);
	fclose(f);
	rc = px_config_argv(path, true, known, &ac, &av, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, -EFBIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "file larger than"));
	/* /dev/null: the documented way to read no file at all. */
	rc = px_config_argv("/dev/null", true, known, &ac, &av, err,
			    sizeof(err));
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(ac, 0);
	px_config_argv_free(ac, av);
}

/* What getopt ends with for option name, as the daemon would see it. */
static const char *effective(int argc, char **argv, const char *name)
{
	const char *v = NULL;
	int c, idx;
	char **copy = calloc((size_t)argc + 1, sizeof(*copy));

	memcpy(copy, argv, sizeof(*copy) * (size_t)argc);
	optind = 0;
	opterr = 0;
	while (idx = -1, (c = getopt_long(argc, copy, "Fc:hV", known, &idx)) != -1) {
		for (int i = 0; idx < 0 && known[i].name; i++)
			if (known[i].val == c)
				idx = i; /* a short option */
		if (idx >= 0 && !strcmp(known[idx].name, name))
			v = known[idx].has_arg ? optarg : "yes";
	}
	free(copy);
	return v;
}

static void test_precedence(void)
{
	struct px_config pc;
	char *cl1[] = {"gridvfsd", "-c", path, "--listen", "127.0.0.1:9",
		       NULL};
	char *cl2[] = {"gridvfsd", "--upstream=cmd:1", "--config=", NULL};
	char *cl3[] = {"gridvfsd", "-Fc", path, "--role", "server", NULL};
	char *cl4[] = {"gridvfsd", "--upstream", "-c", NULL};

	put("role = client\nlisten = 0.0.0.0:2049\nupstream = file:2050\n"
	    "foreground = yes\n",
	    -1);
	CU_ASSERT_EQUAL_FATAL(px_config_load(&pc, 5, cl1, known, err,
					     sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(pc.pc_argc, 1 + 7 + 4);
	CU_ASSERT_EQUAL(pc.pc_file_items, 7);
	CU_ASSERT_STRING_EQUAL(pc.pc_path, path);
	CU_ASSERT_STRING_EQUAL(pc.pc_argv[0], "gridvfsd");
	CU_ASSERT_PTR_NULL(pc.pc_argv[pc.pc_argc]);
	/* The command line wins; the file fills in the rest. */
	CU_ASSERT_STRING_EQUAL(effective(pc.pc_argc, pc.pc_argv, "listen"),
			       "127.0.0.1:9");
	CU_ASSERT_STRING_EQUAL(effective(pc.pc_argc, pc.pc_argv, "upstream"),
			       "file:2050");
	CU_ASSERT_STRING_EQUAL(effective(pc.pc_argc, pc.pc_argv, "foreground"),
			       "yes");
	/* Origins: file items carry FILE:LINE, the command line's none. */
	char want[300];

	snprintf(want, sizeof(want), "%s:3", path);
	CU_ASSERT_STRING_EQUAL(px_config_where(&pc, 5), want); /* --upstream */
	CU_ASSERT_STRING_EQUAL(px_config_where(&pc, 6), want); /* its value */
	CU_ASSERT_PTR_NULL(px_config_where(&pc, 0));
	CU_ASSERT_PTR_NULL(px_config_where(&pc, 9));
	CU_ASSERT_PTR_NULL(px_config_where(&pc, 99));
	px_config_free(&pc);

	/* "--config=" names the empty path: must exist, so it fails. */
	CU_ASSERT_EQUAL(px_config_load(&pc, 3, cl2, known, err, sizeof(err)),
			-ENOENT);
	CU_ASSERT_EQUAL(pc.pc_argc, 0);
	/* -c inside a cluster of short options. */
	CU_ASSERT_EQUAL_FATAL(px_config_load(&pc, 5, cl3, known, err,
					     sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(pc.pc_file_items, 7);
	CU_ASSERT_STRING_EQUAL(effective(pc.pc_argc, pc.pc_argv, "role"),
			       "server");
	px_config_free(&pc);
	/* "-c" as the value of --upstream is not a -c option: the default
	 * path is used (absent here, so nothing is read). */
	CU_ASSERT_EQUAL_FATAL(px_config_load(&pc, 3, cl4, known, err,
					     sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(pc.pc_file_items, 0);
	CU_ASSERT_STRING_EQUAL(pc.pc_path, PX_CONFIG_PATH);
	px_config_free(&pc);

	/* A file error names FILE:LINE through px_config_load too. */
	put("role = client\nbogus = 1\n", -1);
	CU_ASSERT_EQUAL(px_config_load(&pc, 5, cl1, known, err, sizeof(err)),
			-EINVAL);
	snprintf(want, sizeof(want), "%s:2: bogus: unknown key", path);
	CU_ASSERT_EQUAL(strncmp(err, want, strlen(want)), 0);
}

static void test_dump(void)
{
	struct px_config pc, pc2;
	char *cl[] = {"gridvfsd", "-c", path, "--upstream", "cmd:1", "-F",
		      "--tls-cert", "/odd \"dir\" #1/x.crt ", NULL};
	char *cl2[] = {"gridvfsd", "-c", path, NULL};
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *m;

	put("role = server\nupstream = file:2\nregister = yes\n", -1);
	CU_ASSERT_EQUAL_FATAL(px_config_load(&pc, 8, cl, known, err,
					     sizeof(err)),
			      0);
	m = open_memstream(&text, &len);
	CU_ASSERT_EQUAL(px_config_dump(m, &pc, known), 0);
	fclose(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nrole = server\t# "));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nupstream = cmd:1\t# command line\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\nforeground = yes\t# command line\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, ":3\n")); /* register's line */
	CU_ASSERT_PTR_NULL(strstr(text, "config ="));
	/* The dump is a configuration file that means the same. */
	put(text, -1);
	CU_ASSERT_EQUAL_FATAL(px_config_load(&pc2, 3, cl2, known, err,
					     sizeof(err)),
			      0);
	const char *names[] = {"role", "upstream", "register", "foreground",
			       "tls-cert", "listen"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *a = effective(pc.pc_argc, pc.pc_argv, names[i]);
		const char *b = effective(pc2.pc_argc, pc2.pc_argv, names[i]);

		if (!((!a && !b) || (a && b && !strcmp(a, b))))
			fprintf(stderr, "%s: %s vs %s\n", names[i], a, b);
		CU_ASSERT((!a && !b) || (a && b && !strcmp(a, b)));
	}
	CU_ASSERT_STRING_EQUAL(effective(pc2.pc_argc, pc2.pc_argv, "tls-cert"),
			       "/odd \"dir\" #1/x.crt ");
	m = open_memstream(&text2, &len2);
	CU_ASSERT_EQUAL(px_config_dump(m, &pc2, known), 0);
	fclose(m);
	CU_ASSERT_PTR_NOT_NULL(strstr(text2, "\nupstream = cmd:1\t# "));
	px_config_free(&pc);
	px_config_free(&pc2);
	free(text);
	free(text2);
}

/* [export NAME] sections: items per section, path keys, what is refused,
 * and the argv an export runs with (its section after everything else). */
static void test_sections(void)
{
	struct px_config pc, epc;
	char *cl[] = {"gridvfsd", "-c", path, "--cache-size", "1G", NULL};
	char want[300];

	put("role = client\nupstream = global:1\n"
	    "[export alpha]  # first\npath = /stores/alpha/\n"
	    "upstream-path = /srv/a\nupstream = a:2049\ncache-size = 5G\n"
	    "\n[export beta]\npath = /\nregister = yes\n",
	    -1);
	/* register is daemon-wide: refused inside a section */
	CU_ASSERT_EQUAL(px_config_load(&pc, 5, cl, known, err, sizeof(err)),
			-EINVAL);
	snprintf(want, sizeof(want), "%s:11: register: daemon-wide", path);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));

	put("role = client\nupstream = global:1\n"
	    "[export alpha]  # first\npath = /stores/alpha/\n"
	    "upstream-path = /srv/a\nupstream = a:2049\ncache-size = 5G\n"
	    "\n[export beta]\npath = /\n",
	    -1);
	CU_ASSERT_EQUAL_FATAL(px_config_load(&pc, 5, cl, known, err,
					     sizeof(err)),
			      0);
	CU_ASSERT_EQUAL(pc.pc_file_items, 4); /* the part before [export] */
	CU_ASSERT_EQUAL_FATAL(pc.pc_nexports, 2);
	CU_ASSERT_STRING_EQUAL(pc.pc_exports[0].ce_name, "alpha");
	CU_ASSERT_STRING_EQUAL(pc.pc_exports[0].ce_path, "/stores/alpha");
	CU_ASSERT_STRING_EQUAL(pc.pc_exports[0].ce_upstream_path, "/srv/a");
	CU_ASSERT_EQUAL(pc.pc_exports[0].ce_argc, 4);
	snprintf(want, sizeof(want), "%s:3", path);
	CU_ASSERT_STRING_EQUAL(pc.pc_exports[0].ce_where, want);
	CU_ASSERT_STRING_EQUAL(pc.pc_exports[1].ce_path, "/");
	CU_ASSERT_PTR_NULL(pc.pc_exports[1].ce_upstream_path);
	CU_ASSERT_EQUAL(pc.pc_exports[1].ce_argc, 0);
	/* Export alpha: its section beats the file and the command line. */
	CU_ASSERT_EQUAL_FATAL(px_config_for_export(&pc, 0, &epc), 0);
	CU_ASSERT_STRING_EQUAL(effective(epc.pc_argc, epc.pc_argv, "upstream"),
			       "a:2049");
	CU_ASSERT_STRING_EQUAL(
		effective(epc.pc_argc, epc.pc_argv, "cache-size"), "5G");
	snprintf(want, sizeof(want), "%s:7", path);
	CU_ASSERT_STRING_EQUAL(px_config_where(&epc, epc.pc_argc - 1), want);
	px_config_free(&epc);
	/* Export beta inherits. */
	CU_ASSERT_EQUAL_FATAL(px_config_for_export(&pc, 1, &epc), 0);
	CU_ASSERT_STRING_EQUAL(effective(epc.pc_argc, epc.pc_argv, "upstream"),
			       "global:1");
	CU_ASSERT_STRING_EQUAL(
		effective(epc.pc_argc, epc.pc_argv, "cache-size"), "1G");
	px_config_free(&epc);
	px_config_free(&pc);

	/* Each refusal names its line. */
	struct {
		const char *text;
		int line;
		const char *why;
	} bad[] = {
		{"[export a]\nupstream = h\n", 1, "no 'path = /DIR'"},
		{"[export a]\npath = /x\npath = /y\n", 3, "set twice"},
		{"[export a]\npath = /x\nupstream = h\nupstream = i\n", 4,
		 "set twice"},
		{"[export a]\npath = rel\n", 2, "absolute path"},
		{"[export]\n", 1, "NAME is 1-63"},
		{"[export a/b]\n", 1, "expected ']'"},
		{"[export a] x\n", 1, "text after the section header"},
		{"[export a]\npath = /x\n[export a]\n", 3, "second [export]"},
		{"path = /x\n", 1, "unknown key"},
		{"[export a]\npath = /x\nconfig = /y\n", 3,
		 "not allowed in a configuration file"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		put(bad[i].text, -1);
		err[0] = '\0';
		CU_ASSERT_EQUAL(px_config_load(&pc, 3, cl, known, err,
					       sizeof(err)),
				-EINVAL);
		snprintf(want, sizeof(want), "%s:%d", path, bad[i].line);
		if (!strstr(err, want) || !strstr(err, bad[i].why))
			fprintf(stderr, "case %zu: got '%s'\n", i, err);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
		CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].why));
		CU_ASSERT_EQUAL(pc.pc_nexports, 0);
	}
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/gridvfsd.conf", dir);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("config", NULL, NULL);
	CU_add_test(s, "key = value items", test_items);
	CU_add_test(s, "flags", test_flags);
	CU_add_test(s, "errors name FILE:LINE", test_errors);
	CU_add_test(s, "files: absent, directory, size, /dev/null",
		    test_files);
	CU_add_test(s, "command line wins, -c forms, origins",
		    test_precedence);
	CU_add_test(s, "--check-config dump round-trips", test_dump);
	CU_add_test(s, "[export NAME] sections", test_sections);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	unlink(path);
	rmdir(dir);
	return fails ? 1 : 0;
}
