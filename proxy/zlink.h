/*
 * proxy/zlink.h — compression of RPC records between a client role and a
 * server role (docs/design.md, "Compressed link").
 *
 * Negotiated in the TLS handshake: the client role offers the ALPN id
 * "gridvfs-z1" before "sunrpc" (RFC 9289); a server role that knows it
 * selects it, anything else selects "sunrpc" and nothing changes.  On a
 * gridvfs-z1 connection a record mark may carry bit 30 (RPC_RM_ZSTD): the
 * record is then one fragment, the last, holding one zstd frame whose
 * header states the record's size; and bit 29 (RPC_RM_ZWANT): the sender
 * asks for compressed records back.  Either side may send any record
 * plain.  (--max-record is at most 64 MiB, so neither bit is a length.)
 *
 * Who decides: the client role, which makes the calls, measures its link
 * as goodput while calls are outstanding (bytes both ways over the time
 * any call waited, summed until 200 ms of such time): a latency- or
 * bandwidth-bound link shows as slow, a loopback or LAN as fast.  Under
 * --compress auto it packs its own records and asks the server role for
 * packed replies while that figure is below --compress-below, since on a
 * faster link the compressor would be slower than the wire.  The server
 * role follows the ask of the newest record it received.  Under on, a
 * role always packs (and asks).  Records that do not shrink by an eighth
 * go plain, and the sender then skips a growing number of records before
 * it tries again (random or encrypted data costs little).
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

#include "rpc/rpc.h"

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
	uint64_t zs_unpacked_wire; /* ... their size on the wire */
	uint64_t zs_unpacked_bytes; /* ... and their decoded size */
};

/* The sending half of one connection. */
struct zlink_out {
	enum zlink_mode zo_mode;
	uint64_t zo_below;    /* auto: compress while rate < this (bytes/s) */
	uint64_t zo_rate;     /* measured goodput, bytes/s; 0: none yet */
	bool zo_ask;          /* mark our records RPC_RM_ZWANT */
	bool zo_peer_asks;    /* the peer's newest record asked */
	uint64_t zo_busy_since; /* ns: calls outstanding since; 0: none */
	uint64_t zo_busy_base;  /* the byte count at zo_busy_since */
	uint64_t zo_acc_ns, zo_acc_bytes; /* busy time and bytes not sampled */
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
 * The client role's goodput meter: call it whenever the count of
 * outstanding calls changes or a reply arrives, with busy = calls are
 * outstanding now, bytes = all bytes read and written on the connection
 * so far, now_ns monotonic.  Updates zo_rate and, under auto, zo_ask.
 */
void zlink_meter(struct zlink_out *z, bool busy, uint64_t bytes,
		 uint64_t now_ns);

/* The record mark's flags for a record of ours (RPC_RM_ZWANT or 0). */
static inline uint32_t zlink_mark_flags(const struct zlink_out *z)
{
	return z && z->zo_ask ? RPC_RM_ZWANT : 0;
}

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
