/*
 * proxy/core.h — the daemon's runtime objects: the loop, client
 * connections, upstream links and pending calls, shared by loop.c,
 * client.c, link.c and pipeline.c.
 */
#ifndef GRIDVFS_PX_CORE_H
#define GRIDVFS_PX_CORE_H

#include "proxy/px.h"
#include "proxy/zlink.h"

#include <netinet/in.h>

struct px_call;

#define PX_HKEY_LEN 32 /* bytes of the handle-tag key (exports.c) */

/*
 * The answer to a call the proxy made itself (px_icall): err 0 with the
 * NFS/MOUNT results (after the RPC header; they live only during the
 * callback), or a negative errno when the call failed at the RPC level
 * (-EPROTO: upstream refused it for good — GARBAGE_ARGS, PROC_UNAVAIL,
 * an auth error...; -EIO: SYSTEM_ERR; -ETIMEDOUT: upstream unreachable past
 * --upstream-timeout; -ECANCELED: shutdown).
 */
typedef void (*px_icall_fn)(void *ctx, int err, uint8_t *res, size_t len);

/* Where a client connection stands in RFC 9289's sequence. */
enum px_cl_state {
	CL_PROBE,     /* TLS on: waiting for the AUTH_TLS probe */
	CL_HANDSHAKE, /* TLS handshake in progress */
	CL_READY,     /* calls flow (over TLS, or plaintext when allowed) */
};

struct idmap_peer_ids;

/* How far a client-role connection's AUTH_SYS claims are believed
 * (peer.c, issue 16 item 3). */
enum px_cl_trust {
	CL_TRUST_ANY,  /* reserved port, root, the daemon's own user, --insecure */
	CL_TRUST_OWN,  /* a non-root local peer: its own uid and groups only */
	CL_TRUST_NONE, /* remote peer on an unreserved port: refused */
};

/* A client connection.  Freed only when closed and no call refers to it. */
struct px_client {
	struct px_ev cl_ev;
	struct px_loop *cl_loop;
	uint64_t cl_id;
	struct sockaddr_storage cl_addr;
	char cl_name[64];            /* "ip:port" for logs */
	struct px_reader cl_rd;
	struct px_outq cl_out;
	struct zlink_out cl_z;       /* ALPN gridvfs-z1: cl_out.q_z points here */
	unsigned cl_pending;         /* calls awaiting upstream */
	unsigned cl_refs;            /* pending calls pointing here, +1 open */
	bool cl_closed;
	bool cl_read_paused;
	bool cl_close_after_flush;   /* a final error reply is queued */
	unsigned cl_corked;          /* px_client_cork depth: sends queue */
	enum px_cl_state cl_state;
	struct tls_conn *cl_tls;
	int cl_tls_want;             /* TLS_WANT_READ/WRITE during handshake */
	uint64_t cl_hs_since;        /* ms: start of probe/handshake wait */
	struct idmap_peer_ids *cl_peer; /* accounts the TLS peer may act as */
	char cl_dn[256];             /* TLS peer's subject DN */
	enum px_cl_trust cl_trust;
	uint32_t cl_uid;             /* CL_TRUST_OWN: the peer's real uid */
	struct idmap_peer_ids *cl_own; /* CL_TRUST_OWN: what it may claim */
	struct px_client *cl_next, *cl_prev; /* loop's list of open clients */
};

enum px_link_state {
	LINK_IDLE, LINK_CONNECTING,
	LINK_PROBE,     /* RFC 9289 probe sent, waiting for STARTTLS */
	LINK_HANDSHAKE, /* TLS handshake toward upstream */
	LINK_UP, LINK_BACKOFF,
};

/* One upstream TCP connection for one RPC program (NFS or MOUNT). */
struct px_link {
	struct px_ev ln_ev;
	struct px_loop *ln_loop;
	const char *ln_name;         /* "nfs" / "mount" for logs */
	uint32_t ln_prog;
	struct sockaddr_storage ln_addr;
	socklen_t ln_addrlen;
	bool ln_have_addr;           /* false: ask rpcbind at connect */
	enum px_link_state ln_state;
	uint16_t ln_local_port;      /* reused on reconnect for the DRC */
	struct px_reader ln_rd;
	struct px_outq ln_out;
	struct zlink_out ln_z;       /* ALPN gridvfs-z1: ln_out.q_z points here */
	unsigned ln_backoff_ms;
	struct timespec ln_retry_at;
	uint64_t ln_down_since;      /* ms (px_now_ms) of the first failure
	                              * since the last reply, 0: none */
	unsigned ln_fails;           /* consecutive failed attempts */
	const char *ln_fail;         /* set by the reader: take the link down */
	struct tls_conn *ln_tls;
	int ln_tls_want;
	uint32_t ln_probe_xid;
	uint64_t ln_setup_since;     /* ms: probe/handshake started */
	/* Pending calls in submission order: resent in this order. */
	struct px_call *ln_head, *ln_tail;
	unsigned ln_npending;
};

/*
 * A call forwarded upstream and not yet answered.  Indexed by upstream XID
 * (to match replies) and by (client address, client XID) to recognise a
 * client's retransmission.
 */
/*
 * The request record (proxy/request.c): a call decoded once at intake.
 * Offsets are from the start of the message (after the record mark) and
 * follow it through the stages that change its length (px_req_shift).
 */
#define PX_REQ_FH 2 /* NFSv3 calls carry at most two handles */
struct px_req {
	struct rpc_call rq_h;         /* header, credential and verifier */
	int rq_args;                  /* 0, -ENAMETOOLONG, -EBADMSG */
	size_t rq_len;                /* message bytes */
	unsigned rq_nfh;              /* handles in the arguments */
	size_t rq_fh_off[PX_REQ_FH];  /* each handle's bytes */
	uint32_t rq_fh_len[PX_REQ_FH];
	uint64_t rq_off;              /* READ, WRITE, COMMIT */
	uint32_t rq_count, rq_stable; /* (stable: WRITE) */
	size_t rq_data_off;           /* WRITE data, rq_data_len bytes */
	uint32_t rq_data_len;
	size_t rq_sattr_uid;          /* a sattr3's set uid/gid word, or 0 */
	size_t rq_sattr_gid;
	bool rq_sys;                  /* rq_cred holds an AUTH_SYS credential */
	struct rpc_authsys rq_cred;   /* last: left unset unless rq_sys */
};

enum rpc_call_verdict px_req_decode(struct px_req *rq, uint8_t *msg,
				    size_t len);
/* delta bytes were inserted (removed, if negative) after offset at. */
void px_req_shift(struct px_req *rq, size_t at, ptrdiff_t delta);
/* The call's first handle (the object of most procedures). */
bool px_req_fh(const struct px_req *rq, const uint8_t *msg,
	       const uint8_t **fh, uint32_t *len);

struct px_call {
	uint32_t pc_up_xid;
	uint32_t pc_cl_xid;
	uint32_t pc_prog, pc_vers, pc_proc;
	uint32_t pc_csum;            /* checksum of the client's call body */
	uint8_t pc_key[16];          /* client address the call came from */
	struct px_client *pc_client; /* holds a ref; NULL when orphaned */
	struct px_link *pc_link;
	struct px_msg *pc_req;       /* upstream bytes, kept for resending */
	struct px_req pc_rq;         /* pc_req decoded (offsets into it) */
	struct idmap *pc_map;        /* map the call went out with (a ref) */
	struct px_cread *pc_cread;   /* a READ widened by the cache, or NULL */
	px_icall_fn pc_icb;          /* a call of the proxy's own, or NULL */
	void *pc_ictx;
	struct timespec pc_start;
	uint64_t pc_seq;             /* lp_seq when sent: orders calls and
				      * write-back events without ties */
	struct px_call *pc_xnext;    /* hash chain by upstream xid */
	struct px_call *pc_dnext;    /* hash chain by (client addr, xid) */
	struct px_call *pc_next, *pc_prev; /* link's submission order */
};

/* A completed non-idempotent call remembered for --dup-window. */
struct px_dup {
	uint8_t du_addr[16];
	uint32_t du_cl_xid, du_up_xid, du_csum, du_proc;
	uint64_t du_cl_id;           /* the connection it came on */
	time_t du_when;
	struct px_dup *du_hnext;
	struct px_dup *du_next, *du_prev; /* age order */
};

struct px_loop {
	const struct px_opts *lp_opts;
	int lp_epfd;
	struct px_ev lp_listen;
	struct px_ev lp_sig;
	struct px_ev lp_timer;
	struct px_link lp_nfs, lp_mount;
	struct px_client *lp_clients;
	struct px_client *lp_graveyard; /* freed after each event batch */
	unsigned lp_nclients;
	unsigned lp_npending;        /* calls in flight, all links */
	bool lp_paused;              /* lp_npending hit --max-pending */
	bool lp_draining;
	bool lp_stop;
	struct timespec lp_drain_deadline;
	uint64_t lp_next_client_id;
	uint32_t lp_next_xid;
	uint64_t lp_seq;             /* bumped for each call sent (pc_seq) */
	/* Hash tables (power-of-two sizes). */
	struct px_call **lp_by_xid, **lp_by_cl;
	size_t lp_nbuckets;
	struct px_dup **lp_dup_hash;
	struct px_dup *lp_dup_old, *lp_dup_new; /* oldest / newest */
	size_t lp_ndups;
	struct px_stats lp_stats;
	struct idmap_slot *lp_idmap; /* NULL: identity mapping is off */
	struct tls_ctx *lp_tls_srv;  /* server role: accept-side TLS */
	struct tls_ctx *lp_tls_cli;  /* client role: upstream TLS */
	struct idmap_gridmap *lp_gridmap;
	struct px_rcache *lp_rcache; /* client role with --cache-dir */
	struct px_wb *lp_wb;         /* --write-policy back */
	struct px_learn *lp_learn;   /* --learn-profiles (learn.c) */
	struct px_ev lp_ctl;         /* control socket (gridvfs status) */
	struct px_metrics *lp_metrics; /* --metrics endpoint, or NULL */
	struct timespec lp_started;
	/* Exports (exports.c).  Every export is an engine: a px_loop with
	 * its own links, calls, cache, write-back and map.  Engine 0 is the
	 * daemon (listener, clients, signals, timer, control socket). */
	struct px_loop *lp_main;     /* engine 0 (itself for engine 0) */
	struct px_loop **lp_eng;     /* engine 0 only: all engines */
	unsigned lp_neng;
	bool lp_wrap;                /* several exports: tag client handles */
	struct px_opts **lp_retired; /* engine 0: options of SIGHUP reloads */
	unsigned lp_nretired, lp_maxretired;
	uint8_t lp_hkey[PX_HKEY_LEN]; /* engine 0: the handle-tag key */
	uint8_t lp_rootfh[NFS3_FHSIZE]; /* the export's root upstream */
	uint32_t lp_rootfh_len;      /* 0: not known yet */
	bool lp_root_asking;         /* a MNT of our own is out */
};

/* exports.c: several exports, one daemon. */
/* STATE-DIR/handle-key into main->lp_hkey, made on first use.  0 or
 * -errno after a log line. */
int px_export_key_load(struct px_loop *main, const char *dir);
/* Ask upstream for e's root handle (LOOKUP ".." there stays in it). */
void px_export_learn_root(struct px_loop *e);
/* A MNT path without "." components or repeated slashes, into out (at
 * least MNT3_PATHLEN + 2 bytes): 0, -EACCES (a ".." component), -EINVAL
 * (not absolute, a NUL, too long). */
int px_mnt_path_norm(const char *in, size_t len, char *out, size_t *olen);
/* A checked call (header and arguments) on engine 0 of a daemon with
 * several exports: the engine it is for, with the call rewritten for that
 * export's upstream (*memp may be replaced, *lenp changes); NULL when it
 * was answered here (or could not be). */
struct px_loop *px_export_route(struct px_loop *main, struct px_client *c,
				uint8_t **memp, size_t *lenp,
				struct px_req *rq);
/* A successful reply's handles tagged for the client: a new message (or
 * m with one more reference when it has none); NULL: answer SERVERFAULT. */
struct px_msg *px_export_wrap_reply(struct px_loop *l, uint32_t prog,
				    uint32_t proc, struct px_msg *m,
				    size_t res_off);
/* Calls outstanding on every engine. */
unsigned px_pending_total(const struct px_loop *main);

/* loop.c */
void px_now(struct timespec *ts);
double px_elapsed_ms(const struct timespec *since);

/* client.c */
void px_client_accept(struct px_loop *l);
void px_client_close(struct px_client *c, const char *reason);
void px_client_unref(struct px_client *c);
void px_client_reap(struct px_loop *l);
void px_client_send(struct px_client *c, struct px_msg *m);
/* Between cork and uncork px_client_send only queues; uncork writes what
 * queued with one writev (a batch of replies ready at once).  Cork takes a
 * reference, uncork drops it. */
void px_client_cork(struct px_client *c);
void px_client_uncork(struct px_client *c);
/* An accepted reply carrying only accept_stat (SYSTEM_ERR, ...); nothing
 * for a closed connection. */
void px_client_rpc_error(struct px_client *c, uint32_t xid, uint32_t stat);
/* Answer an NFS or MOUNT call here with a failure status of its program
 * (NFS3ERR_*, MNT3ERR_*), counted as a local error. */
void px_client_status_reply(struct px_client *c, const struct rpc_call *h,
			    uint32_t status);
/* Re-evaluate whether c (or, with NULL, every client) may be read. */
void px_client_update_read(struct px_loop *l, struct px_client *c);
void px_client_tick(struct px_loop *l, uint64_t now_ms);
void px_client_resume_reading(struct px_client *c);
/* After a grid-mapfile reload: every TLS peer is admitted again (its
 * accounts refreshed) or disconnected with the reason. */
void px_client_recheck_peers(struct px_loop *l);
/* After a TLS reload: every TLS peer's certificate is verified again with
 * the new CA bundle and CRL; a revoked (or now invalid) one is closed. */
void px_client_recheck_certs(struct px_loop *l);

/* peer.c: the client role's rule on local identities. */
int px_peer_local_uid(int fd, const struct sockaddr_storage *peer,
		      uint32_t *uid);
void px_peer_note_start(void);
void px_peer_classify(struct px_client *c);
int px_peer_check_call(const struct px_client *c, const struct px_req *rq,
		       char *why, size_t wlen);

/* link.c */
void px_link_init(struct px_loop *l, struct px_link *ln, const char *name,
		  uint32_t prog, const char *addr);
void px_link_submit(struct px_link *ln, struct px_call *pc);
void px_link_unlink_call(struct px_link *ln, struct px_call *pc);
void px_link_tick(struct px_link *ln, const struct timespec *now);
void px_link_shutdown(struct px_link *ln);

/* ident.c: apply idmap/ to calls (client→store) and replies. */
struct idmap;
struct idmap_slot;
/* 0, -EACCES (deny policy: answer NFS3ERR_ACCES), -EBADMSG, -ENOMEM.
 * May replace *memp (a rebuilt credential); updates h's offsets. */
int px_ident_call(const struct idmap *m, const struct idmap_peer_ids *peer,
		  uint8_t **memp, size_t *lenp, struct px_req *rq);
void px_ident_reply(const struct idmap *m, uint32_t prog, uint32_t proc,
		    uint8_t *res, size_t len);
/* A complete NFSv3 (or MOUNT) reply carrying only a failure status. */
int px_nfs3_error_reply(struct rpc_xdr *x, uint32_t xid, uint32_t prog,
			uint32_t proc, uint32_t status);
/* Load the map the options ask for (NULL *out when mapping is off). */
int px_ident_load(const struct px_opts *o, struct idmap **out);

/* cachepath.c: the read cache on the wire (client role, --cache-dir). */
struct px_cread;
struct px_rcache;
struct cache;
int px_rcache_open(struct px_loop *l);
void px_rcache_close(struct px_loop *l);
struct cache *px_rcache_cache(struct px_loop *l);
/* A READ call: 1 when answered here (hit, or parked on an identical fetch:
 * free the message); 0 to forward, with *crp set when the call was widened
 * to whole blocks (attach it to the pending call). */
int px_rcache_read_call(struct px_loop *l, struct px_client *c, uint8_t *msg,
			size_t len, struct px_req *rq,
			struct px_cread **crp);
/* Any successful-RPC NFS reply (client XID already restored): notes
 * attributes, grants and fills; true when it answered the client itself. */
bool px_rcache_reply(struct px_loop *l, struct px_call *pc, struct px_msg *m,
		     size_t res_off);
void px_rcache_fail_waiters(struct px_cread *cr, uint32_t accept_stat);
/* A WRITE or SETATTR is being sent (pc->pc_seq set): READs sent before it
 * must not fill the cache.  px_rcache_modified() says the same for a file
 * written another way (write-back absorbing a WRITE), and invalidates. */
void px_rcache_call_sent(struct px_loop *l, const struct px_call *pc);
void px_rcache_modified(struct px_loop *l, const uint8_t *fh, uint32_t len);
void px_rcache_call_free(struct px_cread *cr);
void px_rcache_stats(struct px_loop *l, uint64_t *hits, uint64_t *bytes,
		     uint64_t *fetches, uint64_t *coalesced);
/* Readahead and background fetch figures (docs/cache.md, "Readahead"). */
struct px_ra_stats {
	uint64_t rs_waits;       /* client READs that waited for a fetch */
	uint64_t rs_misses;      /* ... that sent a fetch of their own */
	uint64_t rs_ra_blocks;   /* blocks fetched by readahead */
	uint64_t rs_bg_blocks;   /* ... by the background fetch */
	uint64_t rs_bg_bytes;
	uint64_t rs_bg_yields;   /* background READs held back for clients */
	uint64_t rs_link_rate;   /* measured upstream bytes/s, 0: not yet */
};
void px_rcache_ra_stats(struct px_loop *l, struct px_ra_stats *rs);
/* Every 100 ms: the background fetch's rate cap refills. */
void px_rcache_tick(struct px_loop *l);
/* Files whose metadata was loaded; blocks fetched along profiles. */
void px_rcache_meta_stats(struct px_loop *l, uint64_t *files,
			  uint64_t *prefetched);

/*
 * writeback.c: --write-policy back.  px_wb_open() runs at start-up (after
 * the read cache), px_wb_tick() every 100 ms, px_wb_close() at exit.
 * px_wb_call() sees every NFS call after identity mapping and before the
 * read cache: 1 when it answered (or parked) the call itself — it then
 * owns nothing of msg, the pipeline frees it; 0 to let it go on.
 * px_wb_reply() sees every successful NFS reply before it goes to the
 * client, to make attributes reflect unflushed writes.
 */
struct px_wb;
int px_wb_open(struct px_loop *l);
void px_wb_close(struct px_loop *l);
void px_wb_tick(struct px_loop *l);
int px_wb_call(struct px_loop *l, struct px_client *c, uint8_t *msg,
	       size_t len, const struct px_req *rq);
void px_wb_reply(struct px_loop *l, struct px_call *pc, struct px_msg *m,
		 size_t res_off);

/* Write-back figures for status and metrics (zeros without it). */
struct px_wb_stats {
	uint64_t ws_dirty_bytes, ws_dirty_max, ws_dirty_hwm;
	uint64_t ws_flushed_bytes, ws_writes_waited, ws_conflicts, ws_resends;
	uint64_t ws_flush_errors, ws_refused, ws_dropped_bytes, ws_passed_through;
	/* The dirty log's group commit: fsync'ed groups, records put and
	 * deleted in them (records per fsync = ws_group_records/ws_groups). */
	uint64_t ws_groups, ws_group_records, ws_group_deletes;
	uint64_t ws_group_commit_us;   /* time in those commits */
	uint64_t ws_group_lingers;     /* commits that waited for more */
	uint64_t ws_group_syncs;       /* commits flushed twice (durable) */
	uint64_t ws_flush_holds;       /* flushes held for a WRITE burst */
	unsigned ws_parked, ws_inflight;
};
void px_wb_stats(struct px_loop *l, struct px_wb_stats *st);

/* control.c: the control socket and latency figures; --metrics. */
struct px_metrics;
int px_metrics_open(struct px_loop *l);
void px_metrics_close(struct px_loop *l);
void px_metrics_tick(struct px_loop *l);
int px_control_open(struct px_loop *l);
void px_control_close(struct px_loop *l);
void px_stats_latency(struct px_loop *l, uint32_t prog, uint32_t proc,
		      const struct timespec *start);

/* pipeline.c */
int px_pipe_init(struct px_loop *l);
void px_pipe_free(struct px_loop *l);
/* A whole call from a client; takes mem. */
bool px_pipe_call(struct px_client *c, uint8_t *mem, size_t len);
/* A whole reply from upstream; takes mem.  false: link must be reset. */
bool px_pipe_reply(struct px_link *ln, uint8_t *mem, size_t len);
/* Answer pc with an RPC error locally and forget it. */
void px_pipe_fail_call(struct px_call *pc, uint32_t accept_stat);
void px_pipe_tick(struct px_loop *l, time_t now);
/*
 * Send a call of the proxy's own upstream (prefetch, write-back flushes):
 * prog/proc with the given AUTH_SYS credential (NULL: root) and encoded
 * arguments.  cb runs exactly once, from the loop thread.  Replies pass
 * through the same hooks as clients' (idmap, cache notes).  Returns 0, or
 * -ENOMEM (cb not called).
 */
int px_icall(struct px_loop *l, uint32_t prog, uint32_t proc,
	     const struct rpc_authsys *cred, const void *args, size_t alen,
	     px_icall_fn cb, void *ctx);
/* The same, with the reply left in upstream's terms (no identity mapping
 * of its attributes): for calls that act on the store as the store sees
 * it (learn.c writes metadata as the image's store-side owner). */
int px_icall_raw(struct px_loop *l, uint32_t prog, uint32_t proc,
		 const struct rpc_authsys *cred, const void *args, size_t alen,
		 px_icall_fn cb, void *ctx);

/*
 * learn.c: profiles learned from the reads seen (issue 19).  Hooks: every
 * successful LOOKUP reply (upstream's terms, before identity mapping), and
 * every READ call after routing and mapping.  px_learn_tick() once a
 * second publishes the profiles of images whose boot is over.
 */
struct px_learn;
int px_learn_open(struct px_loop *l);
void px_learn_close(struct px_loop *l);
void px_learn_tick(struct px_loop *l);
void px_learn_lookup(struct px_loop *l, const struct px_call *pc,
		     const uint8_t *res, size_t len);
void px_learn_read(struct px_loop *l, const uint8_t *msg,
		   const struct px_req *rq);
void px_learn_stats(struct px_loop *l, uint64_t *watching,
		    uint64_t *published, uint64_t *skipped, uint64_t *failed);

#endif /* GRIDVFS_PX_CORE_H */
