/*
 * proxy/writeback.c — --write-policy back: a WRITE is answered once its
 * data is durable in the dirty log (cache/dirty.c), and a flusher pushes
 * the log upstream in order per file (pipelined WRITE UNSTABLE, then
 * COMMIT; resent when upstream's verifier changes).  Replies are patched
 * so that the node sees its own unflushed writes.  docs/writeback.md.
 */
#include "config.h"
#include "proxy/core.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "cache/cache.h"
#include "idmap/idmap.h"

#define FH_BUCKETS 1024u
#define MAX_INFLIGHT 128u       /* flush calls in flight, all files */
#define HOLD_INFLIGHT 4u        /* ... while a burst holds the flusher */
#define FILE_INFLIGHT 32u       /* ... per file: a 32-deep writer over a WAN */
#define FLUSH_MAX (512u << 10)  /* bytes per flush WRITE (coalesced) */
#define COMMIT_EVERY (16u << 20) /* commit at least this often per file */
#define LOCAL_VIEW_MS 30000u    /* replies older than a file's last flush */
/* Write-behind on a fast upstream (see flush_held): */
#define FAST_RTT_US 2000u       /* a flush WRITE answered this fast ... */
#define FAST_KEEP_MS 10000u     /* ... marks upstream fast for this long */
#define HOLD_MAX_MS 1000u       /* longest a hold delays the flusher */
#define HOLD_QUIET_MS 20u       /* no WRITE absorbed for this long: a pause */
#define HOLD_SLOW_LOG_US 1500u  /* log commits slower than this: no hold */
#define NFS3ERR_PERM 1u
#define NFS3ERR_IO 5u
#define NFS3ERR_ACCES 13u
#define NFS3ERR_INVAL 22u
#define NFS3ERR_FBIG 27u
#define NFS3ERR_ROFS 30u
#define NFS3ERR_NOTSUPP 10004u
#define ACCESS3_MODIFY 0x04u
#define ACCESS3_EXTEND 0x08u
#define GRANTS 4u               /* write grants kept per file */
#define CERRS 4u                /* per-credential errors kept per file */
#define NFS3ERR_NOSPC 28u
#define NFS3ERR_DQUOT 69u
#define NFS3ERR_STALE 70u
#define NFS3ERR_BADHANDLE 10001u
#define UNSTABLE 0u
#define FILE_SYNC 2u

enum rec_state {
	R_QUEUED,     /* to be sent upstream */
	R_SENDING,    /* a flush WRITE carries it */
	R_WRITTEN,    /* upstream has it (unstable), verifier r_verf */
	R_COMMITTING, /* a COMMIT covering it is out */
	R_DELETING,   /* committed upstream; its deletion is being made durable */
	R_GONE,       /* deleted; kept only for READ overlays in flight */
};

struct wb_file;

/* One acknowledged (or being acknowledged) WRITE. */
struct wb_rec {
	struct wb_rec *r_next, *r_prev;  /* file's records in seq order */
	struct wb_file *r_file;
	uint64_t r_seq, r_off, r_time_ms;
	uint32_t r_len;
	uint8_t *r_data;
	enum rec_state r_state;
	uint8_t r_verf[8];
	uint64_t r_cgen;
	bool r_durable;  /* in the log: may go upstream */
	bool r_dropped;  /* refused upstream for good: no longer the node's */
	struct rpc_authsys r_cred;
	/* The client WRITE to answer when durable (NULL: replayed). */
	struct px_client *r_client;
	uint32_t r_xid, r_count, r_stable;
};

/* A file with dirty data (or recently so). */
struct wb_file {
	struct wb_file *f_hnext;          /* by handle */
	struct wb_file *f_next, *f_prev;  /* all files */
	uint8_t f_fh[NFS3_FHSIZE];
	uint32_t f_fhlen;
	bool f_have_id, f_have_attr;
	uint8_t f_id[16];                 /* fsid ‖ fileid as in fattr3 */
	uint8_t f_attr[NFS3_FATTR_SIZE];  /* last upstream attributes */
	struct wb_rec *f_head, *f_tail, *f_cursor;
	uint64_t f_lsize;                 /* size as the node sees it */
	uint32_t f_lmtime[2];             /* mtime of the last local write */
	bool f_local;                     /* f_lsize / f_lmtime apply */
	uint64_t f_clean_at;              /* ms: when it last became clean */
	uint64_t f_clean_seq;             /* lp_seq then: calls sent up to it
					   * may predate the flush */
	unsigned f_inflight, f_reads, f_barriers_out;
	uint64_t f_barrier_seq;           /* parked barrier: send nothing newer */
	bool f_committing;
	uint64_t f_cgen, f_written_bytes;
	uint64_t f_sgen;                  /* bumped when everything is resent */
	uint64_t f_retry_at;              /* ms */
	unsigned f_backoff;
	uint32_t f_err;                   /* for the next COMMIT (data dropped) */
	bool f_post_known;
	uint8_t f_post_ctime[8];          /* upstream ctime after our last op */
	struct { uint64_t off, end; } f_fly[FILE_INFLIGHT];
	/* Who upstream lets write this file (ACCESS MODIFY|EXTEND), for
	 * the mode/uid/gid the file had then: a WRITE is absorbed only
	 * under a live grant. */
	struct wb_grant {
		uint64_t g_cred;          /* cred_hash(); 0: free slot */
		uint32_t g_perm[3];       /* mode, uid, gid when granted */
		uint64_t g_at;            /* ms: granted or last confirmed */
		uint64_t g_seq;           /* w_seq when answered */
		bool g_ok, g_asking;
	} f_grants[GRANTS];
	/* Flushes refused for good: the next COMMIT of that credential
	 * says so, once. */
	struct { uint64_t ce_cred; uint32_t ce_status; } f_cerr[CERRS];
};

enum park_kind { P_WRITE, P_COMMIT, P_FWD_FILE, P_FWD_ALL, P_READ, P_GRANT };

/* A client call waiting for the flusher (or for --dirty-max room). */
struct wb_park {
	struct wb_park *p_next;
	enum park_kind p_kind;
	struct px_client *p_client;  /* a ref */
	uint64_t p_seq;
	uint8_t p_fh[NFS3_FHSIZE];
	uint32_t p_fhlen;
	uint8_t *p_msg;              /* copy of the call */
	size_t p_len;
	struct px_req p_rq;          /* its request record (same offsets) */
};

struct px_wb {
	struct px_loop *w_loop;
	struct px_ev w_ev;
	struct cache_dirty *w_dirty;
	uint8_t w_verf[8];
	uint64_t w_seq, w_max;
	struct wb_file *w_hash[FH_BUCKETS];
	struct wb_file *w_files;
	struct wb_park *w_park, *w_park_tail;
	unsigned w_inflight, w_parked_writes;
	uint64_t w_hwm, w_waited, w_flushed_bytes, w_conflicts, w_resends;
	uint64_t w_refused, w_dropped_bytes, w_passed_through, w_flush_errors;
	struct wb_io *w_fwd;         /* client calls forwarded, in flight */
	uint64_t w_logged_at, w_logged_flushed;
	bool w_progress;             /* re-check parked calls */
	unsigned w_puts;             /* client WRITEs queued to the log */
	uint64_t w_put_at;           /* ms: the last one was queued */
	uint64_t w_fast_at;          /* ms: a flush WRITE came back fast */
	uint64_t w_hold_from;        /* ms: the flusher held since (0: not) */
	uint64_t w_holds;            /* holds begun (status) */
	bool w_log_slow;             /* the log's recent commits were slow */
	uint64_t w_tick_groups, w_tick_commit_us; /* counts at the last tick */
};

/* A call of ours in flight: a flush WRITE / COMMIT, or a client's call
 * forwarded after its barrier. */
struct wb_io {
	struct px_wb *io_wb;
	struct wb_file *io_file;
	uint64_t io_off, io_cgen, io_sgen;
	uint64_t io_sent_us;     /* flush WRITE: when it went (its RTT) */
	uint64_t io_seq;         /* forwarded call: its park/arrival w_seq */
	struct rpc_authsys io_cred; /* a COMMIT's credential */
	struct wb_io *io_fnext;  /* forwarded calls in flight (w_fwd) */
	uint32_t io_len;
	int io_slot;
	bool io_alone;
	/* forwarded client call */
	struct px_client *io_client;
	uint32_t io_xid, io_proc, io_count;
	unsigned io_nrecs;
	struct wb_rec *io_recs[];
};

static void flush_kick(struct px_wb *w);
static void cred_parse(const uint8_t *msg, const struct rpc_call *h,
		       struct rpc_authsys *a);
static int write_route(struct px_wb *w, struct px_client *c,
		       const uint8_t *msg, size_t len, const struct rpc_call *h,
		       uint64_t since);
static void file_backoff(struct wb_file *f);
static void park_progress(struct px_wb *w);
static void write_admit(struct px_wb *w, struct px_client *c,
			const uint8_t *msg, size_t len,
			const struct rpc_call *h);

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

static unsigned fh_bucket(const uint8_t *fh, uint32_t len)
{
	uint32_t h = 2166136261u;

	for (uint32_t i = 0; i < len; i++)
		h = (h ^ fh[i]) * 16777619u;
	return h & (FH_BUCKETS - 1);
}

static struct wb_file *file_find(struct px_wb *w, const uint8_t *fh,
				 uint32_t len)
{
	for (struct wb_file *f = w->w_hash[fh_bucket(fh, len)]; f;
	     f = f->f_hnext)
		if (f->f_fhlen == len && !memcmp(f->f_fh, fh, len))
			return f;
	return NULL;
}

static struct wb_file *file_get(struct px_wb *w, const uint8_t *fh,
				uint32_t len)
{
	struct wb_file *f = file_find(w, fh, len);
	unsigned b;

	if (f || len == 0 || len > NFS3_FHSIZE || !(f = calloc(1, sizeof(*f))))
		return f;
	memcpy(f->f_fh, fh, len);
	f->f_fhlen = len;
	b = fh_bucket(fh, len);
	f->f_hnext = w->w_hash[b];
	w->w_hash[b] = f;
	f->f_next = w->w_files;
	if (w->w_files)
		w->w_files->f_prev = f;
	w->w_files = f;
	return f;
}

static void file_free(struct px_wb *w, struct wb_file *f)
{
	struct wb_file **pp = &w->w_hash[fh_bucket(f->f_fh, f->f_fhlen)];

	while (*pp != f)
		pp = &(*pp)->f_hnext;
	*pp = f->f_hnext;
	if (f->f_prev)
		f->f_prev->f_next = f->f_next;
	else
		w->w_files = f->f_next;
	if (f->f_next)
		f->f_next->f_prev = f->f_prev;
	while (f->f_head) {
		struct wb_rec *r = f->f_head;

		f->f_head = r->r_next;
		if (r->r_client)
			px_client_unref(r->r_client);
		free(r->r_data);
		free(r);
	}
	free(f);
}

/* Oldest record still to be flushed or being made clean (R_GONE ones are
 * only kept for overlays). */
static struct wb_rec *file_oldest(const struct wb_file *f)
{
	for (struct wb_rec *r = f->f_head; r; r = r->r_next)
		if (r->r_state != R_GONE)
			return r;
	return NULL;
}

static void rec_unlink(struct wb_file *f, struct wb_rec *r)
{
	if (r->r_prev)
		r->r_prev->r_next = r->r_next;
	else
		f->f_head = r->r_next;
	if (r->r_next)
		r->r_next->r_prev = r->r_prev;
	else
		f->f_tail = r->r_prev;
	if (f->f_cursor == r)
		f->f_cursor = r->r_next;
	free(r->r_data);
	free(r);
}

/* Drop R_GONE records once no READ overlay can need them. */
static void file_purge_gone(struct wb_file *f, uint64_t below_seq)
{
	struct wb_rec *r = f->f_head, *next;

	for (; r; r = next) {
		next = r->r_next;
		if (r->r_state == R_GONE && (!f->f_reads || r->r_seq < below_seq))
			rec_unlink(f, r);
	}
}

/* The file just lost its last record: replies to calls sent before now
 * may still carry pre-flush attributes, so the local view stays for
 * them.  "Before" is decided by the loop's call sequence, which cannot
 * tie (a millisecond clock did: a SETATTR sent in the same millisecond
 * had its own truncate undone by the patch). */
static void file_note_clean(struct px_wb *w, struct wb_file *f)
{
	if (file_oldest(f))
		return;
	f->f_clean_at = px_now_ms();
	f->f_clean_seq = w->w_loop->lp_seq;
	f->f_post_known = false;
}

/* ---------------------------------------------------------------------- */
/* Attributes                                                              */

static bool fattr_is(const struct wb_file *f, const uint8_t *fattr)
{
	return f->f_have_id && !memcmp(f->f_id, fattr + NFS3_FATTR_FSID, 16);
}

static void file_learn(struct wb_file *f, const uint8_t *fattr, bool upstream)
{
	if (rpc_get32(fattr) != 1) /* regular files only */
		return;
	memcpy(f->f_id, fattr + NFS3_FATTR_FSID, 16);
	f->f_have_id = true;
	if (upstream) {
		memcpy(f->f_attr, fattr, NFS3_FATTR_SIZE);
		f->f_have_attr = true;
	}
}

/* Does the local view apply to a reply to a call sent at seq (lp_seq)? */
static bool view_applies(const struct wb_file *f, uint64_t seq)
{
	return f->f_local && (file_oldest(f) || f->f_inflight ||
			      seq <= f->f_clean_seq);
}

/* The node's size: base (upstream's, after an operation) extended by
 * the records newer than seq (w_seq; 0: all) that still stand. */
static void lsize_from(struct wb_file *f, uint64_t base, uint64_t seq)
{
	f->f_lsize = base;
	for (struct wb_rec *r = f->f_head; r; r = r->r_next)
		if (r->r_state != R_GONE && !r->r_dropped && r->r_seq > seq &&
		    r->r_off + r->r_len > f->f_lsize)
			f->f_lsize = r->r_off + r->r_len;
}

/* a > b for two nfstime3 (seconds, nanoseconds) */
static bool time_after(const uint8_t *a, const uint8_t *b)
{
	return rpc_get32(a) > rpc_get32(b) ||
	       (rpc_get32(a) == rpc_get32(b) && rpc_get32(a + 4) > rpc_get32(b + 4));
}

/* Make fattr show the node's unflushed writes: size and mtime. */
static void fattr_patch(const struct wb_file *f, uint8_t *fattr)
{
	uint8_t *mt = fattr + NFS3_FATTR_MTIME;
	uint64_t used;

	if (rpc_get64(fattr + NFS3_FATTR_SIZE_OFF) < f->f_lsize) {
		rpc_put64(fattr + NFS3_FATTR_SIZE_OFF, f->f_lsize);
		used = rpc_get64(fattr + 28);
		if (used < f->f_lsize)
			rpc_put64(fattr + 28, f->f_lsize);
	}
	if (rpc_get32(mt) < f->f_lmtime[0] ||
	    (rpc_get32(mt) == f->f_lmtime[0] && rpc_get32(mt + 4) < f->f_lmtime[1])) {
		rpc_put32(mt, f->f_lmtime[0]);
		rpc_put32(mt + 4, f->f_lmtime[1]);
	}
}

struct learn_ctx {
	struct px_wb *lc_w;
	uint32_t lc_proc;
	struct wb_file *lc_callf;  /* the call's object */
	bool lc_first;
	uint8_t *lc_fh, *lc_fattr;
	uint32_t lc_fhlen;
	uint64_t lc_seq;
};

static void learn_pair(struct learn_ctx *lc, const uint8_t *fh, uint32_t len,
		       const uint8_t *fattr)
{
	struct wb_file *f = file_find(lc->lc_w, fh, len);

	if (f && !f->f_have_id)
		file_learn(f, fattr, true);
}

static void learn_fattr(void *ctx, uint8_t *fattr)
{
	struct learn_ctx *lc = ctx;

	if (lc->lc_first && lc->lc_callf && !lc->lc_callf->f_have_id)
		file_learn(lc->lc_callf, fattr, true);
	lc->lc_first = false;
	if (lc->lc_fh && lc->lc_proc != NFS3_READDIRPLUS) {
		learn_pair(lc, lc->lc_fh, lc->lc_fhlen, fattr);
		lc->lc_fh = NULL;
	}
	lc->lc_fattr = fattr;
}

static void learn_fh(void *ctx, unsigned n, uint8_t *fh, uint32_t len)
{
	struct learn_ctx *lc = ctx;

	(void)n;
	if (lc->lc_proc == NFS3_READDIRPLUS) {
		if (lc->lc_fattr)
			learn_pair(lc, fh, len, lc->lc_fattr);
		lc->lc_fattr = NULL;
		return;
	}
	lc->lc_fh = fh;
	lc->lc_fhlen = len;
}

static void patch_fattr_cb(void *ctx, uint8_t *fattr)
{
	struct learn_ctx *lc = ctx;

	for (struct wb_file *f = lc->lc_w->w_files; f; f = f->f_next)
		if (fattr_is(f, fattr)) {
			/* Upstream's latest word starts the next view; a
			 * reply overtaken by a newer one (older ctime) is not
			 * the latest word. */
			if (!f->f_have_attr ||
			    !time_after(f->f_attr + NFS3_FATTR_CTIME,
					fattr + NFS3_FATTR_CTIME)) {
				memcpy(f->f_attr, fattr, NFS3_FATTR_SIZE);
				f->f_have_attr = true;
			}
			if (view_applies(f, lc->lc_seq))
				fattr_patch(f, fattr);
			return;
		}
}

/*
 * Every call header the write-back is handed is the rq_h of a request
 * record — the pipeline's, a parked call's copy (p_rq), a pending call's
 * pc_rq — so the decoded arguments are one step away (proxy/request.c).
 */
static const struct px_req *req_of(const struct rpc_call *h)
{
	return (const struct px_req *)((const char *)h -
				       offsetof(struct px_req, rq_h));
}


/* Learn identities from any reply, then patch every fattr3 of a file
 * with a local view. */
static void reply_patch(struct px_wb *w, uint32_t proc, const uint8_t *call,
			const struct px_req *rq, uint64_t seq, uint8_t *res,
			size_t rlen)
{
	struct learn_ctx lc = {.lc_w = w, .lc_proc = proc, .lc_first = true,
			       .lc_seq = seq};
	struct rpc_nfs3_visit v = {.v_fattr = learn_fattr, .v_fh = learn_fh};
	const uint8_t *fh;
	uint32_t fhlen;

	if (!w->w_files)
		return;
	if (call && px_req_fh(rq, call, &fh, &fhlen) &&
	    proc != NFS3_LOOKUP && proc != NFS3_READDIRPLUS &&
	    proc != NFS3_CREATE && proc != NFS3_REMOVE && proc != NFS3_RENAME)
		lc.lc_callf = file_find(w, fh, fhlen);
	rpc_nfs3_walk_reply(proc, res, rlen, &v, &lc);
	v = (struct rpc_nfs3_visit){.v_fattr = patch_fattr_cb};
	rpc_nfs3_walk_reply(proc, res, rlen, &v, &lc);
}

/* ---------------------------------------------------------------------- */
/* Replies of our own                                                      */

static struct px_msg *reply_new(uint32_t xid, size_t cap, struct rpc_xdr *x)
{
	struct px_msg *m = px_msg_new(cap + 32);

	if (!m)
		return NULL;
	rpc_xdr_init(x, px_msg_data(m), cap + 32);
	rpc_reply_accepted(x, xid, RPC_ACC_SUCCESS, 0, 0);
	return m;
}

static void reply_send(struct px_client *c, struct px_msg *m,
		       struct rpc_xdr *x)
{
	if (!x->x_err && !c->cl_closed) {
		m->m_len = x->x_pos;
		px_client_send(c, m);
	}
	px_msg_unref(m);
}

/* wcc_data with no pre-op attributes and the file's post-op view. */
static void put_wcc(struct rpc_xdr *x, const struct wb_file *f)
{
	uint8_t attr[NFS3_FATTR_SIZE];

	rpc_xdr_put_u32(x, 0);
	if (!f || !f->f_have_attr) {
		rpc_xdr_put_u32(x, 0);
		return;
	}
	memcpy(attr, f->f_attr, sizeof(attr));
	if (f->f_local)
		fattr_patch(f, attr);
	rpc_xdr_put_u32(x, 1);
	rpc_xdr_put_fixed(x, attr, sizeof(attr));
}

static void reply_map_ids(struct px_loop *l, uint32_t proc, uint8_t *res,
			  size_t len)
{
	struct idmap *map;

	if (!l->lp_idmap)
		return;
	map = idmap_slot_get(l->lp_idmap);
	px_ident_reply(map, RPC_PROG_NFS, proc, res, len);
	idmap_unref(map);
}

/* A parked call is answered: its client may send more. */
static void client_done(struct px_client *c)
{
	c->cl_pending--;
	if (!c->cl_closed)
		px_client_update_read(c->cl_loop, c);
	px_client_unref(c);
}

static void client_hold(struct px_client *c)
{
	c->cl_refs++;
	c->cl_pending++;
}

/* The NFS status for a WRITE the dirty log could not store. */
static uint32_t put_status(int err)
{
	return err == -ENOSPC ? NFS3ERR_NOSPC
	       : err == -EDQUOT ? NFS3ERR_DQUOT : NFS3ERR_IO;
}

static void write_reply(struct px_wb *w, struct wb_rec *r, int err)
{
	struct px_client *c = r->r_client;
	struct rpc_xdr x;
	struct px_msg *m;

	r->r_client = NULL;
	if (!c->cl_closed && (m = reply_new(r->r_xid, 128 + NFS3_FATTR_SIZE, &x))) {
		size_t res = x.x_pos;

		rpc_xdr_put_u32(&x, err ? put_status(err) : NFS3_OK);
		put_wcc(&x, r->r_file);
		if (!err) {
			rpc_xdr_put_u32(&x, r->r_count);
			/* The data is on stable storage (ours): a stable
			 * request gets FILE_SYNC, others UNSTABLE with our
			 * verifier so they resend if we lose the log. */
			rpc_xdr_put_u32(&x, r->r_stable == UNSTABLE ? UNSTABLE
								     : FILE_SYNC);
			rpc_xdr_put_fixed(&x, w->w_verf, 8);
		}
		reply_map_ids(w->w_loop, NFS3_WRITE, px_msg_data(m) + res,
			      x.x_pos - res);
		reply_send(c, m, &x);
	}
	client_done(c);
}

/* ---------------------------------------------------------------------- */
/* The dirty log's completions                                             */

/* The log could not store r, so its client was told the WRITE failed:
 * it must take no effect.  It was never sent (only durable records are
 * flushed): drop it, and the node's size is again what upstream's and
 * the other records make it. */
static void rec_refused(struct px_wb *w, struct wb_file *f, struct wb_rec *r)
{
	rec_unlink(f, r);
	lsize_from(f, f->f_have_attr ? rpc_get64(f->f_attr + NFS3_FATTR_SIZE_OFF)
				     : 0, 0);
	w->w_progress = true;
	file_note_clean(w, f);
}

/* A record committed upstream is still in the log (its deletion failed:
 * a full disk, say).  It goes back to R_WRITTEN and counts as written
 * again, so that flush_file sends a new COMMIT after a backoff and the
 * deletion is retried then; without f_written_bytes no COMMIT would ever
 * be sent, and the file would stay dirty, its COMMITs parked, forever. */
static void rec_del_failed(struct wb_file *f, struct wb_rec *r, int err)
{
	px_warn_rl("dirty log: cannot delete a record committed upstream "
		   "(%s): kept, retried after a new COMMIT", strerror(-err));
	r->r_state = R_WRITTEN;
	f->f_written_bytes += r->r_len;
	if (f->f_retry_at <= px_now_ms())
		file_backoff(f);
}

static void dirty_done(struct px_wb *w, const struct cache_dirty_done *dd)
{
	struct wb_rec *r = dd->dd_token;
	struct wb_file *f;

	if (!r)
		return;
	f = r->r_file;
	if (dd->dd_put) {
		if (r->r_client)
			w->w_puts--;
		if (dd->dd_err) {
			px_warn_rl("dirty log: cannot store a WRITE (%s): "
				   "answering %s", strerror(-dd->dd_err),
				   put_status(dd->dd_err) == NFS3ERR_NOSPC
					   ? "NFS3ERR_NOSPC"
				   : put_status(dd->dd_err) == NFS3ERR_DQUOT
					   ? "NFS3ERR_DQUOT" : "NFS3ERR_IO");
		} else
			r->r_durable = true;
		if (r->r_client)
			write_reply(w, r, dd->dd_err);
		if (dd->dd_err)
			rec_refused(w, f, r);
		return;
	}
	if (dd->dd_err) {
		rec_del_failed(f, r, dd->dd_err);
		return;
	}
	w->w_progress = true;
	if (f->f_reads)
		r->r_state = R_GONE;
	else
		rec_unlink(f, r);
	file_note_clean(w, f);
}

static void dirty_event(struct px_ev *ev, uint32_t events)
{
	struct px_wb *w = (struct px_wb *)((char *)ev - offsetof(struct px_wb, w_ev));
	struct cache_dirty_done dd[64];
	struct px_client *cork[64];
	size_t n, nc;

	(void)events;
	while ((n = cache_dirty_reap(w->w_dirty, dd, 64)) > 0) {
		/* A group's WRITEs are answered together: one writev per
		 * client for all its replies, not one per reply. */
		nc = 0;
		for (size_t i = 0; i < n; i++) {
			struct wb_rec *r = dd[i].dd_token;
			size_t k;

			if (!r || !dd[i].dd_put || !r->r_client)
				continue;
			for (k = 0; k < nc && cork[k] != r->r_client; k++)
				;
			if (k == nc)
				px_client_cork(cork[nc++] = r->r_client);
		}
		for (size_t i = 0; i < n; i++)
			dirty_done(w, &dd[i]);
		for (size_t k = 0; k < nc; k++)
			px_client_uncork(cork[k]);
	}
	if (w->w_progress)
		park_progress(w);
	flush_kick(w);
}

/* The record was committed upstream: make its deletion durable. */
static void rec_retire(struct px_wb *w, struct wb_rec *r)
{
	r->r_state = R_DELETING;
	w->w_flushed_bytes += r->r_len;
	/* Only durable records are sent: its put is done, the order holds. */
	if (cache_dirty_del(w->w_dirty, r->r_seq, r->r_len, r) < 0)
		rec_del_failed(r->r_file, r, -ENOMEM);
}

/* ---------------------------------------------------------------------- */
/* The flusher                                                             */

static void cred_of(const struct wb_rec *r, struct rpc_authsys *a)
{
	*a = r->r_cred;
}

/* A credential as a key: uid, gid and the groups (FNV-1a, never 0). */
static uint64_t cred_hash(const struct rpc_authsys *a)
{
	uint64_t h = 1469598103934665603ull;
	uint32_t v[2 + RPC_AUTHSYS_MAX_GIDS];
	const uint8_t *p = (const uint8_t *)v;
	unsigned n = 2 + a->as_ngids;

	v[0] = a->as_uid;
	v[1] = a->as_gid;
	memcpy(v + 2, a->as_gids, a->as_ngids * sizeof(uint32_t));
	for (size_t i = 0; i < n * sizeof(uint32_t); i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* ---------------------------------------------------------------------- */
/* Write grants: a WRITE is absorbed only if upstream let this credential
 * write this file recently (docs/writeback.md, "Permission").            */

enum grant_answer { G_YES, G_NO, G_ASK, G_WAIT };

static void perm_of(const struct wb_file *f, uint32_t perm[3])
{
	if (!f->f_have_attr) {
		perm[0] = perm[1] = perm[2] = UINT32_MAX;
		return;
	}
	perm[0] = rpc_get32(f->f_attr + 4);  /* mode */
	perm[1] = rpc_get32(f->f_attr + 12); /* uid */
	perm[2] = rpc_get32(f->f_attr + 16); /* gid */
}

static struct wb_grant *grant_find(struct wb_file *f, uint64_t key)
{
	for (unsigned i = 0; i < GRANTS; i++)
		if (f->f_grants[i].g_cred == key)
			return &f->f_grants[i];
	return NULL;
}

/* The slot for key: its own, a free one, or the oldest not being asked. */
static struct wb_grant *grant_slot(struct wb_file *f, uint64_t key)
{
	struct wb_grant *g = grant_find(f, key), *old = NULL;

	for (unsigned i = 0; !g && i < GRANTS; i++) {
		struct wb_grant *q = &f->f_grants[i];

		if (!q->g_cred)
			g = q;
		else if (!q->g_asking && (!old || q->g_at < old->g_at))
			old = q;
	}
	if (!g && (g = old))
		memset(g, 0, sizeof(*g));
	if (g)
		g->g_cred = key;
	return g;
}

static void grant_set(struct px_wb *w, struct wb_file *f, uint64_t key,
		      bool ok)
{
	struct wb_grant *g = grant_slot(f, key);

	if (!g)
		return;
	g->g_ok = ok;
	g->g_asking = false;
	g->g_at = px_now_ms();
	g->g_seq = ++w->w_seq;
	perm_of(f, g->g_perm);
}

static uint64_t grant_ttl_ms(const struct px_wb *w)
{
	return (uint64_t)w->w_loop->lp_opts->o_access_ttl * 1000u;
}

/* May a WRITE from cred be absorbed?  since: the park's w_seq when the
 * call waited for an answer (an answer given after it counts, even with
 * --access-ttl 0). */
static enum grant_answer grant_check(struct px_wb *w, struct wb_file *f,
				     uint64_t key, uint64_t since)
{
	struct wb_grant *g = grant_find(f, key);
	uint32_t perm[3];

	if (!g)
		return G_ASK;
	if (g->g_asking)
		return G_WAIT;
	perm_of(f, perm);
	if (memcmp(perm, g->g_perm, sizeof(perm)))
		return G_ASK;   /* chmod/chown since: ask again */
	if (!(since && g->g_seq > since) &&
	    px_now_ms() - g->g_at >= grant_ttl_ms(w))
		return G_ASK;
	return g->g_ok ? G_YES : G_NO;
}

static bool grants_live(const struct px_wb *w, const struct wb_file *f,
			uint64_t now)
{
	for (unsigned i = 0; i < GRANTS; i++)
		if (f->f_grants[i].g_cred &&
		    (f->f_grants[i].g_asking ||
		     now - f->f_grants[i].g_at < grant_ttl_ms(w)))
			return true;
	return false;
}

struct wb_ask {
	struct px_wb *a_wb;
	struct wb_file *a_file;
	uint64_t a_key;
};

/* ACCESS3resok / resfail: status, post_op_attr, [access]. */
static bool access_granted(const uint8_t *res, size_t len, uint32_t want)
{
	size_t off = 8;

	if (len < 8 || rpc_get32(res) != NFS3_OK)
		return false;
	if (rpc_get32(res + 4))
		off += NFS3_FATTR_SIZE;
	return len >= off + 4 && (rpc_get32(res + off) & want) == want;
}

static void grant_answer(void *ctx, int err, uint8_t *res, size_t len)
{
	struct wb_ask *a = ctx;
	struct px_wb *w = a->a_wb;

	grant_set(w, a->a_file, a->a_key,
		  !err && access_granted(res, len,
					 ACCESS3_MODIFY | ACCESS3_EXTEND));
	free(a);
	w->w_progress = true;
	park_progress(w);
	flush_kick(w);
}

/* Ask upstream (ACCESS MODIFY|EXTEND, with the writer's credential). */
static int grant_ask(struct px_wb *w, struct wb_file *f,
		     const struct rpc_authsys *cred, uint64_t key)
{
	uint8_t args[4 + NFS3_FHSIZE + 4];
	struct wb_grant *g = grant_slot(f, key);
	struct wb_ask *a;
	struct rpc_xdr x;

	if (!g || !(a = calloc(1, sizeof(*a))))
		return -ENOMEM;
	a->a_wb = w;
	a->a_file = f;
	a->a_key = key;
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, f->f_fh, f->f_fhlen);
	rpc_xdr_put_u32(&x, ACCESS3_MODIFY | ACCESS3_EXTEND);
	if (px_icall(w->w_loop, RPC_PROG_NFS, NFS3_ACCESS, cred, args, x.x_pos,
		     grant_answer, a) < 0) {
		free(a);
		return -ENOMEM;
	}
	g->g_asking = true;
	return 0;
}

/* A client's own ACCESS that asked for MODIFY and EXTEND: its answer is
 * a grant (the Linux client asks at every open: no extra round trip). */
static void grant_learn(struct px_wb *w, const uint8_t *call, size_t clen,
			const struct px_req *rq, uint8_t *res, size_t rlen)
{
	struct rpc_authsys cred;
	const uint8_t *fh;
	uint32_t fhlen, want = ACCESS3_MODIFY | ACCESS3_EXTEND;
	struct wb_file *f;

	/* ACCESS3args: the handle, then the bits asked. */
	if (!px_req_fh(rq, call, &fh, &fhlen) ||
	    rq->rq_fh_off[0] + ((fhlen + 3u) & ~3u) + 4 > clen ||
	    (rpc_get32(call + rq->rq_fh_off[0] + ((fhlen + 3u) & ~3u)) & want) !=
		    want ||
	    rlen < 8 || rpc_get32(res) != NFS3_OK ||
	    !(f = file_get(w, fh, fhlen)))
		return;
	/* The grant is for the mode and owner the reply shows. */
	if (rpc_get32(res + 4) && rlen >= 8 + NFS3_FATTR_SIZE)
		file_learn(f, res + 8, true);
	cred_parse(call, &rq->rq_h, &cred);
	grant_set(w, f, cred_hash(&cred), access_granted(res, rlen, want));
}

/* Flushes refused for good, per credential, for its next COMMIT. */
static void cerr_set(struct wb_file *f, uint64_t key, uint32_t st)
{
	unsigned i, free_i = 0;

	for (i = 0; i < CERRS; i++)
		if (f->f_cerr[i].ce_cred == key || !f->f_cerr[i].ce_cred)
			break;
	if (i == CERRS)
		i = free_i; /* all taken: the oldest error is replaced */
	f->f_cerr[i].ce_cred = key;
	f->f_cerr[i].ce_status = st;
}

static uint32_t cerr_take(struct wb_file *f, uint64_t key)
{
	for (unsigned i = 0; i < CERRS; i++)
		if (f->f_cerr[i].ce_cred == key) {
			uint32_t st = f->f_cerr[i].ce_status;

			f->f_cerr[i].ce_cred = 0;
			return st;
		}
	return 0;
}

/* Upstream refused these records for good (no write permission any more,
 * GARBAGE_ARGS, ...): they are no longer the node's.  Logged, counted,
 * deleted from the log; the writer's next COMMIT of the file returns the
 * error once; other credentials' records keep flowing. */
static void recs_refused(struct px_wb *w, struct wb_file *f,
			 struct wb_rec **recs, unsigned n, uint32_t st,
			 const char *what)
{
	uint64_t bytes = 0;

	for (unsigned i = 0; i < n; i++) {
		bytes += recs[i]->r_len;
		recs[i]->r_dropped = true;
	}
	w->w_refused++;
	w->w_dropped_bytes += bytes;
	px_err("write-back: upstream refused %s of file %016llx:%016llx for "
	       "uid %u (%s %u): %llu acknowledged bytes dropped; that user's "
	       "next COMMIT of the file gets the error", what,
	       (unsigned long long)rpc_get64(f->f_id),
	       (unsigned long long)rpc_get64(f->f_id + 8), recs[0]->r_cred.as_uid,
	       st ? "NFS status" : "an RPC-level refusal, e.g. GARBAGE_ARGS:",
	       st, (unsigned long long)bytes);
	cerr_set(f, cred_hash(&recs[0]->r_cred),
		 st ? st : NFS3ERR_IO);
	for (unsigned i = 0; i < n; i++)
		rec_retire(w, recs[i]);
	w->w_flushed_bytes -= bytes < w->w_flushed_bytes ? bytes
							: w->w_flushed_bytes;
	lsize_from(f, f->f_have_attr ? rpc_get64(f->f_attr + NFS3_FATTR_SIZE_OFF)
				     : 0, 0);
}

/* NFS statuses a retry cannot change (the request or the rights are
 * wrong); others (IO, NOSPC, DQUOT, JUKEBOX...) are retried. */
static bool status_final(uint32_t st)
{
	switch (st) {
	case NFS3ERR_PERM: case NFS3ERR_ACCES: case NFS3ERR_INVAL:
	case NFS3ERR_FBIG: case NFS3ERR_ROFS: case NFS3ERR_NOTSUPP:
		return true;
	default:
		return false;
	}
}

static bool cred_same(const struct rpc_authsys *a, const struct rpc_authsys *b)
{
	return a->as_uid == b->as_uid && a->as_gid == b->as_gid &&
	       a->as_ngids == b->as_ngids &&
	       !memcmp(a->as_gids, b->as_gids, a->as_ngids * sizeof(uint32_t));
}

static void file_backoff(struct wb_file *f)
{
	f->f_backoff = f->f_backoff ? f->f_backoff * 2 : 500;
	if (f->f_backoff > 30000)
		f->f_backoff = 30000;
	f->f_retry_at = px_now_ms() + f->f_backoff;
}

/*
 * Something upstream did not keep (a failed WRITE, a changed verifier):
 * resend every record of the file not yet committed, in order, since an
 * older record resent alone could land over a newer one.  Flush calls
 * still in flight are disowned (their ranges stay busy until they end).
 */
static void file_requeue_all(struct wb_file *f)
{
	f->f_sgen++;
	f->f_cursor = NULL;
	f->f_written_bytes = 0;
	for (struct wb_rec *r = f->f_head; r; r = r->r_next) {
		if (r->r_state == R_DELETING || r->r_state == R_GONE)
			continue;
		r->r_state = R_QUEUED;
		if (!f->f_cursor)
			f->f_cursor = r;
	}
}

struct wres {
	uint32_t wr_status, wr_count, wr_committed;
	uint8_t *wr_pre, *wr_post, *wr_verf;
};

static void wres_status(void *ctx, uint32_t st)
{
	((struct wres *)ctx)->wr_status = st;
}

static void wres_pre(void *ctx, uint8_t *p)
{
	((struct wres *)ctx)->wr_pre = p;
}

static void wres_fattr(void *ctx, uint8_t *p)
{
	((struct wres *)ctx)->wr_post = p;
}

static void wres_write(void *ctx, uint32_t count, uint32_t committed,
		       uint8_t *verf)
{
	struct wres *wr = ctx;

	wr->wr_count = count;
	wr->wr_committed = committed;
	wr->wr_verf = verf;
}

static void wres_commit(void *ctx, uint8_t *verf)
{
	((struct wres *)ctx)->wr_verf = verf;
}

static void wres_parse(uint32_t proc, uint8_t *res, size_t len,
		       struct wres *wr)
{
	struct rpc_nfs3_visit v = {
		.v_status = wres_status, .v_wcc_pre = wres_pre,
		.v_fattr = wres_fattr, .v_write_res = wres_write,
		.v_commit_res = wres_commit,
	};

	memset(wr, 0, sizeof(*wr));
	wr->wr_status = NFS3ERR_IO;
	rpc_nfs3_walk_reply(proc, res, len, &v, wr);
}

/* Someone else changed the file while our data waited?  Our own flushes
 * chain (pre-op ctime = the post-op ctime of our previous op). */
static void conflict_check(struct px_wb *w, struct wb_file *f,
			   const struct wres *wr, bool alone)
{
	if (alone && f->f_post_known && wr->wr_pre &&
	    memcmp(wr->wr_pre + 16, f->f_post_ctime, 8)) {
		w->w_conflicts++;
		px_warn("write-back conflict: file %016llx:%016llx changed "
			"upstream by another client while our writes waited; "
			"last writer wins (our data is written over it)",
			(unsigned long long)rpc_get64(f->f_id),
			(unsigned long long)rpc_get64(f->f_id + 8));
	}
	if (wr->wr_post) {
		file_learn(f, wr->wr_post, true);
		memcpy(f->f_post_ctime, wr->wr_post + NFS3_FATTR_CTIME, 8);
		f->f_post_known = true;
	}
}

static void fly_clear(struct wb_file *f, int slot)
{
	if (slot >= 0)
		f->f_fly[slot].off = f->f_fly[slot].end = 0;
}

static void io_end(struct wb_io *io)
{
	io->io_wb->w_inflight--;
	io->io_file->f_inflight--;
	fly_clear(io->io_file, io->io_slot);
}

static void flush_write_done(void *ctx, int err, uint8_t *res, size_t len)
{
	struct wb_io *io = ctx;
	struct px_wb *w = io->io_wb;
	struct wb_file *f = io->io_file;
	struct wres wr;

	io_end(io);
	if (!err && mono_us() - io->io_sent_us < FAST_RTT_US)
		w->w_fast_at = px_now_ms();
	if (io->io_sgen != f->f_sgen) { /* disowned by a requeue */
		free(io);
		return;
	}
	if (!err)
		wres_parse(NFS3_WRITE, res, len, &wr);
	if (err == -EPROTO || (!err && status_final(wr.wr_status))) {
		/* Final: retrying would fail the same way for ever. */
		w->w_flush_errors++;
		recs_refused(w, f, io->io_recs, io->io_nrecs,
			     err ? 0 : wr.wr_status, "a flush WRITE");
		free(io);
		flush_kick(w);
		return;
	}
	if (err || (wr.wr_status == NFS3_OK && (wr.wr_count < io->io_len ||
						 !wr.wr_verf)) ||
	    (wr.wr_status != NFS3_OK && wr.wr_status != NFS3ERR_STALE &&
	     wr.wr_status != NFS3ERR_BADHANDLE)) {
		w->w_flush_errors++;
		if (err)
			px_warn_rl("write-back: flush WRITE failed (%s): retrying",
				   strerror(-err));
		else
			px_warn_rl("write-back: upstream refused a flush WRITE "
				   "(NFS status %u%s): retrying", wr.wr_status,
				   wr.wr_status == NFS3_OK ? ", short" : "");
		file_requeue_all(f);
		file_backoff(f);
		free(io);
		return;
	}
	if (wr.wr_status != NFS3_OK) {
		/* The file is gone upstream: nothing to flush it into. */
		px_err("write-back: file %016llx:%016llx is gone upstream "
		       "(status %u): %u unflushed bytes dropped",
		       (unsigned long long)rpc_get64(f->f_id),
		       (unsigned long long)rpc_get64(f->f_id + 8), wr.wr_status,
		       io->io_len);
		f->f_err = wr.wr_status;
		for (unsigned i = 0; i < io->io_nrecs; i++)
			rec_retire(w, io->io_recs[i]);
		free(io);
		flush_kick(w);
		return;
	}
	conflict_check(w, f, &wr, io->io_alone);
	f->f_backoff = 0;
	/* Upstream took a write from this credential: its grant holds. */
	grant_set(w, f, cred_hash(&io->io_recs[0]->r_cred), true);
	for (unsigned i = 0; i < io->io_nrecs; i++) {
		struct wb_rec *r = io->io_recs[i];

		r->r_state = R_WRITTEN;
		memcpy(r->r_verf, wr.wr_verf, 8);
		f->f_written_bytes += r->r_len;
	}
	free(io);
	flush_kick(w);
}

static void flush_commit_done(void *ctx, int err, uint8_t *res, size_t len)
{
	struct wb_io *io = ctx;
	struct px_wb *w = io->io_wb;
	struct wb_file *f = io->io_file;
	struct wb_rec *r, *next;
	struct wres wr;
	bool resend = false;

	io_end(io);
	f->f_committing = false;
	if (!err)
		wres_parse(NFS3_COMMIT, res, len, &wr);
	if (err == -EPROTO || (!err && status_final(wr.wr_status))) {
		/* The COMMIT's credential (its first record's) may not
		 * commit: its records are refused; the others are committed
		 * by the next COMMIT, sent with another credential. */
		struct wb_rec *mine[64];
		unsigned n = 0;

		w->w_flush_errors++;
		for (r = f->f_head; r; r = r->r_next)
			if (r->r_state == R_COMMITTING && r->r_cgen == io->io_cgen)
				r->r_state = R_WRITTEN;
		for (r = f->f_head; r && n < 64; r = r->r_next)
			if (r->r_state == R_WRITTEN &&
			    cred_same(&r->r_cred, &io->io_cred)) {
				mine[n++] = r;
				f->f_written_bytes -= f->f_written_bytes < r->r_len
							      ? f->f_written_bytes
							      : r->r_len;
			}
		if (n)
			recs_refused(w, f, mine, n, err ? 0 : wr.wr_status,
				     "a COMMIT");
		free(io);
		flush_kick(w);
		return;
	}
	for (r = f->f_head; r; r = next) {
		next = r->r_next;
		if (r->r_state != R_COMMITTING || r->r_cgen != io->io_cgen)
			continue;
		if (err || (wr.wr_status != NFS3_OK &&
			    wr.wr_status != NFS3ERR_STALE)) {
			r->r_state = R_WRITTEN;
		} else if (wr.wr_status == NFS3_OK &&
			   memcmp(r->r_verf, wr.wr_verf, 8)) {
			/* Upstream restarted between WRITE and COMMIT. */
			resend = true;
		} else {
			f->f_written_bytes -= f->f_written_bytes < r->r_len
						      ? f->f_written_bytes : r->r_len;
			rec_retire(w, r);
		}
	}
	if (resend) {
		file_requeue_all(f);
		w->w_resends++;
		px_info("write-back: upstream write verifier changed: resending "
			"file %016llx:%016llx", (unsigned long long)rpc_get64(f->f_id),
			(unsigned long long)rpc_get64(f->f_id + 8));
	}
	if (err || (wr.wr_status != NFS3_OK && wr.wr_status != NFS3ERR_STALE)) {
		w->w_flush_errors++;
		if (err)
			px_warn_rl("write-back: flush COMMIT failed (%s): retrying",
				   strerror(-err));
		else
			px_warn_rl("write-back: upstream refused a flush COMMIT "
				   "(NFS status %u): retrying", wr.wr_status);
		file_backoff(f);
	} else
		conflict_check(w, f, &wr, false);
	free(io);
	if (!err)
		flush_kick(w);
}

static int flush_send_commit(struct px_wb *w, struct wb_file *f)
{
	uint8_t args[4 + NFS3_FHSIZE + 12];
	struct rpc_xdr x;
	struct wb_io *io;
	struct rpc_authsys cred;
	struct wb_rec *first = NULL;

	for (struct wb_rec *r = f->f_head; r; r = r->r_next)
		if (r->r_state == R_WRITTEN && !first)
			first = r;
	if (!first || !(io = calloc(1, sizeof(*io))))
		return -ENOMEM;
	io->io_wb = w;
	io->io_file = f;
	io->io_slot = -1;
	io->io_cgen = ++f->f_cgen;
	rpc_xdr_init(&x, args, sizeof(args));
	rpc_xdr_put_opaque(&x, f->f_fh, f->f_fhlen);
	rpc_xdr_put_u64(&x, 0);
	rpc_xdr_put_u32(&x, 0); /* the whole file */
	cred_of(first, &cred);
	io->io_cred = cred;
	if (px_icall(w->w_loop, RPC_PROG_NFS, NFS3_COMMIT, &cred, args, x.x_pos,
		     flush_commit_done, io) < 0) {
		free(io);
		return -ENOMEM;
	}
	for (struct wb_rec *r = f->f_head; r; r = r->r_next)
		if (r->r_state == R_WRITTEN) {
			r->r_state = R_COMMITTING;
			r->r_cgen = io->io_cgen;
		}
	f->f_committing = true;
	f->f_inflight++;
	w->w_inflight++;
	return 0;
}

static bool fly_overlaps(const struct wb_file *f, uint64_t off, uint64_t end)
{
	for (unsigned i = 0; i < FILE_INFLIGHT; i++)
		if (f->f_fly[i].end > f->f_fly[i].off && off < f->f_fly[i].end &&
		    f->f_fly[i].off < end)
			return true;
	return false;
}

/* Encode one flush WRITE of contiguous queued records from r on. */
static int flush_send_write(struct px_wb *w, struct wb_file *f,
			    struct wb_rec *r0)
{
	unsigned n = 0, max = FLUSH_MAX / 512 + 1;
	uint64_t end = r0->r_off;
	struct wb_rec *r;
	struct wb_io *io;
	uint8_t *args;
	struct rpc_xdr x;
	size_t cap;
	int slot = -1, rc = -ENOMEM;

	for (unsigned i = 0; i < FILE_INFLIGHT; i++)
		if (f->f_fly[i].end <= f->f_fly[i].off)
			slot = (int)i;
	if (slot < 0)
		return -EAGAIN;
	for (r = r0; r && n < max && r->r_state == R_QUEUED && r->r_durable &&
		     r->r_off == end &&
		     end - r0->r_off + r->r_len <= FLUSH_MAX &&
		     (!f->f_barrier_seq || r->r_seq < f->f_barrier_seq) &&
		     (r == r0 || !fly_overlaps(f, r->r_off, r->r_off + r->r_len)) &&
		     cred_same(&r->r_cred, &r0->r_cred);
	     r = r->r_next) {
		end += r->r_len;
		n++;
	}
	if (!n)
		n = 1, end = r0->r_off + r0->r_len;
	if (!(io = calloc(1, sizeof(*io) + n * sizeof(io->io_recs[0]))))
		return -ENOMEM;
	cap = 4 + NFS3_FHSIZE + 24 + (size_t)(end - r0->r_off) + 4;
	if (!(args = malloc(cap)))
		goto out;
	rpc_xdr_init(&x, args, cap);
	rpc_xdr_put_opaque(&x, f->f_fh, f->f_fhlen);
	rpc_xdr_put_u64(&x, r0->r_off);
	rpc_xdr_put_u32(&x, (uint32_t)(end - r0->r_off));
	rpc_xdr_put_u32(&x, UNSTABLE);
	rpc_xdr_put_u32(&x, (uint32_t)(end - r0->r_off));
	/* One opaque made of several records: their bytes back to back,
	 * then one padding for the whole (padding each record shifted the
	 * data and added bytes a strict server refuses as GARBAGE_ARGS). */
	r = r0;
	for (unsigned i = 0; i < n; i++, r = r->r_next) {
		rpc_xdr_put_bytes(&x, r->r_data, r->r_len);
		io->io_recs[i] = r;
	}
	rpc_xdr_put_bytes(&x, "\0\0\0", (4 - (end - r0->r_off) % 4) % 4);
	io->io_wb = w;
	io->io_file = f;
	io->io_nrecs = n;
	io->io_off = r0->r_off;
	io->io_len = (uint32_t)(end - r0->r_off);
	io->io_slot = slot;
	io->io_sgen = f->f_sgen;
	io->io_alone = f->f_inflight == 0;
	io->io_sent_us = mono_us();
	if (x.x_err || px_icall(w->w_loop, RPC_PROG_NFS, NFS3_WRITE, &r0->r_cred,
				args, x.x_pos, flush_write_done, io) < 0)
		goto out;
	free(args);
	for (unsigned i = 0; i < n; i++)
		io->io_recs[i]->r_state = R_SENDING;
	f->f_fly[slot].off = r0->r_off;
	f->f_fly[slot].end = end;
	f->f_inflight++;
	w->w_inflight++;
	return 0;
out:
	free(args);
	free(io);
	return rc;
}

static void flush_file(struct px_wb *w, struct wb_file *f, uint64_t now,
		       unsigned max)
{
	struct wb_rec *r;

	if (f->f_retry_at > now || f->f_barriers_out)
		return;
	while (f->f_cursor && f->f_cursor->r_state != R_QUEUED)
		f->f_cursor = f->f_cursor->r_next;
	for (r = f->f_cursor; r && w->w_inflight < max &&
			      f->f_inflight < FILE_INFLIGHT;) {
		if (r->r_state != R_QUEUED) {
			r = r->r_next;
			continue;
		}
		if (f->f_barrier_seq && r->r_seq > f->f_barrier_seq)
			break;
		/* Only what the log holds goes upstream: a WRITE refused
		 * for want of space must take no effect.  Puts complete in
		 * order, so this waits one group commit at most. */
		if (!r->r_durable)
			break;
		/* In order per file: never overtake an overlapping write. */
		if (fly_overlaps(f, r->r_off, r->r_off + r->r_len))
			break;
		if (flush_send_write(w, f, r) < 0)
			break;
		while (r && r->r_state != R_QUEUED)
			r = r->r_next;
	}
	if (!f->f_committing && w->w_inflight < max && f->f_written_bytes &&
	    ((f->f_inflight == 0 && max == MAX_INFLIGHT) ||
	     f->f_written_bytes >= COMMIT_EVERY))
		flush_send_commit(w, f);
}

/* A parked call that the flusher must serve (all but a write grant's
 * ACCESS, which upstream answers by itself). */
static bool park_waits_flush(const struct px_wb *w)
{
	for (const struct wb_park *p = w->w_park; p; p = p->p_next)
		if (p->p_kind != P_GRANT)
			return true;
	return false;
}

/*
 * Write-behind: while client WRITEs are being absorbed, a fast upstream's
 * flush is held to a trickle (HOLD_INFLIGHT calls, no COMMIT before
 * COMMIT_EVERY): held to nothing, the flush moved wholly after the burst
 * and a writer that COMMITs at the end waited longer than before.  On loopback or a LAN the flusher's WRITEs, their replies,
 * the COMMITs and the log's deletions cost as much CPU as absorbing the
 * WRITEs, on the same cores as upstream and the client, and a flush
 * delayed by a burst is quick once the burst pauses.  Over a slow link the
 * link is the bottleneck and flushing at once overlaps it, so nothing is
 * held.  Nor when the log's commits are slow (a busy disk): then the disk
 * bounds absorbing, the CPU a flush needs is idle, and flushing at once
 * only shortens the wait for the next COMMIT (HOLD_SLOW_LOG_US, judged
 * every tick).  The hold ends when no client WRITE is waiting for the log
 * and none came for HOLD_QUIET_MS (the writer paused: a group commit
 * answers all of a burst's WRITEs at once, so "none waiting" alone comes
 * between two groups), when a call waits for the flusher (COMMIT, SETATTR,
 * REMOVE, a WRITE waiting for --dirty-max room), at half of --dirty-max,
 * and after HOLD_MAX_MS in any case (a steady stream then flushes as
 * before).  Durability is not touched: what is held is in the log.
 */
static bool flush_held(struct px_wb *w, uint64_t now)
{
	bool streaming = w->w_puts || now - w->w_put_at < HOLD_QUIET_MS;

	if (!streaming || w->w_log_slow || !w->w_fast_at ||
	    now - w->w_fast_at > FAST_KEEP_MS ||
	    cache_dirty_bytes(w->w_dirty) >= w->w_max / 2 ||
	    park_waits_flush(w)) {
		if (!streaming)
			w->w_hold_from = 0;
		return false;
	}
	if (!w->w_hold_from) {
		w->w_hold_from = now;
		w->w_holds++;
	}
	return now - w->w_hold_from < HOLD_MAX_MS;
}

static void flush_kick(struct px_wb *w)
{
	uint64_t now = px_now_ms();
	/* Held: a trickle, which uses the CPU left idle while the log
	 * commits, and no COMMIT before COMMIT_EVERY. */
	unsigned max = flush_held(w, now) ? HOLD_INFLIGHT : MAX_INFLIGHT;

	if (w->w_loop->lp_draining)
		return;
	for (struct wb_file *f = w->w_files; f && w->w_inflight < max;
	     f = f->f_next)
		if (file_oldest(f))
			flush_file(w, f, now, max);
}

/* ---------------------------------------------------------------------- */
/* Client WRITE and COMMIT                                                 */

/* Queue r at the end of its file's records (the flush order) and let
 * the node's view of the size cover it. */
static void file_append(struct wb_file *f, struct wb_rec *r)
{
	r->r_prev = f->f_tail;
	if (f->f_tail)
		f->f_tail->r_next = r;
	else
		f->f_head = r;
	f->f_tail = r;
	if (!f->f_cursor)
		f->f_cursor = r;
	if (r->r_off + r->r_len > f->f_lsize)
		f->f_lsize = r->r_off + r->r_len;
}

struct wargs {
	const uint8_t *wa_fh;
	uint32_t wa_fhlen, wa_count, wa_stable, wa_len;
	uint64_t wa_off;
	const uint8_t *wa_data;
};

/* The write-back's view of a call's arguments, from its request record:
 * nothing is parsed again here. */
static bool args_parse(uint32_t proc, const uint8_t *msg, size_t len,
		       const struct rpc_call *h, struct wargs *wa)
{
	const struct px_req *rq = req_of(h);

	(void)len;
	memset(wa, 0, sizeof(*wa));
	if (h->c_proc != proc || rq->rq_args ||
	    !px_req_fh(rq, msg, &wa->wa_fh, &wa->wa_fhlen))
		return false;
	wa->wa_off = rq->rq_off;
	wa->wa_count = rq->rq_count;
	wa->wa_stable = rq->rq_stable;
	if (proc == NFS3_WRITE) {
		wa->wa_data = (uint8_t *)msg + rq->rq_data_off;
		wa->wa_len = rq->rq_data_len;
	}
	return true;
}

static void cred_parse(const uint8_t *msg, const struct rpc_call *h,
		       struct rpc_authsys *a)
{
	const struct px_req *rq = req_of(h);

	(void)msg;
	if (h->c_cred_flavor == RPC_AUTH_SYS && rq->rq_sys) {
		*a = rq->rq_cred;
		return;
	}
	memset(a, 0, sizeof(*a));
	a->as_uid = a->as_gid = 65534; /* AUTH_NONE: nobody */
}

static void wall_now(uint32_t t[2], uint64_t *ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	t[0] = (uint32_t)ts.tv_sec;
	t[1] = (uint32_t)ts.tv_nsec;
	if (ms)
		*ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void write_admit(struct px_wb *w, struct px_client *c,
			const uint8_t *msg, size_t len,
			const struct rpc_call *h)
{
	struct cache_dirty_rec dr;
	struct wargs wa;
	struct wb_file *f;
	struct wb_rec *r;

	if (!args_parse(NFS3_WRITE, msg, len, h, &wa) ||
	    !(f = file_get(w, wa.wa_fh, wa.wa_fhlen)) ||
	    !(r = calloc(1, sizeof(*r)))) {
		px_client_rpc_error(c, h->c_xid, RPC_ACC_SYSTEM_ERR);
		return;
	}
	if (!(r->r_data = malloc(wa.wa_len ? wa.wa_len : 1))) {
		free(r);
		px_client_rpc_error(c, h->c_xid, RPC_ACC_SYSTEM_ERR);
		return;
	}
	memcpy(r->r_data, wa.wa_data, wa.wa_len);
	r->r_file = f;
	r->r_seq = ++w->w_seq;
	r->r_off = wa.wa_off;
	r->r_len = wa.wa_len;
	cred_parse(msg, h, &r->r_cred);
	wall_now(f->f_lmtime, &r->r_time_ms);
	if (!f->f_local || !file_oldest(f)) {
		/* Newly dirty: start the local view from upstream's size. */
		f->f_lsize = f->f_have_attr
				     ? rpc_get64(f->f_attr + NFS3_FATTR_SIZE_OFF)
				     : 0;
		f->f_local = true;
	}
	file_append(f, r);
	client_hold(c);
	r->r_client = c;
	w->w_puts++;
	w->w_put_at = px_now_ms();
	r->r_xid = h->c_xid;
	r->r_count = wa.wa_len;
	r->r_stable = wa.wa_stable;
	memset(&dr, 0, sizeof(dr));
	dr.dr_seq = r->r_seq;
	dr.dr_off = r->r_off;
	dr.dr_len = r->r_len;
	dr.dr_data = r->r_data;
	dr.dr_sync = wa.wa_stable != UNSTABLE; /* FILE_SYNC: ours, now */
	dr.dr_time_ms = r->r_time_ms;
	dr.dr_uid = r->r_cred.as_uid;
	dr.dr_gid = r->r_cred.as_gid;
	dr.dr_ngids = r->r_cred.as_ngids;
	memcpy(dr.dr_gids, r->r_cred.as_gids, sizeof(dr.dr_gids));
	dr.dr_fhlen = f->f_fhlen;
	memcpy(dr.dr_fh, f->f_fh, f->f_fhlen);
	/* r_data lives until the record is deleted, after this put. */
	if (cache_dirty_put_ref(w->w_dirty, &dr, r) < 0) {
		struct cache_dirty_done dd = {.dd_token = r, .dd_err = -ENOMEM,
					      .dd_put = true};

		dirty_done(w, &dd);
	}
	if (cache_dirty_bytes(w->w_dirty) > w->w_hwm)
		w->w_hwm = cache_dirty_bytes(w->w_dirty);
	/* The read cache must not serve what this overwrites, nor keep a
	 * fill from a READ sent before it. */
	px_rcache_modified(w->w_loop, f->f_fh, f->f_fhlen);
	flush_kick(w);
}

static void commit_reply(struct px_wb *w, struct px_client *c,
			 const uint8_t *msg, const struct rpc_call *h,
			 const uint8_t *fh, uint32_t fhlen)
{
	struct wb_file *f = file_find(w, fh, fhlen);
	struct rpc_authsys cred;
	struct rpc_xdr x;
	struct px_msg *m;
	uint32_t cst = 0;
	size_t res;

	if (c->cl_closed || !(m = reply_new(h->c_xid, 128 + NFS3_FATTR_SIZE, &x)))
		return;
	res = x.x_pos;
	if (f) {
		cred_parse(msg, h, &cred);
		cst = cerr_take(f, cred_hash(&cred));
	}
	if (f && (f->f_err || cst)) {
		/* Data of this file had to be dropped: say so once. */
		rpc_xdr_put_u32(&x, cst ? cst : f->f_err);
		if (!cst)
			f->f_err = 0;
		put_wcc(&x, f);
	} else {
		rpc_xdr_put_u32(&x, NFS3_OK);
		put_wcc(&x, f);
		rpc_xdr_put_fixed(&x, w->w_verf, 8);
	}
	reply_map_ids(w->w_loop, NFS3_COMMIT, px_msg_data(m) + res, x.x_pos - res);
	reply_send(c, m, &x);
}

/* ---------------------------------------------------------------------- */
/* Calls forwarded on the client's behalf                                  */

struct rres {
	uint32_t rr_status, rr_count;
	bool rr_eof;
	uint8_t *rr_attr, *rr_data;
};

static void rr_status(void *ctx, uint32_t st)
{
	((struct rres *)ctx)->rr_status = st;
}

static void rr_fattr(void *ctx, uint8_t *a)
{
	((struct rres *)ctx)->rr_attr = a;
}

static void rr_read(void *ctx, uint32_t count, bool eof, uint8_t *data,
		    uint32_t len)
{
	struct rres *rr = ctx;

	(void)count;
	rr->rr_count = len;
	rr->rr_eof = eof;
	rr->rr_data = data;
}

/* Upstream's bytes with every dirty record of the file laid over them
 * (in write order), clipped at the node's view of the size. */
static void read_overlay_reply(struct px_wb *w, struct wb_io *io,
			       uint8_t *res, size_t len)
{
	struct rpc_nfs3_visit v = {.v_status = rr_status, .v_fattr = rr_fattr,
				   .v_read_res = rr_read};
	struct wb_file *f = io->io_file;
	struct rres rr = {0};
	uint64_t size, end, off = io->io_off;
	uint8_t *buf;
	struct rpc_xdr x;
	struct px_msg *m;
	size_t rs;

	rpc_nfs3_walk_reply(NFS3_READ, res, len, &v, &rr);
	if (rr.rr_status != NFS3_OK) {
		/* An error: relayed as upstream gave it. */
		if (!(m = reply_new(io->io_xid, len, &x)))
			return;
		rs = x.x_pos;
		rpc_xdr_put_fixed(&x, res, len);
		reply_map_ids(w->w_loop, NFS3_READ, px_msg_data(m) + rs, len);
		reply_send(io->io_client, m, &x);
		return;
	}
	size = rr.rr_attr ? rpc_get64(rr.rr_attr + NFS3_FATTR_SIZE_OFF)
			  : rr.rr_eof ? off + rr.rr_count : off + rr.rr_count;
	if (f->f_local && f->f_lsize > size)
		size = f->f_lsize;
	end = off + io->io_count;
	if (end > size)
		end = size > off ? size : off;
	if (!(buf = calloc(1, end - off + 1)))
		return;
	memcpy(buf, rr.rr_data, rr.rr_count < end - off ? rr.rr_count : end - off);
	for (struct wb_rec *r = f->f_head; r; r = r->r_next) {
		uint64_t s = r->r_off > off ? r->r_off : off;
		uint64_t e = r->r_off + r->r_len < end ? r->r_off + r->r_len : end;

		if (s < e && !r->r_dropped)
			memcpy(buf + (s - off), r->r_data + (s - r->r_off), e - s);
	}
	if ((m = reply_new(io->io_xid, 32 + NFS3_FATTR_SIZE + (end - off), &x))) {
		rs = x.x_pos;
		rpc_xdr_put_u32(&x, NFS3_OK);
		rpc_xdr_put_u32(&x, rr.rr_attr != NULL);
		if (rr.rr_attr)
			rpc_xdr_put_fixed(&x, rr.rr_attr, NFS3_FATTR_SIZE);
		rpc_xdr_put_u32(&x, (uint32_t)(end - off));
		rpc_xdr_put_u32(&x, end >= size);
		rpc_xdr_put_opaque(&x, buf, (uint32_t)(end - off));
		reply_map_ids(w->w_loop, NFS3_READ, px_msg_data(m) + rs,
			      x.x_pos - rs);
		reply_send(io->io_client, m, &x);
	}
	free(buf);
}

/*
 * A SETATTR or WRITE forwarded on the client's behalf (upstream's raw
 * reply, before any patching).  Every older record was committed before
 * it went (its barrier), so the node's size is upstream's post-op size
 * plus what was written after the call arrived (records newer than it).
 */
static void fwd_applied(struct wb_io *io, uint8_t *res, size_t len)
{
	struct wb_file *f = io->io_file;
	struct wres wr;

	wres_parse(io->io_proc, res, len, &wr);
	if (wr.wr_status != NFS3_OK || !wr.wr_post)
		return;
	file_learn(f, wr.wr_post, true);
	memcpy(f->f_post_ctime, wr.wr_post + NFS3_FATTR_CTIME, 8);
	f->f_post_known = true;
	lsize_from(f, rpc_get64(wr.wr_post + NFS3_FATTR_SIZE_OFF), io->io_seq);
}

/* Forwarded calls in flight: a client's retransmission of one is not
 * sent again (a replayed truncate or write could undo newer ones). */
static void fwd_link(struct px_wb *w, struct wb_io *io)
{
	io->io_fnext = w->w_fwd;
	w->w_fwd = io;
}

static void fwd_unlink(struct px_wb *w, struct wb_io *io)
{
	for (struct wb_io **pp = &w->w_fwd; *pp; pp = &(*pp)->io_fnext)
		if (*pp == io) {
			*pp = io->io_fnext;
			return;
		}
}

static bool fwd_inflight(const struct px_wb *w, const struct px_client *c,
			 uint32_t xid)
{
	for (const struct wb_io *io = w->w_fwd; io; io = io->io_fnext)
		if (io->io_client == c && io->io_xid == xid)
			return true;
	return false;
}

static bool fwd_is_barrier(uint32_t proc)
{
	return proc == NFS3_SETATTR || proc == NFS3_WRITE;
}

static void fwd_done(void *ctx, int err, uint8_t *res, size_t len)
{
	struct wb_io *io = ctx;
	struct px_wb *w = io->io_wb;
	struct wb_file *f = io->io_file;
	struct px_client *c = io->io_client;

	fwd_unlink(w, io);
	if (f && io->io_proc == NFS3_READ)
		f->f_reads--;
	if (f && fwd_is_barrier(io->io_proc))
		f->f_barriers_out--;
	if (f && io->io_proc == NFS3_WRITE && !err && len >= 4 &&
	    rpc_get32(res) == NFS3_OK) {
		/* Upstream took this credential's write: later ones may be
		 * absorbed. */
		struct rpc_authsys cred = io->io_cred;

		grant_set(w, f, cred_hash(&cred), true);
	}
	if (err) {
		if (!c->cl_closed)
			px_client_rpc_error(c, io->io_xid, RPC_ACC_SYSTEM_ERR);
	} else if (io->io_proc == NFS3_READ && f && !c->cl_closed) {
		read_overlay_reply(w, io, res, len);
	} else if (!c->cl_closed) {
		struct rpc_xdr x;
		struct px_msg *m = reply_new(io->io_xid, len, &x);

		if (m) {
			size_t rs = x.x_pos;

			rpc_xdr_put_fixed(&x, res, len);
			reply_map_ids(w->w_loop, io->io_proc,
				      px_msg_data(m) + rs, len);
			if (w->w_loop->lp_wrap && !x.x_err) {
				/* Several exports: a CREATE's new handle
				 * carries the export's tag like any other. */
				struct px_msg *t;

				m->m_len = x.x_pos;
				t = px_export_wrap_reply(w->w_loop, RPC_PROG_NFS,
							 io->io_proc, m, rs);
				px_msg_unref(m);
				if (t) {
					px_client_send(c, t);
					px_msg_unref(t);
				} else {
					px_client_rpc_error(c, io->io_xid,
							RPC_ACC_SYSTEM_ERR);
				}
			} else {
				reply_send(c, m, &x);
			}
		}
	}
	if (f && fwd_is_barrier(io->io_proc) && !err)
		file_purge_gone(f, UINT64_MAX);
	if (f)
		file_purge_gone(f, 0);
	client_done(c);
	free(io);
	if (!err) {
		w->w_progress = true;
		park_progress(w);
		flush_kick(w);
	}
}

/* Send the client's call upstream as a call of ours (its identity mapping
 * is already done; the reply is mapped back here). */
static void fwd_send(struct px_wb *w, struct px_client *c, const uint8_t *msg,
		     size_t len, const struct rpc_call *h, struct wb_file *f,
		     uint64_t seq)
{
	struct rpc_authsys cred;
	struct wb_io *io = calloc(1, sizeof(*io));
	struct wargs wa;

	if (!io) {
		px_client_rpc_error(c, h->c_xid, RPC_ACC_SYSTEM_ERR);
		return;
	}
	io->io_wb = w;
	io->io_file = f;
	io->io_client = c;
	io->io_xid = h->c_xid;
	io->io_proc = h->c_proc;
	io->io_seq = seq;
	if (h->c_proc == NFS3_READ && args_parse(NFS3_READ, msg, len, h, &wa)) {
		io->io_off = wa.wa_off;
		io->io_count = wa.wa_count;
	}
	cred_parse(msg, h, &cred);
	io->io_cred = cred;
	if (px_icall(w->w_loop, RPC_PROG_NFS, h->c_proc, &cred,
		     msg + h->c_args_off, len - h->c_args_off, fwd_done, io) < 0) {
		free(io);
		px_client_rpc_error(c, h->c_xid, RPC_ACC_SYSTEM_ERR);
		return;
	}
	client_hold(c);
	fwd_link(w, io);
	if (f && h->c_proc == NFS3_READ)
		f->f_reads++;
	if (f && fwd_is_barrier(h->c_proc))
		f->f_barriers_out++;
}

/* ---------------------------------------------------------------------- */
/* Parked calls                                                            */

static int park(struct px_wb *w, struct px_client *c, const uint8_t *msg,
		size_t len, const struct rpc_call *h, enum park_kind k,
		const uint8_t *fh, uint32_t fhlen)
{
	struct wb_park *p = calloc(1, sizeof(*p));

	/* A retransmission of a call parked already: its answer will come. */
	for (struct wb_park *q = w->w_park; q; q = q->p_next)
		if (q->p_client == c && q->p_rq.rq_h.c_xid == h->c_xid &&
		    q->p_len == len && !memcmp(q->p_msg, msg, len)) {
			free(p);
			return 1;
		}
	if (!p || !(p->p_msg = malloc(len))) {
		free(p);
		px_client_rpc_error(c, h->c_xid, RPC_ACC_SYSTEM_ERR);
		return 1;
	}
	memcpy(p->p_msg, msg, len);
	p->p_len = len;
	p->p_rq = *req_of(h);
	p->p_kind = k;
	p->p_client = c;
	p->p_seq = ++w->w_seq;
	if (fh) {
		memcpy(p->p_fh, fh, fhlen);
		p->p_fhlen = fhlen;
	}
	client_hold(c);
	if (w->w_park_tail)
		w->w_park_tail->p_next = p;
	else
		w->w_park = p;
	w->w_park_tail = p;
	if (k == P_FWD_FILE) {
		struct wb_file *f = file_find(w, fh, fhlen);

		if (f && (!f->f_barrier_seq || f->f_barrier_seq > p->p_seq))
			f->f_barrier_seq = p->p_seq;
	}
	if (k == P_WRITE)
		w->w_parked_writes++;
	if (k == P_WRITE && w->w_waited++ == 0)
		px_info("write-back: --dirty-max %llu reached: writes wait for "
			"the flusher", (unsigned long long)w->w_max);
	/* It may wait for a held flusher (flush_held). */
	if (k != P_GRANT)
		flush_kick(w);
	return 1;
}

static bool older_than(const struct wb_file *f, uint64_t seq)
{
	const struct wb_rec *r = file_oldest(f);

	return r && r->r_seq < seq;
}

static bool park_ready(struct px_wb *w, const struct wb_park *p,
		       bool *write_blocked)
{
	struct wb_file *f = p->p_fhlen ? file_find(w, p->p_fh, p->p_fhlen) : NULL;
	uint64_t bytes;

	switch (p->p_kind) {
	case P_WRITE:
		if (*write_blocked)
			return false;
		bytes = cache_dirty_bytes(w->w_dirty);
		if (bytes && bytes + (p->p_len - p->p_rq.rq_h.c_args_off) > w->w_max) {
			*write_blocked = true; /* first in, first out */
			return false;
		}
		return true;
	case P_COMMIT:
	case P_FWD_FILE:
		return !f || !older_than(f, p->p_seq);
	case P_READ:
		return !f || (!f->f_barrier_seq && !f->f_barriers_out);
	case P_GRANT: {
		struct rpc_authsys cred;
		struct wb_grant *g;

		if (!f)
			return true;
		cred_parse(p->p_msg, &p->p_rq.rq_h, &cred);
		g = grant_find(f, cred_hash(&cred));
		return !g || !g->g_asking;
	}
	case P_FWD_ALL:
		for (struct wb_file *g = w->w_files; g; g = g->f_next)
			if (older_than(g, p->p_seq))
				return false;
		return true;
	}
	return false;
}

static void barrier_recompute(struct px_wb *w, struct wb_file *f)
{
	f->f_barrier_seq = 0;
	for (struct wb_park *p = w->w_park; p; p = p->p_next)
		if (p->p_kind == P_FWD_FILE && p->p_fhlen == f->f_fhlen &&
		    !memcmp(p->p_fh, f->f_fh, f->f_fhlen) &&
		    (!f->f_barrier_seq || p->p_seq < f->f_barrier_seq))
			f->f_barrier_seq = p->p_seq;
}

static void park_run(struct px_wb *w, struct wb_park *p)
{
	struct px_client *c = p->p_client;
	struct wb_file *f = p->p_fhlen ? file_find(w, p->p_fh, p->p_fhlen) : NULL;

	if (c->cl_closed)
		return;
	switch (p->p_kind) {
	case P_WRITE:
		write_admit(w, c, p->p_msg, p->p_len, &p->p_rq.rq_h);
		break;
	case P_COMMIT:
		commit_reply(w, c, p->p_msg, &p->p_rq.rq_h, p->p_fh, p->p_fhlen);
		break;
	case P_FWD_FILE:
		if (f)
			barrier_recompute(w, f);
		/* fall through */
	case P_FWD_ALL:
	case P_READ:
		fwd_send(w, c, p->p_msg, p->p_len, &p->p_rq.rq_h,
			 p->p_kind == P_FWD_ALL ? NULL : f, p->p_seq);
		break;
	case P_GRANT:
		write_route(w, c, p->p_msg, p->p_len, &p->p_rq.rq_h, p->p_seq);
		break;
	}
}

static void park_progress(struct px_wb *w)
{
	struct wb_park **pp = &w->w_park, *p, *last = NULL;
	bool write_blocked = false;

	w->w_progress = false;
	while ((p = *pp)) {
		if (!park_ready(w, p, &write_blocked)) {
			last = p;
			pp = &p->p_next;
			continue;
		}
		*pp = p->p_next;
		if (w->w_park_tail == p)
			w->w_park_tail = last;
		if (p->p_kind == P_WRITE)
			w->w_parked_writes--;
		park_run(w, p);
		client_done(p->p_client);
		free(p->p_msg);
		free(p);
	}
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                   */

static bool any_dirty(const struct px_wb *w)
{
	for (const struct wb_file *f = w->w_files; f; f = f->f_next)
		if (file_oldest(f))
			return true;
	return false;
}


/* CREATE UNCHECKED with a size truncates an existing file. */
static bool create_truncates(const uint8_t *msg, size_t len,
			     const struct rpc_call *h)
{
	const uint8_t *a = msg + h->c_args_off, *e = msg + len;
	uint32_t n;

	if (a + 4 > e || (a += 4 + ((rpc_get32(a) + 3u) & ~3u)) + 4 > e ||
	    (a += 4 + ((rpc_get32(a) + 3u) & ~3u)) + 4 > e)
		return true;
	if (rpc_get32(a) != 0) /* GUARDED or EXCLUSIVE: never an old file */
		return false;
	a += 4;
	for (n = 0; n < 3; n++) { /* mode, uid, gid */
		if (a + 4 > e)
			return true;
		a += rpc_get32(a) ? 8 : 4;
	}
	return a + 4 > e || rpc_get32(a) != 0;
}

/*
 * A client WRITE: absorbed when this credential holds a write grant for
 * the file (asked of upstream on a miss; the call waits for the answer),
 * otherwise sent upstream as write-through once the file's older records
 * are committed, so that upstream decides and nothing foreign is ever
 * acknowledged.  since: the w_seq of a call that waited for a grant.
 */
static int write_route(struct px_wb *w, struct px_client *c,
		       const uint8_t *msg, size_t len, const struct rpc_call *h,
		       uint64_t since)
{
	struct rpc_authsys cred;
	struct wb_file *f;
	struct wargs wa;
	uint64_t key;

	if (!args_parse(NFS3_WRITE, msg, len, h, &wa) ||
	    !(f = file_get(w, wa.wa_fh, wa.wa_fhlen))) {
		px_client_rpc_error(c, h->c_xid, RPC_ACC_SYSTEM_ERR);
		return 1;
	}
	cred_parse(msg, h, &cred);
	key = cred_hash(&cred);
	switch (grant_check(w, f, key, since)) {
	case G_ASK:
		if (grant_ask(w, f, &cred, key) < 0)
			break; /* cannot ask: upstream decides */
		/* fall through */
	case G_WAIT:
		return park(w, c, msg, len, h, P_GRANT, wa.wa_fh, wa.wa_fhlen);
	case G_YES:
		if (w->w_parked_writes ||
		    (cache_dirty_bytes(w->w_dirty) &&
		     cache_dirty_bytes(w->w_dirty) + wa.wa_len > w->w_max))
			return park(w, c, msg, len, h, P_WRITE, NULL, 0);
		write_admit(w, c, msg, len, h);
		return 1;
	case G_NO:
		break;
	}
	w->w_passed_through++;
	if (file_oldest(f) || f->f_barrier_seq)
		return park(w, c, msg, len, h, P_FWD_FILE, wa.wa_fh, wa.wa_fhlen);
	fwd_send(w, c, msg, len, h, f, ++w->w_seq);
	return 1;
}

int px_wb_call(struct px_loop *l, struct px_client *c, uint8_t *msg,
	       size_t len, const struct px_req *rq)
{
	const struct rpc_call *h = &rq->rq_h;
	struct px_wb *w = l->lp_wb;
	struct wb_file *f;
	struct wargs wa;

	/* A retransmission of a call forwarded already: its answer comes. */
	if (w->w_fwd && fwd_inflight(w, c, h->c_xid))
		return 1;
	switch (h->c_proc) {
	case NFS3_WRITE:
		if (!args_parse(NFS3_WRITE, msg, len, h, &wa))
			return 0;
		l->lp_stats.s_calls[0][NFS3_WRITE]++;
		return write_route(w, c, msg, len, h, 0);
	case NFS3_COMMIT:
		if (!args_parse(NFS3_COMMIT, msg, len, h, &wa))
			return 0;
		l->lp_stats.s_calls[0][NFS3_COMMIT]++;
		f = file_find(w, wa.wa_fh, wa.wa_fhlen);
		if (f && file_oldest(f))
			return park(w, c, msg, len, h, P_COMMIT, wa.wa_fh,
				    wa.wa_fhlen);
		commit_reply(w, c, msg, h, wa.wa_fh, wa.wa_fhlen);
		return 1;
	case NFS3_READ:
		if (!args_parse(NFS3_READ, msg, len, h, &wa) ||
		    !(f = file_find(w, wa.wa_fh, wa.wa_fhlen)) ||
		    (!file_oldest(f) && !f->f_inflight && !f->f_barriers_out &&
		     !f->f_barrier_seq))
			return 0;
		l->lp_stats.s_calls[0][NFS3_READ]++;
		if (f->f_barrier_seq || f->f_barriers_out)
			return park(w, c, msg, len, h, P_READ, wa.wa_fh,
				    wa.wa_fhlen);
		fwd_send(w, c, msg, len, h, f, ++w->w_seq);
		return 1;
	case NFS3_SETATTR:
		/* Every SETATTR is ours to send: the node's view of the size
		 * must follow upstream's answer (a truncate of a clean file
		 * included), and no flush may overtake it. */
		if (!args_parse(NFS3_SETATTR, msg, len, h, &wa) ||
		    !(f = file_get(w, wa.wa_fh, wa.wa_fhlen)))
			return 0;
		l->lp_stats.s_calls[0][NFS3_SETATTR]++;
		if (file_oldest(f) || f->f_barrier_seq)
			return park(w, c, msg, len, h, P_FWD_FILE, wa.wa_fh,
				    wa.wa_fhlen);
		fwd_send(w, c, msg, len, h, f, ++w->w_seq);
		return 1;
	case NFS3_CREATE:
		if (!create_truncates(msg, len, h))
			return 0;
		/* fall through */
	case NFS3_REMOVE:
	case NFS3_RENAME:
		if (!any_dirty(w))
			return 0;
		l->lp_stats.s_calls[0][h->c_proc]++;
		return park(w, c, msg, len, h, P_FWD_ALL, NULL, 0);
	default:
		return 0;
	}
}

void px_wb_reply(struct px_loop *l, struct px_call *pc, struct px_msg *m,
		 size_t res_off)
{
	struct px_wb *w = l->lp_wb;
	uint8_t *res = px_msg_data(m) + res_off;
	size_t rlen = m->m_len - res_off;

	/* The flusher reads upstream's own attributes. */
	if (pc->pc_icb == flush_write_done || pc->pc_icb == flush_commit_done)
		return;
	if (pc->pc_icb == fwd_done) {
		struct wb_io *io = pc->pc_ictx;

		if (io->io_file && fwd_is_barrier(io->io_proc))
			fwd_applied(io, res, rlen);
	}
	if (pc->pc_proc == NFS3_ACCESS && !pc->pc_icb)
		grant_learn(w, px_msg_data(pc->pc_req), pc->pc_req->m_len,
			    &pc->pc_rq, res, rlen);
	reply_patch(w, pc->pc_proc, px_msg_data(pc->pc_req), &pc->pc_rq,
		    pc->pc_seq, res, rlen);
}

/* ---------------------------------------------------------------------- */
/* Start, tick, stop                                                       */

static int replay_rec(void *ctx, const struct cache_dirty_rec *dr)
{
	struct px_wb *w = ctx;
	struct wb_file *f = file_get(w, dr->dr_fh, dr->dr_fhlen);
	struct wb_rec *r = calloc(1, sizeof(*r));

	if (!f || !r || !(r->r_data = malloc(dr->dr_len ? dr->dr_len : 1))) {
		free(r);
		return -ENOMEM;
	}
	memcpy(r->r_data, dr->dr_data, dr->dr_len);
	r->r_file = f;
	r->r_seq = dr->dr_seq;
	r->r_off = dr->dr_off;
	r->r_len = dr->dr_len;
	r->r_time_ms = dr->dr_time_ms;
	r->r_durable = true;
	r->r_cred.as_uid = dr->dr_uid;
	r->r_cred.as_gid = dr->dr_gid;
	r->r_cred.as_ngids = dr->dr_ngids;
	memcpy(r->r_cred.as_gids, dr->dr_gids, sizeof(r->r_cred.as_gids));
	memcpy(r->r_cred.as_machine, "gridvfs", 8);
	r->r_cred.as_machine_len = 7;
	/* Until upstream's size is known, the node sees at least this. */
	f->f_local = true;
	file_append(f, r);
	f->f_lmtime[0] = (uint32_t)(dr->dr_time_ms / 1000u);
	f->f_lmtime[1] = (uint32_t)(dr->dr_time_ms % 1000u) * 1000000u;
	if (dr->dr_seq > w->w_seq)
		w->w_seq = dr->dr_seq;
	return 0;
}

static void dirty_log(int prio, const char *msg)
{
	px_logf(prio, "dirty", "%s", msg);
}

int px_wb_open(struct px_loop *l)
{
	const struct px_opts *o = l->lp_opts;
	struct cache_dirty_opts dopts = {.do_log = dirty_log};
	char dir[4096];
	struct px_wb *w;
	int rc;

	if (o->o_write_policy != PX_WRITE_BACK)
		return 0;
	if (!o->o_cache_dir || !(w = calloc(1, sizeof(*w))))
		return -EINVAL;
	snprintf(dir, sizeof(dir), "%s/dirty", o->o_cache_dir);
	dopts.do_dir = dir;
	/* Room for dirty-max of small records (a 4 KiB write takes two
	 * pages) plus free-list churn. */
	dopts.do_map_bytes = 4 * o->o_dirty_max + (256ull << 20);
	w->w_loop = l;
	w->w_max = o->o_dirty_max;
	if ((rc = cache_dirty_open(&dopts, &w->w_dirty)) < 0) {
		px_err("dirty log %s: cannot open: %s", dir, strerror(-rc));
		free(w);
		return rc;
	}
	cache_dirty_verifier(w->w_dirty, w->w_verf);
	w->w_seq = cache_dirty_last_seq(w->w_dirty);
	if ((rc = cache_dirty_replay(w->w_dirty, replay_rec, w)) < 0) {
		px_err("dirty log %s: cannot replay: %s", dir, strerror(-rc));
		goto fail;
	}
	w->w_ev.ev_fd = cache_dirty_event_fd(w->w_dirty);
	w->w_ev.ev_fn = dirty_event;
	if ((rc = px_ev_add(l, &w->w_ev, EPOLLIN)) < 0)
		goto fail;
	w->w_hwm = cache_dirty_bytes(w->w_dirty);
	l->lp_wb = w;
	px_info("write-back: dirty log %s, verifier %016llx (%s), %llu bytes "
		"to flush, --dirty-max %llu", dir,
		(unsigned long long)rpc_get64(w->w_verf),
		cache_dirty_fresh(w->w_dirty) ? "new"
		: cache_dirty_rebooted(w->w_dirty)
			? "new: the log was not closed cleanly before the "
			  "machine restarted"
			: "kept",
		(unsigned long long)cache_dirty_bytes(w->w_dirty),
		(unsigned long long)w->w_max);
	return 0;
fail:
	for (struct wb_file *f; (f = w->w_files);)
		file_free(w, f);
	cache_dirty_close(w->w_dirty);
	free(w);
	return rc;
}

/* Figures in the log: dirty bytes, flush lag (age of the oldest
 * unflushed write), high-water mark, waits, conflicts. */
static void wb_report(struct px_wb *w, bool force)
{
	uint64_t now = px_now_ms(), oldest = 0, bytes, nowwall;
	unsigned files = 0;
	uint32_t t[2];

	if (!force && now - w->w_logged_at < 5000)
		return;
	w->w_logged_at = now;
	for (struct wb_file *f = w->w_files; f; f = f->f_next) {
		struct wb_rec *r = file_oldest(f);

		if (r) {
			files++;
			if (!oldest || r->r_time_ms < oldest)
				oldest = r->r_time_ms;
		}
	}
	bytes = cache_dirty_bytes(w->w_dirty);
	/* Quiet while idle: log when something is dirty or has changed. */
	if (!force && !bytes && w->w_flushed_bytes == w->w_logged_flushed)
		return;
	w->w_logged_flushed = w->w_flushed_bytes;
	wall_now(t, &nowwall);
	px_info("write-back: dirty %llu bytes in %u files, flush lag %llu ms, "
		"high-water %llu (max %llu), writes waited %llu, flushed %llu, "
		"conflicts %llu, resends %llu, flush errors %llu, refused %llu",
		(unsigned long long)bytes, files,
		(unsigned long long)(oldest && nowwall > oldest ? nowwall - oldest : 0),
		(unsigned long long)w->w_hwm, (unsigned long long)w->w_max,
		(unsigned long long)w->w_waited,
		(unsigned long long)w->w_flushed_bytes,
		(unsigned long long)w->w_conflicts,
		(unsigned long long)w->w_resends,
		(unsigned long long)w->w_flush_errors,
		(unsigned long long)w->w_refused);
}

/* Was the log slow to commit since the last tick?  (flush_held) */
static void log_speed(struct px_wb *w)
{
	struct cache_dirty_counts dc;

	cache_dirty_counts(w->w_dirty, &dc);
	if (dc.dc_groups > w->w_tick_groups)
		w->w_log_slow = (dc.dc_commit_us - w->w_tick_commit_us) /
					(dc.dc_groups - w->w_tick_groups) >
				HOLD_SLOW_LOG_US;
	w->w_tick_groups = dc.dc_groups;
	w->w_tick_commit_us = dc.dc_commit_us;
}

void px_wb_tick(struct px_loop *l)
{
	struct px_wb *w = l->lp_wb;
	uint64_t now = px_now_ms();
	struct wb_file *f, *next;

	log_speed(w);

	for (f = w->w_files; f; f = next) {
		next = f->f_next;
		/* Deletions that failed are retried through a new commit. */
		if (!file_oldest(f) && !f->f_inflight && !f->f_reads &&
		    !f->f_barriers_out && !f->f_barrier_seq &&
		    now - f->f_clean_at > LOCAL_VIEW_MS && !grants_live(w, f, now))
			file_free(w, f);
	}
	park_progress(w);
	flush_kick(w);
	wb_report(w, false);
}

void px_wb_close(struct px_loop *l)
{
	struct px_wb *w = l->lp_wb;

	if (!w)
		return;
	wb_report(w, true);
	px_ev_del(l, &w->w_ev);
	/* Whatever is queued becomes durable; unflushed data stays in the
	 * log and is replayed at the next start (same verifier). */
	cache_dirty_close(w->w_dirty);
	while (w->w_park) {
		struct wb_park *p = w->w_park;

		w->w_park = p->p_next;
		px_client_unref(p->p_client);
		free(p->p_msg);
		free(p);
	}
	while (w->w_files)
		file_free(w, w->w_files);
	free(w);
	l->lp_wb = NULL;
}

void px_wb_stats(struct px_loop *l, struct px_wb_stats *st)
{
	struct px_wb *w = l->lp_wb;
	struct cache_dirty_counts dc;

	memset(st, 0, sizeof(*st));
	if (!w)
		return;
	st->ws_dirty_bytes = cache_dirty_bytes(w->w_dirty);
	st->ws_dirty_max = w->w_max;
	st->ws_dirty_hwm = w->w_hwm;
	st->ws_flushed_bytes = w->w_flushed_bytes;
	st->ws_writes_waited = w->w_waited;
	st->ws_parked = w->w_parked_writes;
	st->ws_inflight = w->w_inflight;
	st->ws_conflicts = w->w_conflicts;
	st->ws_resends = w->w_resends;
	st->ws_flush_errors = w->w_flush_errors;
	st->ws_refused = w->w_refused;
	st->ws_dropped_bytes = w->w_dropped_bytes;
	st->ws_passed_through = w->w_passed_through;
	cache_dirty_counts(w->w_dirty, &dc);
	st->ws_groups = dc.dc_groups;
	st->ws_group_records = dc.dc_puts;
	st->ws_group_deletes = dc.dc_dels;
	st->ws_group_commit_us = dc.dc_commit_us;
	st->ws_group_lingers = dc.dc_lingers;
	st->ws_group_syncs = dc.dc_syncs;
	st->ws_flush_holds = w->w_holds;
}
