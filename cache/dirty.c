/*
 * cache/dirty.c — the write-back dirty log: acknowledged WRITE data kept
 * durably (fsync on every group commit) in its own LMDB environment until
 * the proxy's flusher has it committed upstream.  One writer thread does
 * every write transaction; callers queue and learn of completion via an
 * eventfd, so the event loop never waits for a disk.
 */
#define _GNU_SOURCE
#include "config.h"
#include "cache/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#define DIRTY_FORMAT 1u
#define REC_MAGIC 0x64697231u /* "dir1" */
#define DEFAULT_MAP (4ull << 30)
#define LINGER_MIN_PUTS 2u      /* linger only after a group this big */
#define LINGER_MAX_US 1000u     /* ... and for at most this long */
#define LINGER_IDLE_US 10000u   /* nor after this long without a commit */

/* A record's value: this header (host-endian; the log never leaves its
 * machine), then the data. */
struct rec_hdr {
	uint32_t rh_magic;
	uint32_t rh_len;
	uint64_t rh_off;
	uint64_t rh_time_ms;
	uint32_t rh_uid, rh_gid, rh_ngids, rh_fhlen;
	uint32_t rh_gids[CACHE_DIRTY_MAX_GIDS];
	uint8_t rh_fh[CACHE_FH_MAX];
};

/* A queued put or delete; after the commit it is a completion. */
struct ditem {
	struct ditem *di_next;
	uint64_t di_seq;
	void *di_token;
	void *di_val;      /* put: header + data (or header only: di_data) */
	const void *di_data; /* put_ref: the caller's data, after di_val */
	size_t di_vlen;
	uint32_t di_len;   /* data bytes (accounting) */
	int di_err;
	bool di_put;
	bool di_sync;      /* durable before it completes */
};

struct cache_dirty {
	MDB_env *d_env;
	MDB_dbi d_meta, d_recs;
	char *d_dir;
	int d_lockfd;
	int d_evfd;
	uint8_t d_verf[8];
	bool d_fresh;
	bool d_reboot;     /* verifier redrawn: unclean log of another boot */
	bool d_mark_due;   /* meta (verifier, boot, no "clean") not written yet */
	char d_boot[40];   /* this boot's id */
	uint64_t d_last_seq;
	void (*d_log)(int, const char *);
	_Atomic uint64_t d_bytes;
	pthread_t d_thread;
	bool d_started;
	pthread_mutex_t d_mu;
	pthread_cond_t d_cv;       /* work queued, or stop */
	pthread_cond_t d_idle;     /* a group was committed */
	struct ditem *d_qhead, *d_qtail;
	struct ditem *d_dhead, *d_dtail; /* completions */
	uint64_t d_enq, d_done;    /* items queued / committed, ever */
	struct cache_dirty_counts d_counts; /* under d_mu */
	bool d_stop;
	bool d_waiting;            /* the writer sleeps on d_cv */
	bool d_lingering;          /* ... waiting for d_ltarget puts (linger) */
	uint64_t d_qputs;          /* puts in the queue */
	uint64_t d_ltarget;        /* linger until this many are queued */
	uint64_t d_lwait;          /* ... or for this long (µs) */
	uint64_t d_ldeadline;      /* no lingering from then on (monotonic) */
	time_t d_errlog_at;        /* failed groups: one line per 5 s */
	unsigned d_errlog_skipped;
};

static void dlog(const struct cache_dirty *d, int prio, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void dlog(const struct cache_dirty *d, int prio, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (d->d_log)
		d->d_log(prio, msg);
	else
		fprintf(stderr, "dirty: %s\n", msg);
}

static void be64_put(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t be64_get(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* LMDB returns errno values (positive) or its own codes (MDB_KEYEXIST
 * up to MDB_LAST_ERRCODE); ours are -errno.  A full map is a full log. */
static int mdb_errno(int rc)
{
	if (rc > 0)
		return -rc;
	if (rc == MDB_MAP_FULL)
		return -ENOSPC;
	return rc >= MDB_KEYEXIST && rc <= MDB_LAST_ERRCODE ? -EIO : rc;
}

/* ---------------------------------------------------------------------- */
/* Opening                                                                 */

/* Errors that mean "this is not (or no longer) a usable log". */
static bool damaged(int rc)
{
	return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
	       rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
	       rc == MDB_PANIC || rc == MDB_INCOMPATIBLE || rc == -EBADMSG;
}

static void verf_draw(struct cache_dirty *d)
{
	if (getrandom(d->d_verf, sizeof(d->d_verf), 0) != 8) {
		uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32;

		memcpy(d->d_verf, &t, 8);
	}
}

/* Write the verifier, this boot and "not clean" (mdb errors). */
static int mark_put(struct cache_dirty *d, MDB_txn *txn)
{
	MDB_val k = {8, "verifier"}, v = {8, d->d_verf};
	MDB_val kb = {4, "boot"}, kc = {5, "clean"};
	int rc;

	if ((rc = mdb_put(txn, d->d_meta, &k, &v, 0)))
		return rc;
	v.mv_size = strlen(d->d_boot), v.mv_data = d->d_boot;
	if ((rc = mdb_put(txn, d->d_meta, &kb, &v, 0)))
		return rc;
	rc = mdb_del(txn, d->d_meta, &kc, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* This boot of the machine: the kernel's random boot_id, "" if unknown
 * (then every unclean log looks like another boot's: a new verifier). */
static void boot_id(struct cache_dirty *d, const char *given)
{
	FILE *f;

	d->d_boot[0] = 0;
	if (given) {
		snprintf(d->d_boot, sizeof(d->d_boot), "%s", given);
		return;
	}
	if ((f = fopen("/proc/sys/kernel/random/boot_id", "re"))) {
		if (!fgets(d->d_boot, sizeof(d->d_boot), f))
			d->d_boot[0] = 0;
		d->d_boot[strcspn(d->d_boot, "\n")] = 0;
		fclose(f);
	}
}

/*
 * The verifier outlives a crash of the process: every completed put is in
 * the file system (LMDB wrote it before the commit returned).  Only a
 * machine crash can lose one: groups without a stable put or a deletion
 * are committed with one flush of the data pages and the meta page left
 * to the next flush (MDB_NOMETASYNC), so the last such group may be undone.
 * Hence the meta keys "boot" (the boot the log was opened in) and "clean"
 * (closed with everything flushed): a log of another boot that was not
 * closed cleanly gets a new verifier, and clients resend every WRITE they
 * have not seen committed.  Nothing is written here for a log that exists
 * (a full disk must not stop the daemon from starting, with the data it
 * holds to flush): mark_put writes what changed, at open if it can, or
 * else in the first group, whose records carry the verifier.
 * Reads or creates the meta keys; -EBADMSG for another format.
 */
static int meta_load(struct cache_dirty *d, MDB_txn *txn)
{
	MDB_val k = {6, "format"}, v;
	MDB_val kb = {4, "boot"}, kc = {5, "clean"};
	uint32_t fmt = DIRTY_FORMAT;
	MDB_cursor *cur;
	bool same_boot, clean;
	int rc = mdb_get(txn, d->d_meta, &k, &v);

	if (rc == MDB_NOTFOUND) {
		/* New log: a new verifier (clients must resend what they
		 * think we hold). */
		verf_draw(d);
		d->d_fresh = true;
		v.mv_size = 4, v.mv_data = &fmt;
		if ((rc = mdb_put(txn, d->d_meta, &k, &v, 0)))
			return rc;
		return mark_put(d, txn);
	}
	if (rc)
		return rc;
	if (v.mv_size != 4 || memcmp(v.mv_data, &fmt, 4))
		return -EBADMSG;
	k.mv_size = 8, k.mv_data = "verifier";
	if ((rc = mdb_get(txn, d->d_meta, &k, &v)))
		return rc == MDB_NOTFOUND ? -EBADMSG : rc;
	if (v.mv_size != 8)
		return -EBADMSG;
	memcpy(d->d_verf, v.mv_data, 8);
	rc = mdb_get(txn, d->d_meta, &kb, &v);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	same_boot = rc == 0 && d->d_boot[0] && v.mv_size == strlen(d->d_boot) &&
		    !memcmp(v.mv_data, d->d_boot, v.mv_size);
	rc = mdb_get(txn, d->d_meta, &kc, &v);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	clean = rc == 0;
	if (!same_boot && !clean) {
		verf_draw(d);
		d->d_reboot = true;
	}
	d->d_mark_due = !same_boot || clean;
	if ((rc = mdb_cursor_open(txn, d->d_recs, &cur)))
		return rc;
	rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
	if (rc == 0 && k.mv_size == 8)
		d->d_last_seq = be64_get(k.mv_data);
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int env_try(struct cache_dirty *d, uint64_t map)
{
	MDB_txn *txn = NULL;
	int rc;

	if ((rc = mdb_env_create(&d->d_env)))
		return rc;
	mdb_env_set_maxdbs(d->d_env, 4);
	mdb_env_set_mapsize(d->d_env, map);
	/* MDB_NOMETASYNC: a group's commit flushes its pages, and its meta
	 * page goes with the next flush (at the latest the next synced
	 * group's, see group_apply): one flush per group instead of two.  A
	 * crash of the machine may undo the last group (never corrupt the
	 * log); meta_load's verifier rule covers that.  Never MDB_NOSYNC:
	 * unflushed pages reused before a crash would corrupt the log. */
	if ((rc = mdb_env_open(d->d_env, d->d_dir, MDB_NOTLS | MDB_NOMETASYNC,
			       0600)))
		goto fail;
	if ((rc = mdb_txn_begin(d->d_env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &d->d_meta)) ||
	    (rc = mdb_dbi_open(txn, "recs", MDB_CREATE, &d->d_recs)) ||
	    (rc = meta_load(d, txn)))
		goto fail;
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc || (rc = mdb_env_sync(d->d_env, 1)))
		goto fail;
	if (d->d_mark_due) {
		int mrc = mdb_txn_begin(d->d_env, NULL, 0, &txn);

		if (mrc == 0 && (mrc = mark_put(d, txn)) == 0)
			mrc = mdb_txn_commit(txn);
		else if (txn)
			mdb_txn_abort(txn);
		txn = NULL;
		if (mrc == 0)
			mrc = mdb_env_sync(d->d_env, 1);
		if (mrc == 0)
			d->d_mark_due = false;
		else
			dlog(d, 4, "dirty log %s: cannot record this boot yet "
			     "(%s); the first group of writes will", d->d_dir,
			     mdb_strerror(mrc));
	}
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	mdb_env_close(d->d_env);
	d->d_env = NULL;
	return rc;
}

/* Move a damaged log aside (kept: it may hold acknowledged data). */
static int dir_set_aside(struct cache_dirty *d)
{
	char stamp[32], to[4096];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
	snprintf(to, sizeof(to), "%s.bad-%s", d->d_dir, stamp);
	if (rename(d->d_dir, to) < 0)
		return -errno;
	dlog(d, 3 /* LOG_ERR */, "%s is not a usable dirty log: moved to %s "
	     "(acknowledged writes in it are NOT flushed; new verifier)",
	     d->d_dir, to);
	if (mkdir(d->d_dir, 0700) < 0)
		return -errno;
	return 0;
}

static int dir_lock(struct cache_dirty *d)
{
	char path[4096];

	if (mkdir(d->d_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* The lock file lives beside the directory so that a rebuild (which
	 * renames the directory) keeps it. */
	snprintf(path, sizeof(path), "%s.lock", d->d_dir);
	if ((d->d_lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -errno;
	if (flock(d->d_lockfd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

static void *writer_main(void *arg);

int cache_dirty_open(const struct cache_dirty_opts *o, struct cache_dirty **out)
{
	struct cache_dirty *d;
	int rc;

	*out = NULL;
	if (!o || !o->do_dir || !*o->do_dir)
		return -EINVAL;
	if (!(d = calloc(1, sizeof(*d))) || !(d->d_dir = strdup(o->do_dir))) {
		free(d);
		return -ENOMEM;
	}
	d->d_lockfd = d->d_evfd = -1;
	d->d_log = o->do_log;
	pthread_mutex_init(&d->d_mu, NULL);
	{
		pthread_condattr_t ca;

		/* linger()'s deadline is on the monotonic clock. */
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&d->d_cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	pthread_cond_init(&d->d_idle, NULL);
	boot_id(d, o->do_boot_id);
	if ((rc = dir_lock(d)))
		goto fail;
	rc = env_try(d, o->do_map_bytes ? o->do_map_bytes : DEFAULT_MAP);
	if (rc && damaged(rc)) {
		if ((rc = dir_set_aside(d)) == 0)
			rc = env_try(d, o->do_map_bytes ? o->do_map_bytes
							: DEFAULT_MAP);
	}
	if (rc) {
		rc = mdb_errno(rc);
		goto fail;
	}
	if ((d->d_evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = -pthread_create(&d->d_thread, NULL, writer_main, d)))
		goto fail;
	d->d_started = true;
	*out = d;
	return 0;
fail:
	cache_dirty_close(d);
	return rc;
}

/* ---------------------------------------------------------------------- */
/* The writer                                                              */

/* A group's commit failed: say why, and tell a full file system (which
 * LMDB may report as EIO, for a short write) from other errors, so that
 * the WRITEs can be answered NFS3ERR_NOSPC rather than NFS3ERR_IO. */
static int group_failed(struct cache_dirty *d, int rc, uint64_t bytes)
{
	struct statvfs sv;
	bool full = rc == ENOSPC || rc == EDQUOT || rc == MDB_MAP_FULL;

	if (!full && rc == EIO && statvfs(d->d_dir, &sv) == 0)
		full = (uint64_t)sv.f_bavail * sv.f_frsize < bytes + (1u << 20);
	if (time(NULL) - d->d_errlog_at >= 5) {
		dlog(d, 3, "dirty log write failed: %s%s (%u more failed "
		     "groups not logged)", mdb_strerror(rc),
		     rc == MDB_MAP_FULL ? " (the log's map is full)"
		     : full ? " (its file system is full)" : "",
		     d->d_errlog_skipped);
		d->d_errlog_at = time(NULL);
		d->d_errlog_skipped = 0;
	} else
		d->d_errlog_skipped++;
	if (rc == EDQUOT)
		return -EDQUOT;
	return full ? -ENOSPC : mdb_errno(rc);
}

/* Take a committed group's puts out again (best effort: the disk that
 * failed a flush may fail this too). */
static void group_unput(struct cache_dirty *d, const struct ditem *list)
{
	MDB_txn *txn;

	if (mdb_txn_begin(d->d_env, NULL, 0, &txn))
		return;
	for (const struct ditem *it = list; it; it = it->di_next) {
		uint8_t key[8];
		MDB_val k = {8, key};

		if (!it->di_put)
			continue;
		be64_put(key, it->di_seq);
		(void)mdb_del(txn, d->d_recs, &k, NULL);
	}
	if (mdb_txn_commit(txn) == 0)
		(void)mdb_env_sync(d->d_env, 1);
}

static int group_apply(struct cache_dirty *d, struct ditem *list,
		       uint64_t *freed, bool *synced)
{
	MDB_txn *txn;
	uint64_t bytes = 0;
	bool sync = false;
	int rc = mdb_txn_begin(d->d_env, NULL, 0, &txn);

	*freed = 0;
	*synced = false;
	for (struct ditem *it = list; it; it = it->di_next) {
		bytes += it->di_vlen + (it->di_data ? it->di_len : 0);
		sync |= it->di_sync || !it->di_put;
	}
	if (rc)
		return group_failed(d, rc, bytes);
	/* The open could not write the meta (a full disk): these records
	 * carry it, durably, or an undone group could leave "clean". */
	if (d->d_mark_due) {
		sync = true;
		if ((rc = mark_put(d, txn))) {
			mdb_txn_abort(txn);
			return group_failed(d, rc, bytes);
		}
	}
	for (struct ditem *it = list; it; it = it->di_next) {
		uint8_t key[8];
		MDB_val k = {8, key}, v = {it->di_vlen, it->di_val};

		be64_put(key, it->di_seq);
		if (it->di_put && it->di_data) {
			/* Header and the caller's data straight into the page. */
			v.mv_size = it->di_vlen + it->di_len;
			rc = mdb_put(txn, d->d_recs, &k, &v, MDB_RESERVE);
			if (rc == 0) {
				memcpy(v.mv_data, it->di_val, it->di_vlen);
				memcpy((uint8_t *)v.mv_data + it->di_vlen,
				       it->di_data, it->di_len);
			}
		} else if (it->di_put) {
			rc = mdb_put(txn, d->d_recs, &k, &v, 0);
		} else {
			rc = mdb_del(txn, d->d_recs, &k, NULL);
			if (rc == MDB_NOTFOUND)
				rc = 0;
			*freed += it->di_len;
		}
		if (rc) {
			mdb_txn_abort(txn);
			return group_failed(d, rc, bytes);
		}
	}
	/* Commit: LMDB writes the pages and flushes them; the meta page is
	 * written, not flushed (MDB_NOMETASYNC).  A stable put must be
	 * durable when it completes, and a deletion before anything that
	 * depends on it proceeds (the flusher's records must never come
	 * back from a crash after newer data was committed upstream): such
	 * a group flushes the meta page too. */
	if ((rc = mdb_txn_commit(txn)))
		return group_failed(d, rc, bytes);
	if (sync && (rc = mdb_env_sync(d->d_env, 1))) {
		/* Committed but not known durable: its WRITEs are refused,
		 * so their records must not stay to be flushed later (a
		 * refused WRITE takes no effect).  Deletions are idempotent
		 * and are simply tried again. */
		group_unput(d, list);
		return group_failed(d, rc, bytes);
	}
	*synced = sync;
	d->d_mark_due = false;
	return 0;
}

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/*
 * Linger before a commit (under d_mu).  A closed-loop writer with N WRITEs
 * in flight otherwise settles into two alternating groups of N/2: while
 * one commits, the other half queues, and the writer takes that half the
 * moment the commit ends, before the answered WRITEs can come back.  So
 * after a group of puts the writer expects as many puts again (their
 * writers were just answered) on top of what was queued, and waits for
 * them -- at most one commit's duration (capped at LINGER_MAX_US) from
 * when the writer turns to the queue, the time a second group would have
 * cost.  Then N WRITEs share one commit.  Nothing waits when the last group had fewer
 * than LINGER_MIN_PUTS puts (a lone writer is never delayed), nor once
 * the writer was idle for LINGER_IDLE_US (the burst is over).
 */
static void linger(struct cache_dirty *d)
{
	struct timespec ts;
	uint64_t now = mono_us(), until;

	if (!d->d_ltarget || d->d_qputs >= d->d_ltarget ||
	    now >= d->d_ldeadline)
		return;
	until = now + d->d_lwait;
	ts.tv_sec = (time_t)(until / 1000000u);
	ts.tv_nsec = (long)(until % 1000000u) * 1000;
	d->d_lingering = true;
	while (!d->d_stop && d->d_qputs < d->d_ltarget &&
	       pthread_cond_timedwait(&d->d_cv, &d->d_mu, &ts) != ETIMEDOUT)
		;
	d->d_lingering = false;
	d->d_counts.dc_lingers++;
}

static void *writer_main(void *arg)
{
	struct cache_dirty *d = arg;

	pthread_mutex_lock(&d->d_mu);
	for (;;) {
		struct ditem *list, *last;
		uint64_t n = 0, puts = 0, freed = 0, one = 1, t0, t1;
		bool synced;
		int rc;

		while (!d->d_qhead && !d->d_stop) {
			d->d_waiting = true;
			pthread_cond_wait(&d->d_cv, &d->d_mu);
			d->d_waiting = false;
		}
		if (!d->d_qhead)
			break;
		linger(d);
		/* Group commit: everything queued so far, one commit. */
		list = d->d_qhead;
		d->d_qhead = d->d_qtail = NULL;
		d->d_qputs = 0;
		pthread_mutex_unlock(&d->d_mu);
		t0 = mono_us();
		rc = group_apply(d, list, &freed, &synced);
		t1 = mono_us();
		if (rc == 0)
			atomic_fetch_sub(&d->d_bytes, freed);
		for (last = list;; last = last->di_next) {
			free(last->di_val);
			last->di_val = NULL;
			last->di_err = rc;
			/* A failed put is not held; a failed delete still is. */
			if (last->di_put && rc)
				atomic_fetch_sub(&d->d_bytes, last->di_len);
			n++;
			puts += last->di_put;
			if (!last->di_next)
				break;
		}
		pthread_mutex_lock(&d->d_mu);
		if (d->d_dtail)
			d->d_dtail->di_next = list;
		else
			d->d_dhead = list;
		d->d_dtail = last;
		d->d_done += n;
		d->d_counts.dc_commit_us += t1 - t0;
		if (rc) {
			d->d_counts.dc_failed++;
		} else {
			d->d_counts.dc_groups++;
			d->d_counts.dc_syncs += synced;
			d->d_counts.dc_puts += puts;
			d->d_counts.dc_dels += n - puts;
		}
		/* What the next group may wait for (linger). */
		d->d_ltarget = puts >= LINGER_MIN_PUTS ? d->d_qputs + puts : 0;
		d->d_lwait = t1 - t0 < LINGER_MAX_US ? t1 - t0 : LINGER_MAX_US;
		d->d_ldeadline = t1 + LINGER_IDLE_US;
		pthread_cond_broadcast(&d->d_idle);
		/* Fails only when the counter would overflow: still readable. */
		(void)!write(d->d_evfd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&d->d_mu);
	return NULL;
}

static int enqueue(struct cache_dirty *d, struct ditem *it)
{
	pthread_mutex_lock(&d->d_mu);
	if (d->d_qtail)
		d->d_qtail->di_next = it;
	else
		d->d_qhead = it;
	d->d_qtail = it;
	d->d_enq++;
	d->d_qputs += it->di_put;
	/* A busy writer takes the whole queue when its commit is done: a
	 * wake-up (a futex call) per record would only cost the loop, and
	 * a lingering one waits for its count. */
	if (d->d_waiting || (d->d_lingering && d->d_qputs >= d->d_ltarget))
		pthread_cond_signal(&d->d_cv);
	pthread_mutex_unlock(&d->d_mu);
	return 0;
}

static int put_common(struct cache_dirty *d, const struct cache_dirty_rec *r,
		      void *token, bool ref)
{
	struct ditem *it;
	struct rec_hdr *h;

	if (!d || !r || !r->dr_seq || !r->dr_fhlen || r->dr_fhlen > CACHE_FH_MAX ||
	    r->dr_ngids > CACHE_DIRTY_MAX_GIDS || (r->dr_len && !r->dr_data))
		return -EINVAL;
	if (!(it = calloc(1, sizeof(*it))) ||
	    !(it->di_val = malloc(sizeof(*h) + (ref ? 0 : r->dr_len)))) {
		free(it);
		return -ENOMEM;
	}
	h = it->di_val;
	memset(h, 0, sizeof(*h));
	h->rh_magic = REC_MAGIC;
	h->rh_len = r->dr_len;
	h->rh_off = r->dr_off;
	h->rh_time_ms = r->dr_time_ms;
	h->rh_uid = r->dr_uid;
	h->rh_gid = r->dr_gid;
	h->rh_ngids = r->dr_ngids;
	h->rh_fhlen = r->dr_fhlen;
	memcpy(h->rh_gids, r->dr_gids, sizeof(h->rh_gids));
	memcpy(h->rh_fh, r->dr_fh, r->dr_fhlen);
	if (ref) {
		it->di_data = r->dr_data ? r->dr_data : "";
		it->di_vlen = sizeof(*h);
	} else {
		if (r->dr_len)
			memcpy(h + 1, r->dr_data, r->dr_len);
		it->di_vlen = sizeof(*h) + r->dr_len;
	}
	it->di_seq = r->dr_seq;
	it->di_len = r->dr_len;
	it->di_token = token;
	it->di_put = true;
	it->di_sync = r->dr_sync;
	atomic_fetch_add(&d->d_bytes, r->dr_len);
	return enqueue(d, it);
}

int cache_dirty_put(struct cache_dirty *d, const struct cache_dirty_rec *r,
		    void *token)
{
	return put_common(d, r, token, false);
}

int cache_dirty_put_ref(struct cache_dirty *d, const struct cache_dirty_rec *r,
			void *token)
{
	return put_common(d, r, token, true);
}

int cache_dirty_del(struct cache_dirty *d, uint64_t seq, uint32_t len,
		    void *token)
{
	struct ditem *it;

	if (!d || !seq)
		return -EINVAL;
	if (!(it = calloc(1, sizeof(*it))))
		return -ENOMEM;
	it->di_seq = seq;
	it->di_len = len;
	it->di_token = token;
	return enqueue(d, it);
}

int cache_dirty_event_fd(const struct cache_dirty *d)
{
	return d->d_evfd;
}

size_t cache_dirty_reap(struct cache_dirty *d, struct cache_dirty_done *out,
			size_t max)
{
	uint64_t cnt, one = 1;
	size_t n = 0;

	/* Reset the eventfd first: a completion arriving after this read
	 * makes it readable again. */
	if (read(d->d_evfd, &cnt, sizeof(cnt)) < 0)
		cnt = 0;
	pthread_mutex_lock(&d->d_mu);
	while (n < max && d->d_dhead) {
		struct ditem *it = d->d_dhead;

		d->d_dhead = it->di_next;
		if (!d->d_dhead)
			d->d_dtail = NULL;
		out[n].dd_token = it->di_token;
		out[n].dd_err = it->di_err;
		out[n].dd_put = it->di_put;
		n++;
		free(it);
	}
	if (d->d_dhead) /* more than max: stay readable */
		(void)!write(d->d_evfd, &one, sizeof(one));
	pthread_mutex_unlock(&d->d_mu);
	return n;
}

int cache_dirty_sync(struct cache_dirty *d)
{
	pthread_mutex_lock(&d->d_mu);
	uint64_t want = d->d_enq;

	while (d->d_done < want)
		pthread_cond_wait(&d->d_idle, &d->d_mu);
	pthread_mutex_unlock(&d->d_mu);
	return 0;
}

uint64_t cache_dirty_bytes(const struct cache_dirty *d)
{
	return atomic_load(&((struct cache_dirty *)d)->d_bytes);
}

void cache_dirty_counts(const struct cache_dirty *d,
			struct cache_dirty_counts *out)
{
	struct cache_dirty *m = (struct cache_dirty *)d;

	pthread_mutex_lock(&m->d_mu);
	*out = m->d_counts;
	pthread_mutex_unlock(&m->d_mu);
}

void cache_dirty_verifier(const struct cache_dirty *d, uint8_t verf[8])
{
	memcpy(verf, d->d_verf, 8);
}

bool cache_dirty_fresh(const struct cache_dirty *d)
{
	return d->d_fresh;
}

bool cache_dirty_rebooted(const struct cache_dirty *d)
{
	return d->d_reboot;
}

uint64_t cache_dirty_last_seq(const struct cache_dirty *d)
{
	return d->d_last_seq;
}

/* The writer is done: flush everything and say so ("clean"), so that a
 * reboot keeps the verifier.  A failure only costs clients a resend. */
static void mark_clean(struct cache_dirty *d)
{
	MDB_val kc = {5, "clean"}, v = {1, "1"};
	MDB_txn *txn;

	if (!d->d_env || mdb_txn_begin(d->d_env, NULL, 0, &txn))
		return;
	if (mdb_put(txn, d->d_meta, &kc, &v, 0)) {
		mdb_txn_abort(txn);
		return;
	}
	if (mdb_txn_commit(txn) == 0)
		(void)mdb_env_sync(d->d_env, 1);
}

void cache_dirty_close(struct cache_dirty *d)
{
	if (!d)
		return;
	if (d->d_started) {
		pthread_mutex_lock(&d->d_mu);
		d->d_stop = true;
		pthread_cond_signal(&d->d_cv);
		pthread_mutex_unlock(&d->d_mu);
		pthread_join(d->d_thread, NULL);
		mark_clean(d);
	}
	while (d->d_dhead) {
		struct ditem *it = d->d_dhead;

		d->d_dhead = it->di_next;
		free(it->di_val);
		free(it);
	}
	if (d->d_env)
		mdb_env_close(d->d_env);
	if (d->d_evfd >= 0)
		close(d->d_evfd);
	if (d->d_lockfd >= 0)
		close(d->d_lockfd);
	pthread_mutex_destroy(&d->d_mu);
	pthread_cond_destroy(&d->d_cv);
	pthread_cond_destroy(&d->d_idle);
	free(d->d_dir);
	free(d);
}

/* ---------------------------------------------------------------------- */
/* Replay and figures                                                      */

static bool rec_decode(const MDB_val *k, const MDB_val *v,
		       struct cache_dirty_rec *r)
{
	struct rec_hdr h;

	if (k->mv_size != 8 || v->mv_size < sizeof(h))
		return false;
	memcpy(&h, v->mv_data, sizeof(h));
	if (h.rh_magic != REC_MAGIC || v->mv_size != sizeof(h) + h.rh_len ||
	    !h.rh_fhlen || h.rh_fhlen > CACHE_FH_MAX ||
	    h.rh_ngids > CACHE_DIRTY_MAX_GIDS)
		return false;
	memset(r, 0, sizeof(*r));
	r->dr_seq = be64_get(k->mv_data);
	r->dr_off = h.rh_off;
	r->dr_len = h.rh_len;
	r->dr_time_ms = h.rh_time_ms;
	r->dr_uid = h.rh_uid;
	r->dr_gid = h.rh_gid;
	r->dr_ngids = h.rh_ngids;
	memcpy(r->dr_gids, h.rh_gids, sizeof(r->dr_gids));
	r->dr_fhlen = h.rh_fhlen;
	memcpy(r->dr_fh, h.rh_fh, h.rh_fhlen);
	r->dr_data = (const uint8_t *)v->mv_data + sizeof(h);
	return true;
}

/* Walk the records of an open environment. */
static int recs_walk(MDB_env *env, MDB_dbi dbi, cache_dirty_replay_fn fn,
		     void *ctx, void (*bad)(void *, uint64_t), void *bctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), op = MDB_FIRST;
	int urc = 0;

	if (rc)
		return mdb_errno(rc);
	if ((rc = mdb_cursor_open(txn, dbi, &cur))) {
		mdb_txn_abort(txn);
		return mdb_errno(rc);
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		struct cache_dirty_rec r;

		op = MDB_NEXT;
		if (!rec_decode(&k, &v, &r)) {
			if (bad)
				bad(bctx, k.mv_size == 8 ? be64_get(k.mv_data) : 0);
			continue;
		}
		if ((urc = fn(ctx, &r)))
			break;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	if (urc)
		return urc;
	if (rc == MDB_NOTFOUND)
		return 0;
	return mdb_errno(rc);
}

static void replay_bad(void *ctx, uint64_t seq)
{
	dlog(ctx, 3, "dirty record %llu is malformed: skipped",
	     (unsigned long long)seq);
}

struct replay_ctx {
	struct cache_dirty *rp_d;
	cache_dirty_replay_fn rp_fn;
	void *rp_ctx;
};

static int replay_one(void *ctx, const struct cache_dirty_rec *r)
{
	struct replay_ctx *rp = ctx;

	atomic_fetch_add(&rp->rp_d->d_bytes, r->dr_len);
	return rp->rp_fn ? rp->rp_fn(rp->rp_ctx, r) : 0;
}

int cache_dirty_replay(struct cache_dirty *d, cache_dirty_replay_fn fn,
		       void *ctx)
{
	struct replay_ctx rp = {d, fn, ctx};

	atomic_store(&d->d_bytes, 0);
	return recs_walk(d->d_env, d->d_recs, replay_one, &rp, replay_bad, d);
}

struct stat_ctx {
	struct cache_dirty_stat *sc_st;
	uint8_t sc_fh[256][CACHE_FH_MAX + 1]; /* distinct handles, bounded */
	unsigned sc_n;
};

static int stat_one(void *ctx, const struct cache_dirty_rec *r)
{
	struct stat_ctx *sc = ctx;
	unsigned i;

	sc->sc_st->ds_records++;
	sc->sc_st->ds_bytes += r->dr_len;
	if (!sc->sc_st->ds_oldest_ms || r->dr_time_ms < sc->sc_st->ds_oldest_ms)
		sc->sc_st->ds_oldest_ms = r->dr_time_ms;
	for (i = 0; i < sc->sc_n; i++)
		if (sc->sc_fh[i][0] == r->dr_fhlen &&
		    !memcmp(sc->sc_fh[i] + 1, r->dr_fh, r->dr_fhlen))
			return 0;
	sc->sc_st->ds_files++;
	if (sc->sc_n < 256) {
		sc->sc_fh[sc->sc_n][0] = (uint8_t)r->dr_fhlen;
		memcpy(sc->sc_fh[sc->sc_n++] + 1, r->dr_fh, r->dr_fhlen);
	}
	return 0;
}

int cache_dirty_stat_dir(const char *dir, struct cache_dirty_stat *st)
{
	struct stat_ctx *sc;
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi meta, recs;
	MDB_val k = {8, "verifier"}, v;
	int rc;

	memset(st, 0, sizeof(*st));
	if (!(sc = calloc(1, sizeof(*sc))))
		return -ENOMEM;
	sc->sc_st = st;
	if ((rc = mdb_env_create(&env)))
		goto out;
	mdb_env_set_maxdbs(env, 4);
	/* Read-only beside a running proxy: LMDB readers never block it. */
	if ((rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0600)) ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) ||
	    (rc = mdb_dbi_open(txn, "meta", 0, &meta)) ||
	    (rc = mdb_dbi_open(txn, "recs", 0, &recs)))
		goto out;
	if (mdb_get(txn, meta, &k, &v) == 0 && v.mv_size == 8)
		memcpy(st->ds_verf, v.mv_data, 8);
	/* Commit, not abort: an abort would close the new DBI handles. */
	rc = mdb_txn_commit(txn);
	txn = NULL;
	if (rc)
		goto out;
	rc = recs_walk(env, recs, stat_one, sc, NULL, NULL);
out:
	if (txn)
		mdb_txn_abort(txn);
	if (env)
		mdb_env_close(env);
	free(sc);
	return mdb_errno(rc);
}
