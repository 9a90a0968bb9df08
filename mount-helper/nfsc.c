/* mount-helper/nfsc.c: a pool of libnfs contexts, each its own TCP
 * connection mounted through the proxy. libnfs 4.0 contexts are not
 * thread-safe, so a FUSE worker borrows one for the length of a call. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>

#include "mount-helper/mh.h"

#define MH_MAX_GROUPS 16 /* AUTH_SYS carries at most 16 */

struct slot {
	struct nfs_context *nfs;
	int busy;
	long busy_since; /* monotonic ms when lent out */
	/* The credential last installed, so the AUTH is rebuilt only when
	 * another caller borrows the context. */
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[MH_MAX_GROUPS];
};

struct mh_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n;
	struct slot *s;
	int soft_ms;
};

static long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Sort a failed mount into "the store said no" and "the way there
 * failed". libnfs reports MNT status names and NFS3ERR names. */
static int classify(const char *msg)
{
	if (strstr(msg, "MNT3ERR_") || strstr(msg, "NFS3ERR_ACCES") ||
	    strstr(msg, "NFS3ERR_NOENT") || strstr(msg, "NFS3ERR_PERM"))
		return MH_EXIT_NOEXPORT;
	return MH_EXIT_PROXYMNT;
}

static int mount_one(struct slot *s, const char *host, unsigned port,
		     const char *path, unsigned timeout_s, char *err, size_t errlen)
{
	char url[1200];
	struct nfs_url *u;
	int rc, deftmo;

	if (!(s->nfs = nfs_init_context())) {
		snprintf(err, errlen, "cannot create an NFS context");
		return MH_EXIT_SYSERR;
	}
	snprintf(url, sizeof(url), strchr(host, ':') ?
		 "nfs://[%s]%s?version=3&nfsport=%u&mountport=%u" :
		 "nfs://%s%s?version=3&nfsport=%u&mountport=%u",
		 host, path, port, port);
	if (!(u = nfs_parse_url_dir(s->nfs, url))) {
		snprintf(err, errlen, "bad NFS URL %s: %s", url, nfs_get_error(s->nfs));
		return MH_EXIT_USAGE;
	}
	/* The kernel page cache and our attribute timeouts are the cache;
	 * libnfs's own directory cache would second-guess them. Modes come
	 * from FUSE with the caller's umask applied already. */
	nfs_set_dircache(s->nfs, 0);
	nfs_umask(s->nfs, 0);
	nfs_set_autoreconnect(s->nfs, -1);
	/* Bounded only while mounting: afterwards calls wait like a hard
	 * mount (the proxy has its own upstream timeout). */
	deftmo = nfs_get_timeout(s->nfs);
	nfs_set_timeout(s->nfs, (int)timeout_s * 1000);
	rc = nfs_mount(s->nfs, u->server, u->path);
	nfs_set_timeout(s->nfs, deftmo);
	nfs_destroy_url(u);
	if (rc) {
		const char *m = nfs_get_error(s->nfs);
		snprintf(err, errlen, "%s", m ? m : strerror(-rc));
		return classify(err);
	}
	s->uid = (uid_t)-2; /* force an AUTH on first use */
	return 0;
}

int mh_pool_open(const char *host, unsigned port, const char *path,
		 unsigned n, unsigned timeout_s, struct mh_pool **out,
		 char *err, size_t errlen)
{
	struct mh_pool *p = calloc(1, sizeof(*p));
	int rc = 0;

	if (!p || !(p->s = calloc(n, sizeof(*p->s)))) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return MH_EXIT_SYSERR;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->n = n;
	for (unsigned i = 0; i < n && !rc; i++)
		rc = mount_one(&p->s[i], host, port, path, timeout_s, err, errlen);
	if (rc) {
		mh_pool_close(p);
		return rc;
	}
	*out = p;
	return 0;
}

void mh_pool_close(struct mh_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->n; i++)
		if (p->s[i].nfs)
			nfs_destroy_context(p->s[i].nfs);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->s);
	free(p);
}

static void slot_cred(struct slot *s, uid_t uid, gid_t gid, int ngroups,
		      const gid_t *groups)
{
	uint32_t g[MH_MAX_GROUPS];
	struct AUTH *auth;

	if (ngroups > MH_MAX_GROUPS)
		ngroups = MH_MAX_GROUPS;
	if (ngroups < 0)
		ngroups = 0;
	if (s->uid == uid && s->gid == gid && s->ngroups == ngroups &&
	    !memcmp(s->groups, groups, (size_t)ngroups * sizeof(gid_t)))
		return;
	for (int i = 0; i < ngroups; i++)
		g[i] = groups[i];
	auth = libnfs_authunix_create("gridvfs", uid, gid, (uint32_t)ngroups, g);
	if (!auth)
		return; /* keep the old one: the server will refuse, not crash */
	nfs_set_auth(s->nfs, auth);
	s->uid = uid;
	s->gid = gid;
	s->ngroups = ngroups;
	memcpy(s->groups, groups, (size_t)ngroups * sizeof(gid_t));
}

struct nfs_context *mh_pool_get(struct mh_pool *p, uid_t uid, gid_t gid,
				int ngroups, const gid_t *groups)
{
	struct slot *s = NULL;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		/* Prefer a context that already carries this credential. */
		for (unsigned i = 0; i < p->n; i++) {
			if (p->s[i].busy)
				continue;
			if (!s || (p->s[i].uid == uid && s->uid != uid))
				s = &p->s[i];
		}
		if (s)
			break;
		pthread_cond_wait(&p->cv, &p->mu);
	}
	s->busy = 1;
	s->busy_since = mono_ms();
	pthread_mutex_unlock(&p->mu);
	slot_cred(s, uid, gid, ngroups, groups);
	return s->nfs;
}

void mh_pool_put(struct mh_pool *p, struct nfs_context *nfs)
{
	pthread_mutex_lock(&p->mu);
	for (unsigned i = 0; i < p->n; i++)
		if (p->s[i].nfs == nfs)
			p->s[i].busy = 0;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

long mh_pool_stuck_ms(struct mh_pool *p)
{
	long now = mono_ms(), age = 0;

	pthread_mutex_lock(&p->mu);
	for (unsigned i = 0; i < p->n; i++)
		if (p->s[i].busy && now - p->s[i].busy_since > age)
			age = now - p->s[i].busy_since;
	pthread_mutex_unlock(&p->mu);
	return age;
}

void mh_pool_set_soft(struct mh_pool *p, int soft_ms)
{
	p->soft_ms = soft_ms;
	for (unsigned i = 0; i < p->n; i++)
		nfs_set_timeout(p->s[i].nfs, soft_ms > 0 ? soft_ms : -1);
}

int mh_pool_soft_ms(const struct mh_pool *p)
{
	return p->soft_ms;
}

size_t mh_pool_readmax(struct mh_pool *p)
{
	return (size_t)nfs_get_readmax(p->s[0].nfs);
}

size_t mh_pool_writemax(struct mh_pool *p)
{
	return (size_t)nfs_get_writemax(p->s[0].nfs);
}
