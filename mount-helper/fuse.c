/* mount-helper/fuse.c: the FUSE3 file system of mount.gridvfs — every
 * operation is one libnfs call on a borrowed pool context, made with the
 * caller's AUTH_SYS credentials so the store enforces permissions as it
 * would for a kernel NFS client. High-level (path) API: libnfs's own API
 * is path-based, so paths flow through without an inode table here. */
#define FUSE_USE_VERSION 312
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include "mount-helper/mh.h"

#define NGROUPS_AUTH 16

struct fs {
	struct mh_pool *pool;
	const struct mh_opts *o;
	unsigned io;       /* max READ/WRITE size */
};

/* What an open file carries: the NFS handle, and the opener's credential
 * (reads and writes are made as the opener, like an NFS client does). */
struct ofile {
	struct nfsfh *fh;
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[NGROUPS_AUTH];
	int dirty; /* unstable WRITEs since the last COMMIT */
};

struct odir {
	struct nfsdir *dir;
	int fresh;              /* dir was read by opendir, not yet walked */
	off_t pos;              /* index of cur */
	struct nfsdirent *cur;  /* next entry to return */
};

struct cred {
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[NGROUPS_AUTH];
};

static struct fs *fs_get(void)
{
	return fuse_get_context()->private_data;
}

static void cred_caller(struct cred *c)
{
	struct fuse_context *fc = fuse_get_context();

	c->uid = fc->uid;
	c->gid = fc->gid;
	/* root needs no groups; others' come from /proc (one read per call). */
	c->ngroups = fc->uid ? fuse_getgroups(NGROUPS_AUTH, c->groups) : 0;
	if (c->ngroups < 0 || c->ngroups > NGROUPS_AUTH)
		c->ngroups = c->ngroups < 0 ? 0 : NGROUPS_AUTH;
}

static struct nfs_context *nfs_caller(void)
{
	struct cred c;

	cred_caller(&c);
	return mh_pool_get(fs_get()->pool, c.uid, c.gid, c.ngroups, c.groups);
}

static struct nfs_context *nfs_opener(const struct ofile *f)
{
	return mh_pool_get(fs_get()->pool, f->uid, f->gid, f->ngroups, f->groups);
}

static void nfs_done(struct nfs_context *nfs)
{
	mh_pool_put(fs_get()->pool, nfs);
}

static struct fs *fs_get(void);

/* libnfs returns -errno (NFS3ERR_PERM is -1 = -EPERM), so it passes
 * through unchanged. (libnfs also returns a bare -1 when it cannot even
 * queue a call — out of memory — which then reads as EPERM; it cannot be
 * told apart, and a real EPERM is by far the common case.) */
static int err(int rc)
{
	/* soft: libnfs ends a call that got no reply within its timeout
	 * with -EINTR; nfs(5) says a soft mount fails it with EIO. */
	if ((rc == -EINTR || rc == -ETIMEDOUT) && mh_pool_soft_ms(fs_get()->pool))
		return -EIO;
	return rc;
}

/*
 * NFS3ERR_JUKEBOX ("try again later": ganesha in its grace period, a
 * store fetching a file) reaches us from libnfs as -EAGAIN. A kernel NFS
 * client never hands that to open(2): it waits and resends. So do we,
 * from 100 ms doubling to 5 s (the kernel's NFS_JUKEBOX_RETRY_TIME), for
 * as long as the store says so, like a hard mount.
 */
static void jukebox_wait(unsigned *ms, const char *what)
{
	struct timespec ts = { (time_t)(*ms / 1000), (long)(*ms % 1000) * 1000000L };

	if (*ms == 100)
		syslog(LOG_INFO, "%s: store busy (NFS3ERR_JUKEBOX), retrying", what);
	nanosleep(&ts, NULL);
	*ms = *ms * 2 > 5000 ? 5000 : *ms * 2;
}

#define JUKEBOX_RETRY(rc, what, call)                                       \
	do {                                                                 \
		unsigned jb_ms_ = 100;                                       \
		while (((rc) = (call)) == -EAGAIN)                           \
			jukebox_wait(&jb_ms_, (what));                       \
	} while (0)

/*
 * Hard links. The high-level FUSE API gives every path its own kernel
 * inode, so after `ln a b` or `rm b` the kernel still holds a's old
 * attributes (nlink, ctime) for attr_timeout: stat shows nlink 1 after
 * a link. We remember the names seen with nlink > 1 (getattr, readdir
 * attributes, link) by fileid, and when a call changes such a file
 * through one name, tell the kernel to drop the cached attributes of
 * all its other names. Names are few (only multiply-linked files), so
 * a small ring with linear scans is enough; an evicted or stale name
 * costs at most one attribute timeout, as before.
 */
#define LINKS_MAX 1024

static struct {
	pthread_mutex_t mu;
	unsigned next;
	struct { uint64_t ino; char *path; } e[LINKS_MAX];
} links = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void links_note(const char *path, uint64_t ino, uint64_t nlink, mode_t mode)
{
	unsigned i, slot;

	if (!path || nlink < 2 || S_ISDIR(mode))
		return;
	pthread_mutex_lock(&links.mu);
	for (i = 0; i < LINKS_MAX; i++)
		if (links.e[i].path && !strcmp(links.e[i].path, path))
			break;
	if (i < LINKS_MAX) {
		links.e[i].ino = ino;
	} else {
		slot = links.next++ % LINKS_MAX;
		free(links.e[slot].path);
		links.e[slot].path = strdup(path);
		links.e[slot].ino = ino;
	}
	pthread_mutex_unlock(&links.mu);
}

/* The fileid last seen for path (0: not multiply linked, as far as we
 * know); forget removes the name. */
static uint64_t links_ino(const char *path, int forget)
{
	uint64_t ino = 0;

	if (!path)
		return 0;
	pthread_mutex_lock(&links.mu);
	for (unsigned i = 0; i < LINKS_MAX; i++) {
		if (!links.e[i].path || strcmp(links.e[i].path, path))
			continue;
		ino = links.e[i].ino;
		if (forget) {
			free(links.e[i].path);
			links.e[i].path = NULL;
		}
		break;
	}
	pthread_mutex_unlock(&links.mu);
	return ino;
}

/* Drop the kernel's attributes of every known name of ino but except.
 * The names are copied first: fuse_invalidate_path must not run under
 * our lock (it takes libfuse's tree lock). It also drops those inodes'
 * page cache, which takes their page locks: never call it for the inode
 * the current operation works on (a truncate or write holds its locks;
 * the kernel refreshes that one from our reply anyway) — hence except,
 * and the forgetting of unlinked/renamed names before the call. */
static void links_invalidate(uint64_t ino, const char *except)
{
	char *names[16];
	int n = 0;

	if (!ino)
		return;
	pthread_mutex_lock(&links.mu);
	for (unsigned i = 0; i < LINKS_MAX && n < 16; i++)
		if (links.e[i].path && links.e[i].ino == ino &&
		    (!except || strcmp(links.e[i].path, except)))
			names[n++] = strdup(links.e[i].path);
	pthread_mutex_unlock(&links.mu);
	for (int i = 0; i < n; i++) {
		if (names[i])
			fuse_invalidate_path(fuse_get_context()->fuse, names[i]);
		free(names[i]);
	}
}

static void stat_from_nfs(struct stat *st, const struct nfs_stat_64 *n)
{
	memset(st, 0, sizeof(*st));
	st->st_dev = (dev_t)n->nfs_dev;
	st->st_ino = (ino_t)n->nfs_ino;
	st->st_mode = (mode_t)n->nfs_mode;
	st->st_nlink = (nlink_t)n->nfs_nlink;
	st->st_uid = (uid_t)n->nfs_uid;
	st->st_gid = (gid_t)n->nfs_gid;
	st->st_rdev = (dev_t)n->nfs_rdev;
	st->st_size = (off_t)n->nfs_size;
	st->st_blksize = fs_get()->io;
	st->st_blocks = (blkcnt_t)((n->nfs_used + 511) / 512);
	st->st_atim.tv_sec = (time_t)n->nfs_atime;
	st->st_atim.tv_nsec = (long)n->nfs_atime_nsec;
	st->st_mtim.tv_sec = (time_t)n->nfs_mtime;
	st->st_mtim.tv_nsec = (long)n->nfs_mtime_nsec;
	st->st_ctim.tv_sec = (time_t)n->nfs_ctime;
	st->st_ctim.tv_nsec = (long)n->nfs_ctime_nsec;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct nfs_stat_64 n;
	struct nfs_context *nfs = nfs_caller();
	int rc;

	if (fi && fi->fh)
		JUKEBOX_RETRY(rc, "fstat64", nfs_fstat64(nfs, ((struct ofile *)(uintptr_t)fi->fh)->fh, &n));
	else
		JUKEBOX_RETRY(rc, "lstat64", nfs_lstat64(nfs, path, &n));
	nfs_done(nfs);
	if (rc)
		return err(rc);
	stat_from_nfs(st, &n);
	links_note(path, n.nfs_ino, n.nfs_nlink, (mode_t)n.nfs_mode);
	return 0;
}

static int fs_access(const char *path, int mask)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	JUKEBOX_RETRY(rc, "access", nfs_access(nfs, path, mask));
	nfs_done(nfs);
	return err(rc);
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	struct nfs_context *nfs = nfs_caller();
	char *target = NULL;
	int rc;

	JUKEBOX_RETRY(rc, "readlink2", nfs_readlink2(nfs, path, &target));
	nfs_done(nfs);
	if (rc)
		return err(rc);
	snprintf(buf, size, "%s", target);
	free(target);
	return 0;
}

static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct nfs_context *nfs = nfs_caller();
	struct nfsfh *fh = NULL;
	int rc;

	if (S_ISREG(mode)) {
		JUKEBOX_RETRY(rc, "creat", nfs_creat(nfs, path, (int)(mode & 07777), &fh));
		if (!rc)
			nfs_close(nfs, fh);
	} else {
		JUKEBOX_RETRY(rc, "mknod", nfs_mknod(nfs, path, (int)mode, (int)rdev));
	}
	nfs_done(nfs);
	return err(rc);
}

static int fs_mkdir(const char *path, mode_t mode)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	JUKEBOX_RETRY(rc, "mkdir2", nfs_mkdir2(nfs, path, (int)(mode & 07777)));
	nfs_done(nfs);
	return err(rc);
}

static int fs_unlink(const char *path)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	JUKEBOX_RETRY(rc, "unlink", nfs_unlink(nfs, path));
	nfs_done(nfs);
	if (!rc)
		links_invalidate(links_ino(path, 1), NULL);
	return err(rc);
}

static int fs_rmdir(const char *path)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	JUKEBOX_RETRY(rc, "rmdir", nfs_rmdir(nfs, path));
	nfs_done(nfs);
	return err(rc);
}

static int fs_symlink(const char *target, const char *path)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	JUKEBOX_RETRY(rc, "symlink", nfs_symlink(nfs, target, path));
	nfs_done(nfs);
	/* libnfs 4.0 encodes a call into a 4096-byte buffer: a target over
	 * about 3.8 KB (less the name, handle and credential) does not fit
	 * and comes back as -ENOMEM. The store takes up to its PATH_MAX;
	 * to the caller this is a too-long target, not a lack of memory. */
	if (rc == -ENOMEM && strlen(target) > 2048)
		rc = -ENAMETOOLONG;
	return err(rc);
}

/* NFSv3 RENAME always replaces; NOREPLACE/EXCHANGE cannot be atomic. */
static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct nfs_context *nfs;
	int rc;

	if (flags)
		return -EINVAL;
	nfs = nfs_caller();
	JUKEBOX_RETRY(rc, "rename", nfs_rename(nfs, from, to));
	nfs_done(nfs);
	if (!rc) {
		/* A replaced target lost a link; the moved file's other
		 * names got a new ctime. */
		links_invalidate(links_ino(to, 1), NULL);
		links_invalidate(links_ino(from, 1), NULL);
	}
	return err(rc);
}

static int fs_link(const char *from, const char *to)
{
	struct nfs_context *nfs = nfs_caller();
	struct nfs_stat_64 n = { 0 };
	int rc;

	JUKEBOX_RETRY(rc, "link", nfs_link(nfs, from, to));
	/* The kernel refreshes the new name from the reply; the old one
	 * (another kernel inode here) would keep nlink 1: note both and
	 * invalidate all names of the file. */
	if (!rc && !nfs_lstat64(nfs, from, &n)) {
		links_note(from, n.nfs_ino, n.nfs_nlink, (mode_t)n.nfs_mode);
		links_note(to, n.nfs_ino, n.nfs_nlink, (mode_t)n.nfs_mode);
	}
	nfs_done(nfs);
	if (!rc)
		links_invalidate(n.nfs_ino, to);
	return err(rc);
}

/*
 * Before a write or truncate by a caller without CAP_FSETID, a kernel
 * that was not told FUSE_CAP_HANDLE_KILLPRIV sends a chmod clearing
 * setuid (and setgid if group-exec) itself, as the writer. A writer who
 * is not the owner (a group member) may write the file but not chmod
 * it: the store refuses, and the write failed with EPERM. The NFS store
 * clears the bits itself on the WRITE or SETATTR(size) that follows (as
 * it does for a kernel NFS client), so such a refused chmod that only
 * drops those bits is not an error. A root helper (whose mount has
 * default_permissions, so a chmod(2) by a non-owner never gets here)
 * makes the chmod as root, as the kernel does for a local file system,
 * so the attributes the kernel caches now are already right; if the
 * store refuses root too (root squash), the bits go with the write.
 */
static int killpriv_chmod(struct nfs_context *nfs, const char *path, mode_t mode)
{
	const mode_t priv = S_ISUID | S_ISGID;
	struct nfs_stat_64 n;
	mode_t old;

	if (nfs_lstat64(nfs, path, &n) || !fuse_get_context()->uid ||
	    fuse_get_context()->uid == (uid_t)n.nfs_uid)
		return 0;
	old = (mode_t)n.nfs_mode & 07777;
	mode &= 07777;
	return (mode & ~priv) == (old & ~priv) && (mode & priv) != (old & priv) &&
	       !(mode & ~old);
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	if (fi && fi->fh)
		JUKEBOX_RETRY(rc, "fchmod", nfs_fchmod(nfs, ((struct ofile *)(uintptr_t)fi->fh)->fh, (int)(mode & 07777)));
	else
		JUKEBOX_RETRY(rc, "chmod", nfs_chmod(nfs, path, (int)(mode & 07777)));
	if (rc == -EPERM && killpriv_chmod(nfs, path, mode)) {
		rc = 0;
		if (geteuid() == 0) {
			nfs_done(nfs);
			nfs = mh_pool_get(fs_get()->pool, 0, 0, 0, NULL);
			nfs_chmod(nfs, path, (int)(mode & 07777));
		}
	}
	nfs_done(nfs);
	if (!rc)
		links_invalidate(links_ino(path, 0), path);
	return err(rc);
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	(void)fi;
	JUKEBOX_RETRY(rc, "lchown", nfs_lchown(nfs, path, (int)uid, (int)gid));
	nfs_done(nfs);
	if (!rc)
		links_invalidate(links_ino(path, 0), path);
	return err(rc);
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct nfs_context *nfs = nfs_caller();
	int rc;

	if (fi && fi->fh)
		JUKEBOX_RETRY(rc, "ftruncate", nfs_ftruncate(nfs, ((struct ofile *)(uintptr_t)fi->fh)->fh, (uint64_t)size));
	else
		JUKEBOX_RETRY(rc, "truncate", nfs_truncate(nfs, path, (uint64_t)size));
	nfs_done(nfs);
	if (!rc)
		links_invalidate(links_ino(path, 0), path);
	return err(rc);
}

/* libnfs sets both times in microseconds from the client clock; OMIT
 * needs the current value, NOW the client's time (as utimensat would). */
static int fs_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct nfs_context *nfs = nfs_caller();
	struct nfs_stat_64 n;
	struct timeval t[2], now;
	int rc = 0;

	(void)fi;
	gettimeofday(&now, NULL);
	if (tv[0].tv_nsec == UTIME_OMIT || tv[1].tv_nsec == UTIME_OMIT)
		JUKEBOX_RETRY(rc, "lstat64", nfs_lstat64(nfs, path, &n));
	for (int i = 0; i < 2 && !rc; i++) {
		if (tv[i].tv_nsec == UTIME_NOW) {
			t[i] = now;
		} else if (tv[i].tv_nsec == UTIME_OMIT) {
			t[i].tv_sec = (time_t)(i ? n.nfs_mtime : n.nfs_atime);
			t[i].tv_usec = (suseconds_t)((i ? n.nfs_mtime_nsec : n.nfs_atime_nsec) / 1000);
		} else {
			t[i].tv_sec = tv[i].tv_sec;
			t[i].tv_usec = tv[i].tv_nsec / 1000;
		}
	}
	if (!rc)
		JUKEBOX_RETRY(rc, "lutimes", nfs_lutimes(nfs, path, t));
	nfs_done(nfs);
	if (!rc)
		links_invalidate(links_ino(path, 0), path);
	return err(rc);
}

static struct ofile *ofile_new(void)
{
	struct ofile *f = calloc(1, sizeof(*f));
	struct cred c;

	if (!f)
		return NULL;
	cred_caller(&c);
	f->uid = c.uid;
	f->gid = c.gid;
	f->ngroups = c.ngroups;
	memcpy(f->groups, c.groups, sizeof(f->groups));
	return f;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct ofile *f = ofile_new();
	struct nfs_context *nfs;
	int rc;

	if (!f)
		return -ENOMEM;
	nfs = nfs_opener(f);
	JUKEBOX_RETRY(rc, "open", nfs_open(nfs, path, fi->flags & ~(O_CREAT | O_EXCL | O_NOCTTY), &f->fh));
	nfs_done(nfs);
	if (rc) {
		free(f);
		return err(rc);
	}
	fi->fh = (uintptr_t)f;
	return 0;
}

static int fs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct ofile *f = ofile_new();
	struct nfs_context *nfs;
	int rc;

	if (!f)
		return -ENOMEM;
	nfs = nfs_opener(f);
	JUKEBOX_RETRY(rc, "create", nfs_create(nfs, path, fi->flags, (int)(mode & 07777), &f->fh));
	nfs_done(nfs);
	if (rc) {
		free(f);
		return err(rc);
	}
	fi->fh = (uintptr_t)f;
	return 0;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct ofile *f = (struct ofile *)(uintptr_t)fi->fh;
	struct nfs_context *nfs = nfs_opener(f);
	int rc;

	(void)path;
	JUKEBOX_RETRY(rc, "pread", nfs_pread(nfs, f->fh, (uint64_t)off, size, buf));
	nfs_done(nfs);
	return err(rc);
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct ofile *f = (struct ofile *)(uintptr_t)fi->fh;
	struct nfs_context *nfs = nfs_opener(f);
	size_t done = 0;
	int rc = 0;

	(void)path;
	/* A short WRITE3 is legal; carry on until all is written. */
	while (done < size) {
		JUKEBOX_RETRY(rc, "pwrite", nfs_pwrite(nfs, f->fh, (uint64_t)off + done, size - done, buf + done));
		if (rc <= 0)
			break;
		done += (size_t)rc;
	}
	nfs_done(nfs);
	if (done)
		f->dirty = 1;
	return done ? (int)done : rc == 0 ? -EIO : err(rc);
}

/* close(2): COMMIT what this open wrote, so data is stable on the store
 * once close returns (the kernel NFS client's close-to-open rule). */
static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	struct ofile *f = (struct ofile *)(uintptr_t)fi->fh;
	struct nfs_context *nfs;
	int rc;

	(void)path;
	if (!f->dirty)
		return 0;
	nfs = nfs_opener(f);
	JUKEBOX_RETRY(rc, "fsync", nfs_fsync(nfs, f->fh));
	nfs_done(nfs);
	if (!rc)
		f->dirty = 0;
	return err(rc);
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct ofile *f = (struct ofile *)(uintptr_t)fi->fh;
	struct nfs_context *nfs = nfs_opener(f);
	int rc;

	(void)path;
	(void)datasync;
	JUKEBOX_RETRY(rc, "fsync", nfs_fsync(nfs, f->fh));
	nfs_done(nfs);
	if (!rc)
		f->dirty = 0;
	return err(rc);
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	struct ofile *f = (struct ofile *)(uintptr_t)fi->fh;
	struct nfs_context *nfs = nfs_opener(f);

	(void)path;
	nfs_close(nfs, f->fh);
	nfs_done(nfs);
	free(f);
	return 0;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	struct odir *d = calloc(1, sizeof(*d));
	struct nfs_context *nfs;
	int rc;

	if (!d)
		return -ENOMEM;
	nfs = nfs_caller();
	JUKEBOX_RETRY(rc, "opendir", nfs_opendir(nfs, path, &d->dir));
	if (!rc)
		d->cur = nfs_readdir(nfs, d->dir);
	nfs_done(nfs);
	if (rc) {
		free(d);
		return err(rc);
	}
	d->fresh = 1;
	fi->fh = (uintptr_t)d;
	return 0;
}

/* Read the directory again (rewinddir, or a walk that starts later than
 * opendir): entries removed or made since must show, as on a local
 * disk (cthon04 basic test6 unlinks and rewinds). */
static int odir_reread(struct odir *d, const char *path)
{
	struct nfs_context *nfs = nfs_caller();
	struct nfsdir *dir = NULL;
	int rc;

	JUKEBOX_RETRY(rc, "opendir", nfs_opendir(nfs, path, &dir));
	if (!rc) {
		nfs_closedir(nfs, d->dir);
		d->dir = dir;
		d->cur = nfs_readdir(nfs, d->dir);
		d->pos = 0;
	}
	nfs_done(nfs);
	return err(rc);
}

static mode_t dirent_type(uint32_t t)
{
	switch (t) {
	case NF3REG: return S_IFREG;
	case NF3DIR: return S_IFDIR;
	case NF3BLK: return S_IFBLK;
	case NF3CHR: return S_IFCHR;
	case NF3LNK: return S_IFLNK;
	case NF3SOCK: return S_IFSOCK;
	case NF3FIFO: return S_IFIFO;
	default: return 0;
	}
}

static void stat_from_dirent(struct stat *st, const struct nfsdirent *e)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)e->inode;
	st->st_mode = dirent_type(e->type) | (e->mode & 07777);
	st->st_nlink = e->nlink;
	st->st_uid = e->uid;
	st->st_gid = e->gid;
	st->st_size = (off_t)e->size;
	st->st_rdev = (dev_t)e->rdev;
	st->st_blksize = fs_get()->io;
	st->st_blocks = (blkcnt_t)((e->used + 511) / 512);
	st->st_atim.tv_sec = e->atime.tv_sec;
	st->st_atim.tv_nsec = e->atime_nsec;
	st->st_mtim.tv_sec = e->mtime.tv_sec;
	st->st_mtim.tv_nsec = e->mtime_nsec;
	st->st_ctim.tv_sec = e->ctime.tv_sec;
	st->st_ctim.tv_nsec = e->ctime_nsec;
}

/* The whole listing came with opendir (READDIRPLUS); offsets are entry
 * indexes. A walk from offset 0 other than the first after opendir reads
 * the directory again; a resumed listing continues where the last call
 * stopped; any other offset walks from the start (a rare seekdir). */
static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct odir *d = (struct odir *)(uintptr_t)fi->fh;
	struct nfs_context *nfs = NULL;
	struct stat st;

	if (off == 0 && !d->fresh) {
		int rc = odir_reread(d, path);
		if (rc)
			return rc;
	}
	d->fresh = 0;
	if (off != d->pos) {
		nfs = nfs_caller();
		nfs_rewinddir(nfs, d->dir);
		d->cur = nfs_readdir(nfs, d->dir);
		for (d->pos = 0; d->cur && d->pos < off; d->pos++)
			d->cur = nfs_readdir(nfs, d->dir);
		nfs_done(nfs);
	}
	for (; d->cur; ) {
		int plus = (flags & FUSE_READDIR_PLUS) && dirent_type(d->cur->type);
		stat_from_dirent(&st, d->cur);
		if (d->cur->nlink > 1 && path) {
			char full[PATH_MAX];
			snprintf(full, sizeof(full), "%s/%s",
				 strcmp(path, "/") ? path : "", d->cur->name);
			links_note(full, d->cur->inode, d->cur->nlink, st.st_mode);
		}
		if (fill(buf, d->cur->name, &st, d->pos + 1,
			 plus ? FUSE_FILL_DIR_PLUS : 0))
			break;
		d->pos++;
		/* nfs_readdir only walks the in-memory list: no context needed
		 * for the RPC, but the API wants one; any will do. */
		d->cur = d->cur->next;
	}
	return 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct odir *d = (struct odir *)(uintptr_t)fi->fh;
	struct nfs_context *nfs = nfs_caller();

	(void)path;
	nfs_closedir(nfs, d->dir);
	nfs_done(nfs);
	free(d);
	return 0;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	struct nfs_context *nfs = nfs_caller();
	struct nfs_statvfs_64 n;
	int rc;

	JUKEBOX_RETRY(rc, "statvfs64", nfs_statvfs64(nfs, path, &n));
	nfs_done(nfs);
	if (rc)
		return err(rc);
	memset(sv, 0, sizeof(*sv));
	sv->f_bsize = (unsigned long)n.f_bsize;
	sv->f_frsize = (unsigned long)n.f_frsize;
	sv->f_blocks = n.f_blocks;
	sv->f_bfree = n.f_bfree;
	sv->f_bavail = n.f_bavail;
	sv->f_files = n.f_files;
	sv->f_ffree = n.f_ffree;
	sv->f_favail = n.f_favail;
	sv->f_fsid = (unsigned long)n.f_fsid;
	/* libnfs fills in a constant 256; every store file system (and
	 * the proxy) takes 255, so saying 256 makes pathconf() users
	 * create names that fail with ENAMETOOLONG. */
	sv->f_namemax = n.f_namemax && n.f_namemax < NAME_MAX ? (unsigned long)n.f_namemax
							      : NAME_MAX;
	return 0;
}

/* Cache lifetimes from consistency=: strict revalidates within a second
 * and at every open (close-to-open via auto_cache: open getattrs, and a
 * changed mtime/size drops the file's page cache); immutable images keep
 * everything for an hour. */
static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fs *fs = fuse_get_context()->private_data;
	int immutable = fs->o->consistency == MH_CONS_IMMUTABLE;

	/* Writes, truncates and chowns clear setuid/setgid on the store
	 * (the NFS server does it, as for a kernel NFS client). Without
	 * this the kernel instead sends a chmod as the writer first (see
	 * killpriv_chmod). libfuse 3.14 never passes the flag on to the
	 * kernel, later ones do. */
	if (conn->capable & FUSE_CAP_HANDLE_KILLPRIV)
		conn->want |= FUSE_CAP_HANDLE_KILLPRIV;
	conn->max_write = fs->io;
	conn->max_read = fs->io;
	conn->max_readahead = fs->io;
	cfg->use_ino = 1;
	cfg->readdir_ino = 1;
	cfg->nullpath_ok = 0;
	cfg->attr_timeout = immutable ? 3600 : 1;
	cfg->entry_timeout = immutable ? 3600 : 1;
	cfg->negative_timeout = immutable ? 60 : 0;
	cfg->ac_attr_timeout_set = 0;
	cfg->auto_cache = !immutable;
	cfg->kernel_cache = immutable;
	return fs;
}

static const struct fuse_operations fs_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.access = fs_access,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.truncate = fs_truncate,
	.utimens = fs_utimens,
	.open = fs_open,
	.create = fs_create,
	.read = fs_read,
	.write = fs_write,
	.flush = fs_flush,
	.fsync = fs_fsync,
	.release = fs_release,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.statfs = fs_statfs,
};

/* The device ("0:39") of the mount on dir, from mountinfo (a stat() of
 * the mount point would wait for the FUSE loop); with want set, only
 * whether a mount of that device is still on dir. 1 found, 0 not. */
static int mount_dev(const char *dir, char dev[32], const char *want)
{
	char line[4096], mp[PATH_MAX], d[32];
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %31s %*s %4095s", d, mp) == 2 &&
			!strcmp(mp, dir) && (!want || !strcmp(d, want));
	fclose(f);
	if (found && dev)
		memcpy(dev, d, 32);
	return found;
}

/* Kernel readahead for FUSE is capped by the bdi's read_ahead_kb (128
 * KiB by default); root can raise it for this mount only. The bdi is named
 * after the mount's device. */
static void set_readahead(const char *dir, unsigned kb)
{
	char dev[32], p[128];
	FILE *f;

	if (!kb || geteuid() != 0 || !mount_dev(dir, dev, NULL))
		return;
	snprintf(p, sizeof(p), "/sys/class/bdi/%s/read_ahead_kb", dev);
	if ((f = fopen(p, "w"))) {
		fprintf(f, "%u\n", kb);
		fclose(f);
	}
}

/*
 * umount -l (and umount -f) must release processes waiting on the mount,
 * even when the proxy behind it does not answer (a hard mount whose
 * proxy= is gone). umount -f aborts the FUSE connection itself; a lazy
 * umount only detaches the mount, and a waiter keeps it alive forever.
 * This thread notices the mount has left the mount table; then, if a
 * call has been waiting for STUCK_MS (nobody is being served), it aborts
 * the connection through fusectl (mounting it if needed, as systemd
 * does at boot): the waiters get ENOTCONN. Processes still using a
 * lazily unmounted but working mount keep it. Once aborted, workers may
 * still be blocked in an NFS call that never ends; the process then
 * exits (its gridvfsd dies with it).
 */
#define STUCK_MS 3000

struct watch {
	const char *dir;
	char dev[32];
	struct fuse_session *se;
	struct mh_pool *pool;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
};

static int fusectl_abort(const char *dev)
{
	const char *ctl = "/sys/fs/fuse/connections";
	unsigned maj, min;
	char p[128];
	FILE *f;

	if (sscanf(dev, "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	/* The connection is named after the device number (MKDEV). */
	snprintf(p, sizeof(p), "%s/%u/abort", ctl, (maj << 20) | min);
	if (access(p, W_OK) && mount("fusectl", ctl, "fusectl", 0, NULL) &&
	    errno != EBUSY)
		return -errno;
	if (!(f = fopen(p, "w")))
		return -errno;
	fputs("1\n", f);
	return fclose(f) ? -errno : 0;
}

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct timespec ts;
	int gone = 0, rc;

	pthread_mutex_lock(&w->mu);
	while (!w->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 500000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		if (w->stop)
			break;
		pthread_mutex_unlock(&w->mu);
		if (!gone && !mount_dev(w->dir, NULL, w->dev)) {
			gone = 1;
			syslog(LOG_INFO, "%s left the mount table", w->dir);
		}
		if (gone && !fuse_session_exited(w->se) &&
		    mh_pool_stuck_ms(w->pool) > STUCK_MS) {
			rc = fusectl_abort(w->dev);
			syslog(LOG_WARNING, "%s unmounted while calls wait for the "
			       "proxy: aborting the FUSE connection%s%s", w->dir,
			       rc ? ": " : "", rc ? strerror(-rc) : "");
			/* The loop ends by itself unless a worker is stuck. */
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			pthread_mutex_lock(&w->mu);
			while (!w->stop &&
			       pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT)
				;
			if (!w->stop) {
				syslog(LOG_WARNING, "calls still blocked in the proxy; exiting");
				_exit(MH_EXIT_OK);
			}
			break;
		}
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static int fuse_args_build(const struct mh_opts *o, unsigned io,
			   struct fuse_args *args)
{
	char optstr[4096];
	struct mh_opts tmp = *o;

	tmp.max_io = io;
	if (mh_fuse_optstr(&tmp, geteuid() == 0, optstr, sizeof(optstr))) {
		fprintf(stderr, "mount.gridvfs: %s: SOURCE must not contain ','\n",
			o->source);
		return MH_EXIT_USAGE;
	}
	if (fuse_opt_add_arg(args, "mount.gridvfs") ||
	    fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, optstr) ||
	    (o->debug && fuse_opt_add_arg(args, "-d")))
		return MH_EXIT_SYSERR;
	if (o->verbose || o->debug)
		fprintf(stderr, "mount.gridvfs: FUSE options %s\n", optstr);
	return 0;
}

int mh_fuse_run(const struct mh_opts *o, struct mh_pool *pool,
		struct mh_proxy *proxy, int ready_fd)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fs fs = { .pool = pool, .o = o };
	struct fuse_loop_config *lc = NULL;
	struct fuse *fuse = NULL;
	struct watch w = { .dir = o->dir, .pool = pool,
			   .mu = PTHREAD_MUTEX_INITIALIZER,
			   .cv = PTHREAD_COND_INITIALIZER };
	pthread_t wt;
	int watching = 0;
	size_t rmax = mh_pool_readmax(pool), wmax = mh_pool_writemax(pool);
	int rc;

	fs.io = o->max_io;
	if (rmax && rmax < fs.io)
		fs.io = (unsigned)rmax;
	if (wmax && wmax < fs.io)
		fs.io = (unsigned)wmax;
	if ((rc = fuse_args_build(o, fs.io, &args)))
		goto out;
	rc = MH_EXIT_FAIL;
	if (!(fuse = fuse_new(&args, &fs_ops, sizeof(fs_ops), &fs))) {
		fprintf(stderr, "mount.gridvfs: FUSE refused the options (see above)\n");
		goto out;
	}
	if (fuse_mount(fuse, o->dir)) {
		fprintf(stderr, "mount.gridvfs: FUSE mount on %s failed (see above)\n", o->dir);
		goto out_destroy;
	}
	if (fuse_set_signal_handlers(fuse_get_session(fuse))) {
		rc = MH_EXIT_SYSERR;
		goto out_unmount;
	}
	set_readahead(o->dir, o->readahead_kb ? o->readahead_kb : 4 * fs.io / 1024);
	syslog(LOG_INFO, "mounted %s on %s (FUSE, io %u, proxy port %u)",
	       o->source, o->dir, fs.io, proxy ? mh_proxy_port(proxy) : 0);
	if (proxy)
		mh_proxy_detach_log(proxy, o->foreground);
	mh_ready(o, ready_fd);
	w.se = fuse_get_session(fuse);
	if (mount_dev(o->dir, w.dev, NULL) &&
	    !pthread_create(&wt, NULL, watch_main, &w))
		watching = 1;
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_max_threads(lc, 2 * (o->conns + 2));
	fuse_loop_cfg_set_idle_threads(lc, o->conns + 2);
	/* Ends on unmount or SIGTERM/SIGINT/SIGHUP; either is a clean end. */
	fuse_loop_mt(fuse, lc);
	rc = MH_EXIT_OK;
	if (watching) {
		pthread_mutex_lock(&w.mu);
		w.stop = 1;
		pthread_cond_broadcast(&w.cv);
		pthread_mutex_unlock(&w.mu);
		pthread_join(wt, NULL);
	}
	fuse_loop_cfg_destroy(lc);
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	syslog(LOG_INFO, "unmounted %s from %s", o->source, o->dir);
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
out:
	fuse_opt_free_args(&args);
	return rc;
}
