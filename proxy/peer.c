/*
 * proxy/peer.c — who is on the other end of a client connection, for the
 * client role's rule on local identities (issue 16 item 3).
 *
 * AUTH_SYS is a claim, not a proof: the client role forwards it to a store
 * that believes it.  Like the 'secure' rule of Linux exports, a call from
 * a reserved source port is trusted (only root binds one); a local peer on
 * any other port is asked of the kernel (sock_diag: the owner of the
 * socket at the other end of this 4-tuple), and a non-root one may claim
 * only its own uid and groups.  A remote peer on an unreserved port has
 * nothing to vouch for it and is refused.
 */
#include "config.h"
#include "proxy/core.h"

#include <errno.h>
#include <grp.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "idmap/idmap.h"

static uint16_t ss_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6
			     ? ((const struct sockaddr_in6 *)ss)->sin6_port
			     : ((const struct sockaddr_in *)ss)->sin_port);
}

/*
 * The uid owning the socket at the far end of our connection fd, if that
 * socket lives in this host's (network namespace's) kernel: 0 and *uid,
 * -ENOENT when the peer is not local, or another -errno.
 */
int px_peer_local_uid(int fd, const struct sockaddr_storage *peer,
		      uint32_t *uid)
{
	struct sockaddr_storage me;
	socklen_t ml = sizeof(me);
	struct {
		struct nlmsghdr nh;
		struct inet_diag_req_v2 r;
	} req;
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = 1};
	union {
		struct nlmsghdr nh;
		uint8_t b[8192];
	} buf;
	int nl, rc = -ENOENT;
	ssize_t n;

	if (getsockname(fd, (struct sockaddr *)&me, &ml) < 0)
		return -errno;
	if (me.ss_family != peer->ss_family ||
	    (me.ss_family != AF_INET && me.ss_family != AF_INET6))
		return -ENOENT;
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = sizeof(req);
	req.nh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nh.nlmsg_flags = NLM_F_REQUEST; /* an exact lookup, no dump */
	req.nh.nlmsg_seq = 1;
	req.r.sdiag_family = (uint8_t)me.ss_family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	/* Seen from the peer: its address is the source, ours the
	 * destination. */
	req.r.id.idiag_sport = htons(ss_port(peer));
	req.r.id.idiag_dport = htons(ss_port(&me));
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (me.ss_family == AF_INET) {
		memcpy(req.r.id.idiag_src,
		       &((const struct sockaddr_in *)peer)->sin_addr, 4);
		memcpy(req.r.id.idiag_dst,
		       &((const struct sockaddr_in *)&me)->sin_addr, 4);
	} else {
		memcpy(req.r.id.idiag_src,
		       &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst,
		       &((const struct sockaddr_in6 *)&me)->sin6_addr, 16);
	}
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return -errno;
	setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&sa,
		   sizeof(sa)) != (ssize_t)sizeof(req)) {
		rc = -errno;
		close(nl);
		return rc;
	}
	n = recv(nl, &buf, sizeof(buf), 0);
	if (n < 0)
		rc = -errno;
	for (struct nlmsghdr *h = &buf.nh; n > 0 && NLMSG_OK(h, (size_t)n);
	     h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			rc = e->error ? e->error : -ENOENT;
			break;
		}
		if (h->nlmsg_type == SOCK_DIAG_BY_FAMILY &&
		    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg))) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			*uid = m->idiag_uid;
			rc = 0;
			break;
		}
	}
	close(nl);
	return rc;
}

/* The uid gridvfsd was started as (before any --user). */
static uid_t started_uid = (uid_t)-1;

void px_peer_note_start(void)
{
	started_uid = getuid();
}

/* What a non-root local uid may claim: itself, its primary group from the
 * password database and the groups it belongs to there. */
static int own_ids(uint32_t uid, struct idmap_peer_ids **out)
{
	struct passwd pw, *res = NULL;
	char sb[4096];
	gid_t groups[256];
	int ng = 256;
	struct idmap_peer_ids *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->pi_uid = uid;
	p->pi_uids = malloc(sizeof(uint32_t));
	if (!p->pi_uids) {
		free(p);
		return -ENOMEM;
	}
	p->pi_uids[0] = uid;
	p->pi_nuids = 1;
	if (getpwuid_r(uid, &pw, sb, sizeof(sb), &res) == 0 && res) {
		p->pi_gid = pw.pw_gid;
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &ng) < 0)
			ng = 256; /* the first 256 are filled in */
		p->pi_gids = malloc((size_t)ng * sizeof(uint32_t));
		if (!p->pi_gids) {
			idmap_peer_ids_clear(p);
			free(p);
			return -ENOMEM;
		}
		/* has_gid() wants them sorted and unique. */
		for (int i = 0; i < ng; i++) {
			uint32_t g = groups[i];
			size_t j = p->pi_ngids;

			if (idmap_peer_ids_has_gid(p, g))
				continue;
			while (j > 0 && p->pi_gids[j - 1] > g) {
				p->pi_gids[j] = p->pi_gids[j - 1];
				j--;
			}
			p->pi_gids[j] = g;
			p->pi_ngids++;
		}
	} else {
		/* No password entry: its groups are unknown, so it may
		 * claim none (AUTH_NONE still works). */
		p->pi_gid = (uint32_t)-1;
	}
	*out = p;
	return 0;
}

/* Decide at accept time how far c's AUTH_SYS claims are believed. */
void px_peer_classify(struct px_client *c)
{
	const struct px_opts *o = c->cl_loop->lp_opts;
	uint32_t uid;
	int rc;

	c->cl_trust = CL_TRUST_ANY;
	if (o->o_role != PX_ROLE_CLIENT || o->o_insecure)
		return;
	if (ss_port(&c->cl_addr) < 1024)
		return; /* Linux's 'secure': only root binds below 1024 */
	rc = px_peer_local_uid(c->cl_ev.ev_fd, &c->cl_addr, &uid);
	if (rc < 0) {
		c->cl_trust = CL_TRUST_NONE;
		if (rc != -ENOENT)
			px_warn_rl("client %s: cannot ask the kernel who the "
				   "peer is (%s): its calls are refused",
				   c->cl_name, strerror(-rc));
		return;
	}
	c->cl_uid = uid;
	/* Root, or the unprivileged user this daemon runs as (an
	 * unprivileged mount.gridvfs): either could start a daemon of its
	 * own with any options, so nothing is gained by doubting it. */
	if (uid == 0 || (started_uid != 0 && uid == started_uid))
		return;
	if (own_ids(uid, &c->cl_own) < 0) {
		c->cl_trust = CL_TRUST_NONE;
		return;
	}
	c->cl_trust = CL_TRUST_OWN;
}

/* May c make this call with this credential?  0, or -EPERM with the
 * reason in why. */
int px_peer_check_call(const struct px_client *c, const struct px_req *rq,
		       char *why, size_t wlen)
{
	const struct rpc_call *h = &rq->rq_h;
	const struct rpc_authsys *a = &rq->rq_cred;

	if (c->cl_trust == CL_TRUST_ANY || h->c_proc == 0)
		return 0;
	if (c->cl_trust == CL_TRUST_NONE) {
		snprintf(why, wlen, "a remote peer on an unreserved port "
			 "(client role rule 'secure'; --insecure lifts it)");
		return -EPERM;
	}
	if (h->c_cred_flavor != RPC_AUTH_SYS)
		return 0; /* no identity claimed: the anonymous one */
	if (!rq->rq_sys) {
		snprintf(why, wlen, "a malformed AUTH_SYS credential");
		return -EPERM;
	}
	if (a->as_uid != c->cl_uid) {
		snprintf(why, wlen, "local uid %u claimed uid %u", c->cl_uid,
			 a->as_uid);
		return -EPERM;
	}
	if (!idmap_peer_ids_has_gid(c->cl_own, a->as_gid)) {
		snprintf(why, wlen, "local uid %u claimed gid %u, not one of "
			 "its groups", c->cl_uid, a->as_gid);
		return -EPERM;
	}
	for (uint32_t i = 0; i < a->as_ngids; i++)
		if (!idmap_peer_ids_has_gid(c->cl_own, a->as_gids[i])) {
			snprintf(why, wlen, "local uid %u claimed group %u, "
				 "not one of its groups", c->cl_uid,
				 a->as_gids[i]);
			return -EPERM;
		}
	return 0;
}
