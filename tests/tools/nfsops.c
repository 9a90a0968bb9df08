/* nfsops: drive every NFSv3 procedure (and MOUNTv3 NULL/MNT/EXPORT/UMNT)
 * through libnfs and print one canonical line per step, so that a run
 * straight against a server and one through a transparent proxy can be
 * diffed. Lines hold only run-independent facts: names, types, modes, ids,
 * link counts, sizes, checksums, errno names; never times of day, fileids,
 * cookies or verifiers. Exit 1 on any unexpected result. One line,
 * "raw-fsinfo-sizes ...", holds FSINFO transfer sizes that a proxy may
 * lower; callers compare it separately.
 *
 * usage: nfsops URL WORKDIR
 *   URL      nfs://HOST/EXPORT?version=3&nfsport=P&mountport=M (export root)
 *   WORKDIR  a name (no '/') that must not exist in the export root
 * Must run as root (it chowns). On success WORKDIR is left holding:
 *   c      regular, 0600, 1234:5678, 2 links, 70000 bytes
 *   d      hard link to c
 *   s      symlink -> "c"
 *   p      fifo, 0640
 *   e      regular, 0604, 0 bytes (exclusive create)
 *   pub/   directory, 0777, holding mine (regular, 0644, 4321:4321, 0 bytes)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-mount.h>
#include <nfsc/libnfs-raw-nfs.h>

#define OPS_BIG_LEN (3 * 1024 * 1024 + 123) /* spans several WRITE/READ rpcs */
#define OPS_MANY 60                           /* entries for READDIR paging */
#define OPS_MAX_NAMES 256
#define OPS_RAW_TIMEOUT_S 60

static int ops_failures;
static const char *ops_work; /* "/WORKDIR" */

/* ------------------------------------------------------------------ */
/* output                                                              */

static const char *ops_errname(int rc)
{
	static char buf[32];

	switch (rc < 0 ? -rc : rc) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EIO: return "EIO";
	case ENXIO: return "ENXIO";
	case EACCES: return "EACCES";
	case EEXIST: return "EEXIST";
	case EXDEV: return "EXDEV";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case EFBIG: return "EFBIG";
	case ENOSPC: return "ENOSPC";
	case EROFS: return "EROFS";
	case EMLINK: return "EMLINK";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EDQUOT: return "EDQUOT";
	case ESTALE: return "ESTALE";
	case ENOTSUP: return "ENOTSUP";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EAGAIN: return "EAGAIN";
	case EFAULT: return "EFAULT";
	default:
		snprintf(buf, sizeof(buf), "E%d", rc < 0 ? -rc : rc);
		return buf;
	}
}

static void ops_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ops_say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* A failed expectation is printed in the same stream, so a diff shows it
 * in place; the details (libnfs's error text) go to stderr. */
static void ops_bad(const char *step, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ops_bad(const char *step, const char *fmt, ...)
{
	va_list ap;

	printf("UNEXPECTED %s: ", step);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	ops_failures++;
}

/* Print "STEP ERRNAME" and check it against the wanted result. */
static int ops_expect(struct nfs_context *nfs, const char *step, int rc, int want)
{
	ops_say("%s %s", step, ops_errname(rc));
	if ((rc < 0 ? rc : 0) != want) {
		ops_bad(step, "got %s, want %s", ops_errname(rc), ops_errname(want));
		if (nfs && rc < 0)
			fprintf(stderr, "%s: %s\n", step, nfs_get_error(nfs));
		return -1;
	}
	return 0;
}

/* Path of REL inside the work dir; a small ring so a call can use two. */
static const char *ops_path(const char *rel)
{
	static char ring[4][512];
	static int next;
	char *p = ring[next++ & 3];

	if (rel[0] == '\0' || strcmp(rel, ".") == 0)
		snprintf(p, 512, "%s", ops_work);
	else
		snprintf(p, 512, "%s/%s", ops_work, rel);
	return p;
}

static uint64_t ops_fnv(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Deterministic, non-repeating-looking file contents. */
static void ops_fill(unsigned char *buf, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)x;
	}
}

static const char *ops_type(uint64_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return "reg";
	case S_IFDIR: return "dir";
	case S_IFLNK: return "lnk";
	case S_IFIFO: return "fifo";
	case S_IFCHR: return "chr";
	case S_IFBLK: return "blk";
	case S_IFSOCK: return "sock";
	default: return "unknown";
	}
}

/* Canonical attribute text. Directory sizes depend on the file system's
 * directory format, not on the protocol, so they are left out. */
static void ops_fmt_attr(char *buf, size_t len, const struct nfs_stat_64 *st)
{
	int n = snprintf(buf, len, "type=%s mode=%04" PRIo64 " nlink=%" PRIu64
			 " uid=%" PRIu64 " gid=%" PRIu64, ops_type(st->nfs_mode),
			 st->nfs_mode & 07777, st->nfs_nlink, st->nfs_uid, st->nfs_gid);

	if (!S_ISDIR(st->nfs_mode) && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - n, " size=%" PRIu64, st->nfs_size);
}

/* lstat REL and print "STEP REL ATTRS"; returns 0 or -errno. */
static int ops_stat(struct nfs_context *nfs, const char *step, const char *rel,
		    struct nfs_stat_64 *out)
{
	struct nfs_stat_64 st;
	char attr[160];
	int rc = nfs_lstat64(nfs, ops_path(rel), &st);

	if (rc < 0) {
		ops_say("%s %s %s", step, rel, ops_errname(rc));
		ops_bad(step, "lstat %s: %s", rel, nfs_get_error(nfs));
		return rc;
	}
	ops_fmt_attr(attr, sizeof(attr), &st);
	ops_say("%s %s %s", step, rel, attr);
	if (out)
		*out = st;
	return 0;
}

/* Check one numeric attribute against what the step should have left. */
static void ops_want(const char *step, const char *what, uint64_t got, uint64_t want)
{
	if (got != want)
		ops_bad(step, "%s is %" PRIu64 ", want %" PRIu64, what, got, want);
}

/* ------------------------------------------------------------------ */
/* raw rpc: libnfs has no high-level call for plain READDIR, FSINFO,   */
/* PATHCONF, an explicit UNSTABLE WRITE + COMMIT or the MOUNT EXPORT   */
/* list, so those go through private rpc contexts driven to completion */
/* here.                                                               */

struct ops_fh {
	unsigned len;
	char val[64];
};

struct ops_wait {
	int done;
	int status;
	void (*take)(struct ops_wait *w, void *data);
	void *res;
};

static void ops_raw_cb(struct rpc_context *rpc, int status, void *data, void *priv)
{
	struct ops_wait *w = priv;

	(void)rpc;
	w->status = status;
	if (status == RPC_STATUS_SUCCESS && w->take && data)
		w->take(w, data);
	else if (status != RPC_STATUS_SUCCESS && data)
		fprintf(stderr, "rpc error: %s\n", (const char *)data);
	w->done = 1;
}

/* Drive RPC until W's callback ran; 0 on RPC success, else -EIO. */
static int ops_raw_wait(struct rpc_context *rpc, struct ops_wait *w)
{
	time_t deadline = time(NULL) + OPS_RAW_TIMEOUT_S;

	while (!w->done) {
		struct pollfd pfd = { rpc_get_fd(rpc), (short)rpc_which_events(rpc), 0 };

		if (time(NULL) > deadline) {
			fprintf(stderr, "raw rpc timed out\n");
			return -ETIMEDOUT;
		}
		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			return -errno;
		if (rpc_service(rpc, pfd.revents) < 0) {
			fprintf(stderr, "rpc_service: %s\n", rpc_get_error(rpc));
			return -EIO;
		}
	}
	return w->status == RPC_STATUS_SUCCESS ? 0 : -EIO;
}

static struct rpc_context *ops_raw_connect(const char *host, int port, int prog, int vers)
{
	struct rpc_context *rpc = rpc_init_context();
	struct ops_wait w = { 0 };

	if (!rpc)
		return NULL;
	if (rpc_connect_port_async(rpc, host, port, prog, vers, ops_raw_cb, &w) < 0 ||
	    ops_raw_wait(rpc, &w) < 0) {
		fprintf(stderr, "connect %s:%d prog %d: %s\n", host, port, prog,
			rpc_get_error(rpc));
		rpc_destroy_context(rpc);
		return NULL;
	}
	return rpc;
}

static void ops_fh_set(struct ops_fh *fh, const char *val, unsigned len)
{
	fh->len = len > sizeof(fh->val) ? 0 : len;
	memcpy(fh->val, val, fh->len);
}

static nfs_fh3 ops_fh3(struct ops_fh *fh)
{
	nfs_fh3 f;

	f.data.data_len = fh->len;
	f.data.data_val = fh->val;
	return f;
}

/* MNT */
struct ops_mnt_res {
	int stat;
	struct ops_fh fh;
	unsigned nflavors;
	int flavors[8];
};

static void ops_take_mnt(struct ops_wait *w, void *data)
{
	mountres3 *r = data;
	struct ops_mnt_res *o = w->res;

	o->stat = r->fhs_status;
	if (r->fhs_status != MNT3_OK)
		return;
	mountres3_ok *ok = &r->mountres3_u.mountinfo;
	ops_fh_set(&o->fh, ok->fhandle.fhandle3_val, ok->fhandle.fhandle3_len);
	for (unsigned i = 0; i < ok->auth_flavors.auth_flavors_len && i < 8; i++)
		o->flavors[o->nflavors++] = ok->auth_flavors.auth_flavors_val[i];
}

/* EXPORT: count entries, note whether ours is listed. */
struct ops_export_res {
	const char *want;
	int count;
	int listed;
};

static void ops_take_export(struct ops_wait *w, void *data)
{
	struct ops_export_res *o = w->res;
	exportnode e;

	/* libnfs's decoder lays list nodes out only 4-byte aligned: copy each
	 * node before touching it (UBSan rightly objects otherwise). */
	for (exportnode *p = *(exports *)data; p; p = e.ex_next) {
		memcpy(&e, p, sizeof(e));
		o->count++;
		if (e.ex_dir && strcmp(e.ex_dir, o->want) == 0)
			o->listed = 1;
	}
}

/* LOOKUP */
struct ops_lookup_res {
	int stat;
	struct ops_fh fh;
	unsigned type;
};

static void ops_take_lookup(struct ops_wait *w, void *data)
{
	LOOKUP3res *r = data;
	struct ops_lookup_res *o = w->res;

	o->stat = r->status;
	if (r->status != NFS3_OK)
		return;
	LOOKUP3resok *ok = &r->LOOKUP3res_u.resok;
	ops_fh_set(&o->fh, ok->object.data.data_val, ok->object.data.data_len);
	if (ok->obj_attributes.attributes_follow)
		o->type = ok->obj_attributes.post_op_attr_u.attributes.type;
}

static int ops_raw_lookup(struct rpc_context *rpc, struct ops_fh *dir,
			  const char *name, struct ops_lookup_res *res)
{
	LOOKUP3args a;
	struct ops_wait w = { 0, 0, ops_take_lookup, res };

	memset(res, 0, sizeof(*res));
	a.what.dir = ops_fh3(dir);
	a.what.name = (char *)name;
	if (rpc_nfs3_lookup_async(rpc, ops_raw_cb, &a, &w) < 0)
		return -EIO;
	return ops_raw_wait(rpc, &w);
}

/* WRITE */
struct ops_write_res {
	int stat;
	unsigned count;
	unsigned committed;
	char verf[NFS3_WRITEVERFSIZE];
	uint64_t size_after;
};

static void ops_take_write(struct ops_wait *w, void *data)
{
	WRITE3res *r = data;
	struct ops_write_res *o = w->res;

	o->stat = r->status;
	if (r->status != NFS3_OK)
		return;
	WRITE3resok *ok = &r->WRITE3res_u.resok;
	o->count = ok->count;
	o->committed = ok->committed;
	memcpy(o->verf, ok->verf, sizeof(o->verf));
	if (ok->file_wcc.after.attributes_follow)
		o->size_after = ok->file_wcc.after.post_op_attr_u.attributes.size;
}

static int ops_raw_write(struct rpc_context *rpc, struct ops_fh *fh, uint64_t off,
			 char *buf, unsigned len, int stable, struct ops_write_res *res)
{
	WRITE3args a;
	struct ops_wait w = { 0, 0, ops_take_write, res };

	memset(res, 0, sizeof(*res));
	memset(&a, 0, sizeof(a));
	a.file = ops_fh3(fh);
	a.offset = off;
	a.count = len;
	a.stable = stable;
	a.data.data_len = len;
	a.data.data_val = buf;
	if (rpc_nfs3_write_async(rpc, ops_raw_cb, &a, &w) < 0)
		return -EIO;
	return ops_raw_wait(rpc, &w);
}

/* COMMIT */
struct ops_commit_res {
	int stat;
	char verf[NFS3_WRITEVERFSIZE];
};

static void ops_take_commit(struct ops_wait *w, void *data)
{
	COMMIT3res *r = data;
	struct ops_commit_res *o = w->res;

	o->stat = r->status;
	if (r->status == NFS3_OK)
		memcpy(o->verf, r->COMMIT3res_u.resok.verf, sizeof(o->verf));
}

/* READDIR: one page; names are appended to the caller's list. */
struct ops_readdir_res {
	int stat;
	int eof;
	uint64_t cookie;
	char verf[NFS3_COOKIEVERFSIZE];
	int n;
	char names[OPS_MAX_NAMES][64];
};

static void ops_take_readdir(struct ops_wait *w, void *data)
{
	READDIR3res *r = data;
	struct ops_readdir_res *o = w->res;

	o->stat = r->status;
	if (r->status != NFS3_OK)
		return;
	READDIR3resok *ok = &r->READDIR3res_u.resok;
	memcpy(o->verf, ok->cookieverf, sizeof(o->verf));
	o->eof = ok->reply.eof;
	entry3 e;

	/* Entries are copied first: see ops_take_export on alignment. */
	for (entry3 *p = ok->reply.entries; p; p = e.nextentry) {
		memcpy(&e, p, sizeof(e));
		if (o->n < OPS_MAX_NAMES)
			snprintf(o->names[o->n++], sizeof(o->names[0]), "%s", e.name);
		o->cookie = e.cookie;
	}
}

/* FSSTAT / FSINFO / PATHCONF: their resok parts hold no pointers. */
struct ops_fsx_res {
	int stat;
	union {
		FSSTAT3resok fsstat;
		FSINFO3resok fsinfo;
		PATHCONF3resok pathconf;
	} u;
};

static void ops_take_fsstat(struct ops_wait *w, void *data)
{
	FSSTAT3res *r = data;
	struct ops_fsx_res *o = w->res;

	o->stat = r->status;
	if (r->status == NFS3_OK)
		o->u.fsstat = r->FSSTAT3res_u.resok;
}

static void ops_take_fsinfo(struct ops_wait *w, void *data)
{
	FSINFO3res *r = data;
	struct ops_fsx_res *o = w->res;

	o->stat = r->status;
	if (r->status == NFS3_OK)
		o->u.fsinfo = r->FSINFO3res_u.resok;
}

static void ops_take_pathconf(struct ops_wait *w, void *data)
{
	PATHCONF3res *r = data;
	struct ops_fsx_res *o = w->res;

	o->stat = r->status;
	if (r->status == NFS3_OK)
		o->u.pathconf = r->PATHCONF3res_u.resok;
}

/* ------------------------------------------------------------------ */
/* steps                                                               */

struct ops_ctx {
	struct nfs_context *nfs;
	struct rpc_context *mnt; /* raw MOUNT v3 */
	struct rpc_context *rpc; /* raw NFS v3 */
	const char *url;
	char host[256];
	char export[512];
	int nfsport;
	int mntport;
	struct ops_fh root;
	struct ops_fh work;
	unsigned char *model; /* what file a (later c) must hold */
	size_t model_len;
};

/* Split nfs://HOST/EXPORT?...nfsport=P&mountport=M into its parts. */
static int ops_url_parse(struct ops_ctx *c)
{
	const char *p = c->url, *q;

	if (strncmp(p, "nfs://", 6) != 0)
		return -EINVAL;
	p += 6;
	q = strchr(p, '/');
	if (!q || (size_t)(q - p) >= sizeof(c->host))
		return -EINVAL;
	memcpy(c->host, p, q - p);
	c->host[q - p] = '\0';
	snprintf(c->export, sizeof(c->export), "%.*s", (int)strcspn(q, "?"), q);
	p = strchr(q, '?');
	c->nfsport = 2049;
	c->mntport = 0;
	while (p && *p) {
		p++;
		if (strncmp(p, "nfsport=", 8) == 0)
			c->nfsport = atoi(p + 8);
		else if (strncmp(p, "mountport=", 10) == 0)
			c->mntport = atoi(p + 10);
		p = strchr(p, '&');
	}
	return c->mntport > 0 ? 0 : -EINVAL;
}

static struct nfs_context *ops_mount(const char *url, int uid, int gid)
{
	struct nfs_context *nfs = nfs_init_context();
	struct nfs_url *u = NULL;

	if (!nfs)
		return NULL;
	if (uid >= 0) {
		nfs_set_uid(nfs, uid);
		nfs_set_gid(nfs, gid);
	}
	u = nfs_parse_url_dir(nfs, url);
	if (!u || nfs_mount(nfs, u->server, u->path) < 0) {
		fprintf(stderr, "mount %s: %s\n", url, nfs_get_error(nfs));
		if (u)
			nfs_destroy_url(u);
		nfs_destroy_context(nfs);
		return NULL;
	}
	nfs_destroy_url(u);
	nfs_umask(nfs, 022);
	return nfs;
}

/* MOUNT NULL, EXPORT and MNT on a raw connection: the root handle is kept
 * for the raw NFS calls. */
static int ops_step_mount(struct ops_ctx *c)
{
	struct ops_wait w = { 0 };
	struct ops_export_res ex = { c->export, 0, 0 };
	struct ops_mnt_res mr;
	int rc;

	c->mnt = ops_raw_connect(c->host, c->mntport, MOUNT_PROGRAM, MOUNT_V3);
	if (!c->mnt)
		return -EIO;
	rc = rpc_mount3_null_async(c->mnt, ops_raw_cb, &w) < 0 ? -EIO : ops_raw_wait(c->mnt, &w);
	if (ops_expect(NULL, "mount-null", rc, 0) < 0)
		return rc;

	w = (struct ops_wait){ 0, 0, ops_take_export, &ex };
	rc = rpc_mount3_export_async(c->mnt, ops_raw_cb, &w) < 0 ? -EIO : ops_raw_wait(c->mnt, &w);
	ops_say("mount-export %s listed=%d", ops_errname(rc), ex.listed);
	if (rc < 0 || !ex.listed || ex.count < 1)
		ops_bad("mount-export", "export %s not listed (%d entries)", c->export, ex.count);

	memset(&mr, 0, sizeof(mr));
	w = (struct ops_wait){ 0, 0, ops_take_mnt, &mr };
	rc = rpc_mount3_mnt_async(c->mnt, ops_raw_cb, c->export, &w) < 0 ? -EIO : ops_raw_wait(c->mnt, &w);
	ops_say("mount-mnt %s status=%d flavor0=%d", ops_errname(rc), mr.stat,
		mr.nflavors ? mr.flavors[0] : -1);
	if (rc < 0 || mr.stat != MNT3_OK || mr.fh.len == 0) {
		ops_bad("mount-mnt", "no root handle");
		return -EIO;
	}
	c->root = mr.fh;
	return 0;
}

static void ops_step_umount(struct ops_ctx *c)
{
	struct ops_wait w = { 0 };
	int rc;

	rc = rpc_mount3_umnt_async(c->mnt, ops_raw_cb, c->export, &w) < 0 ? -EIO : ops_raw_wait(c->mnt, &w);
	ops_expect(NULL, "mount-umnt", rc, 0);
}

static void ops_step_mkdir(struct ops_ctx *c)
{
	struct nfs_stat_64 st;

	ops_expect(c->nfs, "mkdir .", nfs_mkdir2(c->nfs, ops_path("."), 0755), 0);
	if (ops_stat(c->nfs, "stat", ".", &st) == 0) {
		ops_want("mkdir", "mode", st.nfs_mode & 07777, 0755);
		ops_want("mkdir", "nlink", st.nfs_nlink, 2);
	}
	ops_expect(c->nfs, "mkdir-again .", nfs_mkdir2(c->nfs, ops_path("."), 0755), -EEXIST);
}

/* Read all of REL and compare with WANT/LEN; prints size and checksum. */
static void ops_check_data(struct nfs_context *nfs, const char *step, const char *rel,
			   const unsigned char *want, size_t len)
{
	struct nfsfh *fh = NULL;
	unsigned char *buf = malloc(len + 4096);
	int rc = nfs_open(nfs, ops_path(rel), O_RDONLY, &fh);
	int n = -1;

	if (rc == 0) {
		n = nfs_pread(nfs, fh, 0, len + 4096, (char *)buf);
		nfs_close(nfs, fh);
	}
	if (n < 0) {
		ops_say("%s %s %s", step, rel, ops_errname(rc ? rc : n));
		ops_bad(step, "read %s: %s", rel, nfs_get_error(nfs));
	} else {
		ops_say("%s %s bytes=%d fnv=%016" PRIx64, step, rel, n, ops_fnv(buf, n));
		if ((size_t)n != len || memcmp(buf, want, len) != 0)
			ops_bad(step, "%s: data differs from what was written", rel);
	}
	free(buf);
}

/* CREATE + multi-rpc WRITE, an overwrite, READ back, reads at/after EOF. */
static void ops_step_write_read(struct ops_ctx *c)
{
	struct nfsfh *fh = NULL;
	struct nfs_stat_64 st;
	unsigned char patch[10];
	char tail[100];
	int n;

	c->model_len = OPS_BIG_LEN;
	ops_fill(c->model, c->model_len, 1);
	ops_fill(patch, sizeof(patch), 2);
	if (ops_expect(c->nfs, "creat a", nfs_creat(c->nfs, ops_path("a"), 0644, &fh), 0) < 0)
		return;
	n = nfs_pwrite(c->nfs, fh, 0, c->model_len, (char *)c->model);
	ops_say("write a bytes=%d", n);
	if (n != (int)c->model_len)
		ops_bad("write", "short write %d: %s", n, nfs_get_error(c->nfs));
	n = nfs_pwrite(c->nfs, fh, 1000, sizeof(patch), (char *)patch);
	memcpy(c->model + 1000, patch, sizeof(patch));
	ops_say("write a offset=1000 bytes=%d", n);
	ops_expect(c->nfs, "close a", nfs_close(c->nfs, fh), 0);
	if (ops_stat(c->nfs, "stat", "a", &st) == 0) {
		ops_want("creat", "mode", st.nfs_mode & 07777, 0644);
		ops_want("write", "size", st.nfs_size, c->model_len);
	}
	ops_check_data(c->nfs, "read", "a", c->model, c->model_len);

	if (nfs_open(c->nfs, ops_path("a"), O_RDONLY, &fh) < 0) {
		ops_bad("read-eof", "open a: %s", nfs_get_error(c->nfs));
		return;
	}
	n = nfs_pread(c->nfs, fh, c->model_len - 10, sizeof(tail), tail);
	ops_say("read-eof a tail=%d", n);
	ops_want("read-eof", "tail bytes", n, 10);
	n = nfs_pread(c->nfs, fh, c->model_len + 5, sizeof(tail), tail);
	ops_say("read-eof a past=%d", n);
	ops_want("read-eof", "bytes past eof", n, 0);
	nfs_close(c->nfs, fh);
}

/* SETATTR in each of its forms: mode, owner, size down and up, times. */
static void ops_step_setattr(struct ops_ctx *c)
{
	struct nfs_stat_64 st;
	struct nfsfh *fh = NULL;
	struct timeval tv[2] = { { 1000000000, 500000 }, { 1234567890, 250000 } };

	ops_expect(c->nfs, "chmod a 0600", nfs_chmod(c->nfs, ops_path("a"), 0600), 0);
	if (ops_stat(c->nfs, "stat", "a", &st) == 0)
		ops_want("chmod", "mode", st.nfs_mode & 07777, 0600);
	ops_expect(c->nfs, "chown a 1234:5678", nfs_chown(c->nfs, ops_path("a"), 1234, 5678), 0);
	if (ops_stat(c->nfs, "stat", "a", &st) == 0) {
		ops_want("chown", "uid", st.nfs_uid, 1234);
		ops_want("chown", "gid", st.nfs_gid, 5678);
	}
	ops_expect(c->nfs, "truncate a 5000", nfs_truncate(c->nfs, ops_path("a"), 5000), 0);
	c->model_len = 5000;
	if (ops_stat(c->nfs, "stat", "a", &st) == 0)
		ops_want("truncate", "size", st.nfs_size, 5000);
	ops_check_data(c->nfs, "read", "a", c->model, c->model_len);

	if (ops_expect(c->nfs, "open a rdwr", nfs_open(c->nfs, ops_path("a"), O_RDWR, &fh), 0) == 0) {
		ops_expect(c->nfs, "ftruncate a 70000", nfs_ftruncate(c->nfs, fh, 70000), 0);
		if (nfs_fstat64(c->nfs, fh, &st) == 0) {
			ops_say("fstat a size=%" PRIu64, st.nfs_size);
			ops_want("ftruncate", "size", st.nfs_size, 70000);
		}
		nfs_close(c->nfs, fh);
	}
	memset(c->model + 5000, 0, 70000 - 5000);
	c->model_len = 70000;
	ops_check_data(c->nfs, "read", "a", c->model, c->model_len);

	ops_expect(c->nfs, "utimes a", nfs_utimes(c->nfs, ops_path("a"), tv), 0);
	if (nfs_lstat64(c->nfs, ops_path("a"), &st) == 0) {
		ops_say("times a atime=%" PRIu64 ".%06" PRIu64 " mtime=%" PRIu64 ".%06" PRIu64,
			st.nfs_atime, st.nfs_atime_nsec / 1000, st.nfs_mtime,
			st.nfs_mtime_nsec / 1000);
		ops_want("utimes", "atime", st.nfs_atime, 1000000000);
		ops_want("utimes", "mtime", st.nfs_mtime, 1234567890);
	}
}

/* RENAME (plain and over an existing file) and LINK. */
static void ops_step_rename_link(struct ops_ctx *c)
{
	struct nfs_stat_64 st;
	struct nfsfh *fh = NULL;

	ops_expect(c->nfs, "rename a b", nfs_rename(c->nfs, ops_path("a"), ops_path("b")), 0);
	ops_expect(c->nfs, "lookup a", nfs_lstat64(c->nfs, ops_path("a"), &st), -ENOENT);
	ops_stat(c->nfs, "stat", "b", NULL);

	if (ops_expect(c->nfs, "creat c", nfs_creat(c->nfs, ops_path("c"), 0644, &fh), 0) == 0) {
		ops_say("write c bytes=%d", nfs_pwrite(c->nfs, fh, 0, 3, "ccc"));
		nfs_close(c->nfs, fh);
	}
	ops_expect(c->nfs, "rename b c", nfs_rename(c->nfs, ops_path("b"), ops_path("c")), 0);
	ops_expect(c->nfs, "lookup b", nfs_lstat64(c->nfs, ops_path("b"), &st), -ENOENT);
	if (ops_stat(c->nfs, "stat", "c", &st) == 0)
		ops_want("rename-over", "size", st.nfs_size, 70000);
	ops_check_data(c->nfs, "read", "c", c->model, c->model_len);

	ops_expect(c->nfs, "link c d", nfs_link(c->nfs, ops_path("c"), ops_path("d")), 0);
	if (ops_stat(c->nfs, "stat", "c", &st) == 0)
		ops_want("link", "nlink of c", st.nfs_nlink, 2);
	if (ops_stat(c->nfs, "stat", "d", &st) == 0)
		ops_want("link", "nlink of d", st.nfs_nlink, 2);
}

/* SYMLINK, READLINK, MKNOD (fifo; a char device where the server may). */
static void ops_step_special(struct ops_ctx *c)
{
	struct nfs_stat_64 st;
	char buf[256];
	int rc;

	ops_expect(c->nfs, "symlink s->c", nfs_symlink(c->nfs, "c", ops_path("s")), 0);
	memset(buf, 0, sizeof(buf));
	rc = nfs_readlink(c->nfs, ops_path("s"), buf, sizeof(buf) - 1);
	ops_say("readlink s %s target=%s", ops_errname(rc), rc == 0 ? buf : "-");
	if (rc != 0 || strcmp(buf, "c") != 0)
		ops_bad("readlink", "got '%s' (%s)", buf, ops_errname(rc));
	if (ops_stat(c->nfs, "lstat", "s", &st) == 0)
		ops_want("symlink", "is a link", S_ISLNK(st.nfs_mode), 1);
	rc = nfs_readlink(c->nfs, ops_path("c"), buf, sizeof(buf) - 1);
	ops_expect(c->nfs, "readlink-regular c", rc, -EINVAL);

	ops_expect(c->nfs, "mknod p fifo 0640",
		   nfs_mknod(c->nfs, ops_path("p"), S_IFIFO | 0640, 0), 0);
	if (ops_stat(c->nfs, "lstat", "p", &st) == 0) {
		ops_want("mknod", "is a fifo", S_ISFIFO(st.nfs_mode), 1);
		ops_want("mknod", "mode", st.nfs_mode & 07777, 0640);
	}
	/* A char device needs CAP_MKNOD in the server: either answer is
	 * fine, it just has to be the same through the proxy. */
	rc = nfs_mknod(c->nfs, ops_path("cdev"), S_IFCHR | 0600, (1 << 8) | 3);
	ops_say("mknod cdev chr %s", rc == 0 ? "OK" : "refused");
	if (rc == 0) {
		if (nfs_lstat64(c->nfs, ops_path("cdev"), &st) == 0)
			ops_say("lstat cdev type=%s rdev=%" PRIu64 ":%" PRIu64,
				ops_type(st.nfs_mode), st.nfs_rdev >> 8, st.nfs_rdev & 0xff);
		ops_expect(c->nfs, "unlink cdev", nfs_unlink(c->nfs, ops_path("cdev")), 0);
	}
}

/* Exclusive create: first wins, second gets EEXIST. */
static void ops_step_exclusive(struct ops_ctx *c)
{
	struct nfsfh *fh = NULL;
	struct nfs_stat_64 st;
	int flags = O_CREAT | O_EXCL | O_WRONLY;

	if (ops_expect(c->nfs, "create-excl e", nfs_open2(c->nfs, ops_path("e"), flags, 0604, &fh), 0) == 0)
		nfs_close(c->nfs, fh);
	if (ops_stat(c->nfs, "stat", "e", &st) == 0)
		ops_want("create-excl", "mode", st.nfs_mode & 07777, 0604);
	ops_expect(c->nfs, "create-excl-again e",
		   nfs_open2(c->nfs, ops_path("e"), flags, 0604, &fh), -EEXIST);
	ops_expect(c->nfs, "create-excl-again c",
		   nfs_open2(c->nfs, ops_path("c"), flags, 0604, &fh), -EEXIST);
}

/* ACCESS and permission checks under a second, unprivileged credential:
 * the AUTH_SYS uid/gid must reach the server unchanged. */
static void ops_step_access(struct ops_ctx *c)
{
	struct nfs_context *u;
	struct nfsfh *fh = NULL;
	struct nfs_stat_64 st;

	ops_expect(c->nfs, "access c rw (root)", nfs_access(c->nfs, ops_path("c"), R_OK | W_OK), 0);
	ops_say("access2 c (root) mask=%d", nfs_access2(c->nfs, ops_path("c")));
	ops_expect(c->nfs, "mkdir pub", nfs_mkdir2(c->nfs, ops_path("pub"), 0777), 0);
	ops_expect(c->nfs, "chmod pub 0777", nfs_chmod(c->nfs, ops_path("pub"), 0777), 0);

	u = ops_mount(c->url, 4321, 4321);
	if (!u) {
		ops_bad("access", "mount as uid 4321 failed");
		return;
	}
	ops_say("access2 c (uid 4321) mask=%d", nfs_access2(u, ops_path("c")));
	ops_expect(u, "access c r (uid 4321)", nfs_access(u, ops_path("c"), R_OK), -EACCES);
	ops_expect(u, "open c (uid 4321)", nfs_open(u, ops_path("c"), O_RDONLY, &fh), -EACCES);
	ops_expect(u, "creat x (uid 4321)", nfs_creat(u, ops_path("x"), 0644, &fh), -EACCES);
	if (ops_expect(u, "creat pub/mine (uid 4321)", nfs_creat(u, ops_path("pub/mine"), 0644, &fh), 0) == 0)
		nfs_close(u, fh);
	if (ops_stat(c->nfs, "stat", "pub/mine", &st) == 0) {
		ops_want("creat as user", "uid", st.nfs_uid, 4321);
		ops_want("creat as user", "gid", st.nfs_gid, 4321);
	}
	ops_expect(u, "chown pub/mine 0 (uid 4321)", nfs_chown(u, ops_path("pub/mine"), 0, 0), -EPERM);
	nfs_destroy_context(u);
}

/* fsync (libnfs: COMMIT after UNSTABLE writes), then raw UNSTABLE WRITE +
 * COMMIT with verifier check, then a FILE_SYNC write. */
static void ops_step_commit(struct ops_ctx *c)
{
	struct nfsfh *fh = NULL;
	struct ops_lookup_res lk;
	struct ops_write_res wr;
	struct ops_commit_res cr;
	COMMIT3args ca;
	struct ops_wait w = { 0, 0, ops_take_commit, &cr };
	unsigned char buf[65536];
	int rc;

	ops_fill(buf, sizeof(buf), 3);
	if (ops_expect(c->nfs, "open c rdwr", nfs_open(c->nfs, ops_path("c"), O_RDWR, &fh), 0) == 0) {
		ops_say("write c bytes=%d", nfs_pwrite(c->nfs, fh, 0, sizeof(buf), (char *)buf));
		memcpy(c->model, buf, sizeof(buf));
		ops_expect(c->nfs, "fsync c", nfs_fsync(c->nfs, fh), 0);
		nfs_close(c->nfs, fh);
	}

	rc = ops_raw_lookup(c->rpc, &c->work, "c", &lk);
	ops_say("raw-lookup c %s status=%s type=%u", ops_errname(rc), ops_errname(lk.stat), lk.type);
	if (rc < 0 || lk.stat != NFS3_OK) {
		ops_bad("raw-lookup", "c not found");
		return;
	}
	ops_fill(buf, 4096, 4);
	rc = ops_raw_write(c->rpc, &lk.fh, 100, (char *)buf, 4096, UNSTABLE, &wr);
	memcpy(c->model + 100, buf, 4096);
	ops_say("raw-write-unstable c %s status=%s count=%u size=%" PRIu64, ops_errname(rc),
		ops_errname(wr.stat), wr.count, wr.size_after);
	if (rc < 0 || wr.stat != NFS3_OK || wr.count != 4096)
		ops_bad("raw-write-unstable", "failed or short");

	memset(&cr, 0, sizeof(cr));
	ca.file = ops_fh3(&lk.fh);
	ca.offset = 0;
	ca.count = 0;
	rc = rpc_nfs3_commit_async(c->rpc, ops_raw_cb, &ca, &w) < 0 ? -EIO : ops_raw_wait(c->rpc, &w);
	ops_say("raw-commit c %s status=%s verf_match=%d", ops_errname(rc), ops_errname(cr.stat),
		memcmp(cr.verf, wr.verf, sizeof(cr.verf)) == 0);
	if (rc < 0 || cr.stat != NFS3_OK || memcmp(cr.verf, wr.verf, sizeof(cr.verf)) != 0)
		ops_bad("raw-commit", "failed or verifier changed");

	ops_fill(buf, 1000, 5);
	rc = ops_raw_write(c->rpc, &lk.fh, 69000, (char *)buf, 1000, FILE_SYNC, &wr);
	memcpy(c->model + 69000, buf, 1000);
	ops_say("raw-write-filesync c %s status=%s count=%u committed=%u", ops_errname(rc),
		ops_errname(wr.stat), wr.count, wr.committed);
	if (rc < 0 || wr.stat != NFS3_OK || wr.committed != FILE_SYNC)
		ops_bad("raw-write-filesync", "not committed as FILE_SYNC");
	ops_check_data(c->nfs, "read", "c", c->model, c->model_len);
}

static const char *ops_ftype3(unsigned t)
{
	static const char *names[] = { "?", "reg", "dir", "blk", "chr", "lnk", "sock", "fifo" };

	return t < 8 ? names[t] : "?";
}

static int ops_cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* READDIRPLUS via libnfs's opendir; one line per entry, sorted. "." and
 * ".." only by name: their attributes depend on the rest of the export. */
static void ops_readdirplus(struct ops_ctx *c, const char *rel, int verbose, int want)
{
	static char lines[OPS_MAX_NAMES][200];
	struct nfsdir *dir = NULL;
	struct nfsdirent *e;
	int n = 0;

	if (ops_expect(c->nfs, "opendir", nfs_opendir(c->nfs, ops_path(rel), &dir), 0) < 0)
		return;
	while ((e = nfs_readdir(c->nfs, dir)) != NULL && n < OPS_MAX_NAMES) {
		if (strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0)
			snprintf(lines[n++], sizeof(lines[0]), "%s", e->name);
		else
			snprintf(lines[n++], sizeof(lines[0]),
				 "%s type=%s mode=%04o nlink=%u uid=%u gid=%u size=%" PRIu64,
				 e->name, ops_ftype3(e->type), e->mode & 07777, e->nlink,
				 e->uid, e->gid, e->type == NF3DIR ? 0 : e->size);
	}
	nfs_closedir(c->nfs, dir);
	qsort(lines, n, sizeof(lines[0]), ops_cmp_name);
	if (verbose)
		for (int i = 0; i < n; i++)
			ops_say("readdirplus %s: %s", rel, lines[i]);
	ops_say("readdirplus %s entries=%d", rel, n);
	if (want >= 0 && n != want)
		ops_bad("readdirplus", "%s: %d entries, want %d", rel, n, want);
}

/* Plain READDIR with a small COUNT so the listing takes several pages and
 * the cookie/cookieverf dance is exercised. Returns the page count. */
static int ops_readdir_raw(struct ops_ctx *c, struct ops_fh *dirfh, unsigned count,
			   struct ops_readdir_res *res)
{
	int pages = 0;

	memset(res, 0, sizeof(*res));
	while (!res->eof && pages < 1000) {
		READDIR3args a;
		struct ops_wait w = { 0, 0, ops_take_readdir, res };

		memset(&a, 0, sizeof(a));
		a.dir = ops_fh3(dirfh);
		a.cookie = res->cookie;
		memcpy(a.cookieverf, res->verf, sizeof(a.cookieverf));
		a.count = count;
		if (rpc_nfs3_readdir_async(c->rpc, ops_raw_cb, &a, &w) < 0 ||
		    ops_raw_wait(c->rpc, &w) < 0 || res->stat != NFS3_OK)
			return -EIO;
		pages++;
	}
	return pages;
}

static void ops_step_readdir(struct ops_ctx *c)
{
	struct ops_readdir_res *rd = calloc(1, sizeof(*rd));
	struct ops_lookup_res lk;
	struct nfsfh *fh = NULL;
	char name[64];
	int pages;

	/* W holds . .. c d s p e pub */
	ops_readdirplus(c, ".", 1, 8);
	pages = ops_readdir_raw(c, &c->work, 8192, rd);
	qsort(rd->names, rd->n, sizeof(rd->names[0]), ops_cmp_name);
	for (int i = 0; i < rd->n; i++)
		ops_say("readdir .: %s", rd->names[i]);
	ops_say("readdir . %s entries=%d", pages > 0 ? "OK" : "EIO", rd->n);
	ops_want("readdir", "entries in .", rd->n, 8);

	ops_expect(c->nfs, "mkdir many", nfs_mkdir2(c->nfs, ops_path("many"), 0755), 0);
	for (int i = 0; i < OPS_MANY; i++) {
		snprintf(name, sizeof(name), "many/file-with-a-longish-name-%02d", i);
		if (nfs_creat(c->nfs, ops_path(name), 0644, &fh) < 0)
			ops_bad("creat", "%s: %s", name, nfs_get_error(c->nfs));
		else
			nfs_close(c->nfs, fh);
	}
	ops_say("creat many/* count=%d", OPS_MANY);
	ops_readdirplus(c, "many", 0, OPS_MANY + 2);
	if (ops_raw_lookup(c->rpc, &c->work, "many", &lk) < 0 || lk.stat != NFS3_OK) {
		ops_bad("raw-lookup", "many not found");
	} else {
		pages = ops_readdir_raw(c, &lk.fh, 512, rd);
		qsort(rd->names, rd->n, sizeof(rd->names[0]), ops_cmp_name);
		uint64_t h = 0;
		for (int i = 0; i < rd->n; i++)
			h ^= ops_fnv(rd->names[i], strlen(rd->names[i])) * (i + 1);
		ops_say("readdir many entries=%d paged=%d names=%016" PRIx64, rd->n, pages > 1, h);
		ops_want("readdir", "entries in many", rd->n, OPS_MANY + 2);
		ops_want("readdir", "paged", pages > 1, 1);
	}
	ops_expect(c->nfs, "rmdir-nonempty many", nfs_rmdir(c->nfs, ops_path("many")), -ENOTEMPTY);
	for (int i = 0; i < OPS_MANY; i++) {
		snprintf(name, sizeof(name), "many/file-with-a-longish-name-%02d", i);
		if (nfs_unlink(c->nfs, ops_path(name)) < 0)
			ops_bad("unlink", "%s: %s", name, nfs_get_error(c->nfs));
	}
	ops_say("unlink many/* count=%d", OPS_MANY);
	ops_expect(c->nfs, "rmdir many", nfs_rmdir(c->nfs, ops_path("many")), 0);
	free(rd);
}

/* NULL, FSSTAT (also through statvfs), FSINFO, PATHCONF. Free-space
 * numbers change all the time: only their consistency is printed. */
static void ops_step_fs(struct ops_ctx *c)
{
	struct nfs_statvfs_64 sv;
	struct ops_fsx_res r;
	struct ops_wait w = { 0 };
	FSSTAT3args fa = { ops_fh3(&c->root) };
	FSINFO3args ia = { ops_fh3(&c->root) };
	PATHCONF3args pa = { ops_fh3(&c->work) };
	int rc;

	rc = rpc_nfs3_null_async(c->rpc, ops_raw_cb, &w) < 0 ? -EIO : ops_raw_wait(c->rpc, &w);
	ops_expect(NULL, "raw-null", rc, 0);

	rc = nfs_statvfs64(c->nfs, ops_path("."), &sv);
	ops_say("statvfs %s sane=%d", ops_errname(rc),
		rc == 0 && sv.f_blocks >= sv.f_bfree && sv.f_bfree >= sv.f_bavail &&
		sv.f_files >= sv.f_ffree);
	if (rc < 0)
		ops_bad("statvfs", "%s", nfs_get_error(c->nfs));

	memset(&r, 0, sizeof(r));
	w = (struct ops_wait){ 0, 0, ops_take_fsstat, &r };
	rc = rpc_nfs3_fsstat_async(c->rpc, ops_raw_cb, &fa, &w) < 0 ? -EIO : ops_raw_wait(c->rpc, &w);
	FSSTAT3resok *fs = &r.u.fsstat;
	ops_say("raw-fsstat %s status=%s sane=%d invarsec=%u", ops_errname(rc), ops_errname(r.stat),
		fs->tbytes >= fs->fbytes && fs->fbytes >= fs->abytes && fs->tfiles >= fs->ffiles,
		fs->invarsec);
	if (rc < 0 || r.stat != NFS3_OK)
		ops_bad("raw-fsstat", "failed");

	memset(&r, 0, sizeof(r));
	w = (struct ops_wait){ 0, 0, ops_take_fsinfo, &r };
	rc = rpc_nfs3_fsinfo_async(c->rpc, ops_raw_cb, &ia, &w) < 0 ? -EIO : ops_raw_wait(c->rpc, &w);
	FSINFO3resok *fi = &r.u.fsinfo;
	/* Transfer sizes get their own line: a proxy may lower them (it
	 * bounds its record size), which the tests allow for. */
	ops_say("raw-fsinfo %s status=%s rtmult=%u wtmult=%u maxfilesize=%" PRIu64
		" time_delta=%u.%09u properties=0x%x", ops_errname(rc), ops_errname(r.stat),
		fi->rtmult, fi->wtmult, fi->maxfilesize, fi->time_delta.seconds,
		fi->time_delta.nseconds, fi->properties);
	ops_say("raw-fsinfo-sizes rtmax=%u rtpref=%u wtmax=%u wtpref=%u dtpref=%u",
		fi->rtmax, fi->rtpref, fi->wtmax, fi->wtpref, fi->dtpref);
	if (rc < 0 || r.stat != NFS3_OK || fi->rtmax == 0 || fi->wtmax == 0)
		ops_bad("raw-fsinfo", "failed");

	memset(&r, 0, sizeof(r));
	w = (struct ops_wait){ 0, 0, ops_take_pathconf, &r };
	rc = rpc_nfs3_pathconf_async(c->rpc, ops_raw_cb, &pa, &w) < 0 ? -EIO : ops_raw_wait(c->rpc, &w);
	PATHCONF3resok *pc = &r.u.pathconf;
	ops_say("raw-pathconf %s status=%s linkmax=%u name_max=%u no_trunc=%u "
		"chown_restricted=%u case_insensitive=%u case_preserving=%u",
		ops_errname(rc), ops_errname(r.stat), pc->linkmax, pc->name_max, pc->no_trunc,
		pc->chown_restricted, pc->case_insensitive, pc->case_preserving);
	if (rc < 0 || r.stat != NFS3_OK || pc->name_max == 0)
		ops_bad("raw-pathconf", "failed");
}

/* Error replies must come back as the same errno. */
static void ops_step_errors(struct ops_ctx *c)
{
	struct nfs_stat_64 st;
	struct ops_lookup_res lk;
	int rc;

	ops_expect(c->nfs, "lookup missing", nfs_lstat64(c->nfs, ops_path("missing"), &st), -ENOENT);
	ops_expect(c->nfs, "lookup c/x", nfs_lstat64(c->nfs, ops_path("c/x"), &st), -ENOTDIR);
	ops_expect(c->nfs, "unlink missing", nfs_unlink(c->nfs, ops_path("missing")), -ENOENT);
	ops_expect(c->nfs, "rename missing", nfs_rename(c->nfs, ops_path("missing"), ops_path("m2")), -ENOENT);
	ops_expect(c->nfs, "rmdir-nonempty .", nfs_rmdir(c->nfs, ops_path(".")), -ENOTEMPTY);
	ops_expect(c->nfs, "rmdir-file c", nfs_rmdir(c->nfs, ops_path("c")), -ENOTDIR);
	ops_expect(c->nfs, "mkdir-existing c", nfs_mkdir2(c->nfs, ops_path("c"), 0755), -EEXIST);
	ops_expect(c->nfs, "link-existing c d", nfs_link(c->nfs, ops_path("c"), ops_path("d")), -EEXIST);
	/* Servers differ in which error they give; only "some error" is required. */
	rc = nfs_unlink(c->nfs, ops_path("pub"));
	ops_say("unlink-dir pub %s", ops_errname(rc));
	if (rc == 0)
		ops_bad("unlink-dir", "removing a directory with REMOVE succeeded");
	rc = ops_raw_lookup(c->rpc, &c->work, "missing", &lk);
	ops_say("raw-lookup missing %s status=%s", ops_errname(rc), ops_errname(lk.stat));
	if (rc < 0 || lk.stat != NFS3ERR_NOENT)
		ops_bad("raw-lookup", "missing: want NFS3ERR_NOENT");
}

/* Leave the documented final state and prove it by listing once more. */
static void ops_step_final(struct ops_ctx *c)
{
	ops_readdirplus(c, ".", 1, 8);
	ops_readdirplus(c, "pub", 1, 3);
}

static int ops_run(struct ops_ctx *c, const char *workdir)
{
	struct ops_lookup_res lk;
	char work[300];

	snprintf(work, sizeof(work), "/%s", workdir);
	ops_work = work;
	if (ops_step_mount(c) < 0)
		return -1;
	c->rpc = ops_raw_connect(c->host, c->nfsport, NFS_PROGRAM, NFS_V3);
	c->nfs = ops_mount(c->url, -1, -1);
	if (!c->rpc || !c->nfs) {
		ops_bad("connect", "cannot reach the NFS service");
		return -1;
	}
	ops_step_mkdir(c);
	if (ops_raw_lookup(c->rpc, &c->root, workdir, &lk) < 0 || lk.stat != NFS3_OK) {
		ops_bad("raw-lookup", "work dir not found");
		return -1;
	}
	c->work = lk.fh;
	ops_say("raw-lookup . type=%s", ops_ftype3(lk.type));
	ops_step_write_read(c);
	ops_step_setattr(c);
	ops_step_rename_link(c);
	ops_step_special(c);
	ops_step_exclusive(c);
	ops_step_access(c);
	ops_step_commit(c);
	ops_step_readdir(c);
	ops_step_fs(c);
	ops_step_errors(c);
	ops_step_final(c);
	ops_step_umount(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct ops_ctx c;
	int rc;

	if (argc != 3 || strchr(argv[2], '/') || !argv[2][0]) {
		fprintf(stderr, "usage: %s nfs://HOST/EXPORT?version=3&nfsport=P&mountport=M WORKDIR\n",
			argv[0]);
		return 2;
	}
	memset(&c, 0, sizeof(c));
	c.url = argv[1];
	if (ops_url_parse(&c) < 0) {
		fprintf(stderr, "nfsops: cannot parse %s (mountport= is required)\n", c.url);
		return 2;
	}
	c.model = malloc(OPS_BIG_LEN);
	if (!c.model)
		return 2;
	rc = ops_run(&c, argv[2]);
	if (c.nfs)
		nfs_destroy_context(c.nfs);
	if (c.rpc)
		rpc_destroy_context(c.rpc);
	if (c.mnt)
		rpc_destroy_context(c.mnt);
	free(c.model);
	ops_say("result %s", rc == 0 && ops_failures == 0 ? "OK" : "FAILED");
	return rc == 0 && ops_failures == 0 ? 0 : 1;
}
