/*
 * crypto/tls.h — mutual TLS 1.3 for RPC-with-TLS (RFC 9289) on a
 * non-blocking socket the caller owns and polls, plus a small CA for quick
 * starts (crypto/ca.c).  This module owns no event loop and no socket.
 *
 * Errors: functions return 0 (or a byte count) on success and a negative
 * value on failure: either -errno (-ENOMEM, -EINVAL, -ECONNRESET...) or one
 * of the TLS_E_* codes below.  tls_strerror() names any of them; a
 * connection also keeps a precise reason string (tls_conn_error()), e.g.
 * "peer certificate rejected: certificate has expired".
 *
 * Event-loop contract (the proxy drives everything):
 *
 *   1. The proxy accepts/connects the TCP socket, makes it O_NONBLOCK, and
 *      runs the RFC 9289 probe in cleartext (rpc/ builds the AUTH_TLS NULL
 *      call and the STARTTLS verifier).  The proxy must not have read any
 *      byte past the probe: the TLS layer reads the ClientHello (server) or
 *      ServerHello (client) from the fd itself.  A client that sent bytes
 *      after the probe call before the reply is broken: drop it.
 *   2. tls_conn_new(ctx, fd) then tls_conn_handshake() until it returns 0.
 *      TLS_WANT_READ: wait for EPOLLIN, call tls_conn_handshake() again.
 *      TLS_WANT_WRITE: wait for EPOLLOUT, call it again.
 *      Any other negative value: the connection failed; log
 *      tls_conn_error(), tls_conn_free(), close(fd).  A handshake never
 *      blocks and never loops forever; the proxy owns the timeout.
 *   3. Reading: on EPOLLIN call tls_conn_read() until it returns
 *      TLS_WANT_READ (or TLS_WANT_WRITE: then wait for EPOLLOUT and call
 *      tls_conn_read() again; TLS 1.3 post-handshake messages can need a
 *      write).  A proxy that caps the bytes it reads per event must, before
 *      sleeping in epoll, check tls_conn_pending(): bytes already pulled
 *      into OpenSSL are not signalled by epoll.
 *   4. Writing: tls_conn_write()/tls_conn_writev() return the count of
 *      bytes taken (possibly fewer than offered: partial writes are on).
 *      On TLS_WANT_WRITE (rarely TLS_WANT_READ) nothing was taken: keep the
 *      same bytes queued, wait for the event, and offer them again — the
 *      buffer may move and may have grown, but must start with the same
 *      bytes and must not shrink.  Coalesce small pieces (record mark +
 *      reply) into one call or use tls_conn_writev(): each call emits at
 *      least one TLS record and one syscall.
 *   5. End: tls_conn_shutdown() (sends close_notify, best effort), then
 *      tls_conn_free() and close(fd).  tls_conn_free() never closes fd.
 *
 * SIGPIPE: OpenSSL writes with write(2); the process must ignore SIGPIPE
 * (signal(SIGPIPE, SIG_IGN)) or a peer reset kills it.  Write errors are
 * then reported as -EPIPE / -ECONNRESET.
 *
 * Threads: a tls_ctx may be shared by threads (tls_conn_new is safe
 * concurrently); a tls_conn is used by one thread at a time.
 */
#ifndef GRIDVFS_TLS_H
#define GRIDVFS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Retry codes: not failures.  Negative so tls_conn_read can return bytes. */
#define TLS_WANT_READ (-20001)  /* wait for the fd to be readable, retry */
#define TLS_WANT_WRITE (-20002) /* wait for the fd to be writable, retry */

/* Failure codes (the connection is dead; tls_conn_error() says why). */
#define TLS_E_VERIFY (-20010)    /* we rejected the peer's certificate */
#define TLS_E_NOCERT (-20011)    /* the peer sent no certificate */
#define TLS_E_VERSION (-20012)   /* no shared protocol version (TLS 1.3) */
#define TLS_E_ALPN (-20013)      /* ALPN "sunrpc" not offered/selected */
#define TLS_E_PEER (-20014)      /* the peer aborted with a fatal alert */
#define TLS_E_EOF (-20015)       /* closed mid-handshake or truncated */
#define TLS_E_PROTO (-20016)     /* malformed TLS (garbage, bad record) */
#define TLS_E_KEYPERM (-20017)   /* private key file readable by others */
#define TLS_E_CONFIG (-20018)    /* cert/key/CA/CRL file unusable */
#define TLS_E_STATE (-20019)     /* call not valid in this state */

/* true for the two retry codes. */
static inline bool tls_want(long rc)
{
	return rc == TLS_WANT_READ || rc == TLS_WANT_WRITE;
}

/* A static string for any code this module returns (or -errno). */
const char *tls_strerror(int err);

/* ---------------------------------------------------------------------- */
/* Contexts: one per role and configuration, long lived.                  */

struct tls_ctx;
struct tls_conn;

struct tls_config {
	const char *tc_cert;   /* PEM chain: our certificate first */
	const char *tc_key;    /* PEM private key, mode 0600 or stricter */
	const char *tc_ca;     /* PEM bundle (file) or hashed dir of CAs */
	const char *tc_crl;    /* PEM CRL file, or NULL: no revocation check */
	const char *tc_server_name; /* client: DNS name or IP the server's
				     * certificate must match; required.
				     * server: ignored. */
	bool tc_server;        /* true: accept side, requires client certs */
	bool tc_zstd;          /* also offer (client) / accept (server) ALPN
				* "gridvfs-z1": compressed records between
				* gridvfs roles (proxy/zlink.h) */
};

/*
 * Build a context: TLS 1.3 only, ALPN "sunrpc", mutual X.509 verification
 * against tc_ca (the server requires a client certificate), the CRL when
 * tc_crl is set (every peer's issuing CA then needs a current CRL in it),
 * session resumption (server: stateless tickets; client: the newest
 * session of this ctx is offered on the next connection, so use one client
 * ctx per server).  The key file is refused if group or others may access
 * it.  Returns 0 and *out, or -EINVAL (bad config), -ENOMEM, TLS_E_KEYPERM,
 * TLS_E_CONFIG, -errno from open(); err (may be NULL) receives a sentence.
 */
int tls_ctx_new(const struct tls_config *cfg, struct tls_ctx **out,
		char *err, size_t errlen);

/* Drop the owner's reference: the context goes when the last connection
 * made from it is freed (a reload can replace it under live connections). */
void tls_ctx_free(struct tls_ctx *ctx);

/* ---------------------------------------------------------------------- */
/* Connections over a caller-owned, non-blocking, connected socket.       */

/* Wrap fd (not taken over: never closed here).  0, -ENOMEM, -EINVAL. */
int tls_conn_new(struct tls_ctx *ctx, int fd, struct tls_conn **out);

/*
 * Advance the handshake.  0: done (peer verified, ALPN sunrpc agreed);
 * TLS_WANT_READ / TLS_WANT_WRITE; or a failure code.  Failures are sticky:
 * every later call returns the same code.  Calling it again after 0
 * returns 0.
 */
int tls_conn_handshake(struct tls_conn *c);

/*
 * Read decrypted bytes.  >0: count; 0: the peer closed cleanly
 * (close_notify); TLS_WANT_READ / TLS_WANT_WRITE; TLS_E_EOF if the TCP
 * stream ended without close_notify; other failures.  TLS_E_STATE before
 * the handshake is done.
 */
ssize_t tls_conn_read(struct tls_conn *c, void *buf, size_t len);

/* Write: >0 bytes taken (partial allowed), retry codes, or a failure. */
ssize_t tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/*
 * Gather-write.  After the handshake, records are made into an output
 * buffer (up to 256 KiB ahead of the socket) and sent with one send()
 * each time: large pieces are encrypted where they lie, small ones share
 * 16 KiB records.  Returns the total taken — bytes taken are in records
 * and will reach the peer through tls_conn_flush() — a retry code if
 * nothing was taken, or a failure.  Retry with the iov advanced past the
 * bytes taken.
 */
ssize_t tls_conn_writev(struct tls_conn *c, const struct iovec *iov, int n);

/*
 * Send records already made (writev's or OpenSSL's own, e.g. close_notify).
 * 0: none left; TLS_WANT_WRITE: the socket is full, call again on
 * EPOLLOUT; a failure (sticky).  tls_conn_wpending() says whether any are
 * left: the caller keeps EPOLLOUT armed while it is true.
 */
int tls_conn_flush(struct tls_conn *c);
bool tls_conn_wpending(const struct tls_conn *c);

/* true if OpenSSL holds received data that epoll will not signal. */
bool tls_conn_pending(const struct tls_conn *c);

/*
 * Send close_notify.  0: sent (or nothing to do: the connection failed or
 * never finished its handshake); TLS_WANT_WRITE: retry on EPOLLOUT; a
 * failure.  We do not wait for the peer's close_notify.
 */
int tls_conn_shutdown(struct tls_conn *c);

/* Free the connection (the fd stays open).  NULL is fine. */
void tls_conn_free(struct tls_conn *c);

/*
 * The reason for the last failure ("" if none): a sentence such as
 * "peer certificate rejected: certificate revoked".  Valid until the next
 * call on c or tls_conn_free().
 */
const char *tls_conn_error(const struct tls_conn *c);

/* ---------------------------------------------------------------------- */
/* Peer identity and session facts (after a successful handshake).        */

/* Verify c's peer certificate again against ctx's CA bundle and CRL (a
 * reload): 0, -EACCES with the reason in why (revoked, expired...),
 * -ENOTCONN (no verified peer) or -ENOMEM. */
int tls_conn_recheck(const struct tls_conn *c, const struct tls_ctx *ctx,
		     char *why, size_t wlen);
/*
 * The peer certificate's subject DN in the Globus / OpenSSL "oneline"
 * slash form, e.g. "/O=gridvfs/CN=node1": bytes outside printable ASCII are
 * written \xHH, other characters (including '/' inside a value) as is —
 * the form grid-mapfiles hold.  0, -ENOTCONN (no verified peer),
 * -ERANGE (dnlen too small), -ENOMEM.
 */
int tls_conn_peer_dn(const struct tls_conn *c, char *dn, size_t dnlen);

/*
 * The idx-th DNS name in the peer's subjectAltName (0-based).
 * 0, -ENOENT (no such entry), -ENOTCONN, -ERANGE.
 */
int tls_conn_peer_dns(const struct tls_conn *c, unsigned idx, char *name,
		      size_t len);

struct tls_conn_info {
	bool ti_resumed;        /* the session was resumed from a ticket */
	const char *ti_version; /* "TLSv1.3": static string */
	const char *ti_cipher;  /* "TLS_AES_256_GCM_SHA384": static string */
	char ti_alpn[16];       /* "sunrpc" or "gridvfs-z1" */
};

/* true once the handshake agreed ALPN "gridvfs-z1" (both sides set
 * tc_zstd): records may then carry RPC_RM_ZSTD. */
bool tls_conn_zstd(const struct tls_conn *c);

/* Fill *info.  0, or -ENOTCONN before the handshake is done. */
int tls_conn_info(const struct tls_conn *c, struct tls_conn_info *info);

/* ---------------------------------------------------------------------- */
/* Quick-start CA (crypto/ca.c): EC P-256 keys, SHA-256 signatures.       */

/*
 * Create DIR (0700 if missing) with ca.crt, ca.key (0600) and an empty
 * crl.pem.  Refuses (-EEXIST) if DIR/ca.key exists.  0 or -errno.
 */
int tls_ca_init(const char *dir, char *err, size_t errlen);

/*
 * Issue DIR/NAME.crt and DIR/NAME.key (0600) with subject
 * /O=gridvfs/CN=NAME, valid for days.  server_hostname: a server
 * certificate (SAN DNS:name or IP:addr, EKU serverAuth); NULL: a client
 * certificate (EKU clientAuth).  dn_out receives the subject in slash form.
 * NAME is [A-Za-z0-9._-]+.  0 or -errno (-EINVAL, -EEXIST...).
 */
int tls_ca_issue(const char *dir, const char *name,
		 const char *server_hostname, int days, char *dn_out,
		 size_t dnlen, char *err, size_t errlen);

/*
 * Like tls_ca_issue with explicit validity in seconds relative to now
 * (both may be negative: an expired certificate for tests).  Overwrites an
 * existing NAME.
 */
int tls_ca_issue_validity(const char *dir, const char *name,
			  const char *server_hostname, long not_before_s,
			  long not_after_s, char *dn_out, size_t dnlen,
			  char *err, size_t errlen);

/* Add DIR/NAME.crt's serial to DIR/crl.pem (re-signed).  0 or -errno. */
int tls_ca_revoke(const char *dir, const char *name, char *err,
		  size_t errlen);

/* `gridvfs ca init|issue|revoke ...`; argv[0] is "ca".  Exit status. */
int tls_ca_main(int argc, char **argv);

#endif /* GRIDVFS_TLS_H */
