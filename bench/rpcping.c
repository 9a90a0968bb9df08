/*
 * bench/rpcping.c — round-trip latency of one NFSv3 procedure, measured
 * with the project's own rpc/ layer over a blocking socket: MOUNT the
 * export for its root handle, then time N sequential GETATTR (or NULL)
 * calls and print percentiles in microseconds.
 *
 *   rpcping HOST NFSPORT MOUNTPORT EXPORT [COUNT] [getattr|null]
 */
#include "rpc/rpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int dial(const char *host, int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void readn(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = read(fd, p, n);

		if (k <= 0) {
			fprintf(stderr, "rpcping: connection lost\n");
			exit(1);
		}
		p += k;
		n -= (size_t)k;
	}
}

/* Send one call (args appended by the caller at buf+4+hdr) and read the
 * reply into rep; returns the reply length. */
static size_t roundtrip(int fd, uint8_t *buf, size_t len, uint8_t *rep,
			size_t cap)
{
	uint32_t mark;

	rpc_rec_mark(buf, len);
	if (write(fd, buf, len + 4) != (ssize_t)(len + 4)) {
		perror("write");
		exit(1);
	}
	readn(fd, rep, 4);
	mark = rpc_get32(rep) & RPC_RM_LENMASK;
	if (mark > cap) {
		fprintf(stderr, "rpcping: reply too large\n");
		exit(1);
	}
	readn(fd, rep, mark);
	return mark;
}

static size_t call_hdr(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
		       uint32_t proc)
{
	struct rpc_authsys a = {.as_machine_len = 7, .as_uid = 0, .as_gid = 0};
	uint8_t cred[64];
	struct rpc_xdr cx;

	memcpy(a.as_machine, "rpcping", 7);
	rpc_xdr_init(&cx, cred, sizeof(cred));
	rpc_authsys_encode(&cx, &a);
	rpc_call_build(x, xid, prog, 3, proc, RPC_AUTH_SYS, cred,
		       (uint32_t)cx.x_pos, RPC_AUTH_NONE, NULL, 0);
	return x->x_pos;
}

static int cmp_double(const void *a, const void *b)
{
	double d = *(const double *)a - *(const double *)b;

	return d < 0 ? -1 : d > 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[4096], rep[65536];
	struct rpc_xdr x;
	struct rpc_reply r;
	uint8_t fh[64];
	uint32_t fhlen, status;
	int count = argc > 5 ? atoi(argv[5]) : 2000;
	bool null_proc = argc > 6 && !strcmp(argv[6], "null");
	double *us;
	int fd;

	if (argc < 5 || count <= 0) {
		fprintf(stderr, "usage: rpcping HOST NFSPORT MOUNTPORT EXPORT "
				"[COUNT] [getattr|null]\n");
		return 2;
	}
	/* MNT for the root handle */
	fd = dial(argv[1], atoi(argv[3]));
	rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
	call_hdr(&x, 1, RPC_PROG_MOUNT, MNT3_MNT);
	rpc_xdr_put_opaque(&x, argv[4], (uint32_t)strlen(argv[4]));
	size_t n = roundtrip(fd, buf, x.x_pos, rep, sizeof(rep));

	close(fd);
	if (rpc_reply_parse(rep, n, &r) || r.r_accept_stat != RPC_ACC_SUCCESS ||
	    (status = rpc_get32(rep + r.r_res_off)) != 0) {
		fprintf(stderr, "rpcping: MNT %s failed\n", argv[4]);
		return 1;
	}
	fhlen = rpc_get32(rep + r.r_res_off + 4);
	if (fhlen > 64)
		return 1;
	memcpy(fh, rep + r.r_res_off + 8, fhlen);

	fd = dial(argv[1], atoi(argv[2]));
	us = calloc((size_t)count, sizeof(*us));
	for (int i = 0; i < count + 100; i++) {
		struct timespec t0, t1;

		rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
		call_hdr(&x, 1000u + (uint32_t)i, RPC_PROG_NFS,
			 null_proc ? NFS3_NULL : NFS3_GETATTR);
		if (!null_proc)
			rpc_xdr_put_opaque(&x, fh, fhlen);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		n = roundtrip(fd, buf, x.x_pos, rep, sizeof(rep));
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (rpc_reply_parse(rep, n, &r) ||
		    r.r_accept_stat != RPC_ACC_SUCCESS) {
			fprintf(stderr, "rpcping: call failed\n");
			return 1;
		}
		if (i >= 100) /* the first 100 warm up */
			us[i - 100] = (double)(t1.tv_sec - t0.tv_sec) * 1e6 +
				      (double)(t1.tv_nsec - t0.tv_nsec) / 1e3;
	}
	qsort(us, (size_t)count, sizeof(*us), cmp_double);
	printf("median_us %.1f p90_us %.1f p99_us %.1f count %d\n",
	       us[count / 2], us[count * 9 / 10], us[count * 99 / 100], count);
	free(us);
	close(fd);
	return 0;
}
