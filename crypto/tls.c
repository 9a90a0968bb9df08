/*
 * crypto/tls.c — OpenSSL 3 contexts and connections for RPC-with-TLS:
 * TLS 1.3 only, ALPN "sunrpc", mutual X.509, session resumption, and a
 * non-blocking API the proxy's event loop drives (contract in tls.h).
 */
#include "crypto/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TLS_ALPN "sunrpc"
/* Between gridvfs roles that both allow it: RPC records that may be zstd
 * frames (proxy/zlink.h).  Offered before "sunrpc", which stays the
 * answer for every other RFC 9289 peer. */
#define TLS_ALPN_ZSTD "gridvfs-z1"
#define TLS_REC_MAX 16384u          /* TLS plaintext record limit */
#define TLS_KEY_MAX (1u << 20)      /* no sane PEM key is bigger */
#define TLS_TICKET_LIFETIME 3600L   /* resumption skips CRL and expiry checks */
/* After the handshake (an authenticated peer): records are collected in
 * user space and written with one send() for up to OBUF_HIGH bytes, and
 * OpenSSL reads ahead up to RBUF_LEN per read(); one syscall per 16 KiB
 * record was most of the encrypted chain's cost (docs/benchmarks.md). */
#define TLS_OBUF_HIGH (256u << 10)
#define TLS_WRITE_CHUNK (128u << 10)
#define TLS_RBUF_LEN (160u << 10)

/* ALPN wire form: length-prefixed protocol list. */
static const unsigned char alpn_wire[] = "\x06" TLS_ALPN;
static const unsigned char alpn_wire_zstd[] = "\x0a" TLS_ALPN_ZSTD
					      "\x06" TLS_ALPN;

struct tls_ctx {
	SSL_CTX *cx_ssl;
	bool cx_server;
	bool cx_name_is_ip;
	bool cx_zstd;               /* offer / accept ALPN gridvfs-z1 */
	char *cx_name;              /* client: expected server name */
	pthread_mutex_t cx_lock;    /* guards cx_session */
	SSL_SESSION *cx_session;    /* client: newest ticket, owned */
	unsigned cx_refs;           /* the owner + one per connection */
};

struct tls_conn {
	SSL *cn_ssl;
	struct tls_ctx *cn_ctx;
	int cn_err;                 /* sticky failure, 0 if none */
	bool cn_done;               /* handshake finished and checked */
	bool cn_shut;               /* close_notify sent */
	bool cn_alpn_bad;           /* our ALPN callbacks refused the peer */
	bool cn_zstd;               /* ALPN gridvfs-z1 was agreed */
	int cn_vdepth;              /* first verify failure: depth, subject */
	char cn_vsubject[256];
	char cn_reason[512];
	unsigned char *cn_wbuf;     /* writev gather buffer, lazily */
	int cn_fd;
	BIO *cn_obio;               /* after the handshake: collects records */
	unsigned char *cn_obuf;     /* records not yet sent: [ooff, olen) */
	size_t cn_ooff, cn_olen, cn_ocap;
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* The oldest queued OpenSSL error as text: it names the root cause. */
static const char *ssl_errtext(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_peek_error();

	if (!e)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

const char *tls_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case TLS_WANT_READ: return "TLS wants the socket readable";
	case TLS_WANT_WRITE: return "TLS wants the socket writable";
	case TLS_E_VERIFY: return "peer certificate rejected";
	case TLS_E_NOCERT: return "peer sent no certificate";
	case TLS_E_VERSION: return "no shared protocol version (TLS 1.3 required)";
	case TLS_E_ALPN: return "no ALPN sunrpc";
	case TLS_E_PEER: return "peer aborted the TLS session";
	case TLS_E_EOF: return "connection closed mid-handshake or truncated";
	case TLS_E_PROTO: return "TLS protocol error";
	case TLS_E_KEYPERM: return "private key file accessible by group or others";
	case TLS_E_CONFIG: return "unusable certificate, key, CA or CRL file";
	case TLS_E_STATE: return "TLS call not valid in this state";
	default:
		if (err < 0 && err > -4096)
			return strerror(-err);
		return "unknown TLS error";
	}
}

/* ---------------------------------------------------------------------- */
/* Context construction                                                    */

static int pem_no_pass(char *buf, int size, int rwflag, void *u)
{
	/* Never prompt on a terminal from a daemon: encrypted keys fail. */
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

static int read_all(int fd, unsigned char *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	ssize_t r;

	while (n < cap) {
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return 0;
}

/*
 * Open the key once and check the mode on that descriptor (no stat/open
 * race), read it into our own buffer, parse, and wipe the buffer.
 */
static int key_load(SSL_CTX *ssl, const char *path, char *err, size_t errlen)
{
	unsigned char *buf = NULL;
	EVP_PKEY *pkey = NULL;
	BIO *bio = NULL;
	struct stat st;
	size_t len = 0;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		errf(err, errlen, "private key %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		errf(err, errlen, "private key %s: %s", path, strerror(-rc));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > TLS_KEY_MAX) {
		rc = TLS_E_CONFIG;
		errf(err, errlen, "private key %s: not a regular file of sane size",
		     path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = TLS_E_KEYPERM;
		errf(err, errlen,
		     "private key %s has mode %04o: group/others may access it; "
		     "run chmod 600 %s", path, (unsigned)(st.st_mode & 07777),
		     path);
		goto out;
	}
	buf = OPENSSL_malloc((size_t)st.st_size + 1);
	rc = buf ? read_all(fd, buf, (size_t)st.st_size, &len) : -ENOMEM;
	if (rc) {
		errf(err, errlen, "private key %s: %s", path, strerror(-rc));
		goto out;
	}
	rc = TLS_E_CONFIG;
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio)
		pkey = PEM_read_bio_PrivateKey(bio, NULL, pem_no_pass, NULL);
	if (!pkey || SSL_CTX_use_PrivateKey(ssl, pkey) != 1) {
		errf(err, errlen, "private key %s: %s (unencrypted PEM needed)",
		     path, ssl_errtext());
		goto out;
	}
	rc = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	if (buf) {
		OPENSSL_cleanse(buf, (size_t)st.st_size);
		OPENSSL_free(buf);
	}
	close(fd);
	return rc;
}

static int ctx_load_ca(SSL_CTX *ssl, const struct tls_config *cfg,
		       char *err, size_t errlen)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ssl);
	X509_LOOKUP *lu;
	struct stat st;
	int ok;

	if (stat(cfg->tc_ca, &st) < 0) {
		errf(err, errlen, "CA %s: %s", cfg->tc_ca, strerror(errno));
		return TLS_E_CONFIG;
	}
	if (S_ISDIR(st.st_mode)) {
		ok = SSL_CTX_load_verify_dir(ssl, cfg->tc_ca);
	} else {
		ok = SSL_CTX_load_verify_file(ssl, cfg->tc_ca);
		/* Tell clients which CAs we accept, so they pick the right cert. */
		if (ok && cfg->tc_server)
			SSL_CTX_set_client_CA_list(ssl,
				SSL_load_client_CA_file(cfg->tc_ca));
	}
	if (ok != 1) {
		errf(err, errlen, "CA %s: %s", cfg->tc_ca, ssl_errtext());
		return TLS_E_CONFIG;
	}
	if (!cfg->tc_crl)
		return 0;
	lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
	if (!lu || X509_load_crl_file(lu, cfg->tc_crl, X509_FILETYPE_PEM) <= 0) {
		errf(err, errlen, "CRL %s: %s", cfg->tc_crl, ssl_errtext());
		return TLS_E_CONFIG;
	}
	X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	return 0;
}

static int ctx_load_identity(SSL_CTX *ssl, const struct tls_config *cfg,
			     char *err, size_t errlen)
{
	int rc;

	if (SSL_CTX_use_certificate_chain_file(ssl, cfg->tc_cert) != 1) {
		errf(err, errlen, "certificate %s: %s", cfg->tc_cert,
		     ssl_errtext());
		return TLS_E_CONFIG;
	}
	rc = key_load(ssl, cfg->tc_key, err, errlen);
	if (rc)
		return rc;
	if (SSL_CTX_check_private_key(ssl) != 1) {
		errf(err, errlen, "key %s does not match certificate %s",
		     cfg->tc_key, cfg->tc_cert);
		return TLS_E_CONFIG;
	}
	return 0;
}

/* Record the first certificate that failed, for the reason string. */
static int on_verify(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs,
		SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);

	if (!ok && c && !c->cn_vsubject[0] && cert) {
		c->cn_vdepth = X509_STORE_CTX_get_error_depth(xs);
		X509_NAME_oneline(X509_get_subject_name(cert), c->cn_vsubject,
				  sizeof(c->cn_vsubject));
	}
	return ok;
}

static bool alpn_has(const unsigned char *in, size_t inlen, const char *id,
		     const unsigned char **at)
{
	size_t i = 0, idlen = strlen(id);

	while (i < inlen) {
		size_t n = in[i];

		if (n == 0 || i + 1 + n > inlen)
			return false;
		if (n == idlen && !memcmp(in + i + 1, id, n)) {
			*at = in + i + 1;
			return true;
		}
		i += 1 + n;
	}
	return false;
}

/*
 * RFC 9289 has both sides use ALPN "sunrpc"; RFC 7301 says a server that
 * shares no protocol with the client's list answers no_application_protocol.
 */
static int on_alpn_select(SSL *ssl, const unsigned char **out,
			  unsigned char *outlen, const unsigned char *in,
			  unsigned int inlen, void *arg)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	const struct tls_ctx *x = arg;
	const unsigned char *at;

	if (x->cx_zstd && alpn_has(in, inlen, TLS_ALPN_ZSTD, &at)) {
		*out = at;
		*outlen = (unsigned char)(sizeof(TLS_ALPN_ZSTD) - 1);
		return SSL_TLSEXT_ERR_OK;
	}
	if (alpn_has(in, inlen, TLS_ALPN, &at)) {
		*out = at;
		*outlen = (unsigned char)(sizeof(TLS_ALPN) - 1);
		return SSL_TLSEXT_ERR_OK;
	}
	c->cn_alpn_bad = true;
	snprintf(c->cn_reason, sizeof(c->cn_reason),
		 "no ALPN sunrpc: the client offered other protocols only");
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * The ALPN select callback only runs when the client sent ALPN; a TLS 1.3
 * client that sent none is refused here.  Pre-1.3 hellos pass so that the
 * version check reports the real problem.
 */
static int on_client_hello(SSL *ssl, int *al, void *arg)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	const unsigned char *p;
	size_t n;

	(void)arg;
	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions,
				       &p, &n))
		return SSL_CLIENT_HELLO_SUCCESS;
	if (SSL_client_hello_get0_ext(ssl,
			TLSEXT_TYPE_application_layer_protocol_negotiation,
			&p, &n))
		return SSL_CLIENT_HELLO_SUCCESS;
	c->cn_alpn_bad = true;
	snprintf(c->cn_reason, sizeof(c->cn_reason),
		 "no ALPN sunrpc: the client offered no ALPN (RFC 9289)");
	*al = SSL_AD_NO_APPLICATION_PROTOCOL;
	return SSL_CLIENT_HELLO_ERROR;
}

/* Client: keep only the newest ticket; reconnects offer it. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	struct tls_ctx *x = c->cn_ctx;
	SSL_SESSION *old;

	pthread_mutex_lock(&x->cx_lock);
	old = x->cx_session;
	x->cx_session = sess;
	pthread_mutex_unlock(&x->cx_lock);
	SSL_SESSION_free(old);
	return 1; /* we keep the reference */
}

static void ctx_set_role(struct tls_ctx *x)
{
	SSL_CTX *ssl = x->cx_ssl;
	static const unsigned char sid_ctx[] = "gridvfs-rpc-tls";

	if (x->cx_server) {
		SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER |
				   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, on_verify);
		SSL_CTX_set_alpn_select_cb(ssl, on_alpn_select, x);
		SSL_CTX_set_client_hello_cb(ssl, on_client_hello, NULL);
		/* Required for resumption when client certs are verified. */
		SSL_CTX_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx) - 1);
		SSL_CTX_set_num_tickets(ssl, 1);
		SSL_CTX_set_timeout(ssl, TLS_TICKET_LIFETIME);
	} else {
		SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, on_verify);
		if (x->cx_zstd)
			SSL_CTX_set_alpn_protos(ssl, alpn_wire_zstd,
						sizeof(alpn_wire_zstd) - 1);
		else
			SSL_CTX_set_alpn_protos(ssl, alpn_wire,
						sizeof(alpn_wire) - 1);
		SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(ssl, on_new_session);
	}
}

static int ctx_check_config(const struct tls_config *cfg, char *err,
			    size_t errlen)
{
	if (!cfg || !cfg->tc_cert || !cfg->tc_key || !cfg->tc_ca) {
		errf(err, errlen, "TLS needs a certificate, a key and a CA");
		return -EINVAL;
	}
	if (!cfg->tc_server && (!cfg->tc_server_name || !*cfg->tc_server_name)) {
		errf(err, errlen, "a TLS client needs the server's name to verify");
		return -EINVAL;
	}
	return 0;
}

int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **out,
		char *err, size_t errlen)
{
	struct tls_ctx *x;
	unsigned char ip[16];
	int rc;

	*out = NULL;
	rc = ctx_check_config(cfg, err, errlen);
	if (rc)
		return rc;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	pthread_mutex_init(&x->cx_lock, NULL);
	x->cx_refs = 1;
	x->cx_server = cfg->tc_server;
	x->cx_zstd = cfg->tc_zstd;
	rc = -ENOMEM;
	if (!x->cx_server) {
		x->cx_name = strdup(cfg->tc_server_name);
		if (!x->cx_name)
			goto fail;
		x->cx_name_is_ip = inet_pton(AF_INET, x->cx_name, ip) == 1 ||
				   inet_pton(AF_INET6, x->cx_name, ip) == 1;
	}
	ERR_clear_error();
	x->cx_ssl = SSL_CTX_new(x->cx_server ? TLS_server_method()
					     : TLS_client_method());
	if (!x->cx_ssl)
		goto fail;
	SSL_CTX_set_min_proto_version(x->cx_ssl, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(x->cx_ssl, TLS1_3_VERSION);
	SSL_CTX_set_options(x->cx_ssl, SSL_OP_NO_COMPRESSION);
	/* Partial writes + moving buffers: the proxy's queue can grow/move. */
	SSL_CTX_set_mode(x->cx_ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(x->cx_ssl, 1);
	rc = ctx_load_identity(x->cx_ssl, cfg, err, errlen);
	if (!rc)
		rc = ctx_load_ca(x->cx_ssl, cfg, err, errlen);
	if (rc)
		goto fail;
	ctx_set_role(x);
	*out = x;
	return 0;
fail:
	if (rc == -ENOMEM)
		errf(err, errlen, "out of memory");
	tls_ctx_free(x);
	return rc;
}

void tls_ctx_free(struct tls_ctx *x)
{
	/* Connections keep the context they were made with: a context
	 * replaced on reload goes when its last connection does. */
	if (!x || __atomic_sub_fetch(&x->cx_refs, 1, __ATOMIC_ACQ_REL))
		return;
	SSL_SESSION_free(x->cx_session);
	SSL_CTX_free(x->cx_ssl);
	pthread_mutex_destroy(&x->cx_lock);
	free(x->cx_name);
	free(x);
}

/* ---------------------------------------------------------------------- */
/* Connections                                                             */

static int conn_client_setup(struct tls_conn *c)
{
	struct tls_ctx *x = c->cn_ctx;
	SSL *ssl = c->cn_ssl;
	int ok;

	if (x->cx_name_is_ip) {
		/* No SNI for addresses (RFC 6066); match the IP SAN instead. */
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						   x->cx_name);
	} else {
		ok = SSL_set_tlsext_host_name(ssl, x->cx_name) == 1 &&
		     SSL_set1_host(ssl, x->cx_name) == 1;
	}
	if (!ok)
		return -ENOMEM;
	pthread_mutex_lock(&x->cx_lock);
	if (x->cx_session && SSL_SESSION_is_resumable(x->cx_session))
		SSL_set_session(ssl, x->cx_session);
	pthread_mutex_unlock(&x->cx_lock);
	SSL_set_connect_state(ssl);
	return 0;
}

int tls_conn_new(struct tls_ctx *x, int fd, struct tls_conn **out)
{
	struct tls_conn *c;
	int rc = -ENOMEM;

	*out = NULL;
	if (!x || fd < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->cn_ctx = x;
	__atomic_add_fetch(&x->cx_refs, 1, __ATOMIC_ACQ_REL);
	c->cn_ssl = SSL_new(x->cx_ssl);
	if (!c->cn_ssl || SSL_set_fd(c->cn_ssl, fd) != 1)
		goto fail;
	SSL_set_app_data(c->cn_ssl, c);
	if (x->cx_server)
		SSL_set_accept_state(c->cn_ssl);
	else if ((rc = conn_client_setup(c)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	tls_conn_free(c);
	return rc;
}

/*
 * OpenSSL marks the session of an SSL freed without close_notify as not
 * resumable.  After a completed handshake a transport-level end (reset,
 * EOF, or the proxy simply closing) says nothing against the session, so
 * keep its ticket for the reconnect; TLS-level failures still drop it.
 */
static bool conn_keeps_session(const struct tls_conn *c)
{
	return c->cn_done && (c->cn_err == 0 || c->cn_err == TLS_E_EOF ||
			      (c->cn_err < 0 && c->cn_err > -4096));
}

void tls_conn_free(struct tls_conn *c)
{
	if (!c)
		return;
	if (c->cn_ssl && conn_keeps_session(c))
		SSL_set_shutdown(c->cn_ssl, SSL_SENT_SHUTDOWN);
	SSL_free(c->cn_ssl);
	if (c->cn_wbuf) {
		OPENSSL_cleanse(c->cn_wbuf, TLS_REC_MAX);
		free(c->cn_wbuf);
	}
	free(c->cn_obuf); /* records: ciphertext only */
	tls_ctx_free(c->cn_ctx);
	free(c);
}

const char *tls_conn_error(const struct tls_conn *c)
{
	return c->cn_reason;
}

static int fail(struct tls_conn *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Make the connection fail for good with a reason. */
static int fail(struct tls_conn *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->cn_reason, sizeof(c->cn_reason), fmt, ap);
	va_end(ap);
	c->cn_err = code;
	ERR_clear_error();
	return code;
}

static int fail_verify(struct tls_conn *c)
{
	long v = SSL_get_verify_result(c->cn_ssl);
	const char *hint = "";

	switch (v) {
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		hint = " (unknown CA)";
		break;
	case X509_V_ERR_CERT_REVOKED:
		hint = " (revoked in the CRL)";
		break;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		hint = " (the CRL file has no CRL from this issuer)";
		break;
	}
	return fail(c, TLS_E_VERIFY, "peer certificate rejected: %s%s "
		    "(depth %d, %s)", X509_verify_cert_error_string(v), hint,
		    c->cn_vdepth, c->cn_vsubject[0] ? c->cn_vsubject : "?");
}

/* Classify an SSL_ERROR_SSL from the oldest queued error (the cause). */
static int fail_ssl(struct tls_conn *c)
{
	unsigned long e = ERR_peek_error();
	int reason = ERR_GET_REASON(e);
	const char *text = ERR_reason_error_string(e);

	if (!text)
		text = "unknown error";
	if (c->cn_alpn_bad) {
		c->cn_err = TLS_E_ALPN; /* reason already set by the callback */
		ERR_clear_error();
		return TLS_E_ALPN;
	}
	if (ERR_GET_LIB(e) != ERR_LIB_SSL)
		return fail(c, TLS_E_PROTO, "TLS error: %s", text);
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		return fail_verify(c);
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return fail(c, TLS_E_NOCERT, "peer sent no certificate");
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_NO_PROTOCOLS_AVAILABLE:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		return fail(c, TLS_E_VERSION, "no shared protocol version "
			    "(TLS 1.3 required): %s", text);
	case SSL_R_NO_APPLICATION_PROTOCOL:
	case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
		return fail(c, TLS_E_ALPN, "no ALPN sunrpc: %s", text);
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return fail(c, TLS_E_EOF, "%s", c->cn_done ?
			    "connection truncated: peer closed without close_notify" :
			    "connection closed mid-handshake");
	}
	if (reason >= SSL_AD_REASON_OFFSET)
		return fail(c, TLS_E_PEER, "peer refused: %s", text);
	return fail(c, TLS_E_PROTO, "TLS protocol error: %s", text);
}

/* Map an OpenSSL I/O result; retry codes do not stick. */
static int conn_result(struct tls_conn *c, int ret, int saved_errno)
{
	switch (SSL_get_error(c->cn_ssl, ret)) {
	case SSL_ERROR_WANT_READ:
		return TLS_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return TLS_WANT_WRITE;
	case SSL_ERROR_ZERO_RETURN:
		return fail(c, TLS_E_EOF, "peer closed the TLS session%s",
			    c->cn_done ? "" : " mid-handshake");
	case SSL_ERROR_SYSCALL:
		if (saved_errno == 0 || saved_errno == EAGAIN)
			return fail(c, TLS_E_EOF, "connection closed %s",
				    c->cn_done ? "without close_notify" :
				    "mid-handshake");
		return fail(c, -saved_errno, "socket error: %s",
			    strerror(saved_errno));
	case SSL_ERROR_SSL:
		return fail_ssl(c);
	default:
		return fail(c, TLS_E_PROTO, "unexpected OpenSSL state");
	}
}

/* ---------------------------------------------------------------------- */
/* The output buffer: a write BIO that never blocks                        */

static int obuf_reserve(struct tls_conn *c, size_t len)
{
	size_t cap;
	unsigned char *p;

	if (c->cn_ooff == c->cn_olen)
		c->cn_ooff = c->cn_olen = 0;
	if (c->cn_ocap - c->cn_olen >= len)
		return 0;
	if (c->cn_ooff) {
		memmove(c->cn_obuf, c->cn_obuf + c->cn_ooff,
			c->cn_olen - c->cn_ooff);
		c->cn_olen -= c->cn_ooff;
		c->cn_ooff = 0;
		if (c->cn_ocap - c->cn_olen >= len)
			return 0;
	}
	cap = c->cn_ocap ? c->cn_ocap : 64u << 10;
	while (cap - c->cn_olen < len)
		cap *= 2;
	if (!(p = realloc(c->cn_obuf, cap)))
		return -ENOMEM;
	c->cn_obuf = p;
	c->cn_ocap = cap;
	return 0;
}

static int obio_write_ex(BIO *b, const char *data, size_t len, size_t *done)
{
	struct tls_conn *c = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (!c || obuf_reserve(c, len))
		return 0;
	memcpy(c->cn_obuf + c->cn_olen, data, len);
	c->cn_olen += len;
	*done = len;
	return 1;
}

static long obio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *c = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* sent by tls_conn_flush(), from the event loop */
	case BIO_CTRL_WPENDING:
		return c ? (long)(c->cn_olen - c->cn_ooff) : 0;
	default:
		return 0;
	}
}

static int obio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *obio_meth;
static pthread_once_t obio_once = PTHREAD_ONCE_INIT;

static void obio_meth_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "gridvfs TLS output");

	if (m && BIO_meth_set_write_ex(m, obio_write_ex) &&
	    BIO_meth_set_ctrl(m, obio_ctrl) && BIO_meth_set_create(m, obio_create))
		obio_meth = m;
	else
		BIO_meth_free(m);
}

/* Move to the output buffer and the larger read buffer.  Best effort: a
 * connection that cannot keeps OpenSSL's own socket BIO. */
static void conn_buffer(struct tls_conn *c)
{
	BIO *b;

	pthread_once(&obio_once, obio_meth_init);
	c->cn_fd = SSL_get_wfd(c->cn_ssl);
	if (obio_meth && c->cn_fd >= 0 && (b = BIO_new(obio_meth))) {
		BIO_set_data(b, c);
		SSL_set0_wbio(c->cn_ssl, b);
		c->cn_obio = b;
	}
	/* Nothing of the peer's may sit in the small handshake buffer. */
	if (!SSL_has_pending(c->cn_ssl) && SSL_free_buffers(c->cn_ssl))
		SSL_set_default_read_buffer_len(c->cn_ssl, TLS_RBUF_LEN);
}

int tls_conn_flush(struct tls_conn *c)
{
	if (c->cn_err)
		return c->cn_err;
	while (c->cn_ooff < c->cn_olen) {
		ssize_t w = send(c->cn_fd, c->cn_obuf + c->cn_ooff,
				 c->cn_olen - c->cn_ooff, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return TLS_WANT_WRITE;
			return fail(c, -errno, "socket error: %s",
				    strerror(errno));
		}
		c->cn_ooff += (size_t)w;
	}
	c->cn_ooff = c->cn_olen = 0;
	return 0;
}

bool tls_conn_wpending(const struct tls_conn *c)
{
	return c && !c->cn_err && c->cn_ooff < c->cn_olen;
}

/* The client checks the server agreed to "sunrpc" (RFC 9289). */
static int handshake_finish(struct tls_conn *c)
{
	const unsigned char *p;
	unsigned int n;

	SSL_get0_alpn_selected(c->cn_ssl, &p, &n);
	if (p && c->cn_ctx->cx_zstd && n == sizeof(TLS_ALPN_ZSTD) - 1 &&
	    !memcmp(p, TLS_ALPN_ZSTD, n))
		c->cn_zstd = true;
	else if (n != sizeof(TLS_ALPN) - 1 || !p || memcmp(p, TLS_ALPN, n))
		return fail(c, TLS_E_ALPN,
			    "no ALPN sunrpc: the server selected none");
	c->cn_done = true;
	conn_buffer(c);
	return 0;
}

int tls_conn_handshake(struct tls_conn *c)
{
	int ret;

	if (c->cn_err)
		return c->cn_err;
	if (c->cn_done)
		return 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_do_handshake(c->cn_ssl);
	if (ret == 1)
		return handshake_finish(c);
	return conn_result(c, ret, errno);
}

ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	size_t n = 0;
	int ret;

	if (c->cn_err)
		return c->cn_err;
	if (!c->cn_done)
		return TLS_E_STATE;
	if (len == 0)
		return -EINVAL;
	ERR_clear_error();
	errno = 0;
	ret = SSL_read_ex(c->cn_ssl, buf, len, &n);
	/* Reading may have made OpenSSL answer something (a key update):
	 * send it now if the socket takes it, else the loop's EPOLLOUT does
	 * (tls_conn_wpending). */
	if (c->cn_olen)
		(void)tls_conn_flush(c);
	if (ret == 1)
		return (ssize_t)n;
	if (SSL_get_error(c->cn_ssl, ret) == SSL_ERROR_ZERO_RETURN)
		return 0; /* close_notify: a clean end, not a failure */
	return conn_result(c, ret, errno);
}

/* One SSL_write; with the output buffer it takes everything or fails. */
static ssize_t ssl_write(struct tls_conn *c, const void *buf, size_t len)
{
	size_t n = 0;
	int ret;

	ERR_clear_error();
	errno = 0;
	ret = SSL_write_ex(c->cn_ssl, buf, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	return conn_result(c, ret, errno);
}

ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return tls_conn_writev(c, &iov, 1);
}

/* Copy up to TLS_REC_MAX bytes starting at (*i, *off) into dst. */
static size_t iov_gather(unsigned char *dst, const struct iovec *iov, int n,
			 int *i, size_t *off)
{
	size_t fill = 0, take;

	while (*i < n && fill < TLS_REC_MAX) {
		take = iov[*i].iov_len - *off;
		if (take > TLS_REC_MAX - fill)
			take = TLS_REC_MAX - fill;
		memcpy(dst + fill, (const char *)iov[*i].iov_base + *off, take);
		fill += take;
		*off += take;
		if (*off == iov[*i].iov_len) {
			(*i)++;
			*off = 0;
		}
	}
	return fill;
}

/* Without the output buffer (before it, or if it could not be made):
 * OpenSSL writes each record to the socket itself. */
static ssize_t writev_direct(struct tls_conn *c, const struct iovec *iov,
			     int n)
{
	size_t total = 0, fill, off = 0;
	ssize_t r;
	int i = 0;

	/*
	 * Each gather starts where the previous one ended, so a retry after
	 * a WANT re-gathers exactly the bytes OpenSSL still holds pending.
	 */
	while ((fill = iov_gather(c->cn_wbuf, iov, n, &i, &off)) > 0) {
		r = ssl_write(c, c->cn_wbuf, fill);
		if (r < 0)
			return total ? (ssize_t)total : r;
		total += (size_t)r;
		if ((size_t)r < fill)
			break;
	}
	return (ssize_t)total;
}

ssize_t tls_conn_writev(struct tls_conn *c, const struct iovec *iov, int n)
{
	size_t total = 0, off = 0;
	ssize_t r;
	int i = 0, f;

	if (c->cn_err)
		return c->cn_err;
	if (!c->cn_done || c->cn_shut)
		return TLS_E_STATE;
	if (!c->cn_wbuf && !(c->cn_wbuf = malloc(TLS_REC_MAX)))
		return -ENOMEM;
	if (!c->cn_obio)
		return writev_direct(c, iov, n);
	/* Records already made go first; encrypt ahead up to OBUF_HIGH. */
	f = tls_conn_flush(c);
	if (f < 0 && f != TLS_WANT_WRITE)
		return f;
	while (i < n && c->cn_olen - c->cn_ooff < TLS_OBUF_HIGH) {
		size_t left = iov[i].iov_len - off, take;

		if (left >= TLS_REC_MAX) {
			/* Large pieces are encrypted where they lie. */
			take = left < TLS_WRITE_CHUNK ? left : TLS_WRITE_CHUNK;
			r = ssl_write(c, (const char *)iov[i].iov_base + off,
				      take);
			if (r >= 0 && (off += (size_t)r) == iov[i].iov_len) {
				i++;
				off = 0;
			}
		} else {
			/* Small ones (replies, record marks) share records. */
			take = iov_gather(c->cn_wbuf, iov, n, &i, &off);
			r = ssl_write(c, c->cn_wbuf, take);
		}
		if (r < 0)
			return total ? (ssize_t)total : r;
		total += (size_t)r;
	}
	f = tls_conn_flush(c);
	if (f < 0 && f != TLS_WANT_WRITE && !total)
		return f;
	return total ? (ssize_t)total : TLS_WANT_WRITE;
}

bool tls_conn_pending(const struct tls_conn *c)
{
	return !c->cn_err && SSL_has_pending(c->cn_ssl);
}

int tls_conn_shutdown(struct tls_conn *c)
{
	int ret;

	/* After a fatal error OpenSSL forbids SSL_shutdown; nothing to say. */
	if (c->cn_err || !c->cn_done || c->cn_shut)
		return 0;
	ERR_clear_error();
	errno = 0;
	ret = SSL_shutdown(c->cn_ssl);
	if (ret >= 0) {
		c->cn_shut = true;
		return c->cn_olen ? tls_conn_flush(c) : 0;
	}
	return conn_result(c, ret, errno);
}

/* ---------------------------------------------------------------------- */
/* Peer identity                                                           */

static X509 *conn_peer(const struct tls_conn *c)
{
	if (!c->cn_done || c->cn_err ||
	    SSL_get_verify_result(c->cn_ssl) != X509_V_OK)
		return NULL;
	return SSL_get0_peer_certificate(c->cn_ssl);
}

int tls_conn_recheck(const struct tls_conn *c, const struct tls_ctx *ctx,
		     char *why, size_t wlen)
{
	X509 *cert = conn_peer(c);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c->cn_ssl);
	X509_STORE_CTX *xs;
	int ok;

	if (!cert)
		return -ENOTCONN;
	if (!(xs = X509_STORE_CTX_new()))
		return -ENOMEM;
	/* The same checks the handshake made, against the new store: its
	 * CA bundle and CRL (with the CRL_CHECK flag when one is set). */
	if (!X509_STORE_CTX_init(xs, SSL_CTX_get_cert_store(ctx->cx_ssl), cert,
				 chain)) {
		X509_STORE_CTX_free(xs);
		return -ENOMEM;
	}
	X509_STORE_CTX_set_default(xs, ctx->cx_server ? "ssl_client"
						      : "ssl_server");
	ok = X509_verify_cert(xs);
	if (ok <= 0)
		snprintf(why, wlen, "%s",
			 X509_verify_cert_error_string(
				 X509_STORE_CTX_get_error(xs)));
	X509_STORE_CTX_free(xs);
	return ok > 0 ? 0 : -EACCES;
}

int tls_conn_peer_dn(const struct tls_conn *c, char *dn, size_t dnlen)
{
	X509 *cert = conn_peer(c);
	char *s;
	size_t n;
	int rc = 0;

	if (!cert)
		return -ENOTCONN;
	s = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
	if (!s)
		return -ENOMEM;
	n = strlen(s);
	if (n >= dnlen)
		rc = -ERANGE;
	else
		memcpy(dn, s, n + 1);
	OPENSSL_free(s);
	return rc;
}

int tls_conn_peer_dns(const struct tls_conn *c, unsigned idx, char *name,
		      size_t len)
{
	X509 *cert = conn_peer(c);
	GENERAL_NAMES *gens;
	unsigned seen = 0;
	int i, rc = -ENOENT;

	if (!cert)
		return -ENOTCONN;
	gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const unsigned char *p;
		int n;

		if (g->type != GEN_DNS || seen++ != idx)
			continue;
		p = ASN1_STRING_get0_data(g->d.dNSName);
		n = ASN1_STRING_length(g->d.dNSName);
		if (memchr(p, 0, (size_t)n))
			rc = -EBADMSG; /* embedded NUL: never trust it */
		else if ((size_t)n >= len)
			rc = -ERANGE;
		else {
			memcpy(name, p, (size_t)n);
			name[n] = '\0';
			rc = 0;
		}
		break;
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

bool tls_conn_zstd(const struct tls_conn *c)
{
	return c->cn_done && c->cn_zstd;
}

int tls_conn_info(const struct tls_conn *c, struct tls_conn_info *info)
{
	const unsigned char *p;
	unsigned int n;

	memset(info, 0, sizeof(*info));
	if (!c->cn_done || c->cn_err)
		return -ENOTCONN;
	info->ti_resumed = SSL_session_reused(c->cn_ssl);
	info->ti_version = SSL_get_version(c->cn_ssl);
	info->ti_cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(c->cn_ssl));
	SSL_get0_alpn_selected(c->cn_ssl, &p, &n);
	if (n >= sizeof(info->ti_alpn))
		n = sizeof(info->ti_alpn) - 1;
	if (n)
		memcpy(info->ti_alpn, p, n);
	info->ti_alpn[n] = '\0';
	return 0;
}
