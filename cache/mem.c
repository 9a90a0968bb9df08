/*
 * cache/mem.c — the in-memory view every thread consults on the hot path:
 * file versions by identity and file handles → identity, in 64 lock
 * stripes (each a chained hash that grows on its own).  Changes that must
 * survive a restart are queued to the writer from here.
 */
#define _GNU_SOURCE
#include "cache/cache_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec;
}

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t ident_hash(const struct cache_ident *id)
{
	return mix64(id->ci_fsid * 0x9e3779b97f4a7c15ull ^ id->ci_fileid);
}

static uint64_t fh_hash(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return mix64(h);
}

int mem_init(struct cache *c)
{
	for (unsigned i = 0; i < MEM_STRIPES; i++) {
		struct mstripe *s = &c->c_mem[i];
		pthread_mutex_init(&s->ms_lock, NULL);
		s->ms_fcap = s->ms_hcap = 64;
		s->ms_files = calloc(s->ms_fcap, sizeof(*s->ms_files));
		s->ms_handles = calloc(s->ms_hcap, sizeof(*s->ms_handles));
		if (!s->ms_files || !s->ms_handles)
			return -ENOMEM;
	}
	return 0;
}

void mem_free(struct cache *c)
{
	for (unsigned i = 0; i < MEM_STRIPES; i++) {
		struct mstripe *s = &c->c_mem[i];
		for (size_t b = 0; s->ms_files && b < s->ms_fcap; b++)
			for (struct mfile *f = s->ms_files[b], *n; f; f = n) {
				n = f->mf_next;
				free(f);
			}
		for (size_t b = 0; s->ms_handles && b < s->ms_hcap; b++)
			for (struct mhandle *h = s->ms_handles[b], *n; h; h = n) {
				n = h->mh_next;
				free(h);
			}
		free(s->ms_files);
		free(s->ms_handles);
		pthread_mutex_destroy(&s->ms_lock);
	}
}

/* ---------------------------------------------------------------------- */
/* Files                                                                   */

static void files_grow(struct mstripe *s)
{
	size_t ncap = s->ms_fcap * 2;
	struct mfile **nb = calloc(ncap, sizeof(*nb));

	if (!nb)
		return; /* keep the long chains; still correct */
	for (size_t b = 0; b < s->ms_fcap; b++)
		for (struct mfile *f = s->ms_files[b], *n; f; f = n) {
			size_t i = (ident_hash(&f->mf_id) >> 6) & (ncap - 1);
			n = f->mf_next;
			f->mf_next = nb[i];
			nb[i] = f;
		}
	free(s->ms_files);
	s->ms_files = nb;
	s->ms_fcap = ncap;
}

/* Find (or, with create, add) the file; the stripe lock is held. */
static struct mfile *file_find(struct mstripe *s, const struct cache_ident *id,
                               uint64_t h, bool create)
{
	size_t i = (h >> 6) & (s->ms_fcap - 1);
	struct mfile *f;

	for (f = s->ms_files[i]; f; f = f->mf_next)
		if (f->mf_id.ci_fileid == id->ci_fileid &&
		    f->mf_id.ci_fsid == id->ci_fsid)
			return f;
	if (!create || !(f = calloc(1, sizeof(*f))))
		return NULL;
	f->mf_id = *id;
	if (++s->ms_fn > s->ms_fcap) {
		files_grow(s);
		i = (h >> 6) & (s->ms_fcap - 1);
	}
	f->mf_next = s->ms_files[i];
	s->ms_files[i] = f;
	return f;
}

static struct mstripe *stripe_of(struct cache *c, uint64_t h)
{
	return &c->c_mem[h & (MEM_STRIPES - 1)];
}

/* Queue the persistent part of a version change (stripe lock held, so two
 * threads' changes of one file reach the writer in order). */
static void note_enqueue(struct cache *c, const struct mfile *f)
{
	struct witem *wi = calloc(1, sizeof(*wi));

	if (!wi)
		return; /* the writer misses it; reads check versions anyway */
	wi->wi_kind = WI_VERSION;
	wi->wi_id = f->mf_id;
	wi->wi_ver = f->mf_ver;
	wi->wi_flags = f->mf_flags;
	wi->wi_first_seen = f->mf_first_seen;
	memcpy(wi->wi_fattr, f->mf_fattr, CACHE_FATTR_SIZE);
	writer_enqueue(c, wi);
}

/* Apply one noted fattr3 to f; true when the current version changed. */
static bool note_apply(struct cache *c, struct mfile *f, const uint8_t *fattr,
                       const struct cver *v, unsigned flags)
{
	uint64_t now = now_wall();
	bool imm = flags & CACHE_F_IMMUTABLE;

	if (f->mf_known && cver_eq(&f->mf_ver, v)) {
		if (memcmp(f->mf_fattr, fattr, CACHE_FATTR_SIZE))
			memcpy(f->mf_fattr, fattr, CACHE_FATTR_SIZE);
		f->mf_confirmed = true;
		if (imm && (!(f->mf_flags & CACHE_F_IMMUTABLE) ||
		            now >= f->mf_trust_until))
			f->mf_trust_until = now + c->c_opts.co_immutable_ttl;
		f->mf_flags = flags;
		return false;
	}
	/* another version: an immutable file ignores it while trusted */
	if (imm && f->mf_known && (f->mf_flags & CACHE_F_IMMUTABLE) &&
	    now < f->mf_trust_until)
		return false;
	f->mf_ver = *v;
	memcpy(f->mf_fattr, fattr, CACHE_FATTR_SIZE);
	f->mf_known = f->mf_confirmed = true;
	f->mf_flags = flags;
	f->mf_first_seen = now;
	f->mf_trust_until = imm ? now + c->c_opts.co_immutable_ttl : 0;
	return true;
}

int mem_note(struct cache *c, const uint8_t *fattr, unsigned flags,
             const void *fh, size_t fhlen)
{
	struct cache_ident id;
	struct cver v;
	struct mstripe *s;
	struct mfile *f;
	uint64_t h;
	int rc = 0;

	if (get_be32(fattr) != 1) /* NF3REG: only regular files have blocks */
		return 0;
	cache_ident_of_fattr(fattr, &id);
	cver_of_fattr(fattr, &v);
	h = ident_hash(&id);
	s = stripe_of(c, h);
	pthread_mutex_lock(&s->ms_lock);
	f = file_find(s, &id, h, true);
	if (!f)
		rc = -ENOMEM;
	else if (note_apply(c, f, fattr, &v, flags))
		note_enqueue(c, f);
	pthread_mutex_unlock(&s->ms_lock);
	if (rc == 0 && fh) {
		bool isnew = false;
		mem_handle_put(c, fh, fhlen, &id, &isnew);
		if (isnew) {
			struct witem *wi = calloc(1, sizeof(*wi));
			if (!wi)
				return -ENOMEM;
			wi->wi_kind = WI_HANDLE;
			wi->wi_id = id;
			wi->wi_fhlen = (uint8_t)fhlen;
			memcpy(wi->wi_fh, fh, fhlen);
			writer_enqueue(c, wi);
		}
	}
	return rc;
}

bool mem_view(struct cache *c, const struct cache_ident *id, struct fview *v)
{
	uint64_t h = ident_hash(id);
	struct mstripe *s = stripe_of(c, h);
	struct mfile *f;

	pthread_mutex_lock(&s->ms_lock);
	f = file_find(s, id, h, false);
	if (f) {
		v->fv_ver = f->mf_ver;
		memcpy(v->fv_fattr, f->mf_fattr, CACHE_FATTR_SIZE);
		v->fv_usable = f->mf_known && f->mf_inval == 0;
		if (f->mf_flags & CACHE_F_IMMUTABLE)
			v->fv_usable &= now_wall() < f->mf_trust_until;
		else
			v->fv_usable &= f->mf_confirmed;
	}
	pthread_mutex_unlock(&s->ms_lock);
	return f != NULL;
}

/* A file first met through its persisted record (after a restart): known
 * but not confirmed; an immutable one keeps its persisted trust window. */
void mem_load(struct cache *c, const struct cache_ident *id,
              const struct filerec *fr)
{
	uint64_t h = ident_hash(id);
	struct mstripe *s = stripe_of(c, h);
	struct mfile *f;

	pthread_mutex_lock(&s->ms_lock);
	f = file_find(s, id, h, false);
	if (!f && (f = file_find(s, id, h, true))) {
		f->mf_ver = fr->fr_ver;
		memcpy(f->mf_fattr, fr->fr_fattr, CACHE_FATTR_SIZE);
		f->mf_flags = fr->fr_flags;
		f->mf_known = true;
		f->mf_first_seen = fr->fr_first_seen;
		if (fr->fr_flags & CACHE_F_IMMUTABLE)
			f->mf_trust_until =
				fr->fr_first_seen + c->c_opts.co_immutable_ttl;
	}
	pthread_mutex_unlock(&s->ms_lock);
}

bool mem_current(struct cache *c, const struct cache_ident *id,
                 const struct cver *v)
{
	uint64_t h = ident_hash(id);
	struct mstripe *s = stripe_of(c, h);
	struct mfile *f;
	bool cur;

	pthread_mutex_lock(&s->ms_lock);
	f = file_find(s, id, h, false);
	cur = f && f->mf_known && cver_eq(&f->mf_ver, v);
	pthread_mutex_unlock(&s->ms_lock);
	return cur;
}

int mem_invalidate(struct cache *c, const struct cache_ident *id)
{
	uint64_t h = ident_hash(id);
	struct mstripe *s = stripe_of(c, h);
	struct witem *wi = calloc(1, sizeof(*wi));
	struct mfile *f;

	if (!wi)
		return -ENOMEM;
	pthread_mutex_lock(&s->ms_lock);
	/* created if unknown, so a persisted record is not loaded meanwhile */
	f = file_find(s, id, h, true);
	if (f) {
		f->mf_inval++;
		f->mf_trust_until = 0;
	}
	wi->wi_kind = WI_INVAL;
	wi->wi_id = *id;
	writer_enqueue(c, wi);
	pthread_mutex_unlock(&s->ms_lock);
	return f ? 0 : -ENOMEM;
}

void mem_inval_done(struct cache *c, const struct cache_ident *id)
{
	uint64_t h = ident_hash(id);
	struct mstripe *s = stripe_of(c, h);
	struct mfile *f;

	pthread_mutex_lock(&s->ms_lock);
	f = file_find(s, id, h, false);
	if (f && f->mf_inval)
		f->mf_inval--;
	pthread_mutex_unlock(&s->ms_lock);
}

/* ---------------------------------------------------------------------- */
/* Handles                                                                 */

static void handles_grow(struct mstripe *s)
{
	size_t ncap = s->ms_hcap * 2;
	struct mhandle **nb = calloc(ncap, sizeof(*nb));

	if (!nb)
		return;
	for (size_t b = 0; b < s->ms_hcap; b++)
		for (struct mhandle *m = s->ms_handles[b], *n; m; m = n) {
			size_t i = (fh_hash(m->mh_fh, m->mh_len) >> 6) & (ncap - 1);
			n = m->mh_next;
			m->mh_next = nb[i];
			nb[i] = m;
		}
	free(s->ms_handles);
	s->ms_handles = nb;
	s->ms_hcap = ncap;
}

static struct mhandle *handle_find(struct mstripe *s, const uint8_t *fh,
                                   size_t len, uint64_t h)
{
	for (struct mhandle *m = s->ms_handles[(h >> 6) & (s->ms_hcap - 1)]; m;
	     m = m->mh_next)
		if (m->mh_len == len && !memcmp(m->mh_fh, fh, len))
			return m;
	return NULL;
}

int mem_handle_get(struct cache *c, const void *fh, size_t fhlen,
                   struct cache_ident *id)
{
	uint64_t h = fh_hash(fh, fhlen);
	struct mstripe *s = stripe_of(c, h);
	struct mhandle *m;

	pthread_mutex_lock(&s->ms_lock);
	m = handle_find(s, fh, fhlen, h);
	if (m)
		*id = m->mh_id;
	pthread_mutex_unlock(&s->ms_lock);
	return m ? 0 : -ENOENT;
}

void mem_handle_put(struct cache *c, const void *fh, size_t fhlen,
                    const struct cache_ident *id, bool *isnew)
{
	uint64_t h = fh_hash(fh, fhlen);
	struct mstripe *s = stripe_of(c, h);
	struct mhandle *m;

	*isnew = false;
	pthread_mutex_lock(&s->ms_lock);
	m = handle_find(s, fh, fhlen, h);
	if (m) {
		if (m->mh_id.ci_fileid != id->ci_fileid ||
		    m->mh_id.ci_fsid != id->ci_fsid) {
			m->mh_id = *id; /* a handle reused for another file */
			*isnew = true;
		}
	} else if ((m = calloc(1, sizeof(*m)))) {
		size_t i;
		m->mh_len = (uint8_t)fhlen;
		memcpy(m->mh_fh, fh, fhlen);
		m->mh_id = *id;
		if (++s->ms_hn > s->ms_hcap)
			handles_grow(s);
		i = (h >> 6) & (s->ms_hcap - 1);
		m->mh_next = s->ms_handles[i];
		s->ms_handles[i] = m;
		*isnew = true;
	}
	pthread_mutex_unlock(&s->ms_lock);
}
