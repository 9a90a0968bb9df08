/*
 * rpc/rpc.h — ONC RPC (RFC 5531) on plain buffers: TCP record marking, call
 * and reply headers, AUTH_SYS, a zero-copy XDR cursor that reads, skips and
 * patches in place, and NFSv3 / MOUNTv3 (RFC 1813) message walkers.
 *
 * This module is pure: bytes in, decisions out.  It never touches a socket
 * and never allocates on the XDR paths (only the record reassembler owns a
 * message buffer).  Errors are negative errno values:
 *   -EBADMSG   malformed input (truncated, bad enum, bad bool, bad length)
 *   -EMSGSIZE  a length exceeds a protocol or configured bound
 *   -ENOSPC    an encoder ran out of room in the caller's buffer
 */
#ifndef GRIDVFS_RPC_H
#define GRIDVFS_RPC_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---------------------------------------------------------------------- */
/* Constants (RFC 5531, RFC 1813, RFC 9289)                                */

#define RPC_VERS 2u
#define RPC_CALL 0u
#define RPC_REPLY 1u

#define RPC_MSG_ACCEPTED 0u
#define RPC_MSG_DENIED 1u

enum rpc_accept_stat {
	RPC_ACC_SUCCESS = 0,
	RPC_ACC_PROG_UNAVAIL = 1,
	RPC_ACC_PROG_MISMATCH = 2,
	RPC_ACC_PROC_UNAVAIL = 3,
	RPC_ACC_GARBAGE_ARGS = 4,
	RPC_ACC_SYSTEM_ERR = 5,
};

enum rpc_reject_stat { RPC_REJ_MISMATCH = 0, RPC_REJ_AUTH_ERROR = 1 };

enum rpc_auth_stat {
	RPC_AUTH_OK = 0,
	RPC_AUTH_BADCRED = 1,
	RPC_AUTH_REJECTEDCRED = 2,
	RPC_AUTH_BADVERF = 3,
	RPC_AUTH_REJECTEDVERF = 4,
	RPC_AUTH_TOOWEAK = 5,
	RPC_AUTH_INVALIDRESP = 6,
	RPC_AUTH_FAILED = 7,
};

#define RPC_AUTH_NONE 0u
#define RPC_AUTH_SYS 1u
#define RPC_AUTH_SHORT 2u
#define RPC_AUTH_DH 3u
#define RPC_AUTH_GSS 6u
#define RPC_AUTH_TLS 7u /* RFC 9289; libtirpc has no constant for it */

#define RPC_AUTH_MAX_BODY 400u      /* opaque_auth body bound */
#define RPC_AUTHSYS_MAX_MACHINE 255u
#define RPC_AUTHSYS_MAX_GIDS 16u

#define RPC_PROG_NFS 100003u
#define RPC_PROG_MOUNT 100005u
#define RPC_PROG_NLM 100021u
#define RPC_PROG_NFSACL 100227u

/* ---------------------------------------------------------------------- */
/* Big-endian helpers for patching in place                                */

static inline uint32_t rpc_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline void rpc_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint64_t rpc_get64(const uint8_t *p)
{
	return (uint64_t)rpc_get32(p) << 32 | rpc_get32(p + 4);
}

static inline void rpc_put64(uint8_t *p, uint64_t v)
{
	rpc_put32(p, (uint32_t)(v >> 32));
	rpc_put32(p + 4, (uint32_t)v);
}

/* ---------------------------------------------------------------------- */
/* XDR cursor                                                              */

/*
 * A cursor over a caller-owned buffer, used both to decode and to encode.
 * Errors are sticky: once x_err is set every later call fails with it, so a
 * walker may check once at the end.  Pointers returned point into the buffer
 * and live as long as the buffer does; writing through them patches the
 * message in place.
 */
struct rpc_xdr {
	uint8_t *x_base; /* buffer start (not owned) */
	size_t x_len;    /* bytes valid (decode) or capacity (encode) */
	size_t x_pos;    /* cursor */
	int x_err;       /* 0 or a negative errno, sticky */
};

static inline void rpc_xdr_init(struct rpc_xdr *x, void *buf, size_t len)
{
	x->x_base = buf;
	x->x_len = len;
	x->x_pos = 0;
	x->x_err = 0;
}

static inline size_t rpc_xdr_left(const struct rpc_xdr *x)
{
	return x->x_err ? 0 : x->x_len - x->x_pos;
}

/* Decoders: 0 on success, else the (sticky) negative error. */
int rpc_xdr_u32(struct rpc_xdr *x, uint32_t *v);
int rpc_xdr_u64(struct rpc_xdr *x, uint64_t *v);
/* A bool must be 0 or 1; anything else is -EBADMSG. */
int rpc_xdr_bool(struct rpc_xdr *x, bool *v);
/* Skip n bytes plus XDR padding to a multiple of four. */
int rpc_xdr_skip(struct rpc_xdr *x, size_t n);
/* Fixed-length opaque[n]: pointer to its n bytes (padding skipped), or NULL. */
uint8_t *rpc_xdr_fixed(struct rpc_xdr *x, size_t n);
/*
 * Variable-length opaque<max> (or string<max>): pointer to the data, its
 * length in *len.  A length above max is -EMSGSIZE.  Returns NULL on error;
 * for a zero-length item it returns a valid non-NULL pointer.
 */
uint8_t *rpc_xdr_opaque(struct rpc_xdr *x, uint32_t max, uint32_t *len);

/* Encoders: write at the cursor; -ENOSPC when the buffer is full. */
int rpc_xdr_put_u32(struct rpc_xdr *x, uint32_t v);
int rpc_xdr_put_u64(struct rpc_xdr *x, uint64_t v);
/* Variable-length opaque: length word, bytes, zero padding. */
int rpc_xdr_put_opaque(struct rpc_xdr *x, const void *p, uint32_t len);
/* Fixed-length opaque: bytes and zero padding, no length word. */
int rpc_xdr_put_fixed(struct rpc_xdr *x, const void *p, size_t len);
/* Raw bytes, no padding: one piece of an item built from several (the
 * caller pads the whole item once, e.g. with rpc_xdr_put_fixed(x, "", n)). */
int rpc_xdr_put_bytes(struct rpc_xdr *x, const void *p, size_t len);

/* ---------------------------------------------------------------------- */
/* TCP record marking                                                      */

#define RPC_RM_LAST 0x80000000u
#define RPC_RM_LENMASK 0x7fffffffu
/* Only between gridvfs roles that agreed on it (proxy/zlink.h): the record
 * is one last fragment holding a zstd frame.  Elsewhere the bit is part of
 * the length, which --max-record then refuses. */
#define RPC_RM_ZSTD 0x40000000u
/* ... and the sender asks for compressed records back. */
#define RPC_RM_ZWANT 0x20000000u
/* Bytes reserved in front of every reassembled message, so a sender can
 * write its record mark there and send the message with one write. */
#define RPC_REC_HEADROOM 4u
/* A message split into more fragments than this is refused (-EMSGSIZE):
 * it bounds the work an endless stream of empty fragments can cause. */
#define RPC_REC_MAX_FRAGS 1024u

/*
 * Reassembles records from a byte stream.  The reassembler owns the message
 * buffer until rpc_rec_take() hands it over.  Messages are bounded by
 * r_max; past it the stream is unusable (-EMSGSIZE) and the caller should
 * drop the connection.
 */
struct rpc_rec {
	uint8_t *r_buf;       /* RPC_REC_HEADROOM + message bytes, owned */
	size_t r_len;         /* message bytes so far */
	size_t r_cap;         /* message capacity of r_buf */
	size_t r_max;         /* bound on one message */
	uint32_t r_frag_left; /* bytes still due in the current fragment */
	uint32_t r_nfrags;    /* fragments of the current message */
	bool r_last;          /* the current fragment ends the message */
	bool r_in_frag;       /* a fragment header has been read */
	uint8_t r_hdr[4];     /* partial fragment header */
	uint8_t r_hdr_have;
	bool r_done;          /* a whole message is ready */
	bool r_zok;           /* RPC_RM_ZSTD marks are allowed (negotiated) */
	bool r_zstd;          /* the message (ready or coming) is compressed;
			       * rpc_rec_take() clears it: read it first */
	bool r_zwant;         /* the newest mark asked for compressed
			       * records back (kept across messages) */
};

void rpc_rec_init(struct rpc_rec *r, size_t max);
void rpc_rec_free(struct rpc_rec *r);
/* True while part of a message (or of a fragment header) is buffered. */
bool rpc_rec_partial(const struct rpc_rec *r);
/*
 * Consume bytes from p[0..n).  Returns the number consumed (it stops after a
 * message completes; then rpc_rec_ready() is true) or a negative error:
 * -EMSGSIZE (message above r_max or too many fragments), -EBADMSG (a
 * zero-length message, or a compressed fragment that is not a whole
 * message), -ENOMEM.
 */
ssize_t rpc_rec_feed(struct rpc_rec *r, const uint8_t *p, size_t n);
/*
 * Zero-copy path for large fragments: where the next *room bytes of the
 * stream may be read directly.  Returns NULL when the reassembler is not
 * inside a fragment body (the caller then feeds through a staging buffer).
 * After reading k bytes there, call rpc_rec_commit(r, k).
 */
uint8_t *rpc_rec_direct(struct rpc_rec *r, size_t *room);
int rpc_rec_commit(struct rpc_rec *r, size_t k);
static inline bool rpc_rec_ready(const struct rpc_rec *r) { return r->r_done; }
/*
 * Hand over the finished message: returns the buffer (message at
 * buf + RPC_REC_HEADROOM, length in *len).  The caller frees it with free().
 * The reassembler starts a new message.
 */
uint8_t *rpc_rec_take(struct rpc_rec *r, size_t *len);
/* Write a single last-fragment record mark for a message of len bytes. */
static inline void rpc_rec_mark(uint8_t *hdr, size_t len)
{
	rpc_put32(hdr, RPC_RM_LAST | (uint32_t)len);
}

/* ---------------------------------------------------------------------- */
/* Call and reply headers                                                  */

struct rpc_call {
	uint32_t c_xid, c_prog, c_vers, c_proc;
	uint32_t c_cred_flavor, c_cred_len;
	size_t c_cred_off;  /* offset of the credential's flavor word */
	size_t c_cred_body; /* offset of the credential body */
	uint32_t c_verf_flavor, c_verf_len;
	size_t c_verf_off;  /* offset of the verifier's flavor word */
	size_t c_verf_body; /* offset of the verifier body */
	size_t c_args_off;  /* offset of the procedure arguments */
};

/* Why a call header was refused, and so which reply it deserves. */
enum rpc_call_verdict {
	RPC_CALL_OK = 0,
	RPC_CALL_DROP = -1,     /* no usable xid or not a call: drop silently */
	RPC_CALL_RPCVERS = -2,  /* MSG_DENIED / RPC_REJ_MISMATCH (2, 2) */
	RPC_CALL_BADCRED = -3,  /* MSG_DENIED / AUTH_ERROR / AUTH_BADCRED */
	RPC_CALL_BADVERF = -4,  /* MSG_DENIED / AUTH_ERROR / AUTH_BADVERF */
	RPC_CALL_GARBAGE = -5,  /* header truncated after prog/vers/proc */
};

/*
 * Parse a call header.  AUTH_SYS credentials are validated in full
 * (machinename <= 255, gids <= 16, body length consistent).  On failure
 * the fields parsed so far (at least c_xid unless RPC_CALL_DROP) are set.
 */
enum rpc_call_verdict rpc_call_parse(const uint8_t *msg, size_t len,
				     struct rpc_call *c);
struct rpc_authsys;
/* The same, also giving the decoded AUTH_SYS credential (as_out is set
 * only when the flavor is AUTH_SYS and the verdict RPC_CALL_OK). */
enum rpc_call_verdict rpc_call_parse_cred(const uint8_t *msg, size_t len,
					  struct rpc_call *c,
					  struct rpc_authsys *as_out);

struct rpc_authsys {
	uint32_t as_stamp;
	uint32_t as_machine_len;
	char as_machine[RPC_AUTHSYS_MAX_MACHINE + 1]; /* NUL-terminated copy */
	uint32_t as_uid, as_gid;
	uint32_t as_ngids;
	uint32_t as_gids[RPC_AUTHSYS_MAX_GIDS];
};

/* Decode an AUTH_SYS body that must fill exactly len bytes. */
int rpc_authsys_parse(const uint8_t *body, size_t len, struct rpc_authsys *a);
/* Encode an AUTH_SYS body at the cursor (no flavor/length words). */
int rpc_authsys_encode(struct rpc_xdr *x, const struct rpc_authsys *a);
/* Encoded body size of a, for sizing buffers. */
size_t rpc_authsys_size(const struct rpc_authsys *a);

struct rpc_reply {
	uint32_t r_xid;
	uint32_t r_stat;         /* RPC_MSG_ACCEPTED / RPC_MSG_DENIED */
	uint32_t r_verf_flavor, r_verf_len;
	size_t r_verf_off;       /* offset of the verifier flavor (accepted) */
	uint32_t r_accept_stat;  /* accepted */
	uint32_t r_reject_stat;  /* denied */
	uint32_t r_auth_stat;    /* denied, AUTH_ERROR */
	uint32_t r_low, r_high;  /* PROG_MISMATCH / RPC_REJ_MISMATCH */
	size_t r_res_off;        /* offset of the results (SUCCESS) */
};

/* Parse a reply header: 0, or -EBADMSG (r_xid is set if at least 4 bytes). */
int rpc_reply_parse(const uint8_t *msg, size_t len, struct rpc_reply *r);

/*
 * Build a complete reply message (no record mark) at the cursor.
 * accepted: SUCCESS header with an AUTH_NONE verifier (results follow, to
 * be appended by the caller), or an error status; low/high are used for
 * RPC_ACC_PROG_MISMATCH only.  denied: RPC_REJ_MISMATCH (low/high) or AUTH_ERROR.
 */
int rpc_reply_accepted(struct rpc_xdr *x, uint32_t xid, uint32_t stat,
		       uint32_t low, uint32_t high);
int rpc_reply_rpc_mismatch(struct rpc_xdr *x, uint32_t xid);
int rpc_reply_auth_error(struct rpc_xdr *x, uint32_t xid, uint32_t why);

/*
 * Build a call header at the cursor; arguments are appended by the caller.
 * cred/verf bodies may be NULL when their length is zero.
 */
int rpc_call_build(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
		   uint32_t vers, uint32_t proc, uint32_t cred_flavor,
		   const void *cred, uint32_t cred_len, uint32_t verf_flavor,
		   const void *verf, uint32_t verf_len);

/*
 * RFC 9289 §4.1.  The client probes with a NULL call whose credential is
 * AUTH_TLS (empty body) and verifier AUTH_NONE; a server that will do TLS
 * answers MSG_ACCEPTED/SUCCESS with an AUTH_NONE verifier whose 8-byte body
 * is "STARTTLS", and the TLS handshake follows on the same connection.
 */
bool rpc_tls_is_probe(const struct rpc_call *c);
int rpc_tls_probe_build(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
			uint32_t vers);
int rpc_tls_probe_reply(struct rpc_xdr *x, uint32_t xid);
/* 0: the server will do TLS; -EPROTONOSUPPORT: a well-formed refusal
 * (e.g. AUTH_ERROR); -EBADMSG: not a reply to xid. */
int rpc_tls_probe_check(const uint8_t *msg, size_t len, uint32_t xid);

const char *rpc_accept_stat_name(uint32_t stat);
const char *rpc_auth_stat_name(uint32_t stat);

/* ---------------------------------------------------------------------- */
/* NFSv3 and MOUNTv3 walkers                                               */

#define NFS3_VERS 3u
#define MOUNT3_VERS 3u
#define NFS3_FHSIZE 64u
#define NFS3_COOKIEVERFSIZE 8u
#define NFS3_CREATEVERFSIZE 8u
#define NFS3_WRITEVERFSIZE 8u
#define MNT3_PATHLEN 1024u
#define MNT3_NAMELEN 255u
#define NFS3_FATTR_SIZE 84u   /* encoded fattr3 */
#define NFS3_FATTR_UID 12u    /* offset of uid inside fattr3 */
#define NFS3_FATTR_GID 16u    /* offset of gid inside fattr3 */
#define NFS3_FATTR_SIZE_OFF 20u
#define NFS3_FATTR_FSID 44u
#define NFS3_FATTR_FILEID 52u
#define NFS3_FATTR_MTIME 68u
#define NFS3_FATTR_CTIME 76u
#define NFS3_WCC_ATTR_SIZE 24u /* size, mtime, ctime */

enum nfs3_proc {
	NFS3_NULL = 0, NFS3_GETATTR, NFS3_SETATTR, NFS3_LOOKUP, NFS3_ACCESS,
	NFS3_READLINK, NFS3_READ, NFS3_WRITE, NFS3_CREATE, NFS3_MKDIR,
	NFS3_SYMLINK, NFS3_MKNOD, NFS3_REMOVE, NFS3_RMDIR, NFS3_RENAME,
	NFS3_LINK, NFS3_READDIR, NFS3_READDIRPLUS, NFS3_FSSTAT, NFS3_FSINFO,
	NFS3_PATHCONF, NFS3_COMMIT,
	NFS3_NPROC
};

enum mnt3_proc {
	MNT3_NULL = 0, MNT3_MNT, MNT3_DUMP, MNT3_UMNT, MNT3_UMNTALL,
	MNT3_EXPORT,
	MNT3_NPROC
};

#define NFS3_OK 0u

/*
 * What a walker found.  Every callback may be NULL.  Pointers point into
 * the message; a callback may patch the bytes it is given in place (same
 * length).  Callbacks are called in message order.
 */
struct rpc_nfs3_visit {
	/* An encoded fattr3 (NFS3_FATTR_SIZE bytes): GETATTR, every
	 * post_op_attr (failure arms and READDIRPLUS entries included), every
	 * wcc_data after. */
	void (*v_fattr)(void *ctx, uint8_t *fattr);
	/* A wcc_data before (pre_op_attr present): size, mtime, ctime. */
	void (*v_wcc_pre)(void *ctx, uint8_t *wcc_attr);
	/* A sattr3's set_uid / set_gid: pointers to the id words when set,
	 * NULL when not set. */
	void (*v_sattr)(void *ctx, uint8_t *uid, uint8_t *gid);
	/* A file handle (nfs_fh3 data or post_op_fh3 handle), n-th in the
	 * message counting from 0. */
	void (*v_fh)(void *ctx, unsigned n, uint8_t *fh, uint32_t len);
	/* READ call arguments. */
	void (*v_read_args)(void *ctx, uint64_t off, uint32_t count);
	/* WRITE call arguments with the data. */
	void (*v_write_args)(void *ctx, uint64_t off, uint32_t count,
			     uint32_t stable, uint8_t *data, uint32_t len);
	/* READ resok: count, eof and the data. */
	void (*v_read_res)(void *ctx, uint32_t count, bool eof, uint8_t *data,
			   uint32_t len);
	/* WRITE resok: count, committed, verifier (8 bytes). */
	void (*v_write_res)(void *ctx, uint32_t count, uint32_t committed,
			    uint8_t *verf);
	/* COMMIT call arguments. */
	void (*v_commit_args)(void *ctx, uint64_t off, uint32_t count);
	/* COMMIT resok verifier (8 bytes). */
	void (*v_commit_res)(void *ctx, uint8_t *verf);
	/* The nfsstat3 of a reply (called first for every reply). */
	void (*v_status)(void *ctx, uint32_t status);
};

/*
 * Walk the arguments (call) or results (reply) of NFSv3 procedure proc.
 * buf/len cover the arguments or results only (after the RPC header).
 * Returns the number of bytes the body occupies (trailing bytes are the
 * caller's business), -EBADMSG for malformed input, -EMSGSIZE for a length
 * above its protocol bound, -ENAMETOOLONG for a call's file name (> 255)
 * or symlink target (> 4096) that is well formed but too long (answer
 * NFS3ERR_NAMETOOLONG), -EINVAL for proc >= NFS3_NPROC.
 */
ssize_t rpc_nfs3_walk_call(uint32_t proc, uint8_t *buf, size_t len,
			   const struct rpc_nfs3_visit *v, void *ctx);
ssize_t rpc_nfs3_walk_reply(uint32_t proc, uint8_t *buf, size_t len,
			    const struct rpc_nfs3_visit *v, void *ctx);
/* MOUNTv3: same contract; the MNT reply's handle goes to v_fh. */
ssize_t rpc_mnt3_walk_call(uint32_t proc, uint8_t *buf, size_t len,
			   const struct rpc_nfs3_visit *v, void *ctx);
ssize_t rpc_mnt3_walk_reply(uint32_t proc, uint8_t *buf, size_t len,
			    const struct rpc_nfs3_visit *v, void *ctx);

const char *rpc_nfs3_proc_name(uint32_t proc);
const char *rpc_mnt3_proc_name(uint32_t proc);
/* True for procedures that must not be blindly retried (PROTOCOL.md). */
bool rpc_nfs3_proc_nonidempotent(uint32_t proc);

#endif /* GRIDVFS_RPC_H */
