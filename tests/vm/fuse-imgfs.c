/*
 * fuse-imgfs: a minimal read-only FUSE file system exposing one disk image
 * as MOUNTPOINT/disk.img, to check how QEMU's block layer reads through
 * FUSE (O_DIRECT, request sizes) independently of mount.gridvfs.
 *
 *   fuse-imgfs IMAGE MOUNTPOINT [--direct-io] [--log FILE] [FUSE options]
 *
 * --direct-io sets FOPEN_DIRECT_IO on open (page cache bypassed for every
 * open, like mount.gridvfs could do); --log writes "OFFSET LENGTH" per read.
 * The image is read without O_DIRECT, so the backing file may be on tmpfs.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char img_name[] = "/disk.img";
static int img_fd = -1;
static struct stat img_st;
static int img_direct_io;
static FILE *img_log;
static pthread_mutex_t img_log_lock = PTHREAD_MUTEX_INITIALIZER;

static int img_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, img_name) != 0)
		return -ENOENT;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = img_st.st_size;
	st->st_blocks = img_st.st_blocks;
	st->st_mtim = img_st.st_mtim;
	return 0;
}

static int img_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		       off_t off, struct fuse_file_info *fi,
		       enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, img_name + 1, NULL, 0, 0);
	return 0;
}

static int img_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, img_name) != 0)
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	fi->direct_io = img_direct_io;
	fi->keep_cache = !img_direct_io;
	return 0;
}

static int img_read(const char *path, char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t n;

	(void)path;
	(void)fi;
	n = pread(img_fd, buf, size, off);
	if (n < 0)
		return -errno;
	if (img_log) {
		pthread_mutex_lock(&img_log_lock);
		fprintf(img_log, "%lld %zu\n", (long long)off, size);
		fflush(img_log);
		pthread_mutex_unlock(&img_log_lock);
	}
	return (int)n;
}

static const struct fuse_operations img_ops = {
	.getattr = img_getattr,
	.readdir = img_readdir,
	.open = img_open,
	.read = img_read,
};

int main(int argc, char **argv)
{
	char **fargv;
	int fargc = 0, i;

	if (argc < 3) {
		fprintf(stderr, "usage: %s IMAGE MOUNTPOINT [--direct-io] "
			"[--log FILE] [FUSE options]\n", argv[0]);
		return 2;
	}
	img_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
	if (img_fd < 0 || fstat(img_fd, &img_st) < 0) {
		perror(argv[1]);
		return 1;
	}
	fargv = calloc((size_t)argc + 2, sizeof(*fargv));
	if (!fargv)
		return 1;
	fargv[fargc++] = argv[0];
	fargv[fargc++] = argv[2];
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--direct-io") == 0) {
			img_direct_io = 1;
		} else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
			img_log = fopen(argv[++i], "w");
			if (!img_log) {
				perror(argv[i]);
				return 1;
			}
		} else {
			fargv[fargc++] = argv[i];
		}
	}
	return fuse_main(fargc, fargv, &img_ops, NULL);
}
