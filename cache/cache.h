/*
 * cache/cache.h — the client-role proxy's persistent block cache in LMDB
 * (read path).  Blocks of NFSv3 files are keyed by file identity (fsid,
 * fileid) and block number, tagged with the file version (size, mtime,
 * ctime) they were read under, and served only while that version is
 * current.  Design, schema, policies and limits: docs/cache.md.
 *
 * Threads.  One struct cache is shared by every thread of the process.
 *   - cache_read*, cache_note_*, cache_fill, cache_invalidate and
 *     cache_stats never block on disk I/O, a write transaction or fsync:
 *     they read the LMDB mmap in a short read transaction (one per calling
 *     thread, kept reset between calls), take short in-memory locks, and
 *     hand writes to the cache's own writer thread through a bounded queue
 *     (copying the data; a full queue drops the fill and counts it).  Call
 *     them from any thread, the event loop included.
 *   - cache_flush and cache_close wait for the writer: never call them on
 *     the event loop except at shutdown.
 *   - The writer thread (inside cache/) owns every write transaction,
 *     commits in groups, persists access order and evicts.
 *
 * Errors are 0 or a negative errno value.  A full disk or LMDB map never
 * surfaces as an error of these calls: the cache switches to bypass (fills
 * dropped, logged once, retried later) and keeps serving what it holds.
 */
#ifndef GRIDVFS_CACHE_H
#define GRIDVFS_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An encoded NFSv3 fattr3 is this many bytes (same as rpc.h NFS3_FATTR_SIZE). */
#define CACHE_FATTR_SIZE 84u

/* Longest NFSv3 file handle (rpc.h NFS3_FHSIZE). */
#define CACHE_FH_MAX 64u

#define CACHE_BLOCK_DEFAULT (64u * 1024u)
#define CACHE_BLOCK_MIN (4u * 1024u)
#define CACHE_BLOCK_MAX (1024u * 1024u)

/* ---------------------------------------------------------------------- */
/* Opening                                                                 */

/* cache_opts.co_flags */
#define CACHE_OPEN_NOSYNC 0x1u /* no fsync at commit (tests, benchmarks; an
                                  OS crash may then corrupt the cache, which
                                  a later open may not detect) */

struct cache_opts {
	const char *co_dir;        /* cache directory; created if missing */
	uint64_t co_max_bytes;     /* --cache-size: cap on block footprint */
	uint32_t co_block_size;    /* --cache-block; 0 = 64 KiB; power of two
	                              CACHE_BLOCK_MIN..CACHE_BLOCK_MAX */
	uint32_t co_immutable_ttl; /* seconds an immutable file's first version
	                              is trusted; 0 = 3600 */
	uint64_t co_queue_bytes;   /* fill data queued for the writer; 0 = 64 MiB */
	uint32_t co_group_bytes;   /* commit a group at this much data; 0 = 32 MiB */
	uint32_t co_group_ms;      /* ... or this long after it began; 0 = 5 */
	int co_writer_nice;        /* the writer thread's nice value (0..19):
	                            * fills are background work; 0 = as the
	                            * process */
	uint32_t co_retry_ms;      /* bypass: retry writing after; 0 = 30000 */
	unsigned co_low_pct;       /* evict down to this % of the cap; 0 = 90 */
	unsigned co_flags;         /* CACHE_OPEN_* */
	/* Log sink (prio is a syslog LOG_* level); NULL = stderr.  Called from
	 * any cache thread, the writer included; must be thread-safe. */
	void (*co_log)(int prio, const char *msg);
};

struct cache;

/*
 * Open (or create) the cache in opts->co_dir and start its writer thread.
 * Stale LMDB reader slots are cleared.  A corrupt or incompatible cache
 * (not an LMDB file, truncated, other format version or block size, or
 * marked corrupt by an earlier run) is renamed aside to
 * data.mdb.bad-YYYYmmddTHHMMSS (the one previous such file is removed),
 * rebuilt empty and logged.  The LMDB map is sized 2 * max + 64 MiB.
 * Returns 0 and *out, or -EINVAL (bad options), -EBUSY (another process
 * holds the cache dir), -errno from the file system or LMDB (as -EIO).
 * *out is owned by the caller until cache_close().
 */
int cache_open(const struct cache_opts *opts, struct cache **out);

/*
 * Drain the writer queue, commit, stop the writer, close LMDB, free c.
 * No other thread may use c during or after this call.  NULL is a no-op.
 */
void cache_close(struct cache *c);

/* Wait until everything queued before this call is committed (or dropped
 * because the cache is in bypass).  Blocks: not for the event loop. */
int cache_flush(struct cache *c);

/* The block size the cache was opened with. */
uint32_t cache_block_size(const struct cache *c);

/* ---------------------------------------------------------------------- */
/* Block arithmetic for the proxy's in-flight table (bs = block size)     */

static inline uint64_t cache_blk_of(uint64_t off, uint32_t bs)
{
	return off / bs;
}

/* First block at or after off (the first block a range starting at off
 * covers whole). */
static inline uint64_t cache_blk_ceil(uint64_t off, uint32_t bs)
{
	return (off + bs - 1) / bs;
}

static inline uint64_t cache_blk_start(uint64_t blk, uint32_t bs)
{
	return blk * bs;
}

/* Bytes of block blk in a file of size bytes (0 past the end). */
static inline uint32_t cache_blk_len(uint64_t blk, uint32_t bs, uint64_t size)
{
	uint64_t s = blk * bs;

	if (s >= size)
		return 0;
	return size - s < bs ? (uint32_t)(size - s) : bs;
}

/* Widen [off, off+count) to whole blocks, clipped at size: what the proxy
 * should READ upstream so that the reply fills the cache. */
static inline void cache_blk_align(uint64_t off, uint32_t count, uint32_t bs,
                                   uint64_t size, uint64_t *aoff,
                                   uint64_t *alen)
{
	uint64_t s = off / bs * bs;
	uint64_t e = (off + count + bs - 1) / bs * bs;

	if (e > size)
		e = size > s ? size : s;
	*aoff = s;
	*alen = e - s;
}

/* ---------------------------------------------------------------------- */
/* File identity and versions                                              */

struct cache_ident {
	uint64_t ci_fsid;
	uint64_t ci_fileid;
};

/* Identity of the file an encoded fattr3 describes. */
void cache_ident_of_fattr(const uint8_t *fattr3, struct cache_ident *id);

/* True when two fattr3 describe the same file version (fsid, fileid, size,
 * mtime, ctime equal).  The proxy uses it to check that upstream data it
 * assembles with cached blocks (cache_read_partial) is of one version. */
bool cache_fattr_same_version(const uint8_t *a, const uint8_t *b);

/* True when two fattr3 describe the same file version as far as who may
 * read it goes: the version above plus the mode.  An access grant holds
 * for one such version only (issue 16 item 9): a chmod, chown or chgrp
 * moves ctime, and comparing the mode too covers a chmod within one tick
 * of a ctime clock too coarse to move.  uid/gid are left out: identity
 * mapping rewrites them in the client's replies but not the proxy's own. */
bool cache_fattr_same_access(const uint8_t *a, const uint8_t *b);

/* Policy flags of cache_note_* / cache_fill (per call: the proxy passes
 * the export's or path pattern's policy every time). */
#define CACHE_F_STRICT 0x0u    /* close-to-open: every fattr3 seen updates
                                  the version; older blocks never served */
#define CACHE_F_IMMUTABLE 0x1u /* golden image: the first version seen is
                                  trusted for co_immutable_ttl seconds;
                                  other versions seen meanwhile are ignored */

/*
 * Every fattr3 the proxy sees in any reply (GETATTR, LOOKUP obj and dir
 * attributes, post_op_attr, wcc_data after-attributes, READDIRPLUS
 * entries): update the file's current version.  A new version makes the
 * blocks of older ones unservable at once (the writer deletes them later).
 * The bytes are kept and returned by cache_read as the post_op_attr, so
 * pass them as the client will see them.  Only regular files (ftype 1)
 * are tracked; others are ignored.  Never blocks; O(1); about 100 ns.
 * Returns 0, or -EINVAL (fattr3 NULL).
 */
int cache_note_attr(struct cache *c, const uint8_t *fattr3, unsigned flags);

/*
 * A reply paired a file handle with attributes of that file (LOOKUP,
 * READDIRPLUS entry, GETATTR/ACCESS/READ/SETATTR… of the call's handle):
 * remember handle → identity (persisted with the file's blocks, so a
 * restart is warm) and note the attributes as cache_note_attr does.
 * fhlen 1..CACHE_FH_MAX.  Returns 0 or -EINVAL.
 */
int cache_note_handle(struct cache *c, const void *fh, size_t fhlen,
                      const uint8_t *fattr3, unsigned flags);

/* Identity the handle was last noted with: 0, or -ENOENT. */
int cache_ident_of_handle(struct cache *c, const void *fh, size_t fhlen,
                          struct cache_ident *id);

/* ---------------------------------------------------------------------- */
/* Reading                                                                 */

/*
 * Serve READ(fh, off, count) from the cache.  The range is clipped at the
 * current version's size.  Returns 0 only when every block the clipped
 * range touches is held for the current version: count bytes (or fewer,
 * at EOF) copied into out (room for count bytes), *got and *eof set, and
 * the current version's fattr3 (the bytes last noted, consistent with the
 * data) copied to fattr_out (CACHE_FATTR_SIZE bytes; may be NULL).  An
 * offset at or past EOF returns 0 with *got = 0, *eof = true.
 * -ENOENT: any block missing, handle or version unknown, a strict file not
 * revalidated since this process started (see docs/cache.md), invalidation
 * pending, or the cache broken: forward the call upstream.
 * Successful reads count as accesses (LRU) and hits.
 */
int cache_read(struct cache *c, const void *fh, size_t fhlen, uint64_t off,
               uint32_t count, void *out, uint32_t *got, bool *eof,
               uint8_t *fattr_out);

/* A byte range [cr_off, cr_off + cr_len); block-aligned at its start. */
struct cache_range {
	uint64_t cr_off;
	uint64_t cr_len;
};

/*
 * Like cache_read, but copies the blocks that are present and lists the
 * missing ones, merged into ranges of whole blocks (clipped at EOF), in
 * missing[0..*nmissing).  Returns 0 when the version is usable (then
 * got and eof describe the clipped range as if complete and fattr_out is
 * the version the present bytes belong to), -ENOENT when it is not (no
 * byte copied), -E2BIG when more than maxmissing ranges would be needed
 * (nothing reported; treat as all missing).  The proxy fetches the
 * missing ranges upstream (cache_blk_* for its in-flight table), checks
 * with cache_fattr_same_version that each reply's post-op attributes match
 * fattr_out (else it refetches the whole range), and fills them.
 * Counts a hit only when nothing is missing, else a miss.
 */
int cache_read_partial(struct cache *c, const void *fh, size_t fhlen,
                       uint64_t off, uint32_t count, void *out, uint32_t *got,
                       bool *eof, uint8_t *fattr_out,
                       struct cache_range *missing, unsigned maxmissing,
                       unsigned *nmissing);

/* ---------------------------------------------------------------------- */
/* Filling and invalidating                                                */

/*
 * Data of a successful READ(fh, off) reply: len bytes, the reply's eof
 * flag and its post-op attributes (NULL if absent: then nothing is stored,
 * since the data's version is unknown).  Notes fh and fattr3 (as
 * cache_note_handle does; the proxy need not note them again), then queues
 * a copy of the whole blocks the data covers (and the last, partial block
 * when it ends at the file size) for the writer, tagged with fattr3's
 * version.  Never blocks: when the queue is full or the cache in bypass,
 * the fill is dropped and counted.  Returns 0 (queued or nothing to
 * store), -ENOBUFS (dropped), -ENOMEM, -EINVAL.
 */
int cache_fill(struct cache *c, const void *fh, size_t fhlen, uint64_t off,
               const void *data, uint32_t len, bool eof,
               const uint8_t *fattr3, unsigned flags);

/*
 * cache_fill without the copy: the queued item refers to data, which the
 * caller keeps valid and unchanged until release(arg) is called.  release
 * is called exactly once in every case: before return when nothing was
 * queued, else from the writer thread once the blocks are stored or
 * dropped (so it must be thread-safe, e.g. an atomic reference drop).
 * Saves the cold path a copy of every byte read (docs/cache.md).
 */
int cache_fill_ref(struct cache *c, const void *fh, size_t fhlen,
                   uint64_t off, const void *data, uint32_t len, bool eof,
                   const uint8_t *fattr3, unsigned flags,
                   void (*release)(void *), void *arg);

/*
 * Write path (write-through): the file's cached blocks must not be served
 * again.  Reads of it miss at once until the writer has deleted its blocks
 * and a new version is noted; fills queued after this call are kept.  An
 * immutable file loses its trust (its next noted version is adopted).
 * Never dropped, even with a full queue.  Returns 0, or -ENOENT (handle
 * unknown: nothing cached for it through this handle).
 */
int cache_invalidate(struct cache *c, const void *fh, size_t fhlen);
int cache_invalidate_ident(struct cache *c, const struct cache_ident *id);

/* ---------------------------------------------------------------------- */
/* Statistics                                                              */

struct cache_stats {
	uint64_t cs_hits;         /* cache_read calls served */
	uint64_t cs_misses;       /* cache_read calls that returned -ENOENT */
	uint64_t cs_hit_bytes;    /* bytes served */
	uint64_t cs_fill_bytes;   /* bytes of blocks committed */
	uint64_t cs_fill_blocks;
	uint64_t cs_evictions;    /* blocks evicted for space */
	uint64_t cs_stale_drops;  /* blocks deleted for being of an old version */
	uint64_t cs_dropped_fills;/* fills dropped: queue full or bypass */
	uint64_t cs_dropped_bytes;
	uint64_t cs_bytes;        /* footprint of blocks held (the capped value) */
	uint64_t cs_data_bytes;   /* payload bytes of blocks held */
	uint64_t cs_blocks;
	uint64_t cs_files;        /* files with at least one block */
	uint64_t cs_max_bytes;    /* cap (lowered after a full disk) */
	uint64_t cs_queue_bytes;  /* fill data waiting for the writer */
	uint64_t cs_commits;
	uint64_t cs_write_errors; /* failed write transactions */
	uint32_t cs_block_size;
	bool cs_bypass;           /* writes suspended (disk/map full, error) */
	bool cs_broken;           /* LMDB failed: nothing served until restart */
};

/* Snapshot of the counters; thread-safe, never blocks. */
void cache_stats(struct cache *c, struct cache_stats *st);

/* ---------------------------------------------------------------------- */
/* Offline administration                                                  */

/*
 * `gridvfs cache stat|verify|evict DIR ...` on a cache directory that no
 * proxy is using (stat also works beside a running proxy).  argv[0] is
 * "cache".  Prints to stdout/stderr; returns the exit status (0 ok, 1 a
 * check failed or an error, 2 usage).
 */
int cache_cli_main(int argc, char **argv);

#endif /* GRIDVFS_CACHE_H */

/* ====================================================================== */
/* Write-back dirty log (cache/dirty.c, issue 6; docs/writeback.md)        */
/*                                                                          */
/* Acknowledged-but-unflushed WRITE data of --write-policy back, in its own */
/* LMDB environment (<cache-dir>/dirty), fully durable: every group commit  */
/* is fsync'ed (no MDB_NOSYNC / MDB_NOMETASYNC).  One writer thread inside  */
/* cache/ does every write transaction; callers never block on disk: they   */
/* queue puts and deletes and learn of their completion through an eventfd. */
/* Records are keyed by a global write sequence (big-endian), so the log    */
/* replays in write order, hence in order per file.                        */
/* ====================================================================== */
#ifndef GRIDVFS_CACHE_DIRTY_H
#define GRIDVFS_CACHE_DIRTY_H

#define CACHE_DIRTY_MAX_GIDS 16u

struct cache_dirty;

struct cache_dirty_opts {
	const char *do_dir;      /* environment directory; created if missing */
	uint64_t do_map_bytes;   /* LMDB map size; 0 = 4 GiB */
	void (*do_log)(int prio, const char *msg); /* thread-safe; NULL: stderr */
	/* This boot of the machine (tests); NULL: the kernel's boot_id. */
	const char *do_boot_id;
};

/* One WRITE as stored: the file handle (the flusher needs it), the
 * credential to flush it with, where it goes, and the data. */
struct cache_dirty_rec {
	uint64_t dr_seq;          /* global write order, unique, > 0 */
	uint64_t dr_off;
	uint32_t dr_len;
	uint64_t dr_time_ms;      /* wall-clock ms when acknowledged (lag) */
	uint32_t dr_uid, dr_gid, dr_ngids;
	uint32_t dr_gids[CACHE_DIRTY_MAX_GIDS];
	uint32_t dr_fhlen;        /* 1..CACHE_FH_MAX */
	uint8_t dr_fh[CACHE_FH_MAX];
	const void *dr_data;      /* dr_len bytes; see each function for life */
	/* Durable when its put completes (a stable WRITE).  Otherwise the
	 * completed put is in the file system's cache and on disk after the
	 * next synced group: a process crash cannot lose it, a machine crash
	 * can lose the last group, and the next open then draws a new
	 * verifier (cache_dirty_open). */
	bool dr_sync;
};

/*
 * Open (or create) the dirty log and start its writer.  A directory that
 * holds no usable environment (not LMDB, other format, damaged) is moved
 * aside to <dir>.bad-<UTC stamp> (kept, never deleted: it may hold
 * acknowledged data) and rebuilt, which draws a new write verifier.  A log
 * last opened in an earlier boot of the machine and not closed cleanly
 * also gets a new verifier: its last group may have been lost.
 * Returns 0 and *out, -EBUSY (another process has it open), -errno.
 */
int cache_dirty_open(const struct cache_dirty_opts *o, struct cache_dirty **out);

/* Drain the queue, stop the writer, close.  NULL is a no-op.  Blocks. */
void cache_dirty_close(struct cache_dirty *d);

/* The proxy's write verifier: random, persisted with the log, new only
 * when the log was created or rebuilt (data could have been lost). */
void cache_dirty_verifier(const struct cache_dirty *d, uint8_t verf[8]);
/* True when this open created the log afresh or rebuilt a damaged one. */
bool cache_dirty_fresh(const struct cache_dirty *d);
/* The log was last open in another boot and not closed cleanly: its
 * verifier was redrawn (cache_dirty_open). */
bool cache_dirty_rebooted(const struct cache_dirty *d);

/* Call fn for every stored record in sequence order (data valid during
 * the call only); stops at fn's first non-zero return, which it returns.
 * Only before the first cache_dirty_put/del. */
typedef int (*cache_dirty_replay_fn)(void *ctx, const struct cache_dirty_rec *r);
int cache_dirty_replay(struct cache_dirty *d, cache_dirty_replay_fn fn,
                       void *ctx);

/* Largest sequence number stored at open (0: empty). */
uint64_t cache_dirty_last_seq(const struct cache_dirty *d);

/*
 * Queue a record (copied: r and its data may go on return).  Completion
 * (durable after fsync, or failed) is reported by cache_dirty_reap with
 * token.  Adds dr_len to cache_dirty_bytes at once.  0, -ENOMEM, -EINVAL.
 */
int cache_dirty_put(struct cache_dirty *d, const struct cache_dirty_rec *r,
                    void *token);
/* The same, but r->dr_data is not copied: the writer thread reads it
 * while committing, so it must stay valid and unchanged until the put's
 * completion has been reaped.  (r itself may go on return.)  Saves the
 * event loop a copy of every WRITE's data. */
int cache_dirty_put_ref(struct cache_dirty *d, const struct cache_dirty_rec *r,
                        void *token);
/* Queue the deletion of record seq (len: its dr_len, taken off
 * cache_dirty_bytes when durable).  Completion as for put. */
int cache_dirty_del(struct cache_dirty *d, uint64_t seq, uint32_t len,
                    void *token);

/* Readable (an eventfd) while completions wait for cache_dirty_reap. */
int cache_dirty_event_fd(const struct cache_dirty *d);

struct cache_dirty_done {
	void *dd_token;
	int dd_err;     /* 0: durable; -errno: the transaction failed */
	bool dd_put;    /* a put (else a delete) */
};
/* Take up to max completions, in queue order.  Never blocks. */
size_t cache_dirty_reap(struct cache_dirty *d, struct cache_dirty_done *out,
                        size_t max);

/* Wait until everything queued before the call is durable.  Blocks. */
int cache_dirty_sync(struct cache_dirty *d);

/* Data bytes put and not yet deleted (durably), queued ones included. */
uint64_t cache_dirty_bytes(const struct cache_dirty *d);

/* Group commit figures, since open: dc_groups transactions committed (each
 * one fsync of data and meta: LMDB's fdatasync plus its O_DSYNC meta
 * write), holding dc_puts records and dc_dels deletions; dc_failed groups
 * failed; dc_commit_us the time spent in them (the disk's latency).
 * dc_puts / dc_groups is the records per fsync.  Thread-safe. */
struct cache_dirty_counts {
	uint64_t dc_groups, dc_puts, dc_dels, dc_failed, dc_commit_us;
	uint64_t dc_lingers;  /* commits that waited for more records first */
	uint64_t dc_syncs;    /* groups made durable at once (stable puts,
	                       * deletions): a second flush */
};
void cache_dirty_counts(const struct cache_dirty *d,
			struct cache_dirty_counts *out);

/* Offline / beside a running proxy: figures of the log in dir. */
struct cache_dirty_stat {
	uint64_t ds_records;
	uint64_t ds_bytes;
	uint64_t ds_files;        /* distinct handles */
	uint64_t ds_oldest_ms;    /* dr_time_ms of the oldest record, 0: none */
	uint8_t ds_verf[8];
};
int cache_dirty_stat_dir(const char *dir, struct cache_dirty_stat *st);

#endif /* GRIDVFS_CACHE_DIRTY_H */

/* ====================================================================== */
/* VM-image metadata and content-hash dedup (cache/meta.c, issue 7;        */
/* docs/metadata.md).  A metadata file IMAGE.gvmeta beside IMAGE gives the */
/* image's size and mtime, a block size, per block "zero" or a SHA-256,    */
/* and an optional prefetch profile.  The proxy answers zero blocks        */
/* locally, verifies fetched blocks against their hash and stores them by  */
/* content, so clones of one golden image share their blocks in the cache. */
/* ====================================================================== */
#ifndef GRIDVFS_CACHE_META_H
#define GRIDVFS_CACHE_META_H

#define CACHE_HASH_SIZE 32u /* SHA-256 */

/*
 * Store one whole block (blk; len = its length in the file version fattr3
 * describes) by content: key is a digest of the data that the caller has
 * verified (the metadata's SHA-256).  Blocks of any files with the same
 * key share one copy (a refcounted chunk); eviction drops references in
 * LRU order and a chunk goes with its last one.  Otherwise as cache_fill:
 * never blocks; 0, -ENOBUFS (dropped), -ENOMEM, -EINVAL.
 */
int cache_fill_hashed(struct cache *c, const void *fh, size_t fhlen,
                      uint64_t blk, const void *data, uint32_t len,
                      const uint8_t key[CACHE_HASH_SIZE],
                      const uint8_t *fattr3, unsigned flags);

/*
 * Copy the chunk stored under key (len bytes expected) into out: another
 * image's identical block, so a clone's block costs no upstream READ.
 * 0, or -ENOENT (not held, other length, cache broken).  Never blocks.
 */
int cache_read_chunk(struct cache *c, const uint8_t key[CACHE_HASH_SIZE],
                     void *out, uint32_t len);

struct cache_dedup_stats {
	uint64_t cd_chunks_new;    /* chunks created (data stored) */
	uint64_t cd_chunks_shared; /* hashed fills that found their chunk */
};
void cache_dedup_stats(struct cache *c, struct cache_dedup_stats *st);

/* ---------------------------------------------------------------------- */
/* The metadata file                                                        */

#define CACHE_META_SUFFIX ".gvmeta"
#define CACHE_META_VERSION 2u  /* written when a v2 field is used */
#define CACHE_META_VERSION_MIN 1u /* still parsed (and written otherwise) */
#define CACHE_META_HDR 96u          /* header bytes; records follow */
#define CACHE_META_MAX (256u << 20) /* larger metadata files are refused */

/* Block kinds in the cache-block view (cache_meta_view). */
enum cache_meta_kind {
	CACHE_META_UNKNOWN = 0, /* no usable hash (metadata blocks larger than
	                           cache blocks, and this one is not zero) */
	CACHE_META_ZERO = 1,    /* all zero bytes: never fetched */
	CACHE_META_HASHED = 2,  /* verify with cache_meta_verify; dedup key */
};

/* What a metadata file describes. */
struct cache_meta_info {
	uint64_t mi_size;       /* image size */
	int64_t mi_mtime_sec;   /* image mtime */
	uint32_t mi_mtime_nsec;
	uint32_t mi_block;      /* metadata block size, power of two */
	uint64_t mi_nblocks;    /* ceil(size / block) */
	uint32_t mi_nprofile;   /* prefetch profile entries */
	uint32_t mi_flags;      /* CACHE_META_F_* (format version 2) */
	uint32_t mi_boots;      /* F_LEARNED: boots the profile was learned
	                           from (>= 1); else 0 */
};

/* Format version 2 flags (issue 19).  A version 1 file has none. */
#define CACHE_META_F_NOHASH 1u  /* no per-block hashes: a profile only
                                   (learned where no scan was run); every
                                   block is UNKNOWN: no zero map, no dedup,
                                   no verification */
#define CACHE_META_F_LEARNED 2u /* the profile was learned by a gridvfsd
                                   from the reads it saw, not attached by
                                   an operator (never replaced by one) */
#define CACHE_META_F_ALL 3u

struct cache_meta; /* parsed metadata (owned by its parser's caller) */

/*
 * Parse a metadata file held in buf (len bytes; not kept).  Returns 0 and
 * *out (free with cache_meta_free), or -EBADMSG (bad magic, sizes that do
 * not add up, truncated, checksum mismatch, block size not a power of two
 * in 512 B .. 64 MiB, profile entries past the end, unknown flags, a
 * boot count without F_LEARNED), -EPROTONOSUPPORT (a version other than
 * 1 and 2), -ENOMEM.
 */
int cache_meta_parse(const void *buf, size_t len, struct cache_meta **out);
void cache_meta_free(struct cache_meta *m);
void cache_meta_get_info(const struct cache_meta *m,
                         struct cache_meta_info *mi);

/* Does m describe this image version (size, mtime)?  0 or -ESTALE. */
int cache_meta_check(const struct cache_meta *m, uint64_t size,
                     int64_t mtime_sec, uint32_t mtime_nsec);
/* The same against an encoded fattr3 (its size and mtime). */
int cache_meta_check_fattr(const struct cache_meta *m, const uint8_t *fattr3);

/*
 * May the proxy act on a metadata file at all (issue 16, docs/metadata.md
 * "Trust")?  image and meta are the encoded fattr3 of the image and of
 * IMAGE.gvmeta as upstream reports them.  Metadata steers what a reader
 * of the image is served (zero blocks, blocks shared by content), so it
 * counts only when written by someone who may change the image anyway:
 * a regular file owned by the image's owner or by root, writable by
 * neither group nor others, and not older (ctime) than the image's last
 * change (content, owner or mode).
 */
enum cache_meta_trust {
	CACHE_META_TRUSTED = 0,
	CACHE_META_UNTRUSTED_TYPE,  /* not a regular file */
	CACHE_META_UNTRUSTED_OWNER, /* neither the image's owner nor root */
	CACHE_META_UNTRUSTED_MODE,  /* group or other may write it */
	CACHE_META_UNTRUSTED_OLDER, /* ctime before the image's ctime */
};
enum cache_meta_trust cache_meta_trust(const uint8_t *image_fattr3,
                                       const uint8_t *meta_fattr3);
/* A log phrase for an untrusted verdict ("owned by another user", ...). */
const char *cache_meta_trust_str(enum cache_meta_trust t);

/*
 * The key under which a block is shared between files (chunks DBI, the
 * proxy's ring): SHA-256 of a domain string, the owner's uid and the
 * block's hash.  Sharing happens only between images of one owner: a
 * user who writes metadata for his own file with someone else's hashes
 * finds no chunk of theirs (issue 16 item 1).  0, or -EIO (no SHA-256:
 * the caller then shares nothing).
 */
int cache_meta_dedup_key(uint32_t owner, const uint8_t hash[CACHE_HASH_SIZE],
                         uint8_t out[CACHE_HASH_SIZE]);

/* Hash of metadata block mblk (all zero bytes: a zero block; NULL past the
 * end, and for every block of a F_NOHASH file) and the profile (metadata block numbers, in order).  Pointers live
 * as long as m. */
const uint8_t *cache_meta_hash(const struct cache_meta *m, uint64_t mblk);
const uint32_t *cache_meta_profile(const struct cache_meta *m, uint32_t *n);

/*
 * Build the view for cache block size bs (a power of two; the metadata's
 * own block size may be smaller or larger): per cache block a kind and a
 * dedup key, and the profile in cache blocks (first touches only).
 * 0, -EINVAL, -ENOMEM.  Call before the view accessors; not thread-safe.
 */
int cache_meta_view(struct cache_meta *m, uint32_t bs);
uint64_t cache_meta_view_nblocks(const struct cache_meta *m);
/* Kind of cache block blk (UNKNOWN past the end); key (may be NULL) gets
 * the dedup key of a HASHED block. */
enum cache_meta_kind cache_meta_kind(const struct cache_meta *m, uint64_t blk,
                                     uint8_t key[CACHE_HASH_SIZE]);
/* Check the len bytes of cache block blk against the metadata: 0, or
 * -EILSEQ (content or length differs).  UNKNOWN blocks pass. */
int cache_meta_verify(const struct cache_meta *m, uint64_t blk,
                      const void *data, uint32_t len);
const uint64_t *cache_meta_view_profile(const struct cache_meta *m,
                                        size_t *n);

/* Summary for `gridvfs meta show`. */
struct cache_meta_summary {
	uint64_t ms_zero;   /* zero blocks */
	uint64_t ms_unique; /* distinct non-zero hashes */
	uint64_t ms_dup;    /* non-zero blocks repeating an earlier hash */
};
int cache_meta_summarize(const struct cache_meta *m,
                         struct cache_meta_summary *sum);

/*
 * Encode metadata: mi (mi_nblocks must be ceil(size / block)), hashes
 * (mi_nblocks * CACHE_HASH_SIZE bytes, all zero for a zero block; NULL
 * with CACHE_META_F_NOHASH), profile
 * (mi_nprofile metadata block numbers; NULL when 0).  Version 1 is
 * written when mi_flags and mi_boots are 0 (older proxies read it), else
 * version 2.  *out is malloc'ed, *outlen bytes.  0, -EINVAL, -ENOMEM.
 */
int cache_meta_encode(const struct cache_meta_info *mi, const uint8_t *hashes,
                      const uint32_t *profile, uint8_t **out, size_t *outlen);

/*
 * A profile (n block numbers of from_bs bytes, first touch first) in
 * blocks of to_bs bytes, first touches only, blocks at or past nblocks
 * dropped: into *out (malloc'ed, *outn entries; NULL when 0).  Both sizes
 * powers of two.  0, -EINVAL, -ENOMEM.
 */
int cache_meta_profile_rescale(const uint32_t *in, uint32_t n,
                               uint32_t from_bs, uint32_t to_bs,
                               uint64_t nblocks, uint32_t **out,
                               uint32_t *outn);

/* True when len bytes are all zero. */
bool cache_meta_is_zero(const void *buf, size_t len);

/*
 * `gridvfs meta scan|show|record|attach ...` (argv[0] is "meta").  Exit
 * status: 0 ok, 1 failure, 2 usage.
 */
int cache_meta_cli_main(int argc, char **argv);

#endif /* GRIDVFS_CACHE_META_H */
