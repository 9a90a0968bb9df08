/* nfsrand: pipelined random I/O on one NFS file through libnfs, the way a
 * hypervisor's block layer reads a VM image: DEPTH calls in flight on one
 * connection. Either random BS-sized, BS-aligned READs (or WRITEs with -w)
 * at seeded positions, or a replay of a trace file of "OFFSET LENGTH" lines.
 *
 * usage: nfsrand [-d DEPTH] [-b BS] [-n COUNT] [-s SEED] [-T SECS] [-w]
 *                [-t TRACE] nfs://HOST/EXPORT/FILE?...
 * Prints one line:
 *   ops N bytes B secs S iops I mibs M hash H total_secs T
 * (S, I and M cover the I/O phase; T adds mount and open)
 * where H sums a 64-bit FNV-1a of (offset, data) over every completed read,
 * so two runs of the same trace can be compared whatever order the replies
 * came back in (it is 0 for writes). Exit 0 only if every call succeeded.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#define RAND_MAX_DEPTH 256
#define RAND_MAX_LEN (1024 * 1024)
#define RAND_STALL_S 120 /* no completion for this long = failure, not a hang */

struct rnd_op {
	uint64_t off;
	uint32_t len;
};

struct rnd;

struct rnd_slot {
	struct rnd *r;
	struct rnd_op op;
	char *buf; /* write payload; NULL for reads */
};

struct rnd {
	struct nfs_context *nfs;
	struct nfsfh *fh;
	int write;
	uint64_t size;     /* file size (random mode bound) */
	uint32_t bs;
	uint64_t rng;      /* xorshift64* state */
	struct rnd_op *trace;
	size_t ntrace;
	uint64_t count;    /* ops to issue in total */
	uint64_t issued;
	uint64_t done;
	uint64_t bytes;
	uint64_t hash;
	double deadline;   /* stop issuing after this (0 = none) */
	double io_start, io_end; /* the I/O phase, without mount and open */
	double pump_end;         /* every call answered (before the COMMIT) */
	int inflight;
	int err;
	time_t last_progress;
};

static double rnd_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rnd_next(struct rnd *r)
{
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 2685821657736338717ULL;
}

static uint64_t rnd_fnv(uint64_t off, const unsigned char *p, size_t n)
{
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < 8; i++)
		h = (h ^ ((off >> (8 * i)) & 0xff)) * 1099511628211ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static void rnd_cb(int status, struct nfs_context *nfs, void *data, void *priv);

/* Start the next op on slot S; leaves it idle when the run is over. */
static void rnd_issue(struct rnd_slot *s)
{
	struct rnd *r = s->r;
	int rc;

	if (r->err || r->issued >= r->count ||
	    (r->deadline > 0 && rnd_now() >= r->deadline))
		return;
	if (r->trace) {
		s->op = r->trace[r->issued];
	} else {
		s->op.len = r->bs;
		s->op.off = (rnd_next(r) % (r->size / r->bs)) * r->bs;
	}
	r->issued++;
	if (r->write) {
		for (uint32_t i = 0; i + 8 <= s->op.len; i += 8) {
			uint64_t v = rnd_next(r);

			memcpy(s->buf + i, &v, 8);
		}
		rc = nfs_pwrite_async(r->nfs, r->fh, s->op.off, s->op.len, s->buf, rnd_cb, s);
	} else {
		rc = nfs_pread_async(r->nfs, r->fh, s->op.off, s->op.len, rnd_cb, s);
	}
	if (rc < 0) {
		fprintf(stderr, "nfsrand: queueing at %" PRIu64 ": %s\n", s->op.off,
			nfs_get_error(r->nfs));
		r->err = rc;
		return;
	}
	r->inflight++;
}

static void rnd_cb(int status, struct nfs_context *nfs, void *data, void *priv)
{
	struct rnd_slot *s = priv;
	struct rnd *r = s->r;
	uint64_t want = s->op.len;

	(void)nfs;
	r->inflight--;
	if (status < 0) {
		fprintf(stderr, "nfsrand: %s at %" PRIu64 ": %s\n", r->write ? "write" : "read",
			s->op.off, data ? (const char *)data : "?");
		r->err = status;
		return;
	}
	/* A trace may run past EOF (the image got shorter): only then is a
	 * short read legitimate. */
	if (!r->write && s->op.off + want > r->size)
		want = s->op.off < r->size ? r->size - s->op.off : 0;
	if ((uint64_t)status != want) {
		fprintf(stderr, "nfsrand: short %s at %" PRIu64 ": %d of %" PRIu64 "\n",
			r->write ? "write" : "read", s->op.off, status, want);
		r->err = -EIO;
		return;
	}
	if (!r->write)
		r->hash += rnd_fnv(s->op.off, data, (size_t)status);
	r->done++;
	r->bytes += (uint64_t)status;
	r->last_progress = time(NULL);
	rnd_issue(s);
}

/* Drive libnfs until every slot is idle. */
static int rnd_pump(struct rnd *r, struct rnd_slot *slots, int depth)
{
	for (int i = 0; i < depth; i++)
		rnd_issue(&slots[i]);
	r->last_progress = time(NULL);
	while (r->inflight > 0) {
		struct pollfd pfd = { nfs_get_fd(r->nfs), (short)nfs_which_events(r->nfs), 0 };

		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			return -errno;
		if (nfs_service(r->nfs, pfd.revents) < 0) {
			fprintf(stderr, "nfsrand: %s\n", nfs_get_error(r->nfs));
			return -EIO;
		}
		if (time(NULL) - r->last_progress > RAND_STALL_S) {
			fprintf(stderr, "nfsrand: no progress for %d s\n", RAND_STALL_S);
			return -ETIMEDOUT;
		}
	}
	return r->err;
}

/* Load "OFFSET LENGTH" lines ('#' comments and blank lines allowed). */
static int rnd_trace_load(struct rnd *r, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t cap = 0, lineno = 0;
	int rc = 0;

	if (!f) {
		perror(path);
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long long off, len;
		char c;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "%llu %llu %c", &off, &len, &c) != 2 || len == 0 ||
		    len > RAND_MAX_LEN) {
			fprintf(stderr, "nfsrand: %s:%zu: want \"OFFSET LENGTH\" (LENGTH 1..%d)\n",
				path, lineno, RAND_MAX_LEN);
			rc = -EINVAL;
			goto out;
		}
		if (r->ntrace == cap) {
			struct rnd_op *n;

			cap = cap ? cap * 2 : 1024;
			n = realloc(r->trace, cap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				goto out;
			}
			r->trace = n;
		}
		r->trace[r->ntrace].off = off;
		r->trace[r->ntrace].len = (uint32_t)len;
		r->ntrace++;
	}
	if (r->ntrace == 0) {
		fprintf(stderr, "nfsrand: %s: empty trace\n", path);
		rc = -EINVAL;
	}
out:
	fclose(f);
	return rc;
}

/* Mount the URL's directory, open the file and learn its size. */
static int rnd_open(struct rnd *r, const char *url)
{
	struct nfs_url *u;
	struct nfs_stat_64 st;
	int rc;

	r->nfs = nfs_init_context();
	if (!r->nfs)
		return -ENOMEM;
	u = nfs_parse_url_full(r->nfs, url);
	if (!u) {
		fprintf(stderr, "nfsrand: bad URL %s: %s\n", url, nfs_get_error(r->nfs));
		return -EINVAL;
	}
	rc = nfs_mount(r->nfs, u->server, u->path);
	if (rc == 0)
		rc = nfs_open(r->nfs, u->file, r->write ? O_RDWR : O_RDONLY, &r->fh);
	if (rc == 0 && (rc = nfs_fstat64(r->nfs, r->fh, &st)) == 0)
		r->size = st.nfs_size;
	if (rc < 0)
		fprintf(stderr, "nfsrand: %s: %s\n", url, nfs_get_error(r->nfs));
	nfs_destroy_url(u);
	return rc;
}

static void rnd_usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d DEPTH] [-b BS] [-n COUNT] [-s SEED] [-T SECS] [-w]\n"
			"       %*s [-t TRACE] nfs://HOST/EXPORT/FILE?...\n",
		argv0, (int)strlen(argv0), "");
}

static int rnd_run(struct rnd *r, const char *url, int depth, double secs)
{
	struct rnd_slot slots[RAND_MAX_DEPTH];
	int rc, i;

	rc = rnd_open(r, url);
	if (rc == 0 && !r->trace && r->size < r->bs) {
		fprintf(stderr, "nfsrand: file is smaller than one block\n");
		rc = -EINVAL;
	}
	for (i = 0; rc == 0 && i < depth; i++) {
		slots[i].r = r;
		slots[i].buf = r->write ? malloc(r->trace ? RAND_MAX_LEN : r->bs) : NULL;
		if (r->write && !slots[i].buf)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		r->io_start = rnd_now();
		r->deadline = secs > 0 ? r->io_start + secs : 0;
		rc = rnd_pump(r, slots, depth);
		r->pump_end = rnd_now(); /* every call answered, before COMMIT */
	}
	if (rc == 0 && r->write && (rc = nfs_fsync(r->nfs, r->fh)) < 0)
		fprintf(stderr, "nfsrand: fsync: %s\n", nfs_get_error(r->nfs));
	r->io_end = rnd_now();
	while (i-- > 0)
		free(slots[i].buf);
	if (r->fh && nfs_close(r->nfs, r->fh) < 0 && rc == 0)
		rc = -EIO;
	return rc;
}

int main(int argc, char **argv)
{
	struct rnd r;
	const char *trace = NULL;
	int depth = 32, opt, rc;
	double secs = 0, t0, t1, io, pump;
	long bs = 4096;

	memset(&r, 0, sizeof(r));
	r.count = 10000;
	r.rng = 0x9E3779B97F4A7C15ULL;
	while ((opt = getopt(argc, argv, "d:b:n:s:T:wt:h")) != -1) {
		switch (opt) {
		case 'd': depth = atoi(optarg); break;
		case 'b': bs = atol(optarg); break;
		case 'n': r.count = strtoull(optarg, NULL, 10); break;
		case 's': r.rng ^= strtoull(optarg, NULL, 0) * 0xBF58476D1CE4E5B9ULL; break;
		case 'T': secs = atof(optarg); break;
		case 'w': r.write = 1; break;
		case 't': trace = optarg; break;
		default: rnd_usage(argv[0]); return 2;
		}
	}
	if (optind != argc - 1 || depth < 1 || depth > RAND_MAX_DEPTH || bs < 512 ||
	    bs > RAND_MAX_LEN || (bs & 7) || r.count == 0) {
		rnd_usage(argv[0]);
		return 2;
	}
	if (r.rng == 0)
		r.rng = 1;
	r.bs = (uint32_t)bs;
	if (trace) {
		if (rnd_trace_load(&r, trace) < 0)
			return 2;
		r.count = r.ntrace;
	}
	t0 = rnd_now();
	rc = rnd_run(&r, argv[optind], depth, secs);
	t1 = rnd_now();
	if (r.nfs)
		nfs_destroy_context(r.nfs);
	free(r.trace);
	if (rc < 0) {
		fprintf(stderr, "nfsrand: failed after %" PRIu64 " ops: %s\n", r.done,
			strerror(-rc));
		return 1;
	}
	io = r.io_end - r.io_start;
	pump = r.pump_end - r.io_start;
	printf("ops %" PRIu64 " bytes %" PRIu64 " secs %.3f iops %.0f mibs %.2f hash %016" PRIx64
	       " total_secs %.3f answered_secs %.3f answered_iops %.0f\n",
	       r.done, r.bytes, io, io > 0 ? (double)r.done / io : 0.0,
	       io > 0 ? (double)r.bytes / io / 1048576.0 : 0.0, r.hash, t1 - t0,
	       pump, pump > 0 ? (double)r.done / pump : 0.0);
	return 0;
}
