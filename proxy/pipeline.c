/*
 * proxy/pipeline.c — the per-request path: a call is checked (header,
 * program, version, procedure, flavor, arguments), answered locally when it
 * is wrong, recognised when it is a retransmission, and otherwise given a
 * fresh upstream XID and forwarded; a reply is matched by that XID, checked,
 * given back the client's XID and returned to the client that asked.
 */
#include "config.h"
#include "proxy/core.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "idmap/idmap.h"

#define NBUCKETS 8192u
#define DUP_BUCKETS 16384u
#define DUP_MAX 65536u
#define CSUM_SPAN 1024u

/* ---------------------------------------------------------------------- */
/* Keys and hashes                                                         */

static uint32_t fnv1a(const uint8_t *p, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

/* The client's address without the port: a client that reconnects after
 * a lost connection retransmits from a new port. */
static void client_key(const struct px_client *c, uint8_t key[16])
{
	memset(key, 0, 16);
	if (c->cl_addr.ss_family == AF_INET6)
		memcpy(key, &((const struct sockaddr_in6 *)&c->cl_addr)->sin6_addr,
		       16);
	else
		memcpy(key, &((const struct sockaddr_in *)&c->cl_addr)->sin_addr,
		       4);
}

static size_t cl_bucket(const uint8_t key[16], uint32_t xid, size_t n)
{
	return fnv1a(key, 16, 2166136261u ^ xid) & (n - 1);
}

static size_t xid_bucket(uint32_t xid, size_t n)
{
	return (xid * 2654435761u) & (n - 1);
}

int px_pipe_init(struct px_loop *l)
{
	l->lp_nbuckets = NBUCKETS;
	l->lp_by_xid = calloc(NBUCKETS, sizeof(*l->lp_by_xid));
	l->lp_by_cl = calloc(NBUCKETS, sizeof(*l->lp_by_cl));
	l->lp_dup_hash = calloc(DUP_BUCKETS, sizeof(*l->lp_dup_hash));
	if (!l->lp_by_xid || !l->lp_by_cl || !l->lp_dup_hash)
		return -ENOMEM;
	/* A random start keeps a restarted proxy's XIDs from colliding with
	 * entries of the server's duplicate request cache. */
	if (getrandom(&l->lp_next_xid, sizeof(l->lp_next_xid), 0) < 0)
		l->lp_next_xid = (uint32_t)time(NULL) * 2654435761u;
	return 0;
}

void px_pipe_free(struct px_loop *l)
{
	while (l->lp_dup_old) {
		struct px_dup *d = l->lp_dup_old;

		l->lp_dup_old = d->du_next;
		free(d);
	}
	free(l->lp_by_xid);
	free(l->lp_by_cl);
	free(l->lp_dup_hash);
}

/* ---------------------------------------------------------------------- */
/* Completed non-idempotent calls                                          */

static void dup_unlink(struct px_loop *l, struct px_dup *d)
{
	size_t b = cl_bucket(d->du_addr, d->du_cl_xid, DUP_BUCKETS);
	struct px_dup **pp = &l->lp_dup_hash[b];

	while (*pp != d)
		pp = &(*pp)->du_hnext;
	*pp = d->du_hnext;
	if (d->du_prev)
		d->du_prev->du_next = d->du_next;
	else
		l->lp_dup_old = d->du_next;
	if (d->du_next)
		d->du_next->du_prev = d->du_prev;
	else
		l->lp_dup_new = d->du_prev;
	l->lp_ndups--;
	free(d);
}

static void dup_remember(struct px_loop *l, const struct px_call *pc,
			 const uint8_t key[16])
{
	struct px_dup *d;
	size_t b;

	if (!l->lp_opts->o_dup_window)
		return;
	if (l->lp_ndups >= DUP_MAX)
		dup_unlink(l, l->lp_dup_old);
	if (!(d = calloc(1, sizeof(*d))))
		return;
	memcpy(d->du_addr, key, 16);
	d->du_cl_xid = pc->pc_cl_xid;
	d->du_up_xid = pc->pc_up_xid;
	d->du_csum = pc->pc_csum;
	d->du_proc = pc->pc_proc;
	d->du_cl_id = pc->pc_client ? pc->pc_client->cl_id : 0;
	d->du_when = time(NULL);
	b = cl_bucket(key, pc->pc_cl_xid, DUP_BUCKETS);
	d->du_hnext = l->lp_dup_hash[b];
	l->lp_dup_hash[b] = d;
	d->du_prev = l->lp_dup_new;
	if (l->lp_dup_new)
		l->lp_dup_new->du_next = d;
	else
		l->lp_dup_old = d;
	l->lp_dup_new = d;
	l->lp_ndups++;
}

static struct px_dup *dup_find(struct px_loop *l, const uint8_t key[16],
			       uint32_t xid, uint32_t csum)
{
	size_t b = cl_bucket(key, xid, DUP_BUCKETS);

	for (struct px_dup *d = l->lp_dup_hash[b]; d; d = d->du_hnext)
		if (d->du_cl_xid == xid && d->du_csum == csum &&
		    !memcmp(d->du_addr, key, 16))
			return d;
	return NULL;
}

/* Is the connection with this id still open?  Only asked on a tombstone
 * hit, which is rare, so a walk of the client list is fine. */
static bool client_open(struct px_loop *l, uint64_t id)
{
	for (struct px_client *c = l->lp_main->lp_clients; c; c = c->cl_next)
		if (c->cl_id == id && !c->cl_closed)
			return true;
	return false;
}

void px_pipe_tick(struct px_loop *l, time_t now)
{
	time_t window = l->lp_opts->o_dup_window;

	while (l->lp_dup_old && now - l->lp_dup_old->du_when > window)
		dup_unlink(l, l->lp_dup_old);
}

/* ---------------------------------------------------------------------- */
/* Pending calls                                                           */

static struct px_call *call_by_cl(struct px_loop *l, const uint8_t key[16],
				  uint32_t xid, uint32_t csum)
{
	size_t b = cl_bucket(key, xid, l->lp_nbuckets);

	for (struct px_call *pc = l->lp_by_cl[b]; pc; pc = pc->pc_dnext)
		if (pc->pc_cl_xid == xid && pc->pc_csum == csum &&
		    !memcmp(pc->pc_key, key, 16))
			return pc;
	return NULL;
}

static struct px_call *call_by_xid(struct px_loop *l, uint32_t xid)
{
	for (struct px_call *pc = l->lp_by_xid[xid_bucket(xid, l->lp_nbuckets)];
	     pc; pc = pc->pc_xnext)
		if (pc->pc_up_xid == xid)
			return pc;
	return NULL;
}

static void call_index(struct px_loop *l, struct px_call *pc,
		       const uint8_t key[16])
{
	size_t bx = xid_bucket(pc->pc_up_xid, l->lp_nbuckets);
	size_t bc = cl_bucket(key, pc->pc_cl_xid, l->lp_nbuckets);

	pc->pc_xnext = l->lp_by_xid[bx];
	l->lp_by_xid[bx] = pc;
	pc->pc_dnext = l->lp_by_cl[bc];
	l->lp_by_cl[bc] = pc;
}

/* Remove pc from both indexes; the key is from the client it was filed
 * under (kept in pc_key since the client may have been replaced). */
static void call_unindex(struct px_loop *l, struct px_call *pc)
{
	struct px_call **pp;

	pp = &l->lp_by_xid[xid_bucket(pc->pc_up_xid, l->lp_nbuckets)];
	while (*pp && *pp != pc)
		pp = &(*pp)->pc_xnext;
	if (*pp)
		*pp = pc->pc_xnext;
	pp = &l->lp_by_cl[cl_bucket(pc->pc_key, pc->pc_cl_xid, l->lp_nbuckets)];
	while (*pp && *pp != pc)
		pp = &(*pp)->pc_dnext;
	if (*pp)
		*pp = pc->pc_dnext;
}

static void call_detach_client(struct px_call *pc)
{
	struct px_client *c = pc->pc_client;

	if (!c)
		return;
	pc->pc_client = NULL;
	c->cl_pending--;
	if (!c->cl_closed)
		px_client_update_read(c->cl_loop, c);
	px_client_unref(c);
}

/* Forget pc: indexes, link, client, counters. */
static void call_finish(struct px_loop *l, struct px_call *pc)
{
	if (!pc->pc_icb)
		px_stats_latency(l, pc->pc_prog, pc->pc_proc, &pc->pc_start);
	call_unindex(l, pc);
	px_link_unlink_call(pc->pc_link, pc);
	call_detach_client(pc);
	px_msg_unref(pc->pc_req);
	if (pc->pc_map)
		idmap_unref(pc->pc_map);
	px_rcache_call_free(pc->pc_cread);
	free(pc);
	l->lp_npending--;
	l = l->lp_main; /* --max-pending counts every export's calls */
	if (l->lp_paused &&
	    px_pending_total(l) <= l->lp_opts->o_max_pending * 3 / 4) {
		l->lp_paused = false;
		px_client_update_read(l, NULL);
	}
}

unsigned px_pending_total(const struct px_loop *main)
{
	unsigned n = 0;

	for (unsigned i = 0; i < main->lp_neng; i++)
		n += main->lp_eng[i]->lp_npending;
	return n;
}

/* ---------------------------------------------------------------------- */
/* Local replies                                                           */

enum local_kind { LOCAL_ACCEPTED, LOCAL_RPCVERS, LOCAL_AUTH };

static void reply_local(struct px_client *c, uint32_t xid, enum local_kind k,
			uint32_t stat, uint32_t low, uint32_t high)
{
	struct px_msg *m = px_msg_new(64);
	struct rpc_xdr x;

	if (!m)
		return;
	rpc_xdr_init(&x, px_msg_data(m), 64);
	if (k == LOCAL_ACCEPTED)
		rpc_reply_accepted(&x, xid, stat, low, high);
	else if (k == LOCAL_RPCVERS)
		rpc_reply_rpc_mismatch(&x, xid);
	else
		rpc_reply_auth_error(&x, xid, stat);
	m->m_len = x.x_pos;
	c->cl_loop->lp_stats.s_errors_local++;
	px_client_send(c, m);
	px_msg_unref(m);
}

void px_pipe_fail_call(struct px_call *pc, uint32_t accept_stat)
{
	struct px_loop *l = pc->pc_link->ln_loop;

	if (pc->pc_icb)
		pc->pc_icb(pc->pc_ictx, l->lp_draining ? -ECANCELED : -ETIMEDOUT,
			   NULL, 0);

	if (pc->pc_client && !pc->pc_client->cl_closed)
		reply_local(pc->pc_client, pc->pc_cl_xid, LOCAL_ACCEPTED,
			    accept_stat, 0, 0);
	px_rcache_fail_waiters(pc->pc_cread, accept_stat);
	call_finish(l, pc);
}

/* ---------------------------------------------------------------------- */
/* Calls                                                                   */

/* Check program, version, procedure and flavor.  Returns the link to use,
 * or NULL after answering the call locally. */
static struct px_link *call_route(struct px_client *c, struct px_loop *l,
				   const struct rpc_call *h)
{
	struct px_link *ln;
	uint32_t nproc;

	if (h->c_prog == RPC_PROG_NFS) {
		ln = &l->lp_nfs;
		nproc = NFS3_NPROC;
	} else if (h->c_prog == RPC_PROG_MOUNT) {
		ln = &l->lp_mount;
		nproc = MNT3_NPROC;
	} else {
		px_debug("client %s: program %u unavailable", c->cl_name,
			 h->c_prog);
		reply_local(c, h->c_xid, LOCAL_ACCEPTED, RPC_ACC_PROG_UNAVAIL, 0, 0);
		return NULL;
	}
	if (h->c_vers != 3) {
		reply_local(c, h->c_xid, LOCAL_ACCEPTED, RPC_ACC_PROG_MISMATCH, 3, 3);
		return NULL;
	}
	if (h->c_proc >= nproc) {
		reply_local(c, h->c_xid, LOCAL_ACCEPTED, RPC_ACC_PROC_UNAVAIL, 0, 0);
		return NULL;
	}
	switch (h->c_cred_flavor) {
	case RPC_AUTH_SYS:
	case RPC_AUTH_NONE:
		return ln;
	case RPC_AUTH_TLS:
		/* RFC 9289 §4.1: a server without RPC-with-TLS (or a probe on
		 * a connection already past it) answers like any unknown
		 * flavor. */
		px_debug("client %s: AUTH_TLS probe refused (%s)", c->cl_name,
			 c->cl_tls ? "TLS already on" : "TLS is off");
		break;
	default:
		px_warn_rl("client %s: credential flavor %u not supported",
			   c->cl_name, h->c_cred_flavor);
		break;
	}
	reply_local(c, h->c_xid, LOCAL_AUTH, RPC_AUTH_BADCRED, 0, 0);
	return NULL;
}

/* A call we already know: returns true when it was absorbed. */
static bool call_retransmission(struct px_loop *l, struct px_client *c,
				const struct rpc_call *h, const uint8_t key[16],
				uint32_t csum)
{
	struct px_call *pc = call_by_cl(l, key, h->c_xid, csum);

	if (!pc)
		return false;
	if (pc->pc_client == c) {
		/* Still in flight on this connection: the reply will come. */
		l->lp_stats.s_dups_dropped++;
		return true;
	}
	/* The same XID and bytes from another live connection of the same
	 * host is another caller that happened to pick that XID (two
	 * processes, two mounts), not a retransmission: stealing the first
	 * caller's reply would leave it waiting forever. */
	if (pc->pc_client && !pc->pc_client->cl_closed)
		return false;
	/* The client reconnected and retransmits: send the reply here. */
	px_debug("client %s: xid %08x retransmitted after reconnect",
		 c->cl_name, h->c_xid);
	call_detach_client(pc);
	pc->pc_client = c;
	c->cl_refs++;
	c->cl_pending++;
	l->lp_stats.s_dups_retargeted++;
	return true;
}

/*
 * Map the call's identities to the store's; false when the call was
 * answered here instead (denied, malformed).  *memp may be replaced.
 */
static bool call_map_identity(struct px_client *c, const struct idmap *map,
			      uint8_t **memp, size_t *lenp, struct px_req *rq)
{
	const struct rpc_call *h = &rq->rq_h;
	int rc = px_ident_call(map, c->cl_peer, memp, lenp, rq);

	if (rc == 0)
		return true;
	if (rc != -EACCES) {
		reply_local(c, h->c_xid, LOCAL_ACCEPTED,
			    rc == -EBADMSG ? RPC_ACC_GARBAGE_ARGS
					   : RPC_ACC_SYSTEM_ERR, 0, 0);
		return false;
	}
	px_info_rl("client %s: identity not mapped (--unmapped deny): %s "
		   "refused", c->cl_name,
		   h->c_prog == RPC_PROG_NFS ? rpc_nfs3_proc_name(h->c_proc)
					     : rpc_mnt3_proc_name(h->c_proc));
	if (h->c_prog == RPC_PROG_MOUNT && h->c_proc != MNT3_MNT) {
		reply_local(c, h->c_xid, LOCAL_AUTH, RPC_AUTH_REJECTEDCRED, 0, 0);
		return false;
	}
	px_client_status_reply(c, h, 13 /* ACCES */);
	return false;
}

/* One export: a MNT path with a ".." component is refused (MNT3ERR_ACCES)
 * rather than left to the upstream's resolution; others go on as sent. */
static bool call_mnt_path_ok(struct px_client *c, const uint8_t *msg,
			     const struct rpc_call *h)
{
	uint32_t dlen = rpc_get32(msg + h->c_args_off);
	char norm[MNT3_PATHLEN + 2];
	size_t nlen;
	struct px_msg *m;
	struct rpc_xdr x;

	if (px_mnt_path_norm((const char *)msg + h->c_args_off + 4, dlen, norm,
			     &nlen) != -EACCES)
		return true;
	px_info_rl("client %s: MNT refused: '..' in the path", c->cl_name);
	if (!(m = px_msg_new(64)))
		return false;
	rpc_xdr_init(&x, px_msg_data(m), 64);
	px_nfs3_error_reply(&x, h->c_xid, RPC_PROG_MOUNT, MNT3_MNT, 13);
	m->m_len = x.x_pos;
	c->cl_loop->lp_stats.s_errors_local++;
	px_client_send(c, m);
	px_msg_unref(m);
	return false;
}

/*
 * A call's way through, stage by stage (docs/design.md).  The call is
 * decoded once, into rq; each stage reads rq, may answer the call itself
 * (then the call ends there), and a stage that changes the bytes keeps rq
 * true for the ones after it:
 *
 *   decode        header, credential, arguments      px_req_decode
 *   route         program, version, procedure, flavor   call_route
 *   local peer    who a local client may claim to be    px_peer_check_call
 *   arguments     exactly what the procedure takes   rq_args
 *   exports       the handles' tags pick the export  px_export_route
 *   retransmit    a call already in flight or done     call_retransmission
 *   identity      uids and gids to the store's       px_ident_call
 *   learner       first touches of an image (READ)   px_learn_read
 *   write-back    absorbed, parked or forwarded      px_wb_call
 *   read cache    answered from the cache or widened px_rcache_read_call
 *   forward       a fresh upstream xid, on the link  px_link_submit
 */
bool px_pipe_call(struct px_client *c, uint8_t *mem, size_t len)
{
	struct px_loop *l = c->cl_loop;
	uint8_t *msg = mem + RPC_REC_HEADROOM;
	struct px_req rq;
	struct rpc_call *h = &rq.rq_h;
	struct px_link *ln;
	struct px_call *pc;
	struct px_dup *d;
	struct idmap *map = NULL;
	struct px_cread *cr = NULL;
	uint8_t key[16];
	uint32_t csum;

	switch (px_req_decode(&rq, msg, len)) {
	case RPC_CALL_OK:
		break;
	case RPC_CALL_DROP:
		free(mem);
		l->lp_stats.s_garbage++;
		px_client_close(c, "record is not an RPC call");
		return false;
	case RPC_CALL_RPCVERS:
		reply_local(c, h->c_xid, LOCAL_RPCVERS, 0, 0, 0);
		goto done;
	case RPC_CALL_BADCRED:
		px_warn_rl("client %s: malformed credential (xid %08x)",
			   c->cl_name, h->c_xid);
		reply_local(c, h->c_xid, LOCAL_AUTH, RPC_AUTH_BADCRED, 0, 0);
		goto done;
	case RPC_CALL_BADVERF:
		reply_local(c, h->c_xid, LOCAL_AUTH, RPC_AUTH_BADVERF, 0, 0);
		goto done;
	case RPC_CALL_GARBAGE:
		reply_local(c, h->c_xid, LOCAL_ACCEPTED, RPC_ACC_GARBAGE_ARGS, 0, 0);
		goto done;
	}
	if (!(ln = call_route(c, l, h)))
		goto done;
	if (c->cl_trust != CL_TRUST_ANY) {
		char why[160];

		if (px_peer_check_call(c, &rq, why, sizeof(why)) < 0) {
			/* Forwarding it would let one local user act as
			 * another at the store. */
			px_warn_rl("client %s: call refused (AUTH_TOOWEAK): %s",
				   c->cl_name, why);
			reply_local(c, h->c_xid, LOCAL_AUTH, RPC_AUTH_TOOWEAK, 0,
				    0);
			goto done;
		}
	}
	switch (rq.rq_args) {
	case 0:
		break;
	case -ENAMETOOLONG:
		px_debug("client %s: %s with a name over its bound (xid %08x): "
			 "NAMETOOLONG", c->cl_name,
			 rpc_nfs3_proc_name(h->c_proc), h->c_xid);
		px_client_status_reply(c, h, 63 /* NAMETOOLONG */);
		goto done;
	default:
		px_warn_rl("client %s: garbage arguments for %s (xid %08x)",
			   c->cl_name,
			   h->c_prog == RPC_PROG_NFS ? rpc_nfs3_proc_name(h->c_proc)
						     : rpc_mnt3_proc_name(h->c_proc),
			   h->c_xid);
		l->lp_stats.s_garbage++;
		reply_local(c, h->c_xid, LOCAL_ACCEPTED, RPC_ACC_GARBAGE_ARGS, 0, 0);
		goto done;
	}
	if (l->lp_neng == 1 && h->c_prog == RPC_PROG_MOUNT &&
	    h->c_proc == MNT3_MNT && !call_mnt_path_ok(c, msg, h))
		goto done;
	if (l->lp_neng > 1) {
		/* Several exports: the call's handles (or MNT's path) pick
		 * the engine, and lose their tag on the way. */
		if (!(l = px_export_route(l, c, &mem, &len, &rq)))
			goto done;
		msg = mem + RPC_REC_HEADROOM;
		ln = h->c_prog == RPC_PROG_NFS ? &l->lp_nfs : &l->lp_mount;
	}
	l->lp_stats.s_calls[h->c_prog == RPC_PROG_NFS ? 0 : 1][h->c_proc]++;

	client_key(c, key);
	csum = fnv1a(msg + 8, (len - 8 < CSUM_SPAN ? len - 8 : CSUM_SPAN),
		     2166136261u);
	if (call_retransmission(l, c, h, key, csum))
		goto done;
	if (l->lp_idmap) {
		map = idmap_slot_get(l->lp_idmap);
		if (!call_map_identity(c, map, &mem, &len, &rq)) {
			idmap_unref(map);
			goto done;
		}
		msg = mem + RPC_REC_HEADROOM;
	}
	if (l->lp_learn && h->c_prog == RPC_PROG_NFS && h->c_proc == NFS3_READ)
		px_learn_read(l, msg, &rq);
	if (l->lp_wb && h->c_prog == RPC_PROG_NFS &&
	    px_wb_call(l, c, msg, len, &rq)) {
		if (map)
			idmap_unref(map);
		goto done;
	}
	if (l->lp_rcache && h->c_prog == RPC_PROG_NFS && h->c_proc == NFS3_READ) {
		if (px_rcache_read_call(l, c, msg, len, &rq, &cr)) {
			if (map)
				idmap_unref(map);
			goto done;
		}
	}
	if (!(pc = calloc(1, sizeof(*pc))) ||
	    !(pc->pc_req = px_msg_wrap(mem, len))) {
		px_rcache_call_free(cr);
		free(pc);
		if (pc)
			mem = NULL; /* px_msg_wrap freed it */
		if (map)
			idmap_unref(map);
		reply_local(c, h->c_xid, LOCAL_ACCEPTED, RPC_ACC_SYSTEM_ERR, 0, 0);
		goto done;
	}
	pc->pc_rq = rq;
	pc->pc_map = map;
	pc->pc_cread = cr;
	pc->pc_cl_xid = h->c_xid;
	pc->pc_prog = h->c_prog;
	pc->pc_vers = h->c_vers;
	pc->pc_proc = h->c_proc;
	pc->pc_csum = csum;
	memcpy(pc->pc_key, key, 16);
	/* A retransmission of a call that already completed goes upstream
	 * with its first XID so the server's duplicate cache can answer. */
	d = h->c_prog == RPC_PROG_NFS && rpc_nfs3_proc_nonidempotent(h->c_proc)
		    ? dup_find(l, key, h->c_xid, csum)
		    : NULL;
	if (d && (client_open(l, d->du_cl_id) || call_by_xid(l, d->du_up_xid)))
		d = NULL; /* its caller is still connected: a new call */
	if (d) {
		pc->pc_up_xid = d->du_up_xid;
		l->lp_stats.s_dups_reused++;
	} else {
		pc->pc_up_xid = l->lp_next_xid++;
	}
	rpc_put32(msg, pc->pc_up_xid);
	pc->pc_client = c;
	c->cl_refs++;
	c->cl_pending++;
	px_now(&pc->pc_start);
	pc->pc_seq = ++l->lp_seq;
	px_rcache_call_sent(l, pc);
	call_index(l, pc, key);
	l->lp_npending++;
	if (px_pending_total(l->lp_main) >= l->lp_opts->o_max_pending &&
	    !l->lp_main->lp_paused) {
		l->lp_main->lp_paused = true;
		px_warn_rl("%u calls outstanding (--max-pending): pausing "
			   "clients", px_pending_total(l->lp_main));
	}
	px_link_submit(ln, pc);
	return true;
done:
	free(mem);
	return true;
}

/* ---------------------------------------------------------------------- */
/* Replies                                                                 */

/* Results of a successful call must parse; anything else is relayed. */
static bool reply_results_ok(const struct px_call *pc,
			     const struct rpc_reply *r, uint8_t *msg,
			     size_t len)
{
	uint8_t *res = msg + r->r_res_off;
	size_t rlen = len - r->r_res_off;
	ssize_t used;

	if (r->r_stat != RPC_MSG_ACCEPTED || r->r_accept_stat != RPC_ACC_SUCCESS)
		return true;
	used = pc->pc_prog == RPC_PROG_NFS
		       ? rpc_nfs3_walk_reply(pc->pc_proc, res, rlen, NULL, NULL)
		       : rpc_mnt3_walk_reply(pc->pc_proc, res, rlen, NULL, NULL);
	return used >= 0 && (size_t)used == rlen;
}

/*
 * An AUTH_SHORT verifier belongs to the credential upstream saw, which may
 * not be the one the client sent: replace it by AUTH_NONE (PROTOCOL.md).
 */
static size_t reply_strip_short(const struct rpc_reply *r, uint8_t *msg,
				size_t len)
{
	size_t body_len = (r->r_verf_len + 3u) & ~3u;
	size_t tail = r->r_verf_off + 8 + body_len;

	if (r->r_stat != RPC_MSG_ACCEPTED || r->r_verf_flavor != RPC_AUTH_SHORT)
		return len;
	rpc_put32(msg + r->r_verf_off, RPC_AUTH_NONE);
	rpc_put32(msg + r->r_verf_off + 4, 0);
	memmove(msg + r->r_verf_off + 8, msg + tail, len - tail);
	return len - body_len;
}

bool px_pipe_reply(struct px_link *ln, uint8_t *mem, size_t len)
{
	struct px_loop *l = ln->ln_loop;
	uint8_t *msg = mem + RPC_REC_HEADROOM;
	struct rpc_reply r;
	struct px_call *pc;
	struct px_msg *m;
	bool ok, answered = false;
	int rc = rpc_reply_parse(msg, len, &r);

	pc = len >= 4 ? call_by_xid(l, rpc_get32(msg)) : NULL;
	if (!pc || pc->pc_link != ln) {
		l->lp_stats.s_unknown_xid++;
		px_warn_rl("upstream %s: reply with unknown xid %08x%s",
			   ln->ln_name, len >= 4 ? rpc_get32(msg) : 0,
			   rc ? " (and malformed)" : "");
		free(mem);
		/* Garbage we cannot attribute means the stream is lost. */
		return rc == 0;
	}
	if (rc || !reply_results_ok(pc, &r, msg, len)) {
		l->lp_stats.s_garbage++;
		px_warn_rl("upstream %s: malformed reply to %s (xid %08x): "
			   "answering SYSTEM_ERR", ln->ln_name,
			   pc->pc_prog == RPC_PROG_NFS
				   ? rpc_nfs3_proc_name(pc->pc_proc)
				   : rpc_mnt3_proc_name(pc->pc_proc),
			   pc->pc_up_xid);
		free(mem);
		px_pipe_fail_call(pc, RPC_ACC_SYSTEM_ERR);
		return true;
	}
	len = reply_strip_short(&r, msg, len);
	/* before mapping: the learner writes metadata in upstream's terms */
	if (l->lp_learn && !pc->pc_icb && pc->pc_prog == RPC_PROG_NFS &&
	    pc->pc_proc == NFS3_LOOKUP && r.r_stat == RPC_MSG_ACCEPTED &&
	    r.r_accept_stat == RPC_ACC_SUCCESS)
		px_learn_lookup(l, pc, msg + r.r_res_off, len - r.r_res_off);
	if (pc->pc_map && r.r_stat == RPC_MSG_ACCEPTED &&
	    r.r_accept_stat == RPC_ACC_SUCCESS)
		px_ident_reply(pc->pc_map, pc->pc_prog, pc->pc_proc,
			       msg + r.r_res_off, len - r.r_res_off);
	rpc_put32(msg, pc->pc_cl_xid);
	l->lp_stats.s_replies++;
	if (pc->pc_prog == RPC_PROG_NFS &&
	    rpc_nfs3_proc_nonidempotent(pc->pc_proc))
		dup_remember(l, pc, pc->pc_key);
	if (!(m = px_msg_wrap(mem, len))) {
		call_finish(l, pc);
		return true;
	}
	ok = r.r_stat == RPC_MSG_ACCEPTED && r.r_accept_stat == RPC_ACC_SUCCESS;
	/* The read cache notes upstream's own attributes first: write-back
	 * then patches the reply for the node (its unflushed writes), and a
	 * patched fattr must never be stored as the file's version.  A READ
	 * the cache answers itself (it fills and serves) was sent while the
	 * file was clean: it is left as upstream gave it. */
	if (ok && l->lp_rcache && pc->pc_prog == RPC_PROG_NFS)
		answered = px_rcache_reply(l, pc, m, r.r_res_off);
	if (ok && l->lp_wb && pc->pc_prog == RPC_PROG_NFS && !answered)
		px_wb_reply(l, pc, m, r.r_res_off);
	if (pc->pc_icb) {
		/* SYSTEM_ERR is upstream's trouble (a server role whose
		 * store is away): worth a retry; other refusals are final. */
		pc->pc_icb(pc->pc_ictx, ok ? 0
				: r.r_stat == RPC_MSG_ACCEPTED &&
				  r.r_accept_stat == RPC_ACC_SYSTEM_ERR ? -EIO
				: -EPROTO,
			   ok ? px_msg_data(m) + r.r_res_off : NULL,
			   ok ? m->m_len - r.r_res_off : 0);
		px_msg_unref(m);
		call_finish(l, pc);
		return true;
	}
	/* The cache notes attributes and fills even when the asking client
	 * is gone: the data came at a price. */
	if (pc->pc_cread && !(r.r_stat == RPC_MSG_ACCEPTED &&
			      r.r_accept_stat == RPC_ACC_SUCCESS))
		px_rcache_fail_waiters(pc->pc_cread, r.r_stat == RPC_MSG_ACCEPTED
						     ? r.r_accept_stat
						     : RPC_ACC_SYSTEM_ERR);
	if (!answered && pc->pc_client && !pc->pc_client->cl_closed) {
		if (l->lp_wrap && r.r_stat == RPC_MSG_ACCEPTED &&
		    r.r_accept_stat == RPC_ACC_SUCCESS) {
			/* Several exports: handles carry the export's tag. */
			struct px_msg *t = px_export_wrap_reply(
				l, pc->pc_prog, pc->pc_proc, m, r.r_res_off);

			if (t) {
				px_client_send(pc->pc_client, t);
				px_msg_unref(t);
			} else {
				struct rpc_xdr x;
				struct px_msg *e = px_msg_new(256);

				if (e) {
					rpc_xdr_init(&x, px_msg_data(e), 256);
					px_nfs3_error_reply(&x, pc->pc_cl_xid,
							    pc->pc_prog,
							    pc->pc_proc,
							    10006 /* SERVERFAULT */);
					e->m_len = x.x_pos;
					px_client_send(pc->pc_client, e);
					px_msg_unref(e);
				}
			}
		} else {
			px_client_send(pc->pc_client, m);
		}
	}
	px_msg_unref(m);
	call_finish(l, pc);
	return true;
}

/* ---------------------------------------------------------------------- */
/* Calls of the proxy's own                                                */

static int icall_send(struct px_loop *l, uint32_t prog, uint32_t proc,
		      const struct rpc_authsys *cred, const void *args,
		      size_t alen, px_icall_fn cb, void *ctx, bool map)
{
	struct rpc_authsys root = {.as_machine_len = 7, .as_machine = "gridvfs"};
	uint8_t body[RPC_AUTH_MAX_BODY];
	struct rpc_xdr cx, x;
	struct px_call *pc;
	struct px_msg *m;
	size_t cap = 64 + sizeof(body) + alen;

	rpc_xdr_init(&cx, body, sizeof(body));
	if (rpc_authsys_encode(&cx, cred ? cred : &root))
		return -EINVAL;
	if (!(m = px_msg_new(cap)))
		return -ENOMEM;
	if (!(pc = calloc(1, sizeof(*pc)))) {
		px_msg_unref(m);
		return -ENOMEM;
	}
	pc->pc_up_xid = l->lp_next_xid++;
	rpc_xdr_init(&x, px_msg_data(m), cap);
	rpc_call_build(&x, pc->pc_up_xid, prog, 3, proc, RPC_AUTH_SYS, body,
		       (uint32_t)cx.x_pos, RPC_AUTH_NONE, NULL, 0);
	rpc_xdr_put_fixed(&x, args, alen);
	m->m_len = x.x_pos;
	pc->pc_req = m;
	/* Our own bytes, decoded like a client's for the stages that read
	 * replies (the read cache's handle, the write-back's arguments). */
	if (x.x_err || px_req_decode(&pc->pc_rq, px_msg_data(m), m->m_len) !=
			       RPC_CALL_OK || pc->pc_rq.rq_args) {
		px_msg_unref(m);
		free(pc);
		return -EINVAL;
	}
	pc->pc_prog = prog;
	pc->pc_vers = 3;
	pc->pc_proc = proc;
	pc->pc_icb = cb;
	pc->pc_ictx = ctx;
	/* Replies to our own calls are mapped like clients' so the cache
	 * notes owners in the same (client-side) terms. */
	pc->pc_map = map && l->lp_idmap ? idmap_slot_get(l->lp_idmap) : NULL;
	/* Its own key: no client retransmits it. */
	memset(pc->pc_key, 0xff, sizeof(pc->pc_key));
	pc->pc_cl_xid = pc->pc_up_xid;
	px_now(&pc->pc_start);
	pc->pc_seq = ++l->lp_seq;
	px_rcache_call_sent(l, pc);
	call_index(l, pc, pc->pc_key);
	l->lp_npending++;
	px_link_submit(prog == RPC_PROG_NFS ? &l->lp_nfs : &l->lp_mount, pc);
	return 0;
}

int px_icall(struct px_loop *l, uint32_t prog, uint32_t proc,
	     const struct rpc_authsys *cred, const void *args, size_t alen,
	     px_icall_fn cb, void *ctx)
{
	return icall_send(l, prog, proc, cred, args, alen, cb, ctx, true);
}

int px_icall_raw(struct px_loop *l, uint32_t prog, uint32_t proc,
		 const struct rpc_authsys *cred, const void *args, size_t alen,
		 px_icall_fn cb, void *ctx)
{
	return icall_send(l, prog, proc, cred, args, alen, cb, ctx, false);
}
