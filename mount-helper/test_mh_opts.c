/* mount-helper/test_mh_opts.c: CUnit tests of mount.gridvfs's command
 * line: SOURCE forms, the -o split (helper options, mount flags, gridvfsd
 * pass-through), and the exact gridvfsd and kernel mount command lines. */
#include "config.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mount-helper/mh.h"

static char *joined(const struct mh_argv *a)
{
	static char buf[4096];
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < a->n && n < sizeof(buf); i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? " " : "", a->v[i]);
	return buf;
}

static int parse(struct mh_opts *o, const char *const *args, char *err)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"mount.gridvfs";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return mh_opts_parse(o, argc, argv, err, 256);
}

static void test_source(void)
{
	char *h, *p;
	unsigned port;

	CU_ASSERT_EQUAL(mh_source_parse("store.example.org:/images", &h, &port, &p), 0);
	CU_ASSERT_STRING_EQUAL(h, "store.example.org");
	CU_ASSERT_EQUAL(port, 2049);
	CU_ASSERT_STRING_EQUAL(p, "/images");
	free(h);
	free(p);
	CU_ASSERT_EQUAL(mh_source_parse("10.0.0.1:20490:/a/b", &h, &port, &p), 0);
	CU_ASSERT_STRING_EQUAL(h, "10.0.0.1");
	CU_ASSERT_EQUAL(port, 20490);
	CU_ASSERT_STRING_EQUAL(p, "/a/b");
	free(h);
	free(p);
	CU_ASSERT_EQUAL(mh_source_parse("[::1]:3049:/x", &h, &port, &p), 0);
	CU_ASSERT_STRING_EQUAL(h, "::1");
	CU_ASSERT_EQUAL(port, 3049);
	free(h);
	free(p);
	CU_ASSERT_EQUAL(mh_source_parse("host:/", &h, &port, &p), 0);
	CU_ASSERT_STRING_EQUAL(p, "/");
	free(h);
	free(p);
	CU_ASSERT_EQUAL(mh_source_parse("host", &h, &port, &p), -EINVAL);
	CU_ASSERT_EQUAL(mh_source_parse("host:rel", &h, &port, &p), -EINVAL);
	CU_ASSERT_EQUAL(mh_source_parse(":/x", &h, &port, &p), -EINVAL);
	CU_ASSERT_EQUAL(mh_source_parse("h:99999:/x", &h, &port, &p), -EINVAL);
	CU_ASSERT_EQUAL(mh_source_parse("h:0:/x", &h, &port, &p), -EINVAL);
	CU_ASSERT_EQUAL(mh_source_parse("[::1:/x", &h, &port, &p), -EINVAL);
}

static void test_split(void)
{
	static const char *const a[] = { "st:7000:/img", "/mnt/x", "-o",
		"ro,nosuid,_netdev,tls-ca=/c a,cache-size=20G,mountport=7001,"
		"conns=2,consistency=immutable,register,noauto", "-v", NULL };
	struct mh_opts o;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse(&o, a, err), 0);
	CU_ASSERT_STRING_EQUAL(o.host, "st");
	CU_ASSERT_EQUAL(o.port, 7000);
	CU_ASSERT_EQUAL(o.mountport, 7001);
	CU_ASSERT_EQUAL(o.conns, 2);
	CU_ASSERT_EQUAL(o.verbose, 1);
	CU_ASSERT_EQUAL(o.consistency, MH_CONS_IMMUTABLE);
	CU_ASSERT_STRING_EQUAL(joined(&o.mntopts), "ro nosuid");
	CU_ASSERT_STRING_EQUAL(joined(&o.pass),
			       "--tls-ca /c a --cache-size 20G --register");
	mh_opts_free(&o);
}

static void test_errors(void)
{
	static const char *const bad[][6] = {
		{ "h:/x", NULL },
		{ "h:/x", "/m", "/extra", NULL },
		{ "nocolon", "/m", NULL },
		{ "h:/x", "/m", "-o", "mountport=0", NULL },
		{ "h:/x", "/m", "-o", "consistency=loose", NULL },
		{ "h:/x", "/m", "-o", "proxy=127.0.0.1", NULL },
		{ "h:/x", "/m", "-o", "conns=0", NULL },
		{ "h:/x", "/m", "-o", "rsize=100", NULL },
		{ "h:/x", "/m", "-x", NULL },
		{ "h:/x", "/m", "--frob", NULL },
		{ "h:/x", "/m", "-o", NULL },
		{ "h:/x", "/m", "-o", "proxy=127.0.0.1:5,localport=6", NULL },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct mh_opts o;
		err[0] = '\0';
		CU_ASSERT_EQUAL(parse(&o, bad[i], err), MH_EXIT_USAGE);
		CU_ASSERT(err[0] != '\0');
		mh_opts_free(&o);
	}
}

static void test_sloppy(void)
{
	static const char *const a[] = { "h:/x", "/m", "-s", "-o", "frob,k=v", NULL };
	struct mh_opts o;
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse(&o, a, err), 0);
	/* -s drops unknown flags but key=value still goes to gridvfsd. */
	CU_ASSERT_STRING_EQUAL(joined(&o.pass), "--k v");
	mh_opts_free(&o);
}

static void test_proxy_argv(void)
{
	static const char *const a[] = { "store:2050:/img", "/m", "-o",
		"tls-ca=ca.pem,debug,consistency=strict", NULL };
	struct mh_opts o;
	struct mh_argv av = { 0 };
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse(&o, a, err), 0);
	CU_ASSERT_EQUAL(o.foreground, 1);
	CU_ASSERT_EQUAL(mh_proxy_argv(&o, "/sbin/gridvfsd", 41000, 0, &av), 0);
	CU_ASSERT_STRING_EQUAL(joined(&av),
		"/sbin/gridvfsd -c /dev/null --role client --listen 127.0.0.1:41000 "
		"--upstream store:2050 --mount-upstream store:2050 --foreground "
		"--log-level debug --tls-ca ca.pem");
	mh_argv_free(&av);
	CU_ASSERT_EQUAL(mh_proxy_argv(&o, "g", 1, 1, &av), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(joined(&av), "--consistency strict"));
	mh_argv_free(&av);
	mh_opts_free(&o);
}

/* hard by default; soft with nfs(5)'s timeo/retrans, also for mount(8). */
static void test_soft(void)
{
	static const char *const a[] = { "h:/x", "/m", "-o", "soft,timeo=10,retrans=1", NULL };
	static const char *const b[] = { "h:/x", "/m", "-o", "soft", NULL };
	static const char *const c[] = { "h:/x", "/m", "-o", "soft,hard,timeo=25", NULL };
	static const char *const d[] = { "h:/x", "/m", "-o", "timeo=0", NULL };
	static const char *const e[] = { "h:/x", "/m", "-o", "kernel,soft,retrans=4", NULL };
	struct mh_opts o;
	struct mh_argv av = { 0 };
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse(&o, a, err), 0);
	CU_ASSERT_EQUAL(mh_soft_ms(&o), 2000);
	CU_ASSERT_EQUAL(o.pass.n, 0); /* not gridvfsd's */
	mh_opts_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse(&o, b, err), 0);
	CU_ASSERT_EQUAL(mh_soft_ms(&o), 180000); /* 60 s x 3 */
	mh_opts_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse(&o, c, err), 0);
	CU_ASSERT_EQUAL(mh_soft_ms(&o), 0);
	mh_opts_free(&o);
	CU_ASSERT_EQUAL(parse(&o, d, err), MH_EXIT_USAGE);
	mh_opts_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse(&o, e, err), 0);
	CU_ASSERT_EQUAL(mh_kernel_argv(&o, "127.0.0.1", 9, &av), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(joined(&av), ",nolock,soft,retrans=4 "));
	mh_argv_free(&av);
	mh_opts_free(&o);
}

static void test_kernel_argv(void)
{
	static const char *const a[] = { "[fd00::5]:/images", "/var/lib/images",
		"-n", "-o", "kernel,ro,noatime,allow_other,cache-size=20G", NULL };
	struct mh_opts o;
	struct mh_argv av = { 0 };
	char err[256];

	CU_ASSERT_EQUAL_FATAL(parse(&o, a, err), 0);
	CU_ASSERT_EQUAL(o.mode, MH_MODE_KERNEL);
	CU_ASSERT_EQUAL(mh_kernel_argv(&o, "127.0.0.1", 40123, &av), 0);
	CU_ASSERT_STRING_EQUAL(joined(&av),
		"mount -t nfs -n -o vers=3,proto=tcp,port=40123,mountport=40123,"
		"mountproto=tcp,nolock,ro,noatime 127.0.0.1:/images /var/lib/images");
	mh_argv_free(&av);
	CU_ASSERT_EQUAL(mh_proxy_argv(&o, "gridvfsd", 40123, 0, &av), 0);
	CU_ASSERT_STRING_EQUAL(joined(&av),
		"gridvfsd -c /dev/null --role client --listen 127.0.0.1:40123 --upstream "
		"[fd00::5]:2049 --mount-upstream [fd00::5]:2049 --foreground "
		"--cache-size 20G");
	mh_argv_free(&av);
	mh_opts_free(&o);
}

static void test_fuse_optstr(void)
{
	static const char *const a[] = { "h:9:/x", "/m", "-o", "ro,rsize=65536", NULL };
	static const char *const b[] = { "h:9:/x", "/m", "-o", "allow_other", NULL };
	static const char *const c[] = { "h:/x,y", "/m", NULL };
	static const char *const d[] = { "h:9:/x", "/m", "-o", "default_permissions", NULL };
	struct mh_opts o;
	char err[256], buf[512];

	CU_ASSERT_EQUAL_FATAL(parse(&o, a, err), 0);
	CU_ASSERT_EQUAL(mh_fuse_optstr(&o, 1, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "fsname=h:9:/x,subtype=gridvfs,max_read=65536,ro,allow_other,default_permissions");
	CU_ASSERT_EQUAL(mh_fuse_optstr(&o, 0, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "fsname=h:9:/x,subtype=gridvfs,max_read=65536,ro");
	mh_opts_free(&o);
	/* A user's allow_other is multi-user too; never twice. */
	CU_ASSERT_EQUAL_FATAL(parse(&o, b, err), 0);
	CU_ASSERT_EQUAL(mh_fuse_optstr(&o, 0, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "fsname=h:9:/x,subtype=gridvfs,max_read=1048576,allow_other,default_permissions");
	mh_opts_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse(&o, d, err), 0);
	CU_ASSERT_EQUAL(mh_fuse_optstr(&o, 1, buf, sizeof(buf)), 0);
	CU_ASSERT_STRING_EQUAL(buf, "fsname=h:9:/x,subtype=gridvfs,max_read=1048576,default_permissions,allow_other");
	mh_opts_free(&o);
	CU_ASSERT_EQUAL_FATAL(parse(&o, c, err), 0);
	CU_ASSERT_EQUAL(mh_fuse_optstr(&o, 1, buf, sizeof(buf)), -EINVAL);
	mh_opts_free(&o);
}

int main(void)
{
	CU_pSuite s;
	unsigned fails;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("mh_opts", NULL, NULL);
	CU_add_test(s, "SOURCE forms", test_source);
	CU_add_test(s, "-o split", test_split);
	CU_add_test(s, "usage errors", test_errors);
	CU_add_test(s, "sloppy -s", test_sloppy);
	CU_add_test(s, "gridvfsd command line", test_proxy_argv);
	CU_add_test(s, "kernel mount command line", test_kernel_argv);
	CU_add_test(s, "FUSE option string", test_fuse_optstr);
	CU_add_test(s, "hard, soft, timeo, retrans", test_soft);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
