/*
 * tests/unit/test_tls.c — crypto/: mutual TLS 1.3 handshakes, refusals with
 * their reasons, data transfer with partial writes, resumption, key-file
 * hygiene, and the quick-start CA.  Both ends run non-blocking in one
 * thread, driven by poll(); a hang is a failure, never a stuck test.
 * Also prints handshake/resumption latency and throughput (loopback TCP).
 */
#include "crypto/tls.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static char tdir[64];       /* scratch root */
static char cadir[128];     /* our CA */
static char ca2dir[128];    /* another CA */
static char client_dn[512];

/* A path under dir; four rotating buffers so calls can nest in one line. */
static const char *pth(const char *dir, const char *name, const char *ext)
{
	static char bufs[4][256];
	static int k;
	char *b = bufs[k++ & 3];

	snprintf(b, 256, "%s/%s%s", dir, name, ext);
	return b;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void pair(int sv[2])
{
	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	nonblock(sv[0]);
	nonblock(sv[1]);
}

static struct tls_ctx *mkctx(bool server, const char *dir, const char *name,
			     const char *crl, const char *server_name)
{
	struct tls_config cfg = {
		.tc_cert = pth(dir, name, ".crt"),
		.tc_key = pth(dir, name, ".key"),
		.tc_ca = pth(cadir, "ca", ".crt"),
		.tc_crl = crl,
		.tc_server_name = server_name,
		.tc_server = server,
	};
	struct tls_ctx *x = NULL;
	char err[512];
	int rc = tls_ctx_new(&cfg, &x, err, sizeof(err));

	if (rc)
		fprintf(stderr, "tls_ctx_new(%s): %s\n", name, err);
	CU_ASSERT_FATAL(rc == 0);
	return x;
}

/* ---------------------------------------------------------------------- */
/* Driving handshakes: our connections or raw OpenSSL peers.              */

struct side {
	struct tls_conn *tc;  /* or */
	SSL *raw;
	int fd;
	int rc;
	bool fin;
};

static int side_step(struct side *s)
{
	int r;

	if (s->tc)
		return tls_conn_handshake(s->tc);
	ERR_clear_error();
	r = SSL_do_handshake(s->raw);
	if (r == 1)
		return 0;
	switch (SSL_get_error(s->raw, r)) {
	case SSL_ERROR_WANT_READ: return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE: return TLS_WANT_WRITE;
	default: return -1;
	}
}

/*
 * Step every side until none wants I/O.  A side that fails shuts its
 * write half, as the proxy would close, so the peer sees EOF.  Returns 0,
 * or -ETIMEDOUT if someone waits forever (a hang).
 */
static int drive(struct side *s, int n)
{
	double deadline = now_s() + 10;
	struct pollfd p[2];
	int i, k, left;

	for (;;) {
		for (i = 0, k = 0, left = 0; i < n; i++) {
			if (s[i].fin)
				continue;
			s[i].rc = side_step(&s[i]);
			if (!tls_want(s[i].rc)) {
				s[i].fin = true;
				if (s[i].rc)
					shutdown(s[i].fd, SHUT_WR);
				continue;
			}
			left++;
		}
		if (!left)
			return 0;
		for (i = 0; i < n; i++)
			if (!s[i].fin) {
				p[k].fd = s[i].fd;
				p[k++].events = s[i].rc == TLS_WANT_READ ? POLLIN
									 : POLLOUT;
			}
		if (poll(p, (nfds_t)k, (int)((deadline - now_s()) * 1000)) <= 0)
			return -ETIMEDOUT;
	}
}

/* Read until data, an error or EOF, waiting at most 5 s. */
static ssize_t read_wait(struct tls_conn *c, int fd, void *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t r;

	for (;;) {
		r = tls_conn_read(c, buf, len);
		if (!tls_want(r))
			return r;
		p.events = r == TLS_WANT_READ ? POLLIN : POLLOUT;
		if (poll(&p, 1, 5000) <= 0)
			return -ETIMEDOUT;
	}
}

/* A handshake between one of our clients and one of our servers. */
struct hs {
	int sv[2];
	struct side s[2];   /* [0] server, [1] client */
};

static int hs_run(struct hs *h, struct tls_ctx *srv, struct tls_ctx *cli)
{
	memset(h, 0, sizeof(*h));
	pair(h->sv);
	h->s[0].fd = h->sv[0];
	h->s[1].fd = h->sv[1];
	CU_ASSERT_FATAL(tls_conn_new(srv, h->sv[0], &h->s[0].tc) == 0);
	CU_ASSERT_FATAL(tls_conn_new(cli, h->sv[1], &h->s[1].tc) == 0);
	return drive(h->s, 2);
}

static void hs_end(struct hs *h)
{
	tls_conn_free(h->s[0].tc);
	tls_conn_free(h->s[1].tc);
	SSL_free(h->s[0].raw);
	SSL_free(h->s[1].raw);
	close(h->sv[0]);
	close(h->sv[1]);
}

/*
 * In TLS 1.3 the client finishes before the server judges its certificate,
 * so a refusal reaches the client on its first read.
 */
static int client_outcome(struct hs *h)
{
	char b[16];

	if (h->s[1].rc)
		return h->s[1].rc;
	return (int)read_wait(h->s[1].tc, h->sv[1], b, sizeof(b));
}

/* Does the reason contain needle?  TLS_TEST_VERBOSE=1 prints reasons. */
static bool has(const char *hay, const char *needle)
{
	if (getenv("TLS_TEST_VERBOSE"))
		printf("\n    reason: %s", hay);
	if (!strstr(hay, needle)) {
		fprintf(stderr, "\n  reason \"%s\" lacks \"%s\"\n", hay, needle);
		return false;
	}
	return true;
}

/* Server refuses our client from ctx cli: check code and reason. */
static void expect_server_refusal(struct tls_ctx *srv, struct tls_ctx *cli,
				  int code, const char *why)
{
	struct hs h;

	CU_ASSERT_EQUAL(hs_run(&h, srv, cli), 0);
	CU_ASSERT_EQUAL(h.s[0].rc, code);
	CU_ASSERT(has(tls_conn_error(h.s[0].tc), why));
	CU_ASSERT_EQUAL(client_outcome(&h), TLS_E_PEER);
	CU_ASSERT(has(tls_conn_error(h.s[1].tc), "alert"));
	CU_ASSERT(tls_conn_peer_dn(h.s[0].tc, (char[64]){ 0 }, 64) == -ENOTCONN);
	hs_end(&h);
}

/* ---------------------------------------------------------------------- */
/* Suite setup: two CAs and the certificates every test needs.            */

static int suite_init(void)
{
	char err[512], dn[512];

	snprintf(tdir, sizeof(tdir), "/tmp/gridvfs-tls-XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	snprintf(cadir, sizeof(cadir), "%s/ca", tdir);
	snprintf(ca2dir, sizeof(ca2dir), "%s/ca2", tdir);
	if (tls_ca_init(cadir, err, sizeof(err)) ||
	    tls_ca_init(ca2dir, err, sizeof(err)) ||
	    tls_ca_issue(cadir, "server", "localhost", 30, dn, sizeof(dn),
			 err, sizeof(err)) ||
	    tls_ca_issue(cadir, "server-ip", "127.0.0.1", 30, dn, sizeof(dn),
			 err, sizeof(err)) ||
	    tls_ca_issue(cadir, "client1", NULL, 30, client_dn,
			 sizeof(client_dn), err, sizeof(err)) ||
	    tls_ca_issue(cadir, "revoked", NULL, 30, dn, sizeof(dn), err,
			 sizeof(err)) ||
	    tls_ca_revoke(cadir, "revoked", err, sizeof(err)) ||
	    tls_ca_issue_validity(cadir, "expired", NULL, -2 * 86400, -86400,
				  dn, sizeof(dn), err, sizeof(err)) ||
	    tls_ca_issue(ca2dir, "alien", NULL, 30, dn, sizeof(dn), err,
			 sizeof(err))) {
		fprintf(stderr, "suite setup: %s\n", err);
		return -1;
	}
	return 0;
}

static int suite_clean(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* CA                                                                      */

static void test_ca_files(void)
{
	struct stat st;
	char err[256], dn[256];

	CU_ASSERT_STRING_EQUAL(client_dn, "/O=gridvfs/CN=client1");
	CU_ASSERT(stat(pth(cadir, "ca", ".key"), &st) == 0 &&
		  (st.st_mode & 0777) == 0600);
	CU_ASSERT(stat(pth(cadir, "client1", ".key"), &st) == 0 &&
		  (st.st_mode & 0777) == 0600);
	CU_ASSERT(stat(pth(cadir, "crl", ".pem"), &st) == 0 && st.st_size > 0);
	/* No silent overwrite of a CA or an issued name; bad names refused. */
	CU_ASSERT_EQUAL(tls_ca_init(cadir, err, sizeof(err)), -EEXIST);
	CU_ASSERT_EQUAL(tls_ca_issue(cadir, "client1", NULL, 30, dn, sizeof(dn),
				     err, sizeof(err)), -EEXIST);
	CU_ASSERT_EQUAL(tls_ca_issue(cadir, "../x", NULL, 30, dn, sizeof(dn),
				     err, sizeof(err)), -EINVAL);
	CU_ASSERT_EQUAL(tls_ca_revoke(cadir, "nosuch", err, sizeof(err)),
			-ENOENT);
}

static void test_strerror(void)
{
	CU_ASSERT(tls_want(TLS_WANT_READ) && tls_want(TLS_WANT_WRITE));
	CU_ASSERT(!tls_want(0) && !tls_want(TLS_E_EOF) && !tls_want(5));
	CU_ASSERT_STRING_EQUAL(tls_strerror(TLS_E_ALPN), "no ALPN sunrpc");
	CU_ASSERT_STRING_EQUAL(tls_strerror(-ENOENT), strerror(ENOENT));
	CU_ASSERT_STRING_EQUAL(tls_strerror(-99999), "unknown TLS error");
}

static void test_ca_cli(void)
{
	char *av[] = { "ca", "issue", cadir, "--name", "cli1", "--days", "2",
		       NULL };
	char *bad[] = { "ca", "issue", cadir, NULL };
	char *help[] = { "ca", "--help", NULL };
	struct stat st;

	CU_ASSERT_EQUAL(tls_ca_main(7, av), 0);
	CU_ASSERT(stat(pth(cadir, "cli1", ".crt"), &st) == 0);
	CU_ASSERT_EQUAL(tls_ca_main(3, bad), 2);
	CU_ASSERT_EQUAL(tls_ca_main(2, help), 0);
}

/* ---------------------------------------------------------------------- */
/* Key-file hygiene                                                        */

static void test_key_mode(void)
{
	struct tls_config cfg = {
		.tc_cert = pth(cadir, "client1", ".crt"),
		.tc_key = pth(cadir, "client1", ".key"),
		.tc_ca = pth(cadir, "ca", ".crt"),
		.tc_server_name = "localhost",
	};
	struct tls_ctx *x = NULL;
	char err[512] = "";

	CU_ASSERT_FATAL(chmod(cfg.tc_key, 0644) == 0);
	CU_ASSERT_EQUAL(tls_ctx_new(&cfg, &x, err, sizeof(err)), TLS_E_KEYPERM);
	CU_ASSERT(x == NULL);
	CU_ASSERT(has(err, "chmod 600"));
	CU_ASSERT_FATAL(chmod(cfg.tc_key, 0640) == 0);
	CU_ASSERT_EQUAL(tls_ctx_new(&cfg, &x, err, sizeof(err)), TLS_E_KEYPERM);
	CU_ASSERT_FATAL(chmod(cfg.tc_key, 0600) == 0);
	CU_ASSERT_EQUAL(tls_ctx_new(&cfg, &x, err, sizeof(err)), 0);
	tls_ctx_free(x);
	x = NULL;
	/* A client without a server name cannot verify anyone. */
	cfg.tc_server_name = NULL;
	CU_ASSERT_EQUAL(tls_ctx_new(&cfg, &x, err, sizeof(err)), -EINVAL);
	/* Key of another certificate. */
	cfg.tc_server_name = "localhost";
	cfg.tc_key = pth(cadir, "server", ".key");
	CU_ASSERT_EQUAL(tls_ctx_new(&cfg, &x, err, sizeof(err)), TLS_E_CONFIG);
}

/* ---------------------------------------------------------------------- */
/* Successful handshakes and data                                         */

static void test_handshake_ok(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL, "localhost");
	struct tls_conn_info si, ci;
	char dn[256], name[64];
	struct hs h;

	CU_ASSERT_EQUAL(hs_run(&h, srv, cli), 0);
	CU_ASSERT_EQUAL(h.s[0].rc, 0);
	CU_ASSERT_EQUAL(h.s[1].rc, 0);
	CU_ASSERT_EQUAL(tls_conn_peer_dn(h.s[0].tc, dn, sizeof(dn)), 0);
	CU_ASSERT_STRING_EQUAL(dn, "/O=gridvfs/CN=client1");
	CU_ASSERT_EQUAL(tls_conn_peer_dn(h.s[0].tc, dn, 8), -ERANGE);
	CU_ASSERT_EQUAL(tls_conn_peer_dn(h.s[1].tc, dn, sizeof(dn)), 0);
	CU_ASSERT_STRING_EQUAL(dn, "/O=gridvfs/CN=server");
	CU_ASSERT_EQUAL(tls_conn_peer_dns(h.s[1].tc, 0, name, sizeof(name)), 0);
	CU_ASSERT_STRING_EQUAL(name, "localhost");
	CU_ASSERT_EQUAL(tls_conn_peer_dns(h.s[1].tc, 1, name, sizeof(name)),
			-ENOENT);
	CU_ASSERT_EQUAL(tls_conn_info(h.s[0].tc, &si), 0);
	CU_ASSERT_EQUAL(tls_conn_info(h.s[1].tc, &ci), 0);
	CU_ASSERT_STRING_EQUAL(si.ti_alpn, "sunrpc");
	CU_ASSERT_STRING_EQUAL(ci.ti_alpn, "sunrpc");
	CU_ASSERT_STRING_EQUAL(ci.ti_version, "TLSv1.3");
	CU_ASSERT(!si.ti_resumed && !ci.ti_resumed);
	/* Handshake is idempotent once done. */
	CU_ASSERT_EQUAL(tls_conn_handshake(h.s[0].tc), 0);
	hs_end(&h);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

struct flow {
	const unsigned char *out;
	unsigned char *in;
	size_t sent, got;
};

static unsigned long wants_write, partials;

/* One step of a -> b: write some, read some.  0 stalled, 1 moved, <0. */
static int flow_step(struct flow *f, struct tls_conn *a, struct tls_conn *b,
		     size_t len, short *ev_a, short *ev_b)
{
	ssize_t r;
	int moved = 0;

	if (f->sent < len) {
		r = tls_conn_write(a, f->out + f->sent, len - f->sent);
		if (r > 0) {
			partials += (size_t)r < len - f->sent;
			f->sent += (size_t)r;
			moved = 1;
		} else if (tls_want(r)) {
			wants_write += r == TLS_WANT_WRITE;
			*ev_a |= r == TLS_WANT_WRITE ? POLLOUT : POLLIN;
		} else
			return (int)r;
	} else if (tls_conn_wpending(a)) {
		/* Records taken but not yet on the socket: the caller
		 * flushes them (the proxy does on EPOLLOUT). */
		r = tls_conn_flush(a);
		if (r == 0)
			moved = 1;
		else if (r == TLS_WANT_WRITE)
			*ev_a |= POLLOUT;
		else
			return (int)r;
	}
	if (f->got < len) {
		r = tls_conn_read(b, f->in + f->got, len - f->got);
		if (r > 0) {
			f->got += (size_t)r;
			moved = 1;
		} else if (tls_want(r)) {
			*ev_b |= r == TLS_WANT_READ ? POLLIN : POLLOUT;
		} else
			return r ? (int)r : -ECONNRESET;
	}
	return moved;
}

/* Move len bytes a->b and, if f2 is given, b->a at the same time. */
static int pump(struct tls_conn *a, int fa, struct tls_conn *b, int fb,
		struct flow *f1, struct flow *f2, size_t len)
{
	struct pollfd p[2];
	int r1, r2 = 0;

	while (f1->got < len || (f2 && f2->got < len)) {
		p[0] = (struct pollfd){ .fd = fa };
		p[1] = (struct pollfd){ .fd = fb };
		r1 = flow_step(f1, a, b, len, &p[0].events, &p[1].events);
		if (f2)
			r2 = flow_step(f2, b, a, len, &p[1].events,
				       &p[0].events);
		if (r1 < 0 || r2 < 0)
			return r1 < 0 ? r1 : r2;
		if (!r1 && !r2 && poll(p, 2, 5000) <= 0)
			return -ETIMEDOUT;
	}
	return 0;
}

static void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 131 + seed + (i >> 12));
}

static void test_data_both_ways(void)
{
	const size_t len = 1u << 20;
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL, "localhost");
	unsigned char *o1 = malloc(len), *o2 = malloc(len);
	unsigned char *i1 = calloc(1, len), *i2 = calloc(1, len);
	struct flow f1 = { o1, i1, 0, 0 }, f2 = { o2, i2, 0, 0 };
	struct hs h;

	fill_pattern(o1, len, 1);
	fill_pattern(o2, len, 7);
	CU_ASSERT_EQUAL(hs_run(&h, srv, cli), 0);
	CU_ASSERT_FATAL(h.s[0].rc == 0 && h.s[1].rc == 0);
	wants_write = partials = 0;
	CU_ASSERT_EQUAL(pump(h.s[1].tc, h.sv[1], h.s[0].tc, h.sv[0], &f1, &f2,
			     len), 0);
	CU_ASSERT(memcmp(o1, i1, len) == 0);
	CU_ASSERT(memcmp(o2, i2, len) == 0);
	/* The socket buffer is far below 1 MiB: retries must have happened. */
	CU_ASSERT(wants_write > 0 || partials > 0);
	CU_ASSERT(!tls_conn_pending(h.s[0].tc));
	/* Clean close: close_notify reads as 0 on the other side. */
	CU_ASSERT_EQUAL(tls_conn_shutdown(h.s[1].tc), 0);
	CU_ASSERT_EQUAL(read_wait(h.s[0].tc, h.sv[0], i1, 16), 0);
	CU_ASSERT_EQUAL(tls_conn_write(h.s[1].tc, "x", 1), TLS_E_STATE);
	hs_end(&h);
	free(o1); free(o2); free(i1); free(i2);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void test_writev(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL, "localhost");
	static unsigned char big[40000], got[40004 + 5];
	unsigned char mark[4] = { 0x80, 0, 0x9c, 0x40 };
	struct iovec iov[3] = { { mark, 4 }, { big, sizeof(big) },
				{ "tail", 4 } };
	size_t want = 4 + sizeof(big) + 4, n = 0;
	ssize_t r;
	struct hs h;

	fill_pattern(big, sizeof(big), 3);
	CU_ASSERT_EQUAL(hs_run(&h, srv, cli), 0);
	r = tls_conn_writev(h.s[1].tc, iov, 3);
	CU_ASSERT_EQUAL(r, (ssize_t)want);
	while (n < want && (r = read_wait(h.s[0].tc, h.sv[0], got + n,
					  sizeof(got) - n)) > 0)
		n += (size_t)r;
	CU_ASSERT_EQUAL(n, want);
	CU_ASSERT(memcmp(got, mark, 4) == 0);
	CU_ASSERT(memcmp(got + 4, big, sizeof(big)) == 0);
	CU_ASSERT(memcmp(got + 4 + sizeof(big), "tail", 4) == 0);
	hs_end(&h);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* ---------------------------------------------------------------------- */
/* Refusals                                                                */

static void test_refuse_other_ca(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, ca2dir, "alien", NULL, "localhost");

	expect_server_refusal(srv, cli, TLS_E_VERIFY, "unknown CA");
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void test_refuse_expired(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "expired", NULL, "localhost");

	expect_server_refusal(srv, cli, TLS_E_VERIFY, "certificate has expired");
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void test_refuse_revoked(void)
{
	const char *crl = pth(cadir, "crl", ".pem");
	struct tls_ctx *srv = mkctx(true, cadir, "server", crl, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "revoked", NULL, "localhost");
	struct tls_ctx *good = mkctx(false, cadir, "client1", NULL, "localhost");
	struct hs h;

	expect_server_refusal(srv, cli, TLS_E_VERIFY, "certificate revoked");
	/* The CRL does not lock out certificates it does not list. */
	CU_ASSERT_EQUAL(hs_run(&h, srv, good), 0);
	CU_ASSERT(h.s[0].rc == 0 && h.s[1].rc == 0);
	hs_end(&h);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
	tls_ctx_free(good);
}

static void test_refuse_name_mismatch(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL,
				    "nfs.example.org");
	struct hs h;

	CU_ASSERT_EQUAL(hs_run(&h, srv, cli), 0);
	CU_ASSERT_EQUAL(h.s[1].rc, TLS_E_VERIFY);
	CU_ASSERT(has(tls_conn_error(h.s[1].tc), "hostname mismatch"));
	CU_ASSERT_EQUAL(h.s[0].rc, TLS_E_PEER);
	/* Failures are sticky. */
	CU_ASSERT_EQUAL(tls_conn_handshake(h.s[1].tc), TLS_E_VERIFY);
	CU_ASSERT_EQUAL(tls_conn_read(h.s[1].tc, (char[4]){ 0 }, 4),
			TLS_E_VERIFY);
	hs_end(&h);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* A raw OpenSSL client: max version, certificate or not, ALPN list. */
static SSL *raw_client(int fd, int maxver, bool cert, const char *alpn)
{
	SSL_CTX *x = SSL_CTX_new(TLS_client_method());
	SSL *s;

	SSL_CTX_set_max_proto_version(x, maxver);
	SSL_CTX_set_verify(x, SSL_VERIFY_NONE, NULL);
	if (cert) {
		SSL_CTX_use_certificate_file(x, pth(cadir, "client1", ".crt"),
					     SSL_FILETYPE_PEM);
		SSL_CTX_use_PrivateKey_file(x, pth(cadir, "client1", ".key"),
					    SSL_FILETYPE_PEM);
	}
	if (alpn)
		SSL_CTX_set_alpn_protos(x, (const unsigned char *)alpn,
					(unsigned)strlen(alpn));
	s = SSL_new(x);
	SSL_CTX_free(x); /* the SSL keeps a reference */
	SSL_set_fd(s, fd);
	SSL_set_connect_state(s);
	return s;
}

static void raw_refusal(int maxver, bool cert, const char *alpn, int code,
			const char *why)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct hs h;

	memset(&h, 0, sizeof(h));
	pair(h.sv);
	h.s[0].fd = h.sv[0];
	h.s[1].fd = h.sv[1];
	CU_ASSERT_FATAL(tls_conn_new(srv, h.sv[0], &h.s[0].tc) == 0);
	h.s[1].raw = raw_client(h.sv[1], maxver, cert, alpn);
	CU_ASSERT_EQUAL(drive(h.s, 2), 0);
	CU_ASSERT_EQUAL(h.s[0].rc, code);
	CU_ASSERT(has(tls_conn_error(h.s[0].tc), why));
	hs_end(&h);
	tls_ctx_free(srv);
}

static void test_refuse_tls12(void)
{
	raw_refusal(TLS1_2_VERSION, true, "\x06sunrpc", TLS_E_VERSION,
		    "no shared protocol version");
}

static void test_refuse_no_cert(void)
{
	raw_refusal(TLS1_3_VERSION, false, "\x06sunrpc", TLS_E_NOCERT,
		    "peer sent no certificate");
}

static void test_refuse_no_alpn(void)
{
	raw_refusal(TLS1_3_VERSION, true, NULL, TLS_E_ALPN, "no ALPN sunrpc");
	raw_refusal(TLS1_3_VERSION, true, "\x02h2\x08http/1.1", TLS_E_ALPN,
		    "offered other protocols only");
}

/* The server alone, its peer a plain socket we write to. */
static void server_alone(const void *bytes, size_t len, int code,
			 const char *why)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct side s = { 0 };
	int sv[2];

	pair(sv);
	s.fd = sv[0];
	CU_ASSERT_FATAL(tls_conn_new(srv, sv[0], &s.tc) == 0);
	CU_ASSERT_EQUAL(write(sv[1], bytes, len), (ssize_t)len);
	close(sv[1]);
	CU_ASSERT_EQUAL(drive(&s, 1), 0);
	CU_ASSERT_EQUAL(s.rc, code);
	CU_ASSERT(has(tls_conn_error(s.tc), why));
	tls_conn_free(s.tc);
	close(sv[0]);
	tls_ctx_free(srv);
}

static void test_refuse_garbage(void)
{
	static const char junk[] =
		"\x80\x00\x00\x28" "this is an RPC record, not a ClientHello";

	server_alone(junk, sizeof(junk) - 1, TLS_E_PROTO, "TLS protocol error");
	server_alone("", 0, TLS_E_EOF, "closed mid-handshake");
}

static void test_refuse_truncated(void)
{
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL, "localhost");
	unsigned char hello[4096];
	struct tls_conn *c;
	ssize_t n;
	int sv[2];

	/* Capture a real ClientHello, then send only part of it. */
	pair(sv);
	CU_ASSERT_FATAL(tls_conn_new(cli, sv[1], &c) == 0);
	CU_ASSERT_EQUAL(tls_conn_handshake(c), TLS_WANT_READ);
	n = read(sv[0], hello, sizeof(hello));
	CU_ASSERT_FATAL(n > 100);
	server_alone(hello, (size_t)n / 2, TLS_E_EOF, "closed mid-handshake");
	tls_conn_free(c);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_free(cli);
}

/* ---------------------------------------------------------------------- */
/* Resumption                                                              */

/* Handshake; the server writes one byte so the client takes the ticket. */
static void hs_with_ticket(struct hs *h, struct tls_ctx *srv,
			   struct tls_ctx *cli)
{
	char b;

	CU_ASSERT_EQUAL(hs_run(h, srv, cli), 0);
	CU_ASSERT_FATAL(h->s[0].rc == 0 && h->s[1].rc == 0);
	CU_ASSERT_EQUAL(tls_conn_write(h->s[0].tc, "!", 1), 1);
	CU_ASSERT_EQUAL(read_wait(h->s[1].tc, h->sv[1], &b, 1), 1);
}

static void test_resumption(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL, "localhost");
	struct tls_conn_info si, ci;
	char dn[256];
	struct hs h;

	hs_with_ticket(&h, srv, cli);
	tls_conn_info(h.s[1].tc, &ci);
	CU_ASSERT(!ci.ti_resumed);
	hs_end(&h);
	hs_with_ticket(&h, srv, cli);
	CU_ASSERT_EQUAL(tls_conn_info(h.s[1].tc, &ci), 0);
	CU_ASSERT_EQUAL(tls_conn_info(h.s[0].tc, &si), 0);
	CU_ASSERT(ci.ti_resumed);
	CU_ASSERT(si.ti_resumed);
	/* Identity survives resumption: the server still knows the DN. */
	CU_ASSERT_EQUAL(tls_conn_peer_dn(h.s[0].tc, dn, sizeof(dn)), 0);
	CU_ASSERT_STRING_EQUAL(dn, "/O=gridvfs/CN=client1");
	CU_ASSERT_STRING_EQUAL(ci.ti_alpn, "sunrpc");
	hs_end(&h);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* ---------------------------------------------------------------------- */
/* Loopback TCP: IP SAN, latency and throughput                           */

static void tcp_pair(int lfd, int sv[2])
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int one = 1;

	getsockname(lfd, (struct sockaddr *)&a, &al);
	sv[1] = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(connect(sv[1], (struct sockaddr *)&a, al) == 0);
	sv[0] = accept(lfd, NULL, NULL);
	CU_ASSERT_FATAL(sv[0] >= 0);
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	nonblock(sv[0]);
	nonblock(sv[1]);
}

static int tcp_listen(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CU_ASSERT_FATAL(listen(fd, 8) == 0);
	return fd;
}

/* One TCP handshake (+ ticket); returns seconds, sets *resumed. */
static double tcp_handshake(int lfd, struct tls_ctx *srv, struct tls_ctx *cli,
			    bool *resumed)
{
	struct tls_conn_info ci;
	struct hs h;
	double t0;
	char b;

	memset(&h, 0, sizeof(h));
	tcp_pair(lfd, h.sv);
	t0 = now_s();
	h.s[0].fd = h.sv[0];
	h.s[1].fd = h.sv[1];
	tls_conn_new(srv, h.sv[0], &h.s[0].tc);
	tls_conn_new(cli, h.sv[1], &h.s[1].tc);
	CU_ASSERT(drive(h.s, 2) == 0 && h.s[0].rc == 0 && h.s[1].rc == 0);
	t0 = now_s() - t0;
	tls_conn_write(h.s[0].tc, "!", 1);
	CU_ASSERT_EQUAL(read_wait(h.s[1].tc, h.sv[1], &b, 1), 1);
	tls_conn_info(h.s[1].tc, &ci);
	*resumed = ci.ti_resumed;
	hs_end(&h);
	return t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && atoi(v) > 0 ? atoi(v) : dflt;
}

static void bench_handshakes(int lfd, struct tls_ctx *srv)
{
	int i, n = env_int("TLS_BENCH_N", 50), resumed_ok = 0;
	double *full = calloc((size_t)n, sizeof(double));
	double *res = calloc((size_t)n, sizeof(double));
	struct tls_ctx *cli;
	bool resumed;

	for (i = 0; i < n; i++) {
		/* A fresh client ctx has no ticket: a full handshake. */
		cli = mkctx(false, cadir, "client1", NULL, "127.0.0.1");
		full[i] = tcp_handshake(lfd, srv, cli, &resumed);
		CU_ASSERT(!resumed);
		res[i] = tcp_handshake(lfd, srv, cli, &resumed);
		resumed_ok += resumed;
		tls_ctx_free(cli);
	}
	CU_ASSERT_EQUAL(resumed_ok, n);
	qsort(full, (size_t)n, sizeof(double), cmp_double);
	qsort(res, (size_t)n, sizeof(double), cmp_double);
	printf("\n  handshake (loopback TCP, median of %d): full %.3f ms, "
	       "resumed %.3f ms\n", n, full[n / 2] * 1e3, res[n / 2] * 1e3);
	free(full);
	free(res);
}

static void bench_throughput(int lfd, struct tls_ctx *srv,
			     struct tls_ctx *cli)
{
	size_t len = (size_t)env_int("TLS_BENCH_MB", 64) << 20;
	unsigned char *out = malloc(len), *in = malloc(len);
	struct flow f = { out, in, 0, 0 };
	struct tls_conn_info ci;
	double t, cpu;
	struct hs h;

	fill_pattern(out, len, 5);
	memset(&h, 0, sizeof(h));
	tcp_pair(lfd, h.sv);
	tls_conn_new(srv, h.sv[0], &h.s[0].tc);
	tls_conn_new(cli, h.sv[1], &h.s[1].tc);
	h.s[0].fd = h.sv[0];
	h.s[1].fd = h.sv[1];
	CU_ASSERT_FATAL(drive(h.s, 2) == 0 && h.s[1].rc == 0);
	t = now_s();
	cpu = cpu_s();
	CU_ASSERT_EQUAL(pump(h.s[1].tc, h.sv[1], h.s[0].tc, h.sv[0], &f, NULL,
			     len), 0);
	cpu = cpu_s() - cpu;
	t = now_s() - t;
	CU_ASSERT(memcmp(out, in, len) == 0);
	tls_conn_info(h.s[1].tc, &ci);
	/* Per CPU-second too: the wall figure moves with machine load. */
	printf("  throughput (loopback TCP, sender+receiver in one thread, %s):"
	       " %.0f MB/s wall, %.0f MB per CPU-second, %zu MiB\n",
	       ci.ti_cipher, (double)len / t / 1e6, (double)len / cpu / 1e6,
	       len >> 20);
	hs_end(&h);
	free(out);
	free(in);
}

static void test_tcp_bench(void)
{
	struct tls_ctx *srv = mkctx(true, cadir, "server-ip", NULL, NULL);
	struct tls_ctx *cli = mkctx(false, cadir, "client1", NULL, "127.0.0.1");
	int lfd = tcp_listen();

	bench_handshakes(lfd, srv);
	bench_throughput(lfd, srv, cli);
	close(lfd);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

int main(void)
{
	static const struct { const char *name; CU_TestFunc fn; } tests[] = {
		{ "ca files and refusals", test_ca_files },
		{ "ca cli", test_ca_cli },
		{ "strerror and tls_want", test_strerror },
		{ "key file mode", test_key_mode },
		{ "mutual handshake, DN, SAN, ALPN", test_handshake_ok },
		{ "1 MiB both ways, partial writes", test_data_both_ways },
		{ "writev gathers", test_writev },
		{ "refuse client of another CA", test_refuse_other_ca },
		{ "refuse expired client cert", test_refuse_expired },
		{ "refuse revoked client cert", test_refuse_revoked },
		{ "refuse server name mismatch", test_refuse_name_mismatch },
		{ "refuse TLS 1.2-only client", test_refuse_tls12 },
		{ "refuse client without cert", test_refuse_no_cert },
		{ "refuse client without ALPN sunrpc", test_refuse_no_alpn },
		{ "refuse garbage / empty stream", test_refuse_garbage },
		{ "refuse truncated ClientHello", test_refuse_truncated },
		{ "session resumption", test_resumption },
		{ "loopback TCP: IP SAN, latency, throughput", test_tcp_bench },
	};
	CU_pSuite s;
	unsigned i, fails;

	signal(SIGPIPE, SIG_IGN);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("tls", suite_init, suite_clean);
	for (i = 0; s && i < sizeof(tests) / sizeof(tests[0]); i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return (int)fails;
}
