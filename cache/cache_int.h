/*
 * cache/cache_int.h — internals shared by the files of cache/: the LMDB
 * schema (store.c), the in-memory file and handle tables (mem.c), the
 * writer queue and thread (writer.c), readers (read.c) and the CLI.
 * Not installed, not included outside cache/.
 */
#ifndef GRIDVFS_CACHE_INT_H
#define GRIDVFS_CACHE_INT_H

#include "cache/cache.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <syslog.h>

/* Schema version in meta "format"; bump on any incompatible change. */
#define CACHE_FORMAT 1u

/* ---------------------------------------------------------------------- */
/* LMDB schema (docs/cache.md has the picture)                             */

#define CACHE_IDENT_KEY 16u /* fsid, fileid: 8 bytes big-endian each */
#define CACHE_BLK_KEY 24u   /* ident + block number (big-endian) */
#define CACHE_LRU_KEY 32u   /* seq (big-endian) + block key */

/* A file version: size and the raw 64-bit {sec, nsec} of mtime and ctime. */
struct cver {
	uint64_t v_size;
	uint64_t v_mtime;
	uint64_t v_ctime;
};

/* Head of every block value, followed by bh_len data bytes.  Host order:
 * the cache never leaves the machine that wrote it. */
struct blkhdr {
	uint32_t bh_len;
	uint32_t bh_crc; /* CRC-32C of the data; checked by verify */
	struct cver bh_ver;
};

/* Content-hash dedup (issue 7): a block whose bh_len carries BLK_REF holds
 * a CACHE_HASH_SIZE key of the chunks DBI instead of its data.  Block
 * lengths never reach bit 31, so old blocks read as they always did. */
#define BLK_REF 0x80000000u
#define BLK_LEN(h) ((h)->bh_len & ~BLK_REF)

/* chunks DBI value: head, then ch_len data bytes.  The number of blocks
 * pointing at a chunk is in the crefs DBI (same key, u32); the chunk goes
 * with its last reference. */
struct chunkhdr {
	uint32_t ch_len;
	uint32_t ch_crc;  /* CRC-32C of the data */
	uint32_t ch_pad[2];
};

/* files DBI: one record per file that has blocks. */
struct filerec {
	uint32_t fr_flags;   /* CACHE_F_* */
	uint32_t fr_fhlen;   /* the last handle noted for it */
	uint64_t fr_first_seen; /* unix seconds the version was adopted */
	struct cver fr_ver;
	uint64_t fr_nblocks;
	uint64_t fr_bytes;   /* footprint */
	uint64_t fr_data;    /* payload */
	uint8_t fr_fattr[CACHE_FATTR_SIZE];
	uint8_t fr_fh[CACHE_FH_MAX];
};

/* meta "totals": the whole cache, updated by every commit. */
struct totals {
	uint64_t t_bytes; /* footprint: pages of block values + index estimate */
	uint64_t t_data;
	uint64_t t_blocks;
	uint64_t t_files;
	uint64_t t_seq;   /* access-order clock: one tick per write group */
};

struct store {
	MDB_env *s_env;
	MDB_dbi s_meta, s_files, s_handles, s_blocks, s_atime, s_lru;
	MDB_dbi s_chunks, s_crefs; /* dedup; valid when s_have_chunks */
	bool s_have_chunks;  /* false: a read-only open of an older cache */
	uint32_t s_bs;
	uint32_t s_psize;
	struct totals s_tot; /* committed (writer: working copy inside a txn) */
	int s_lockfd;
	char *s_dir;
	void (*s_log)(int prio, const char *msg);
};

/* store.c */
void cache_logf(void (*log)(int, const char *), int prio, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
int store_open(struct store *s, const char *dir, uint32_t bs,
               uint64_t max_bytes, unsigned flags, bool rdonly, bool lock);
void store_close(struct store *s);
int store_mdb_err(int rc);
bool store_fatal(int rc);
void store_mark_corrupt(struct store *s);
void store_cover_pages(struct store *s);
uint64_t store_charge(const struct store *s, uint32_t len);
void key_ident(uint8_t *k, const struct cache_ident *id);
void key_blk(uint8_t *k, const struct cache_ident *id, uint64_t blk);
void key_unblk(const uint8_t *k, struct cache_ident *id, uint64_t *blk);
void put_be64(uint8_t *p, uint64_t v);
uint64_t get_be64(const uint8_t *p);
uint32_t get_be32(const uint8_t *p);
void cver_of_fattr(const uint8_t *fattr, struct cver *v);
bool cver_eq(const struct cver *a, const struct cver *b);

/* Write-side operations inside an open write transaction (writer, CLI). */
struct wstat {
	uint64_t w_evicted, w_stale, w_fill_bytes, w_fill_blocks;
};
int store_del_file_blocks(struct store *s, MDB_txn *t,
                          const struct cache_ident *id,
                          const struct cver *keep, struct wstat *ws);
int store_del_block(struct store *s, MDB_txn *t, const uint8_t *k,
                    uint32_t *len, uint64_t *charge);
int store_evict(struct store *s, MDB_txn *t, uint64_t target,
                struct wstat *ws);
int store_put_totals(struct store *s, MDB_txn *t);
int store_get_totals(struct store *s, MDB_txn *t, struct totals *out);
int store_drop_all(struct store *s, MDB_txn *t);
/* What a block value occupies itself (a reference is small; its chunk is
 * charged once, when created). */
uint64_t store_entry_charge(const struct store *s, const struct blkhdr *h);
/* Dedup chunks: take a reference (creating the chunk from data when it is
 * new; *created tells) or drop one (the chunk goes with the last). */
int store_chunk_ref(struct store *s, MDB_txn *t, const uint8_t *key,
                    const uint8_t *data, uint32_t len, bool *created);
int store_chunk_unref(struct store *s, MDB_txn *t, const uint8_t *key);

/* crc32c.c */
uint32_t cache_crc32c(uint32_t crc, const void *buf, size_t len);

/* ---------------------------------------------------------------------- */
/* In-memory tables (mem.c)                                                */

#define MEM_STRIPES 64u

struct mfile {
	struct mfile *mf_next;
	struct cache_ident mf_id;
	struct cver mf_ver;
	uint8_t mf_fattr[CACHE_FATTR_SIZE];
	unsigned mf_flags;       /* CACHE_F_* */
	bool mf_known;           /* mf_ver is a version the file had */
	bool mf_confirmed;       /* noted in this process (strict needs it) */
	uint64_t mf_first_seen;  /* unix s the version was adopted */
	uint64_t mf_trust_until; /* immutable: unix s */
	uint32_t mf_inval;       /* invalidations not yet committed */
};

struct mhandle {
	struct mhandle *mh_next;
	uint8_t mh_len;
	uint8_t mh_fh[CACHE_FH_MAX];
	struct cache_ident mh_id;
};

struct mstripe {
	pthread_mutex_t ms_lock;
	struct mfile **ms_files;
	size_t ms_fcap, ms_fn;
	struct mhandle **ms_handles;
	size_t ms_hcap, ms_hn;
};

/* What a reader needs of a file, copied under its stripe lock. */
struct fview {
	struct cver fv_ver;
	uint8_t fv_fattr[CACHE_FATTR_SIZE];
	bool fv_usable;
};

/* ---------------------------------------------------------------------- */
/* Writer queue items                                                      */

enum witem_kind { WI_VERSION, WI_HANDLE, WI_FILL, WI_INVAL, WI_BARRIER };

struct witem {
	struct witem *wi_next;
	enum witem_kind wi_kind;
	struct cache_ident wi_id;
	struct cver wi_ver;
	unsigned wi_flags;
	uint64_t wi_first_seen;
	uint8_t wi_fattr[CACHE_FATTR_SIZE];
	uint8_t wi_fhlen;
	uint8_t wi_fh[CACHE_FH_MAX];
	bool wi_hashed;    /* fill of one block stored by content (wi_hash) */
	uint8_t wi_hash[CACHE_HASH_SIZE];
	uint64_t wi_blk;   /* fill: first block */
	uint32_t wi_nblk;  /* fill: blocks */
	uint64_t wi_len;   /* fill: data bytes (counted against the queue) */
	/* fill by reference (cache_fill_ref): the blocks are at wi_ext, in
	 * the caller's buffer, until wi_release(wi_release_arg) */
	const uint8_t *wi_ext;
	void (*wi_release)(void *);
	void *wi_release_arg;
	uint8_t wi_data[]; /* fill: the blocks, back to back */
};

/* An access the writer turns into LRU order. */
struct touch {
	struct cache_ident t_id;
	uint64_t t_blk;
	uint32_t t_n;
};

#define TOUCH_RING 8192u

/* Per-thread read transaction (MDB_NOTLS: owned by the thread via a key). */
struct rtxn {
	struct rtxn *r_next;
	struct cache *r_cache;
	MDB_txn *r_txn;
};

struct cache {
	struct store c_st;
	struct cache_opts c_opts;
	uint32_t c_bs;
	struct mstripe c_mem[MEM_STRIPES];

	/* readers */
	pthread_key_t c_rkey;
	pthread_mutex_t c_rlock;
	struct rtxn *c_readers;

	/* writer queue */
	pthread_mutex_t c_qlock;
	pthread_cond_t c_qcond;  /* writer waits for work */
	pthread_cond_t c_qdone;  /* cache_flush waits for commits */
	struct witem *c_qhead, *c_qtail;
	uint64_t c_qbytes;
	uint64_t c_qenq, c_qdone_n; /* tickets: items queued / finished */
	bool c_qwaiting, c_stop;
	struct touch c_touch[TOUCH_RING];
	unsigned c_ntouch;
	pthread_t c_writer;
	bool c_writer_up;

	/* writer state */
	uint64_t c_retry_at_ms;  /* bypass: monotonic ms of the next try */

	/* counters (atomics: read by cache_stats from any thread) */
	atomic_uint_fast64_t a_hits, a_misses, a_hit_bytes, a_fill_bytes,
		a_fill_blocks, a_evictions, a_stale, a_dropped, a_dropped_bytes,
		a_bytes, a_data, a_blocks, a_files, a_cap, a_commits, a_werrs;
	atomic_bool a_bypass, a_broken;
	/* dedup (cache_dedup_stats) */
	atomic_uint_fast64_t a_chunks_new, a_chunks_shared;
};

/* mem.c */
int mem_init(struct cache *c);
void mem_free(struct cache *c);
uint64_t now_wall(void);
uint64_t now_ms(void);
int mem_handle_get(struct cache *c, const void *fh, size_t fhlen,
                   struct cache_ident *id);
void mem_handle_put(struct cache *c, const void *fh, size_t fhlen,
                    const struct cache_ident *id, bool *isnew);
/* Note a version; returns true if it changed what is current. */
int mem_note(struct cache *c, const uint8_t *fattr, unsigned flags,
             const void *fh, size_t fhlen);
bool mem_view(struct cache *c, const struct cache_ident *id,
              struct fview *v);
void mem_load(struct cache *c, const struct cache_ident *id,
              const struct filerec *fr);
bool mem_current(struct cache *c, const struct cache_ident *id,
                 const struct cver *v);
int mem_invalidate(struct cache *c, const struct cache_ident *id);
void mem_inval_done(struct cache *c, const struct cache_ident *id);

/* writer.c */
int writer_start(struct cache *c);
void writer_stop(struct cache *c);
void writer_enqueue(struct cache *c, struct witem *wi);
int writer_enqueue_fill(struct cache *c, struct witem *wi);
/* A WI_FILL item for nblk blocks from blk, carrying a copy of data. */
struct witem *fill_item_new(const struct cache_ident *id, const struct cver *v,
			    unsigned flags, const uint8_t *fattr3, const void *fh,
			    size_t fhlen, uint64_t blk, uint32_t nblk,
			    const void *data, uint32_t bytes);
void writer_touch(struct cache *c, const struct cache_ident *id,
                  uint64_t blk, uint32_t n);
/* Free a queue item, giving a by-reference fill's buffer back. */
void witem_free(struct witem *wi);
static inline const uint8_t *witem_bytes(const struct witem *wi)
{
	return wi->wi_ext ? wi->wi_ext : wi->wi_data;
}
void cache_set_broken(struct cache *c, int rc, const char *where);

/* read.c */
void read_close_all(struct cache *c);
void read_thread_exit(void *p);

#endif /* GRIDVFS_CACHE_INT_H */
