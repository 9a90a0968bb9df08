/*
 * bench/tlsping.c — how long a client waits to set up RPC-with-TLS
 * (RFC 9289) to a server-role gridvfsd, as the client role does it: TCP
 * connect, the AUTH_TLS NULL probe and its STARTTLS answer, the TLS 1.3
 * mTLS handshake through crypto/, then one NULL call over TLS.  Each
 * connection is new; medians and p90 in microseconds.
 *
 *   tlsping [-n COUNT] [-m full|resume] -c CERT -k KEY -a CA [-s NAME]
 *           HOST PORT
 *
 * full: a fresh client context per connection, so no ticket is offered.
 * resume: one context, as the client role keeps one per upstream; one
 * unmeasured connection fetches a ticket, then each connection offers the
 * newest ticket (TLS 1.3 PSK) and the server may resume.  Output, one line:
 *
 *   mode M count N resumed R hs_median_us H hs_p90_us H9
 *   ready_median_us T ready_p90_us T9
 *
 * hs: from the ClientHello after STARTTLS until the client's handshake is
 * done (client view: it ends when our Finished is sent).  ready: from
 * connect() until the first NULL call over TLS was answered, so it also
 * holds TCP set-up, the probe's round trip, the server checking our
 * certificate and the grid-mapfile, and one call.  R counts connections
 * that the server resumed (0 in full mode).
 */
#include "crypto/tls.h"
#include "rpc/rpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WARMUP 3 /* connections measured but not counted (cold caches) */

struct opts {
	const char *o_host, *o_cert, *o_key, *o_ca, *o_name;
	int o_port, o_count;
	int o_resume;
};

static double now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "tlsping: %s: %s\n", what, why);
	exit(1);
}

static int dial(const struct opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)o->o_port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, o->o_host, &sa.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Exactly n bytes: a byte past the probe's reply belongs to TLS. */
static void readn(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t k = read(fd, p, n);

		if (k <= 0)
			die("STARTTLS probe", k ? strerror(errno) : "EOF");
		p += k;
		n -= (size_t)k;
	}
}

static void probe(int fd)
{
	uint8_t buf[128];
	struct rpc_xdr x;
	uint32_t len;

	rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
	rpc_tls_probe_build(&x, 1, RPC_PROG_NFS, NFS3_VERS);
	rpc_rec_mark(buf, x.x_pos);
	if (write(fd, buf, x.x_pos + 4) != (ssize_t)(x.x_pos + 4))
		die("STARTTLS probe", "short write");
	readn(fd, buf, 4);
	len = rpc_get32(buf) & RPC_RM_LENMASK;
	if (len > sizeof(buf))
		die("STARTTLS probe", "reply too large");
	readn(fd, buf, len);
	if (rpc_tls_probe_check(buf, len, 1))
		die("STARTTLS probe", "the server refused RPC-with-TLS");
}

/* Wait for what a retry code asks for; 10 s without progress is fatal. */
static void wait_for(int fd, long want)
{
	struct pollfd p = {.fd = fd,
			   .events = want == TLS_WANT_WRITE ? POLLOUT : POLLIN};

	if (poll(&p, 1, 10000) != 1)
		die("TLS", "no progress for 10 s");
}

/* One NULL call over TLS and its reply; reading also takes in the
 * server's NewSessionTicket, which is how the context gets a ticket. */
static void null_call(int fd, struct tls_conn *c)
{
	uint8_t buf[128], rep[256];
	struct rpc_xdr x;
	struct rpc_reply r;
	size_t got = 0, need = 4;
	ssize_t k;

	rpc_xdr_init(&x, buf + 4, sizeof(buf) - 4);
	rpc_call_build(&x, 2, RPC_PROG_NFS, NFS3_VERS, NFS3_NULL,
		       RPC_AUTH_NONE, NULL, 0, RPC_AUTH_NONE, NULL, 0);
	rpc_rec_mark(buf, x.x_pos);
	while ((k = tls_conn_write(c, buf, x.x_pos + 4)) < 0) {
		if (!tls_want(k))
			die("NULL call", tls_conn_error(c));
		wait_for(fd, k);
	}
	if ((size_t)k != x.x_pos + 4)
		die("NULL call", "partial write");
	while (got < need) {
		k = tls_conn_read(c, rep + got, need - got);
		if (k == 0 || (k < 0 && !tls_want(k)))
			die("NULL reply", k ? tls_conn_error(c) : "closed");
		if (k < 0) {
			wait_for(fd, k);
			continue;
		}
		got += (size_t)k;
		if (got == 4 && need == 4) {
			need += rpc_get32(rep) & RPC_RM_LENMASK;
			if (need > sizeof(rep))
				die("NULL reply", "too large");
		}
	}
	if (rpc_reply_parse(rep + 4, need - 4, &r) ||
	    r.r_accept_stat != RPC_ACC_SUCCESS)
		die("NULL reply", "not accepted");
}

/* One connection from ctx: adds its two times; returns 1 if resumed. */
static int one(const struct opts *o, struct tls_ctx *ctx, double *hs,
	       double *ready)
{
	struct tls_conn *c;
	struct tls_conn_info ti;
	double t0, t1, t2;
	int fd, rc;

	t0 = now_us();
	fd = dial(o);
	probe(fd);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		die("fcntl", strerror(errno));
	t1 = now_us();
	if (tls_conn_new(ctx, fd, &c))
		die("TLS", "tls_conn_new failed");
	while ((rc = tls_conn_handshake(c)) != 0) {
		if (!tls_want(rc))
			die("TLS handshake", tls_conn_error(c));
		wait_for(fd, rc);
	}
	t2 = now_us();
	null_call(fd, c);
	*ready = now_us() - t0;
	*hs = t2 - t1;
	tls_conn_info(c, &ti);
	while (tls_conn_shutdown(c) == TLS_WANT_WRITE)
		wait_for(fd, TLS_WANT_WRITE);
	tls_conn_free(c);
	close(fd);
	return ti.ti_resumed;
}

static struct tls_ctx *ctx_new(const struct opts *o)
{
	struct tls_config cfg = {.tc_cert = o->o_cert, .tc_key = o->o_key,
				 .tc_ca = o->o_ca, .tc_server_name = o->o_name};
	struct tls_ctx *ctx;
	char err[256] = "";

	if (tls_ctx_new(&cfg, &ctx, err, sizeof(err)))
		die("TLS context", err);
	return ctx;
}

static int cmp_double(const void *a, const void *b)
{
	double d = *(const double *)a - *(const double *)b;

	return d < 0 ? -1 : d > 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: tlsping [-n COUNT] [-m full|resume] -c CERT "
			"-k KEY -a CA [-s SERVER_NAME] HOST PORT\n");
	exit(2);
}

static void parse(int argc, char **argv, struct opts *o)
{
	int ch;

	o->o_count = 100;
	while ((ch = getopt(argc, argv, "n:m:c:k:a:s:")) != -1) {
		switch (ch) {
		case 'n': o->o_count = atoi(optarg); break;
		case 'm': o->o_resume = !strcmp(optarg, "resume");
			  if (!o->o_resume && strcmp(optarg, "full"))
				  usage();
			  break;
		case 'c': o->o_cert = optarg; break;
		case 'k': o->o_key = optarg; break;
		case 'a': o->o_ca = optarg; break;
		case 's': o->o_name = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 2 || !o->o_cert || !o->o_key || !o->o_ca ||
	    o->o_count <= 0)
		usage();
	o->o_host = argv[optind];
	o->o_port = atoi(argv[optind + 1]);
	if (!o->o_name)
		o->o_name = o->o_host;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct tls_ctx *shared = NULL;
	double *hs, *ready, h, r;
	int resumed = 0;

	parse(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	hs = calloc((size_t)o.o_count, sizeof(*hs));
	ready = calloc((size_t)o.o_count, sizeof(*ready));
	if (!hs || !ready)
		die("memory", strerror(ENOMEM));
	if (o.o_resume) {
		shared = ctx_new(&o);
		one(&o, shared, &h, &r); /* fetches the first ticket */
	}
	for (int i = -WARMUP; i < o.o_count; i++) {
		/* A fresh context has no ticket to offer; it is built
		 * outside the timed part (it reads the PEM files). */
		struct tls_ctx *ctx = shared ? shared : ctx_new(&o);
		int res = one(&o, ctx, &h, &r);

		if (!shared)
			tls_ctx_free(ctx);
		if (i < 0)
			continue;
		resumed += res;
		hs[i] = h;
		ready[i] = r;
	}
	tls_ctx_free(shared);
	qsort(hs, (size_t)o.o_count, sizeof(*hs), cmp_double);
	qsort(ready, (size_t)o.o_count, sizeof(*ready), cmp_double);
	printf("mode %s count %d resumed %d hs_median_us %.1f hs_p90_us %.1f "
	       "ready_median_us %.1f ready_p90_us %.1f\n",
	       o.o_resume ? "resume" : "full", o.o_count, resumed,
	       hs[o.o_count / 2], hs[o.o_count * 9 / 10],
	       ready[o.o_count / 2], ready[o.o_count * 9 / 10]);
	free(hs);
	free(ready);
	return 0;
}
