/* mount-helper/opts.c: mount.gridvfs's command line — mount(8)'s calling
 * convention, SOURCE parsing, the -o list split into helper options, mount
 * flags and gridvfsd pass-through options — and the command lines built
 * from it. Pure: no I/O besides printing, so CUnit drives it. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mount-helper/mh.h"

#define MH_DEFAULT_NFS_PORT 2049
#define MH_DEFAULT_CONNS 4
#define MH_DEFAULT_TIMEOUT 15
#define MH_DEFAULT_MAX_IO (1024 * 1024)

int mh_argv_push(struct mh_argv *a, const char *s)
{
	if (a->n + 2 > a->cap) {
		int cap = a->cap ? a->cap * 2 : 16;
		char **v = realloc(a->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		a->v = v;
		a->cap = cap;
	}
	if (!(a->v[a->n] = strdup(s)))
		return -ENOMEM;
	a->v[++a->n] = NULL;
	return 0;
}

int mh_argv_pushf(struct mh_argv *a, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return mh_argv_push(a, buf);
}

void mh_argv_free(struct mh_argv *a)
{
	for (int i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

/* Quote only what a shell would split or expand, so the usual line reads
 * like one typed by hand. */
void mh_argv_print(const struct mh_argv *a, FILE *f)
{
	for (int i = 0; i < a->n; i++) {
		const char *s = a->v[i];
		int plain = *s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyz"
			"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%[]") == strlen(s);
		fputs(i ? " " : "", f);
		if (plain) {
			fputs(s, f);
			continue;
		}
		fputc('\'', f);
		for (; *s; s++)
			*s == '\'' ? fputs("'\\''", f) : fputc(*s, f);
		fputc('\'', f);
	}
	fputc('\n', f);
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* HOST or [V6] then optional :PORT; *rest points after it. */
static int parse_host_port(const char *s, char **host, unsigned *port,
			   const char **rest)
{
	const char *end;

	if (*s == '[') {
		end = strchr(s, ']');
		if (!end || end == s + 1)
			return -EINVAL;
		*host = strndup(s + 1, (size_t)(end - s - 1));
		end++;
	} else {
		end = s + strcspn(s, ":");
		if (end == s)
			return -EINVAL;
		*host = strndup(s, (size_t)(end - s));
	}
	if (!*host)
		return -ENOMEM;
	*rest = end;
	if (*end == ':' && end[1] >= '0' && end[1] <= '9') {
		char digits[8];
		size_t n = strspn(end + 1, "0123456789");
		if (n >= sizeof(digits))
			goto bad;
		memcpy(digits, end + 1, n);
		digits[n] = '\0';
		if (parse_uint(digits, 65535, port) || *port == 0)
			goto bad;
		*rest = end + 1 + n;
	}
	return 0;
bad:
	free(*host);
	*host = NULL;
	return -EINVAL;
}

int mh_source_parse(const char *src, char **host, unsigned *port, char **path)
{
	const char *rest;

	*host = *path = NULL;
	*port = MH_DEFAULT_NFS_PORT;
	if (parse_host_port(src, host, port, &rest))
		return -EINVAL;
	if (rest[0] != ':' || rest[1] != '/') {
		free(*host);
		*host = NULL;
		return -EINVAL;
	}
	if (!(*path = strdup(rest + 1))) {
		free(*host);
		*host = NULL;
		return -ENOMEM;
	}
	return 0;
}

void mh_hostport(char *buf, size_t len, const char *host, unsigned port)
{
	snprintf(buf, len, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
}

/* mount(8)'s generic options that mean nothing to us (fstab bookkeeping). */
static int is_ignored(const char *name)
{
	static const char *const ign[] = { "defaults", "auto", "noauto", "user",
		"nouser", "users", "owner", "group", "_netdev", "nofail", "comment",
		"helper", "loop", NULL };
	if (!strncmp(name, "x-", 2))
		return 1;
	for (int i = 0; ign[i]; i++)
		if (!strcmp(name, ign[i]))
			return 1;
	return 0;
}

/* Flags for the mount itself (FUSE options or mount -t nfs -o). */
static int is_mount_flag(const char *name)
{
	static const char *const fl[] = { "ro", "rw", "nosuid", "suid", "nodev",
		"dev", "noexec", "exec", "noatime", "atime", "nodiratime", "relatime",
		"norelatime", "strictatime", "sync", "async", "dirsync",
		"allow_other", "allow_root", "default_permissions", NULL };
	for (int i = 0; fl[i]; i++)
		if (!strcmp(name, fl[i]))
			return 1;
	return 0;
}

#define OPT_ERR(...) do { snprintf(err, errlen, __VA_ARGS__); return MH_EXIT_USAGE; } while (0)

static int set_str(char **dst, const char *val)
{
	free(*dst);
	*dst = strdup(val);
	return *dst ? 0 : -ENOMEM;
}

#define OPT_HANDLED 100

/* Options whose value the helper itself consumes. OPT_HANDLED, 0: not
 * ours, MH_EXIT_USAGE: ours but bad. */
static int opt_helper_value(struct mh_opts *o, const char *name,
			    const char *val, char *err, size_t errlen)
{
	unsigned u;

	if (!strcmp(name, "mountport")) {
		if (parse_uint(val, 65535, &u) || !u)
			OPT_ERR("mountport=%s: not a port number", val);
		o->mountport = u;
	} else if (!strcmp(name, "localport")) {
		if (parse_uint(val, 65535, &u) || !u)
			OPT_ERR("localport=%s: not a port number", val);
		o->localport = u;
	} else if (!strcmp(name, "proxy")) {
		const char *rest;
		char *h = NULL;
		u = 0;
		if (parse_host_port(val, &h, &u, &rest) || *rest || !u) {
			free(h);
			OPT_ERR("proxy=%s: expected ADDR:PORT", val);
		}
		free(o->proxy_host);
		o->proxy_host = h;
		o->proxy_port = u;
	} else if (!strcmp(name, "gridvfsd")) {
		if (!*val || set_str(&o->gridvfsd, val))
			OPT_ERR("gridvfsd=: needs a path");
	} else if (!strcmp(name, "conns")) {
		if (parse_uint(val, 64, &u) || !u)
			OPT_ERR("conns=%s: expected 1..64", val);
		o->conns = u;
	} else if (!strcmp(name, "timeout")) {
		if (parse_uint(val, 3600, &u) || !u)
			OPT_ERR("timeout=%s: expected seconds 1..3600", val);
		o->timeout = u;
	} else if (!strcmp(name, "rsize") || !strcmp(name, "wsize") ||
		   !strcmp(name, "max-io")) {
		if (parse_uint(val, 1024 * 1024, &u) || u < 4096)
			OPT_ERR("%s=%s: expected 4096..1048576 bytes", name, val);
		o->max_io = u;
	} else if (!strcmp(name, "timeo")) {
		if (parse_uint(val, 36000, &u) || !u)
			OPT_ERR("timeo=%s: expected deciseconds 1..36000", val);
		o->timeo = u;
	} else if (!strcmp(name, "retrans")) {
		if (parse_uint(val, 100, &u))
			OPT_ERR("retrans=%s: expected 0..100", val);
		o->retrans = u;
		o->retrans_set = 1;
	} else if (!strcmp(name, "readahead")) {
		if (parse_uint(val, 1024 * 1024, &u))
			OPT_ERR("readahead=%s: expected KiB", val);
		o->readahead_kb = u;
	} else {
		return 0;
	}
	return OPT_HANDLED;
}

/* One NAME or NAME=VALUE of the -o list. */
static int opt_one(struct mh_opts *o, char *opt, char *err, size_t errlen)
{
	char *val = strchr(opt, '=');
	int rc;

	if (val)
		*val++ = '\0';
	if (!*opt)
		return 0;
	if (!val) {
		if (!strcmp(opt, "fuse"))
			o->mode = MH_MODE_FUSE;
		else if (!strcmp(opt, "kernel"))
			o->mode = MH_MODE_KERNEL;
		else if (!strcmp(opt, "foreground"))
			o->foreground = 1;
		else if (!strcmp(opt, "debug"))
			o->debug = o->foreground = 1;
		else if (!strcmp(opt, "dry-run") || !strcmp(opt, "dry_run"))
			o->dry_run = 1;
		else if (!strcmp(opt, "soft"))
			o->soft = 1;
		else if (!strcmp(opt, "hard"))
			o->soft = 0;
		else if (is_ignored(opt))
			;
		else if (is_mount_flag(opt))
			return mh_argv_push(&o->mntopts, opt) ? MH_EXIT_SYSERR : 0;
		else if (o->sloppy)
			;
		else if (mh_argv_pushf(&o->pass, "--%s", opt))
			return MH_EXIT_SYSERR;
		return 0;
	}
	if (!strcmp(opt, "consistency")) {
		if (!strcmp(val, "strict"))
			o->consistency = MH_CONS_STRICT;
		else if (!strcmp(val, "immutable"))
			o->consistency = MH_CONS_IMMUTABLE;
		else
			OPT_ERR("consistency=%s: expected strict or immutable", val);
		o->consistency_set = 1;
		return 0;
	}
	if (is_ignored(opt))
		return 0;
	rc = opt_helper_value(o, opt, val, err, errlen);
	if (rc)
		return rc == OPT_HANDLED ? 0 : rc;
	if (!strcmp(opt, "log-level"))
		o->log_level_set = 1;
	if (mh_argv_pushf(&o->pass, "--%s", opt) || mh_argv_push(&o->pass, val))
		return MH_EXIT_SYSERR;
	return 0;
}

static int opt_list(struct mh_opts *o, const char *list, char *err, size_t errlen)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int rc = 0;

	if (!copy)
		return MH_EXIT_SYSERR;
	for (tok = strtok_r(copy, ",", &save); tok && !rc;
	     tok = strtok_r(NULL, ",", &save))
		rc = opt_one(o, tok, err, errlen);
	free(copy);
	return rc;
}

static void opts_defaults(struct mh_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = MH_MODE_AUTO;
	o->conns = MH_DEFAULT_CONNS;
	o->timeout = MH_DEFAULT_TIMEOUT;
	o->max_io = MH_DEFAULT_MAX_IO;
}

/* -s must apply to the whole -o list whatever the order, so flags are
 * read in a first pass. */
static int flags_first(struct mh_opts *o, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-' || a[1] == '-' || !strcmp(a, "-o")) {
			i += !strcmp(a, "-o");
			continue;
		}
		for (a++; *a; a++) {
			switch (*a) {
			case 'n': o->nomtab = 1; break;
			case 's': o->sloppy = 1; break;
			case 'f': o->fake = 1; break;
			case 'v': o->verbose = 1; break;
			case 'h': case 'V': case 'o': break;
			default: return -*a;
			}
		}
	}
	return 0;
}

int mh_opts_parse(struct mh_opts *o, int argc, char **argv, char *err,
		  size_t errlen)
{
	int npos = 0, rc;
	const char *pos[2] = { NULL, NULL };

	opts_defaults(o);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			mh_usage(stdout);
			return -1;
		}
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("mount.gridvfs (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
			return -1;
		}
	}
	rc = flags_first(o, argc, argv);
	if (rc)
		OPT_ERR("unknown flag -%c (see --help)", -rc);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-o")) {
			if (++i >= argc)
				OPT_ERR("-o needs an option list");
			if ((rc = opt_list(o, argv[i], err, errlen)))
				return rc;
		} else if (!strncmp(argv[i], "-o", 2)) {
			if ((rc = opt_list(o, argv[i] + 2, err, errlen)))
				return rc;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			if (argv[i][1] == '-')
				OPT_ERR("unknown option %s (see --help)", argv[i]);
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			OPT_ERR("too many arguments: %s", argv[i]);
		}
	}
	if (npos != 2)
		OPT_ERR("usage: mount.gridvfs HOST[:PORT]:/PATH DIR [-o OPTIONS] (see --help)");
	if (o->fake)
		o->dry_run = 1;
	if (mh_source_parse(pos[0], &o->host, &o->port, &o->path))
		OPT_ERR("%s: SOURCE must be HOST[:PORT]:/PATH", pos[0]);
	if (!(o->source = strdup(pos[0])) || !(o->dir = strdup(pos[1])))
		return MH_EXIT_SYSERR;
	if (!o->mountport)
		o->mountport = o->port;
	if (o->proxy_host && o->localport)
		OPT_ERR("proxy= and localport= exclude each other");
	return 0;
}

void mh_opts_free(struct mh_opts *o)
{
	free(o->source);
	free(o->host);
	free(o->path);
	free(o->dir);
	free(o->proxy_host);
	free(o->gridvfsd);
	mh_argv_free(&o->mntopts);
	mh_argv_free(&o->pass);
}

int mh_proxy_argv(const struct mh_opts *o, const char *bin, unsigned lport,
		  int pass_consistency, struct mh_argv *out)
{
	char hp[300];
	int rc = 0;

	rc |= mh_argv_push(out, bin);
	/* The mount's own daemon takes nothing from the system daemon's
	 * config file (its cache dir, pid file); -o config=FILE still can. */
	rc |= mh_argv_push(out, "-c");
	rc |= mh_argv_push(out, "/dev/null");
	rc |= mh_argv_push(out, "--role");
	rc |= mh_argv_push(out, "client");
	rc |= mh_argv_push(out, "--listen");
	rc |= mh_argv_pushf(out, "127.0.0.1:%u", lport);
	mh_hostport(hp, sizeof(hp), o->host, o->port);
	rc |= mh_argv_push(out, "--upstream");
	rc |= mh_argv_push(out, hp);
	mh_hostport(hp, sizeof(hp), o->host, o->mountport);
	rc |= mh_argv_push(out, "--mount-upstream");
	rc |= mh_argv_push(out, hp);
	rc |= mh_argv_push(out, "--foreground");
	if (o->debug && !o->log_level_set) {
		rc |= mh_argv_push(out, "--log-level");
		rc |= mh_argv_push(out, "debug");
	}
	if (pass_consistency && o->consistency_set) {
		rc |= mh_argv_push(out, "--consistency");
		rc |= mh_argv_push(out, o->consistency == MH_CONS_IMMUTABLE ?
				   "immutable" : "strict");
	}
	for (int i = 0; i < o->pass.n; i++)
		rc |= mh_argv_push(out, o->pass.v[i]);
	return rc ? -ENOMEM : 0;
}

int mh_soft_ms(const struct mh_opts *o)
{
	unsigned timeo = o->timeo ? o->timeo : 600;
	unsigned retrans = o->retrans_set ? o->retrans : 2;
	long ms = (long)timeo * 100 * (retrans + 1);

	if (!o->soft)
		return 0;
	/* libnfs counts its timeout in whole seconds. */
	ms = (ms + 999) / 1000 * 1000;
	return ms > 24L * 3600 * 1000 ? 24 * 3600 * 1000 : (int)ms;
}

int mh_kernel_argv(const struct mh_opts *o, const char *phost, unsigned pport,
		   struct mh_argv *out)
{
	char opts[2048];
	size_t len;
	int rc = 0;

	/* nolock: the proxy serves no NLM; locks stay local to this host,
	 * which is what an image store's readers need. */
	len = (size_t)snprintf(opts, sizeof(opts),
		"vers=3,proto=tcp,port=%u,mountport=%u,mountproto=tcp,nolock",
		pport, pport);
	for (int i = 0; i < o->mntopts.n && len < sizeof(opts); i++) {
		const char *f = o->mntopts.v[i];
		if (!strcmp(f, "allow_other") || !strcmp(f, "allow_root") ||
		    !strcmp(f, "default_permissions"))
			continue; /* FUSE-only */
		len += (size_t)snprintf(opts + len, sizeof(opts) - len, ",%s", f);
	}
	if (o->consistency == MH_CONS_IMMUTABLE && len < sizeof(opts))
		len += (size_t)snprintf(opts + len, sizeof(opts) - len, ",actimeo=3600,nocto");
	/* The kernel client knows these itself (nfs(5)). */
	if (o->soft && len < sizeof(opts))
		len += (size_t)snprintf(opts + len, sizeof(opts) - len, ",soft");
	if (o->timeo && len < sizeof(opts))
		len += (size_t)snprintf(opts + len, sizeof(opts) - len, ",timeo=%u", o->timeo);
	if (o->retrans_set && len < sizeof(opts))
		snprintf(opts + len, sizeof(opts) - len, ",retrans=%u", o->retrans);
	rc |= mh_argv_push(out, "mount");
	rc |= mh_argv_push(out, "-t");
	rc |= mh_argv_push(out, "nfs");
	if (o->nomtab)
		rc |= mh_argv_push(out, "-n");
	if (o->verbose)
		rc |= mh_argv_push(out, "-v");
	rc |= mh_argv_push(out, "-o");
	rc |= mh_argv_push(out, opts);
	rc |= mh_argv_pushf(out, strchr(phost, ':') ? "[%s]:%s" : "%s:%s",
			    phost, o->path);
	rc |= mh_argv_push(out, o->dir);
	return rc ? -ENOMEM : 0;
}

/* fsname shows the store in mount(8)/df; a comma would end the option
 * string, so SOURCEs with one are refused here. */
int mh_fuse_optstr(const struct mh_opts *o, int is_root, char *buf, size_t len)
{
	size_t n;
	int have_other = 0, have_perm = 0;

	if (strchr(o->source, ','))
		return -EINVAL;
	n = (size_t)snprintf(buf, len, "fsname=%s,subtype=gridvfs,max_read=%u",
			     o->source, o->max_io);
	for (int i = 0; i < o->mntopts.n && n < len; i++) {
		if (!strcmp(o->mntopts.v[i], "allow_other"))
			have_other = 1;
		if (!strcmp(o->mntopts.v[i], "default_permissions"))
			have_perm = 1;
		n += (size_t)snprintf(buf + n, len - n, ",%s", o->mntopts.v[i]);
	}
	/* A system mount (root) serves every user, like an NFS mount would;
	 * the server checks each caller's AUTH_SYS credentials. */
	if (is_root && !have_other && n < len) {
		n += (size_t)snprintf(buf + n, len - n, ",allow_other");
		have_other = 1;
	}
	/* Several users on one mount: the kernel checks each caller's mode
	 * bits (fsuid, fsgid, all its groups) as a local file system does.
	 * The store checks too, but only as far as its AUTH_SYS view goes
	 * (16 groups, an owner may write a file it made read-only, root
	 * maps), and a cached attribute can let a call through FUSE that
	 * POSIX refuses; the two checks together are the strict one. */
	if (have_other && !have_perm && n < len)
		n += (size_t)snprintf(buf + n, len - n, ",default_permissions");
	return n < len ? 0 : -ENAMETOOLONG;
}

void mh_usage(FILE *f)
{
	fputs(
"Usage: mount.gridvfs HOST[:PORT]:/PATH DIR [-nsfv] [-o OPTION[,OPTION...]]\n"
"       mount -t gridvfs HOST[:PORT]:/PATH DIR [-o OPTIONS]\n"
"\n"
"Mounts the NFSv3 export PATH of an image store (an NFS server, or a\n"
"server-role gridvfsd) on DIR through a client-role gridvfsd that this\n"
"command starts for the mount and stops when it is unmounted.\n"
"PORT (default 2049) is the store's NFS port; IPv6 hosts go in [].\n"
"\n"
"Modes:\n"
"  fuse            a FUSE3 file system, an NFSv3 client of the proxy; needs\n"
"                  neither root nor a kernel NFS client (default unless run\n"
"                  as root on a host with a kernel NFS client)\n"
"  kernel          mount -t nfs -o vers=3,proto=tcp,port=P,mountport=P,nolock\n"
"                  127.0.0.1:PATH DIR against the proxy (needs root and nfs)\n"
"\n"
"Mount-helper options:\n"
"  mountport=N     the store's MOUNT port (default: the NFS port, as a\n"
"                  gridvfsd serves both on one)\n"
"  proxy=ADDR:PORT use this running client-role gridvfsd; start none\n"
"  localport=N     loopback port for the started gridvfsd (default: free one)\n"
"  gridvfsd=PATH   the gridvfsd binary (default: next to mount.gridvfs, then\n"
"                  $PATH)\n"
"  consistency=strict|immutable\n"
"                  strict (default): attributes and names cached 1 s, data\n"
"                  revalidated at every open (close-to-open); immutable:\n"
"                  cached for an hour, for images that never change\n"
"  conns=N         NFS connections (and parallel calls) to the proxy (4)\n"
"  rsize=BYTES, wsize=BYTES\n"
"                  largest READ/WRITE (default 1048576, further capped by\n"
"                  the server's rtmax/wtmax)\n"
"  readahead=KiB   kernel readahead of the FUSE mount (root only; default\n"
"                  4 x rsize)\n"
"  timeout=SEC     how long to wait for the store and the proxy (15)\n"
"  hard            (default) calls wait for the proxy for as long as it\n"
"                  takes, like a hard NFS mount; a started gridvfsd that\n"
"                  dies is restarted at once\n"
"  soft, timeo=DS, retrans=N\n"
"                  a call without a reply within timeo x (retrans + 1)\n"
"                  (deciseconds; defaults 600 and 2, as nfs(5)) fails\n"
"                  with EIO\n"
"  foreground      stay in the foreground (default: detach once mounted)\n"
"  debug           foreground, FUSE debug output, gridvfsd --log-level debug\n"
"  dry-run         print the gridvfsd and mount command lines; do nothing\n"
"  ro, rw, nosuid, nodev, noexec, noatime, sync, dirsync, allow_other,\n"
"  allow_root, default_permissions ...\n"
"                  mount flags; as root a FUSE mount adds allow_other (the\n"
"                  store checks each caller's uid/gids, like NFS does)\n"
"  defaults, auto, noauto, user, users, _netdev, nofail, x-*\n"
"                  fstab bookkeeping, ignored\n"
"\n"
"Every other NAME=VALUE (or NAME) is passed to gridvfsd as --NAME VALUE\n"
"(--NAME): tls-ca=FILE, tls-cert=FILE, tls-key=FILE, cache-dir=DIR,\n"
"cache-size=20G, write-policy=back, map=FILE, log-level=debug ...; see\n"
"gridvfsd --help. One gridvfsd does not know makes the mount fail (35).\n"
"\n"
"Flags (as mount(8) passes them):\n"
"  -o OPTIONS  the options above      -v  verbose: print what is started\n"
"  -f          fake: same as dry-run  -n  no mtab (accepted, no effect)\n"
"  -s          sloppy: drop unknown bare options instead of passing them\n"
"  -h, --help  this text              -V, --version\n"
"\n"
"Unmount with umount DIR or fusermount3 -u DIR: the gridvfsd started for\n"
"the mount stops with it. A killed FUSE process takes its gridvfsd along\n"
"and leaves DIR as a dead mount (ENOTCONN) that umount clears.\n"
"\n"
"Exit status (failures have bit 32 set, like mount(8)'s 32):\n"
"  0   mounted (or dry-run printed)\n"
"  1   bad invocation or option\n"
"  2   system error (fork, memory)\n"
"  32  mount failure: DIR missing, not a directory or already a mount\n"
"      point; FUSE or mount(8) refused\n"
"  33  the store (or proxy=) does not accept TCP connections\n"
"  34  the store refused the path: not exported, or access denied\n"
"  35  gridvfsd failed to start (its last output is shown)\n"
"  36  gridvfsd runs but MNT through it failed (TLS refused, upstream\n"
"      error or timeout; its last output is shown)\n", f);
}
