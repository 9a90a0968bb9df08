/*
 * proxy/prefetch.c — `gridvfs cache prefetch`: warms a running client-role
 * proxy's cache with one file by reading it through the proxy with
 * pipelined READs (an NFSv3 client of our own rpc/ layer, so the CLI needs
 * no NFS library), showing progress.  The data read is thrown away: the
 * proxy keeps it.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rpc/rpc.h"

int prefetch_main(int argc, char **argv);

struct pf {
	int pf_fd;
	uint32_t pf_xid;
	uint32_t pf_uid, pf_gid;
	uint8_t *pf_buf;     /* reply record buffer */
	size_t pf_cap;
};

static const char usage[] =
"usage: gridvfs cache prefetch --proxy HOST:PORT --export PATH FILE\n"
"                              [--depth N] [--chunk BYTES] [--uid N --gid N]\n"
"\n"
"Reads FILE (a path inside the export) through a running client-role\n"
"gridvfsd with N READs of CHUNK bytes in flight (default 16 x 1 MiB), so\n"
"the proxy's cache holds it afterwards.  Reads as uid/gid 0 unless told;\n"
"the proxy serves cached blocks later only to users upstream lets read\n"
"the file.  Progress goes to stderr; exit 0 when the whole file was read.\n";

static int dial(const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	int fd, one = 1;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return -EHOSTUNREACH;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		int err = errno;

		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -err;
	}
	freeaddrinfo(res);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Start a call: header into buf (after 4 bytes of record mark). */
static void call_start(struct pf *p, struct rpc_xdr *x, uint8_t *buf,
		       size_t cap, uint32_t prog, uint32_t proc)
{
	struct rpc_authsys a = {.as_machine_len = 7, .as_machine = "gridvfs",
				.as_uid = p->pf_uid, .as_gid = p->pf_gid};
	uint8_t cred[64];
	struct rpc_xdr cx;

	rpc_xdr_init(&cx, cred, sizeof(cred));
	rpc_authsys_encode(&cx, &a);
	rpc_xdr_init(x, buf + 4, cap - 4);
	rpc_call_build(x, ++p->pf_xid, prog, 3, proc, RPC_AUTH_SYS, cred,
		       (uint32_t)cx.x_pos, RPC_AUTH_NONE, NULL, 0);
}

static int send_call(struct pf *p, uint8_t *buf, struct rpc_xdr *x)
{
	size_t n = x->x_pos + 4;

	rpc_rec_mark(buf, x->x_pos);
	return write(p->pf_fd, buf, n) == (ssize_t)n ? 0 : -EIO;
}

static int read_full(int fd, uint8_t *b, size_t n)
{
	while (n) {
		ssize_t k = read(fd, b, n);

		if (k <= 0)
			return -EIO;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Read one reply record; results at *res (len *rlen); returns its xid. */
static int recv_reply(struct pf *p, uint8_t **res, size_t *rlen,
		      uint32_t *xid)
{
	struct rpc_reply r;
	uint8_t mark[4];
	size_t len;

	if (read_full(p->pf_fd, mark, 4))
		return -EIO;
	len = rpc_get32(mark) & RPC_RM_LENMASK;
	if (!(rpc_get32(mark) & RPC_RM_LAST) || len > p->pf_cap)
		return -EPROTO;
	if (read_full(p->pf_fd, p->pf_buf, len) ||
	    rpc_reply_parse(p->pf_buf, len, &r))
		return -EPROTO;
	*xid = r.r_xid;
	if (r.r_stat != RPC_MSG_ACCEPTED || r.r_accept_stat != RPC_ACC_SUCCESS)
		return -EACCES;
	*res = p->pf_buf + r.r_res_off;
	*rlen = len - r.r_res_off;
	return 0;
}

/* Synchronous call: returns the nfsstat3 (or mountstat3), results after it. */
static int sync_call(struct pf *p, uint8_t *buf, struct rpc_xdr *x,
		     uint8_t **res, size_t *rlen)
{
	uint32_t xid;
	int rc;

	if (send_call(p, buf, x) || (rc = recv_reply(p, res, rlen, &xid)))
		return -EIO;
	if (*rlen < 4)
		return -EPROTO;
	rc = (int)rpc_get32(*res);
	*res += 4;
	*rlen -= 4;
	return rc;
}

static int walk_to(struct pf *p, const char *export, const char *path,
		   uint8_t *fh, uint32_t *fhlen, uint64_t *size)
{
	uint8_t buf[2048], *res;
	struct rpc_xdr x;
	size_t rlen;
	int st;
	char *copy = strdup(path), *save = NULL, *part;

	call_start(p, &x, buf, sizeof(buf), RPC_PROG_MOUNT, MNT3_MNT);
	rpc_xdr_put_opaque(&x, export, (uint32_t)strlen(export));
	if ((st = sync_call(p, buf, &x, &res, &rlen))) {
		fprintf(stderr, "gridvfs cache prefetch: MNT %s: %s\n", export,
			st > 0 ? "refused by the server" : "no answer");
		free(copy);
		return -1;
	}
	*fhlen = rpc_get32(res);
	if (*fhlen > NFS3_FHSIZE)
		return -1;
	memcpy(fh, res + 4, *fhlen);
	for (part = strtok_r(copy, "/", &save); part;
	     part = strtok_r(NULL, "/", &save)) {
		call_start(p, &x, buf, sizeof(buf), RPC_PROG_NFS, NFS3_LOOKUP);
		rpc_xdr_put_opaque(&x, fh, *fhlen);
		rpc_xdr_put_opaque(&x, part, (uint32_t)strlen(part));
		if ((st = sync_call(p, buf, &x, &res, &rlen))) {
			fprintf(stderr, "gridvfs cache prefetch: %s: %s\n", part,
				st == 2 ? "no such file" : "lookup failed");
			free(copy);
			return -1;
		}
		*fhlen = rpc_get32(res);
		if (*fhlen > NFS3_FHSIZE) {
			free(copy);
			return -1;
		}
		memcpy(fh, res + 4, *fhlen);
	}
	free(copy);
	call_start(p, &x, buf, sizeof(buf), RPC_PROG_NFS, NFS3_GETATTR);
	rpc_xdr_put_opaque(&x, fh, *fhlen);
	if (sync_call(p, buf, &x, &res, &rlen) || rlen < NFS3_FATTR_SIZE)
		return -1;
	*size = rpc_get64(res + NFS3_FATTR_SIZE_OFF);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int prefetch_main(int argc, char **argv)
{
	const char *proxy = NULL, *export = NULL, *file = NULL;
	unsigned depth = 16, inflight = 0;
	uint32_t chunk = 1u << 20, fhlen;
	uint8_t fh[NFS3_FHSIZE], buf[512];
	uint64_t size, next = 0, done = 0;
	struct pf p = {.pf_fd = -1};
	double t0, last = 0;

	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(argv[i], "--proxy") && v)
			proxy = argv[++i];
		else if (!strcmp(argv[i], "--export") && v)
			export = argv[++i];
		else if (!strcmp(argv[i], "--depth") && v)
			depth = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--chunk") && v)
			chunk = (uint32_t)strtoul(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--uid") && v)
			p.pf_uid = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--gid") && v)
			p.pf_gid = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		} else if (argv[i][0] != '-' && !file)
			file = argv[i];
		else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!proxy || !export || !file || !depth || depth > 256 ||
	    chunk < 4096 || chunk > (1u << 20)) {
		fputs(usage, stderr);
		return 2;
	}
	if ((p.pf_fd = dial(proxy)) < 0) {
		fprintf(stderr, "gridvfs cache prefetch: %s: %s\n", proxy,
			strerror(-p.pf_fd));
		return 1;
	}
	p.pf_cap = chunk + 4096;
	p.pf_buf = malloc(p.pf_cap);
	if (!p.pf_buf || walk_to(&p, export, file, fh, &fhlen, &size)) {
		close(p.pf_fd);
		free(p.pf_buf);
		return 1;
	}
	t0 = now_s();
	while (done < size) {
		while (inflight < depth && next < size) {
			struct rpc_xdr x;

			call_start(&p, &x, buf, sizeof(buf), RPC_PROG_NFS,
				   NFS3_READ);
			rpc_xdr_put_opaque(&x, fh, fhlen);
			rpc_xdr_put_u64(&x, next);
			rpc_xdr_put_u32(&x, chunk);
			if (send_call(&p, buf, &x))
				goto broken;
			next += chunk;
			inflight++;
		}
		uint8_t *res;
		size_t rlen;
		uint32_t xid;

		if (recv_reply(&p, &res, &rlen, &xid) || rlen < 8 ||
		    rpc_get32(res) != NFS3_OK)
			goto broken;
		inflight--;
		/* count: after status and post_op_attr */
		size_t o = 4 + 4 + (rpc_get32(res + 4) ? NFS3_FATTR_SIZE : 0);

		if (rlen < o + 4)
			goto broken;
		done += rpc_get32(res + o);
		if (now_s() - last > 0.5 || done >= size) {
			last = now_s();
			fprintf(stderr, "\rprefetch %s: %llu / %llu MiB (%.0f%%)",
				file, (unsigned long long)(done >> 20),
				(unsigned long long)(size >> 20),
				size ? 100.0 * (double)done / (double)size : 100.0);
		}
		if (!inflight && next >= size && done < size)
			goto broken; /* the file shrank under us */
	}
	fprintf(stderr, "\n");
	printf("prefetched %llu bytes of %s in %.2f s\n",
	       (unsigned long long)done, file, now_s() - t0);
	close(p.pf_fd);
	free(p.pf_buf);
	return 0;
broken:
	fprintf(stderr, "\ngridvfs cache prefetch: READ failed after %llu "
			"bytes\n", (unsigned long long)done);
	close(p.pf_fd);
	free(p.pf_buf);
	return 1;
}
