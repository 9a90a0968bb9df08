/* nfsbig: copy a big file to or from an NFS URL keeping DEPTH READ or WRITE
 * calls of CHUNK bytes in flight on one connection (nfs-cp keeps one), so a
 * proxy's call multiplexing and reply reordering get real load. Prints
 * "put|get BYTES bytes SECS s MIBS MiB/s"; exits 0 only if every byte was
 * acknowledged (put ends with COMMIT via fsync).
 *
 * usage: nfsbig put LOCALFILE nfs://HOST/EXPORT/FILE?... [DEPTH [CHUNK]]
 *        nfsbig get nfs://HOST/EXPORT/FILE?... LOCALFILE [DEPTH [CHUNK]]
 * put creates FILE (it must not exist); get creates LOCALFILE.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#define BIG_MAX_DEPTH 64
#define BIG_STALL_S 120 /* no completion for this long = failure, not a hang */

struct big;

struct big_slot {
	struct big *b;
	uint64_t off;
	size_t len;
	char *buf;
};

struct big {
	struct nfs_context *nfs;
	struct nfsfh *fh;
	int lfd;
	int put;
	uint64_t size;
	uint64_t next;
	uint64_t done;
	size_t chunk;
	int inflight;
	int err;
	time_t last_progress;
};

static void big_cb(int status, struct nfs_context *nfs, void *data, void *priv);

/* Start the next chunk on slot S; leaves it idle when the file is done. */
static void big_issue(struct big_slot *s)
{
	struct big *b = s->b;
	int rc;

	if (b->err || b->next >= b->size)
		return;
	s->off = b->next;
	s->len = b->size - b->next < b->chunk ? b->size - b->next : b->chunk;
	b->next += s->len;
	if (b->put) {
		if (pread(b->lfd, s->buf, s->len, s->off) != (ssize_t)s->len) {
			fprintf(stderr, "nfsbig: local read at %" PRIu64 " failed\n", s->off);
			b->err = -EIO;
			return;
		}
		rc = nfs_pwrite_async(b->nfs, b->fh, s->off, s->len, s->buf, big_cb, s);
	} else {
		rc = nfs_pread_async(b->nfs, b->fh, s->off, s->len, big_cb, s);
	}
	if (rc < 0) {
		fprintf(stderr, "nfsbig: queueing at %" PRIu64 ": %s\n", s->off,
			nfs_get_error(b->nfs));
		b->err = rc;
		return;
	}
	b->inflight++;
}

static void big_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
	struct big_slot *s = priv;
	struct big *b = s->b;

	(void)nfs;
	b->inflight--;
	if (status < 0) {
		fprintf(stderr, "nfsbig: %s at %" PRIu64 ": %s\n", b->put ? "write" : "read",
			s->off, data ? (const char *)data : "?");
		b->err = status;
		return;
	}
	/* libnfs loops over short transfers itself; anything short here is a
	 * lost byte range. */
	if ((size_t)status != s->len) {
		fprintf(stderr, "nfsbig: short %s at %" PRIu64 ": %d of %zu\n",
			b->put ? "write" : "read", s->off, status, s->len);
		b->err = -EIO;
		return;
	}
	if (!b->put && pwrite(b->lfd, data, s->len, s->off) != (ssize_t)s->len) {
		fprintf(stderr, "nfsbig: local write at %" PRIu64 " failed\n", s->off);
		b->err = -EIO;
		return;
	}
	b->done += s->len;
	b->last_progress = time(NULL);
	big_issue(s);
}

/* Drive libnfs until every slot is idle. */
static int big_pump(struct big *b, struct big_slot *slots, int depth)
{
	for (int i = 0; i < depth; i++)
		big_issue(&slots[i]);
	b->last_progress = time(NULL);
	while (b->inflight > 0) {
		struct pollfd pfd = { nfs_get_fd(b->nfs), (short)nfs_which_events(b->nfs), 0 };

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			return -errno;
		if (nfs_service(b->nfs, pfd.revents) < 0) {
			fprintf(stderr, "nfsbig: %s\n", nfs_get_error(b->nfs));
			return -EIO;
		}
		if (time(NULL) - b->last_progress > BIG_STALL_S) {
			fprintf(stderr, "nfsbig: no progress for %d s\n", BIG_STALL_S);
			return -ETIMEDOUT;
		}
	}
	return b->err;
}

/* Mount the URL's directory and open (get) or create (put) its file. */
static int big_open(struct big *b, const char *url)
{
	struct nfs_url *u;
	struct nfs_stat_64 st;
	int rc;

	b->nfs = nfs_init_context();
	if (!b->nfs)
		return -ENOMEM;
	u = nfs_parse_url_full(b->nfs, url);
	if (!u) {
		fprintf(stderr, "nfsbig: bad URL %s: %s\n", url, nfs_get_error(b->nfs));
		return -EINVAL;
	}
	rc = nfs_mount(b->nfs, u->server, u->path);
	if (rc == 0 && b->put)
		rc = nfs_creat(b->nfs, u->file, 0644, &b->fh);
	else if (rc == 0)
		rc = nfs_open(b->nfs, u->file, O_RDONLY, &b->fh);
	if (rc == 0 && !b->put) {
		rc = nfs_fstat64(b->nfs, b->fh, &st);
		b->size = st.nfs_size;
	}
	if (rc < 0)
		fprintf(stderr, "nfsbig: %s: %s\n", url, nfs_get_error(b->nfs));
	nfs_destroy_url(u);
	return rc;
}

static int big_run(struct big *b, const char *local, const char *url, int depth)
{
	struct big_slot slots[BIG_MAX_DEPTH];
	struct stat lst;
	int rc, i;

	b->lfd = b->put ? open(local, O_RDONLY) : open(local, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (b->lfd < 0 || fstat(b->lfd, &lst) < 0) {
		perror(local);
		return -errno;
	}
	if (b->put)
		b->size = lst.st_size;
	rc = big_open(b, url);
	for (i = 0; rc == 0 && i < depth; i++) {
		slots[i].b = b;
		slots[i].buf = b->put ? malloc(b->chunk) : NULL;
		if (b->put && !slots[i].buf)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = big_pump(b, slots, depth);
	if (rc == 0 && b->put && (rc = nfs_fsync(b->nfs, b->fh)) < 0)
		fprintf(stderr, "nfsbig: fsync: %s\n", nfs_get_error(b->nfs));
	if (rc == 0 && b->done != b->size)
		rc = -EIO;
	while (b->put && i-- > 0)
		free(slots[i].buf);
	if (b->fh && nfs_close(b->nfs, b->fh) < 0 && rc == 0)
		rc = -EIO;
	if (!b->put && fsync(b->lfd) < 0 && rc == 0)
		rc = -errno;
	close(b->lfd);
	return rc;
}

int main(int argc, char **argv)
{
	struct big b;
	struct timespec t0, t1;
	int depth = argc > 4 ? atoi(argv[4]) : 8;
	long chunk = argc > 5 ? atol(argv[5]) : 1024 * 1024;
	int put = argc > 1 && strcmp(argv[1], "put") == 0;
	int rc;

	if (argc < 4 || (!put && strcmp(argv[1], "get") != 0) || depth < 1 ||
	    depth > BIG_MAX_DEPTH || chunk < 512 || chunk > 64 * 1024 * 1024) {
		fprintf(stderr, "usage: %s put LOCAL URL [DEPTH [CHUNK]]\n"
				"       %s get URL LOCAL [DEPTH [CHUNK]]\n", argv[0], argv[0]);
		return 2;
	}
	memset(&b, 0, sizeof(b));
	b.put = put;
	b.chunk = chunk;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = put ? big_run(&b, argv[2], argv[3], depth) : big_run(&b, argv[3], argv[2], depth);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (b.nfs)
		nfs_destroy_context(b.nfs);
	if (rc < 0) {
		fprintf(stderr, "nfsbig: %s failed after %" PRIu64 " bytes: %s\n", argv[1],
			b.done, strerror(-rc));
		return 1;
	}
	double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%s %" PRIu64 " bytes %.3f s %.1f MiB/s\n", argv[1], b.done, secs,
	       secs > 0 ? b.done / secs / 1048576.0 : 0.0);
	return 0;
}
