/*
 * proxy/zlink.h — compression of RPC records between a client role and a
 * server role (docs/design.md, "Compressed link").
 *
 * Negotiated in the TLS handshake: the client role offers the ALPN id
 * "gridvfs-z1" before "sunrpc" (RFC 9289); a server role that knows it
 * selects it, anything else selects "sunrpc" and nothing changes.  On a
 * gridvfs-z1 connection a record mark may carry bit 30 (RPC_RM_ZSTD): the
 * record is then one fragment, the last, holding one zstd frame whose
 * header states the record's size.  Either side may send any record plain.
 *
 * The sender decides per record: under --compress auto, only while the
 * link's measured rate (bytes the socket took while it was the bottleneck)
 * is below --compress-below, since on a faster link the compressor would
 * be slower than the wire; under on, always.  Records that do not shrink
 * by an eighth go plain, and the sender then skips a growing number of
 * records before it tries again (random or encrypted data costs little).
 *
 * The receiver never trusts a frame: the stated size must be within
 * --max-record, the frame must fill the fragment exactly and decode to
 * exactly that size, with the decoder's window capped to the record bound.
 * Any fault closes the connection with the reason in the log.
 *
 * This module has no event loop and no px_ types: buffers in, buffers out
 * (tests/unit/test_zlink.c drives it directly).  One loop thread uses a
 * zlink_out / zlink_in at a time; the zstd contexts behind them are per
 * thread and made on first use.
 */
#ifndef GRIDVFS_ZLINK_H
#define GRIDVFS_ZLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZLINK_ALPN "gridvfs-z1"
/* RPC_RM_ZSTD (rpc/rpc.h): the record mark bit of a compressed record */
#define ZLINK_MIN 1024u         /* smaller records always go plain */

enum zlink_mode { ZLINK_OFF = 0, ZLINK_AUTO = 1, ZLINK_ON = 2 };

/* Counters, summed per daemon for status and /metrics. */
struct zlink_stats {
	uint64_t zs_raw_bytes;   /* record bytes that went compressed */
	uint64_t zs_wire_bytes;  /* ... and what they became */
	uint64_t zs_packed;      /* records sent compressed */
	uint64_t zs_incompressible; /* tried, did not shrink enough: plain */
	uint64_t zs_unpacked;    /* compressed records received */
	uint64_t zs_unpacked_bytes; /* ... and their decoded size */
};

/* The sending half of one connection. */
struct zlink_out {
	enum zlink_mode zo_mode;
	uint64_t zo_below;    /* auto: compress while rate < this (bytes/s) */
	uint64_t zo_rate;     /* measured link rate, bytes/s; 0: none yet */
	uint64_t zo_busy_t0;  /* ns: the socket has been full since; 0: not */
	uint64_t zo_busy_bytes; /* bytes the socket took since zo_busy_t0 */
	unsigned zo_skip;     /* records left to send plain (back-off) */
	unsigned zo_fails;    /* incompressible records in a row */
	struct zlink_stats *zo_stats; /* may be NULL */
};

void zlink_out_init(struct zlink_out *z, enum zlink_mode mode,
		    uint64_t below_bytes_per_s, struct zlink_stats *stats);

/* Should a record of len bytes be tried?  (Consumes a back-off step.) */
bool zlink_want(struct zlink_out *z, size_t len);

/*
 * Compress src[0..len) into dst (room for zlink_bound(len) bytes).
 * Returns the frame's length, or 0 when the record should go plain (it
 * did not shrink by an eighth, or zstd failed: never fatal for the sender).
 */
size_t zlink_bound(size_t len);
size_t zlink_pack(struct zlink_out *z, const uint8_t *src, size_t len,
		  uint8_t *dst, size_t cap);

/*
 * Tell the rate meter what a flush did: `took` bytes went into the
 * socket, and afterwards the socket was full (`blocked`), or the queue
 * emptied (`drained`), or neither (a budget ran out).  now_ns: monotonic.
 */
void zlink_sent(struct zlink_out *z, size_t took, bool blocked, bool drained,
		uint64_t now_ns);

/*
 * Decode one compressed record: src[0..len) must be exactly one zstd frame
 * stating a size in 1..max.  On success *out is a malloc'd buffer with
 * `headroom` spare bytes in front, *outlen the record's size, and 0 is
 * returned.  Otherwise -EBADMSG (not a frame, trailing bytes, corrupt,
 * size mismatch), -EMSGSIZE (states more than max, or no size), -ENOMEM;
 * why (may be NULL) receives a sentence.
 */
int zlink_unpack(const uint8_t *src, size_t len, size_t max, size_t headroom,
		 uint8_t **out, size_t *outlen, struct zlink_stats *stats,
		 char *why, size_t whylen);

/* Free this thread's zstd contexts (at thread exit; optional). */
void zlink_thread_done(void);

#endif /* GRIDVFS_ZLINK_H */
